"""Stage 6: decide every copy from the routing table, over the signed content only."""

from __future__ import annotations

from exchanger.envelope import Envelope
from exchanger.participants import Registry
from exchanger.pipeline.stages.relay import check_hops
from exchanger.routing import RoutingTable


class Route:
    """Apply the declarative routing table; a message no rule allows is rejected, never dropped."""

    name = "route"

    def __init__(self, table: RoutingTable, registry: Registry | None = None, platform_id: str = ""):
        self.table = table
        self.registry = registry
        self.platform_id = platform_id

    def __call__(self, envelope: Envelope) -> None:
        envelope.decision = self.table.decide(
            envelope.message_type.name,
            envelope.sender,
            envelope.receivers,
            envelope.signed_root,
            envelope.fields,
        )
        if self.registry is not None:
            check_hops(envelope, self.registry, self.platform_id)
