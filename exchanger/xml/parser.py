"""A hardened XML parser for untrusted messages: no DTD, no entities, no network, no XInclude."""

from __future__ import annotations

import threading

from lxml import etree

from exchanger.errors import ExchangerError
from exchanger.xml.limits import LimitExceeded, StructuralLimits, parse_within

_DOCTYPE_MARKERS = (b"<!DOCTYPE", b"<!ENTITY")
_local = threading.local()


class HostileXML(ExchangerError, ValueError):
    """The input is not acceptable XML; ``code`` says why, ``line`` where when known."""

    def __init__(self, code: str, message: str, line: int | None = None, path: str | None = None):
        super().__init__(message)
        self.code = code
        self.line = line
        self.path = path


# huge_tree=False keeps libxml2's depth and text-size limits on; resolve_entities=False
# leaves any entity reference unexpanded, and every DOCTYPE is refused right after.
HARDENED_OPTIONS: dict = dict(
    resolve_entities=False, load_dtd=False, dtd_validation=False, no_network=True, huge_tree=False
)
"""The options of every parser that reads message bytes."""


def _untrusted_parser() -> etree.XMLParser:
    return etree.XMLParser(**HARDENED_OPTIONS)


def _parser() -> etree.XMLParser:
    # An lxml parser must not be shared between threads; each thread keeps its own.
    parser = getattr(_local, "parser", None)
    if parser is None:
        parser = _local.parser = _untrusted_parser()
    return parser


def parse_untrusted(
    data: bytes, *, max_bytes: int | None = None, limits: StructuralLimits | None = None
) -> etree._ElementTree:
    """Parse message bytes, refusing oversize input, DOCTYPEs, entities, malformed XML and, given limits, a hostile shape.

    Without limits only libxml2's own bounds apply: for bytes the exchange produced itself.
    """
    if max_bytes is not None and len(data) > max_bytes:
        raise HostileXML("size.exceeded", f"message is {len(data)} bytes, over the limit of {max_bytes} bytes")
    if not data.strip():
        raise HostileXML("parse.empty", "message body is empty")
    # Refuse the common case before libxml2 reads any DTD at all.
    head = data[:4096]
    if any(marker in head for marker in _DOCTYPE_MARKERS):
        raise HostileXML("parse.doctype", "a DOCTYPE or entity declaration is not allowed in messages")
    try:
        if limits is None:
            root = etree.fromstring(data, _parser())
        else:
            root = parse_within(data, limits, _parser(), HARDENED_OPTIONS)
    except etree.XMLSyntaxError as exc:
        line = exc.position[0] if exc.position else None
        raise HostileXML("parse.malformed", f"not well-formed XML: {exc.msg}", line) from None
    except LimitExceeded as exc:
        raise HostileXML(exc.code, str(exc), exc.line, exc.path) from None
    tree = root.getroottree()
    docinfo = tree.docinfo
    # UTF-16 input or a DOCTYPE after a long prolog escapes the byte scan; the parsed docinfo does not.
    if docinfo.doctype or docinfo.internalDTD is not None or docinfo.externalDTD is not None:
        raise HostileXML("parse.doctype", "a DOCTYPE or entity declaration is not allowed in messages")
    for node in root.iter(etree.Entity):
        raise HostileXML("parse.entity", f"entity reference {node.text} is not allowed", node.sourceline)
    for sibling in (*root.itersiblings(preceding=True), *root.itersiblings()):
        if isinstance(sibling, etree._ProcessingInstruction):
            # Verifiers disagree on whether a signature over the document covers these; refuse the doubt.
            raise HostileXML(
                "parse.processing-instruction",
                f"processing instruction <?{sibling.target}?> outside the root element is not allowed",
                sibling.sourceline,
            )
    return tree


def trusted_schema_parser() -> etree.XMLParser:
    """Return the parser for operator-supplied XSDs: their DTDs are allowed (some standards ship them), network never."""
    return etree.XMLParser(resolve_entities=True, load_dtd=True, no_network=True, huge_tree=False)
