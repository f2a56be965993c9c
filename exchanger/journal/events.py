"""The events of one message's life, read from the inbound delivery and what the pipeline decided for it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field

from exchanger.envelope import Inbound
from exchanger.journal.period import stamp
from exchanger.journal.records import (
    ANSWERED,
    DEAD_LETTERED,
    DELIVERED,
    DUPLICATE,
    HANDED_BACK,
    RECEIPT,
    RECEIVED,
    REJECTED,
    ROUTED,
    Event,
)
from exchanger.pipeline.disposition import ACCEPTED, Disposition
from exchanger.pipeline.disposition import REJECTED as REJECTED_OUTCOME
from exchanger.pipeline.stages.deduplicate import DUPLICATE as DUPLICATE_OUTCOME
from exchanger.transport.links import link_name
from exchanger.transport.names import DEAD_EXCHANGE, DEAD_LETTERS

HEADER = "x-exchanger-"


@dataclass(frozen=True)
class Forward:
    """One copy the pipeline made: to whom, under which rule, with which message id."""

    to: str
    route: str | None
    forward_id: str | None
    body: bytes | None = field(default=None, repr=False, compare=False)  # the signed copy, kept with keep_originals: all


@dataclass(frozen=True)
class SentReceipt:
    """A receipt sent besides the envelope's own (a format receipt such as CEB900): to whom, its format and id."""

    to: str
    format: str | None
    receipt_id: str | None
    body: bytes | None = field(default=None, repr=False, compare=False)


@dataclass(frozen=True)
class Entry:
    """What the log keeps about one message between its processing and its settlement."""

    outcome: str
    digest: str
    config_version: str
    sender: str | None = None
    message_id: str | None = None
    message_type: str | None = None
    forwards: tuple[Forward, ...] = ()
    dead_lettered: bool = False
    dead_letter_id: str | None = None
    receipt_to: str | None = None
    receipt_id: str | None = None
    receipt_status: str | None = None
    receipt: bytes | None = field(default=None, repr=False)
    answers: str | None = None
    format_receipt: SentReceipt | None = None

    def columns(self) -> dict:
        """The columns every record about this message carries."""
        return {
            "config_version": self.config_version,
            "digest": self.digest,
            "sender": self.sender,
            "message_id": self.message_id,
            "message_type": self.message_type,
        }


def describe(inbound: Inbound, disposition: Disposition, config_version: str) -> Entry:
    """Read the facts the log needs from a disposition: its publications carry them in their headers."""
    forwards, receipt, dead, sender, answers, format_receipt = [], None, None, None, None, None
    for publication in disposition.publications:
        kind = publication.headers.get(f"{HEADER}kind")
        if publication.exchange == DEAD_EXCHANGE:
            dead = publication
        elif kind == "forward":
            sender = publication.headers.get(f"{HEADER}sender", sender)
            route = publication.headers.get(f"{HEADER}route")
            forwards.append(Forward(publication.routing_key, route, publication.message_id, publication.body))
            answers = publication.headers.get(f"{HEADER}answers", answers)
        elif kind == "receipt":
            receipt = publication
        elif kind == "format-receipt":
            format_receipt = SentReceipt(publication.routing_key, publication.type, publication.message_id, publication.body)
    context = disposition.context
    return Entry(
        outcome=disposition.outcome,
        digest=_digest(inbound, disposition),
        config_version=config_version,
        sender=sender or context.get("sender") or (receipt.routing_key if receipt is not None else None),
        message_id=context.get("message_id"),
        message_type=context.get("type"),
        forwards=tuple(forwards),
        dead_lettered=dead is not None,
        dead_letter_id=dead.headers.get(f"{HEADER}dead-letter-id") if dead is not None else None,
        receipt_to=receipt.routing_key if receipt is not None else None,
        receipt_id=receipt.message_id if receipt is not None else None,
        receipt_status=receipt.headers.get(f"{HEADER}status") if receipt is not None else None,
        receipt=receipt.body if receipt is not None else None,
        answers=answers,
        format_receipt=format_receipt,
    )


def _digest(inbound: Inbound, disposition: Disposition) -> str:
    """SHA-256 of the original bytes: as the publications' headers state it, or computed when none does."""
    for publication in disposition.publications:
        headers = publication.headers
        digest = headers.get(f"{HEADER}duplicate-digest") or headers.get(f"{HEADER}digest")
        if digest is None and headers.get(f"{HEADER}duplicate") is None:
            digest = headers.get(f"{HEADER}orig-digest")
        if digest:
            return digest
    return hashlib.sha256(inbound.body).hexdigest()


def _passed(stages: list[str], stopped_at: str | None) -> list[str]:
    """The stages a message passed before the one that stopped it (all of them if none did)."""
    if stopped_at in stages:
        return stages[: stages.index(stopped_at)]
    return list(stages)


def _inbound_details(inbound: Inbound) -> dict:
    details = {"size": len(inbound.body), "user_id": inbound.user_id, "redelivered": bool(inbound.redelivered)}
    if inbound.message_id:
        details["amqp_message_id"] = inbound.message_id
    # A dead letter replayed by an operator says so in its headers; the trace shows it.
    replay = {k: str(v) for k, v in (inbound.headers or {}).items() if str(k).startswith(f"{HEADER}replay")}
    if replay:
        details["replay"] = replay
    return details


def processing_events(
    inbound: Inbound, disposition: Disposition, entry: Entry, stages: list[str], keep_originals: str
) -> list[Event]:
    """``received`` and the outcome (``routed``, ``rejected`` or ``duplicate``), with each stage's part in it."""
    keep = keep_originals == "all" or (keep_originals == "rejected" and entry.outcome == REJECTED_OUTCOME)
    columns = entry.columns()
    events = [
        Event.of(
            RECEIVED,
            at=inbound.received_at,
            data=_inbound_details(inbound),
            original=inbound.body if keep else None,
            **columns,
        )
    ]
    columns["at"] = stamp()
    if entry.outcome == ACCEPTED:
        deliveries = []
        for publication in disposition.publications:
            if publication.headers.get(f"{HEADER}kind") != "forward":
                continue
            delivery = {"to": publication.routing_key, "route": publication.headers.get(f"{HEADER}route")}
            if publication.headers.get(f"{HEADER}addressee"):
                delivery["addressee"] = publication.headers[f"{HEADER}addressee"]
                delivery["link"] = link_name(publication.routing_key)
            if publication.headers.get(f"{HEADER}approved-by"):
                delivery["approved_by"] = publication.headers[f"{HEADER}approved-by"]
                delivery["approval_ref"] = publication.headers.get(f"{HEADER}approval-ref")
            deliveries.append(delivery)
        details = {
            "passed": _passed(stages, None),
            "deliveries": deliveries,
            "forward_id": entry.forwards[0].forward_id if entry.forwards else None,
        }
        if entry.answers:
            details["answers"] = entry.answers
        if disposition.context.get("relayed_by"):
            details["relayed_by"] = disposition.context["relayed_by"]
        events.append(Event.of(ROUTED, data=details, receivers=[f.to for f in entry.forwards], **columns))
        if entry.answers:
            events.append(_answered(entry, columns))
    elif entry.outcome == REJECTED_OUTCOME:
        stage = disposition.reasons[0].stage if disposition.reasons else None
        details = {
            "passed": _passed(stages, stage),
            "stage": stage,
            "reasons": [reason.as_dict() for reason in disposition.reasons],
            "receipt_to": entry.receipt_to,
        }
        if entry.format_receipt is not None:
            sent = entry.format_receipt
            details["format_receipt"] = {"format": sent.format, "receipt_id": sent.receipt_id}
        events.append(Event.of(REJECTED, data=details, **columns))
    elif entry.outcome == DUPLICATE_OUTCOME:
        receipt = next((p for p in disposition.publications if p.headers.get(f"{HEADER}kind") == "receipt"), None)
        details = {
            "passed": _passed(stages, "deduplicate"),
            "stage": "deduplicate",
            "receipt_id": entry.receipt_id,
            "original_digest": receipt.headers.get(f"{HEADER}orig-digest") if receipt is not None else None,
        }
        events.append(Event.of(DUPLICATE, data=details, **columns))
    return events


def _kept(body: bytes | None, name: str, details: dict) -> bytes | None:
    """The bytes to keep beside a record, their SHA-256 named in its details so that the chain covers them."""
    if body is None:
        return None
    details[name] = hashlib.sha256(body).hexdigest()
    return body


def settlement_events(entry: Entry, keep_originals: str = "rejected") -> list[Event]:
    """What the broker confirmed: each copy delivered, the dead letter, the receipt sent.

    The signed copies are kept beside their ``delivered`` records with ``keep_originals: all``; the
    receipts of rejected messages and format receipts unless it is ``none`` (an accepted receipt is
    always kept: it answers duplicates). Each kept document's SHA-256 is in its record's details.
    """
    columns = dict(entry.columns(), at=stamp())
    events = []
    for f in entry.forwards:
        details = {"forward_id": f.forward_id, "route": f.route}
        copy = _kept(f.body if keep_originals == "all" else None, "copy_sha256", details)
        events.append(Event.of(DELIVERED, data=details, receivers=[f.to], original=copy, **columns))
    keep_receipts = keep_originals != "none"
    if entry.dead_lettered:
        details = {"queue": DEAD_LETTERS}
        if entry.dead_letter_id:
            details["dead_letter_id"] = entry.dead_letter_id
        events.append(Event.of(DEAD_LETTERED, data=details, **columns))
    if entry.receipt_to is not None:
        details = {"status": entry.receipt_status, "receipt_id": entry.receipt_id}
        if entry.outcome == DUPLICATE_OUTCOME:
            details["original_receipt_again"] = True
        # Only the receipt of a newly accepted message is kept: it is what a duplicate is answered with,
        # and its digest in the record makes the kept bytes tamper-evident too.
        keep = entry.receipt if entry.outcome == ACCEPTED and entry.sender and entry.message_id else None
        if keep is not None:
            details["receipt_sha256"] = hashlib.sha256(keep).hexdigest()
        # A rejection's receipt is the sender's evidence of why: kept beside its record, as originals are.
        refusal = entry.receipt if keep_receipts and entry.outcome == REJECTED_OUTCOME else None
        _kept(refusal, "receipt_sha256", details)
        events.append(
            Event.of(RECEIPT, data=details, receivers=[entry.receipt_to], receipt=keep, original=refusal, **columns)
        )
    if entry.format_receipt is not None:
        sent = entry.format_receipt
        details = {"status": entry.receipt_status, "receipt_id": sent.receipt_id, "format": sent.format}
        body = _kept(sent.body if keep_receipts else None, "receipt_sha256", details)
        events.append(Event.of(RECEIPT, data=details, receivers=[sent.to], original=body, **columns))
    return events


def _answered(entry: Entry, columns: dict) -> Event:
    """The correlation, filed under the answered message's id: its trace shows the answer, whoever sent either."""
    details = {"by_message_id": entry.message_id, "by_type": entry.message_type, "by_sender": entry.sender}
    return Event.of(
        ANSWERED,
        data=details,
        receivers=[f.to for f in entry.forwards],
        **dict(columns, message_id=entry.answers, message_type=None, sender=None),
    )


def handed_back_event(subject: Entry | Inbound, why: str, config_version: str | None = None) -> Event:
    """A message handed back to the broker (a stage crashed, or a copy was never confirmed): it will come again."""
    if isinstance(subject, Entry):
        return Event.of(HANDED_BACK, data={"why": why}, **subject.columns())
    details = _inbound_details(subject)
    details["why"] = why
    return Event.of(
        HANDED_BACK,
        data=details,
        config_version=config_version,
        digest=hashlib.sha256(subject.body).hexdigest(),
        sender=None,
    )
