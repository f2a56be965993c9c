"""The signature and digest methods the exchange knows, as data: one entry per algorithm identifier.

A signature method names a key family (RSA, ECDSA, SM2) and the hash it signs with; a family knows
which certificates hold its keys, how its SignatureValue is laid out, and how to check and make it.
A new national algorithm is a family and its entries here, not a branch in the verifier and signer.
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from typing import Callable, Protocol

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature

from exchanger.dsig.errors import SignatureError
from exchanger.keys import sm2

MORE = "http://www.w3.org/2001/04/xmldsig-more#"
XMLENC = "http://www.w3.org/2001/04/xmlenc#"
# GACC's identifiers for SM2-with-SM3 and SM3 (China E-port message specification 202205).
CHINAPORT = "http://www.chinaport.gov.cn/2022/04/xmldsig#"
SM2_SM3 = CHINAPORT + "sm2-sm3"
SM3 = CHINAPORT + "sm3"


@dataclass(frozen=True)
class Sm2Settings:
    """How SM2 signatures are made and read: the signer ID in Z_A and the SignatureValue layout."""

    signer_id: str = sm2.DEFAULT_SIGNER_ID
    encoding: str = sm2.DEFAULT_ENCODING  # raw: r || s, 64 bytes (China E-port); der: ECDSA-Sig-Value

    def __post_init__(self) -> None:
        if self.encoding not in sm2.ENCODINGS:
            raise ValueError(f"SM2 signature encoding must be one of {', '.join(sm2.ENCODINGS)}, not {self.encoding!r}")
        sm2.check_signer_id(self.signer_id.encode("utf-8"))

    @property
    def signer_id_bytes(self) -> bytes:
        """The signer ID as the octets Z_A hashes."""
        return self.signer_id.encode("utf-8")


@dataclass(frozen=True)
class SignatureSettings:
    """The settings of each key family that has any (routes.yaml ``signatures:``); a family reads its own."""

    sm2: Sm2Settings = Sm2Settings()


@dataclass(frozen=True)
class DigestMethod:
    """A DigestMethod identifier and the hash it names."""

    uri: str
    name: str
    digest: Callable[[bytes], bytes]


def _sm3(data: bytes) -> bytes:
    hasher = hashes.Hash(hashes.SM3())
    hasher.update(data)
    return hasher.finalize()


def _hashlib(name: str) -> Callable[[bytes], bytes]:
    return lambda data: hashlib.new(name, data).digest()


DIGEST_METHODS: dict[str, DigestMethod] = {
    method.uri: method
    for method in (
        DigestMethod(XMLENC + "sha256", "sha256", _hashlib("sha256")),
        DigestMethod(MORE + "sha384", "sha384", _hashlib("sha384")),
        DigestMethod(XMLENC + "sha512", "sha512", _hashlib("sha512")),
        DigestMethod(SM3, "sm3", _sm3),
    )
}


class KeyFamily(Protocol):
    """What the exchange needs of one kind of signing key."""

    name: str

    def holds(self, certificate: x509.Certificate) -> bool:
        """Tell whether the certificate certifies a key of this family."""

    def check_layout(self, value: bytes, settings: SignatureSettings) -> None:
        """Refuse a SignatureValue whose layout no key of this family could make: cheap, key-independent."""

    def check_value(self, value: bytes, certificate: x509.Certificate) -> None:
        """Refuse a SignatureValue whose length does not fit the certificate's key: cheap, before any key operation."""

    def verify(self, certificate, data: bytes, value: bytes, hash_name: str, settings: SignatureSettings) -> bool:
        """Tell whether value is a signature over data by the certificate's key."""

    def sign(self, key, data: bytes, hash_name: str, settings: SignatureSettings) -> bytes:
        """Sign data; return the SignatureValue octets as XML-DSig carries them."""


_HASHES = {"sha256": hashes.SHA256, "sha384": hashes.SHA384, "sha512": hashes.SHA512}


def _public_key(certificate: x509.Certificate):
    try:
        return certificate.public_key()
    except (UnsupportedAlgorithm, ValueError):
        return None


class RsaFamily:
    """RSA PKCS#1 v1.5 (RFC 6931 rsa-sha*)."""

    name = "RSA"

    def holds(self, certificate: x509.Certificate) -> bool:
        """Tell whether the certificate holds an RSA key."""
        return isinstance(_public_key(certificate), rsa.RSAPublicKey)

    def check_layout(self, value: bytes, settings: SignatureSettings) -> None:
        """Any length may be an RSA signature until the key is known."""

    def check_value(self, value: bytes, certificate: x509.Certificate) -> None:
        """An RSA SignatureValue is exactly as long as the modulus."""
        size = (certificate.public_key().key_size + 7) // 8
        if len(value) != size:
            raise _wrong_length(f"an RSA-{certificate.public_key().key_size} signature", size, len(value))

    def verify(self, certificate, data: bytes, value: bytes, hash_name: str, settings: SignatureSettings) -> bool:
        """Check a PKCS#1 v1.5 signature with the certificate's key."""
        try:
            certificate.public_key().verify(value, data, padding.PKCS1v15(), _HASHES[hash_name]())
        except InvalidSignature:
            return False
        return True

    def sign(self, key, data: bytes, hash_name: str, settings: SignatureSettings) -> bytes:
        """Sign with PKCS#1 v1.5."""
        return key.sign(data, padding.PKCS1v15(), _HASHES[hash_name]())


class EcdsaFamily:
    """ECDSA on the NIST curves, SignatureValue raw r || s (RFC 4050, XML-DSig 1.1)."""

    name = "ECDSA"

    def holds(self, certificate: x509.Certificate) -> bool:
        """Tell whether the certificate holds an EC key that ``cryptography`` supports."""
        return isinstance(_public_key(certificate), ec.EllipticCurvePublicKey)

    def check_layout(self, value: bytes, settings: SignatureSettings) -> None:
        """Nothing to check until the curve is known."""

    def check_value(self, value: bytes, certificate: x509.Certificate) -> None:
        """An ECDSA SignatureValue is two halves, each as long as the curve order."""
        key = certificate.public_key()
        size = 2 * ((key.curve.key_size + 7) // 8)
        if len(value) != size:
            raise _wrong_length(f"an ECDSA SignatureValue on {key.curve.name}", size, len(value))

    def verify(self, certificate, data: bytes, value: bytes, hash_name: str, settings: SignatureSettings) -> bool:
        """Check a raw r || s ECDSA signature with the certificate's key."""
        half = len(value) // 2
        der = encode_dss_signature(int.from_bytes(value[:half], "big"), int.from_bytes(value[half:], "big"))
        try:
            certificate.public_key().verify(der, data, ec.ECDSA(_HASHES[hash_name]()))
        except InvalidSignature:
            return False
        return True

    def sign(self, key, data: bytes, hash_name: str, settings: SignatureSettings) -> bytes:
        """Sign with ECDSA; XML-DSig wants raw r || s, each as long as the curve order."""
        r, s = decode_dss_signature(key.sign(data, ec.ECDSA(_HASHES[hash_name]())))
        size = (key.curve.key_size + 7) // 8
        return r.to_bytes(size, "big") + s.to_bytes(size, "big")


class Sm2Family:
    """SM2-with-SM3 (GM/T 0003) with the configured signer ID; SignatureValue raw r || s or DER as configured."""

    name = "SM2"

    def holds(self, certificate: x509.Certificate) -> bool:
        """Tell whether the certificate holds an SM2 key."""
        return sm2.is_sm2_certificate(certificate)

    def check_layout(self, value: bytes, settings: SignatureSettings) -> None:
        """Raw: exactly 64 bytes, r and s in range; DER: one minimal SEQUENCE of two INTEGERs, nothing after."""
        try:
            if settings.sm2.encoding == "raw":
                if len(value) != sm2.RAW_SIGNATURE_BYTES:
                    raise _wrong_length("sm2-sm3 (raw r || s)", sm2.RAW_SIGNATURE_BYTES, len(value))
                sm2.der_from_raw(value)
            else:
                sm2.parse_der_signature(value)
        except sm2.Sm2Error as exc:
            raise SignatureError("signature.invalid", f"signature does not verify: {exc}") from None

    def check_value(self, value: bytes, certificate: x509.Certificate) -> None:
        """Every SM2 key is on the one curve: the layout check said all there is."""

    def verify(self, certificate, data: bytes, value: bytes, hash_name: str, settings: SignatureSettings) -> bool:
        """Check an SM2 signature with the certificate's point and the configured signer ID."""
        der = sm2.der_from_raw(value) if settings.sm2.encoding == "raw" else value
        return sm2.Sm2PublicKey.from_certificate(certificate).verify(data, der, settings.sm2.signer_id_bytes)

    def sign(self, key, data: bytes, hash_name: str, settings: SignatureSettings) -> bytes:
        """Sign with SM2 and the configured signer ID, in the configured layout."""
        der = key.sign(data, settings.sm2.signer_id_bytes)
        return sm2.raw_from_der(der) if settings.sm2.encoding == "raw" else der


@dataclass(frozen=True)
class SignatureMethod:
    """A SignatureMethod identifier: the key family it needs and the hash it signs with."""

    uri: str
    family: KeyFamily
    hash_name: str
    short: str  # how refusals and `keys list` name it


RSA, ECDSA, SM2 = RsaFamily(), EcdsaFamily(), Sm2Family()
FAMILIES: tuple[KeyFamily, ...] = (RSA, ECDSA, SM2)

SIGNATURE_METHODS: dict[str, SignatureMethod] = {
    method.uri: method
    for method in (
        SignatureMethod(MORE + "rsa-sha256", RSA, "sha256", "rsa-sha256"),
        SignatureMethod(MORE + "rsa-sha384", RSA, "sha384", "rsa-sha384"),
        SignatureMethod(MORE + "rsa-sha512", RSA, "sha512", "rsa-sha512"),
        SignatureMethod(MORE + "ecdsa-sha256", ECDSA, "sha256", "ecdsa-sha256"),
        SignatureMethod(MORE + "ecdsa-sha384", ECDSA, "sha384", "ecdsa-sha384"),
        SignatureMethod(MORE + "ecdsa-sha512", ECDSA, "sha512", "ecdsa-sha512"),
        # SM3 is part of SM2-with-SM3 itself: Z_A and the message are hashed inside the SM2 operation.
        SignatureMethod(SM2_SM3, SM2, "sm3", "sm2-sm3"),
    )
}
NATIONAL_METHODS = frozenset({SM2_SM3, SM3})
# What the platform signs with, per key family: the strongest common choice, and GACC's pair for SM2.
SIGNING_CHOICES: dict[str, tuple[str, str]] = {
    "RSA": (MORE + "rsa-sha256", XMLENC + "sha256"),
    "ECDSA": (MORE + "ecdsa-sha256", XMLENC + "sha256"),
    "SM2": (SM2_SM3, SM3),
}


def family_of(certificate: x509.Certificate) -> KeyFamily | None:
    """The key family a certificate holds, or None for a key the exchange cannot use."""
    return next((family for family in FAMILIES if family.holds(certificate)), None)


def _wrong_length(what: str, expected: int, found: int) -> SignatureError:
    return SignatureError(
        "signature.invalid",
        f"signature does not verify: SignatureValue is {found} bytes; {what} needs {expected} bytes",
    )
