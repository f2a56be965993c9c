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

    A whole document goes to libxml2's c14n. A sub-tree (SignedInfo) is written here: lxml's c14n of a
    sub-tree writes ``xmlns=""`` on descendants under an inherited default namespace, which no other
    verifier does, and libxml2 renders the namespaces in scope in time quadratic in their number.
    """
    algorithm = method.get("Algorithm", "") if method is not None else DEFAULT_REFERENCE_C14N
    exclusive = algorithm.startswith(EXC_C14N)
    if node.getparent() is not None:
        return canonical_subtree(
            node,
            exclusive=exclusive,
            prefixes=inclusive_prefixes(method) if exclusive else None,
            xml_attributes={} if exclusive else _inherited_xml_attributes(node, algorithm),
        )
    # libxml2's whole-document c14n is c14n 1.0; 1.1 differs from it only for document subsets.
    return etree.tostring(
        node,
        method="c14n",
        exclusive=exclusive,
        with_comments=with_comments,
        inclusive_ns_prefixes=inclusive_prefixes(method) if exclusive else None,
    )


def canonical_subtree(
    apex: etree._Element, *, exclusive: bool, prefixes: list[str] | None, xml_attributes: dict[str, str]
) -> bytes:
    """The canonical form of the sub-tree under apex, as inclusive or exclusive c14n write a document subset.

    Written for what the signature profile lets into SignedInfo: elements, unqualified attributes
    and text. The namespaces rendered in the output are carried down, so each element costs the
    namespaces in scope once (a dictionary comparison), never their square.
    """
    listed = {None if prefix == "#default" else prefix for prefix in prefixes or ()}
    out: list[str] = []
    # Work items: (element, namespaces rendered by its output ancestors, extra attributes), or text to write.
    pending: list = [(apex, {}, xml_attributes)]
    while pending:
        item = pending.pop()
        if isinstance(item, str):
            out.append(item)
            continue
        element, rendered, extra_attributes = item
        if not isinstance(element.tag, str):
            raise SignatureError(
                "signature.unsigned-content", "a comment or processing instruction in SignedInfo", "profile.comment"
            )
        in_scope = element.nsmap
        if exclusive:
            candidates = {prefix for prefix in {element.prefix} | listed if prefix in in_scope or prefix is None}
        else:
            candidates = set(in_scope) | ({None} if rendered.get(None) else set())
        declarations = []
        now = dict(rendered)
        for prefix in candidates:
            uri = in_scope.get(prefix, "")
            if rendered.get(prefix, "") == uri:
                continue  # that binding is in effect in the output already (or is the empty default)
            declarations.append((prefix or "", uri))
            now[prefix] = uri
        name = f"{element.prefix}:{_local(element)}" if element.prefix else _local(element)
        out.append(f"<{name}")
        for prefix, uri in sorted(declarations):
            out.append(f' xmlns{":" + prefix if prefix else ""}="{_namespace_uri(uri)}"')
        for qualified, value in _attributes(element, extra_attributes):
            out.append(f' {qualified}="{_attribute_value(value)}"')
        out.append(">")
        if element.tail and element is not apex:
            pending.append(_text(element.tail))
        pending.append(f"</{name}>")
        for child in reversed(element):
            pending.append((child, now, {}))
        if element.text:
            pending.append(_text(element.text))
    return "".join(out).encode("utf-8")


def _local(element: etree._Element) -> str:
    tag = element.tag
    return tag[tag.index("}") + 1 :] if tag[0] == "{" else tag


def _attributes(element: etree._Element, extra: dict[str, str]) -> list[tuple[str, str]]:
    """The attributes as (qualified name, value), in c14n's order: by namespace URI, then local name."""
    found = []
    for key, value in (*element.attrib.items(), *extra.items()):
        if key[0] != "{":
            found.append(("", key, key, value))
        elif key.startswith(f"{{{XML_NS}}}"):
            local = key[len(XML_NS) + 2 :]
            found.append((XML_NS, local, "xml:" + local, value))
        else:
            # The profile admits no other namespaced attribute; writing one would need its original prefix.
            raise SignatureError(
                "signature.unsigned-content", f"the attribute {key} in SignedInfo", "profile.attribute"
            )
    return [(qualified, value) for _, _, qualified, value in sorted(found)]


_TEXT = str.maketrans({"&": "&amp;", "<": "&lt;", ">": "&gt;", "\r": "&#xD;"})
_ATTRIBUTE = str.maketrans({"&": "&amp;", "<": "&lt;", '"': "&quot;", "\t": "&#x9;", "\n": "&#xA;", "\r": "&#xD;"})


def _text(text: str) -> str:
    return text.translate(_TEXT)


def _attribute_value(value: str) -> str:
    return value.translate(_ATTRIBUTE)


def _namespace_uri(uri: str) -> str:
    """A namespace URI as libxml2 writes it in canonical form, and so as xmlsec1 signs it: unescaped."""
    if '"' in uri:
        # libxml2 would switch to single quotes here, outside the c14n specification; nobody needs such a URI.
        raise SignatureError(
            "signature.unsigned-content", "a namespace URI with a quotation mark in scope of SignedInfo",
            "profile.namespace",
        )
    return uri


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


# Characters a namespace URI can only hold through a reference, which c14n implementations write
# differently: libxml2 2.9 (xmlsec1) writes "&" as "&#38;", libxml2 2.14 (lxml) as "&", the C14N
# specification as "&amp;"; the others make libxml2 2.9 fail.
_AMBIGUOUS_IN_NAMESPACES = frozenset('&<>"\t\r\n')


def check_namespace_uris(root: etree._Element) -> None:
    """Refuse a document declaring a namespace URI whose canonical form verifiers disagree on.

    One pass over the namespace declarations of the document, linear in their number.
    """
    for _, (prefix, uri) in etree.iterwalk(root, events=("start-ns",)):
        if not _AMBIGUOUS_IN_NAMESPACES.isdisjoint(uri):
            declaration = f'xmlns{":" + prefix if prefix else ""}="{uri[:80]}"'
            raise SignatureError(
                "signature.algorithm",
                f"the document declares {declaration}: verifiers canonicalize a namespace URI holding &, <, >, "
                'a quotation mark or a tab or line break in different ways, so it cannot be signed reliably',
                "c14n.namespace-uri",
            )


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
