"""Periods and moments as operators type them: ``90d``, ``12h``, ``2024-03-18``, ``2024-03-18T10:00Z``."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

_PERIOD = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 7 * 86400}


def parse_period(text: str) -> int:
    """Seconds in a period such as ``90d``, ``12h``, ``30m``, ``45s`` or ``2w``; ValueError otherwise."""
    match = _PERIOD.match(str(text))
    if not match or int(match.group(1)) == 0:
        raise ValueError(f"{text!r} is not a period such as 90d, 12h, 30m, 45s or 2w")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def parse_moment(text: str, now: float | None = None) -> float:
    """An epoch time from an ISO date or date-time (UTC unless it says otherwise) or a period ago (``2h``)."""
    try:
        return (time.time() if now is None else now) - parse_period(text)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(text.strip().replace("Z", "+00:00"))
    except ValueError:
        raise ValueError(f"{text!r} is neither a date-time such as 2024-03-18T10:00Z nor a period such as 2h") from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=timezone.utc)
    return moment.timestamp()


def stamp(epoch: float | None = None) -> str:
    """The log's time format: UTC to the microsecond, fixed width, so text order is time order."""
    moment = datetime.fromtimestamp(time.time() if epoch is None else epoch, timezone.utc)
    # isoformat is several times cheaper than strftime, and the log stamps every record of every message.
    return moment.isoformat(timespec="microseconds")[:-6] + "Z"
