"""Demo PKI of the exchange: a root CA and its CRL, one key and certificate per participant, broker passwords."""

from __future__ import annotations

import re
import secrets
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives import serialization

from exchanger.keys.builders import (  # noqa: F401  (re-exported: the demo PKI's public names)
    ALGORITHMS,
    BACKDATE,
    CA_COMMON_NAME,
    CA_ORGANIZATION,
    CA_VALIDITY,
    CERT_VALIDITY,
    CRL_VALIDITY,
    PARTICIPANT_URN_PREFIX,
    build_ca_certificate,
    build_crl,
    build_participant_certificate,
    check_algorithm,
    generate_key,
    key_pem,
    participant_uri,
)
from exchanger.keys.files import write_private, write_public
from exchanger.keys.material import (
    PrivateKey,
    load_certificate,
    load_crl,
    load_private_key,
    same_public_key,
    serial_hex,
)
from exchanger.keys.x509_signing import crl_signed_by, issued_by

DAEMON_USER = "exchanger"
# `keys init` renews a CRL this close to its nextUpdate, so a demo exchange restarted now and then never
# runs into its own stale CRL (which would make it refuse every signature, as it must).
CRL_RENEW_BEFORE = timedelta(days=7)

# Directory names under keys/ that belong to the PKI itself, not to a participant.
RESERVED_IDS = frozenset({"ca", DAEMON_USER})
_PARTICIPANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def init_demo_pki(
    keys_dir: Path,
    participants: Iterable[tuple[str, str]],
    *,
    algorithm: str = "rsa",
    force: bool = False,
    daemon_user: str = DAEMON_USER,
) -> list[Path]:
    """Create the demo CA, participant keys, certificates and broker passwords; return the files written."""
    keys_dir = Path(keys_dir)
    check_algorithm(algorithm)
    participants = list(participants)
    for participant_id, _ in participants:
        _check_participant_id(participant_id)

    written: list[Path] = []
    ca_cert, ca_key, ca_written = _ensure_ca(keys_dir, algorithm, force=force)
    written += ca_written
    for participant_id, display_name in participants:
        written += _ensure_participant(
            keys_dir, ca_cert, ca_key, participant_id, display_name, algorithm, force=force
        )
        written += _ensure_password(keys_dir / participant_id / "amqp-password", force=force)
    written += _ensure_password(keys_dir / daemon_user / "amqp-password", force=force)
    return written


def issue_certificate(
    keys_dir: Path,
    participant_id: str,
    display_name: str,
    algorithm: str = "rsa",
    *,
    new_key: bool = False,
    keep_previous: bool = False,
) -> list[Path]:
    """Issue keys/<id>/cert.pem from the CA in keys_dir, making keys/<id>/key.pem first if absent (or new_key).

    With keep_previous, the certificate being replaced is kept as keys/<id>/cert-<serial>.pem, so
    that both can be registered while signers move from the old key to the new one.
    """
    keys_dir = Path(keys_dir)
    check_algorithm(algorithm)
    _check_participant_id(participant_id)
    ca_cert = load_certificate(keys_dir / "ca" / "cert.pem")
    ca_key = load_private_key(keys_dir / "ca" / "key.pem")
    written: list[Path] = []
    cert_path = keys_dir / participant_id / "cert.pem"
    if keep_previous and cert_path.exists():
        previous = cert_path.parent / f"cert-{serial_hex(load_certificate(cert_path))}.pem"
        write_public(previous, cert_path.read_bytes())
        written.append(previous)
    return written + _issue(keys_dir, ca_cert, ca_key, participant_id, display_name, algorithm, new_key=new_key)


def revoke_certificate(
    keys_dir: Path,
    serial_number: int,
    *,
    reason: x509.ReasonFlags | None = None,
) -> x509.CertificateRevocationList:
    """Add a serial number to the demo CA's revocation list and write the new keys/ca/crl.pem; return it.

    Revoking a serial that is already revoked only renews the list.
    """
    keys_dir = Path(keys_dir)
    ca_cert = load_certificate(keys_dir / "ca" / "cert.pem")
    ca_key = load_private_key(keys_dir / "ca" / "key.pem")
    revoked, number = _current_revocations(keys_dir / "ca" / "crl.pem", ca_cert)
    if all(entry.serial_number != serial_number for entry in revoked):
        entry = x509.RevokedCertificateBuilder().serial_number(serial_number)
        entry = entry.revocation_date(datetime.now(timezone.utc))
        if reason is not None:
            entry = entry.add_extension(x509.CRLReason(reason), critical=False)
        revoked.append(entry.build())
    return _write_crl(keys_dir, ca_cert, ca_key, revoked, number + 1)


def renew_crl(keys_dir: Path) -> x509.CertificateRevocationList:
    """Issue the demo CA's revocation list again, same entries, with a new nextUpdate; return it."""
    keys_dir = Path(keys_dir)
    ca_cert = load_certificate(keys_dir / "ca" / "cert.pem")
    ca_key = load_private_key(keys_dir / "ca" / "key.pem")
    revoked, number = _current_revocations(keys_dir / "ca" / "crl.pem", ca_cert)
    return _write_crl(keys_dir, ca_cert, ca_key, revoked, number + 1)


def _ensure_ca(
    keys_dir: Path, algorithm: str, *, force: bool
) -> tuple[x509.Certificate, PrivateKey, list[Path]]:
    cert_path, key_path, crl_path = (keys_dir / "ca" / name for name in ("cert.pem", "key.pem", "crl.pem"))
    # A CA certificate without its key (or the reverse) cannot issue anything: start the CA over.
    if force or not cert_path.exists() or not key_path.exists():
        ca_key = generate_key(algorithm)
        ca_cert = build_ca_certificate(ca_key)
        write_private(key_path, key_pem(ca_key))
        write_public(cert_path, ca_cert.public_bytes(serialization.Encoding.PEM))
        _write_crl(keys_dir, ca_cert, ca_key, [], 1)
        return ca_cert, ca_key, [key_path, cert_path, crl_path]
    ca_cert = load_certificate(cert_path)
    ca_key = load_private_key(key_path)
    if not same_public_key(ca_cert, ca_key):
        raise ValueError(f"{cert_path} does not belong to {key_path}; run with force to recreate the CA")
    if crl_path.exists() and not _crl_needs_renewal(crl_path, ca_cert):
        return ca_cert, ca_key, []
    revoked, number = _current_revocations(crl_path, ca_cert)
    _write_crl(keys_dir, ca_cert, ca_key, revoked, number + 1)
    return ca_cert, ca_key, [crl_path]


def _ensure_participant(
    keys_dir: Path,
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    participant_id: str,
    display_name: str,
    algorithm: str,
    *,
    force: bool,
) -> list[Path]:
    key_path = keys_dir / participant_id / "key.pem"
    cert_path = keys_dir / participant_id / "cert.pem"
    if force or not key_path.exists():
        return _issue(keys_dir, ca_cert, ca_key, participant_id, display_name, algorithm, new_key=True)
    if cert_path.exists() and _is_current(load_certificate(cert_path), load_private_key(key_path), ca_cert):
        return []
    return _issue(keys_dir, ca_cert, ca_key, participant_id, display_name, algorithm, new_key=False)


def _is_current(cert: x509.Certificate, key: PrivateKey, ca_cert: x509.Certificate) -> bool:
    """Tell whether a kept certificate still matches its key and the (possibly recreated) CA."""
    if not same_public_key(cert, key):
        return False
    return issued_by(cert, ca_cert)


def _issue(
    keys_dir: Path,
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    participant_id: str,
    display_name: str,
    algorithm: str,
    *,
    new_key: bool,
) -> list[Path]:
    key_path = keys_dir / participant_id / "key.pem"
    cert_path = keys_dir / participant_id / "cert.pem"
    fresh = new_key or not key_path.exists()
    key = generate_key(algorithm) if fresh else load_private_key(key_path)
    # Certified first, written after: a CA that cannot certify this key (an SM2 CA and an RSA key) changes nothing.
    cert = build_participant_certificate(key, participant_id, display_name, ca_cert, ca_key)
    written: list[Path] = []
    if fresh:
        write_private(key_path, key_pem(key))
        written.append(key_path)
    write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    written.append(cert_path)
    return written


def _ensure_password(path: Path, *, force: bool) -> list[Path]:
    if path.exists() and not force:
        return []
    write_private(path, secrets.token_urlsafe(32).encode("ascii"))
    return [path]


def _write_crl(
    keys_dir: Path,
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    revoked: list[x509.RevokedCertificate],
    number: int,
) -> x509.CertificateRevocationList:
    crl = build_crl(ca_cert, ca_key, revoked, number)
    write_public(keys_dir / "ca" / "crl.pem", crl.public_bytes(serialization.Encoding.PEM))
    return crl


def _current_revocations(crl_path: Path, ca_cert: x509.Certificate) -> tuple[list[x509.RevokedCertificate], int]:
    """The entries and number of the CA's current CRL; none and 0 when there is no CRL of this CA."""
    try:
        crl = load_crl(crl_path)
    except (OSError, ValueError):
        return [], 0
    # A CRL left from an earlier CA (recreated since) says nothing about this CA's certificates.
    if crl.issuer != ca_cert.subject or not crl_signed_by(crl, ca_cert):
        return [], 0
    try:
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    except x509.ExtensionNotFound:
        number = 0
    return _rebuilt_entries(crl), number


def _rebuilt_entries(crl: x509.CertificateRevocationList) -> list[x509.RevokedCertificate]:
    entries = []
    for old in crl:
        entry = x509.RevokedCertificateBuilder().serial_number(old.serial_number)
        entry = entry.revocation_date(old.revocation_date_utc)
        for extension in old.extensions:
            entry = entry.add_extension(extension.value, extension.critical)
        entries.append(entry.build())
    return entries


def _crl_needs_renewal(crl_path: Path, ca_cert: x509.Certificate) -> bool:
    try:
        crl = load_crl(crl_path)
    except (OSError, ValueError):
        return True
    if crl.issuer != ca_cert.subject or not crl_signed_by(crl, ca_cert):
        return True
    next_update = crl.next_update_utc
    return next_update is None or next_update - datetime.now(timezone.utc) < CRL_RENEW_BEFORE


def _check_participant_id(participant_id: str) -> None:
    # The id becomes a directory name and a certificate CN: keep it to a safe, short alphabet.
    if not _PARTICIPANT_ID.fullmatch(participant_id):
        raise ValueError(
            f"participant id {participant_id!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if participant_id in RESERVED_IDS:
        raise ValueError(f"participant id {participant_id!r} is reserved for the exchange itself")
