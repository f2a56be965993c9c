"""The receipt formats, by name: what the envelope catalogue's ``receipt`` chooses from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from lxml import etree

from exchanger.receipts import ceb900, dxp_rep, platform
from exchanger.receipts.facts import Described, ReceiptFacts


@dataclass(frozen=True)
class ReceiptFormat:
    """One receipt format: its name (also the AMQP type), how it is written, and how a stored one is read back."""

    name: str
    build: Callable[[ReceiptFacts], etree._Element]
    describe: Callable[[etree._Element], Described]
    root: str = ""  # Clark notation
    addressee: str = ""  # the child of the root naming whom the receipt answers (the original sender)
    answered: str = ""  # the path, from the root, to the id of the message the receipt answers, as its sender gave it


RECEIPT_FORMATS: dict[str, ReceiptFormat] = {
    "PlatformReceipt": ReceiptFormat(
        "PlatformReceipt", platform.build, platform.describe, "{urn:eport:exchange:1}PlatformReceipt",
        "{urn:eport:exchange:1}ReceiverId", "{urn:eport:exchange:1}OrigMessageId",
    ),
    "DxpRep": ReceiptFormat(
        "DxpRep", dxp_rep.build, dxp_rep.describe, "{http://www.chinaport.gov.cn/dxp}DxpRep",
        "{http://www.chinaport.gov.cn/dxp}RecevierId",
        "{http://www.chinaport.gov.cn/dxp}Response/{http://www.chinaport.gov.cn/dxp}OriHead/"
        "{http://www.chinaport.gov.cn/dxp}CopMsgId",
    ),
    "CEB900Message": ReceiptFormat("CEB900Message", ceb900.build, ceb900.describe),
}
# A format receipt travels inside a DxpMsg and is never read back as a receipt of its own: it has no root here.
_BY_ROOT = {f.root: f for f in RECEIPT_FORMATS.values() if f.root}

# Format receipts: sent besides the envelope's receipt when a message violates its type's schema;
# a message catalogue type names one by ``format_receipt``.
FORMAT_RECEIPTS = ("CEB900Message",)


def receipt_format(name: str) -> ReceiptFormat:
    """The receipt format of this name (one of RECEIPT_FORMATS)."""
    return RECEIPT_FORMATS[name]


def receipt_format_of(root: etree._Element) -> ReceiptFormat | None:
    """The format a stored receipt is written in, by its root element's local name, or None."""
    return RECEIPT_FORMATS.get(etree.QName(root).localname)


def receipt_format_at(root: etree._Element) -> ReceiptFormat | None:
    """The receipt format whose root element (namespace and name) this is, or None."""
    return _BY_ROOT.get(root.tag)
