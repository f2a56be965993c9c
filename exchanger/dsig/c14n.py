"""Canonicalize SignedInfo and the signed document as XML-DSig says, sub-trees included."""

from __future__ import annotations

import copy

from lxml import etree

from exchanger.dsig.algorithms import C14N_1_0, C14N_1_1, DEFAULT_REFERENCE_C14N, EC_NS, EXC_C14N, label
from exchanger.dsig.errors import SignatureError

XML_NS = "http://www.w3.org/XML/1998/namespace"
# The xml:* attributes an inclusive c14n of a sub-tree carries over from the ancestors left out of it:
# c14n 1.0 takes them all; c14n 1.1 no longer takes xml:id and fixes xml:base up instead (section 2.4).
_INHERITED = {
    C14N_1_0: ("lang", "space", "base", "id"),
    C14N_1_1: ("lang", "space", "base"),
}


def canonicalize(node: etree._Element, method: etree._Element | None, with_comments: bool) -> bytes:
    """Canonicalize node with the algorithm a CanonicalizationMethod or Transform names, inclusive 1.0 if none.

    A node that is not its document's root (SignedInfo) is first copied into a document of its own,
    with the namespaces in scope declared on its copy and, for inclusive c14n, the xml:* attributes it
    inherits: lxml's c14n of a sub-tree writes ``xmlns=""`` on descendants under an inherited default
    namespace, which no other verifier does. A whole document needs no copy.
    """
    algorithm = method.get("Algorithm", "") if method is not None else DEFAULT_REFERENCE_C14N
    exclusive = algorithm.startswith(EXC_C14N)
    if node.getparent() is not None:
        node = _apex(node, () if exclusive else _inherited_xml_attributes(node, algorithm))
    # The whole-document c14n of lxml is c14n 1.0; 1.1 differs from it only for document subsets,
    # which _apex has already turned into a whole document.
    return etree.tostring(
        node,
        method="c14n",
        exclusive=exclusive,
        with_comments=with_comments,
        inclusive_ns_prefixes=inclusive_prefixes(method) if exclusive else None,
    )


def _inherited_xml_attributes(node: etree._Element, algorithm: str) -> dict[str, str]:
    """The xml:* attributes node inherits from its ancestors, nearest first, for inclusive c14n 1.0 or 1.1."""
    names = _INHERITED[C14N_1_1 if algorithm.startswith(C14N_1_1) else C14N_1_0]
    inherited: dict[str, str] = {}
    bases = 0
    for ancestor in node.iterancestors():
        for name in names:
            key = f"{{{XML_NS}}}{name}"
            value = ancestor.get(key)
            if value is not None:
                bases += name == "base"
                inherited.setdefault(key, value)
    if bases > 1 and algorithm.startswith(C14N_1_1):
        # Joining several xml:base values (RFC 3986 resolution with c14n 1.1's special cases) is not
        # implemented; a signature that would need it is refused rather than checked approximately.
        raise SignatureError(
            "signature.algorithm",
            f"{label(algorithm)} over SignedInfo would need the xml:base of several ancestors joined; "
            "put xml:base on one element at most, or use exclusive c14n",
            "c14n.xml-base-fixup",
        )
    return {key: value for key, value in inherited.items() if node.get(key) is None}


def _apex(node: etree._Element, xml_attributes: dict[str, str]) -> etree._Element:
    """A copy of node as the root of a document of its own, every namespace in scope declared on it."""
    namespace = etree.QName(node).namespace
    # lxml names the element with the first prefix of nsmap bound to its namespace: its own must come first.
    nsmap = {node.prefix: namespace}
    nsmap.update((prefix, uri) for prefix, uri in node.nsmap.items() if prefix != node.prefix)
    apex = etree.Element(node.tag, attrib=dict(node.attrib), nsmap=nsmap)
    apex.attrib.update(xml_attributes)
    apex.text = node.text
    for child in node:
        apex.append(copy.deepcopy(child))
    # Canonical names carry prefixes: a copy that renamed any element would be digested as something else.
    if any(a.prefix != b.prefix or a.tag != b.tag for a, b in zip(node.iter(), apex.iter())):
        raise SignatureError(
            "signature.invalid", "signature does not verify: SignedInfo could not be copied with its prefixes"
        )
    return apex


def without_signature(root: etree._Element, signature: etree._Element) -> etree._Element:
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


def inclusive_prefixes(method: etree._Element | None) -> list[str] | None:
    """The PrefixList of exclusive c14n's InclusiveNamespaces parameter, if the method carries one."""
    if method is None:
        return None
    parameters = list(method.iterchildren(f"{{{EC_NS}}}InclusiveNamespaces"))
    if len(parameters) > 1:
        raise SignatureError(
            "signature.algorithm",
            f"{label(method.get('Algorithm', ''))} carries more than one InclusiveNamespaces",
            "profile.layout",
        )
    prefixes = parameters[0].get("PrefixList") if parameters else None
    return prefixes.split() if prefixes is not None else None
