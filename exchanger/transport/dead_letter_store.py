"""The dead-letter stream: read by offset, never consumed; replays and purges are appended records."""

from __future__ import annotations

import getpass
import logging
import time
from collections.abc import Iterator
from dataclasses import dataclass, field

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel

from exchanger.transport.dead_letters import (
    BROKER_DEATH_HEADERS,
    REPLAY_OF,
    REPLAY_USER,
    REPLAYS,
    STREAM_OFFSET,
    DeadLetter,
    Settlement,
    broker_died,
    storable_headers,
)
from exchanger.transport.names import (
    DEAD_EXCHANGE,
    DEAD_LETTERS,
    INBOUND_EXCHANGE,
    INBOUND_ROUTING_KEY,
    LEGACY_DEAD_QUEUE,
)

# The broker sends a stream's entries in chunks, as fast as the consumer acknowledges them; a pause
# this long after the last one means the reader has reached the end. The broker's entry counter lags
# behind appends, so once the reader has passed it a shorter pause is enough.
IDLE_SECONDS = 0.5
CAUGHT_UP_SECONDS = 0.2
# How long to wait for the first entry when the broker says the stream is not empty (its counter lags).
FIRST_ENTRY_SECONDS = 5.0
PREFETCH = 500


@dataclass
class DeadLetterLog:
    """What the stream holds: every dead letter (first copy of each id) and every settlement."""

    letters: dict[str, DeadLetter] = field(default_factory=dict)
    settled: dict[str, Settlement] = field(default_factory=dict)
    next_offset: int = 0

    def add(self, offset: int, properties: pika.BasicProperties, body: bytes, daemon_user: str) -> None:
        """Take in one stream entry."""
        self.next_offset = max(self.next_offset, offset + 1)
        settlement = Settlement.from_message(properties, daemon_user)
        if settlement is not None:
            self.settled.setdefault(settlement.letter_id, settlement)
            return
        letter = DeadLetter.from_message(properties, body, daemon_user)
        # At-least-once dead-lettering may append a letter twice; the first copy stands for both.
        self.letters.setdefault(letter.id, letter)

    def pending(self) -> list[DeadLetter]:
        """The dead letters nobody has replayed or purged, oldest first."""
        return [letter for letter_id, letter in self.letters.items() if letter_id not in self.settled]


def stream_entries(
    channel: BlockingChannel, stream: str = DEAD_LETTERS, *, start: int | str = "first", known: int = 0
) -> Iterator[tuple[int, pika.BasicProperties, bytes]]:
    """Yield (offset, properties, body) of the entries from ``start`` on, until the broker has no more to send.

    ``known`` is how many entries the caller has already read. A stream consumer needs a prefetch
    and manual acknowledgements; an acknowledgement only lets the broker send more, it removes nothing.
    The channel is closed at the end rather than the consumer cancelled: pika's cancel rejects, with
    requeue, whatever it holds, and nothing here ever hands a message back.
    """
    hint = channel.queue_declare(stream, passive=True).method.message_count
    channel.basic_qos(prefetch_count=PREFETCH)
    began = last = time.monotonic()
    seen = False
    reached = known - 1
    try:
        for method, properties, body in channel.consume(
            stream, auto_ack=False, arguments={"x-stream-offset": start}, inactivity_timeout=0.1
        ):
            now = time.monotonic()
            if method is None:
                waited_for_first = not seen and hint > known and now - began < FIRST_ENTRY_SECONDS
                pause = CAUGHT_UP_SECONDS if reached + 1 >= hint > 0 else IDLE_SECONDS
                if now - last >= pause and not waited_for_first:
                    return
                continue
            last, seen = now, True
            channel.basic_ack(method.delivery_tag)
            offset = (properties.headers or {}).get(STREAM_OFFSET)
            if isinstance(offset, int):
                reached = max(reached, offset)
                yield offset, properties, body
    finally:
        if channel.is_open:
            channel.close()


def read_log(channel: BlockingChannel, daemon_user: str, stream: str = DEAD_LETTERS,
             into: DeadLetterLog | None = None) -> DeadLetterLog:
    """Read the dead-letter stream (from where ``into`` stopped, or from the start) without changing it."""
    log = into or DeadLetterLog()
    start = log.next_offset if log.next_offset else "first"
    for offset, properties, body in stream_entries(channel, stream, start=start, known=log.next_offset):
        # A numeric start attaches at the chunk holding that offset, so earlier entries may come again.
        if offset >= log.next_offset:
            log.add(offset, properties, body, daemon_user)
    return log


class DeadLetterStore:
    """A session on the dead-letter stream: browsing reads, replaying and purging append a settlement."""

    def __init__(self, connection: pika.BlockingConnection, daemon_user: str, stream: str = DEAD_LETTERS):
        self.connection = connection
        self.daemon_user = daemon_user
        self.stream = stream
        self.operator = _operator()
        self._writer = connection.channel()
        self._writer.confirm_delivery()

    def read(self) -> DeadLetterLog:
        """Everything the stream holds now; nothing is taken from it."""
        return read_log(self.connection.channel(), self.daemon_user, self.stream)

    def browse(self, limit: int | None = None) -> list[DeadLetter]:
        """The pending dead letters, oldest first, at most ``limit``."""
        pending = self.read().pending()
        return pending if limit is None else pending[:limit]

    def _settle(self, letter: DeadLetter, settled_as: str) -> None:
        settlement = Settlement(letter.id, settled_as, self.operator, time.time())
        # Straight to the stream, not through the dead-letter exchange: nothing else should get a copy.
        self._writer.basic_publish("", self.stream, b"", settlement.properties(self.daemon_user), mandatory=True)

    def purge(self, letter: DeadLetter) -> None:
        """Hide a dead letter for good (the stream keeps its bytes until its retention removes them)."""
        self._settle(letter, "purged")

    def replay(self, letter: DeadLetter) -> None:
        """Send a dead letter through the pipeline again, as its original sender, then record it as replayed.

        A letter with no known sender is refused (ValueError): replayed by the daemon's user without
        naming one, it would pass as the platform's own message.

        At least once: should the record fail after the broker confirmed the replay, the letter stays
        pending, and a second replay carries the same replay-of id, which the message log shows.
        """
        if not letter.sender:
            raise ValueError(f"dead letter {letter.id} names no broker-verified sender: it cannot be replayed")
        headers = {k: v for k, v in letter.headers.items() if not str(k).startswith(("x-exchanger-", *BROKER_DEATH_HEADERS))}
        headers[REPLAY_OF] = letter.id
        headers[REPLAYS] = letter.replays + 1
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
        self._writer.basic_publish(INBOUND_EXCHANGE, INBOUND_ROUTING_KEY, letter.body, properties, mandatory=True)
        self._settle(letter, "replayed")

    def close(self) -> None:
        """Close the session's connection."""
        if self.connection.is_open:
            self.connection.close()

    def __enter__(self) -> DeadLetterStore:
        return self

    def __exit__(self, *_exc) -> None:
        self.close()


def dead_letter_store(parameters: pika.ConnectionParameters, daemon_user: str) -> DeadLetterStore:
    """Connect now (so a refusal surfaces here) and return a session to use in a ``with`` block."""
    return DeadLetterStore(pika.BlockingConnection(parameters), daemon_user)


def legacy_queue_depth(connection: pika.BlockingConnection, name: str = LEGACY_DEAD_QUEUE) -> int | None:
    """Messages in a dead-letter queue left by an earlier version, or None when there is none."""
    channel = connection.channel()
    # The usual answer is 404 (no such queue): pika would log it as a warning at every start.
    pika_channel_log = logging.getLogger("pika.channel")
    level = pika_channel_log.level
    pika_channel_log.setLevel(logging.ERROR)
    try:
        return channel.queue_declare(name, passive=True).method.message_count
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            return None
        raise
    finally:
        pika_channel_log.setLevel(level)
        if channel.is_open:
            channel.close()


def migrate_legacy_queue(connection: pika.BlockingConnection, daemon_user: str, stream: str = DEAD_LETTERS,
                         name: str = LEGACY_DEAD_QUEUE) -> int:
    """Move every message of an earlier version's dead-letter queue into the stream, then delete the queue.

    The queue is unbound first so no new dead letter lands there. Each message is taken once and
    acknowledged only after the stream has confirmed its copy: it is never handed back, so no
    delivery limit can drop it. Returns how many were moved.
    """
    if legacy_queue_depth(connection, name) is None:
        return 0
    channel = connection.channel()
    channel.confirm_delivery()
    channel.queue_declare(stream, passive=True)  # the stream must exist before anything leaves the queue
    channel.queue_unbind(name, DEAD_EXCHANGE, routing_key="")
    moved = 0
    while True:
        method, properties, body = channel.basic_get(name, auto_ack=False)
        if method is None:
            break
        channel.basic_publish("", stream, body, migrated_properties(properties, daemon_user), mandatory=True)
        channel.basic_ack(method.delivery_tag)
        moved += 1
    # Quorum queues refuse queue.delete with if-empty; unbound, the queue gets nothing new, so check then delete.
    if channel.queue_declare(name, passive=True).method.message_count == 0:
        channel.queue_delete(name)
    channel.close()
    return moved


def migrated_properties(properties: pika.BasicProperties, daemon_user: str) -> pika.BasicProperties:
    """The same message, republished under the daemon's user_id, with only what the broker vouched for.

    The broker refuses a user_id other than the publisher's own, so the sender moves to a header,
    which the daemon's user_id makes believable; a message the broker dead-lettered loses the
    ``x-exchanger-*`` headers its publisher may have set.
    """
    headers = dict(properties.headers or {})
    if properties.user_id or broker_died(headers):
        replayed_for = headers.get(REPLAY_USER) if properties.user_id == daemon_user else None
        headers = {k: v for k, v in headers.items() if not str(k).startswith("x-exchanger-")}
        if replayed_for or properties.user_id:
            headers["x-exchanger-user-id"] = replayed_for or properties.user_id
    copied = pika.BasicProperties(**{k: v for k, v in vars(properties).items() if k != "user_id"})
    copied.headers = storable_headers(headers)
    copied.user_id = daemon_user
    return copied


def _operator() -> str:
    """Who runs the command, for the settlement record."""
    try:
        return getpass.getuser()
    except Exception:  # no login name in a bare container: the record still says something
        return "unknown"
