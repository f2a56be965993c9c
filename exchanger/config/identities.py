"""Who signs: the platform's own key and certificate, the participants, and the trust anchors they chain to."""

from __future__ import annotations

import re
from pathlib import Path

from cryptography import x509

from exchanger.config.digest import Digest
from exchanger.config.messages import as_list
from exchanger.config.model import Platform
from exchanger.config.problems import Problems, positive_int
from exchanger.errors import ExchangerError
from exchanger.keys.material import load_crl, load_private_key, same_public_key
from exchanger.keys.trust import (
    DEFAULT_EXPIRY_WARNING_DAYS,
    DEFAULT_IDENTITY_FIELD,
    IDENTITY_FIELDS,
    TrustStore,
    identities,
)
from exchanger.participants import KINDS, Participant, Registry

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$")


def load_certificate(path: Path, where: str, problems: Problems) -> x509.Certificate | None:
    """A PEM certificate, or None after noting why it cannot be read."""
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        problems.add(where, f"certificate {path} not found (run `exchanger keys init`)")
    except (OSError, ValueError) as exc:
        problems.add(where, f"certificate {path} cannot be read: {exc}")
    return None


def load_certificates(paths: list[Path], where: str, problems: Problems, digest: Digest) -> list[x509.Certificate]:
    """Every readable certificate of paths, each file part of the configuration's version; problems noted."""
    certificates = []
    for path in paths:
        digest.add_file(path)
        certificate = load_certificate(path, where, problems)
        if certificate is not None:
            certificates.append(certificate)
    return certificates


def platform_from(data: dict, base: Path, keys_dir: Path, problems: Problems, digest: Digest) -> Platform:
    """The platform's identity, key and certificate (default: <keys_dir>/<id>/), checked to match."""
    spec = data.get("platform") or {}
    pid = spec.get("id", "eport")
    key_path = base / spec["key"] if spec.get("key") else keys_dir / pid / "key.pem"
    cert_path = base / spec["certificate"] if spec.get("certificate") else keys_dir / pid / "cert.pem"
    digest.add_file(cert_path)
    certificate = load_certificate(cert_path, "platform.certificate", problems)
    if certificate is not None:
        try:
            key = load_private_key(key_path)
        except FileNotFoundError:
            problems.add("platform.key", f"private key {key_path} not found (run `exchanger keys init`)")
        except (OSError, ValueError, TypeError, ExchangerError) as exc:
            problems.add("platform.key", f"private key {key_path} cannot be read: {exc}")
        else:
            if not same_public_key(certificate, key):
                problems.add("platform.key", f"{key_path} does not match the certificate {cert_path}")
    # DXP names a node in at most 8 characters: a longer platform id needs a node_id of its own.
    node_id = spec.get("node_id") or (pid if len(pid) <= 8 else None)
    return Platform(pid, str(spec.get("name", "Electronic Port")), key_path, cert_path, certificate, node_id)


def registry_from(data: dict, base: Path, keys_dir: Path, problems: Problems, digest: Digest) -> Registry:
    """Every participant with its kind, broker user and certificates."""
    participants = []
    users: dict[str, str] = {}
    specs = data.get("participants") or {}
    if not isinstance(specs, dict) or not specs:
        problems.add("participants", "must map participant ids to their kind, name and certificates")
        specs = {}
    for pid, spec in specs.items():
        at = f"participants.{pid}"
        spec = spec or {}
        if not isinstance(pid, str) or not _ID.match(pid):
            problems.add(at, "id must be 2-32 characters of a-z, 0-9 and '-', starting with a letter or digit")
            continue
        kind = spec.get("kind")
        if kind not in KINDS - {"platform"}:
            problems.add(f"{at}.kind", f"must be one of {', '.join(sorted(KINDS - {'platform'}))}, not {kind!r}")
            continue
        user = str(spec.get("amqp_user", pid))
        if user in users:
            problems.add(f"{at}.amqp_user", f"broker user {user!r} is already {users[user]}'s")
        users[user] = pid
        paths = [base / p for p in as_list(spec.get("certificates"))] or [keys_dir / pid / "cert.pem"]
        certificates = load_certificates(paths, f"{at}.certificates", problems, digest)
        envelope = str(spec.get("envelope", "exchange"))
        participants.append(Participant(pid, kind, str(spec.get("name", pid)), user, tuple(certificates), envelope))
    return Registry(participants)


def trust_from(data: dict, base: Path, keys_dir: Path, problems: Problems, digest: Digest) -> TrustStore:
    """The trust anchors, their CRLs, and which subject field names a participant."""
    spec = data.get("trust") or {}
    if not isinstance(spec, dict):
        problems.add("trust", "must be a mapping with anchors, crls, identity_field and expiry_warning_days")
        spec = {}
    return store_from(spec, "trust", base, keys_dir / "ca", problems, digest)


def store_from(spec: dict, where: str, base: Path, defaults: Path | None, problems: Problems, digest: Digest) -> TrustStore:
    """A trust store from a section with anchors, crls, identity_field and expiry_warning_days.

    Without anchors or crls the files in ``defaults`` (cert.pem, crl.pem) are used; with no defaults they must be listed.
    """
    identity_field = spec.get("identity_field", DEFAULT_IDENTITY_FIELD)
    if identity_field not in IDENTITY_FIELDS:
        problems.add(f"{where}.identity_field", f"must be one of {', '.join(IDENTITY_FIELDS)}, not {identity_field!r}")
        identity_field = DEFAULT_IDENTITY_FIELD
    warning_days = positive_int(spec, "expiry_warning_days", DEFAULT_EXPIRY_WARNING_DAYS, where, problems)
    anchor_paths = [base / p for p in as_list(spec.get("anchors"))] or ([defaults / "cert.pem"] if defaults else [])
    crl_paths = [base / p for p in as_list(spec.get("crls"))] or ([defaults / "crl.pem"] if defaults else [])
    if not anchor_paths:
        problems.add(f"{where}.anchors", "must list the CA certificates this domain's signers chain to")
    anchors = load_certificates(anchor_paths, f"{where}.anchors", problems, digest)
    crls = []
    for crl_path in crl_paths:
        digest.add_file(crl_path)
        try:
            crls.append(load_crl(crl_path))
        except FileNotFoundError:
            problems.add(f"{where}.crls", f"CRL {crl_path} not found (run `exchanger keys init`)")
        except (OSError, ValueError) as exc:
            problems.add(f"{where}.crls", f"CRL {crl_path} cannot be read: {exc}")
    store = TrustStore(anchors, crls, identity_field=identity_field, expiry_warning_days=warning_days)
    # Without any anchor every CRL is "signed by no anchor": the missing anchor is the one problem to report.
    for problem in store.problems if anchors else ():
        problems.add(where, problem)
    return store


def check_signers(trust: TrustStore, platform: Platform, registry: Registry, problems: Problems) -> None:
    """Every certificate must name whom it is registered for; the platform's must also be valid now."""
    if platform.certificate is not None:
        refused = trust.assess(platform.certificate, platform.id)
        if refused is not None:
            problems.add(
                "platform.certificate",
                f"{refused.code}: {refused.message} (the exchange signs with it, so it does not start on it; "
                f"`exchanger keys issue {platform.id}` makes a new one)",
            )
    for participant in registry:
        for certificate in participant.certificates:
            if not trust.names(certificate, participant.id):
                named = ", ".join(identities(certificate, trust.identity_field)) or "nobody"
                problems.add(
                    f"participants.{participant.id}.certificates",
                    f"the certificate {certificate.subject.rfc4514_string()} (serial {certificate.serial_number:x}) "
                    f"names {named} in {trust.identity_field}, not {participant.id}",
                )
