"""Stage 1: refuse oversize or hostile input, then parse with the hardened parser, checking the document's shape."""

from __future__ import annotations

from exchanger.envelope import Envelope
from exchanger.outcome import Reason, Rejected
from exchanger.xml.markup import refuse_markup_in_text
from exchanger.xml.limits import StructuralLimits
from exchanger.xml.parser import HostileXML, parse_untrusted


class Parse:
    """Size limit, hardened parser (no DTD, entities, network, XInclude), structural limits, no markup in text.

    Without explicit limits the defaults apply, so every caller refuses the same hostile shapes.
    """

    name = "parse"

    def __init__(self, max_bytes: int | None, limits: StructuralLimits | None = None):
        self.max_bytes = max_bytes
        self.limits = limits or StructuralLimits()

    def __call__(self, envelope: Envelope) -> None:
        try:
            tree = parse_untrusted(envelope.inbound.body, max_bytes=self.max_bytes, limits=self.limits)
            refuse_markup_in_text(tree.getroot())
        except HostileXML as exc:
            raise Rejected(Reason(self.name, exc.code, str(exc), line=exc.line, path=exc.path)) from None
        envelope.tree = tree
