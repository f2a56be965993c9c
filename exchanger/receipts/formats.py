"""The receipt formats, by name: what the envelope catalogue's ``receipt`` chooses from."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from lxml import etree

from exchanger.outcome import Reason
from exchanger.routing import Delivery


@dataclass(frozen=True)
class ReceiptFacts:
    """What any receipt says about one message: the transport-neutral answer, before a format writes it."""

    receipt_id: str
    platform_id: str
    node_id: str | None
    receiver: str
    status: str
    digest: str
    received_at: float
    config_version: str
    orig_message_id: str | None = None
    orig_message_type: str | None = None
    deliveries: tuple[Delivery, ...] = ()
    reasons: tuple[Reason, ...] = ()
    carrier: object = None  # the Carrier of the envelope the message came in, when it came in one


@dataclass(frozen=True)
class Described:
    """What a receipt already sent says of itself: to answer a duplicate with it again."""

    receipt_id: str | None
    orig_message_id: str | None
    orig_digest: str | None


@dataclass(frozen=True)
class ReceiptFormat:
    """One receipt format: its AMQP type name, how it is written, and how a stored one is read back."""

    name: str
    build: Callable[[ReceiptFacts], etree._Element]
    describe: Callable[[etree._Element], Described]


def _platform_receipt() -> ReceiptFormat:
    from exchanger.receipts.platform import build, describe

    return ReceiptFormat("PlatformReceipt", build, describe)


def _dxp_rep() -> ReceiptFormat:
    from exchanger.receipts.dxp_rep import build, describe

    return ReceiptFormat("DxpRep", build, describe)


# Built on first use: the configuration schema lists the names without importing every writer.
RECEIPT_FORMATS: dict[str, Callable[[], ReceiptFormat]] = {"PlatformReceipt": _platform_receipt, "DxpRep": _dxp_rep}
_BUILT: dict[str, ReceiptFormat] = {}


def receipt_format(name: str) -> ReceiptFormat:
    """The receipt format of this name (one of RECEIPT_FORMATS)."""
    if name not in _BUILT:
        _BUILT[name] = RECEIPT_FORMATS[name]()
    return _BUILT[name]


def receipt_format_of(root: etree._Element) -> ReceiptFormat | None:
    """The format a stored receipt is written in, by its root element, or None."""
    local = etree.QName(root).localname
    return receipt_format(local) if local in RECEIPT_FORMATS else None
