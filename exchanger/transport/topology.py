"""The exchange's RabbitMQ topology: names, queue arguments and an idempotent declare."""

from __future__ import annotations

import re
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any

import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from exchanger.errors import ExchangerError
from exchanger.transport.names import (
    DEAD_EXCHANGE,
    DEAD_LETTERS,
    INBOUND_EXCHANGE,
    INBOUND_QUEUE,
    INBOUND_ROUTING_KEY,
    MAILBOX_EXCHANGE,
    MAILBOX_PREFIX,
)

DEFAULT_DELIVERY_LIMIT = 5

__all__ = [
    "DEAD_EXCHANGE",
    "DEAD_LETTERS",
    "DEFAULT_DELIVERY_LIMIT",
    "INBOUND_EXCHANGE",
    "INBOUND_QUEUE",
    "INBOUND_ROUTING_KEY",
    "MAILBOX_EXCHANGE",
    "MAILBOX_PREFIX",
    "PARTICIPANT_ID_PATTERN",
    "BindingSpec",
    "ExchangeSpec",
    "QueueSpec",
    "Topology",
    "TopologyConflict",
    "TopologyError",
    "check_participant_id",
    "declare",
    "mailbox_queue_name",
]

# A participant id becomes a broker user name, a routing key, part of a queue
# name and part of a permission regex, so it is kept to characters that are
# harmless in all four (and never starts with "-", which rabbitmqctl would
# read as an option).
PARTICIPANT_ID_PATTERN = re.compile(r"[A-Za-z0-9][A-Za-z0-9._@-]{0,119}")

_INEQUIVALENT = re.compile(
    r"inequivalent arg '(?P<arg>[^']*)' for (?P<kind>queue|exchange) '(?P<name>[^']*)'"
    r".*?received (?P<received>.*?) but current is (?P<current>.*)$",
    re.DOTALL,
)


class TopologyError(ExchangerError):
    """The broker refused to declare part of the topology."""


class TopologyConflict(TopologyError):
    """An exchange or queue already exists on the broker with different settings."""

    def __init__(
        self,
        kind: str,
        name: str,
        argument: str | None,
        wanted: str | None = None,
        current: str | None = None,
        detail: str = "",
    ) -> None:
        self.kind = kind
        self.name = name
        self.argument = argument
        self.wanted = wanted
        self.current = current
        self.detail = detail
        if argument is not None:
            text = (
                f"{kind} '{name}' already exists with a different '{argument}': "
                f"the broker has {current}, the configuration wants {wanted}. "
                f"Delete the {kind} (after draining it) or change the configuration to match."
            )
        else:
            text = f"{kind} '{name}' already exists with different settings: {detail}"
        super().__init__(text)


def check_participant_id(participant_id: str) -> str:
    """Return the participant id unchanged, or raise ValueError if it is unusable."""
    if not isinstance(participant_id, str) or not PARTICIPANT_ID_PATTERN.fullmatch(participant_id):
        raise ValueError(
            f"invalid participant id {participant_id!r}: use 1-120 characters from "
            "A-Z a-z 0-9 . _ @ - starting with a letter or digit"
        )
    return participant_id


def mailbox_queue_name(participant_id: str, prefix: str = MAILBOX_PREFIX) -> str:
    """Return the name of a participant's mailbox queue."""
    return prefix + check_participant_id(participant_id)


@dataclass(frozen=True)
class ExchangeSpec:
    """One exchange to declare."""

    name: str
    type: str


@dataclass(frozen=True)
class QueueSpec:
    """One queue to declare, with the arguments it must carry."""

    name: str
    arguments: dict[str, Any] = field(hash=False)


@dataclass(frozen=True)
class BindingSpec:
    """One queue-to-exchange binding."""

    queue: str
    exchange: str
    routing_key: str


@dataclass(frozen=True)
class Topology:
    """The exchanges, queues and bindings of one exchange deployment."""

    participants: tuple[str, ...] = ()
    delivery_limit: int = DEFAULT_DELIVERY_LIMIT
    inbound_exchange: str = INBOUND_EXCHANGE
    inbound_queue: str = INBOUND_QUEUE
    inbound_routing_key: str = INBOUND_ROUTING_KEY
    mailbox_exchange: str = MAILBOX_EXCHANGE
    mailbox_prefix: str = MAILBOX_PREFIX
    dead_exchange: str = DEAD_EXCHANGE
    dead_letters: str = DEAD_LETTERS

    def __post_init__(self) -> None:
        participants = tuple(check_participant_id(p) for p in self.participants)
        duplicates = sorted({p for p in participants if participants.count(p) > 1})
        if duplicates:
            raise ValueError(f"participant ids listed more than once: {', '.join(duplicates)}")
        # bool is an int, but "delivery_limit: true" in a config file is a mistake.
        if isinstance(self.delivery_limit, bool) or not isinstance(self.delivery_limit, int):
            raise ValueError(f"delivery_limit must be an integer, got {self.delivery_limit!r}")
        if self.delivery_limit < 1:
            raise ValueError(f"delivery_limit must be at least 1, got {self.delivery_limit}")
        object.__setattr__(self, "participants", participants)

    def mailbox_queue(self, participant_id: str) -> str:
        """Return the mailbox queue name of a participant."""
        return mailbox_queue_name(participant_id, self.mailbox_prefix)

    def mailbox_routing_key(self, participant_id: str) -> str:
        """Return the routing key that delivers to a participant's mailbox."""
        return check_participant_id(participant_id)

    def queue_arguments(self) -> dict[str, Any]:
        """Return the arguments every quorum queue is declared with: an explicit limit and safe dead-lettering."""
        return {
            "x-queue-type": "quorum",
            # Set explicitly: 3.x has no limit by default (a poison message loops forever), 4.x
            # silently applies 20; either way the exchange's own setting must hold.
            "x-delivery-limit": self.delivery_limit,
            "x-dead-letter-exchange": self.dead_exchange,
            # Default strategy (at-most-once) drops the message if the dead-letter
            # stream cannot take it; at-least-once keeps it in the source queue.
            "x-dead-letter-strategy": "at-least-once",
            # at-least-once silently falls back to at-most-once without this.
            "x-overflow": "reject-publish",
        }

    def dead_letter_arguments(self) -> dict[str, Any]:
        """Return the arguments of the dead-letter stream: no delivery limit applies to a stream, and no retention."""
        # Streams are read by offset without removing or requeueing anything, so browsing cannot
        # wear a dead letter out; retention, if wanted, is an operator's policy (max-age).
        return {"x-queue-type": "stream"}

    def exchanges(self) -> tuple[ExchangeSpec, ...]:
        """Return the exchanges, the dead-letter exchange first."""
        return (
            ExchangeSpec(self.dead_exchange, "fanout"),
            ExchangeSpec(self.inbound_exchange, "direct"),
            ExchangeSpec(self.mailbox_exchange, "direct"),
        )

    def queues(self) -> tuple[QueueSpec, ...]:
        """Return the queues, the dead-letter stream first (the others dead-letter into it)."""
        live = self.queue_arguments()
        return (
            QueueSpec(self.dead_letters, self.dead_letter_arguments()),
            QueueSpec(self.inbound_queue, dict(live)),
            *(QueueSpec(self.mailbox_queue(p), dict(live)) for p in self.participants),
        )

    def bindings(self) -> tuple[BindingSpec, ...]:
        """Return the bindings between the exchanges and the queues."""
        return (
            # A fanout exchange ignores the key; empty is the conventional value.
            BindingSpec(self.dead_letters, self.dead_exchange, ""),
            BindingSpec(self.inbound_queue, self.inbound_exchange, self.inbound_routing_key),
            *(
                BindingSpec(self.mailbox_queue(p), self.mailbox_exchange, self.mailbox_routing_key(p))
                for p in self.participants
            ),
        )


def declare(channel: BlockingChannel, topology: Topology) -> None:
    """Declare every exchange, queue and binding of the topology; safe to repeat.

    On a conflict the broker closes the channel, so the caller must open a new
    one before using the connection again.
    """
    for exchange in topology.exchanges():
        with _refusals_explained("exchange", exchange.name):
            channel.exchange_declare(exchange.name, exchange_type=exchange.type, durable=True)
    for queue in topology.queues():
        with _refusals_explained("queue", queue.name):
            channel.queue_declare(queue.name, durable=True, arguments=queue.arguments)
    for binding in topology.bindings():
        with _refusals_explained("binding of queue", binding.queue):
            channel.queue_bind(binding.queue, binding.exchange, routing_key=binding.routing_key)


@contextmanager
def _refusals_explained(kind: str, name: str) -> Iterator[None]:
    """Turn the broker closing the channel while declaring one object into a TopologyError."""
    try:
        yield
    except pika.exceptions.ChannelClosedByBroker as exc:
        text = exc.reply_text or ""
        if exc.reply_code == 406:
            match = _INEQUIVALENT.search(text)
            if match:
                raise TopologyConflict(
                    match["kind"],
                    match["name"],
                    match["arg"],
                    wanted=_broker_value(match["received"]),
                    current=_broker_value(match["current"]),
                    detail=text,
                ) from exc
            raise TopologyConflict(kind, name, None, detail=text) from exc
        if exc.reply_code == 403:
            raise TopologyError(
                f"the broker user may not declare {kind} '{name}' "
                f"(it needs configure permission there): {text}"
            ) from exc
        raise TopologyError(f"declaring {kind} '{name}' failed: {exc.reply_code} {text}") from exc


def _broker_value(text: str) -> str:
    """Reduce the broker's wording of an argument value to the value itself."""
    text = text.strip()
    if text == "none":
        return "not set"
    match = re.fullmatch(r"the value '(.*)' of type '.*'", text) or re.fullmatch(r"'(.*)'", text)
    return repr(match[1]) if match else text
