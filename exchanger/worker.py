"""One worker process: pika's I/O loop on the main thread, XML and crypto on a compute thread.

pika is not thread-safe, so only the I/O thread touches the connection; the compute thread hands
each disposition back through the worker's inbox (exchanger/settlement.py). An inbound delivery is
acked only after every publication it needs (copies and receipt, or dead letter and receipt) has
been confirmed and its settlement committed to the message log.
"""

from __future__ import annotations

import functools
import queue
import sys
import threading
import time
from pathlib import Path

import pika
import structlog

from exchanger import metrics
from exchanger.config import ConfigError, load_config
from exchanger.envelope import Inbound
from exchanger.journal.recorder import open_recorder
from exchanger.pipeline import Disposition, Pipeline, build_pipeline
from exchanger.transport.backoff import Backoff
from exchanger.transport.broker_version import broker_version
from exchanger.settlement import MAX_PUBLISH_ATTEMPTS, Settling
from exchanger.transport.confirms import ConfirmTracker
from exchanger.transport.names import INBOUND_QUEUE

log = structlog.get_logger("exchanger.worker")

__all__ = ["MAX_PUBLISH_ATTEMPTS", "Worker", "delivery_count"]
DRAIN_TIMEOUT = 30.0
# After a graceful drain the connection stays open this long before closing: RabbitMQ 3.x quorum queues
# may disregard acks that reach them just before the channel closes after basic.cancel
# (rabbitmq-server#10327), and the messages would come back although settled.
CLOSE_GRACE = 1.0
# Dispositions handed to the I/O thread with one wake-up at most while deliveries wait for the compute
# thread: each waits for at most this many others' processing (about 2 ms each) before it is published.
HANDOFF_BATCH = 4
# How long the compute thread may hold the interpreter while the I/O thread waits for it (Python's default is
# 5 ms). Every delivery, confirm and ack the I/O thread handles waits up to this long behind the XML and crypto
# work; at half load on two cores 1 ms cut the tail, and the drain rate stayed the same (README, Performance).
GIL_SWITCH_INTERVAL = 0.001


def delivery_count(inbound: Inbound) -> int:
    """Which delivery of the message this is, counting from 1, as the broker's quorum queue counts them."""
    # The broker sets x-delivery-count on every redelivery; a publisher may set it too, so it is
    # believed only on a delivery the broker marks as redelivered.
    count = inbound.headers.get("x-delivery-count") if inbound.redelivered else None
    return 1 + count if isinstance(count, int) and not isinstance(count, bool) and count >= 0 else 1


class Worker(Settling):
    """Consume the inbound queue, run the pipeline, publish with confirms, ack when all confirmed."""

    def __init__(self, config_path: Path, parameters: pika.ConnectionParameters, *, name: str = "worker-1",
                 probation: int = 0):
        """Load the configuration; ``probation`` messages are taken one at a time before the full prefetch."""
        self.config_path = Path(config_path)
        self.parameters = parameters
        self.name = name
        config = load_config(self.config_path)
        self.journal = open_recorder(config)
        self.pipeline: Pipeline = build_pipeline(config, receipts=self.journal)
        self._work: queue.SimpleQueue = queue.SimpleQueue()  # C-level: cheaper per hand-off than queue.Queue
        self._compute = threading.Thread(target=self._compute_loop, name=f"{name}-compute", daemon=True)
        self._connection: pika.SelectConnection | None = None
        self._channel = None
        self._consumer_tag: str | None = None
        self._tracker = ConfirmTracker()
        self._generation = 0
        self._unsettled = 0
        self._probation = probation
        self._close_pending = False
        self._stopping = False
        self._stopped = threading.Event()
        self._reload_requested = threading.Event()
        self._reconnect = Backoff(initial=0.5, cap=30.0)
        self._publish_backoff = Backoff(initial=0.2, cap=10.0)
        self.log = log.bind(worker=name)
        self._init_settling()

    # ---- lifecycle (main thread) -------------------------------------------------------

    def run(self) -> None:
        """Run until stopped, reconnecting with capped backoff whenever the broker goes away."""
        sys.setswitchinterval(GIL_SWITCH_INTERVAL)
        self._compute.start()
        metrics.CONFIG_VERSION.labels(self.pipeline.config.version).set(1)
        self.log.info("worker.starting", config_version=self.pipeline.config.version)
        while not self._stopping:
            self._generation += 1
            self._connection = pika.SelectConnection(
                self.parameters,
                on_open_callback=self._on_connection_open,
                on_open_error_callback=self._on_connection_open_error,
                on_close_callback=self._on_connection_closed,
            )
            self._connection.ioloop.start()
            if self._stopping:
                break
            delay = self._reconnect.next_delay()
            self.log.warning("broker.reconnecting", in_seconds=round(delay, 2))
            if self._stopped.wait(delay):
                break
        self._work.put(None)
        self._compute.join(timeout=10)
        self.journal.close()
        self.log.info("worker.stopped")

    def stop(self) -> None:
        """Stop gracefully: no new deliveries, finish and settle what is in flight, then close."""
        self._stopped.set()
        connection = self._connection
        if connection is not None:
            connection.ioloop.add_callback_threadsafe(self._begin_stop)
        else:
            self._stopping = True

    def reload(self) -> None:
        """Load the configuration again; it is swapped in between two messages if it checks out."""
        self._reload_requested.set()

    # ---- connection and channel (I/O thread) ---------------------------------------------

    def _on_connection_open(self, connection) -> None:
        self._restart_inbox()
        version = broker_version(connection)
        self.log.info("broker.connected", broker=str(version) if version else "unknown",
                      differences=version.differences() if version else [])
        connection.channel(on_open_callback=self._on_channel_open)

    def _on_connection_open_error(self, connection, error) -> None:
        self.log.warning("broker.unreachable", error=str(error) or type(error).__name__)
        connection.ioloop.stop()

    def _on_connection_closed(self, connection, reason) -> None:
        self._forget_channel()
        if not self._stopping:
            self.log.warning("broker.connection_lost", reason=str(reason))
        connection.ioloop.stop()

    def _on_channel_open(self, channel) -> None:
        self._channel = channel
        self._tracker = ConfirmTracker()
        channel.add_on_close_callback(self._on_channel_closed)
        channel.add_on_return_callback(self._on_return)
        channel.add_on_cancel_callback(self._on_consumer_cancelled)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_confirm_mode)

    def _prefetch(self) -> int:
        # On probation (restarted after dying) a worker holds one delivery: should it die again, the
        # broker charges only that one against the delivery limit, not every message it had prefetched.
        return 1 if self._probation > 0 else self.pipeline.config.broker.prefetch

    def _on_confirm_mode(self, _frame) -> None:
        self._channel.basic_qos(prefetch_count=self._prefetch(), callback=self._on_qos)

    def _on_qos(self, _frame) -> None:
        if self._stopping:
            self._connection.close()
            return
        self._consumer_tag = self._channel.basic_consume(INBOUND_QUEUE, self._on_message)
        self._reconnect.reset()
        metrics.BROKER_CONNECTED.set(1)
        self.log.info("worker.consuming", queue=INBOUND_QUEUE, prefetch=self._prefetch())

    def _on_channel_closed(self, channel, reason) -> None:
        # Unacked deliveries return to the queue with the channel; their work is void now.
        self._forget_channel()
        if not self._stopping:
            self.log.warning("broker.channel_closed", reason=str(reason))
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def _on_consumer_cancelled(self, _frame) -> None:
        self.log.warning("broker.consumer_cancelled", queue=INBOUND_QUEUE)
        if self._connection is not None and self._connection.is_open:
            self._connection.close()

    def _forget_channel(self) -> None:
        metrics.BROKER_CONNECTED.set(0)
        if self._channel is not None:
            self._generation += 1
        self._channel = None
        self._consumer_tag = None
        self._tracker.abandon()
        self._unsettled = 0

    def _begin_stop(self) -> None:
        if self._stopping:
            return
        self._stopping = True
        self.log.info("worker.draining", unsettled=self._unsettled)
        if self._channel is not None and self._channel.is_open and self._consumer_tag:
            self._channel.basic_cancel(self._consumer_tag)
        self._connection.ioloop.call_later(DRAIN_TIMEOUT, self._close)
        self._close_when_drained()

    def _close_when_drained(self) -> None:
        if self._stopping and self._unsettled == 0 and not self._close_pending:
            self._close_pending = True
            self._connection.ioloop.call_later(CLOSE_GRACE, self._close_if_drained)

    def _close_if_drained(self) -> None:
        self._close_pending = False
        if self._unsettled == 0:
            self._close()
        # Otherwise a delivery arrived before the broker saw the cancel; its settlement closes later.

    def _advance_probation(self) -> None:
        self._probation -= 1
        if self._probation > 0 or self._stopping or self._channel is None or not self._consumer_tag:
            return
        # A consumer's prefetch is fixed when it subscribes: the full prefetch needs a new consumer.
        # Deliveries of the old one stay valid on the open channel and are acked as usual.
        self.log.info("worker.probation_over")
        self._channel.basic_cancel(self._consumer_tag, callback=self._on_probation_cancelled)
        self._consumer_tag = None

    def _on_probation_cancelled(self, _frame) -> None:
        if not self._stopping and self._channel is not None and self._channel.is_open:
            self._channel.basic_qos(prefetch_count=self._prefetch(), callback=self._on_qos)

    def _close(self) -> None:
        connection = self._connection
        if connection is not None and connection.is_open:
            connection.close()
        elif connection is not None and not connection.is_closing:
            connection.ioloop.stop()

    # ---- inbound (I/O thread) ------------------------------------------------------------

    def _on_message(self, _channel, method, properties, body: bytes) -> None:
        self._unsettled += 1
        inbound = Inbound(
            body=body,
            user_id=properties.user_id,
            message_id=properties.message_id,
            headers=dict(properties.headers or {}),
            redelivered=method.redelivered,
        )
        self._work.put((self._generation, method.delivery_tag, inbound, time.perf_counter()))

    # ---- compute (compute thread) ----------------------------------------------------------

    def _compute_loop(self) -> None:
        checked = 0.0
        deferred = 0  # dispositions handed to the I/O thread since it was last woken
        while True:
            if deferred and self._work.empty():
                self._wake_io()  # nothing left to process: what was deferred goes now
                deferred = 0
            # The reload flag is checked between two messages, and at least once a second when idle.
            try:
                item = self._work.get(timeout=1.0)
            except queue.Empty:
                item = ()
            if self._reload_requested.is_set():
                self._reload()
            if time.monotonic() - checked >= 1.0:
                checked = time.monotonic()
                metrics.LOG_FAILING.set(1 if self.journal.problem() else 0)
            if item is None:
                return
            if not item:
                continue
            generation, tag, inbound, started = item
            if generation != self._generation:
                continue  # its channel is gone and the broker will deliver it again
            metrics.WAIT_SECONDS.observe(time.perf_counter() - started)
            try:
                disposition = self.pipeline.process(inbound)
            except Exception as exc:
                # A fault of ours, not of the message: retry later, up to the queue's delivery limit.
                self.log.exception("pipeline.crashed", delivery_tag=tag)
                disposition = self._give_up(inbound, exc)
                if disposition is None:
                    self.journal.handed_back(inbound, f"the pipeline crashed: {exc!r}", self.pipeline.config.version)
                    self._from_compute(functools.partial(self._requeue_later, generation, tag))
                    continue
            entry = self.journal.processed(inbound, disposition, self.pipeline)
            # While more deliveries wait, a few dispositions go to the I/O thread with one wake-up (each
            # costs a socket write and a pass of pika's loop); the last before an idle moment goes at once.
            deferred = deferred + 1 if deferred < HANDOFF_BATCH and not self._work.empty() else 0
            self._from_compute(functools.partial(self._settle, generation, tag, disposition, started, entry),
                               defer=deferred > 0)

    def _give_up(self, inbound: Inbound, error: Exception) -> Disposition | None:
        """At the broker's last delivery of a message that keeps failing: its dead letter and receipt, else None."""
        deliveries = delivery_count(inbound)
        if deliveries <= self.pipeline.config.broker.delivery_limit:
            return None
        try:
            return self.pipeline.failed(inbound, error, deliveries)
        except Exception:
            # Handed back once more, the broker dead-letters it by its delivery limit, without a receipt.
            self.log.exception("pipeline.failed_to_reject")
            return None

    def _reload(self) -> None:
        self._reload_requested.clear()
        try:
            config = load_config(self.config_path)
            pipeline = build_pipeline(config, receipts=self.journal)
        except ConfigError as exc:
            metrics.RELOADS.labels("failed").inc()
            self.log.error("config.reload_failed", problems=exc.problems, kept=self.pipeline.config.version)
            return
        except Exception as exc:  # a broken key or schema file must not take the worker down
            metrics.RELOADS.labels("failed").inc()
            self.log.error("config.reload_failed", problems=[str(exc)], kept=self.pipeline.config.version)
            return
        previous = self.pipeline.config.version
        self.pipeline = pipeline
        self.journal.reconfigure(config, pipeline.signer)
        metrics.RELOADS.labels("ok").inc()
        metrics.CONFIG_VERSION.labels(previous).set(0)
        metrics.CONFIG_VERSION.labels(config.version).set(1)
        self.log.info("config.reloaded", previous=previous, config_version=config.version)
