"""The one way a catalogue field is read: the XPath string value of what its expression selects.

Every stage, ``routes explain`` and the receipts read ``id``, ``sender``, ``receivers`` and ``fields``
through here, over the signed, validated tree, so there is no second reading to disagree with.
"""

from __future__ import annotations

from dataclasses import dataclass

from lxml import etree

from exchanger.xml.markup import XML_WHITESPACE, element_path


@dataclass(frozen=True)
class FieldValue:
    """One selected node's value, stripped of surrounding XML whitespace, and the node it was read from."""

    value: str
    node: object = None

    @property
    def path(self) -> str | None:
        """Where the value was found; worked out only when asked, for a refusal, since it walks the siblings."""
        return _location(self.node) if self.node is not None else None


def string_value(item) -> str:
    """XPath's string value: an element's is all its descendant text in order, without comments or PIs."""
    if isinstance(item, (etree._Comment, etree._ProcessingInstruction)):
        return item.text or ""
    if isinstance(item, etree._Element):
        # With no child node at all (comment and PI included), .text is the whole of it: the common case, cheaper.
        return (item.text or "") if len(item) == 0 else "".join(item.itertext())
    if isinstance(item, bool):
        return "true" if item else "false"
    if isinstance(item, float):
        if item != item:
            return "NaN"
        if item in (float("inf"), float("-inf")):
            return "Infinity" if item > 0 else "-Infinity"
        return str(int(item)) if item.is_integer() else repr(item)
    return str(item)


def _location(item) -> str | None:
    if isinstance(item, etree._Element):
        return element_path(item)
    parent = getattr(item, "getparent", lambda: None)()
    if parent is None:
        return None
    if getattr(item, "is_attribute", False):
        return f"{element_path(parent)}/@{item.attrname}"
    return f"{element_path(parent)}/text()"


def read_values(result) -> list[FieldValue]:
    """Every value an XPath result holds: one per selected node, or the one string, number or boolean it computed."""
    if isinstance(result, list):
        return [FieldValue(string_value(item).strip(XML_WHITESPACE), item) for item in result]
    if result is None or result == "":
        return []
    return [FieldValue(string_value(result).strip(XML_WHITESPACE))]
