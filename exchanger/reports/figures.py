"""The report's numbers: the message log's records of a period, counted into plain dataclasses."""

from __future__ import annotations

import json
import math
from collections import Counter, defaultdict
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone

from exchanger.journal.store import Store
from exchanger.reports.certificates import CertificateExpiry, expiries
from exchanger.reports.period import ReportPeriod, parse_report_period
from exchanger.reports.queries import MessageRow, copies, messages, rejections, resends

TOP = 8  # series drawn one by one in a chart; the rest are summed as "other"
TOP_SENDERS = 10
TOP_REASONS = 10
EXAMPLES = 3
PERCENTILES = (50, 90, 95, 99)
OTHER = "other"
UNKNOWN = "(unknown)"


@dataclass(frozen=True)
class Series:
    """One line or bar series: a name and a count per bucket of the period."""

    name: str
    counts: tuple[int, ...]

    @property
    def total(self) -> int:
        """The series summed over the period."""
        return sum(self.counts)


@dataclass(frozen=True)
class Latency:
    """End-to-end times in seconds (received by the exchange to settled with the broker), nearest-rank percentiles."""

    count: int
    percentiles: dict[int, float]
    maximum: float | None

    def __getitem__(self, percentile: int) -> float | None:
        return self.percentiles.get(percentile)


@dataclass(frozen=True)
class RejectionReason:
    """One reason messages were refused for: the stage and code, how many messages, a sample text and example ids."""

    stage: str
    code: str
    messages: int
    sample: str
    examples: tuple[str, ...]


@dataclass(frozen=True)
class SenderVolume:
    """What one sender lodged in the period and how it ended."""

    sender: str
    messages: int
    accepted: int
    rejected: int
    duplicates: int


@dataclass(frozen=True)
class ReportFigures:
    """Every figure of a report, for the rendered report and the console's page alike."""

    period: ReportPeriod
    generated_at: datetime
    buckets: tuple[str, ...]
    messages: int
    accepted: int
    rejected: int
    duplicates: int  # messages only ever answered as a duplicate (first accepted before the period)
    resends: int  # times an accepted message came again and its receipt was sent again
    copies: int
    outcomes: tuple[Series, ...]  # accepted, rejected, duplicate per bucket
    by_type: tuple[Series, ...]
    by_receiver: tuple[Series, ...]
    by_route: tuple[Series, ...]
    acceptance_by_bucket: tuple[float | None, ...]  # percent of decided (accepted + rejected) messages
    latency_delivered: Latency
    latency_rejected: Latency
    p50_by_bucket: tuple[float | None, ...]
    p95_by_bucket: tuple[float | None, ...]
    reasons: tuple[RejectionReason, ...]
    senders: tuple[SenderVolume, ...]
    certificates: tuple[CertificateExpiry, ...] = ()
    types_seen: int = 0
    receivers_seen: int = 0
    routes_seen: int = 0
    senders_seen: int = 0
    notes: tuple[str, ...] = field(default=())

    @property
    def empty(self) -> bool:
        """True when no message was decided in the period."""
        return self.messages == 0

    @property
    def acceptance_rate(self) -> float | None:
        """Accepted messages in percent of those accepted or rejected (duplicates were accepted before); None if none."""
        decided = self.accepted + self.rejected
        return 100.0 * self.accepted / decided if decided else None


def report_figures(store: Store, period: ReportPeriod | str, *, certificates: Sequence = (),
                   as_of: datetime | None = None) -> ReportFigures:
    """The figures of a month or a day from the message log; ``certificates`` are (owner, certificate) pairs."""
    period = parse_report_period(period) if isinstance(period, str) else period
    as_of = as_of or datetime.now(timezone.utc)
    buckets = period.buckets()
    index = {bucket: n for n, bucket in enumerate(buckets)}
    width = period.bucket_width
    rows = list(messages(store, period))

    outcome_counts = {name: [0] * len(buckets) for name in ("accepted", "rejected", "duplicate")}
    types: dict[str, list[int]] = defaultdict(lambda: [0] * len(buckets))
    senders: dict[str, Counter] = defaultdict(Counter)
    delivered_seconds: list[float] = []
    rejected_seconds: list[float] = []
    per_bucket_seconds: list[list[float]] = [[] for _ in buckets]
    rejected_keys = set()
    for row in rows:
        slot = index[row.decided_at[:width]]
        outcome = row.outcome
        outcome_counts[outcome][slot] += 1
        types[row.message_type or UNKNOWN][slot] += 1
        senders[row.sender or UNKNOWN][outcome] += 1
        if outcome == "rejected":
            rejected_keys.add(row.key)
        seconds = _latency(row)
        if seconds is not None:
            (delivered_seconds if outcome == "accepted" else rejected_seconds).append(seconds)
            if outcome == "accepted":
                per_bucket_seconds[slot].append(seconds)

    receivers: dict[str, list[int]] = defaultdict(lambda: [0] * len(buckets))
    routes: dict[str, list[int]] = defaultdict(lambda: [0] * len(buckets))
    for copy in copies(store, period):
        slot = index[copy.bucket]
        receivers[copy.receiver or UNKNOWN][slot] += copy.copies
        routes[copy.route or UNKNOWN][slot] += copy.copies

    accepted, rejected = outcome_counts["accepted"], outcome_counts["rejected"]
    return ReportFigures(
        period=period,
        generated_at=as_of,
        buckets=tuple(period.bucket_labels()),
        messages=len(rows),
        accepted=sum(accepted),
        rejected=sum(rejected),
        duplicates=sum(outcome_counts["duplicate"]),
        resends=resends(store, period),
        copies=sum(sum(counts) for counts in receivers.values()),
        outcomes=tuple(Series(name, tuple(counts)) for name, counts in outcome_counts.items()),
        by_type=_top(types),
        by_receiver=_top(receivers),
        by_route=_top(routes),
        acceptance_by_bucket=tuple(
            100.0 * a / (a + r) if a + r else None for a, r in zip(accepted, rejected)
        ),
        latency_delivered=latency(delivered_seconds),
        latency_rejected=latency(rejected_seconds),
        p50_by_bucket=tuple(percentile(sorted(values), 50) for values in per_bucket_seconds),
        p95_by_bucket=tuple(percentile(sorted(values), 95) for values in per_bucket_seconds),
        reasons=_reasons(store, period, rejected_keys),
        senders=_senders(senders),
        certificates=tuple(expiries(certificates, as_of)),
        types_seen=len(types),
        receivers_seen=len(receivers),
        routes_seen=len(routes),
        senders_seen=len(senders),
    )


def percentile(ordered: Sequence[float], p: float) -> float | None:
    """The nearest-rank percentile of sorted values: the smallest value with at least p% of them at or below it."""
    if not ordered:
        return None
    rank = max(1, math.ceil(p / 100 * len(ordered)))
    return ordered[rank - 1]


def latency(seconds: list[float]) -> Latency:
    """The percentiles and maximum of a list of durations."""
    ordered = sorted(seconds)
    return Latency(
        count=len(ordered),
        percentiles={p: percentile(ordered, p) for p in PERCENTILES},
        maximum=ordered[-1] if ordered else None,
    )


def _latency(row: MessageRow) -> float | None:
    """Seconds from the message's first receipt to its first settlement: copies delivered, or the original dead-lettered."""
    settled = row.delivered_at if row.outcome == "accepted" else row.dead_lettered_at
    if row.outcome == "duplicate" or row.received_at is None or settled is None:
        return None
    return max(0.0, (_parse(settled) - _parse(row.received_at)).total_seconds())


def _parse(moment: str) -> datetime:
    return datetime.strptime(moment, "%Y-%m-%dT%H:%M:%S.%fZ")


def _top(series: dict[str, list[int]], top: int = TOP) -> tuple[Series, ...]:
    """The biggest series by total (ties by name), the rest summed as "other"."""
    ranked = sorted(series.items(), key=lambda item: (-sum(item[1]), item[0]))
    if len(ranked) == top + 1:
        top += 1  # one more is shown by its name rather than as "other (1)"
    shown = [Series(name, tuple(counts)) for name, counts in ranked[:top]]
    rest = ranked[top:]
    if rest:
        shown.append(Series(f"{OTHER} ({len(rest)})", tuple(map(sum, zip(*(counts for _, counts in rest))))))
    return tuple(shown)


def _senders(senders: dict[str, Counter]) -> tuple[SenderVolume, ...]:
    volumes = [
        SenderVolume(name, sum(c.values()), c["accepted"], c["rejected"], c["duplicate"]) for name, c in senders.items()
    ]
    volumes.sort(key=lambda v: (-v.messages, v.sender))
    return tuple(volumes[:TOP_SENDERS])


def _reasons(store: Store, period: ReportPeriod, rejected_keys: set) -> tuple[RejectionReason, ...]:
    """Each (stage, code) counted once per rejected message, with the first texts and message ids met."""
    counted: Counter = Counter()
    samples: dict[tuple, str] = {}
    examples: dict[tuple, list[str]] = defaultdict(list)
    seen: set = set()
    rows = sorted(rejections(store, period), key=lambda r: (r.at, r.message_id or "", r.sender or "", r.digest or ""))
    for row in rows:
        if row.key not in rejected_keys or row.key in seen:
            continue
        seen.add(row.key)
        try:
            details = json.loads(row.data)
        except ValueError:
            details = {}
        named = set()
        for reason in details.get("reasons") or [{"stage": details.get("stage"), "code": None, "message": ""}]:
            what = (str(reason.get("stage") or "?"), str(reason.get("code") or "?"))
            if what in named:
                continue
            named.add(what)
            counted[what] += 1
            samples.setdefault(what, str(reason.get("message") or ""))
            if len(examples[what]) < EXAMPLES:
                examples[what].append(_message_name(row))
    ranked = sorted(counted.items(), key=lambda item: (-item[1], item[0]))[:TOP_REASONS]
    return tuple(
        RejectionReason(stage, code, count, samples[(stage, code)], tuple(examples[(stage, code)]))
        for (stage, code), count in ranked
    )


def _message_name(row) -> str:
    """A message as `exchanger trace` finds it: its id, or the start of its digest when it had none."""
    if row.message_id:
        return f"{row.message_id} ({row.sender})" if row.sender else row.message_id
    return f"sha256 {(row.digest or '')[:16]}"
