"""China E-Port's transport receipt, dxp:DxpRep, answering every message that came in a DxpMsg.

The terminal-node schema gives ResponseCode and Code one to nine characters and names no values,
so the exchange's codes are its own, four digits, one per stage that can refuse a message:

    0000  accepted: taken for delivery (Result: the copy was published to that receiver)
    1001  the envelope was refused: its schema, signature, Data, or its agreement with the message inside
    1002  the message is not well-formed XML, or is over a size or shape limit
    1003  the message is of no type this exchange knows
    1004  the message violates its type's schema
    1005  the message's signature was refused
    1006  the message's sender, signer and connection are not one participant
    1007  no route allows the message to a receiver it names
    1008  the message was accepted before (a duplicate is answered with the first receipt, so this is unused)
    1099  the exchange failed to process the message at every delivery; it is kept for the operators

A rejected message's Results give each receiver its envelope named the same code: none of them gets a copy.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone

from lxml import etree

from exchanger.envelopes.dxp import NS, NSMAP, VERSION, text, trans_info
from exchanger.outcome import Reason
from exchanger.platform_documents import timestamp
from exchanger.receipts.facts import Described, ReceiptFacts

_D = f"{{{NS}}}"
ACCEPTED_CODE = "0000"
STAGE_CODES = {
    "unwrap": "1001",
    "parse": "1002",
    "identify": "1003",
    "validate": "1004",
    "verify": "1005",
    "authenticate": "1006",
    "route": "1007",
    "exchange": "1099",
}
FALLBACK_CODE = "1099"
PARTY_ID = 16  # SenderId, ReceiverId, RecevierId and RecId hold at most 16 characters
MAX_RECEIVERS = 5
MAX_INFO = 300
MAX_NOTE = 500
MAX_MSG_TYPE = 30
MAX_COP_MSG_ID = 255
# The xs:dateTime echoed must be one: four-digit years only, so that the date and time can be checked too.
_DATE_TIME = re.compile(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d+)?(Z|[+-](0\d|1[0-4]):[0-5]\d)?")
_NOTE = re.compile(r"receipt (?P<id>\S+); sha256 (?P<digest>[0-9a-f]{64}); message (?P<message>.*?); config ")


def response_code(reasons: tuple[Reason, ...]) -> str:
    """The code of a rejection: that of the stage of its first reason."""
    if not reasons:
        return ACCEPTED_CODE
    if reasons[0].code.startswith("envelope."):
        return STAGE_CODES["unwrap"]
    return STAGE_CODES.get(reasons[0].stage, FALLBACK_CODE)


def _clip(value: str, most: int) -> str:
    # Reasons may quote hostile input; XML 1.0 cannot carry control characters at all.
    clean = "".join(ch if ch in "\t\n" or ord(ch) >= 0x20 else "\ufffd" for ch in value)
    return clean if len(clean) <= most else clean[: most - 1] + "…"


def _party(value: str | None) -> str | None:
    return value if value and len(value) <= PARTY_ID else None


def _valid_date_time(value: str | None) -> bool:
    if not value or not _DATE_TIME.fullmatch(value):
        return False
    try:
        datetime.strptime(value[:19], "%Y-%m-%dT%H:%M:%S")
    except ValueError:
        return False
    return True


def ori_head(facts: ReceiptFacts) -> dict:
    """The TransInfo answered, as the envelope gave it; what it lacks or cannot be echoed is filled in.

    Read from the signed envelope once its signature verified, else from the envelope as received,
    only so that the sender can match the receipt to what it sent: nothing is decided on it.
    """
    carrier = facts.carrier
    message_id = sender = created = message_type = None
    receivers: list[str] = []
    if carrier is not None:
        message_id, sender, created = carrier.message_id, carrier.sender, carrier.fields.get("created")
        receivers, message_type = list(carrier.receivers), carrier.message_type
    if message_id is None or not 0 < len(message_id) <= MAX_COP_MSG_ID:
        message_id = facts.digest
    receivers = [r for r in receivers if _party(r)][:MAX_RECEIVERS] or [_party(facts.platform_id) or facts.node_id or "-"]
    return {
        "message_id": message_id,
        "sender": _party(sender) or facts.receiver,
        "receivers": receivers,
        "created": created if _valid_date_time(created) else timestamp(facts.received_at),
        "message_type": message_type if message_type is not None and len(message_type) <= MAX_MSG_TYPE else "",
    }


def _describe(reason: Reason, carried: bool) -> str:
    text_ = reason.describe()
    # Lines and paths after the envelope was opened are the carried message's, not the envelope's.
    about_carried = carried and reason.stage != "unwrap" and not reason.code.startswith("envelope.")
    return f"in the message carried in Data: {text_}" if about_carried else text_


def build(facts: ReceiptFacts) -> etree._Element:
    """The unsigned DxpRep: the platform node's response, a result per receiver, and the TransInfo it answers."""
    head = ori_head(facts)
    carried = facts.carrier is not None and facts.carrier.opened
    code = response_code(facts.reasons)
    root = etree.Element(_D + "DxpRep", nsmap=NSMAP)
    root.set("ver", VERSION)
    text(root, "RecevierId", facts.receiver)
    response = etree.SubElement(root, _D + "Response")
    if facts.node_id:
        text(response, "NodeId", facts.node_id)
    text(response, "ResponseCode", code)
    if facts.reasons:
        info = _describe(facts.reasons[0], carried)
    else:
        info = f"accepted: {len(facts.deliveries)} cop{'y' if len(facts.deliveries) == 1 else 'ies'} made"
    text(response, "ResponseInfo", _clip(info, MAX_INFO))
    results = _results(facts, code)
    if results:
        container = etree.SubElement(response, _D + "Results")
        for rec_id, result_code, result_info in results:
            result = etree.SubElement(container, _D + "Result")
            text(result, "RecId", rec_id)
            text(result, "Code", result_code)
            text(result, "Info", _clip(result_info, MAX_INFO))
    text(response, "NoticeTime", datetime.now(timezone.utc).date().isoformat())
    note = (
        f"receipt {facts.receipt_id}; sha256 {facts.digest}; message {facts.orig_message_id or ''}; "
        f"config {facts.config_version}"
    )
    for reason in facts.reasons[1:]:
        note += f"; {_describe(reason, carried)}"
    text(response, "Note", _clip(note, MAX_NOTE))
    trans_info(response, "OriHead", **head)
    return root


def _results(facts: ReceiptFacts, code: str) -> list[tuple[str, str, str]]:
    """Each receiver's outcome: the copies made when accepted, every receiver the envelope named when not."""
    if facts.reasons:
        named = facts.carrier.receivers if facts.carrier is not None else []
        return [(r, code, "not delivered: the message was rejected") for r in named if _party(r)][:MAX_RECEIVERS]
    results = []
    for delivery in facts.deliveries:
        if not _party(delivery.final):
            continue
        approval = f", shared under {delivery.approval}" if delivery.approval is not None else ""
        # A receiver a peer e-port hosts is named as such, with the peer its copy crossed to.
        hop = f", through the peer e-port {delivery.to}" if delivery.addressee else ""
        results.append((delivery.final, ACCEPTED_CODE, f"delivered by route {delivery.route}{approval}{hop}"))
    return results


def describe(root: etree._Element) -> Described:
    """A DxpRep's receipt id, message id and digest, from the Note the exchange writes them in."""
    found = _NOTE.match(root.findtext(f"{_D}Response/{_D}Note") or "")
    if found is None:
        return Described(None, None, None)
    return Described(found["id"], found["message"] or None, found["digest"])
