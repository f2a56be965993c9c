"""Faults for fault-injection tests: kill -9 of this process at a named point, or a stage that always fails.

Set EXCHANGER_CRASH_POINT (e.g. ``after-validate``, ``after-publish``, ``after-confirm``, ``after-ack``)
and optionally EXCHANGER_CRASH_AFTER=N (crash on the Nth time the point is reached, default 1).
Set EXCHANGER_POISON=STAGE:MARK (e.g. ``authenticate:POISON-``) and that stage raises for every
message whose bytes contain MARK: a poison message, which fails the same way at every delivery.
Unset, ``crash_point`` and ``poison_point`` are no-ops bound at import, so normal runs pay nothing per message.
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


class InjectedFault(RuntimeError):
    """The failure EXCHANGER_POISON injects: an unexpected error in a stage, not a rejection."""


def _harmless(_stage: str, _body: bytes) -> None:
    """No poison is armed."""


def _poisoned(stage: str, mark: bytes):
    def poison_point(name: str, body: bytes) -> None:
        """Raise in the armed stage for a message carrying the mark."""
        if name == stage and mark in body:
            raise InjectedFault(f"injected fault in stage {stage} (EXCHANGER_POISON)")

    return poison_point


def _poison_from(setting: str | None):
    if not setting:
        return _harmless
    stage, _, mark = setting.partition(":")
    if not stage or not mark:
        raise SystemExit(f"EXCHANGER_POISON={setting!r} is not STAGE:MARK, e.g. authenticate:POISON-")
    return _poisoned(stage, mark.encode())


poison_point = _poison_from(os.environ.get("EXCHANGER_POISON"))
