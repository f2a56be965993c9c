"""Structural limits on untrusted XML, checked in linear time before canonicalization, validation or crypto.

Bounds read off the raw bytes in C first (an element needs a "<", a namespace declaration the letters
"xmlns", an attribute a "="), so a document that cannot cross a limit pays almost nothing; only what the
bytes cannot rule out is counted exactly. A document that may hold too many elements is read with a pull
parser and abandoned at the first element over the limit, before the rest of its tree is built.
"""

from __future__ import annotations

import functools
from dataclasses import dataclass

from lxml import etree

from exchanger.xml.start_tags import overlong_start_tag

DS_SIGNED_INFO = "{http://www.w3.org/2000/09/xmldsig#}SignedInfo"

# The defaults: far above the largest real document measured (bench/RESULTS.md, "Hostile-input cost", lists
# the corpus maxima), and low enough that every step after parsing stays linear and cheap.
DEFAULT_MAX_DEPTH = 64
DEFAULT_MAX_ELEMENTS = 300_000
DEFAULT_MAX_ATTRIBUTES_PER_ELEMENT = 64
DEFAULT_MAX_NAMESPACE_DECLARATIONS = 10_000
DEFAULT_MAX_NAMESPACES_IN_SCOPE = 64
DEFAULT_MAX_TEXT_BYTES = 1024 * 1024
DEFAULT_MAX_SIGNED_INFO_BYTES = 64 * 1024

CODES = (
    "limits.depth",
    "limits.elements",
    "limits.attributes",
    "limits.namespaces",
    "limits.namespaces-in-scope",
    "limits.text",
    "limits.signed-info",
)

# Encodings in which every ASCII character is the one byte of itself, so byte counts bound character counts,
# and a character takes at most twice as many bytes in UTF-8 as here.
_ASCII_COMPATIBLE = frozenset({"UTF-8", "US-ASCII", "ASCII", "ISO-8859-1", "LATIN1", "GBK", "GB2312", "GB18030"})
_SLICE = 64 * 1024


@dataclass(frozen=True)
class StructuralLimits:
    """Bounds on a document's shape; each is a positive whole number."""

    max_depth: int = DEFAULT_MAX_DEPTH
    # Elements; comments and processing instructions, together, are held to the same number.
    max_elements: int = DEFAULT_MAX_ELEMENTS
    max_attributes_per_element: int = DEFAULT_MAX_ATTRIBUTES_PER_ELEMENT
    max_namespace_declarations: int = DEFAULT_MAX_NAMESPACE_DECLARATIONS
    max_namespaces_in_scope: int = DEFAULT_MAX_NAMESPACES_IN_SCOPE
    # UTF-8 bytes of one text node, CDATA section, comment, processing instruction or attribute value.
    max_text_bytes: int = DEFAULT_MAX_TEXT_BYTES
    # UTF-8 bytes of the outermost ds:SignedInfo serialized on its own (with the namespace declarations it uses).
    max_signed_info_bytes: int = DEFAULT_MAX_SIGNED_INFO_BYTES


class LimitExceeded(ValueError):
    """A document crossed a structural limit: ``code`` is one of CODES, ``line`` and ``path`` say where."""

    def __init__(self, code: str, message: str, node: etree._Element | None = None):
        super().__init__(message)
        self.code = code
        self.line = node.sourceline if node is not None else None
        self.path = _path(node)


def _path(node: etree._Element | None) -> str | None:
    if node is None:
        return None
    if not isinstance(node.tag, str):
        node = node.getparent()
    return node.getroottree().getpath(node) if node is not None else None


def utf8_len(text: str | None) -> int:
    """The length of text in UTF-8 bytes, counted without encoding it when it is ASCII."""
    if not text:
        return 0
    return len(text) if text.isascii() else len(text.encode("utf-8", "surrogatepass"))


def _declared_encoding(head: bytes) -> str:
    """The encoding an XML declaration at the start of head names, upper-cased; UTF-8 when it names none."""
    if not head.startswith(b"<?xml"):
        return "UTF-8"
    declaration = head[: head.find(b"?>")]
    at = declaration.find(b"encoding")
    if at < 0:
        return "UTF-8"
    value = declaration[at + len(b"encoding") :].lstrip().removeprefix(b"=").lstrip()
    quote = value[:1]
    return value[1:].split(quote, 1)[0].decode("ascii", "replace").upper() if quote in (b'"', b"'") else "?"


class _ByteBounds:
    """What the raw bytes rule out, cheaply: from their length in any encoding, from counts of ASCII markers in
    an ASCII-compatible one (where every ASCII character is the one byte of itself)."""

    # The fewest bytes each thing takes in any encoding ("<a/>", " a=''", " xmlns=''"), and its marker.
    _SHAPES = {"elements": (4, b"<"), "attributes": (5, b"="), "namespaces": (9, b"xmlns")}

    def __init__(self, data: bytes):
        self.data = data
        head = data[:256].removeprefix(b"\xef\xbb\xbf")
        # Anything else (UTF-16, UTF-32, EBCDIC, a leading blank) is counted exactly, not from the bytes.
        self.ascii_compatible = head.startswith(b"<") and _declared_encoding(head) in _ASCII_COMPATIBLE

    def rule_out(self, kind: str, threshold: int) -> bool:
        """True when the document cannot hold more than threshold of kind (elements, attributes, namespaces)."""
        fewest_bytes, marker = self._SHAPES[kind]
        if len(self.data) // fewest_bytes <= threshold:
            return True
        if not self.ascii_compatible:
            return False
        if kind == "elements":
            return self._start_tags_at_most() <= threshold
        return self.data.count(marker) <= threshold

    def markup_openings(self) -> int:
        """Comments and PIs opened in the bytes ("<!--" inside a CDATA section counts too); the XML declaration not."""
        data = self.data
        declaration = 1 if data.removeprefix(b"\xef\xbb\xbf").startswith(b"<?xml") else 0
        return data.count(b"<!--") + data.count(b"<?") - declaration

    def _start_tags_at_most(self) -> int:
        """An upper bound on the elements: every start tag is a "<" followed by neither "/", "?" nor "!"."""
        data = self.data
        # Every other "<" (end tags, comments, PIs, CDATA, and any "<" inside those) only raises the bound.
        return data.count(b"<") - data.count(b"</") - data.count(b"<?") - data.count(b"<!")

    def rule_out_text(self, max_bytes: int) -> bool:
        """True when no text can exceed max_bytes in UTF-8 (4 bytes at most per character, 1 at least)."""
        return 4 * len(self.data) <= max_bytes


def parse_within(
    data: bytes, limits: StructuralLimits, parser: etree.XMLParser, parser_options: dict
) -> etree._Element:
    """Parse data with parser (or, when it may hold too many elements, a pull parser with the same options)
    and check it against the limits; raise LimitExceeded or etree.XMLSyntaxError."""
    bounds = _ByteBounds(data)
    if bounds.ascii_compatible and bounds.markup_openings() > limits.max_elements:
        # Refused before parsing: a flood of tiny comments costs libxml2 more to build than to count here.
        raise LimitExceeded("limits.elements", _too_much_markup(limits))
    if bounds.ascii_compatible:
        _check_long_start_tags(data, limits)
    if not bounds.rule_out("namespaces", limits.max_namespace_declarations):
        _count_declarations_while_parsing(data, limits, parser_options)
    if bounds.rule_out("elements", limits.max_elements):
        root = etree.fromstring(data, parser)
    else:
        root = _parse_counting_elements(data, limits, parser_options)
    if bounds.ascii_compatible and (root.getroottree().docinfo.encoding or "UTF-8").upper() not in _ASCII_COMPATIBLE:
        bounds.ascii_compatible = False  # libxml2 read it otherwise than its first bytes suggested
        if len(data) // 4 > limits.max_elements and len(list(root.iter())) > limits.max_elements:
            raise LimitExceeded("limits.elements", f"the document has more than {limits.max_elements} elements", root)
    if not bounds.ascii_compatible and _MARKUP_COUNT(root.getroottree()) > limits.max_elements:
        raise LimitExceeded("limits.elements", _too_much_markup(limits), root)
    check_tree(root, limits, bounds)
    return root


# Two counts rather than a union: libxml2 merges node-sets of a union pairwise.
_MARKUP_COUNT = etree.XPath("count(//comment()) + count(//processing-instruction())")


def _too_much_markup(limits: StructuralLimits) -> str:
    return f"the document holds more than {limits.max_elements} comments and processing instructions"


def _check_long_start_tags(data: bytes, limits: StructuralLimits) -> None:
    """Refuse, from the bytes, a start tag too long for libxml2 to read cheaply that holds too many items."""
    found = overlong_start_tag(data, limits.max_attributes_per_element, limits.max_namespaces_in_scope)
    if found:
        refusal = LimitExceeded(found.code, found.message)
        refusal.line = found.line
        raise refusal


def _count_declarations_while_parsing(data: bytes, limits: StructuralLimits, parser_options: dict) -> None:
    """Read the namespace declarations alone (no element is built as an object), stopping at the first over the limit.

    Declarations make every element costlier to build, so a document with too many is abandoned before the tree.
    """
    parser = etree.XMLPullParser(events=("start-ns",), **parser_options)
    count = 0
    for start in range(0, len(data), _SLICE):
        parser.feed(data[start : start + _SLICE])
        count += len(list(parser.read_events()))
        if count > limits.max_namespace_declarations:
            raise LimitExceeded(
                "limits.namespaces", f"the document declares more than {limits.max_namespace_declarations} namespaces"
            )


def _parse_counting_elements(data: bytes, limits: StructuralLimits, parser_options: dict) -> etree._Element:
    """Parse with a pull parser, abandoning the document at its first element over max_elements.

    The events of each slice are gathered in C and counted at once; the depth of each slice's last element is
    checked too (its ancestors, fewer than libxml2's 256), so that a document of many deeply nested elements,
    each costlier to read, is abandoned early as well.
    """
    parser = etree.XMLPullParser(events=("start",), **parser_options)
    count = 0
    root = None
    for start in (*range(0, len(data), _SLICE), None):
        if start is not None:
            parser.feed(data[start : start + _SLICE])
        else:
            root = parser.close()
        events = list(parser.read_events())
        if not events:
            continue
        count += len(events)
        if count > limits.max_elements:
            first_over = events[len(events) - (count - limits.max_elements)][1]
            raise LimitExceeded("limits.elements", f"the document has more than {limits.max_elements} elements", first_over)
        last = events[-1][1]
        if sum(1 for _ in last.iterancestors()) >= limits.max_depth:
            raise LimitExceeded("limits.depth", f"elements are nested more than {limits.max_depth} deep", last)
    return root


def check_tree(root: etree._Element, limits: StructuralLimits, bounds: _ByteBounds) -> None:
    """Check a parsed document against every limit but the element count; each check is one linear pass at most."""
    _check_depth(root, limits.max_depth)
    if not bounds.rule_out("attributes", limits.max_attributes_per_element):
        _check_attributes(root, limits.max_attributes_per_element)
    if not bounds.rule_out("namespaces", min(limits.max_namespace_declarations, limits.max_namespaces_in_scope)):
        _check_namespaces(root, limits)
    if not bounds.rule_out_text(limits.max_text_bytes):
        _check_texts(root, limits.max_text_bytes, bounds)
    _check_signed_info(root, limits.max_signed_info_bytes)


@functools.lru_cache(maxsize=16)
def _deeper_than(depth: int) -> etree.XPath:
    # libxml2 evaluates one step per level over that level's elements only: linear in the element count.
    return etree.XPath("/" + "/".join(["*"] * (depth + 1)))


def _check_depth(root: etree._Element, max_depth: int) -> None:
    too_deep = _deeper_than(max_depth)(root)
    if too_deep:
        raise LimitExceeded("limits.depth", f"elements are nested more than {max_depth} deep", too_deep[0])


# libxml2 counts each element's attributes in C: one linear pass, no Python object per element.
_OVER_ATTRIBUTES = etree.XPath("(//*[count(@*) > $most])[1]")


def _check_attributes(root: etree._Element, max_attributes: int) -> None:
    for element in _OVER_ATTRIBUTES(root, most=max_attributes):
        raise LimitExceeded(
            "limits.attributes",
            f"an element has {len(element.attrib)} attributes, over the limit of {max_attributes}",
            element,
        )


def _check_namespaces(root: etree._Element, limits: StructuralLimits) -> None:
    """Count the declarations, and those in scope, from the declarations alone: lxml's nsmap per element is quadratic."""
    declared: list[str] = []  # prefixes of the declarations in scope, innermost last
    in_scope: dict[str, int] = {}
    total = 0
    for event, item in etree.iterwalk(root, events=("start-ns", "end-ns")):
        if event == "end-ns":
            prefix = declared.pop()
            in_scope[prefix] -= 1
            if not in_scope[prefix]:
                del in_scope[prefix]
            continue
        total += 1
        prefix = item[0]
        declared.append(prefix)
        in_scope[prefix] = in_scope.get(prefix, 0) + 1
        if total > limits.max_namespace_declarations:
            raise LimitExceeded(
                "limits.namespaces",
                f"the document declares more than {limits.max_namespace_declarations} namespaces",
                _declaring(root, total),
            )
        if len(in_scope) > limits.max_namespaces_in_scope:
            raise LimitExceeded(
                "limits.namespaces-in-scope",
                f"more than {limits.max_namespaces_in_scope} namespaces are in scope at an element",
                _first_with_many_in_scope(root, limits.max_namespaces_in_scope),
            )


def _declaring(root: etree._Element, number: int) -> etree._Element | None:
    """The element that makes the given declaration (1-based, in document order): only to locate a refusal.

    Up to that element no more namespaces are in scope than the limit allows, so each nsmap read here is short.
    """
    seen = 0
    for element in root.iter(etree.Element):
        parent = element.getparent()
        inherited = parent.nsmap if parent is not None else {}
        # A redeclaration with the same URI is not visible here: the element found may then be a later one.
        seen += sum(1 for prefix, uri in element.nsmap.items() if inherited.get(prefix) != uri)
        if seen >= number:
            return element
    return None


def _first_with_many_in_scope(root: etree._Element, limit: int) -> etree._Element | None:
    """The first element with more than limit namespaces in scope: each nsmap before it holds limit at most."""
    return next((element for element in root.iter(etree.Element) if len(element.nsmap) > limit), None)


_LONG = "[string-length() > $floor]"
TEXT_KINDS = {"text": "//text()", "attribute": "//@*", "comment": "//comment()", "pi": "//processing-instruction()"}


@functools.lru_cache(maxsize=16)
def long_texts(kinds: tuple[str, ...]) -> etree.XPath:
    """An XPath selecting the texts of the given kinds longer than $floor characters."""
    return etree.XPath(" | ".join(TEXT_KINDS[kind] + _LONG for kind in kinds))


def _longest_run_without(data: bytes, separator: bytes) -> int:
    """The length of the longest run of data without separator, in C, a slice at a time (the pieces stay small)."""
    longest = carry = 0
    for start in range(0, len(data), _SLICE):
        # A separator cut in two by a slice's edge goes unseen: the run is over-counted, never under.
        pieces = data[start : start + _SLICE].split(separator)
        if len(pieces) == 1:
            carry += len(pieces[0])
            continue
        longest = max(longest, carry + len(pieces[0]), max(map(len, pieces[1:-1]), default=0))
        carry = len(pieces[-1])
    return max(longest, carry)


def _text_kinds(bounds: _ByteBounds | None, floor: int) -> tuple[str, ...]:
    """Which kinds of text may be longer than floor characters: from the bytes when they tell (each kind is one
    more pass). In an ASCII-compatible encoding a character takes at least one byte."""
    if bounds is None or not bounds.ascii_compatible:
        return tuple(TEXT_KINDS)
    data = bounds.data
    # Text and attribute values hold no "<" (CDATA aside), so none is longer than the longest run without one.
    short_runs = b"<![CDATA[" not in data and _longest_run_without(data, b"<") <= floor
    present = {
        "text": not short_runs,
        "attribute": b"=" in data and not short_runs,
        # A comment ends at the first "-->" and a PI at the first "?>": neither is longer than the runs between them.
        "comment": b"<!--" in data and _longest_run_without(data, b"-->") > floor,
        "pi": data.count(b"<?") > 1 and _longest_run_without(data, b"?>") > floor,
    }
    return tuple(kind for kind, here in present.items() if here)


def _check_texts(root: etree._Element, max_text: int, bounds: _ByteBounds | None = None) -> None:
    # A text of max_text // 4 characters or fewer fits in max_text UTF-8 bytes; libxml2 finds the longer ones.
    floor = max_text // 4
    kinds = _text_kinds(bounds, floor)
    found = long_texts(kinds)(root.getroottree(), floor=floor) if kinds else ()
    for node in (*found, *outside_root(root)):
        size = utf8_len(str(node) if isinstance(node, str) else node.text)
        if size > max_text:
            owner = node.getparent() if isinstance(node, str) else node
            what = "an attribute value" if getattr(node, "is_attribute", False) else "a text"
            raise LimitExceeded("limits.text", f"{what} is {size} bytes long, over the limit of {max_text}", owner)


def outside_root(root: etree._Element):
    """The comments and PIs beside the root element, which no XPath from it reaches."""
    return (*root.itersiblings(preceding=True), *root.itersiblings())


def _check_signed_info(root: etree._Element, max_bytes: int) -> None:
    for signed_info in root.iter(DS_SIGNED_INFO):
        if any(True for _ in signed_info.iterancestors(DS_SIGNED_INFO)):
            continue  # counted within the outermost one
        size = len(etree.tostring(signed_info, with_tail=False))
        if size > max_bytes:
            raise LimitExceeded(
                "limits.signed-info", f"ds:SignedInfo is {size} bytes, over the limit of {max_bytes}", signed_info
            )

