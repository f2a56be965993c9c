"""The exchange's own receipt, ex:PlatformReceipt (schemas/xsd/exchange.xsd), from the receipt's facts."""

from __future__ import annotations

from lxml import etree

from exchanger.platform_documents import NS, platform_receipt
from exchanger.receipts.facts import Described, ReceiptFacts

_E = f"{{{NS}}}"


def build(facts: ReceiptFacts) -> etree._Element:
    """The unsigned PlatformReceipt: accepted with the copies made, or rejected with every reason."""
    return platform_receipt(
        receipt_id=facts.receipt_id,
        platform_id=facts.platform_id,
        receiver=facts.receiver,
        status=facts.status,
        digest=facts.digest,
        received_at=facts.received_at,
        config_version=facts.config_version,
        orig_message_id=facts.orig_message_id,
        orig_message_type=facts.orig_message_type,
        deliveries=facts.deliveries,
        reasons=facts.reasons,
    )


def describe(root: etree._Element) -> Described:
    """A PlatformReceipt's own id, the message id it answers and that message's digest."""
    return Described(root.findtext(f"{_E}ReceiptId"), root.findtext(f"{_E}OrigMessageId"), root.findtext(f"{_E}OrigDigest"))
