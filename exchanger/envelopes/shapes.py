"""The adapters that write an envelope around an accepted message: one per envelope ``shape``, chosen by configuration."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Callable

from lxml import etree

from exchanger.catalogue import MessageType
from exchanger.routing import Delivery


@dataclass(frozen=True)
class Forwarding:
    """What every copy of one accepted message shares: the facts any envelope is written from."""

    sender: str
    message_id: str
    message_type: MessageType
    document: bytes  # the business message byte for byte as its sender signed it
    digest: str  # SHA-256 of the bytes the exchange received (the envelope it came in, if any)
    received_at: float
    config_version: str
    deliveries: tuple[Delivery, ...]  # every copy made, whatever envelope each travels in
    created: str | None = None  # when the sender says it created the message, if its envelope said so
    carrier_fields: dict = field(default_factory=dict)


@dataclass(frozen=True)
class Shaped:
    """One unsigned envelope and the copies that travel in it."""

    deliveries: tuple[Delivery, ...]
    document_id: str
    root: etree._Element


# shape(forwarding, envelope format, the copies to write it for) -> the envelopes to sign
Shape = Callable[..., list[Shaped]]


def _exchange(forwarding: Forwarding, envelope_format, deliveries: tuple[Delivery, ...]) -> list[Shaped]:
    from exchanger.envelopes.exchange import exchange_envelope

    return exchange_envelope(forwarding, envelope_format, deliveries)


def _dxp(forwarding: Forwarding, envelope_format, deliveries: tuple[Delivery, ...]) -> list[Shaped]:
    from exchanger.envelopes.dxp import dxp_envelopes

    return dxp_envelopes(forwarding, envelope_format, deliveries)


SHAPES: dict[str, Shape] = {"exchange": _exchange, "dxp": _dxp}
