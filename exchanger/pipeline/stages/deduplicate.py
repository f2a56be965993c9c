"""Stage after authenticate: a message the exchange already accepted is answered with its original receipt."""

from __future__ import annotations

from typing import Protocol

import structlog

from exchanger.envelope import Envelope
from exchanger.pipeline.disposition import ACCEPTED, Disposition, Publication
from exchanger.receipts.formats import receipt_format, receipt_format_of
from exchanger.transport.names import MAILBOX_EXCHANGE
from exchanger.xml.parser import parse_untrusted

log = structlog.get_logger("exchanger.pipeline")

DUPLICATE = "duplicate"  # the disposition's outcome: nothing forwarded, the original receipt sent again
MAX_ID_HEADER = 256  # as the runner keeps ids in headers: AMQP headers travel in one frame


class AcceptedReceipts(Protocol):
    """Where the receipts of accepted messages are kept, by the idempotency key sender + message id."""

    def accepted_receipt(self, sender: str, message_id: str) -> bytes | None: ...


class Duplicate(Exception):
    """The sender already had this message id accepted: answer with the original receipt, forward nothing."""

    def __init__(self, receipt: bytes):
        root = parse_untrusted(receipt).getroot()
        answer = receipt_format_of(root) or receipt_format("PlatformReceipt")
        described = answer.describe(root)
        self.receipt = receipt
        self.format = answer.name
        self.receipt_id = described.receipt_id
        self.orig_message_id = described.orig_message_id
        self.orig_digest = described.orig_digest
        super().__init__(f"{self.orig_message_id} was accepted before (receipt {self.receipt_id})")


class Deduplicate:
    """Look the sender and message id up among accepted messages; a rejected one is processed again."""

    name = "deduplicate"

    def __init__(self, receipts: AcceptedReceipts):
        self.receipts = receipts

    def __call__(self, envelope: Envelope) -> None:
        try:
            receipt = self.receipts.accepted_receipt(envelope.sender.id, envelope.message_id)
            duplicate = Duplicate(receipt) if receipt is not None else None
        except Exception as exc:
            # Fail open: forwarding again is safe, because a forward's message id is derived from sender,
            # message id and content, so receivers drop the copy they already have.
            log.error("duplicates.lookup_failed", error=str(exc) or type(exc).__name__, **envelope.log_context())
            return
        if duplicate is not None:
            raise duplicate


def duplicate_disposition(envelope: Envelope, duplicate: Duplicate, config_version: str) -> Disposition:
    """Publish the original receipt again, byte for byte, to the authenticated sender, and nothing else."""
    headers = {
        "x-exchanger-kind": "receipt",
        "x-exchanger-status": ACCEPTED,
        "x-exchanger-duplicate": "true",
        "x-exchanger-orig-digest": duplicate.orig_digest or "",
        "x-exchanger-duplicate-digest": envelope.digest,
        "x-exchanger-config-version": config_version,
        "x-exchanger-orig-message-id": envelope.message_id[:MAX_ID_HEADER],
    }
    receipt = Publication(
        MAILBOX_EXCHANGE,
        envelope.sender.relayed_by or envelope.sender.id,  # a relayed sender's receipts go back through its peer
        duplicate.receipt,
        message_id=duplicate.receipt_id,
        correlation_id=envelope.message_id[:MAX_ID_HEADER],
        type=duplicate.format,
        headers=headers,
    )
    return Disposition(DUPLICATE, (receipt,), context=dict(envelope.log_context(), duplicate_of=duplicate.receipt_id))
