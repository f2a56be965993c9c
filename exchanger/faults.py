"""Crash points for fault-injection tests: kill -9 of this process at a named point of a message's life.

Set EXCHANGER_CRASH_POINT (e.g. ``after-validate``, ``after-publish``, ``after-confirm``, ``after-ack``)
and optionally EXCHANGER_CRASH_AFTER=N (crash on the Nth time the point is reached, default 1).
Unset, ``crash_point`` is a no-op bound at import, so normal runs pay nothing per message.
"""

from __future__ import annotations

import os
import signal

POINTS = (
    "after-parse", "after-identify", "after-validate", "after-verify", "after-authenticate", "after-route",
    "after-sign", "after-publish", "after-confirm", "after-ack",
)


def _noop(_name: str) -> None:
    """No crash point is armed."""


def _armed(point: str, after: int):
    remaining = [after]

    def crash_point(name: str) -> None:
        """Kill this process without any clean-up when the armed point is reached for the Nth time."""
        if name != point:
            return
        remaining[0] -= 1
        if remaining[0] <= 0:
            os.kill(os.getpid(), signal.SIGKILL)

    return crash_point


_POINT = os.environ.get("EXCHANGER_CRASH_POINT")
if _POINT and _POINT not in POINTS:
    raise SystemExit(f"EXCHANGER_CRASH_POINT={_POINT!r} is not one of {', '.join(POINTS)}")
crash_point = _armed(_POINT, int(os.environ.get("EXCHANGER_CRASH_AFTER", "1"))) if _POINT else _noop
