"""Demo PKI of the exchange: a root CA and its CRL, one key and certificate per participant, broker passwords."""

from __future__ import annotations

import os
import re
import secrets
import tempfile
from collections.abc import Iterable
from datetime import datetime, timedelta, timezone
from pathlib import Path

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from exchanger.keys.material import (
    PrivateKey,
    load_certificate,
    load_crl,
    load_private_key,
    same_public_key,
    serial_hex,
)

CA_COMMON_NAME = "exchanger demo root CA"
CA_ORGANIZATION = "Electronic Port"
DAEMON_USER = "exchanger"
PARTICIPANT_URN_PREFIX = "urn:x-exchanger:participant:"
ALGORITHMS = ("rsa", "ec")

CA_VALIDITY = timedelta(days=3650)
CERT_VALIDITY = timedelta(days=730)
CRL_VALIDITY = timedelta(days=30)
# `keys init` renews a CRL this close to its nextUpdate, so a demo exchange restarted now and then never
# runs into its own stale CRL (which would make it refuse every signature, as it must).
CRL_RENEW_BEFORE = timedelta(days=7)
# Certificates start in the past so that a peer whose clock lags a little still accepts them.
BACKDATE = timedelta(hours=1)

# Directory names under keys/ that belong to the PKI itself, not to a participant.
RESERVED_IDS = frozenset({"ca", DAEMON_USER})
_PARTICIPANT_ID = re.compile(r"[A-Za-z0-9][A-Za-z0-9._-]{0,63}")


def participant_uri(participant_id: str) -> str:
    """Return the URN that names a participant in its certificate's subjectAltName."""
    return f"{PARTICIPANT_URN_PREFIX}{participant_id}"


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
    _check_algorithm(algorithm)
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
    _check_algorithm(algorithm)
    _check_participant_id(participant_id)
    ca_cert = load_certificate(keys_dir / "ca" / "cert.pem")
    ca_key = load_private_key(keys_dir / "ca" / "key.pem")
    written: list[Path] = []
    cert_path = keys_dir / participant_id / "cert.pem"
    if keep_previous and cert_path.exists():
        previous = cert_path.parent / f"cert-{serial_hex(load_certificate(cert_path))}.pem"
        _write_public(previous, cert_path.read_bytes())
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
        _write_private(key_path, _key_pem(ca_key))
        _write_public(cert_path, ca_cert.public_bytes(serialization.Encoding.PEM))
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
    try:
        cert.verify_directly_issued_by(ca_cert)
    except (InvalidSignature, ValueError, TypeError):
        return False
    return True


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
    written: list[Path] = []
    if new_key or not key_path.exists():
        key = generate_key(algorithm)
        _write_private(key_path, _key_pem(key))
        written.append(key_path)
    else:
        key = load_private_key(key_path)
    cert = build_participant_certificate(key, participant_id, display_name, ca_cert, ca_key)
    _write_public(cert_path, cert.public_bytes(serialization.Encoding.PEM))
    written.append(cert_path)
    return written


def _ensure_password(path: Path, *, force: bool) -> list[Path]:
    if path.exists() and not force:
        return []
    _write_private(path, secrets.token_urlsafe(32).encode("ascii"))
    return [path]


def build_ca_certificate(key: PrivateKey, common_name: str = CA_COMMON_NAME) -> x509.Certificate:
    """Return a self-signed root CA certificate for key, valid ten years, that issues end-entity certificates only."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, CA_ORGANIZATION),
        ]
    )
    not_before = datetime.now(timezone.utc) - BACKDATE
    ski = x509.SubjectKeyIdentifier.from_public_key(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + CA_VALIDITY)
        # path_length=0: the demo CA issues participant certificates only, never sub-CAs.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    return builder.sign(key, hashes.SHA256())


def build_participant_certificate(
    key: PrivateKey,
    participant_id: str,
    display_name: str,
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    *,
    not_before: datetime | None = None,
    not_after: datetime | None = None,
) -> x509.Certificate:
    """Return a participant's signing certificate for key, issued by the CA (valid two years from an hour ago)."""
    subject = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, participant_id),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, display_name or participant_id),
        ]
    )
    not_before = not_before or datetime.now(timezone.utc) - BACKDATE
    # A certificate outliving its issuer would only fail later, at chain validation.
    not_after = not_after or min(not_before + CERT_VALIDITY, ca_cert.not_valid_after_utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    is_rsa = isinstance(key, rsa.RSAPrivateKey)
    builder = (
        x509.CertificateBuilder()
        .subject_name(subject)
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_after)
        .add_extension(x509.BasicConstraints(ca=False, path_length=None), critical=True)
        # keyEncipherment only for RSA: it lets the same certificate serve RSA key exchange in TLS.
        .add_extension(
            _key_usage(digital_signature=True, content_commitment=True, key_encipherment=is_rsa),
            critical=True,
        )
        .add_extension(x509.ExtendedKeyUsage([ExtendedKeyUsageOID.CLIENT_AUTH]), critical=False)
        # Client-certificate validation (RFC 5280 profile as cryptography applies it) requires a SAN;
        # a URN naming the participant is the one identity that fits every use of the certificate.
        .add_extension(
            x509.SubjectAlternativeName([x509.UniformResourceIdentifier(participant_uri(participant_id))]),
            critical=False,
        )
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
    )
    return builder.sign(ca_key, hashes.SHA256())


def _write_crl(
    keys_dir: Path,
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    revoked: list[x509.RevokedCertificate],
    number: int,
) -> x509.CertificateRevocationList:
    now = datetime.now(timezone.utc)
    ca_ski = ca_cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    builder = (
        x509.CertificateRevocationListBuilder()
        .issuer_name(ca_cert.subject)
        .last_update(now)
        .next_update(now + CRL_VALIDITY)
        .add_extension(x509.CRLNumber(number), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
    )
    for entry in revoked:
        builder = builder.add_revoked_certificate(entry)
    crl = builder.sign(ca_key, hashes.SHA256())
    _write_public(keys_dir / "ca" / "crl.pem", crl.public_bytes(serialization.Encoding.PEM))
    return crl


def _current_revocations(crl_path: Path, ca_cert: x509.Certificate) -> tuple[list[x509.RevokedCertificate], int]:
    """The entries and number of the CA's current CRL; none and 0 when there is no CRL of this CA."""
    try:
        crl = load_crl(crl_path)
    except (OSError, ValueError):
        return [], 0
    # A CRL left from an earlier CA (recreated since) says nothing about this CA's certificates.
    if crl.issuer != ca_cert.subject or not crl.is_signature_valid(ca_cert.public_key()):
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
    if crl.issuer != ca_cert.subject or not crl.is_signature_valid(ca_cert.public_key()):
        return True
    next_update = crl.next_update_utc
    return next_update is None or next_update - datetime.now(timezone.utc) < CRL_RENEW_BEFORE


def _key_usage(
    *,
    digital_signature: bool = False,
    content_commitment: bool = False,
    key_encipherment: bool = False,
    key_cert_sign: bool = False,
    crl_sign: bool = False,
) -> x509.KeyUsage:
    return x509.KeyUsage(
        digital_signature=digital_signature,
        content_commitment=content_commitment,
        key_encipherment=key_encipherment,
        data_encipherment=False,
        key_agreement=False,
        key_cert_sign=key_cert_sign,
        crl_sign=crl_sign,
        encipher_only=False,
        decipher_only=False,
    )


def generate_key(algorithm: str = "rsa") -> PrivateKey:
    """Return a new RSA-2048 or ECDSA P-256 private key."""
    _check_algorithm(algorithm)
    if algorithm == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def _key_pem(key: PrivateKey) -> bytes:
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def _write_private(path: Path, data: bytes) -> None:
    _write_atomically(path, data, 0o600)


def _write_public(path: Path, data: bytes) -> None:
    _write_atomically(path, data, 0o644)


def _write_atomically(path: Path, data: bytes, mode: int) -> None:
    """Write through a temporary file so a reader never sees half a key, and a secret is never world-readable."""
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp_name = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        os.fchmod(fd, mode)
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


def _check_algorithm(algorithm: str) -> None:
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown key algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}")


def _check_participant_id(participant_id: str) -> None:
    # The id becomes a directory name and a certificate CN: keep it to a safe, short alphabet.
    if not _PARTICIPANT_ID.fullmatch(participant_id):
        raise ValueError(
            f"participant id {participant_id!r} must be 1-64 letters, digits, '.', '_' or '-', "
            "starting with a letter or digit"
        )
    if participant_id in RESERVED_IDS:
        raise ValueError(f"participant id {participant_id!r} is reserved for the exchange itself")
