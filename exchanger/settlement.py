"""A worker's outbound side, on the I/O thread: publish a message's copies and receipt, track their
confirms, commit the settlement to the message log, then ack the inbound delivery.

The compute thread and the message-log writer hand work to the I/O thread through one queue that
wakes pika's loop once per batch rather than once per message: under load, a wake-up (a write to
the loop's socket pair, and the loop's pass over it) costs as much as the work it carries.
"""

from __future__ import annotations

import functools
import time
from collections import deque

import pika

from exchanger import metrics
from exchanger.faults import crash_point
from exchanger.pipeline import Disposition
from exchanger.transport.confirms import Settlement

MAX_PUBLISH_ATTEMPTS = 6
PERSISTENT = pika.DeliveryMode.Persistent


class Settling:
    """The settlement half of a Worker: expects its connection, channel, tracker, journal, log and generation."""

    def _init_settling(self) -> None:
        self._inbox: deque = deque()  # callbacks for the I/O thread, from the compute and writer threads
        self._wake_pending = False
        self._delivered: dict[tuple[str, str], object] = {}  # bound DELIVERIES counters by destination and kind

    # ---- hand-off to the I/O thread (any thread) -------------------------------------------------

    def _from_compute(self, callback, *, defer: bool = False) -> None:
        """Run ``callback`` on the I/O thread; one wake-up of its loop serves every callback queued meanwhile.

        With ``defer`` the loop is not woken for it now: the caller promises a later ``_from_compute``
        or ``_wake_io`` (the compute thread defers while more deliveries wait for it, a few at most).
        """
        self._inbox.append(callback)
        if not defer:
            self._wake_io()

    def _wake_io(self) -> None:
        """Wake the I/O thread for whatever its inbox holds, unless a wake-up is on its way already."""
        if self._wake_pending or not self._inbox:
            return  # the I/O thread has yet to empty the queue: it will run these callbacks too
        self._wake_pending = True
        connection = self._connection
        try:
            connection.ioloop.add_callback_threadsafe(self._run_inbox)
        except Exception:  # the loop is closed; the delivery comes back on the next connection
            self._wake_pending = False
            self.log.debug("worker.callback_dropped")

    def _restart_inbox(self) -> None:
        """On a new connection (I/O thread): a wake-up sent to the previous loop may never have run."""
        self._wake_pending = False
        self._run_inbox()

    def _run_inbox(self) -> None:
        # Cleared before emptying: a callback queued from now on either is run below or wakes the loop again.
        self._wake_pending = False
        inbox = self._inbox
        while inbox:
            inbox.popleft()()

    # ---- outbound (I/O thread) -------------------------------------------------------------------

    def _settle(self, generation: int, tag: int, disposition: Disposition, started: float, entry) -> None:
        if generation != self._generation or self._channel is None:
            return
        settlement = Settlement(tag, disposition.publications, payload=(disposition, entry), started=started)
        self._publish(settlement, disposition.publications)

    def _publish(self, settlement: Settlement, publications) -> None:
        channel = self._channel
        timestamp = int(time.time())
        for publication in publications:
            properties = pika.BasicProperties(
                delivery_mode=PERSISTENT,
                content_type=publication.content_type,
                message_id=publication.message_id,
                correlation_id=publication.correlation_id,
                type=publication.type,
                timestamp=timestamp,
                app_id="exchanger",
                headers=publication.headers,
            )
            key = (publication.exchange, publication.routing_key, publication.message_id)
            self._tracker.published(settlement, publication, key)
            channel.basic_publish(
                publication.exchange, publication.routing_key, publication.body, properties, mandatory=True
            )
        crash_point("after-publish")

    def _on_return(self, _channel, method, properties, _body) -> None:
        self._tracker.returned((method.exchange, method.routing_key, properties.message_id))
        self.log.warning("delivery.unroutable", exchange=method.exchange, routing_key=method.routing_key)

    def _on_confirm(self, frame) -> None:
        method = frame.method
        ok = isinstance(method, pika.spec.Basic.Ack)
        for settlement in self._tracker.confirmed(method.delivery_tag, method.multiple, ok):
            self._on_settled(settlement)

    def _on_settled(self, settlement: Settlement) -> None:
        disposition, entry = settlement.payload
        if not settlement.failed:
            crash_point("after-confirm")
            # Ack once the settlement is in the message log: an acked message is always logged as settled.
            acknowledge = functools.partial(self._acknowledge, self._generation, settlement)
            self.journal.settled(entry, then=functools.partial(self._from_compute, acknowledge))
            return
        failed = tuple(settlement.failed)
        settlement.failed.clear()
        settlement.attempts += 1
        targets = sorted({f"{p.exchange}/{p.routing_key}" for p in failed})
        if settlement.attempts >= MAX_PUBLISH_ATTEMPTS or self._stopping:
            self.log.error("delivery.gave_up", targets=targets, attempts=settlement.attempts, **disposition.context)
            self.journal.handed_back(entry, f"copies to {', '.join(targets)} not confirmed after {settlement.attempts} attempts")
            self._requeue_later(self._generation, settlement.delivery_tag)
            return
        delay = self._publish_backoff.next_delay()
        metrics.PUBLISH_RETRIES.inc(len(failed))
        self.log.warning("delivery.retrying", targets=targets, in_seconds=round(delay, 2), **disposition.context)
        generation = self._generation
        self._connection.ioloop.call_later(delay, functools.partial(self._retry, generation, settlement, failed))

    def _acknowledge(self, generation: int, settlement: Settlement) -> None:
        if generation != self._generation or self._channel is None:
            return  # the channel is gone: the broker delivers the message again and the log answers it as a duplicate
        disposition, _ = settlement.payload
        self._channel.basic_ack(settlement.delivery_tag)
        crash_point("after-ack")
        self._unsettled -= 1
        metrics.MESSAGE_SECONDS.observe(time.perf_counter() - settlement.started)
        for publication in disposition.publications:
            self._delivery_counter(publication).inc()
        self._publish_backoff.reset()
        self.log.debug("message.settled", outcome=disposition.outcome, **disposition.context)
        if self._probation > 0:
            self._advance_probation()
        self._close_when_drained()

    def _delivery_counter(self, publication):
        # A label look-up takes the metric's lock and builds a key: bind each destination's counter once.
        key = (publication.routing_key or publication.exchange, publication.headers.get("x-exchanger-kind", "dead-letter"))
        counter = self._delivered.get(key)
        if counter is None:
            counter = self._delivered[key] = metrics.DELIVERIES.labels(*key)
        return counter

    def _retry(self, generation: int, settlement: Settlement, failed) -> None:
        if generation == self._generation and self._channel is not None:
            self._publish(settlement, failed)

    def _requeue_later(self, generation: int, tag: int) -> None:
        delay = self._publish_backoff.next_delay()

        def requeue():
            if generation == self._generation and self._channel is not None and self._channel.is_open:
                metrics.REQUEUES.inc()
                # Handed back as a failure: it counts against the queue's delivery limit on every version
                # (from 4.3 a basic.nack with requeue does not), after which the broker dead-letters it.
                self._channel.basic_reject(tag, requeue=True)
                self._unsettled -= 1
                self._close_when_drained()

        self._connection.ioloop.call_later(delay, requeue)
