"""Operator actions the console itself performs (signing in and out) go into the hash-chained message log."""

from __future__ import annotations

import structlog

log = structlog.get_logger("exchanger.console")


def operator(name: str):
    """The operations layer's Operator for a console account."""
    from exchanger.operations.actor import Operator

    return Operator(name=name, via="console")


def record(services, name: str, action: str, *, outcome: str = "done", details: dict | None = None) -> None:
    """Record a console action under the operator's name; a log that cannot be written is reported, not fatal."""
    from exchanger.operations.actor import ACTIONS, record_action

    if action not in ACTIONS:
        # An action the message log has no record kind for yet (account changes): the daemon's log keeps it.
        log.info("console.operator-action", action=action, operator=name, outcome=outcome, **(details or {}))
        return
    try:
        record_action(services.store(), operator(name), action, outcome=outcome, details=details)
    except Exception as exc:  # noqa: BLE001  (a sign-in must not fail because the log is down; the event says so)
        log.error("console.audit-failed", action=action, operator=name, error=str(exc))
