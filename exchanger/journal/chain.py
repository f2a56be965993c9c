"""The hash chain: each record's hash covers its place, the hash before it, and its content."""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

from exchanger.journal.records import Event, Record

GENESIS = "0" * 64
_DOMAIN = b"exchanger.journal/1\n"


def content_digest(event: Event) -> bytes:
    """SHA-256 of the event's canonical content (computed before the append lock is taken)."""
    return hashlib.sha256(event.body()).digest()


def link(seq: int, prev: str, content: bytes) -> str:
    """The hash of the record at ``seq`` that follows the record hashed ``prev``."""
    return hashlib.sha256(_DOMAIN + f"{seq}\n{prev}\n".encode("ascii") + content).hexdigest()


def extend(head_seq: int, head_hash: str, events: Sequence[tuple[Event, bytes]]) -> list[Record]:
    """Place events (with their content digests) after the head, in order."""
    records, seq, prev = [], head_seq, head_hash
    for event, content in events:
        seq += 1
        digest = link(seq, prev, content)
        # An event is a dataclass without slots: its __dict__ holds exactly its fields.
        records.append(Record(**vars(event), seq=seq, prev=prev, hash=digest))
        prev = digest
    return records
