"""The exchange's own documents: the forwarding envelope and the platform receipt (schemas/xsd/exchange.xsd)."""

from __future__ import annotations

import base64
import uuid
from datetime import datetime, timezone

from lxml import etree

from exchanger.outcome import Reason
from exchanger.routing import Delivery

NS = "urn:eport:exchange:1"
_E = f"{{{NS}}}"
_NSMAP = {"ex": NS}
# A fixed namespace makes ids derived from the same input the same on every instance, so a
# redelivered message produces copies and receipts with the ids receivers already saw.
_ID_NAMESPACE = uuid.UUID("6f1d7c38-3b0e-4c47-9a55-2f6a3c1e8d90")


def derived_id(*parts: str) -> str:
    """A stable id for a platform document, derived from what it is about."""
    return str(uuid.uuid5(_ID_NAMESPACE, "\x1f".join(parts)))


def timestamp(epoch: float | None = None) -> str:
    """An xs:dateTime in UTC with millisecond precision."""
    moment = datetime.fromtimestamp(epoch, timezone.utc) if epoch is not None else datetime.now(timezone.utc)
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


def _text(parent: etree._Element, name: str, value: str) -> etree._Element:
    element = etree.SubElement(parent, _E + name)
    element.text = value
    return element


def _delivery(parent: etree._Element, delivery: Delivery) -> None:
    element = etree.SubElement(parent, _E + "Delivery", to=delivery.to, route=delivery.route)
    if delivery.approval is not None:
        element.set("approvedBy", delivery.approval.by)
        element.set("approvalRef", delivery.approval.ref)


def _digest(parent: etree._Element, name: str, digest: str) -> None:
    element = _text(parent, name, digest)
    element.set("algorithm", "sha256")


def exchange_message(
    *,
    message_id: str,
    orig_message_id: str,
    message_type: str,
    sender: str,
    deliveries: tuple[Delivery, ...],
    received_at: float,
    config_version: str,
    digest: str,
    original: bytes,
) -> etree._Element:
    """The unsigned forwarding envelope that carries the sender's document byte for byte."""
    root = etree.Element(_E + "ExchangeMessage", nsmap=_NSMAP)
    info = etree.SubElement(root, _E + "TransInfo")
    _text(info, "MessageId", message_id)
    _text(info, "OrigMessageId", orig_message_id)
    _text(info, "MessageType", message_type)
    _text(info, "SenderId", sender)
    for delivery in deliveries:
        _delivery(info, delivery)
    _text(info, "ReceivedTime", timestamp(received_at))
    _text(info, "ForwardedTime", timestamp())
    _text(info, "ConfigVersion", config_version)
    _digest(info, "Digest", digest)
    _text(root, "Data", base64.b64encode(original).decode("ascii"))
    return root


def platform_receipt(
    *,
    receipt_id: str,
    platform_id: str,
    receiver: str,
    status: str,
    digest: str,
    received_at: float,
    config_version: str,
    orig_message_id: str | None = None,
    orig_message_type: str | None = None,
    deliveries: tuple[Delivery, ...] = (),
    reasons: tuple[Reason, ...] = (),
) -> etree._Element:
    """The unsigned platform receipt: accepted with the copies made, or rejected with every reason."""
    root = etree.Element(_E + "PlatformReceipt", nsmap=_NSMAP)
    _text(root, "ReceiptId", receipt_id)
    _text(root, "SenderId", platform_id)
    _text(root, "ReceiverId", receiver)
    if orig_message_id:
        _text(root, "OrigMessageId", orig_message_id[:256])
    if orig_message_type:
        _text(root, "OrigMessageType", orig_message_type)
    _digest(root, "OrigDigest", digest)
    _text(root, "Status", status)
    _text(root, "ReceivedTime", timestamp(received_at))
    _text(root, "IssueTime", timestamp())
    _text(root, "ConfigVersion", config_version)
    for delivery in deliveries:
        _delivery(root, delivery)
    for reason in reasons:
        element = _text(root, "Reason", _printable(reason.message))
        element.set("stage", reason.stage)
        element.set("code", reason.code)
        if reason.line:
            element.set("line", str(reason.line))
        if reason.path:
            element.set("path", reason.path)
    return root


def _printable(text: str) -> str:
    # Reasons may quote hostile input; XML 1.0 cannot carry control characters at all.
    return "".join(ch if ch in "\t\n" or ord(ch) >= 0x20 else "\ufffd" for ch in text)[:2000]


def read_exchange_message(root: etree._Element) -> dict:
    """Unpack a forwarding envelope: its transport fields and the original document's bytes."""
    info = root.find(_E + "TransInfo")
    fields = {child.tag.removeprefix(_E): child.text for child in info if child.tag != _E + "Delivery"}
    fields["deliveries"] = [dict(d.attrib) for d in info.iter(_E + "Delivery")]
    fields["original"] = base64.b64decode(root.findtext(_E + "Data") or "")
    return fields
