"""``log verify``: walk the chain from its anchor and name every record that was edited, removed or moved."""

from __future__ import annotations

import hashlib
from collections.abc import Iterable
from dataclasses import dataclass, field

from cryptography import x509

from exchanger.journal.chain import GENESIS, content_digest, link
from exchanger.journal.checkpoint import signature_problem
from exchanger.journal.records import PRUNED, Record
from exchanger.journal.store import Query, Store

# How far from its place a moved record is looked for; farther moves are reported as edits.
MOVE_WINDOW = 256


@dataclass(frozen=True)
class Problem:
    """One thing wrong with the log, at the sequence number it concerns."""

    seq: int | None
    what: str

    def describe(self) -> str:
        """The problem as one line."""
        return f"seq {self.seq}: {self.what}" if self.seq is not None else self.what

    def as_dict(self) -> dict:
        """Plain data for ``--json``."""
        return {"seq": self.seq, "problem": self.what}


@dataclass
class Verification:
    """What verification covered, where it started from, and every problem found."""

    records: int = 0
    first_seq: int | None = None
    last_seq: int | None = None
    anchor: str = "the start of the log"
    checkpoints: int = 0
    archived: int = 0
    problems: list[Problem] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        """True when nothing is wrong."""
        return not self.problems

    def add(self, seq: int | None, what: str) -> None:
        """Note a problem."""
        self.problems.append(Problem(seq, what))


def _span(first: int, last: int) -> str:
    return f"record {first} is" if first == last else f"records {first} to {last} are"


def _summary(record: Record) -> str:
    what = [record.kind]
    if record.message_id:
        what.append(f"message {record.message_id}")
    if record.sender:
        what.append(f"from {record.sender}")
    return " ".join(what)


def verify(store: Store, certificates: Iterable[x509.Certificate], window: int = MOVE_WINDOW) -> Verification:
    """Check signatures of checkpoints, every record's hash and link, and every archived original and receipt."""
    result = Verification()
    certificates = list(certificates)
    signed: dict[int, str] = {}
    for checkpoint in store.checkpoints():
        problem = signature_problem(checkpoint, certificates)
        if problem:
            result.add(checkpoint.seq, f"checkpoint: {problem}")
        else:
            signed[checkpoint.seq] = checkpoint.hash
    result.checkpoints = len(signed)
    first, last, _ = store.bounds()
    head_seq, _ = store.head()
    if first is None:
        if head_seq:
            result.add(None, f"the log is empty but {head_seq} records were written to it: all were removed")
        return result
    result.first_seq = first

    # Where the chain starts: the genesis, or a signed checkpoint that vouches for what pruning removed.
    written: dict[int, str] = {}
    if first == 1:
        written[0] = GENESIS
    elif first - 1 in signed:
        written[first - 1] = signed[first - 1]
        result.anchor = f"the signed checkpoint at seq {first - 1}"
        prunes = store.find(Query(kinds=(PRUNED,)))
        if not any(p.details.get("through_seq") == first - 1 for p in prunes):
            result.add(first, f"records before seq {first} were removed without `exchanger log prune`")
    else:
        result.add(
            first,
            f"the log starts here, but no signed checkpoint vouches for seq {first - 1}: "
            "the records before it were removed",
        )

    expected, link_known = first, bool(written)
    for record in store.records(after_seq=first - 1):
        result.records += 1
        if record.seq > expected:
            result.add(expected, f"{_span(expected, record.seq - 1)} missing (removed)")
            link_known = False
        content = content_digest(record)
        place = record.seq
        if link(record.seq, record.prev, content) != record.hash:
            moved = next(
                (
                    j
                    for distance in range(1, window + 1)
                    for j in (record.seq - distance, record.seq + distance)
                    if j > 0 and link(j, record.prev, content) == record.hash
                ),
                None,
            )
            if moved is None:
                result.add(record.seq, f"edited: its content no longer matches its hash ({_summary(record)})")
            else:
                result.add(record.seq, f"reordered: it holds the record written as seq {moved} ({_summary(record)})")
                place = moved
        elif link_known and place - 1 in written and written[place - 1] != record.prev:
            result.add(
                place - 1,
                f"rewritten: seq {place} was chained to a different record {place - 1} "
                "(edited with its hash recomputed, or replaced)",
            )
        written[place] = record.hash
        if record.seq in signed and signed[record.seq] != record.hash:
            result.add(record.seq, "does not match the platform-signed checkpoint at this seq (rewritten)")
        link_known = True
        expected = record.seq + 1
        if len(written) > 4 * window:
            for seq in [s for s in written if s < record.seq - 2 * window]:
                del written[seq]
    result.last_seq = expected - 1

    if head_seq > result.last_seq:
        result.add(result.last_seq + 1, f"{_span(result.last_seq + 1, head_seq)} missing from the end of the log")
    elif head_seq < result.last_seq:
        result.add(None, f"the chain's head says seq {head_seq} but records go on to seq {result.last_seq}")
    for seq in sorted(s for s in signed if s > result.last_seq):
        result.add(seq, "a signed checkpoint names this record, which is missing from the end of the log")

    for what, seq, named, body in store.archived():
        result.archived += 1
        if named is None:
            result.add(seq, f"an archived {what} is kept for a record that is not in the log")
        elif hashlib.sha256(body).hexdigest() != named:
            result.add(seq, f"the archived {what} does not match the SHA-256 its record names (altered)")
    return result
