"""Verify a sender's enveloped XML-DSig signature against that sender's pinned certificates."""

from __future__ import annotations

import binascii
import copy
import functools
import hashlib
import hmac
import re
from base64 import b64decode
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.hazmat.primitives.serialization import Encoding, PublicFormat, load_der_public_key
from lxml import etree

from exchanger.errors import ExchangerError
from exchanger.keys.material import fingerprint
from exchanger.xml.parser import parse_untrusted

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
DSIG11_NS = "http://www.w3.org/2009/xmldsig11#"
EC_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

C14N_1_0 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_1_1 = "http://www.w3.org/2006/12/xml-c14n11"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
_WITH_COMMENTS = "#WithComments"
C14N_METHODS = frozenset(
    {
        C14N_1_0,
        C14N_1_0 + _WITH_COMMENTS,
        C14N_1_1,
        C14N_1_1 + _WITH_COMMENTS,
        EXC_C14N,
        EXC_C14N + _WITH_COMMENTS.lstrip("#"),  # this identifier already ends in "#"
    }
)
# When a reference names no c14n transform, XML-DSig says inclusive c14n 1.0 applies; it is also what
# xmlsec1 and other signers use.
DEFAULT_REFERENCE_C14N = C14N_1_0
ACCEPTED_TRANSFORMS = C14N_METHODS | {ENVELOPED}

_MORE = "http://www.w3.org/2001/04/xmldsig-more#"
_SIGNATURE_HASHES: dict[str, type[hashes.HashAlgorithm]] = {
    _MORE + "rsa-sha256": hashes.SHA256,
    _MORE + "rsa-sha384": hashes.SHA384,
    _MORE + "rsa-sha512": hashes.SHA512,
    _MORE + "ecdsa-sha256": hashes.SHA256,
    _MORE + "ecdsa-sha384": hashes.SHA384,
    _MORE + "ecdsa-sha512": hashes.SHA512,
}
_DIGEST_NAMES = {
    "http://www.w3.org/2001/04/xmlenc#sha256": "sha256",
    _MORE + "sha384": "sha384",
    "http://www.w3.org/2001/04/xmlenc#sha512": "sha512",
}
ACCEPTED_SIGNATURE_METHODS = frozenset(_SIGNATURE_HASHES)
ACCEPTED_DIGESTS = frozenset(_DIGEST_NAMES)
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


class SignatureError(ExchangerError):
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


@dataclass(frozen=True)
class Inspected:
    """A signature whose form the exchange accepts, and the pinned certificate it names: not yet shown valid."""

    signature: etree._Element
    signed_info: etree._Element
    signature_method: str
    signature_value: bytes
    c14n_transform: etree._Element | None
    digest_method: str
    digest_value: bytes
    certificate: x509.Certificate


def _refusing_the_unexpected(method):
    """Turn any exception but SignatureError into signature.invalid: hostile input gets a refusal, never a traceback."""

    @functools.wraps(method)
    def guarded(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except SignatureError:
            raise
        except Exception as exc:
            # lxml, base64, cryptography and value errors alike: the signature could not be shown valid.
            raise SignatureError("signature.invalid", f"signature does not verify: {exc}") from exc

    return guarded


class Verifier:
    """Checks enveloped whole-document signatures made with a sender's pinned certificate.

    The cryptography is done directly with lxml's canonicaliser and ``cryptography``: every inbound
    message is verified, and a general-purpose verifier re-serialises and re-parses the document
    several times per signature. The tests check the verdicts on the signed samples and the public
    vectors against signxml's verifier, and interoperability with xmlsec1.
    """

    @_refusing_the_unexpected
    def verify(self, root: etree._Element, certificates: Sequence[x509.Certificate]) -> Verified:
        """Verify root's signature against the sender's certificates; raise SignatureError if refused.

        root is not modified: the digest is taken over a copy, and signed_root is a new tree parsed
        from the canonical bytes that were digested, so it holds nothing unsigned.
        """
        inspected = self.inspect(root, certificates)
        _check_validity(inspected.certificate, datetime.now(timezone.utc))
        _check_signature_value(inspected)
        canonical = _check_digest(root, inspected)
        return Verified(
            signed_root=parse_untrusted(canonical).getroot(),
            certificate=inspected.certificate,
            signature_method=inspected.signature_method,
        )

    @_refusing_the_unexpected
    def inspect(self, root: etree._Element, certificates: Sequence[x509.Certificate]) -> Inspected:
        """Check the signature's form, algorithms and certificate pin; raise SignatureError if refused.

        Nothing cryptographic is checked here: an Inspected signature may still be forged.
        """
        signature = _the_signature(root)
        signed_info = _one_child(signature, "SignedInfo", "signature.invalid")
        signature_method = _check_signed_info(signed_info)
        reference = _only_reference(signed_info)
        c14n_transform = _check_reference(reference)
        _check_nothing_unsigned(signature)
        _check_layout(signature)
        signature_value = _base64_value(signature, "SignatureValue")
        digest_value = _base64_value(reference, "DigestValue")
        key_info = _one_child(signature, "KeyInfo", "signature.key-info")
        pinned = _pinned(_embedded_certificate_der(key_info), certificates)
        _check_key_values(key_info, pinned.public_key())
        return Inspected(
            signature=signature,
            signed_info=signed_info,
            signature_method=signature_method,
            signature_value=signature_value,
            c14n_transform=c14n_transform,
            digest_method=_one_child(reference, "DigestMethod", "signature.invalid").get("Algorithm", ""),
            digest_value=digest_value,
            certificate=pinned,
        )


def _the_signature(root: etree._Element) -> etree._Element:
    """Return the single ds:Signature, which must be a direct child of the root element."""
    if root.getparent() is not None:
        # URI="" covers the whole document, so only the document's own root can be checked against it.
        raise SignatureError("signature.misplaced", "the element given is not the root element of its document")
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


# The XML-DSig schema's sequences for the elements the accepted profile uses ("?" marks an optional one).
_LAYOUT = {
    "Signature": ("SignedInfo", "SignatureValue", "KeyInfo?"),
    "SignedInfo": ("CanonicalizationMethod", "SignatureMethod", "Reference"),
    "Reference": ("Transforms?", "DigestMethod", "DigestValue"),
}


def _check_layout(signature: etree._Element) -> None:
    """Refuse a Signature, SignedInfo or Reference whose children are not the schema's sequence.

    Every other check finds elements by name, so order alone would pass them; xmlsec1 and other
    verifiers read these sequences by position, and a document they would read differently is refused.
    """
    signed_info = signature.find(f"{{{DS_NS}}}SignedInfo")
    references = signed_info.findall(f"{{{DS_NS}}}Reference") if signed_info is not None else []
    for element in (signature, signed_info, *references[:1]):
        if element is None:
            continue
        name = etree.QName(element).localname
        found = [etree.QName(child).localname for child in element if isinstance(child.tag, str)]
        if not _follows(found, _LAYOUT[name]):
            expected = ", ".join(_LAYOUT[name]).replace("?", " (optional)")
            raise SignatureError(
                "signature.invalid",
                f"ds:{name} must hold {expected}, in that order; it holds {', '.join(found) or 'nothing'}",
            )


def _follows(found: list[str], sequence: tuple[str, ...]) -> bool:
    """Tell whether the child names are exactly the sequence, each optional one present or not."""
    position = 0
    for item in sequence:
        name, optional = item.rstrip("?"), item.endswith("?")
        if position < len(found) and found[position] == name:
            position += 1
        elif not optional:
            return False
    return position == len(found)


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


def _base64_value(parent: etree._Element, name: str) -> bytes:
    """Decode the one SignatureValue or DigestValue: plain base64, as xmlsec1 reads it, and nothing else."""
    node = _one_child(parent, name, "signature.invalid")
    # A comment inside would split the text: c14n drops it from SignedInfo, .text would stop at it.
    if len(node) or not _BASE64.match(node.text or ""):
        raise SignatureError("signature.invalid", f"ds:{name} holds characters that are not base64")
    return b64decode("".join((node.text or "").split()), validate=True)


def _check_signed_info(signed_info: etree._Element) -> str:
    """Check the canonicalization and signature algorithms; return the signature method URI."""
    c14n_method = _one_child(signed_info, "CanonicalizationMethod", "signature.invalid")
    _inclusive_prefixes(c14n_method)
    c14n = c14n_method.get("Algorithm", "")
    if c14n not in C14N_METHODS:
        raise SignatureError(
            "signature.algorithm",
            f"canonicalization method {_label(c14n)} is not accepted; use exclusive or inclusive c14n",
        )
    method = _one_child(signed_info, "SignatureMethod", "signature.invalid").get("Algorithm", "")
    if method not in ACCEPTED_SIGNATURE_METHODS:
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


def _check_reference(reference: etree._Element) -> etree._Element | None:
    """Accept only URI="" with enveloped-signature and c14n transforms and a SHA-2 digest; return the c14n transform."""
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
    seen: dict[str, etree._Element] = {}
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
        seen[kind] = transform
        for child in transform:
            # Only exclusive c14n's InclusiveNamespaces may parameterise a transform.
            if isinstance(child.tag, str) and child.tag != f"{{{EC_NS}}}InclusiveNamespaces":
                raise SignatureError(
                    "signature.algorithm", f"transform {_label(algorithm)} carries unexpected {child.tag}"
                )
        _inclusive_prefixes(transform)
    digest = _one_child(reference, "DigestMethod", "signature.invalid").get("Algorithm", "")
    if digest not in ACCEPTED_DIGESTS:
        raise SignatureError(
            "signature.algorithm",
            f"digest method {_label(digest)} is not accepted{_why_refused(digest)}; use sha256, sha384 or sha512",
        )
    if "enveloped" not in seen:
        raise SignatureError(
            "signature.algorithm",
            "the reference has no enveloped-signature transform, so its digest would cover the signature itself; "
            "an enveloped signature over the whole document must name it",
        )
    if list(seen) == ["c14n", "enveloped"]:
        # Canonicalizing first yields octets that the enveloped-signature transform cannot work on; verifiers
        # that reorder the two silently digest something else than the transforms say.
        raise SignatureError(
            "signature.algorithm",
            "the reference canonicalizes before the enveloped-signature transform; the enveloped-signature "
            "transform must come first",
        )
    return seen.get("c14n")


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
    raise SignatureError(
        "signature.certificate",
        f"signed with a certificate not registered for this sender (subject {_subject(embedded)}, "
        f"sha256 {fingerprint(embedded)})",
    )


def _subject(certificate: x509.Certificate) -> str:
    try:
        return certificate.subject.rfc4514_string()
    except ValueError:
        return "<unreadable subject>"


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


def _check_validity(certificate: x509.Certificate, now: datetime) -> None:
    """Refuse a pinned certificate outside its validity period."""
    if now < certificate.not_valid_before_utc:
        problem = f"is not yet valid; it is valid from {certificate.not_valid_before_utc.isoformat()}"
    elif now > certificate.not_valid_after_utc:
        problem = f"has expired; it was valid until {certificate.not_valid_after_utc.isoformat()}"
    else:
        return
    raise SignatureError(
        "signature.certificate",
        f"certificate refused: the certificate of {_subject(certificate)} (sha256 {fingerprint(certificate)}) "
        f"{problem}",
    )


def _check_signature_value(inspected: Inspected) -> None:
    """Verify SignatureValue over the canonical SignedInfo with the pinned certificate's key."""
    c14n_method = _one_child(inspected.signed_info, "CanonicalizationMethod", "signature.invalid")
    with_comments = c14n_method.get("Algorithm", "").endswith(_WITH_COMMENTS)
    signed = _c14n(inspected.signed_info, c14n_method, with_comments)
    method = inspected.signature_method
    algorithm = _SIGNATURE_HASHES[method]()
    key = inspected.certificate.public_key()
    try:
        if method.startswith(_MORE + "rsa-"):
            _require_key(key, rsa.RSAPublicKey, method).verify(
                inspected.signature_value, signed, padding.PKCS1v15(), algorithm
            )
        else:
            ec_key = _require_key(key, ec.EllipticCurvePublicKey, method)
            ec_key.verify(_der_ecdsa(inspected.signature_value, ec_key), signed, ec.ECDSA(algorithm))
    except InvalidSignature:
        raise SignatureError(
            "signature.invalid",
            "signature does not verify: the SignatureValue was not made over SignedInfo with the certificate's key",
        ) from None


def _require_key(key: object, kind: type, method: str):
    """Return key if it is of the kind the signature method needs; refuse it otherwise."""
    if not isinstance(key, kind):
        raise SignatureError(
            "signature.invalid",
            f"signature does not verify: the signature method is {_label(method)} but the certificate "
            f"holds {_key_kind(key)}",
        )
    return key


def _key_kind(key: object) -> str:
    if isinstance(key, rsa.RSAPublicKey):
        return "an RSA key"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return f"an EC key on {key.curve.name}"
    return f"a {type(key).__name__}"


def _der_ecdsa(raw: bytes, key: ec.EllipticCurvePublicKey) -> bytes:
    """Convert XML-DSig's raw r || s to DER; each half must be exactly as long as the curve order."""
    size = (key.curve.key_size + 7) // 8
    if len(raw) != 2 * size:
        raise SignatureError(
            "signature.invalid",
            f"signature does not verify: an ECDSA SignatureValue on {key.curve.name} is {2 * size} bytes, "
            f"this one is {len(raw)}",
        )
    return encode_dss_signature(int.from_bytes(raw[:size], "big"), int.from_bytes(raw[size:], "big"))


def _check_digest(root: etree._Element, inspected: Inspected) -> bytes:
    """Digest the document as the reference's transforms say; return the canonical bytes that were digested."""
    # URI="" selects the document without its comments (XML-DSig 4.4.3.3): a WithComments c14n has none to keep.
    canonical = _c14n(_without_signature(root, inspected.signature), inspected.c14n_transform, with_comments=False)
    digest = hashlib.new(_DIGEST_NAMES[inspected.digest_method], canonical).digest()
    if not hmac.compare_digest(digest, inspected.digest_value):
        raise SignatureError("signature.invalid", _digest_mismatch(root, 'digest mismatch for the reference URI=""'))
    return canonical


def _without_signature(root: etree._Element, signature: etree._Element) -> etree._Element:
    """A copy of root without its ds:Signature: the document as the enveloped-signature transform leaves it."""
    document = copy.deepcopy(root)
    removed = document[root.index(signature)]
    # lxml removes an element's tail with it, but the tail is document text, not part of the signature.
    if removed.tail:
        previous = removed.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + removed.tail
        else:
            document.text = (document.text or "") + removed.tail
    document.remove(removed)
    return document


def _c14n(node: etree._Element, method: etree._Element | None, with_comments: bool) -> bytes:
    """Canonicalize node with the algorithm a CanonicalizationMethod or Transform names, inclusive 1.0 if none."""
    algorithm = method.get("Algorithm", "") if method is not None else DEFAULT_REFERENCE_C14N
    exclusive = algorithm.startswith(EXC_C14N)
    # lxml implements c14n 1.0 only, and signxml uses it for the 1.1 identifiers too: the two differ only in
    # the xml:* attributes a subtree inherits from its ancestors, which lxml carries for neither.
    return etree.tostring(
        node,
        method="c14n",
        exclusive=exclusive,
        with_comments=with_comments,
        inclusive_ns_prefixes=_inclusive_prefixes(method) if exclusive else None,
    )


def _inclusive_prefixes(method: etree._Element | None) -> list[str] | None:
    """The PrefixList of exclusive c14n's InclusiveNamespaces parameter, if the method carries one."""
    if method is None:
        return None
    parameters = list(method.iterchildren(f"{{{EC_NS}}}InclusiveNamespaces"))
    if len(parameters) > 1:
        raise SignatureError(
            "signature.algorithm", f"{_label(method.get('Algorithm', ''))} carries more than one InclusiveNamespaces"
        )
    prefixes = parameters[0].get("PrefixList") if parameters else None
    return prefixes.split() if prefixes is not None else None


def _digest_mismatch(root: etree._Element, detail: str) -> str:
    """Describe a digest mismatch, naming the one known cause that is not tampering."""
    outside = [
        node
        for node in (*root.itersiblings(preceding=True), *root.itersiblings())
        if isinstance(node, etree._ProcessingInstruction)
    ]
    if outside:
        # Per XML-DSig, URI="" covers processing instructions outside the root element (xmlsec1
        # digests them); this verifier, like signxml, digests the root element only, so such documents
        # cannot verify here.
        return (
            f"the digest does not match ({detail}): processing instructions outside the root element "
            "are not supported in signed documents, or the document was changed after it was signed"
        )
    return f"the document was changed after it was signed ({detail})"


def _one_child(parent: etree._Element, name: str, code: str) -> etree._Element:
    children = list(parent.iterchildren(f"{{{DS_NS}}}{name}"))
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

