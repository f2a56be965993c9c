"""What the pipeline decided for one message: the publications to confirm before the inbound is acked."""

from __future__ import annotations

from dataclasses import dataclass, field

from exchanger.outcome import Reason

ACCEPTED = "accepted"
REJECTED = "rejected"


@dataclass(frozen=True)
class Publication:
    """One message to publish with confirms and ``mandatory``: where, what, and with which properties."""

    exchange: str
    routing_key: str
    body: bytes
    message_id: str | None = None
    correlation_id: str | None = None
    type: str | None = None
    headers: dict = field(default_factory=dict)
    content_type: str = "application/xml"


@dataclass(frozen=True)
class Disposition:
    """The outcome of one message and every publication it needs; the inbound is acked when all confirm."""

    outcome: str
    publications: tuple[Publication, ...]
    reasons: tuple[Reason, ...] = ()
    context: dict = field(default_factory=dict)
