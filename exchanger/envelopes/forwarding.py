"""What an envelope is written from: the facts every copy of one accepted message shares, and the result."""

from __future__ import annotations

from dataclasses import dataclass

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
    relay_path: str | None = None  # the RelayPath a copy for a peer e-port carries: the path so far, then this platform
    peers: frozenset[str] = frozenset()  # the receivers that are peer e-ports


@dataclass(frozen=True)
class Shaped:
    """One unsigned envelope and the copies that travel in it."""

    deliveries: tuple[Delivery, ...]
    document_id: str
    root: etree._Element
