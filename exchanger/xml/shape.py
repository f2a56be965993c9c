"""A document's shape measured exactly: for choosing and documenting the structural limits, not for hostile input."""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from exchanger.xml.limits import TEXT_KINDS, DS_SIGNED_INFO, long_texts, outside_root, utf8_len


@dataclass
class Shape:
    """The largest value of each limited quantity in one document: for choosing and documenting limits."""

    depth: int = 0
    elements: int = 0
    attributes_per_element: int = 0
    namespace_declarations: int = 0
    namespaces_in_scope: int = 0
    text_bytes: int = 0
    signed_info_bytes: int = 0


def measure(root: etree._Element) -> Shape:
    """Measure a parsed document's shape exactly (not for hostile input: it is not optimised)."""
    shape = Shape()
    depth = 0
    declared: list[str] = []
    in_scope: dict[str, int] = {}
    for event, item in etree.iterwalk(root, events=("start", "end", "start-ns", "end-ns")):
        if event == "start":
            depth += 1
            shape.depth = max(shape.depth, depth)
            shape.elements += 1
            shape.attributes_per_element = max(shape.attributes_per_element, len(item.attrib))
        elif event == "end":
            depth -= 1
        elif event == "start-ns":
            shape.namespace_declarations += 1
            declared.append(item[0])
            in_scope[item[0]] = in_scope.get(item[0], 0) + 1
            shape.namespaces_in_scope = max(shape.namespaces_in_scope, len(in_scope))
        else:
            prefix = declared.pop()
            in_scope[prefix] -= 1
            if not in_scope[prefix]:
                del in_scope[prefix]
    for node in (*long_texts(tuple(TEXT_KINDS))(root.getroottree(), floor=-1), *outside_root(root)):
        shape.text_bytes = max(shape.text_bytes, utf8_len(str(node) if isinstance(node, str) else node.text))
    for signed_info in root.iter(DS_SIGNED_INFO):
        shape.signed_info_bytes = max(shape.signed_info_bytes, len(etree.tostring(signed_info, with_tail=False)))
    return shape
