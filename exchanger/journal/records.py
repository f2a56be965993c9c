"""What the log records: events in a message's life, and the same events placed in the chain."""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from operator import attrgetter

from exchanger.journal.period import stamp

# The kinds of event, in the order a message meets them.
RECEIVED = "received"
ROUTED = "routed"
REJECTED = "rejected"
DUPLICATE = "duplicate"
DELIVERED = "delivered"
DEAD_LETTERED = "dead-lettered"
RECEIPT = "receipt"
HANDED_BACK = "handed-back"
PRUNED = "pruned"
ANSWERED = "answered"  # filed under the id of a message another (a business receipt) answers
OPERATOR_ACTION = "operator-action"  # an operator replayed, purged, changed routes, exported evidence, signed in…
# Each processing of a message ends in exactly one of these.
OUTCOMES = (ROUTED, REJECTED, DUPLICATE)
KINDS = (RECEIVED, ROUTED, REJECTED, DUPLICATE, DELIVERED, DEAD_LETTERED, RECEIPT, HANDED_BACK, PRUNED, ANSWERED,
         OPERATOR_ACTION)

# The columns a record's hash covers, in the order the stores keep them.
COLUMNS = ("at", "kind", "config_version", "digest", "sender", "message_id", "message_type", "receivers", "data")
_column_values = attrgetter(*COLUMNS)

# One encoder for every call: json.dumps builds a new one each time it is given options.
_CANONICAL = json.JSONEncoder(sort_keys=True, separators=(",", ":"), ensure_ascii=False)


def canonical_json(value) -> str:
    """The one serialisation the chain hashes: sorted keys, no spaces, UTF-8 text."""
    return _CANONICAL.encode(value)


def clean(text) -> str | None:
    """Text both stores keep byte for byte: no NUL (PostgreSQL refuses it) and no lone surrogates."""
    if text is None:
        return None
    text = str(text)
    if "\x00" in text:
        text = text.replace("\x00", "\ufffd")
    if text.isascii():
        return text
    return text.encode("utf-8", "replace").decode("utf-8")


def receivers_text(receivers) -> str | None:
    """Participant ids as one searchable column: ``,customs,ciq,`` (ids hold no commas)."""
    receivers = [r for r in receivers or () if r]
    return f",{','.join(receivers)}," if receivers else None


@dataclass(frozen=True, kw_only=True)
class Event:
    """One thing that happened to a message, before the chain gives it a place."""

    kind: str
    at: str
    config_version: str | None = None
    digest: str | None = None
    sender: str | None = None
    message_id: str | None = None
    message_type: str | None = None
    receivers: str | None = None
    data: str = "{}"
    # Kept beside the record rather than in it; the record names their SHA-256, so they are covered too.
    original: bytes | None = field(default=None, repr=False, compare=False)
    receipt: bytes | None = field(default=None, repr=False, compare=False)

    @classmethod
    def of(
        cls,
        kind: str,
        *,
        at: float | str | None = None,
        data: dict | None = None,
        receivers=(),
        original: bytes | None = None,
        receipt: bytes | None = None,
        **columns,
    ) -> Event:
        """Build an event, time-stamped now unless ``at`` says when it happened (epoch, or already stamped)."""
        return cls(
            kind=kind,
            at=at if isinstance(at, str) else stamp(at),
            receivers=receivers_text(receivers),
            data=canonical_json(data or {}),
            original=original,
            receipt=receipt,
            **{name: clean(value) for name, value in columns.items()},
        )

    def body(self) -> bytes:
        """The canonical bytes of what happened: every hashed column, the details as stored."""
        return canonical_json(dict(zip(COLUMNS, _column_values(self)))).encode("utf-8")

    @property
    def details(self) -> dict:
        """The kind-specific details (reasons, deliveries, receipt id…)."""
        return json.loads(self.data)

    @property
    def receiver_list(self) -> list[str]:
        """The receivers column as a list."""
        return [r for r in (self.receivers or "").split(",") if r]


@dataclass(frozen=True, kw_only=True)
class Record(Event):
    """An event in its place: its sequence number, the hash of the record before it, and its own hash."""

    seq: int
    prev: str
    hash: str

    def as_dict(self) -> dict:
        """Plain data for ``--json`` output, details unpacked."""
        data = {name: value for name, value in asdict(self).items() if name not in ("original", "receipt", "data")}
        data["details"] = self.details
        data["receivers"] = self.receiver_list
        return data


def kept_document(data: str | None, table_holds: str, digest: str | None) -> tuple[str, str | None]:
    """What a kept document is (original, copy or receipt) and the SHA-256 its record names for it."""
    try:
        details = json.loads(data) if data else {}
    except ValueError:
        details = {}
    details = details if isinstance(details, dict) else {}
    if table_holds == "receipt":
        return "receipt", details.get("receipt_sha256")
    for name, kind in (("copy_sha256", "copy"), ("receipt_sha256", "receipt")):
        if details.get(name):
            return kind, details[name]
    return "original", digest
