"""Read the signer's certificate from KeyInfo and hold it against the pinned certificates."""

from __future__ import annotations

from collections.abc import Sequence

from cryptography import x509
from cryptography.exceptions import UnsupportedAlgorithm
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key
from lxml import etree

from exchanger.dsig.algorithms import DS_NS, DSIG11_NS, KNOWN_CURVES
from exchanger.dsig.encoding import decode_base64
from exchanger.dsig.errors import SignatureError
from exchanger.keys.material import fingerprint
from exchanger.keys.sm2 import Sm2Error, Sm2PublicKey

_DS = f"{{{DS_NS}}}"
_DSIG11 = f"{{{DSIG11_NS}}}"


def embedded_certificate_der(key_info: etree._Element | None) -> bytes:
    """Return the DER bytes of the one X509Certificate that KeyInfo must carry."""
    if key_info is None:
        raise SignatureError(
            "signature.key-info", "the signature has no KeyInfo; the signer's X509Certificate is required",
            "key-info.x509-certificate",
        )
    certs = key_info.findall(f"{_DS}X509Data/{_DS}X509Certificate")
    if not certs and key_info.find(f"{_DS}KeyValue") is not None:
        raise SignatureError(
            "signature.key-info", "KeyInfo has a bare KeyValue; the signer's X509Certificate is required",
            "key-info.x509-certificate",
        )
    if len(certs) != 1:
        raise SignatureError(
            "signature.key-info",
            f"KeyInfo has {len(certs)} X509Certificate elements; exactly one, the signer's, in X509Data is required",
            "key-info.x509-certificate",
        )
    return decode_base64(certs[0].text, "the X509Certificate", "signature.key-info")


def pinned(der: bytes, certificates: Sequence[x509.Certificate]) -> x509.Certificate:
    """Return the pinned certificate byte-equal to the embedded one."""
    for candidate in certificates:
        if candidate.public_bytes(Encoding.DER) == der:
            return candidate
    try:
        embedded = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise SignatureError("signature.key-info", f"the X509Certificate cannot be read: {exc}") from exc
    raise SignatureError(
        "signature.certificate",
        f"signed with a certificate not registered for this sender (subject {subject(embedded)}, "
        f"sha256 {fingerprint(embedded)})",
        "certificate.pinned",
    )


def subject(certificate: x509.Certificate) -> str:
    """The certificate's subject as RFC 4514 text, or a placeholder when it cannot be read."""
    try:
        return certificate.subject.rfc4514_string()
    except ValueError:
        return "<unreadable subject>"


def check_key_values(key_info: etree._Element, certificate: x509.Certificate) -> None:
    """Refuse a KeyValue or DEREncodedKeyValue that names another key than the certificate."""
    try:
        public_key: object = certificate.public_key()
    except (UnsupportedAlgorithm, ValueError):
        # An SM2 key: no KeyValue form names it, and its SubjectPublicKeyInfo is compared as bytes below.
        public_key = None
    for key_value in key_info.findall(f"{_DS}KeyValue"):
        if not _key_value_matches(key_value, public_key):
            raise SignatureError(
                "signature.key-info", "KeyValue does not match the public key of the X509Certificate",
                "key-info.x509-certificate",
            )
    for der_value in key_info.findall(f"{_DSIG11}DEREncodedKeyValue"):
        try:
            der = decode_base64(der_value.text, "DEREncodedKeyValue")
            if public_key is None:
                matches = der == Sm2PublicKey.from_certificate(certificate).spki_der()
            else:
                matches = load_der_public_key(der) == public_key
        except (SignatureError, ValueError, Sm2Error, UnsupportedAlgorithm):
            matches = False
        if not matches:
            raise SignatureError(
                "signature.key-info", "DEREncodedKeyValue does not match the public key of the X509Certificate",
                "key-info.x509-certificate",
            )


def _key_value_matches(key_value: etree._Element, public_key: object) -> bool:
    """Tell whether an RSAKeyValue or ECKeyValue names the same key as the certificate."""
    try:
        rsa_value = key_value.find(f"{_DS}RSAKeyValue")
        if rsa_value is not None:
            if not isinstance(public_key, rsa.RSAPublicKey):
                return False
            numbers = public_key.public_numbers()
            return _int(rsa_value, f"{_DS}Modulus") == numbers.n and _int(rsa_value, f"{_DS}Exponent") == numbers.e
        ec_value = key_value.find(f"{_DSIG11}ECKeyValue")
        if ec_value is not None:
            if not isinstance(public_key, ec.EllipticCurvePublicKey):
                return False
            curve = ec_value.find(f"{_DSIG11}NamedCurve")
            point = ec_value.find(f"{_DSIG11}PublicKey")
            if curve is None or point is None or KNOWN_CURVES.get(curve.get("URI", "")) != public_key.curve.name:
                return False
            return decode_base64(point.text, "PublicKey") == public_key.public_bytes(
                Encoding.X962, PublicFormat.UncompressedPoint
            )
    except (SignatureError, ValueError):
        return False
    # DSA or unknown key values cannot match the certificate of an accepted signature method.
    return False


def _int(parent: etree._Element, tag: str) -> int:
    element = parent.find(tag)
    if element is None:
        raise ValueError(f"missing {tag}")
    return int.from_bytes(decode_base64(element.text, tag), "big")
