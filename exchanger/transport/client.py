"""A blocking participant client: publish to the inbound exchange and drain a mailbox."""

from __future__ import annotations

import queue
import threading
import time
from collections.abc import Iterator, Mapping
from dataclasses import dataclass, field
from typing import Any

import pika
import pika.exceptions
from pika.adapters.blocking_connection import BlockingChannel, BlockingConnection

from exchanger.errors import ExchangerError
from exchanger.transport.names import INBOUND_EXCHANGE, INBOUND_ROUTING_KEY
from exchanger.transport.topology import mailbox_queue_name
from exchanger.transport.url import connection_parameters, redact

XML_CONTENT_TYPE = "application/xml"
PERSISTENT = 2

# basic.get is polled rather than consumed so that no message is ever fetched
# ahead of the caller: on quorum queues every fetched-then-returned message
# counts towards the delivery limit.
_FIRST_PAUSE = 0.05
_LONGEST_PAUSE = 0.5


class DeliveryError(ExchangerError):
    """The broker did not take, or did not hand over, a message as asked."""


@dataclass(frozen=True)
class Received:
    """One message taken from a mailbox."""

    body: bytes
    headers: dict[str, Any] = field(default_factory=dict)
    message_id: str | None = None
    user_id: str | None = None
    type: str | None = None
    correlation_id: str | None = None
    timestamp: int | None = None
    content_type: str | None = None
    redelivered: bool = False

    @property
    def delivery_count(self) -> int:
        """How many times the broker handed this message out before (quorum queues count)."""
        return int(self.headers.get("x-delivery-count", 0))


def publish_inbound(
    url: str,
    body: bytes,
    *,
    user_id: str,
    message_id: str | None = None,
    headers: Mapping[str, Any] | None = None,
    timeout: float = 10,
) -> None:
    """Publish one XML document to the inbound exchange and wait for the broker to confirm it.

    Returns once the broker has stored the message in the inbound queue and
    raises DeliveryError otherwise, within ``timeout`` seconds in all cases.
    After a timeout or a lost connection the message may or may not have arrived.
    """
    properties = pika.BasicProperties(
        content_type=XML_CONTENT_TYPE,
        delivery_mode=PERSISTENT,
        # The broker refuses the message unless this equals the login, which is
        # what lets the exchange trust it as the sender's identity.
        user_id=user_id,
        message_id=message_id,
        timestamp=int(time.time()),
        headers=dict(headers) if headers else None,
    )
    outcome: queue.SimpleQueue[BaseException | None] = queue.SimpleQueue()

    def attempt() -> None:
        try:
            _publish(url, body, properties, timeout)
        except BaseException as exc:  # noqa: BLE001 - handed over to the calling thread
            outcome.put(exc)
        else:
            outcome.put(None)

    # A blocking channel waits for the confirm with no time limit of its own
    # (a broker that is up but cannot reach quorum never answers), so the wait
    # runs in a thread of its own that is abandoned when the time is up; its
    # connection dies with the heartbeat.
    worker = threading.Thread(target=attempt, name=f"exchanger-send-{user_id}", daemon=True)
    worker.start()
    try:
        error = outcome.get(timeout=timeout)
    except queue.Empty:
        raise DeliveryError(
            f"the broker did not confirm the message within {timeout:g}s; it may or may not have arrived"
        ) from None
    if error is not None:
        raise error


def _publish(url: str, body: bytes, properties: pika.BasicProperties, timeout: float) -> None:
    connection = _connect(url, client_name=f"exchanger send {properties.user_id}", timeout=timeout)
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        channel.basic_publish(INBOUND_EXCHANGE, INBOUND_ROUTING_KEY, body, properties, mandatory=True)
    except pika.exceptions.UnroutableError as exc:
        raise DeliveryError(
            f"no queue is bound to exchange '{INBOUND_EXCHANGE}' with key '{INBOUND_ROUTING_KEY}' "
            "(has the topology been applied?)"
        ) from exc
    except pika.exceptions.NackError as exc:
        raise DeliveryError("the broker refused to store the message (the inbound queue may be full)") from exc
    except pika.exceptions.ChannelClosedByBroker as exc:
        raise DeliveryError(_refusal(exc, properties.user_id or "")) from exc
    except pika.exceptions.ConnectionBlockedTimeout as exc:
        raise DeliveryError(
            f"the broker blocked publishing for more than {timeout:g}s (memory or disk alarm)"
        ) from exc
    except pika.exceptions.AMQPError as exc:
        raise DeliveryError(
            "the connection failed before the broker confirmed the message; "
            f"it may or may not have arrived: {exc!r}"
        ) from exc
    finally:
        _close_quietly(connection)


def drain_mailbox(
    url: str,
    participant_id: str,
    *,
    count: int | None,
    wait: float,
    mailbox: str | None = None,
) -> Iterator[Received]:
    """Yield messages from a participant's mailbox, each acknowledged once the caller is done with it.

    The guarantee is at least once: a message is acknowledged only when the
    caller asks for the next one (or the iteration ends by itself), that is
    after the loop body has handled it. If the body raises or breaks out of
    the loop, the message in hand goes back to the mailbox and will be handed
    out again; on a quorum queue every such return counts towards the
    delivery limit, past which the broker dead-letters the message. Iteration
    stops after ``count`` messages (``None``: no limit) or once nothing has
    arrived for ``wait`` seconds. ``mailbox`` overrides the queue name.
    The connection's heartbeats are not served
    while the caller holds a message, so a body that takes longer than about
    two heartbeat intervals loses the connection and sees the message again.
    """
    if count is not None and count < 1:
        raise ValueError(f"count must be at least 1 or None, got {count}")
    if wait < 0:
        raise ValueError(f"wait must not be negative, got {wait}")
    mailbox = mailbox or mailbox_queue_name(participant_id)
    connection = _connect(url, client_name=f"exchanger receive {participant_id}", timeout=max(wait, 10))
    try:
        channel = connection.channel()
        received = 0
        idle_since = time.monotonic()
        pause = _FIRST_PAUSE
        while count is None or received < count:
            try:
                method, properties, body = channel.basic_get(mailbox, auto_ack=False)
            except pika.exceptions.ChannelClosedByBroker as exc:
                raise DeliveryError(_refusal(exc, participant_id, mailbox=mailbox)) from exc
            except pika.exceptions.AMQPError as exc:
                raise DeliveryError(f"lost the connection while reading '{mailbox}': {exc!r}") from exc
            if method is None:
                idle = time.monotonic() - idle_since
                if idle >= wait:
                    return
                # connection.sleep keeps heartbeats flowing while we wait.
                connection.sleep(min(pause, wait - idle))
                pause = min(pause * 2, _LONGEST_PAUSE)
                continue
            handled = False
            try:
                yield _received(method, properties, body)
                handled = True
            finally:
                _settle(channel, method.delivery_tag, handled)
            received += 1
            idle_since = time.monotonic()
            pause = _FIRST_PAUSE
    finally:
        _close_quietly(connection)


def _settle(channel: BlockingChannel, delivery_tag: int, handled: bool) -> None:
    if handled:
        try:
            channel.basic_ack(delivery_tag)
        except pika.exceptions.AMQPError as exc:
            raise DeliveryError(
                f"could not acknowledge a handled message, so it will be delivered again: {exc!r}"
            ) from exc
        return
    # Returning it now rather than at disconnect makes it available to the
    # next reader at once; either way it counts as one delivery attempt.
    try:
        channel.basic_nack(delivery_tag, requeue=True)
    except pika.exceptions.AMQPError:
        pass  # the broker returns unacknowledged messages when the connection ends


def _received(method: Any, properties: pika.BasicProperties, body: bytes) -> Received:
    return Received(
        body=body,
        headers=dict(properties.headers or {}),
        message_id=properties.message_id,
        user_id=properties.user_id,
        type=properties.type,
        correlation_id=properties.correlation_id,
        timestamp=properties.timestamp,
        content_type=properties.content_type,
        redelivered=bool(method.redelivered),
    )


def _connect(url: str, *, client_name: str, timeout: float) -> BlockingConnection:
    params = connection_parameters(url, blocked_connection_timeout=timeout, client_name=client_name)
    params.socket_timeout = timeout
    params.stack_timeout = timeout
    params.connection_attempts = 1
    try:
        return pika.BlockingConnection(params)
    except pika.exceptions.ProbableAuthenticationError as exc:
        raise DeliveryError(
            f"the broker refused the login of '{params.credentials.username}' (wrong user name or password)"
        ) from exc
    except pika.exceptions.ProbableAccessDeniedError as exc:
        raise DeliveryError(
            f"broker user '{params.credentials.username}' may not use virtual host '{params.virtual_host}'"
        ) from exc
    except pika.exceptions.AMQPError as exc:
        raise DeliveryError(f"cannot connect to the broker at {redact(url)}: {exc!r}") from exc


def _refusal(exc: pika.exceptions.ChannelClosedByBroker, user: str, *, mailbox: str | None = None) -> str:
    text = exc.reply_text or ""
    if exc.reply_code == 406 and "user_id" in text:
        return f"the broker refused user_id '{user}': it must equal the broker user logged in ({text})"
    if exc.reply_code == 403:
        target = f"queue '{mailbox}'" if mailbox else f"exchange '{INBOUND_EXCHANGE}'"
        return f"the broker user is not allowed to use {target} ({text})"
    if exc.reply_code == 404:
        target = f"queue '{mailbox}'" if mailbox else f"exchange '{INBOUND_EXCHANGE}'"
        return f"{target} does not exist (has the topology been applied?) ({text})"
    return f"the broker closed the channel: {exc.reply_code} {text}"


def _close_quietly(connection: BlockingConnection) -> None:
    try:
        if connection.is_open:
            connection.close()
    except pika.exceptions.AMQPError:
        pass  # closing is best effort; the broker cleans up after a dropped connection
