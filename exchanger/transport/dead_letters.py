"""A dead letter as operators see it: why it is dead, who sent it, and the record that settles it."""

from __future__ import annotations

import decimal
import hashlib
import json
from dataclasses import dataclass, field

import pika

REPLAY_OF = "x-exchanger-replay-of"
REPLAY_USER = "x-exchanger-replay-user-id"
REPLAYS = "x-exchanger-replays"
DEAD_LETTER_ID = "x-exchanger-dead-letter-id"
MAX_REPLAYS = 3
# A settlement is an empty entry appended to the dead-letter stream: the stream itself is append-only.
SETTLES = "x-exchanger-settles"
SETTLED_AS = "x-exchanger-settled-as"
SETTLED_BY = "x-exchanger-settled-by"
SETTLEMENT_TYPE = "exchanger.dead-letter-settlement"
STREAM_OFFSET = "x-stream-offset"
# The broker's own record of dead-lettering a message; a letter the exchange writes never carries it.
BROKER_DEATH_HEADERS = ("x-death", "x-first-death-", "x-last-death-")


def storable(value):
    """A header value the dead-letter stream keeps: decimals become their text, tables and arrays JSON text.

    Seen on RabbitMQ 3.10.8: a stream stores a message's headers as AMQP 1.0 application properties,
    which hold only simple values, so it drops table and array values without a word; and it refuses
    a decimal outright, closing the publisher's connection (541 INTERNAL_ERROR).
    """
    if isinstance(value, decimal.Decimal):
        return str(value)
    if isinstance(value, (dict, list)):
        return json.dumps(value, default=_plain, ensure_ascii=False, sort_keys=True)
    return value


def storable_headers(headers: dict) -> dict:
    """Headers with every value made storable in the dead-letter stream."""
    return {name: storable(value) for name, value in headers.items()}


def _plain(value):
    """What JSON cannot write itself, as text."""
    if isinstance(value, bytes):
        return value.decode("utf-8", errors="replace")
    return str(value)


def broker_died(headers: dict) -> bool:
    """True when the headers carry the broker's dead-lettering record."""
    return any(str(name).startswith(BROKER_DEATH_HEADERS) for name in headers)


@dataclass(frozen=True)
class DeadLetter:
    """One entry of the dead-letter stream, with what its headers say about why it is there."""

    id: str
    body: bytes
    headers: dict
    stage: str
    reason: str
    sender: str | None
    message_type: str | None
    message_id: str | None
    dead_at: float | None
    replays: int = 0
    reasons: list = field(default_factory=list)
    offset: int | None = None

    @classmethod
    def from_message(cls, properties: pika.BasicProperties, body: bytes, daemon_user: str | None = None) -> DeadLetter:
        """Read a dead letter from the stream: one the pipeline rejected, or one the broker gave up on.

        A message the broker dead-lettered keeps every header its publisher set, ``x-exchanger-*``
        included, so those are believed only on an entry the exchange wrote: one without a user_id
        and without the broker's death headers (the pipeline's), or one under the daemon's user_id,
        which the broker vouches for. Otherwise the sender is the broker-verified user_id alone.
        """
        headers = dict(properties.headers or {})
        offset = headers.pop(STREAM_OFFSET, None)
        offset = offset if isinstance(offset, int) else None
        own = daemon_user is not None and properties.user_id == daemon_user
        died = broker_died(headers)
        ours = own or (properties.user_id is None and not died)
        if ours and "x-exchanger-stage" in headers:
            received = headers.get("x-exchanger-received-at")
            stage, reason = headers["x-exchanger-stage"], headers.get("x-exchanger-reason", "")
            dead_at = received / 1000 if isinstance(received, int) else None
        else:
            # Dead-lettered by the broker after its delivery limit: a message that crashed a stage every time.
            deaths = headers.get("x-death")
            death = deaths[0] if isinstance(deaths, list) and deaths and isinstance(deaths[0], dict) else {}
            stage = "broker"
            why = headers.get("x-first-death-reason", death.get("reason", "unknown"))
            queue = headers.get("x-first-death-queue", death.get("queue", "?"))
            reason = f"[broker/{_text(why)}] the broker dead-lettered it from {_text(queue)} (a stage failed on it every time)"
            moment = death.get("time")
            dead_at = moment.timestamp() if hasattr(moment, "timestamp") else (properties.timestamp or None)
        # The pipeline names each dead letter (a copy published twice keeps its name); one the broker
        # made is named by its place in the stream, so the same bytes dead twice are two letters.
        place = str(offset if offset is not None else dead_at).encode()
        named = headers.get(DEAD_LETTER_ID) if ours else None
        letter_id = _text(named) if named else hashlib.sha256(body + place).hexdigest()[:12]
        if ours:
            sender = headers.get("x-exchanger-user-id") or (headers.get(REPLAY_USER) if own else properties.user_id)
        else:
            sender = properties.user_id
        return cls(
            id=letter_id,
            body=body,
            headers=headers,
            stage=_text(stage),
            reason=_text(reason),
            sender=_text(sender) if sender else None,
            message_type=properties.type,
            message_id=(headers.get("x-exchanger-orig-message-id") if ours else None) or properties.message_id,
            dead_at=dead_at,
            replays=headers[REPLAYS] if ours and isinstance(headers.get(REPLAYS), int) else 0,
            reasons=_reasons(headers.get("x-exchanger-reasons")) if ours else [],
            offset=offset,
        )

    def matches(self, *, reason: str | None = None, sender: str | None = None, message_type: str | None = None,
                since: float | None = None, until: float | None = None) -> bool:
        """True when the dead letter passes every filter given."""
        if reason and reason not in f"{self.stage}/{self.reason}":
            return False
        if sender and sender != self.sender:
            return False
        if message_type and message_type != self.message_type:
            return False
        if since is not None and (self.dead_at is None or self.dead_at < since):
            return False
        if until is not None and (self.dead_at is None or self.dead_at > until):
            return False
        return True


def _text(value) -> str:
    """A header value as text, whatever type the publisher gave it."""
    return value.decode("utf-8", errors="replace") if isinstance(value, bytes) else str(value)


def _reasons(raw) -> list[dict]:
    """The pipeline's reasons header (JSON), or nothing when it does not hold a list of reasons."""
    try:
        reasons = json.loads(raw) if isinstance(raw, (str, bytes)) else []
    except ValueError:
        return []
    keys = ("stage", "code", "message")
    if not isinstance(reasons, list) or not all(isinstance(r, dict) and all(k in r for k in keys) for r in reasons):
        return []
    return reasons


@dataclass(frozen=True)
class Settlement:
    """The record that an operator replayed or purged a dead letter; the letter stays in the stream."""

    letter_id: str
    settled_as: str
    settled_by: str
    at: float

    @classmethod
    def from_message(cls, properties: pika.BasicProperties, daemon_user: str) -> Settlement | None:
        """The settlement a stream entry records, or None when the entry is a dead letter."""
        headers = properties.headers or {}
        if properties.type != SETTLEMENT_TYPE or not isinstance(headers.get(SETTLES), (str, bytes)):
            return None
        # The broker vouches for user_id, and only the daemon's user writes settlements. A participant's
        # message that the broker dead-lettered keeps its own headers, so it could claim to be one: it
        # never passes, since it carries the participant's user_id and the broker's death headers.
        if properties.user_id != daemon_user or broker_died(headers):
            return None
        letter_id = headers[SETTLES]
        return cls(
            letter_id=letter_id.decode() if isinstance(letter_id, bytes) else letter_id,
            settled_as=str(headers.get(SETTLED_AS, "settled")),
            settled_by=str(headers.get(SETTLED_BY, "?")),
            at=float(properties.timestamp or 0),
        )

    def properties(self, daemon_user: str) -> pika.BasicProperties:
        """The AMQP properties that carry this settlement into the stream."""
        return pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent,
            user_id=daemon_user,
            type=SETTLEMENT_TYPE,
            timestamp=int(self.at),
            headers={SETTLES: self.letter_id, SETTLED_AS: self.settled_as, SETTLED_BY: self.settled_by},
        )
