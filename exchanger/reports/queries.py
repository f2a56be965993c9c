"""The report's reads of the message log: the same SQL on SQLite and PostgreSQL, whichever instance wrote the records.

Only the records of a message's life are read (never operator actions, prunes or other kinds), and
every query groups by what identifies a message, (sender, message id, digest of its bytes), so a
message counts once however many times the broker delivered it and whichever instance handled it.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from datetime import date, timedelta

from exchanger.journal.postgres import PostgresStore
from exchanger.journal.records import DEAD_LETTERED, DELIVERED, DUPLICATE, RECEIVED, REJECTED, ROUTED
from exchanger.journal.store import Store
from exchanger.reports.period import ReportPeriod

# A message's records may start a little before its decision and end a little after it: the reads
# reach this far beyond the period so that a message decided in it is seen whole.
MARGIN_DAYS = 1


@dataclass(frozen=True)
class MessageRow:
    """One message decided in the period: who sent what, how it ended, and when each step happened."""

    sender: str | None
    message_id: str | None
    digest: str | None
    message_type: str | None
    decided_at: str
    received_at: str | None
    delivered_at: str | None
    dead_lettered_at: str | None
    routed: bool
    duplicate: bool

    @property
    def key(self) -> tuple:
        """What identifies the message in the log."""
        return (self.sender, self.message_id, self.digest)

    @property
    def outcome(self) -> str:
        """accepted if any processing routed it, else duplicate, else rejected (a replay after a fix is accepted)."""
        if self.routed:
            return "accepted"
        if self.duplicate:
            return "duplicate"
        return "rejected"


@dataclass(frozen=True)
class CopyCount:
    """How many copies went to one receiver under one route in one bucket."""

    bucket: str
    receiver: str | None
    route: str | None
    copies: int


@dataclass(frozen=True)
class RejectionRow:
    """A rejected record: the message and the reasons (JSON) the pipeline gave."""

    sender: str | None
    message_id: str | None
    digest: str | None
    at: str
    data: str

    @property
    def key(self) -> tuple:
        """What identifies the message in the log."""
        return (self.sender, self.message_id, self.digest)


def _widened(period: ReportPeriod) -> tuple[str, str]:
    first = period.first - timedelta(days=MARGIN_DAYS)
    after = period.first + timedelta(days=period.days + MARGIN_DAYS)
    return _moment(first), _moment(after)


def _moment(day: date) -> str:
    return f"{day.isoformat()}T00:00:00.000000Z"


def _route_of(store: Store) -> str:
    """The SQL expression for a delivered record's route (its details' ``route``), as text, in the store's dialect."""
    if isinstance(store, PostgresStore):
        return "(data::json ->> 'route')"
    return "json_extract(data, '$.route')"


def messages(store: Store, period: ReportPeriod) -> Iterator[MessageRow]:
    """Every message whose first decision (routed, rejected or duplicate) falls in the period."""
    outcome = f"kind IN ('{ROUTED}', '{REJECTED}', '{DUPLICATE}')"
    since, until = _widened(period)
    sql = f"""
        SELECT sender, message_id, digest, MIN(message_type),
               MIN(CASE WHEN {outcome} THEN at END) AS decided_at,
               MIN(CASE WHEN kind = '{RECEIVED}' THEN at END),
               MIN(CASE WHEN kind = '{DELIVERED}' THEN at END),
               MIN(CASE WHEN kind = '{DEAD_LETTERED}' THEN at END),
               MAX(CASE WHEN kind = '{ROUTED}' THEN 1 ELSE 0 END),
               MAX(CASE WHEN kind = '{DUPLICATE}' THEN 1 ELSE 0 END)
        FROM journal_records
        WHERE kind IN ('{RECEIVED}', '{ROUTED}', '{REJECTED}', '{DUPLICATE}', '{DELIVERED}', '{DEAD_LETTERED}')
          AND at >= ? AND at < ?
        GROUP BY sender, message_id, digest
        HAVING MIN(CASE WHEN {outcome} THEN at END) >= ? AND MIN(CASE WHEN {outcome} THEN at END) < ?
        ORDER BY decided_at, sender, message_id, digest"""
    for row in store.select(sql, (since, until, period.since, period.until)):
        yield MessageRow(*row[:8], routed=bool(row[8]), duplicate=bool(row[9]))


def copies(store: Store, period: ReportPeriod) -> list[CopyCount]:
    """Copies delivered in the period per bucket, receiver and route; a copy delivered twice counts once."""
    route = _route_of(store)
    width = period.bucket_width
    sql = f"""
        SELECT SUBSTR(at, 1, {width}), receivers, route, COUNT(*)
        FROM (SELECT sender, message_id, digest, receivers, {route} AS route, MIN(at) AS at
              FROM journal_records WHERE kind = '{DELIVERED}' AND at >= ? AND at < ?
              GROUP BY sender, message_id, digest, receivers, {route}) AS copy
        GROUP BY SUBSTR(at, 1, {width}), receivers, route
        ORDER BY 1, 2, 3"""
    return [
        CopyCount(bucket, _receiver(receivers), route, int(count))
        for bucket, receivers, route, count in store.select(sql, (period.since, period.until))
    ]


def rejections(store: Store, period: ReportPeriod) -> list[RejectionRow]:
    """Every rejected record of the period with its reasons, oldest first."""
    sql = f"""
        SELECT sender, message_id, digest, at, data FROM journal_records
        WHERE kind = '{REJECTED}' AND at >= ? AND at < ?
        ORDER BY at, sender, message_id, digest"""
    since, until = _widened(period)
    return [RejectionRow(*row) for row in store.select(sql, (since, until))]


def resends(store: Store, period: ReportPeriod) -> int:
    """How many times in the period a sender sent an accepted message again and was answered with its receipt."""
    sql = f"SELECT COUNT(*) FROM journal_records WHERE kind = '{DUPLICATE}' AND at >= ? AND at < ?"
    return int(store.select(sql, (period.since, period.until))[0][0])


def _receiver(receivers: str | None) -> str | None:
    # A delivered record names the one receiver of its copy: ``,customs,``.
    return receivers.strip(",") if receivers else None
