"""Verify a sender's enveloped XML-DSig signature against that sender's pinned certificates."""

from __future__ import annotations

import binascii
import re
from base64 import b64decode
from collections.abc import Sequence
from dataclasses import dataclass

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    InvalidCertificate,
    InvalidDigest,
    SignatureConfiguration,
    SignatureMethod,
    XMLVerifier,
)

from exchanger.keys.material import fingerprint

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
DSIG11_NS = "http://www.w3.org/2009/xmldsig11#"
EC_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

ACCEPTED_SIGNATURE_METHODS = frozenset(
    {
        SignatureMethod.RSA_SHA256,
        SignatureMethod.RSA_SHA384,
        SignatureMethod.RSA_SHA512,
        SignatureMethod.ECDSA_SHA256,
        SignatureMethod.ECDSA_SHA384,
        SignatureMethod.ECDSA_SHA512,
    }
)
ACCEPTED_DIGESTS = frozenset({DigestAlgorithm.SHA256, DigestAlgorithm.SHA384, DigestAlgorithm.SHA512})
C14N_METHODS = frozenset(method.value for method in CanonicalizationMethod)
ACCEPTED_TRANSFORMS = C14N_METHODS | {ENVELOPED}
_SIGNATURE_URIS = frozenset(method.value for method in ACCEPTED_SIGNATURE_METHODS)
_DIGEST_URIS = frozenset(digest.value for digest in ACCEPTED_DIGESTS)
_KEY_INFO_CHILDREN = frozenset(
    {f"{{{DS_NS}}}X509Data", f"{{{DS_NS}}}KeyValue", f"{{{DS_NS}}}KeyName", f"{{{DSIG11_NS}}}DEREncodedKeyValue"}
)
_SIGNATURE_CHILDREN = frozenset({f"{{{DS_NS}}}SignedInfo", f"{{{DS_NS}}}SignatureValue", f"{{{DS_NS}}}KeyInfo"})
_SIGNATURE_NAMESPACES = frozenset({DS_NS, DSIG11_NS, EC_NS})
_KNOWN_CURVES = {
    "urn:oid:1.2.840.10045.3.1.7": "secp256r1",
    "urn:oid:1.3.132.0.34": "secp384r1",
    "urn:oid:1.3.132.0.35": "secp521r1",
}

CODES = (
    "signature.missing",
    "signature.misplaced",
    "signature.multiple",
    "signature.algorithm",
    "signature.reference",
    "signature.key-info",
    "signature.certificate",
    "signature.invalid",
    "signature.unsigned-content",
)


class SignatureError(Exception):
    """A signature the exchange refuses: a short code (one of CODES) and a message for the sender."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"SignatureError({self.code!r}, {self.message!r})"


@dataclass(frozen=True)
class Verified:
    """What a valid signature covers, who made it, and how."""

    signed_root: etree._Element
    certificate: x509.Certificate
    signature_method: str


class Verifier:
    """Checks enveloped whole-document signatures made with a sender's pinned certificate."""

    def __init__(self) -> None:
        self._config = SignatureConfiguration(
            require_x509=True,
            location="./",
            expect_references=1,
            signature_methods=ACCEPTED_SIGNATURE_METHODS,
            digest_algorithms=ACCEPTED_DIGESTS,
            # When a reference names no c14n transform, XML-DSig says inclusive c14n 1.0 applies
            # (signxml would default to 1.1); 1.0 is what xmlsec1 and other signers use.
            default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0,
        )

    def verify(self, root: etree._Element, certificates: Sequence[x509.Certificate]) -> Verified:
        """Verify root's signature against the sender's certificates; raise SignatureError if refused.

        root is not modified: signxml serialises and re-parses it, and signed_root is a new tree
        rebuilt from the canonical bytes that were digested, so it holds nothing unsigned.
        """
        signature = _the_signature(root)
        signed_info = _one_child(signature, "SignedInfo", "signature.invalid")
        signature_method = _check_signed_info(signed_info)
        _check_reference(_only_reference(signed_info))
        _check_nothing_unsigned(signature)
        _check_base64(signature)
        key_info = _one_child(signature, "KeyInfo", "signature.key-info")
        pinned = _pinned(_embedded_certificate_der(key_info), certificates)
        _check_key_values(key_info, pinned.public_key())

        # XMLVerifier keeps the settings of the call in progress on the instance; a fresh one per
        # call costs nothing and keeps verify() safe to call from several threads.
        try:
            result = XMLVerifier().verify(root, x509_cert=pinned, expect_config=self._config)
        except InvalidCertificate as exc:
            raise SignatureError("signature.certificate", f"certificate refused: {exc}") from exc
        except InvalidDigest as exc:
            raise SignatureError("signature.invalid", _digest_mismatch(root, exc)) from exc
        except Exception as exc:
            # On hostile input signxml fails with its own errors but also with plain lxml, base64 and
            # value errors; whichever it is, the signature could not be shown valid.
            raise SignatureError("signature.invalid", f"signature does not verify: {exc}") from exc

        signed_root = result.signed_xml
        if signed_root is None or signed_root.tag != root.tag:
            raise SignatureError(
                "signature.reference", "the signature does not cover the document's root element"
            )
        return Verified(signed_root=signed_root, certificate=pinned, signature_method=signature_method)


def _the_signature(root: etree._Element) -> etree._Element:
    """Return the single ds:Signature, which must be a direct child of the root element."""
    signatures = list(root.iter(f"{{{DS_NS}}}Signature"))
    if not signatures:
        raise SignatureError("signature.missing", "the document carries no ds:Signature")
    if len(signatures) > 1:
        raise SignatureError(
            "signature.multiple",
            f"the document carries {len(signatures)} ds:Signature elements; "
            "exactly one, as a direct child of the root element, is accepted",
        )
    signature = signatures[0]
    if signature is root:
        raise SignatureError(
            "signature.misplaced",
            "the document is itself a ds:Signature (enveloping); an enveloped signature is required",
        )
    if signature.getparent() is not root:
        where = root.getroottree().getpath(signature)
        raise SignatureError(
            "signature.misplaced",
            f"the ds:Signature is at {where}; it must be a direct child of the root element",
        )
    return signature


def _check_nothing_unsigned(signature: etree._Element) -> None:
    """Refuse content carried inside the signature, where the enveloped-signature transform leaves it unsigned.

    A ds:Object (or a foreign element in KeyInfo) would travel to receivers byte for byte with the
    signed document while no signature covers it: the classic place to hide a second, forged document.
    """
    for child in signature:
        if isinstance(child.tag, str) and child.tag not in _SIGNATURE_CHILDREN:
            raise SignatureError(
                "signature.unsigned-content",
                f"ds:Signature carries {child.tag}, which no reference covers; only SignedInfo, SignatureValue "
                "and KeyInfo are accepted",
            )
    for element in signature.iter():
        tag = element.tag
        if not isinstance(tag, str):
            continue  # comments and processing instructions
        namespace = tag[1 : tag.index("}")] if tag.startswith("{") else ""
        if namespace not in _SIGNATURE_NAMESPACES:
            raise SignatureError(
                "signature.unsigned-content",
                f"ds:Signature contains the foreign element {tag}; only XML-DSig elements are accepted in it",
            )


_BASE64 = re.compile(r"^[A-Za-z0-9+/\s]*={0,2}\s*$")


def _check_base64(signature: etree._Element) -> None:
    """SignatureValue and DigestValue must be plain base64: lenient decoders skip junk that xmlsec1 refuses."""
    for name in ("SignatureValue", "SignedInfo/ds:Reference/ds:DigestValue"):
        for node in signature.iterfind(f"ds:{name}", namespaces={"ds": DS_NS}):
            if not _BASE64.match(node.text or ""):
                raise SignatureError(
                    "signature.invalid", f"ds:{name.rsplit(':', 1)[-1]} holds characters that are not base64"
                )


def _check_signed_info(signed_info: etree._Element) -> str:
    """Check the canonicalization and signature algorithms; return the signature method URI."""
    c14n = _one_child(signed_info, "CanonicalizationMethod", "signature.invalid").get("Algorithm", "")
    if c14n not in C14N_METHODS:
        raise SignatureError(
            "signature.algorithm",
            f"canonicalization method {_label(c14n)} is not accepted; use exclusive or inclusive c14n",
        )
    method = _one_child(signed_info, "SignatureMethod", "signature.invalid").get("Algorithm", "")
    if method not in _SIGNATURE_URIS:
        raise SignatureError(
            "signature.algorithm",
            f"signature method {_label(method)} is not accepted{_why_refused(method)}; "
            "use rsa-sha256/384/512 or ecdsa-sha256/384/512",
        )
    return method


def _only_reference(signed_info: etree._Element) -> etree._Element:
    references = signed_info.findall(f"{{{DS_NS}}}Reference")
    if len(references) != 1:
        raise SignatureError(
            "signature.reference",
            f"the signature has {len(references)} references; exactly one, URI=\"\" (the whole document), "
            "is accepted",
        )
    return references[0]


def _check_reference(reference: etree._Element) -> None:
    """Accept only URI="" with enveloped-signature and c14n transforms and a SHA-2 digest."""
    uri = reference.get("URI")
    if uri != "":
        if uri is None:
            what = "has no URI"
        elif uri.startswith("#xpointer("):
            what = f"is an XPointer ({uri})"
        elif uri.startswith("#"):
            what = f"points at one element ({uri})"
        else:
            what = f"points outside the document ({uri})"
        raise SignatureError(
            "signature.reference",
            f'the signature reference {what}; only URI="" (the whole document) is accepted',
        )
    transforms = reference.findall(f"{{{DS_NS}}}Transforms")
    if len(transforms) > 1:
        raise SignatureError("signature.invalid", "the reference has more than one Transforms element")
    seen: list[str] = []
    for transform in transforms[0].iterchildren() if transforms else ():
        if not isinstance(transform.tag, str):
            continue  # comments and processing instructions between transforms
        algorithm = transform.get("Algorithm", "")
        if transform.tag != f"{{{DS_NS}}}Transform" or algorithm not in ACCEPTED_TRANSFORMS:
            raise SignatureError(
                "signature.algorithm",
                f"transform {_label(algorithm)} is not accepted; only enveloped-signature and "
                "canonicalization transforms are",
            )
        kind = "enveloped" if algorithm == ENVELOPED else "c14n"
        if kind in seen:
            raise SignatureError("signature.algorithm", f"the reference repeats the {kind} transform")
        seen.append(kind)
        for child in transform:
            # Only exclusive c14n's InclusiveNamespaces may parameterise a transform.
            if isinstance(child.tag, str) and child.tag != f"{{{EC_NS}}}InclusiveNamespaces":
                raise SignatureError(
                    "signature.algorithm", f"transform {_label(algorithm)} carries unexpected {child.tag}"
                )
    digest = _one_child(reference, "DigestMethod", "signature.invalid").get("Algorithm", "")
    if digest not in _DIGEST_URIS:
        raise SignatureError(
            "signature.algorithm",
            f"digest method {_label(digest)} is not accepted{_why_refused(digest)}; use sha256, sha384 or sha512",
        )


def _embedded_certificate_der(key_info: etree._Element) -> bytes:
    """Return the DER bytes of the one X509Certificate that KeyInfo must carry."""
    for child in key_info:
        if isinstance(child.tag, str) and child.tag not in _KEY_INFO_CHILDREN:
            raise SignatureError("signature.key-info", f"KeyInfo child {child.tag} is not accepted")
    everywhere = list(key_info.iter(f"{{{DS_NS}}}X509Certificate"))
    certs = key_info.findall(f"{{{DS_NS}}}X509Data/{{{DS_NS}}}X509Certificate")
    if not everywhere and key_info.find(f"{{{DS_NS}}}KeyValue") is not None:
        raise SignatureError(
            "signature.key-info", "KeyInfo has a bare KeyValue; the signer's X509Certificate is required"
        )
    if len(everywhere) != 1 or len(certs) != 1:
        raise SignatureError(
            "signature.key-info",
            f"KeyInfo has {len(everywhere)} X509Certificate elements; exactly one, the signer's, "
            "in X509Data is required",
        )
    try:
        return b64decode("".join((certs[0].text or "").split()), validate=True)
    except binascii.Error as exc:
        raise SignatureError("signature.key-info", f"the X509Certificate is not base64: {exc}") from exc


def _pinned(der: bytes, certificates: Sequence[x509.Certificate]) -> x509.Certificate:
    """Return the pinned certificate byte-equal to the embedded one."""
    for candidate in certificates:
        if candidate.public_bytes(Encoding.DER) == der:
            return candidate
    try:
        embedded = x509.load_der_x509_certificate(der)
    except ValueError as exc:
        raise SignatureError("signature.key-info", f"the X509Certificate cannot be read: {exc}") from exc
    try:
        subject = embedded.subject.rfc4514_string()
    except ValueError:
        subject = "<unreadable subject>"
    raise SignatureError(
        "signature.certificate",
        f"signed with a certificate not registered for this sender (subject {subject}, "
        f"sha256 {fingerprint(embedded)})",
    )


def _check_key_values(key_info: etree._Element, public_key: object) -> None:
    """Refuse a KeyValue or DEREncodedKeyValue that names another key than the certificate."""
    for key_value in key_info.findall(f"{{{DS_NS}}}KeyValue"):
        if not _key_value_matches(key_value, public_key):
            raise SignatureError(
                "signature.key-info", "KeyValue does not match the public key of the X509Certificate"
            )
    for der_value in key_info.findall(f"{{{DSIG11_NS}}}DEREncodedKeyValue"):
        try:
            matches = load_der_public_key(b64decode(der_value.text or "")) == public_key
        except (binascii.Error, ValueError):
            matches = False
        if not matches:
            raise SignatureError(
                "signature.key-info", "DEREncodedKeyValue does not match the public key of the X509Certificate"
            )


def _key_value_matches(key_value: etree._Element, public_key: object) -> bool:
    """Tell whether an RSAKeyValue or ECKeyValue names the same key as the certificate."""
    try:
        rsa_value = key_value.find(f"{{{DS_NS}}}RSAKeyValue")
        if rsa_value is not None:
            if not isinstance(public_key, rsa.RSAPublicKey):
                return False
            numbers = public_key.public_numbers()
            return _int(rsa_value, f"{{{DS_NS}}}Modulus") == numbers.n and (
                _int(rsa_value, f"{{{DS_NS}}}Exponent") == numbers.e
            )
        ec_value = key_value.find(f"{{{DSIG11_NS}}}ECKeyValue")
        if ec_value is not None:
            if not isinstance(public_key, ec.EllipticCurvePublicKey):
                return False
            curve = ec_value.find(f"{{{DSIG11_NS}}}NamedCurve")
            point = ec_value.find(f"{{{DSIG11_NS}}}PublicKey")
            if curve is None or point is None or _KNOWN_CURVES.get(curve.get("URI", "")) != public_key.curve.name:
                return False
            return b64decode(point.text or "") == public_key.public_bytes(
                Encoding.X962, PublicFormat.UncompressedPoint
            )
    except (binascii.Error, ValueError):
        return False
    # DSA or unknown key values cannot match the certificate of an accepted signature method.
    return False


def _digest_mismatch(root: etree._Element, exc: Exception) -> str:
    """Describe a digest mismatch, naming the one known cause that is not tampering."""
    outside = [
        node
        for node in (*root.itersiblings(preceding=True), *root.itersiblings())
        if isinstance(node, etree._ProcessingInstruction)
    ]
    if outside:
        # Per XML-DSig, URI="" covers processing instructions outside the root element (xmlsec1
        # digests them); signxml digests the root element only, so such documents cannot verify here.
        return (
            f"the digest does not match ({exc}): processing instructions outside the root element "
            "are not supported in signed documents, or the document was changed after it was signed"
        )
    return f"the document was changed after it was signed ({exc})"


def _one_child(parent: etree._Element, name: str, code: str) -> etree._Element:
    children = parent.findall(f"{{{DS_NS}}}{name}")
    if len(children) != 1:
        local = etree.QName(parent).localname
        raise SignatureError(code, f"ds:{local} must have exactly one ds:{name}, found {len(children)}")
    return children[0]


def _int(parent: etree._Element, tag: str) -> int:
    element = parent.find(tag)
    if element is None:
        raise ValueError(f"missing {tag}")
    return int.from_bytes(b64decode("".join((element.text or "").split())), "big")


def _label(uri: str) -> str:
    """Name an algorithm URI briefly, keeping the URI for the unambiguous record."""
    if not uri:
        return "(none given)"
    fragment = uri.rsplit("#", 1)[-1] if "#" in uri else ""
    return f"{fragment} ({uri})" if fragment else uri


def _why_refused(uri: str) -> str:
    lowered = uri.lower()
    if "hmac" in lowered:
        return " (HMAC proves knowledge of a shared secret, not the sender's certificate)"
    if "md5" in lowered:
        return " (MD5 is broken)"
    if "sha1" in lowered:
        return " (SHA-1 is no longer collision-resistant)"
    return ""

