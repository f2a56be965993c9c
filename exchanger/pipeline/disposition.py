"""What the pipeline decided for one message: the publications to confirm before the inbound is acked."""

from __future__ import annotations

from dataclasses import dataclass, field

from exchanger.outcome import Reason

ACCEPTED = "accepted"
REJECTED = "rejected"
SHORT_STRING_BYTES = 255  # AMQP's short strings (message_id, correlation_id, type): at most 255 bytes


def short_string(text: str | None) -> str | None:
    """Text cut to fit an AMQP short string: at most 255 bytes of UTF-8, no character split."""
    if text is None or len(text) * 4 <= SHORT_STRING_BYTES:
        return text
    return text.encode("utf-8")[:SHORT_STRING_BYTES].decode("utf-8", "ignore")


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

    def __post_init__(self) -> None:
        # Ids quoted from a document (the correlation id answers the sender's MessageId) may be longer
        # than a property can carry: cut here, so no publication fails to encode at the broker.
        for name in ("message_id", "correlation_id", "type"):
            object.__setattr__(self, name, short_string(getattr(self, name)))


@dataclass(frozen=True)
class Disposition:
    """The outcome of one message and every publication it needs; the inbound is acked when all confirm."""

    outcome: str
    publications: tuple[Publication, ...]
    reasons: tuple[Reason, ...] = ()
    context: dict = field(default_factory=dict)
