"""Stage 1: refuse oversize or hostile input, then parse with the hardened parser, checking the document's shape."""

from __future__ import annotations

from exchanger.envelope import Envelope
from exchanger.outcome import Reason, Rejected
from exchanger.xml.limits import StructuralLimits
from exchanger.xml.parser import HostileXML, parse_untrusted


class Parse:
    """Size limit first, then a parser with no DTD, entities, network or XInclude, within the structural limits.

    Without explicit limits the defaults apply, so every caller refuses the same hostile shapes.
    """

    name = "parse"

    def __init__(self, max_bytes: int | None, limits: StructuralLimits | None = None):
        self.max_bytes = max_bytes
        self.limits = limits or StructuralLimits()

    def __call__(self, envelope: Envelope) -> None:
        try:
            envelope.tree = parse_untrusted(envelope.inbound.body, max_bytes=self.max_bytes, limits=self.limits)
        except HostileXML as exc:
            raise Rejected(Reason(self.name, exc.code, str(exc), line=exc.line, path=exc.path)) from None
