"""Verify a sender's enveloped XML-DSig signature against that sender's pinned certificates."""

from __future__ import annotations

import hmac
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone

from cryptography import x509
from lxml import etree

from exchanger.dsig.algorithms import (  # noqa: F401  (re-exported: the verifier's public names)
    ACCEPTED_DIGESTS,
    ACCEPTED_SIGNATURE_METHODS,
    ACCEPTED_TRANSFORMS,
    C14N_METHODS,
    DEFAULT_REFERENCE_C14N,
    DS_NS,
    DSIG11_NS,
    EC_NS,
    ENVELOPED,
    MORE,
    W3C_DIGESTS,
    W3C_SIGNATURE_METHODS,
    WITH_COMMENTS,
    check_reference,
    check_signed_info,
    label,
    one_child,
    only_reference,
)
from exchanger.dsig.c14n import canonicalize, check_namespace_uris, without_signature
from exchanger.dsig.encoding import decode_base64
from exchanger.dsig.errors import CODES, SignatureError, refusing_the_unexpected  # noqa: F401
from exchanger.dsig.keyinfo import check_key_values, embedded_certificate_der, pinned, subject
from exchanger.dsig.methods import DIGEST_METHODS, SIGNATURE_METHODS, SignatureSettings, family_of
from exchanger.dsig.profile import check_profile
from exchanger.keys.material import fingerprint
from exchanger.xml.parser import parse_untrusted


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


class Verifier:
    """Checks enveloped whole-document signatures made with a sender's pinned certificate.

    The cryptography is done directly with lxml's canonicaliser and ``cryptography``: every inbound
    message is verified, and a general-purpose verifier re-serialises and re-parses the document
    several times per signature. xmlsec1, the reference implementation, is the tests' judge: every
    signature it refuses is refused here, and every one it accepts is accepted unless a listed rule of
    the exchange's signature profile (SECURITY.md) refuses it. SM2 signatures, which xmlsec1 does not
    know, are judged by the openssl command line.

    ``settings`` holds what a key family needs to know, e.g. the SM2 signer ID and SignatureValue layout.
    """

    def __init__(self, settings: SignatureSettings | None = None) -> None:
        self.settings = settings or SignatureSettings()

    @refusing_the_unexpected
    def verify(self, root: etree._Element, certificates: Sequence[x509.Certificate]) -> Verified:
        """Verify root's signature against the sender's certificates; raise SignatureError if refused.

        root is not modified: the digest is taken over a copy, and signed_root is a new tree parsed
        from the canonical bytes that were digested, so it holds nothing unsigned.
        """
        inspected = self.inspect(root, certificates)
        _check_validity(inspected.certificate, datetime.now(timezone.utc))
        _check_signature_value(inspected, self.settings)
        canonical = _check_digest(root, inspected)
        return Verified(
            signed_root=parse_untrusted(canonical).getroot(),
            certificate=inspected.certificate,
            signature_method=inspected.signature_method,
        )

    @refusing_the_unexpected
    def inspect(self, root: etree._Element, certificates: Sequence[x509.Certificate]) -> Inspected:
        """Check the signature's form, algorithms and certificate pin; raise SignatureError if refused.

        Nothing cryptographic is checked here: an Inspected signature may still be forged.
        """
        signature = _the_signature(root)
        signed_info = one_child(signature, "SignedInfo")
        signature_method = check_signed_info(signed_info)
        reference = only_reference(signed_info)
        c14n_transform = check_reference(reference)
        check_profile(signature)
        check_namespace_uris(root)
        method = SIGNATURE_METHODS[signature_method]
        signature_value = decode_base64(signature.findtext(f"{{{DS_NS}}}SignatureValue"), "ds:SignatureValue")
        # Lengths and layouts first: an SM2 verify costs a millisecond, a length check nothing.
        method.family.check_layout(signature_value, self.settings)
        key_info = signature.find(f"{{{DS_NS}}}KeyInfo")
        certificate = pinned(embedded_certificate_der(key_info), certificates)
        check_key_values(key_info, certificate)
        return Inspected(
            signature=signature,
            signed_info=signed_info,
            signature_method=signature_method,
            signature_value=signature_value,
            c14n_transform=c14n_transform,
            digest_method=one_child(reference, "DigestMethod").get("Algorithm", ""),
            digest_value=decode_base64(reference.findtext(f"{{{DS_NS}}}DigestValue"), "ds:DigestValue"),
            certificate=certificate,
        )


def _the_signature(root: etree._Element) -> etree._Element:
    """Return the single ds:Signature, which must be a direct child of the root element."""
    if root.getparent() is not None:
        # URI="" covers the whole document, so only the document's own root can be checked against it.
        raise SignatureError(
            "signature.misplaced", "the element given is not the root element of its document", "placement.enveloped"
        )
    signatures = list(root.iter(f"{{{DS_NS}}}Signature"))
    if not signatures:
        raise SignatureError("signature.missing", "the document carries no ds:Signature")
    if len(signatures) > 1:
        raise SignatureError(
            "signature.multiple",
            f"the document carries {len(signatures)} ds:Signature elements; "
            "exactly one, as a direct child of the root element, is accepted",
            "placement.one-signature",
        )
    signature = signatures[0]
    if signature is root:
        raise SignatureError(
            "signature.misplaced",
            "the document is itself a ds:Signature (enveloping); an enveloped signature is required",
            "placement.enveloped",
        )
    if signature.getparent() is not root:
        where = root.getroottree().getpath(signature)
        raise SignatureError(
            "signature.misplaced",
            f"the ds:Signature is at {where}; it must be a direct child of the root element",
            "placement.enveloped",
        )
    return signature


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
        f"certificate refused: the certificate of {subject(certificate)} (sha256 {fingerprint(certificate)}) "
        f"{problem}",
        "certificate.validity",
    )


def _check_signature_value(inspected: Inspected, settings: SignatureSettings) -> None:
    """Verify SignatureValue over the canonical SignedInfo with the pinned certificate's key."""
    method = SIGNATURE_METHODS[inspected.signature_method]
    # The key's family and the value's length first: both cost nothing next to the signature check.
    _check_key_family(method, inspected.certificate)
    method.family.check_value(inspected.signature_value, inspected.certificate)
    c14n_method = one_child(inspected.signed_info, "CanonicalizationMethod")
    with_comments = c14n_method.get("Algorithm", "").endswith(WITH_COMMENTS)
    signed = canonicalize(inspected.signed_info, c14n_method, with_comments)
    if not method.family.verify(inspected.certificate, signed, inspected.signature_value, method.hash_name, settings):
        raise SignatureError(
            "signature.invalid",
            "signature does not verify: the SignatureValue was not made over SignedInfo with the certificate's key",
        )


def _check_key_family(method, certificate: x509.Certificate) -> None:
    """Refuse a signature method whose key family the pinned certificate does not hold (SM2 with RSA, say)."""
    if method.family.holds(certificate):
        return
    held = family_of(certificate)
    raise SignatureError(
        "signature.invalid",
        f"signature does not verify: the signature method is {label(method.uri)}, which needs an "
        f"{method.family.name} key, but the certificate holds {_key_kind(certificate, held)}",
    )


def _key_kind(certificate: x509.Certificate, family) -> str:
    if family is None:
        return "a key of a kind the exchange does not sign with"
    if family.name == "ECDSA":
        return f"an EC key on {certificate.public_key().curve.name}"
    return f"an {family.name} key"


def _check_digest(root: etree._Element, inspected: Inspected) -> bytes:
    """Digest the document as the reference's transforms say; return the canonical bytes that were digested."""
    # URI="" selects the document without its comments (XML-DSig 4.4.3.3): a WithComments c14n has none to keep.
    document = without_signature(root, inspected.signature)
    canonical = canonicalize(document, inspected.c14n_transform, with_comments=False)
    digest = DIGEST_METHODS[inspected.digest_method].digest(canonical)
    if not hmac.compare_digest(digest, inspected.digest_value):
        raise SignatureError("signature.invalid", _digest_mismatch(root, 'digest mismatch for the reference URI=""'))
    return canonical


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
