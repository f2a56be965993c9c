"""Finding messages in the log: search by outcome or operator, and one message's trace."""

from __future__ import annotations

import re
from dataclasses import dataclass, field, replace

from exchanger.journal.records import OPERATOR_ACTION, OUTCOMES, Record
from exchanger.journal.store import Query, Store
from exchanger.journal.timeline import timeline

_DIGEST = re.compile(r"^[0-9a-fA-F]{8,64}$")


@dataclass(frozen=True)
class MessageTrace:
    """Every record of one message (operator actions about it included), and the timeline they make."""

    message_id: str
    sender: str | None
    records: list[Record] = field(default_factory=list)

    @property
    def found(self) -> bool:
        """Whether the log holds anything about the message."""
        return bool(self.records)

    @property
    def lines(self) -> list[str]:
        """The timeline as ``exchanger trace`` prints it."""
        return timeline(self.records)


def search(store: Store, query: Query) -> list[Record]:
    """The records matching the query; with no kind given, the outcomes (or an operator's actions)."""
    if not query.kinds:
        query = replace(query, kinds=(OPERATOR_ACTION,) if query.operator else OUTCOMES)
    records = store.find(query)
    if query.operator:
        # The store's match is on the serialised details; the name itself decides.
        records = [r for r in records if r.kind == OPERATOR_ACTION and r.details.get("operator") == query.operator]
    return records


def trace(store: Store, message_id: str, sender: str | None = None) -> MessageTrace:
    """One message's records in order, by its id or, for one refused before its id was read, by its digest's start."""
    records = store.find(Query(message_id=message_id, sender=sender))
    if not records and _DIGEST.match(message_id):
        records = store.find(Query(digest_prefix=message_id, sender=sender))
    return MessageTrace(message_id, sender, records)
