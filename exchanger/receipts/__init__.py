"""Receipts: the exchange's answer to every message, in the format that answers the envelope it came in."""

from exchanger.receipts.formats import RECEIPT_FORMATS, ReceiptFacts, ReceiptFormat, receipt_format

__all__ = ["RECEIPT_FORMATS", "ReceiptFacts", "ReceiptFormat", "receipt_format"]
