"""The exchange's own envelope: one ex:ExchangeMessage listing every copy, carrying the sender's document."""

from __future__ import annotations

import hashlib

from exchanger.envelopes.forwarding import Forwarding, Shaped
from exchanger.platform_documents import derived_id, exchange_message
from exchanger.routing import Delivery


def exchange_envelope(forwarding: Forwarding, envelope_format, deliveries: tuple[Delivery, ...]) -> list[Shaped]:
    """One envelope for all its receivers: the same id and bytes for each, as receivers have always had them."""
    forward_id = derived_id("forward", forwarding.sender, forwarding.message_id, forwarding.digest)
    root = exchange_message(
        message_id=forward_id,
        orig_message_id=forwarding.message_id,
        message_type=forwarding.message_type.name,
        sender=forwarding.sender,
        deliveries=forwarding.deliveries,
        received_at=forwarding.received_at,
        config_version=forwarding.config_version,
        # The digest a receiver checks the carried document against: of the document itself.
        digest=hashlib.sha256(forwarding.document).hexdigest(),
        original=forwarding.document,
    )
    return [Shaped(deliveries, forward_id, root)]
