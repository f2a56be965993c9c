"""The period a report covers, as operators type it: a month ``2026-11`` or a day ``2026-11-05``."""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass
from datetime import date, timedelta

from exchanger.errors import ExchangerError

_MONTH = re.compile(r"^(\d{4})-(\d{2})$")
_DAY = re.compile(r"^(\d{4})-(\d{2})-(\d{2})$")


class PeriodError(ExchangerError):
    """A period that is neither a month (YYYY-MM) nor a day (YYYY-MM-DD) of the calendar."""


@dataclass(frozen=True)
class ReportPeriod:
    """A month broken down by day, or a day broken down by hour; UTC, as the log keeps time."""

    label: str
    first: date
    days: int

    @property
    def is_month(self) -> bool:
        """True for a month (a bucket per day), False for one day (a bucket per hour)."""
        return self.days > 1

    @property
    def since(self) -> str:
        """The first moment of the period in the log's time format."""
        return f"{self.first.isoformat()}T00:00:00.000000Z"

    @property
    def until(self) -> str:
        """The first moment after the period in the log's time format."""
        return f"{(self.first + timedelta(days=self.days)).isoformat()}T00:00:00.000000Z"

    @property
    def bucket_width(self) -> int:
        """How many leading characters of a log time name its bucket: the day (10) or the hour (13)."""
        return 10 if self.is_month else 13

    def buckets(self) -> list[str]:
        """Every bucket's key, in order, as the first ``bucket_width`` characters of the log's times."""
        if self.is_month:
            return [(self.first + timedelta(days=n)).isoformat() for n in range(self.days)]
        return [f"{self.first.isoformat()}T{hour:02d}" for hour in range(24)]

    def bucket_labels(self) -> list[str]:
        """Each bucket as a chart shows it: the day of the month, or the hour."""
        if self.is_month:
            return [f"{n + 1:02d}" for n in range(self.days)]
        return [f"{hour:02d}h" for hour in range(24)]

    @property
    def title(self) -> str:
        """The period in words: ``November 2026`` or ``5 November 2026``."""
        month = calendar.month_name[self.first.month]
        if self.is_month:
            return f"{month} {self.first.year}"
        return f"{self.first.day} {month} {self.first.year}"


def parse_report_period(text: str) -> ReportPeriod:
    """A month (``2026-11``) or a day (``2026-11-05``); PeriodError saying what is accepted otherwise."""
    value = str(text or "").strip()
    month, day = _MONTH.match(value), _DAY.match(value)
    try:
        if month:
            year, number = int(month.group(1)), int(month.group(2))
            first = date(year, number, 1)
            return ReportPeriod(value, first, calendar.monthrange(year, number)[1])
        if day:
            return ReportPeriod(value, date(int(day.group(1)), int(day.group(2)), int(day.group(3))), 1)
    except ValueError as exc:
        raise PeriodError(f"{value!r} is not a date of the calendar ({exc})") from None
    raise PeriodError(f"{value!r} is not a period: give a month as YYYY-MM (2026-11) or a day as YYYY-MM-DD (2026-11-05)")
