"""Stage 2: find the message type from the root element."""

from __future__ import annotations

from exchanger.catalogue import Catalogue
from exchanger.envelope import Envelope
from exchanger.outcome import Reason, Rejected


class Identify:
    """Look the root element up in the catalogue; an unknown root is not a message of this exchange."""

    name = "identify"

    def __init__(self, catalogue: Catalogue):
        self.catalogue = catalogue

    def __call__(self, envelope: Envelope) -> None:
        root = envelope.tree.getroot()
        message_type = self.catalogue.for_root(root.tag)
        if message_type is None:
            raise Rejected(
                Reason(
                    self.name,
                    "unknown-type",
                    f"root element {root.tag} is not a message type of this exchange "
                    f"(known: {', '.join(sorted(self.catalogue.names()))})",
                    line=root.sourceline,
                )
            )
        envelope.message_type = message_type
