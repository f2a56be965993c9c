"""What a receipt says, before a format writes it; and what a receipt already sent says of itself."""

from __future__ import annotations

from dataclasses import dataclass

from exchanger.outcome import Reason
from exchanger.routing import Delivery


@dataclass(frozen=True)
class ReceiptFacts:
    """What any receipt says about one message: the transport-neutral answer, before a format writes it."""

    receipt_id: str
    platform_id: str
    node_id: str | None
    receiver: str
    status: str
    digest: str
    received_at: float
    config_version: str
    orig_message_id: str | None = None
    orig_message_type: str | None = None
    deliveries: tuple[Delivery, ...] = ()
    reasons: tuple[Reason, ...] = ()
    carrier: object = None  # the Carrier of the envelope the message came in, when it came in one
    orig_root: str | None = None  # the local name of the message's root element, e.g. CEB311Message


@dataclass(frozen=True)
class Described:
    """What a receipt already sent says of itself: to answer a duplicate with it again."""

    receipt_id: str | None
    orig_message_id: str | None
    orig_digest: str | None
