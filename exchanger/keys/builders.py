"""The demo PKI's keys, CA and participant certificates and revocation lists, for RSA, ECDSA and SM2 alike."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from exchanger.keys.material import PrivateKey
from exchanger.keys.sm2 import Sm2PrivateKey
from exchanger.keys.x509_signing import sign_certificate, sign_crl, subject_key_identifier

CA_COMMON_NAME = "exchanger demo root CA"
CA_ORGANIZATION = "Electronic Port"
PARTICIPANT_URN_PREFIX = "urn:x-exchanger:participant:"
ALGORITHMS = ("rsa", "ec", "sm2")

CA_VALIDITY = timedelta(days=3650)
CERT_VALIDITY = timedelta(days=730)
CRL_VALIDITY = timedelta(days=30)
# Certificates start in the past so that a peer whose clock lags a little still accepts them.
BACKDATE = timedelta(hours=1)


def participant_uri(participant_id: str) -> str:
    """Return the URN that names a participant in its certificate's subjectAltName."""
    return f"{PARTICIPANT_URN_PREFIX}{participant_id}"


def generate_key(algorithm: str = "rsa") -> PrivateKey:
    """Return a new RSA-2048, ECDSA P-256 or SM2 private key."""
    check_algorithm(algorithm)
    if algorithm == "ec":
        return ec.generate_private_key(ec.SECP256R1())
    if algorithm == "sm2":
        return Sm2PrivateKey.generate()
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def algorithm_of(key: PrivateKey) -> str:
    """The `--algorithm` name of a private key."""
    if isinstance(key, Sm2PrivateKey):
        return "sm2"
    return "rsa" if isinstance(key, rsa.RSAPrivateKey) else "ec"


def key_pem(key: PrivateKey) -> bytes:
    """A private key as unencrypted PKCS#8 PEM (for SM2, the form `openssl genpkey -algorithm SM2` writes)."""
    if isinstance(key, Sm2PrivateKey):
        return key.pem()
    return key.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )


def check_algorithm(algorithm: str) -> None:
    """Refuse a key algorithm the demo PKI does not issue."""
    if algorithm not in ALGORITHMS:
        raise ValueError(f"unknown key algorithm {algorithm!r}; expected one of {', '.join(ALGORITHMS)}")


def build_ca_certificate(key: PrivateKey, common_name: str = CA_COMMON_NAME) -> x509.Certificate:
    """Return a self-signed root CA certificate for key, valid ten years, that issues end-entity certificates only."""
    name = x509.Name(
        [
            x509.NameAttribute(NameOID.COMMON_NAME, common_name),
            x509.NameAttribute(NameOID.ORGANIZATION_NAME, CA_ORGANIZATION),
        ]
    )
    not_before = datetime.now(timezone.utc) - BACKDATE
    ski = subject_key_identifier(key.public_key())
    builder = (
        x509.CertificateBuilder()
        .subject_name(name)
        .issuer_name(name)
        .serial_number(x509.random_serial_number())
        .not_valid_before(not_before)
        .not_valid_after(not_before + CA_VALIDITY)
        # path_length=0: the demo CA issues participant certificates only, never sub-CAs.
        .add_extension(x509.BasicConstraints(ca=True, path_length=0), critical=True)
        .add_extension(_key_usage(key_cert_sign=True, crl_sign=True), critical=True)
        .add_extension(ski, critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ski), critical=False)
    )
    return sign_certificate(builder, key.public_key(), key)


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
        .add_extension(subject_key_identifier(key.public_key()), critical=False)
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_subject_key_identifier(ca_ski), critical=False)
    )
    return sign_certificate(builder, key.public_key(), ca_key)


def build_crl(
    ca_cert: x509.Certificate,
    ca_key: PrivateKey,
    revoked: list[x509.RevokedCertificate],
    number: int,
) -> x509.CertificateRevocationList:
    """Return the CA's revocation list with these entries and number, current for CRL_VALIDITY from now."""
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
    return sign_crl(builder, ca_key)


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
