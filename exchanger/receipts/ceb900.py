"""GACC's format receipt, ceb:CEB900Message, lodged in a DxpMsg: each schema violation of a CEB message that came in DXP.

The official import business-node schemas of 2018 and 202205 declare CEB900Message alike, with no
place for a ds:Signature: an enveloped signature would make it invalid. So the exchange signs the
DxpMsg it travels in, as every DXP party signs its transport message, and the CEB900 inside is the
platform's by that signature. The exchange's own copy of the definition is schemas/xsd/ceb900.xsd.

    guid            the receipt's own 36-character id, upper case (derived, so a redelivery writes the same)
    MessageReturn   guid: the original's guid, by which the enterprise correlates; returnStatus: -1 (the
                    annotation: below zero is a format failure); returnInfo: each violation with its line
                    and path, capped at the schema's 5000 characters; returnTime: YYYYMMDDhhmmssSSS, UTC;
                    oriCopMsgId: the DxpMsg's CopMsgId; oriMessageType: the root's name, e.g. CEB311Message;
                    oriBizMessage: left empty, since the sender holds what it sent and echoing hostile
                    bytes back would double what an attacker can make the exchange write
"""

from __future__ import annotations

import base64
from datetime import datetime, timezone

from lxml import etree

from exchanger.envelopes.dxp import NS as DXP_NS
from exchanger.envelopes.dxp import dxp_message
from exchanger.platform_documents import timestamp
from exchanger.receipts.facts import Described, ReceiptFacts

NS = "http://www.chinaport.gov.cn/ceb"
_C = f"{{{NS}}}"
ROOT = "CEB900Message"
VERSION = "1.0"
FORMAT_FAILED = "-1"
GUID = 36
MAX_INFO = 5000
MAX_COP_MSG_ID = 255
MAX_MESSAGE_TYPE = 15
UNKNOWN_TYPE = "Unknown"
PARTY_ID = 16


def _clip(value: str, most: int) -> str:
    # Reasons may quote hostile input; XML 1.0 cannot carry control characters at all.
    clean = "".join(ch if ch in "\t\n" or ord(ch) >= 0x20 else "\ufffd" for ch in value)
    return clean if len(clean) <= most else clean[: most - 1] + "…"


def _text(parent: etree._Element, name: str, value: str) -> None:
    etree.SubElement(parent, _C + name).text = value


def return_info(facts: ReceiptFacts) -> str:
    """Every violation, numbered, with its line and path: the sender's to-do list, within the schema's 5000."""
    items = []
    for number, reason in enumerate(facts.reasons, start=1):
        where = [f"line {reason.line}"] if reason.line is not None else []
        if reason.path:
            where.append(reason.path)
        located = f" ({', '.join(where)})" if where else ""
        items.append(f"{number}.{located} {reason.message}")
    return _clip("; ".join(items), MAX_INFO)


def ceb900_message(facts: ReceiptFacts) -> etree._Element:
    """The unsigned CEB900Message naming each schema violation of the message the facts are about."""
    root = etree.Element(_C + ROOT, nsmap={None: NS})
    root.set("guid", facts.receipt_id.upper())
    root.set("version", VERSION)
    body = etree.SubElement(root, _C + "MessageReturn")
    original = facts.orig_message_id or ""
    _text(body, "guid", original if len(original) == GUID else facts.receipt_id.upper())
    _text(body, "returnStatus", FORMAT_FAILED)
    _text(body, "returnInfo", return_info(facts))
    _text(body, "returnTime", datetime.now(timezone.utc).strftime("%Y%m%d%H%M%S%f")[:17])
    cop_msg_id = facts.carrier.message_id if facts.carrier is not None else None
    _text(body, "oriCopMsgId", cop_msg_id if cop_msg_id and len(cop_msg_id) <= MAX_COP_MSG_ID else "")
    root_name = facts.orig_root or ""
    _text(body, "oriMessageType", root_name if 0 < len(root_name) <= MAX_MESSAGE_TYPE else UNKNOWN_TYPE)
    _text(body, "oriBizMessage", "")
    return root


def build(facts: ReceiptFacts) -> etree._Element:
    """The unsigned DxpMsg from the platform to the sender, carrying the CEB900Message, for the platform to sign."""
    document = etree.tostring(ceb900_message(facts), xml_declaration=True, encoding="UTF-8")
    sender = facts.platform_id if len(facts.platform_id) <= PARTY_ID else (facts.node_id or facts.platform_id[:PARTY_ID])
    return dxp_message(
        message_id=facts.receipt_id,
        sender=sender,
        receivers=[facts.receiver],
        created=timestamp(),
        message_type=ROOT,
        document=document,
        keys=[("OrigMsgId", facts.orig_message_id or "")],
    )


def carried(root: etree._Element) -> etree._Element | None:
    """The CEB900Message a DxpMsg the exchange wrote carries, or None."""
    data = root.findtext(f"{{{DXP_NS}}}Data")
    if not data:
        return None
    parsed = etree.fromstring(base64.b64decode(data), etree.XMLParser(resolve_entities=False, no_network=True))
    return parsed if parsed.tag == _C + ROOT else None


def describe(root: etree._Element) -> Described:
    """A CEB900's own id and the guid of the message it answers, read from the DxpMsg the exchange wrote."""
    message = carried(root)
    if message is None:
        return Described(None, None, None)
    return Described(message.get("guid", "").lower() or None, message.findtext(f"{_C}MessageReturn/{_C}guid"), None)
