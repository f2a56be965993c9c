"""Stage 1: refuse oversize or hostile input, then parse with the hardened parser."""

from __future__ import annotations

from exchanger.envelope import Envelope
from exchanger.outcome import Reason, Rejected
from exchanger.xml.markup import refuse_markup_in_text
from exchanger.xml.parser import HostileXML, parse_untrusted


class Parse:
    """Size limit first, then a parser with no DTD, entities, network or XInclude, then no markup inside text."""

    name = "parse"

    def __init__(self, max_bytes: int):
        self.max_bytes = max_bytes

    def __call__(self, envelope: Envelope) -> None:
        try:
            tree = parse_untrusted(envelope.inbound.body, max_bytes=self.max_bytes)
            refuse_markup_in_text(tree.getroot())
        except HostileXML as exc:
            raise Rejected(Reason(self.name, exc.code, str(exc), line=exc.line, path=getattr(exc, "path", None))) from None
        envelope.tree = tree
