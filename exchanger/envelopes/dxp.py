"""China E-Port's DXP envelope: dxp:DxpMsg written per copy, and its TransInfo echoed in receipts."""

from __future__ import annotations

import base64

from lxml import etree

from exchanger.envelopes.forwarding import Forwarding, Shaped
from exchanger.platform_documents import derived_id, timestamp
from exchanger.routing import Delivery

NS = "http://www.chinaport.gov.cn/dxp"
_D = f"{{{NS}}}"
NSMAP = {"dxp": NS}
VERSION = "1.0"  # the only ver the terminal-node schema allows
MAX_KEY = 64  # AddInfo/BizKey/Key holds at most 64 characters


def text(parent: etree._Element, name: str, value: str) -> etree._Element:
    """Append a dxp element holding value."""
    element = etree.SubElement(parent, _D + name)
    element.text = value
    return element


def trans_info(parent: etree._Element, name: str, *, message_id: str, sender: str, receivers: list[str],
               created: str, message_type: str) -> etree._Element:
    """A TransInfoType element (TransInfo, or OriHead in a receipt), in the schema's order."""
    info = etree.SubElement(parent, _D + name)
    text(info, "CopMsgId", message_id)
    text(info, "SenderId", sender)
    ids = etree.SubElement(info, _D + "ReceiverIds")
    for receiver in receivers:
        text(ids, "ReceiverId", receiver)
    text(info, "CreatTime", created)
    text(info, "MsgType", message_type)
    return info


def dxp_message(*, message_id: str, sender: str, receivers: list[str], created: str, message_type: str,
                document: bytes, keys: list[tuple[str, str]] = ()) -> etree._Element:
    """An unsigned DxpMsg carrying document, as a terminal node writes it; keys go to AddInfo/BizKey."""
    root = etree.Element(_D + "DxpMsg", nsmap=NSMAP)
    root.set("ver", VERSION)
    trans_info(root, "TransInfo", message_id=message_id, sender=sender, receivers=receivers, created=created,
               message_type=message_type)
    text(root, "Data", base64.b64encode(document).decode("ascii"))
    keys = [(name, value) for name, value in keys if 0 < len(value) <= MAX_KEY]
    if keys:
        biz = etree.SubElement(etree.SubElement(root, _D + "AddInfo"), _D + "BizKey")
        for name, value in keys:
            text(biz, "Key", value).set("name", name)
    return root


def dxp_envelopes(forwarding: Forwarding, envelope_format, deliveries: tuple[Delivery, ...]) -> list[Shaped]:
    """One DxpMsg per copy, addressed to its one receiver, for the platform to sign.

    TransInfo is the client node's header of the original message, which transfer nodes carry on
    unchanged (a DxpMsgSv wraps the DxpMsg whole and adds its own SvNo): so SenderId is the original
    sender and CreatTime when it created the message (when the exchange received it, if it did not
    say); the platform's part is its signature over the envelope. CopMsgId is derived from sender,
    message id, content and receiver, so a redelivered message makes copies with the ids receivers
    already saw, and two copies of one message never share one. A copy for a peer e-port names the receiver
    the peer hosts and carries the RelayPath: the platforms it passed through, this one last.
    """
    shaped = []
    message_type = envelope_format.type_name(forwarding.message_type)
    for delivery in deliveries:
        copy_id = derived_id("forward-dxp", forwarding.sender, forwarding.message_id, forwarding.digest, delivery.final)
        keys = [("OrigMsgId", forwarding.message_id), ("Route", delivery.route)]
        if delivery.to in forwarding.peers and forwarding.relay_path:
            # Signed with the rest by this platform: the next exchange refuses a message that passed it before.
            keys.append(("RelayPath", forwarding.relay_path))
        root = dxp_message(
            message_id=copy_id,
            sender=forwarding.sender,
            receivers=[delivery.final],
            created=forwarding.created or timestamp(forwarding.received_at),
            message_type=message_type,
            document=forwarding.document,
            keys=keys,
        )
        shaped.append(Shaped((delivery,), copy_id, root))
    return shaped
