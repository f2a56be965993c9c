"""Refuse comments and processing instructions inside a text value, where receivers disagree on what it says."""

from __future__ import annotations

from lxml import etree

from exchanger.xml.parser import HostileXML

# XML's own whitespace (production S): a value made of these alone is no value to misread.
XML_WHITESPACE = " \t\r\n"
# Names in a refusal come from the attacker's document: keep the receipt and headers small.
MAX_NAMED = 512


class MarkupInText(HostileXML):
    """A comment or PI inside a text value; ``path`` names the element that holds it."""

    def __init__(self, message: str, line: int | None, path: str):
        super().__init__("parse.markup-in-text", message, line)
        self.path = path


def element_path(element: etree._Element) -> str:
    """The element's location as the document's own prefixes spell it, e.g. ``/dec:CustomsDeclaration/dec:Head``."""
    steps = []
    node = element
    while node is not None:
        qname = etree.QName(node)
        name = f"{node.prefix}:{qname.localname}" if node.prefix else qname.localname
        parent = node.getparent()
        if parent is not None:
            # Only the preceding siblings are counted: the path of an early element costs little however many follow.
            before = sum(1 for _ in node.itersiblings(node.tag, preceding=True))
            if before or next(node.itersiblings(node.tag), None) is not None:
                name += f"[{before + 1}]"
        steps.append(name)
        node = parent
    return "/" + "/".join(reversed(steps))


def _shortened(text: str) -> str:
    return text if len(text) <= MAX_NAMED else text[: MAX_NAMED - 1] + "…"


def _has_character_data(element: etree._Element) -> bool:
    """True when the element holds text other than whitespace, before or between its child nodes."""
    if (element.text or "").strip(XML_WHITESPACE):
        return True
    return any((child.tail or "").strip(XML_WHITESPACE) for child in element)


def refuse_markup_in_text(root: etree._Element) -> None:
    """Raise HostileXML when a comment or PI sits in an element that also has character data.

    ``<a>1<!--x-->2</a>`` is "12" to XPath and XSD, "1" to a reader that stops at the first child
    node (lxml's ``.text``, DOM's ``firstChild``), and a PI's content is even read as part of the
    value by some. One pass: each element is looked at once, and only when it holds such a node.
    """
    # The elements themselves, not their id(): lxml may hand a freed proxy's id to another element.
    seen: set[etree._Element] = set()
    for node in root.iter(etree.Comment, etree.PI):
        parent = node.getparent()
        if parent is None or parent in seen:
            continue
        seen.add(parent)
        if not _has_character_data(parent):
            continue
        first = next(child for child in parent if isinstance(child, (etree._Comment, etree._ProcessingInstruction)))
        what = "a comment" if isinstance(first, etree._Comment) else f"processing instruction <?{first.target[:64]}?>"
        path = _shortened(element_path(parent))
        raise MarkupInText(
            f"{what} inside the text of {path}: receivers read such a value differently (some stop at the "
            "comment or instruction, some include it); send the value as plain text",
            first.sourceline,
            path,
        )
