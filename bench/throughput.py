"""Measurements through the broker: the drain of a preloaded backlog, and latency at a fixed publish rate.

Drain: N signed documents are published into exchanger.inbound first; then the runner (the daemon,
or the ceiling's bridges) is started. The clock runs from the first consume (the inbound queue's
ready count drops below N) to the moment the last copy and the last receipt are in the mailboxes
(a publication is in a queue once the broker has confirmed it to the publisher). Peak RSS of the
worker processes is read from /proc/<pid>/status (VmHWM) at the end of the drain, and the CPU
seconds of the workers and of the broker over the drain.

Latency: with the runner already running and idle, the documents are published by the sender at a
fixed rate, each with publisher confirms; a consumer process on the destination mailbox takes each
copy as it arrives and looks the send time up by the copy's x-exchanger-orig-message-id header.
Meanwhile the exchange's own histograms tell how long deliveries waited in the workers for CPU, and
a real-time sleeper (bench.stalls) tells whether the machine itself paused.
"""

from __future__ import annotations

import multiprocessing
import os
import time
from contextlib import closing
from dataclasses import dataclass, field

import pika

from bench.processes import context_switches, cpu_seconds, memory_kb, rabbitmq_pid, system_busy
from bench.stalls import Monitor
from exchanger.transport.names import DEAD_LETTERS, INBOUND_EXCHANGE, INBOUND_QUEUE, INBOUND_ROUTING_KEY, mailbox_queue

DESTINATION = "customs"
ORIG_ID = "x-exchanger-orig-message-id"


@dataclass
class Drain:
    label: str
    messages: int
    seconds: float
    document_bytes: int
    signed_bytes: int
    preload_seconds: float
    rejected: int = 0
    peak_rss_kb: list[int] = field(default_factory=list)
    cpu: dict[str, float] = field(default_factory=dict)
    stages: dict = field(default_factory=dict)
    startup_seconds: float = 0.0
    # The workers' context switches over the drain (every thread): voluntary (waiting for a lock, the GIL,
    # a socket or the disk) and involuntary (preempted by the scheduler).
    switches: dict[str, int] = field(default_factory=dict)

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def _cpu(pids: list[int]) -> float:
    return sum(cpu_seconds(pid) for pid in pids)


def _switches(pids: list[int]) -> tuple[int, int]:
    counts = [context_switches(pid) for pid in pids]
    return sum(c[0] for c in counts), sum(c[1] for c in counts)


def _own_cpu() -> float:
    times = os.times()
    return times.user + times.system


def drain(deployment, batch, start_runner, *, label: str, keep: bool = False, timeout: float | None = None,
          before=None):
    """Preload ``batch``, start the runner, time the drain; return (Drain, runner) (runner stopped unless keep)."""
    deployment.purge(batch.sender, DESTINATION)
    preload = deployment.preload(batch.sender, batch.bodies)
    count = len(batch)
    timeout = timeout or max(180.0, count / 10)
    broker = rabbitmq_pid()
    if before is not None:
        before()
    launched = time.perf_counter()
    runner = start_runner()
    stopped = False
    try:
        with closing(deployment.connect()) as connection:
            channel = connection.channel()
            depth = lambda queue: deployment.depth(channel, queue)  # noqa: E731
            while depth(INBOUND_QUEUE) >= count:
                if not runner.alive():
                    raise RuntimeError(f"{label}: the runner exited before consuming:\n{runner.tail()}")
                if time.perf_counter() - launched > 300:
                    raise TimeoutError(f"{label}: nothing consumed within 300s:\n{runner.tail()}")
                time.sleep(0.002)
            first = time.perf_counter()
            startup = first - launched
            workers = runner.worker_pids()
            cpu_workers, cpu_broker, cpu_all = _cpu(workers), _cpu([broker] if broker else []), system_busy()
            cpu_self = _own_cpu()
            switched = _switches(workers)
            while True:
                copies, receipts, dead = depth(mailbox_queue(DESTINATION)), depth(mailbox_queue(batch.sender)), depth(DEAD_LETTERS)
                if copies + dead >= count and receipts >= count:
                    break
                if not runner.alive():
                    raise RuntimeError(f"{label}: the runner exited during the drain:\n{runner.tail()}")
                if time.perf_counter() - first > timeout:
                    raise TimeoutError(f"{label}: {copies}/{count} copies after {timeout:.0f}s:\n{runner.tail()}")
                time.sleep(0.05)
            last = time.perf_counter()
            workers = runner.worker_pids() or workers
            voluntary, involuntary = (now - then for now, then in zip(_switches(workers), switched))
            result = Drain(
                label, count, last - first, batch.document_bytes, batch.signed_bytes, preload, rejected=dead,
                peak_rss_kb=[memory_kb(pid).get("VmHWM", 0) for pid in workers],
                cpu={"workers": _cpu(workers) - cpu_workers, "broker": _cpu([broker] if broker else []) - cpu_broker,
                     "bench": _own_cpu() - cpu_self, "machine": system_busy() - cpu_all},
                startup_seconds=startup, switches={"voluntary": voluntary, "involuntary": involuntary},
            )
        if hasattr(runner, "metrics"):
            result.stages = runner.metrics()
        if not keep:
            runner.stop()
            stopped = True
        return result, runner
    finally:
        if not keep and not stopped:
            runner.stop()


@dataclass
class Latency:
    label: str
    target_rate: float
    achieved_rate: float
    messages: int
    copies: list[float] = field(repr=False)
    receipts: list[float] = field(repr=False)
    lost: int = 0
    warmup: int = 0
    cpu: dict[str, float] = field(default_factory=dict)  # CPU seconds over the run: exchange, broker, machine
    seconds: float = 0.0
    waits: dict = field(default_factory=dict)  # the exchange's own histograms over the run (see _histogram_change)
    stalls: dict = field(default_factory=dict)  # the machine's own pauses meanwhile (bench.stalls)

    def percentile(self, p: float, which: str = "copies") -> float:
        values = sorted(getattr(self, which))
        if not values:
            return float("nan")
        index = min(len(values) - 1, max(0, round(p / 100 * len(values) + 0.5) - 1))
        return values[index]


def _consume(admin_url: str, sender: str, count: int, ready, results, deadline: float) -> None:
    """Consumer process: take every copy and receipt as it arrives, note the time by original message id."""
    copies: dict[str, float] = {}
    receipts: dict[str, float] = {}
    connection = pika.BlockingConnection(pika.URLParameters(admin_url))
    channel = connection.channel()
    channel.basic_qos(prefetch_count=2000)

    def on_copy(_channel, _method, properties, _body):
        copies[(properties.headers or {}).get(ORIG_ID)] = time.time()

    def on_receipt(_channel, _method, properties, _body):
        receipts[(properties.headers or {}).get(ORIG_ID)] = time.time()

    channel.basic_consume(mailbox_queue(DESTINATION), on_copy, auto_ack=True)
    channel.basic_consume(mailbox_queue(sender), on_receipt, auto_ack=True)
    ready.set()
    while (len(copies) < count or len(receipts) < count) and time.time() < deadline:
        connection.process_data_events(time_limit=0.05)
    connection.close()
    results.put((copies, receipts))


def settle(deployment, timeout: float = 120) -> None:
    """Wait until the inbound queue holds nothing, not even unacknowledged deliveries (the exchange is idle)."""
    started = time.perf_counter()
    while time.perf_counter() - started < timeout:
        queues = {q["name"]: q for q in deployment.admin.list_queues(deployment.vhost)}
        if queues.get(INBOUND_QUEUE, {}).get("messages", 0) == 0:
            return
        time.sleep(0.5)
    raise TimeoutError("the exchange did not settle its inbound queue")


def _histogram_change(before: dict, after: dict) -> dict:
    """{metric: {"count", "mean_ms", "over_50ms"}} of what the exchange observed between two /metrics readings."""
    out = {}
    for name in ("exchanger_wait_seconds", "exchanger_message_seconds"):
        old, new = before.get(name, {}).get("", [0.0, 0.0, {}]), after.get(name, {}).get("", [0.0, 0.0, {}])
        count = new[1] - old[1]
        within = new[2].get("0.05", 0) - old[2].get("0.05", 0)
        out[name] = {"count": count, "mean_ms": 1000 * (new[0] - old[0]) / count if count else 0.0,
                     "over_50ms": count - within}
    return out


def latency(deployment, batch, rate: float, *, label: str, warmup_seconds: float = 2.0, pids: list[int] = (),
            metrics=None) -> Latency:
    """Publish the batch at ``rate`` messages/s into a running, idle exchange; latency of each copy at the destination.

    The first ``warmup_seconds`` of publishes (at most a tenth of them) warm the connections and are not counted.
    ``metrics``, when given, reads the exchange's histograms, to tell how long deliveries waited in the workers.
    """
    settle(deployment)
    time.sleep(1.0)
    deployment.purge(batch.sender, DESTINATION)
    count = len(batch)
    context = multiprocessing.get_context("spawn")
    ready, results = context.Event(), context.Queue()
    deadline = time.time() + count / rate + 120
    consumer = context.Process(target=_consume, args=(deployment.admin_url, batch.sender, count, ready, results, deadline))
    consumer.start()
    ready.wait(60)
    sent: dict[str, float] = {}
    user = deployment.amqp_user(batch.sender)
    broker = [pid for pid in [rabbitmq_pid()] if pid]
    histograms = metrics() if metrics else {}
    with Monitor() as monitor:  # the machine's own pauses, if any, while the messages flow
        began, cpu_exchange, cpu_broker, cpu_all = time.perf_counter(), _cpu(list(pids)), _cpu(broker), system_busy()
        with closing(pika.BlockingConnection(pika.URLParameters(deployment.sender_url(batch.sender)))) as connection:
            channel = connection.channel()
            channel.confirm_delivery()
            start = time.perf_counter() + 0.2
            for index, (message_id, body) in enumerate(zip(batch.message_ids, batch.bodies)):
                delay = start + index / rate - time.perf_counter()
                if delay > 0:
                    time.sleep(delay)
                properties = pika.BasicProperties(delivery_mode=2, user_id=user, content_type="application/xml",
                                                  message_id=message_id, timestamp=int(time.time()))
                sent[message_id] = time.time()
                channel.basic_publish(INBOUND_EXCHANGE, INBOUND_ROUTING_KEY, body, properties)
            achieved = count / (time.perf_counter() - start)
        copies, receipts = results.get(timeout=count / rate + 180)
        cpu = {"exchange": _cpu(list(pids)) - cpu_exchange, "broker": _cpu(broker) - cpu_broker,
               "machine": system_busy() - cpu_all}
        seconds = time.perf_counter() - began
    waits = _histogram_change(histograms, metrics()) if metrics else {}
    consumer.join(30)
    skip = min(int(rate * warmup_seconds), count // 10)
    counted = batch.message_ids[skip:]
    return Latency(
        label, rate, achieved, len(counted),
        copies=[copies[m] - sent[m] for m in counted if m in copies],
        receipts=[receipts[m] - sent[m] for m in counted if m in receipts],
        lost=sum(1 for m in batch.message_ids if m not in copies),
        warmup=skip,
        cpu=cpu,
        seconds=seconds,
        waits=waits,
        stalls=Monitor.summary(monitor.result),
    )
