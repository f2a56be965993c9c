"""The demo PKI: CA, participant certificates, broker passwords, and the key-material helpers."""

from __future__ import annotations

import hashlib
import shutil
import stat
import subprocess
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import PolicyBuilder, Store

from exchanger.keys import fingerprint, init_demo_pki, issue_certificate, load_certificate, load_private_key
from exchanger.keys.pki import participant_uri

PARTICIPANTS = [("eport", "Electronic Port"), ("ent-a", "Enterprise A Trading")]


def _openssl() -> str:
    path = shutil.which("openssl")
    if path is None:
        pytest.fail("openssl not found: install the openssl OS package")
    return path


def _client_verify(ca: x509.Certificate, cert: x509.Certificate) -> None:
    PolicyBuilder().store(Store([ca])).build_client_verifier().verify(cert, [])


def _openssl_verify(keys_dir: Path, participant_id: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [
            _openssl(),
            "verify",
            "-CAfile",
            str(keys_dir / "ca" / "cert.pem"),
            str(keys_dir / participant_id / "cert.pem"),
        ],
        capture_output=True,
        text=True,
        check=False,
    )


def _mode(path: Path) -> int:
    return stat.S_IMODE(path.stat().st_mode)


def _snapshot(keys_dir: Path) -> dict[str, bytes]:
    return {str(p.relative_to(keys_dir)): p.read_bytes() for p in sorted(keys_dir.rglob("*")) if p.is_file()}


def test_layout_and_modes(demo_pki):
    keys = demo_pki.keys_dir
    for name in ("cert.pem", "key.pem", "crl.pem"):
        assert (keys / "ca" / name).is_file()
    assert _mode(keys / "ca" / "key.pem") == 0o600
    for participant_id in ("eport", "ent-a", "ent-b"):
        assert _mode(keys / participant_id / "key.pem") == 0o600
        assert _mode(keys / participant_id / "amqp-password") == 0o600
        assert (keys / participant_id / "cert.pem").is_file()
    assert _mode(keys / "exchanger" / "amqp-password") == 0o600
    assert not (keys / "exchanger" / "key.pem").exists()


def test_amqp_passwords_are_random_and_url_safe(demo_pki):
    keys = demo_pki.keys_dir
    passwords = [(keys / pid / "amqp-password").read_text() for pid in ("eport", "ent-a", "ent-b", "exchanger")]
    assert len(set(passwords)) == len(passwords)
    for password in passwords:
        assert len(password) >= 43  # 32 random bytes, base64url without padding
        assert password.strip() == password
        assert set(password) <= set("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_")


def test_ca_certificate(demo_pki):
    ca = load_certificate(demo_pki.ca_cert)
    assert ca.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == "exchanger demo root CA"
    assert ca.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == "Electronic Port"
    assert ca.issuer == ca.subject
    ca.verify_directly_issued_by(ca)
    basic = ca.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and basic.value.ca
    usage = ca.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical and usage.value.key_cert_sign and usage.value.crl_sign
    assert not usage.value.digital_signature
    ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier)
    lifetime = ca.not_valid_after_utc - ca.not_valid_before_utc
    assert timedelta(days=3649) <= lifetime <= timedelta(days=3651)


def test_empty_crl_signed_by_ca(demo_pki):
    ca = load_certificate(demo_pki.ca_cert)
    crl = x509.load_pem_x509_crl((demo_pki.keys_dir / "ca" / "crl.pem").read_bytes())
    assert crl.is_signature_valid(ca.public_key())
    assert crl.issuer == ca.subject
    assert len(list(crl)) == 0
    assert crl.next_update_utc is not None
    assert timedelta(days=29) < crl.next_update_utc - crl.last_update_utc <= timedelta(days=30)


@pytest.mark.parametrize(
    ("participant_id", "display_name"),
    [("eport", "Electronic Port"), ("ent-a", "Enterprise A Trading"), ("ent-b", "Enterprise B Logistics")],
)
def test_participant_certificate_profile(demo_pki, participant_id, display_name):
    ca = load_certificate(demo_pki.ca_cert)
    cert = load_certificate(demo_pki.cert(participant_id))
    key = load_private_key(demo_pki.key(participant_id))
    assert isinstance(key, rsa.RSAPrivateKey) and key.key_size == 2048
    assert cert.public_key() == key.public_key()
    assert cert.subject.get_attributes_for_oid(NameOID.COMMON_NAME)[0].value == participant_id
    assert cert.subject.get_attributes_for_oid(NameOID.ORGANIZATION_NAME)[0].value == display_name
    assert cert.issuer == ca.subject
    basic = cert.extensions.get_extension_for_class(x509.BasicConstraints)
    assert basic.critical and not basic.value.ca
    usage = cert.extensions.get_extension_for_class(x509.KeyUsage)
    assert usage.critical
    assert usage.value.digital_signature and usage.value.content_commitment and usage.value.key_encipherment
    assert not usage.value.key_cert_sign
    eku = cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value
    assert list(eku) == [ExtendedKeyUsageOID.CLIENT_AUTH]
    san = cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    assert san.get_values_for_type(x509.UniformResourceIdentifier) == [participant_uri(participant_id)]
    ski = cert.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value
    assert ski.digest == x509.SubjectKeyIdentifier.from_public_key(key.public_key()).digest
    aki = cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value
    assert aki.key_identifier == ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest

    # Backdated an hour from when it was issued (its file written), for clocks that lag; the session's
    # PKI may have been made many minutes before this test runs.
    issued = datetime.fromtimestamp(Path(demo_pki.cert(participant_id)).stat().st_mtime, timezone.utc)
    assert issued - timedelta(hours=1, minutes=5) < cert.not_valid_before_utc < issued - timedelta(minutes=55)
    assert cert.not_valid_after_utc - cert.not_valid_before_utc == timedelta(days=730)


def test_private_keys_are_unencrypted_pkcs8(demo_pki):
    for participant_id in ("eport", "ent-a", "ent-ec"):
        pem = demo_pki.key(participant_id).read_bytes()
        assert pem.startswith(b"-----BEGIN PRIVATE KEY-----")
        serialization.load_pem_private_key(pem, password=None)


@pytest.mark.parametrize("participant_id", ["eport", "ent-a", "ent-b", "ent-ec"])
def test_certificates_validate_against_the_ca(demo_pki, participant_id):
    ca = load_certificate(demo_pki.ca_cert)
    _client_verify(ca, load_certificate(demo_pki.cert(participant_id)))
    result = _openssl_verify(demo_pki.keys_dir, participant_id)
    assert result.returncode == 0, result.stdout + result.stderr


def test_issue_certificate_adds_an_ec_participant(demo_pki):
    key = load_private_key(demo_pki.key("ent-ec"))
    assert isinstance(key, ec.EllipticCurvePrivateKey) and key.curve.name == "secp256r1"
    usage = load_certificate(demo_pki.cert("ent-ec")).extensions.get_extension_for_class(x509.KeyUsage).value
    assert usage.digital_signature and usage.content_commitment and not usage.key_encipherment


def test_ec_pki(tmp_path):
    keys = tmp_path / "keys"
    init_demo_pki(keys, PARTICIPANTS, algorithm="ec")
    ca = load_certificate(keys / "ca" / "cert.pem")
    assert isinstance(ca.public_key(), ec.EllipticCurvePublicKey)
    for participant_id, _ in PARTICIPANTS:
        assert isinstance(load_private_key(keys / participant_id / "key.pem"), ec.EllipticCurvePrivateKey)
        _client_verify(ca, load_certificate(keys / participant_id / "cert.pem"))
        result = _openssl_verify(keys, participant_id)
        assert result.returncode == 0, result.stdout + result.stderr


def test_second_run_keeps_everything_and_reports_nothing(tmp_path):
    keys = tmp_path / "keys"
    first = init_demo_pki(keys, PARTICIPANTS)
    assert keys / "ca" / "key.pem" in first and keys / "exchanger" / "amqp-password" in first
    before = _snapshot(keys)
    assert init_demo_pki(keys, PARTICIPANTS) == []
    assert _snapshot(keys) == before


def test_participant_added_later_uses_the_existing_ca(tmp_path):
    keys = tmp_path / "keys"
    init_demo_pki(keys, PARTICIPANTS)
    before = _snapshot(keys)
    written = init_demo_pki(keys, [*PARTICIPANTS, ("ent-c", "Enterprise C")])
    assert sorted(written) == sorted(keys / "ent-c" / name for name in ("key.pem", "cert.pem", "amqp-password"))
    after = _snapshot(keys)
    assert {name: after[name] for name in before} == before
    _client_verify(load_certificate(keys / "ca" / "cert.pem"), load_certificate(keys / "ent-c" / "cert.pem"))


def test_missing_certificate_is_reissued_for_the_kept_key(tmp_path):
    keys = tmp_path / "keys"
    init_demo_pki(keys, PARTICIPANTS)
    key_before = (keys / "ent-a" / "key.pem").read_bytes()
    (keys / "ent-a" / "cert.pem").unlink()
    assert init_demo_pki(keys, PARTICIPANTS) == [keys / "ent-a" / "cert.pem"]
    assert (keys / "ent-a" / "key.pem").read_bytes() == key_before
    cert = load_certificate(keys / "ent-a" / "cert.pem")
    assert cert.public_key() == load_private_key(keys / "ent-a" / "key.pem").public_key()


def test_recreated_ca_reissues_participant_certificates(tmp_path):
    keys = tmp_path / "keys"
    init_demo_pki(keys, PARTICIPANTS)
    (keys / "ca" / "key.pem").unlink()
    written = init_demo_pki(keys, PARTICIPANTS)
    assert keys / "ca" / "cert.pem" in written and keys / "ent-a" / "cert.pem" in written
    ca = load_certificate(keys / "ca" / "cert.pem")
    for participant_id, _ in PARTICIPANTS:
        _client_verify(ca, load_certificate(keys / participant_id / "cert.pem"))


def test_force_regenerates_everything(tmp_path):
    keys = tmp_path / "keys"
    init_demo_pki(keys, PARTICIPANTS)
    before = _snapshot(keys)
    written = init_demo_pki(keys, PARTICIPANTS, force=True)
    after = _snapshot(keys)
    assert set(after) == set(before)
    assert {str(p.relative_to(keys)) for p in written} == set(before)
    for name in before:
        assert after[name] != before[name], name
    ca = load_certificate(keys / "ca" / "cert.pem")
    for participant_id, _ in PARTICIPANTS:
        _client_verify(ca, load_certificate(keys / participant_id / "cert.pem"))


def test_issue_certificate_renews_with_the_same_key(tmp_path):
    keys = tmp_path / "keys"
    init_demo_pki(keys, PARTICIPANTS)
    old_cert = load_certificate(keys / "ent-a" / "cert.pem")
    assert issue_certificate(keys, "ent-a", "Enterprise A Trading") == [keys / "ent-a" / "cert.pem"]
    new_cert = load_certificate(keys / "ent-a" / "cert.pem")
    assert new_cert.serial_number != old_cert.serial_number
    assert new_cert.public_key() == old_cert.public_key()


@pytest.mark.parametrize("participant_id", ["../escape", "a/b", "", "ca", "exchanger", "-dash"])
def test_unsafe_or_reserved_participant_ids_are_refused(tmp_path, participant_id):
    with pytest.raises(ValueError, match="participant id"):
        init_demo_pki(tmp_path / "keys", [(participant_id, "X")])
    assert not (tmp_path / "keys").exists()


def test_unknown_algorithm_is_refused(tmp_path):
    with pytest.raises(ValueError, match="algorithm"):
        init_demo_pki(tmp_path / "keys", PARTICIPANTS, algorithm="dsa")


def test_fingerprint_is_sha256_of_der(demo_pki):
    cert = load_certificate(demo_pki.cert("ent-a"))
    der = cert.public_bytes(serialization.Encoding.DER)
    assert fingerprint(cert) == hashlib.sha256(der).hexdigest()
    result = subprocess.run(
        [_openssl(), "x509", "-in", str(demo_pki.cert("ent-a")), "-noout", "-fingerprint", "-sha256"],
        capture_output=True,
        text=True,
        check=True,
    )
    assert result.stdout.strip().split("=", 1)[1].replace(":", "").lower() == fingerprint(cert)


def test_load_certificate_reads_der_too(demo_pki, tmp_path):
    cert = load_certificate(demo_pki.cert("ent-a"))
    der_path = tmp_path / "cert.der"
    der_path.write_bytes(cert.public_bytes(serialization.Encoding.DER))
    assert load_certificate(der_path) == cert
