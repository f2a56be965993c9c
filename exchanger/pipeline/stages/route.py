"""Stage 6: decide every copy from the routing table, over the signed content only."""

from __future__ import annotations

from exchanger.envelope import Envelope
from exchanger.routing import RoutingTable


class Route:
    """Apply the declarative routing table; a message no rule allows is rejected, never dropped."""

    name = "route"

    def __init__(self, table: RoutingTable):
        self.table = table

    def __call__(self, envelope: Envelope) -> None:
        envelope.decision = self.table.decide(
            envelope.message_type.name,
            envelope.sender,
            envelope.receivers,
            envelope.signed_root,
            envelope.fields,
        )
