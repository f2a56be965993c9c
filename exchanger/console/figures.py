"""The dashboard's figures from the daemon's metrics: a short in-memory series for rates, and the latest totals."""

from __future__ import annotations

import threading
import time
from collections import defaultdict, deque
from dataclasses import dataclass

import pika
import pika.exceptions

from exchanger.transport.names import INBOUND_QUEUE
from exchanger.transport.url import connection_parameters

SAMPLE_SECONDS = 5.0
KEEP_SAMPLES = 360  # half an hour at one sample every five seconds
RATE_WINDOW = 60.0  # "per minute" is measured over the last minute of samples
SLOW_SECONDS = 10.0  # the broker is asked for queue depths and readiness at most this often

Snapshot = dict[tuple[str, tuple[tuple[str, str], ...]], float]


def snapshot(collectors) -> Snapshot:
    """Every sample the collectors give now, keyed by name and sorted labels."""
    values: Snapshot = {}
    for collector in collectors:
        for family in collector.collect():
            for sample in family.samples:
                key = (sample.name, tuple(sorted(sample.labels.items())))
                # Several workers' files add up (the multiprocess collector has done so for counters already).
                values[key] = values.get(key, 0.0) + sample.value
    return values


def by_labels(values: Snapshot, name: str, *labels: str) -> dict[tuple[str, ...], float]:
    """One metric's values keyed by the named labels' values (summed over the others)."""
    out: dict[tuple[str, ...], float] = defaultdict(float)
    for (sample, pairs), value in values.items():
        if sample == name:
            found = dict(pairs)
            out[tuple(found.get(label, "") for label in labels)] += value
    return dict(out)


def percentiles(buckets: dict[float, float], wanted=(0.5, 0.9, 0.99)) -> dict[str, float | None]:
    """Percentiles (seconds) from cumulative histogram buckets, by linear interpolation within a bucket."""
    edges = sorted(buckets)
    total = buckets.get(float("inf"), 0.0)
    result: dict[str, float | None] = {}
    for q in wanted:
        key = f"p{round(q * 100):g}"
        if total <= 0:
            result[key] = None
            continue
        rank = q * total
        lower_edge, lower_count = 0.0, 0.0
        for edge in edges:
            count = buckets[edge]
            if count >= rank:
                if edge == float("inf"):
                    result[key] = lower_edge  # beyond the last finite bucket: at least that long
                else:
                    share = (rank - lower_count) / (count - lower_count) if count > lower_count else 1.0
                    result[key] = lower_edge + (edge - lower_edge) * share
                break
            lower_edge, lower_count = edge, count
    return result


def histogram_buckets(values: Snapshot, name: str) -> dict[float, float]:
    """A histogram's cumulative buckets, upper bound to count."""
    buckets: dict[float, float] = defaultdict(float)
    for (sample, pairs), value in values.items():
        if sample == f"{name}_bucket":
            buckets[float(dict(pairs)["le"])] += value
    return dict(buckets)


@dataclass
class Sample:
    """One reading of the metrics."""

    at: float
    values: Snapshot


class Sampler:
    """Reads the workers' metrics every few seconds, keeping the last half hour for the per-minute charts."""

    def __init__(self, services, clock=time.time):
        self.services = services
        self.clock = clock
        self.samples: deque[Sample] = deque(maxlen=KEEP_SAMPLES)
        self._lock = threading.Lock()
        self._slow: tuple[float, dict] | None = None
        self._stop = threading.Event()

    def sample(self) -> Sample:
        """Take one reading now and keep it."""
        reading = Sample(self.clock(), snapshot(self.services.fast_metrics))
        with self._lock:
            self.samples.append(reading)
        return reading

    def latest(self) -> Sample:
        """The newest reading, taking one if the last is older than a sampling interval."""
        with self._lock:
            last = self.samples[-1] if self.samples else None
        if last is None or self.clock() - last.at >= SAMPLE_SECONDS:
            return self.sample()
        return last

    def history(self) -> list[Sample]:
        """The readings kept, oldest first."""
        with self._lock:
            return list(self.samples)

    def start(self) -> None:
        """Sample in a background thread until stop()."""

        def loop():
            while not self._stop.wait(SAMPLE_SECONDS):
                try:
                    self.sample()
                except Exception:  # noqa: BLE001  (a failed reading is skipped; the next one may succeed)
                    continue

        self.sample()
        threading.Thread(target=loop, name="exchanger-console-sampler", daemon=True).start()

    def stop(self) -> None:
        """End the sampling thread."""
        self._stop.set()

    def slow(self) -> dict:
        """Queue depths, the exchange's own gauges (certificates, dead letters) and readiness: cached briefly."""
        now = self.clock()
        if self._slow is not None and now - self._slow[0] < SLOW_SECONDS:
            return self._slow[1]
        services = self.services
        exchange = snapshot([services.exchange_collector]) if services.exchange_collector is not None else {}
        readiness = services.readiness.results() if services.readiness is not None else {}
        figures = {
            "exchange": exchange,
            "readiness": readiness,
            "workers_expected": getattr(services.readiness, "workers", None),
            "inbound": inbound_depth(services.amqp_url),
        }
        self._slow = (now, figures)
        return figures


def inbound_depth(amqp_url: str) -> int | None:
    """Messages waiting in the inbound queue, or None when the broker cannot say."""
    try:
        connection = pika.BlockingConnection(connection_parameters(amqp_url, client_name="exchanger console", heartbeat=0))
    except (pika.exceptions.AMQPError, OSError, ValueError):
        return None
    try:
        return connection.channel().queue_declare(INBOUND_QUEUE, passive=True).method.message_count
    except pika.exceptions.AMQPError:
        return None
    finally:
        if connection.is_open:
            connection.close()


def rate_series(samples: list[Sample], name: str, *labels: str) -> dict:
    """Per-minute rates of a counter over the kept readings, one series per label combination."""
    times, series = [], defaultdict(list)
    keyed = [by_labels(s.values, name, *labels) for s in samples]
    names = sorted({key for values in keyed for key in values})
    start = 0
    for index, sample in enumerate(samples):
        while samples[index].at - samples[start].at > RATE_WINDOW:
            start += 1
        if index == start:
            continue
        span = sample.at - samples[start].at
        times.append(time.strftime("%H:%M:%S", time.gmtime(sample.at)))
        for key in names:
            delta = keyed[index].get(key, 0.0) - keyed[start].get(key, 0.0)
            series[" · ".join(key)].append(round(max(delta, 0.0) * 60 / span, 2))
    return {"times": times, "series": dict(series)}
