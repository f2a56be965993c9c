"""Load keys, certificates and revocation lists from PEM files and name certificates by fingerprint."""

from __future__ import annotations

import hashlib
from pathlib import Path
from typing import Union

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from exchanger.keys.sm2 import Sm2PrivateKey, Sm2PublicKey, is_sm2_certificate

PrivateKey = Union[rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, Sm2PrivateKey]


def load_certificate(path: Path | str) -> x509.Certificate:
    """Load one X.509 certificate from a PEM (or, failing that, DER) file."""
    data = Path(path).read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_certificate(data)
    return x509.load_der_x509_certificate(data)


def load_crl(path: Path | str) -> x509.CertificateRevocationList:
    """Load one certificate revocation list from a PEM (or, failing that, DER) file."""
    data = Path(path).read_bytes()
    if b"-----BEGIN" in data:
        return x509.load_pem_x509_crl(data)
    return x509.load_der_x509_crl(data)


def load_private_key(path: Path | str) -> PrivateKey:
    """Load an unencrypted RSA, EC or SM2 private key from a PEM file."""
    data = Path(path).read_bytes()
    if b"-----BEGIN SM2 PRIVATE KEY-----" in data:
        # OpenSSL's own label for an SM2 key in SEC1 form, which cryptography does not know.
        return Sm2PrivateKey.from_pem(data)
    try:
        key = serialization.load_pem_private_key(data, password=None)
    except UnsupportedAlgorithm:
        # cryptography knows no SM2 curve; the exchange's own SM2 reader takes the same PKCS#8 file.
        return Sm2PrivateKey.from_pem(data)
    # Only the two key types the exchange issues and signs with are usable here.
    if not isinstance(key, (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)):
        raise ValueError(f"{path}: unsupported private key type {type(key).__name__}")
    return key


def same_public_key(cert: x509.Certificate, key: PrivateKey) -> bool:
    """Tell whether the certificate certifies this private key's public half."""
    if isinstance(key, Sm2PrivateKey):
        return is_sm2_certificate(cert) and Sm2PublicKey.from_certificate(cert) == key.public_key()
    if is_sm2_certificate(cert):
        return False
    spki = serialization.PublicFormat.SubjectPublicKeyInfo
    der = serialization.Encoding.DER
    return cert.public_key().public_bytes(der, spki) == key.public_key().public_bytes(der, spki)


def fingerprint(cert: x509.Certificate) -> str:
    """Return the SHA-256 fingerprint of the certificate's DER encoding, lowercase hex."""
    return hashlib.sha256(cert.public_bytes(serialization.Encoding.DER)).hexdigest()


def serial_hex(cert: x509.Certificate) -> str:
    """Return the certificate's serial number as lowercase hex, the form `keys list` shows and `keys revoke` takes."""
    return format(cert.serial_number, "x")
