"""Who acts on the exchange, and the log record each of their actions leaves."""

from __future__ import annotations

import getpass
from dataclasses import dataclass

from exchanger.errors import ExchangerError
from exchanger.journal.records import OPERATOR_ACTION, Event, Record
from exchanger.journal.store import Store

__all__ = ["ACTIONS", "OPERATOR_ACTION", "Operator", "OperatorError", "action_event", "record_action"]

VIAS = ("cli", "console")
# The actions an operator's record can name; anything else is a mistake in the caller.
ACTIONS = (
    "sign-in",
    "sign-in-failed",
    "sign-out",
    "dead-letter-replay",
    "dead-letter-purge",
    "route-change",
    "route-change-refused",
    "evidence-export",
    "report",
    "account-add",
    "account-role",
    "account-password",
    "account-remove",
)
# Keys of a record's details the action itself fills in; the caller's details may not replace them.
_RESERVED = ("action", "operator", "via", "outcome")


class OperatorError(ExchangerError):
    """An operator action that cannot be recorded as asked (unknown action, blank name, reserved detail)."""


@dataclass(frozen=True)
class Operator:
    """A person acting on the exchange, and through what: the command line or the console."""

    name: str
    via: str

    def __post_init__(self):
        if not self.name or not self.name.strip():
            raise OperatorError("an operator action needs the operator's name")
        if self.via not in VIAS:
            raise OperatorError(f"an operator acts via {' or '.join(VIAS)}, not {self.via!r}")

    @classmethod
    def from_login(cls) -> Operator:
        """The person running a command: their login name, via the command line."""
        try:
            name = getpass.getuser()
        except Exception:  # no login name in a bare container: the record still says something
            name = "unknown"
        return cls(name or "unknown", "cli")


def action_event(
    operator: Operator,
    action: str,
    *,
    outcome: str = "done",
    message_id: str | None = None,
    sender: str | None = None,
    message_type: str | None = None,
    details: dict | None = None,
    config_version: str | None = None,
    digest: str | None = None,
) -> Event:
    """The log event of one operator action, filed under the message it concerns when there is one."""
    if action not in ACTIONS:
        raise OperatorError(f"unknown operator action {action!r}; known: {', '.join(ACTIONS)}")
    clash = sorted(set(details or ()) & set(_RESERVED))
    if clash:
        raise OperatorError(f"the details of an operator action may not set {', '.join(clash)}")
    data = {**(details or {}), "action": action, "operator": operator.name, "via": operator.via, "outcome": outcome}
    return Event.of(
        OPERATOR_ACTION,
        data=data,
        message_id=message_id,
        sender=sender,
        message_type=message_type,
        config_version=config_version,
        digest=digest,
    )


def record_action(store: Store, operator: Operator, action: str, **fields) -> Record:
    """Append the action to the hash-chained log now (in its own transaction) and return its record.

    ``fields`` are action_event's (outcome, message_id, sender, message_type, details, config_version,
    digest). Appending straight to the store is safe beside the daemon's writer: every append takes the
    chain's head under the store's lock, and the writer's next checkpoint signs it with the rest.
    """
    event = action_event(operator, action, **fields)
    (record,) = store.append([event])
    return record
