"""The message in flight: what arrived, and what each stage has learned about it."""

from __future__ import annotations

import hashlib
import time
from dataclasses import dataclass, field
from functools import cached_property

from lxml import etree

from exchanger.catalogue import MessageType
from exchanger.envelopes.formats import Carrier
from exchanger.participants import Participant
from exchanger.routing import RouteDecision


@dataclass(frozen=True)
class Inbound:
    """One delivery as the broker handed it over: bytes and the properties the broker vouches for."""

    body: bytes
    user_id: str | None = None
    message_id: str | None = None
    headers: dict = field(default_factory=dict)
    redelivered: bool = False
    received_at: float = field(default_factory=time.time)


@dataclass
class Envelope:
    """An inbound message and the facts established about it so far, stage by stage."""

    inbound: Inbound
    carrier: Carrier | None = None  # the transport envelope the message came in, when it came in one
    document: bytes | None = None  # the business message's bytes when a carrier held them
    tree: etree._ElementTree | None = None
    message_type: MessageType | None = None
    signed_root: etree._Element | None = None
    signer: Participant | None = None
    connected_as: Participant | None = None
    sender: Participant | None = None
    message_id: str | None = None
    answers: str | None = None  # the id of the message this one answers, when its type names one
    receivers: list[str] = field(default_factory=list)
    fields: dict[str, str] = field(default_factory=dict)
    decision: RouteDecision | None = None
    unanswered: bool = False  # a receipt from a peer e-port: refused, it is dead-lettered without a receipt
    copies: tuple = ()  # every copy to publish, each in its receiver's envelope, signed (pipeline.decision.Copy)

    @property
    def body(self) -> bytes:
        """The business message's bytes: what was received, or what the envelope it came in carried."""
        return self.document if self.document is not None else self.inbound.body

    @cached_property
    def digest(self) -> str:
        """SHA-256 of the original bytes: the message's fingerprint in receipts and logs."""
        return hashlib.sha256(self.inbound.body).hexdigest()

    def log_context(self) -> dict:
        """The fields every log event about this message is bound to."""
        context = {"digest": self.digest[:16]}
        if self.message_id:
            context["message_id"] = self.message_id
        if self.message_type:
            context["type"] = self.message_type.name
        if self.carrier is not None:
            context["envelope"] = self.carrier.format.name
        sender = self.sender or self.connected_as
        if sender:
            context["sender"] = sender.id
            if sender.relayed_by:
                context["relayed_by"] = sender.relayed_by
        elif self.inbound.user_id:
            context["user_id"] = self.inbound.user_id
        if self.decision:
            context["routes"] = ",".join(self.decision.route_ids)
            context["to"] = ",".join(self.decision.destinations)
        return context
