"""The strict shape of an accepted ds:Signature: every element, attribute and text node in it accounted for.

The enveloped-signature transform leaves the whole ds:Signature out of the digest, and SignedInfo is
the only part the signature value covers. Anything else inside the signature would travel to
receivers byte for byte beside the signed document with nothing vouching for it, so the profile
names each element the exchange accepts, its attributes, its children and its text, and refuses the
rest. The walk stops at the first surprise and never descends into an element it does not know, so
it visits a few dozen nodes at most whatever the input.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from exchanger.dsig.algorithms import DS_NS, DSIG11_NS, EC_NS, EXC_C14N
from exchanger.dsig.encoding import decode_base64
from exchanger.dsig.errors import SignatureError

_DS = f"{{{DS_NS}}}"
_DSIG11 = f"{{{DSIG11_NS}}}"
_INCLUSIVE_NAMESPACES = f"{{{EC_NS}}}InclusiveNamespaces"
_SIGNATURE_NAMESPACES = frozenset({DS_NS, DSIG11_NS, EC_NS})
_WHITESPACE = dict.fromkeys(map(ord, " \t\r\n"))

# Whitespace between elements is not signed either; pretty-printing needs a few dozen characters.
MAX_WHITESPACE = 1024
# A KeyName is a label for the key, not a place for content: short, and without markup characters.
MAX_KEY_NAME = 64
_KEY_NAME_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._:@/+=,()-")
MAX_ID = 64
_ID_CHARACTERS = frozenset("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789._-")
MAX_PREFIX_LIST = 512
MAX_URI = 64

NONE, BASE64, KEY_NAME = "none", "base64", "key-name"


@dataclass(frozen=True)
class Shape:
    """What one element of the profile may hold: attributes, children (in order unless unordered), text."""

    attributes: frozenset[str] = frozenset()
    children: tuple[tuple[str, int, int], ...] = ()  # (tag, at least, at most)
    text: str = NONE
    unordered: bool = False


def _children(*spec: tuple[str, int, int]) -> tuple[tuple[str, int, int], ...]:
    return spec


SHAPES: dict[str, Shape] = {
    _DS + "Signature": Shape(
        frozenset({"Id"}),
        _children((_DS + "SignedInfo", 1, 1), (_DS + "SignatureValue", 1, 1), (_DS + "KeyInfo", 0, 1)),
    ),
    _DS + "SignedInfo": Shape(
        frozenset({"Id"}),
        _children(
            (_DS + "CanonicalizationMethod", 1, 1), (_DS + "SignatureMethod", 1, 1), (_DS + "Reference", 1, 1)
        ),
    ),
    _DS + "CanonicalizationMethod": Shape(frozenset({"Algorithm"}), _children((_INCLUSIVE_NAMESPACES, 0, 1))),
    _DS + "SignatureMethod": Shape(frozenset({"Algorithm"})),
    _DS + "Reference": Shape(
        frozenset({"URI", "Id"}),
        _children((_DS + "Transforms", 0, 1), (_DS + "DigestMethod", 1, 1), (_DS + "DigestValue", 1, 1)),
    ),
    _DS + "Transforms": Shape(children=_children((_DS + "Transform", 1, 2))),
    _DS + "Transform": Shape(frozenset({"Algorithm"}), _children((_INCLUSIVE_NAMESPACES, 0, 1))),
    _INCLUSIVE_NAMESPACES: Shape(frozenset({"PrefixList"})),
    _DS + "DigestMethod": Shape(frozenset({"Algorithm"})),
    _DS + "DigestValue": Shape(text=BASE64),
    _DS + "SignatureValue": Shape(frozenset({"Id"}), text=BASE64),
    _DS + "KeyInfo": Shape(
        frozenset({"Id"}),
        _children(
            (_DS + "X509Data", 0, 1),
            (_DS + "KeyValue", 0, 1),
            (_DSIG11 + "DEREncodedKeyValue", 0, 1),
            (_DS + "KeyName", 0, 1),
        ),
        unordered=True,
    ),
    _DS + "X509Data": Shape(children=_children((_DS + "X509Certificate", 1, 1))),
    _DS + "X509Certificate": Shape(text=BASE64),
    _DS + "KeyName": Shape(text=KEY_NAME),
    _DS + "KeyValue": Shape(children=_children((_DS + "RSAKeyValue", 0, 1), (_DSIG11 + "ECKeyValue", 0, 1))),
    _DS + "RSAKeyValue": Shape(children=_children((_DS + "Modulus", 1, 1), (_DS + "Exponent", 1, 1))),
    _DS + "Modulus": Shape(text=BASE64),
    _DS + "Exponent": Shape(text=BASE64),
    _DSIG11 + "ECKeyValue": Shape(
        frozenset({"Id"}), _children((_DSIG11 + "NamedCurve", 1, 1), (_DSIG11 + "PublicKey", 1, 1))
    ),
    _DSIG11 + "NamedCurve": Shape(frozenset({"URI"})),
    _DSIG11 + "PublicKey": Shape(text=BASE64),
    _DSIG11 + "DEREncodedKeyValue": Shape(frozenset({"Id"}), text=BASE64),
}

# Key sources XML-DSig defines that the profile does not take: refused as KeyInfo problems, not as smuggling.
_OTHER_KEY_SOURCES = frozenset(
    {_DS + "RetrievalMethod", _DS + "PGPData", _DS + "SPKIData", _DS + "MgmtData", _DSIG11 + "KeyInfoReference"}
)
_IN_KEY_INFO = frozenset(
    {_DS + "KeyInfo", _DS + "X509Data", _DS + "KeyValue", _DS + "RSAKeyValue", _DSIG11 + "ECKeyValue"}
)
# Values whose base64 is refused as a key problem, not a signature problem.
_KEY_VALUES = frozenset(
    {_DS + "X509Certificate", _DS + "Modulus", _DS + "Exponent", _DSIG11 + "PublicKey", _DSIG11 + "DEREncodedKeyValue"}
)


def check_profile(signature: etree._Element) -> None:
    """Refuse a ds:Signature holding anything the profile does not name, in a shape it does not name."""
    parent = signature.getparent()
    pending = [(signature, parent.nsmap if parent is not None else {})]
    while pending:
        element, inherited = pending.pop()
        shape = SHAPES[element.tag]
        _check_attributes(element, shape)
        in_scope = _check_namespaces(element, inherited)
        children = list(element)
        for child in children:
            if not isinstance(child.tag, str):
                kind = "a comment" if isinstance(child, etree._Comment) else "a processing instruction"
                _unsigned(element, f"{kind} (none is accepted in a signature)", "profile.comment")
        if shape.text == NONE:
            _check_whitespace(element, element.text)
            for child in children:
                _check_whitespace(element, child.tail)
            _check_children(element, shape, children)
            pending.extend((child, in_scope) for child in reversed(children))
        else:
            if children:
                _unsigned(element, f"the element {children[0].tag}; it holds a value only", "profile.element")
            _check_value(element, shape.text)


def _name(element: etree._Element) -> str:
    qname = etree.QName(element)
    return f"ds:{qname.localname}" if qname.namespace in _SIGNATURE_NAMESPACES else element.tag


def _unsigned(element: etree._Element, what: str, policy: str) -> None:
    raise SignatureError(
        "signature.unsigned-content",
        f"{_name(element)} in the signature carries {what}; the signature may hold only what the exchange's "
        "signature profile names",
        policy,
    )


def _check_namespaces(element: etree._Element, inherited: dict) -> dict:
    """Refuse a namespace declaration in the signature other than XML-DSig's own; return those in scope."""
    in_scope = element.nsmap
    for prefix, uri in in_scope.items():
        if inherited.get(prefix) != uri and uri not in _SIGNATURE_NAMESPACES:
            declared = f'xmlns{":" + prefix if prefix else ""}="{uri[:80]}"'
            _unsigned(element, f"the namespace declaration {declared}", "profile.namespace")
    if any(prefix not in in_scope for prefix in inherited):
        _unsigned(element, 'a namespace undeclaration (xmlns="")', "profile.namespace")
    return in_scope


def _check_attributes(element: etree._Element, shape: Shape) -> None:
    for key, value in element.attrib.items():
        if key not in shape.attributes:
            _unsigned(element, f"the attribute {key}", "profile.attribute")
        limit, allowed = _ATTRIBUTE_RULES[key]
        if len(value) > limit or (allowed is not None and not set(value) <= allowed):
            what = f"a {key} attribute that is not a short identifier ({len(value)} characters)"
            _unsigned(element, what, "profile.attribute")
    if element.tag == _INCLUSIVE_NAMESPACES and not element.getparent().get("Algorithm", "").startswith(EXC_C14N):
        _unsigned(element, "an InclusiveNamespaces parameter, which only exclusive c14n takes", "profile.element")


_PREFIX_LIST_CHARACTERS = _ID_CHARACTERS | frozenset("# \t\r\n")
_ATTRIBUTE_RULES = {
    "Id": (MAX_ID, _ID_CHARACTERS),
    "PrefixList": (MAX_PREFIX_LIST, _PREFIX_LIST_CHARACTERS),
    "URI": (MAX_URI, None),  # Reference's must be "" and NamedCurve's a known curve: both checked exactly later
    "Algorithm": (MAX_URI, None),  # checked against the accepted algorithms
}


def _check_whitespace(element: etree._Element, text: str | None) -> None:
    if not text:
        return
    if text.translate(_WHITESPACE):
        _unsigned(element, f"text where only markup belongs ({text.strip()[:40]!r}…)", "profile.text")
    if len(text) > MAX_WHITESPACE:
        what = f"{len(text)} characters of whitespace (at most {MAX_WHITESPACE} between elements)"
        _unsigned(element, what, "profile.whitespace")


def _check_children(element: etree._Element, shape: Shape, children: list[etree._Element]) -> None:
    allowed = {tag: (least, most) for tag, least, most in shape.children}
    found = [child.tag for child in children]
    for child in children:
        if child.tag not in allowed:
            if child.tag in _OTHER_KEY_SOURCES:
                raise SignatureError(
                    "signature.key-info",
                    f"KeyInfo child {child.tag} is not accepted; KeyInfo must carry the signer's X509Certificate",
                    "key-info.x509-certificate",
                )
            _unsigned(element, f"the element {_name(child)}", "profile.element")
    if shape.unordered:
        counts_fine = all(least <= found.count(tag) <= most for tag, (least, most) in allowed.items())
        if counts_fine:
            return
    elif _follows(found, shape.children):
        return
    code = "signature.key-info" if element.tag in _IN_KEY_INFO else "signature.invalid"
    expected = ", ".join(
        f"{etree.QName(tag).localname}{'' if least else ' (optional)'}{'' if most == 1 else f' (up to {most})'}"
        for tag, least, most in shape.children
    )
    runs: list[list] = []
    for tag in found:
        if runs and runs[-1][0] == tag:
            runs[-1][1] += 1
        else:
            runs.append([tag, 1])
    holds = ", ".join(f"{'' if n == 1 else f'{n} '}{etree.QName(tag).localname}" for tag, n in runs) or "nothing"
    order = "" if shape.unordered else ", in that order"
    raise SignatureError(
        code, f"{_name(element)} must hold {expected}{order}; it holds {holds}", "profile.layout"
    )


def _follows(found: list[str], sequence: tuple[tuple[str, int, int], ...]) -> bool:
    """Tell whether the child tags are the sequence, each present between its least and most times."""
    position = 0
    for tag, least, most in sequence:
        count = 0
        while position < len(found) and found[position] == tag and count < most:
            position += 1
            count += 1
        if count < least:
            return False
    return position == len(found)


def _check_value(element: etree._Element, kind: str) -> None:
    text = element.text or ""
    if kind == BASE64:
        code = "signature.key-info" if element.tag in _KEY_VALUES else "signature.invalid"
        value = decode_base64(text, _name(element), code)
        # Line breaks every 64 or 76 characters, with indentation, are far below this; a value padded with
        # whitespace would carry unsigned bytes all the same.
        spaces = len(text) - (len(value) + 2) // 3 * 4
        if spaces > MAX_WHITESPACE + len(text) // 2:
            _unsigned(element, f"{spaces} characters of whitespace inside its value", "profile.whitespace")
    elif len(text) > MAX_KEY_NAME or not set(text) <= _KEY_NAME_CHARACTERS:
        _unsigned(
            element,
            f"{len(text)} characters that are not a short key label (at most {MAX_KEY_NAME} letters, digits, "
            "spaces and ._:@/+=,()-)",
            "profile.key-name",
        )
