"""The dead-letter queue as operators see it: browse, replay and purge, without losing anything."""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

import pika
import pika.exceptions

from exchanger.transport.names import DEAD_QUEUE, INBOUND_EXCHANGE, INBOUND_ROUTING_KEY

REPLAY_OF = "x-exchanger-replay-of"
REPLAY_USER = "x-exchanger-replay-user-id"
REPLAYS = "x-exchanger-replays"
DEAD_LETTER_ID = "x-exchanger-dead-letter-id"
MAX_REPLAYS = 3


@dataclass(frozen=True)
class DeadLetter:
    """One message in the dead-letter queue, with what its headers say about why it is there."""

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

    @classmethod
    def from_message(cls, properties: pika.BasicProperties, body: bytes) -> DeadLetter:
        """Read a dead letter from the broker: one the pipeline rejected, or one the broker gave up on."""
        headers = dict(properties.headers or {})
        received = headers.get("x-exchanger-received-at")
        if "x-exchanger-stage" in headers:
            stage, reason = headers["x-exchanger-stage"], headers.get("x-exchanger-reason", "")
            dead_at = received / 1000 if isinstance(received, int) else None
        else:
            # Dead-lettered by the broker after its delivery limit: a message that crashed a stage every time.
            deaths = headers.get("x-death") or [{}]
            stage = "broker"
            why = headers.get("x-first-death-reason", deaths[0].get("reason", "unknown"))
            queue = headers.get("x-first-death-queue", deaths[0].get("queue", "?"))
            reason = f"[broker/{why}] the broker dead-lettered it from {queue} (a stage failed on it every time)"
            moment = deaths[0].get("time")
            dead_at = moment.timestamp() if hasattr(moment, "timestamp") else (properties.timestamp or None)
        # Each entry has its own id, even when the same bytes were rejected twice.
        letter_id = headers.get(DEAD_LETTER_ID) or hashlib.sha256(body + str(dead_at).encode()).hexdigest()[:12]
        try:
            reasons = json.loads(headers.get("x-exchanger-reasons", "[]"))
        except ValueError:
            reasons = []
        return cls(
            id=str(letter_id),
            body=body,
            headers=headers,
            stage=stage,
            reason=str(reason),
            sender=headers.get("x-exchanger-user-id") or properties.user_id,
            message_type=properties.type,
            message_id=headers.get("x-exchanger-orig-message-id") or properties.message_id,
            dead_at=dead_at,
            replays=headers[REPLAYS] if isinstance(headers.get(REPLAYS), int) else 0,
            reasons=reasons,
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


class DeadLetterQueue:
    """A browsing session on the dead-letter queue: nothing leaves it unless acked here explicitly.

    Browsing takes messages without acknowledging them; closing the session hands every one not
    replayed or purged back to the queue (the dead queue has no delivery limit, so browsing
    never drops anything).
    """

    def __init__(self, connection: pika.BlockingConnection, daemon_user: str):
        self.connection = connection
        self.daemon_user = daemon_user
        self.channel = connection.channel()
        self.channel.confirm_delivery()
        self._held: list[tuple[int, DeadLetter]] = []

    def browse(self, limit: int | None = None) -> list[DeadLetter]:
        """Take up to ``limit`` dead letters (all there were when browsing began) and hold them."""
        depth = self.channel.queue_declare(DEAD_QUEUE, passive=True).method.message_count
        wanted = depth if limit is None else min(depth, limit)
        while len(self._held) < wanted:
            method, properties, body = self.channel.basic_get(DEAD_QUEUE, auto_ack=False)
            if method is None:
                break
            self._held.append((method.delivery_tag, DeadLetter.from_message(properties, body)))
        return [letter for _, letter in self._held]

    def _tag(self, letter: DeadLetter) -> int:
        return next(tag for tag, held in self._held if held is letter)

    def purge(self, letter: DeadLetter) -> None:
        """Remove one dead letter for good."""
        self.channel.basic_ack(self._tag(letter))

    def replay(self, letter: DeadLetter) -> None:
        """Send a dead letter through the pipeline again, as its original sender; remove it once the broker has it."""
        headers = {k: v for k, v in letter.headers.items() if not k.startswith(("x-exchanger-", "x-death", "x-first-death", "x-last-death"))}
        headers[REPLAY_OF] = letter.id
        headers[REPLAYS] = letter.replays + 1
        if letter.sender:
            headers[REPLAY_USER] = letter.sender
        properties = pika.BasicProperties(
            delivery_mode=pika.DeliveryMode.Persistent,
            content_type="application/xml",
            message_id=letter.headers.get("x-exchanger-orig-message-id") or None,
            # Only the daemon's own user may name another participant in REPLAY_USER: the broker checks user_id.
            user_id=self.daemon_user,
            headers=headers,
            timestamp=int(time.time()),
        )
        self.channel.basic_publish(INBOUND_EXCHANGE, INBOUND_ROUTING_KEY, letter.body, properties, mandatory=True)
        self.channel.basic_ack(self._tag(letter))

    def close(self) -> None:
        """Hand every dead letter still held back to the queue."""
        if self.connection.is_open:
            self.connection.close()


@contextmanager
def dead_letter_queue(parameters: pika.ConnectionParameters, daemon_user: str) -> Iterator[DeadLetterQueue]:
    """Open a browsing session on the dead-letter queue; it always hands back what it did not remove."""
    connection = pika.BlockingConnection(parameters)
    queue = DeadLetterQueue(connection, daemon_user)
    try:
        yield queue
    finally:
        queue.close()
