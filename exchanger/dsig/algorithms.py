"""The algorithms the exchange accepts in a signature, and the checks of SignedInfo and its Reference against them."""

from __future__ import annotations

from lxml import etree

from exchanger.dsig.errors import SignatureError
from exchanger.dsig.methods import (  # noqa: F401  (MORE re-exported)
    DIGEST_METHODS,
    MORE,
    NATIONAL_METHODS,
    SIGNATURE_METHODS,
)

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
DSIG11_NS = "http://www.w3.org/2009/xmldsig11#"
EC_NS = "http://www.w3.org/2001/10/xml-exc-c14n#"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"

C14N_1_0 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_1_1 = "http://www.w3.org/2006/12/xml-c14n11"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
WITH_COMMENTS = "#WithComments"
C14N_METHODS = frozenset(
    {
        C14N_1_0,
        C14N_1_0 + WITH_COMMENTS,
        C14N_1_1,
        C14N_1_1 + WITH_COMMENTS,
        EXC_C14N,
        EXC_C14N + WITH_COMMENTS.lstrip("#"),  # this identifier already ends in "#"
    }
)
# When a reference names no c14n transform, XML-DSig says inclusive c14n 1.0 applies; it is also what
# xmlsec1 and other signers use.
DEFAULT_REFERENCE_C14N = C14N_1_0
ACCEPTED_TRANSFORMS = C14N_METHODS | {ENVELOPED}

ACCEPTED_SIGNATURE_METHODS = frozenset(SIGNATURE_METHODS)
ACCEPTED_DIGESTS = frozenset(DIGEST_METHODS)
# The W3C-named methods alone: what other XML-DSig implementations (signxml, xmlsec1) also know.
W3C_SIGNATURE_METHODS = ACCEPTED_SIGNATURE_METHODS - NATIONAL_METHODS
W3C_DIGESTS = ACCEPTED_DIGESTS - NATIONAL_METHODS
KNOWN_CURVES = {
    "urn:oid:1.2.840.10045.3.1.7": "secp256r1",
    "urn:oid:1.3.132.0.34": "secp384r1",
    "urn:oid:1.3.132.0.35": "secp521r1",
}


def check_signed_info(signed_info: etree._Element) -> str:
    """Check the canonicalization and signature algorithms; return the signature method URI."""
    c14n = one_child(signed_info, "CanonicalizationMethod").get("Algorithm", "")
    if c14n not in C14N_METHODS:
        raise SignatureError(
            "signature.algorithm",
            f"canonicalization method {label(c14n)} is not accepted; use exclusive or inclusive c14n",
            "algorithm.accepted-list",
        )
    method = one_child(signed_info, "SignatureMethod").get("Algorithm", "")
    if method not in ACCEPTED_SIGNATURE_METHODS:
        raise SignatureError(
            "signature.algorithm",
            f"signature method {label(method)} is not accepted{why_refused(method)}; "
            f"use {_names(SIGNATURE_METHODS)}",
            "algorithm.accepted-list",
        )
    return method


def only_reference(signed_info: etree._Element) -> etree._Element:
    """Return the one Reference of SignedInfo."""
    references = signed_info.findall(f"{{{DS_NS}}}Reference")
    if len(references) != 1:
        raise SignatureError(
            "signature.reference",
            f"the signature has {len(references)} references; exactly one, URI=\"\" (the whole document), "
            "is accepted",
            "reference.whole-document",
        )
    return references[0]


def check_reference(reference: etree._Element) -> etree._Element | None:
    """Accept only URI="" with enveloped-signature and c14n transforms and a known digest; return the c14n transform."""
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
            "reference.whole-document",
        )
    transforms = reference.find(f"{{{DS_NS}}}Transforms")
    seen: dict[str, etree._Element] = {}
    # Anything but ds:Transform in Transforms is the profile's to refuse, as content nothing names.
    for transform in transforms.iterchildren(f"{{{DS_NS}}}Transform") if transforms is not None else ():
        algorithm = transform.get("Algorithm", "")
        if algorithm not in ACCEPTED_TRANSFORMS:
            raise SignatureError(
                "signature.algorithm",
                f"transform {label(algorithm)} is not accepted; only enveloped-signature and "
                "canonicalization transforms are",
                "algorithm.accepted-list",
            )
        kind = "enveloped" if algorithm == ENVELOPED else "c14n"
        if kind in seen:
            raise SignatureError(
                "signature.algorithm", f"the reference repeats the {kind} transform", "transform.each-once"
            )
        seen[kind] = transform
    digest = one_child(reference, "DigestMethod").get("Algorithm", "")
    if digest not in ACCEPTED_DIGESTS:
        raise SignatureError(
            "signature.algorithm",
            f"digest method {label(digest)} is not accepted{why_refused(digest)}; use {_names(DIGEST_METHODS)}",
            "algorithm.accepted-list",
        )
    if "enveloped" not in seen:
        raise SignatureError(
            "signature.algorithm",
            "the reference has no enveloped-signature transform, so its digest would cover the signature itself; "
            "an enveloped signature over the whole document must name it",
            "transform.enveloped-required",
        )
    if list(seen) == ["c14n", "enveloped"]:
        # Canonicalizing first yields octets that the enveloped-signature transform cannot work on; verifiers
        # that reorder the two silently digest something else than the transforms say.
        raise SignatureError(
            "signature.algorithm",
            "the reference canonicalizes before the enveloped-signature transform; the enveloped-signature "
            "transform must come first",
            "transform.enveloped-first",
        )
    return seen.get("c14n")


def _names(registry: dict) -> str:
    names = [getattr(entry, "short", None) or entry.name for entry in registry.values()]
    return ", ".join(names[:-1]) + " or " + names[-1]


def one_child(parent: etree._Element, name: str, code: str = "signature.invalid") -> etree._Element:
    """Return the one ds:name child of parent; refuse none or several."""
    children = list(parent.iterchildren(f"{{{DS_NS}}}{name}"))
    if len(children) != 1:
        local = etree.QName(parent).localname
        raise SignatureError(
            code, f"ds:{local} must have exactly one ds:{name}, found {len(children)}", "profile.layout"
        )
    return children[0]


def label(uri: str) -> str:
    """Name an algorithm URI briefly, keeping the URI for the unambiguous record."""
    if not uri:
        return "(none given)"
    fragment = uri.rsplit("#", 1)[-1] if "#" in uri else ""
    return f"{fragment} ({uri})" if fragment else uri


def why_refused(uri: str) -> str:
    """Say why a well-known algorithm family is refused, or nothing."""
    lowered = uri.lower()
    if "hmac" in lowered:
        return " (HMAC proves knowledge of a shared secret, not the sender's certificate)"
    if "md5" in lowered:
        return " (MD5 is broken)"
    if "sha1" in lowered:
        return " (SHA-1 is no longer collision-resistant)"
    return ""
