"""Receipts: the exchange's answer to every message, in the format that answers the envelope it came in."""

from exchanger.receipts.facts import Described, ReceiptFacts
from exchanger.receipts.formats import RECEIPT_FORMATS, ReceiptFormat, receipt_format, receipt_format_of

__all__ = ["RECEIPT_FORMATS", "Described", "ReceiptFacts", "ReceiptFormat", "receipt_format", "receipt_format_of"]
