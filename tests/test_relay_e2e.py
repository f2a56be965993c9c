"""Two e-ports on the real broker, linked by RabbitMQ's shovel: a declaration lodged in e-port A for customs in
e-port B crosses as a DxpMsg signed by A's platform; B believes the enterprise's inner signature within A's trust
domain, though the enterprise is not registered in B; B's DxpRep and customs' business receipt come back to the
enterprise in A. Refusals (outside the domain, not vouched for, a loop, a revoked peer) are dead-lettered with a
receipt; copies for an unreachable peer wait in its mailbox and flow once the link is fixed.
"""

from __future__ import annotations

import base64
import time
import uuid

import pytest
import yaml
from lxml import etree

from daemon_fixture import Daemon, login_url, mailbox, new_dead_letters, publish, self_signed, skip_dead_letters, write_pem
from dxp_fixture import D, dxp_message
from exchange_fixture import SAMPLES
from exchanger.dsig.signer import Signer
from exchanger.keys.material import load_certificate
from exchanger.keys.pki import revoke_certificate
from two_eports import A, B, ENTERPRISE, OTHER, Side, make_pair

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

CM = "{urn:eport:common:1}"


GUID = {name: f"{name}-{uuid.uuid4().hex[:8]}" for name in ("relay-0001", "relay-0002", "relay-0003", "relay-0004", "relay-0005", "loop-0001")}


class Pair:
    """Both e-ports with their daemons running."""

    def __init__(self, a: Side, b: Side):
        self.a, self.b = a, b
        self.daemons = {A: Daemon(a.exchange, a.exchange.url), B: Daemon(b.exchange, b.exchange.url)}
        for daemon in self.daemons.values():
            daemon.wait_for("worker.consuming")

    def restart(self, side: str) -> None:
        """Stop one e-port's daemon and start it again on its (changed) configuration."""
        assert self.daemons[side].stop() == 0
        exchange = (self.a if side == A else self.b).exchange
        self.daemons[side] = Daemon(exchange, exchange.url)
        self.daemons[side].wait_for("worker.consuming")

    def stop(self) -> None:
        """Stop both daemons gracefully."""
        for daemon in self.daemons.values():
            assert daemon.stop() == 0


@pytest.fixture(scope="module")
def pair(broker, tmp_path_factory):
    a, b = make_pair(broker, tmp_path_factory.mktemp("two-eports"))
    for side in (a, b):
        skip_dead_letters(side.admin_url)
    running = Pair(a, b)
    yield running
    running.stop()


def _document(sample: str, message_id: str, sender: str, receiver: str, signer: Signer) -> bytes:
    """A bundled sample with its own message id, sender and receiver, signed."""
    root = etree.parse(str(SAMPLES / sample / "valid.xml")).getroot()
    root.find(f"*/{CM}MessageId").text = message_id
    root.find(f"*/{CM}SenderId").text = sender
    root.find(f"*/{CM}ReceiverId").text = receiver
    return signer.sign_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _order(side: Side, participant: str, message_id: str, signer: Signer | None = None) -> bytes:
    """A customs declaration by an enterprise of A for customs at B, signed by it (or by signer)."""
    return _document("customs-declaration", message_id, participant, "customs", signer or side.exchange.signer(participant))


def _agency_receipt(b: Side, message_id: str) -> bytes:
    """Customs at B's business receipt for the enterprise at A, signed by customs."""
    return _document("agency-receipt", message_id, "customs", ENTERPRISE, b.exchange.signer("customs"))


def _lodge(side: Side, participant: str, inner: bytes, guid: str, receivers=("customs",)) -> None:
    """The enterprise's terminal node sends its order to A in a DxpMsg it signs."""
    wrapped = side.exchange.signer(participant).sign_bytes(
        dxp_message(inner, sender=participant, receivers=receivers, cop_msg_id=guid, msg_type="CustomsDeclaration")
    )
    publish(login_url(side.exchange, participant), wrapped, side.user(participant))


def _relayed_by_a(a: Side, inner: bytes, guid: str, sender: str = ENTERPRISE, path: str = A) -> bytes:
    """A DxpMsg as A's platform would relay it to B (built here, to send B what A itself would refuse)."""
    root = etree.fromstring(dxp_message(inner, sender=sender, cop_msg_id=guid, msg_type="CustomsDeclaration"))
    biz = etree.SubElement(etree.SubElement(root, D + "AddInfo"), D + "BizKey")
    key = etree.SubElement(biz, D + "Key", name="RelayPath")
    key.text = path
    return a.platform_signer().sign_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _publish_as_peer(side: Side, peer: str, body: bytes) -> None:
    """Publish into an e-port's inbound as the user it registered for a peer, as the peer's shovel does."""
    publish(login_url(side.exchange, peer), body, side.user(peer))


def _dead(side: Side, seconds: float = 20) -> list:
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        letters = new_dead_letters(side.admin_url)
        if letters:
            return letters
        time.sleep(0.3)
    return []


def _dxp_rep(message) -> tuple[str, str, str]:
    root = etree.fromstring(message.body)
    assert root.tag == D + "DxpRep", message.body[:200]
    response = root.find(D + "Response")
    return root.findtext(D + "RecevierId"), response.findtext(D + "ResponseCode"), response.findtext(D + "ResponseInfo")


def test_a_declaration_reaches_customs_in_b_and_its_receipts_come_back(pair: Pair) -> None:
    a, b = pair.a, pair.b
    inner = _order(a, ENTERPRISE, GUID["relay-0001"])
    _lodge(a, ENTERPRISE, inner, GUID["relay-0001"])

    (copy,) = mailbox(b.exchange, "customs", 1, wait=30)
    root = etree.fromstring(copy.body)
    assert root.findtext(f"{D}TransInfo/{D}SenderId") == ENTERPRISE
    assert base64.b64decode(root.findtext(D + "Data")) == inner, "the enterprise's signed order crossed byte for byte"
    path = root.findtext(f"{D}AddInfo/{D}BizKey/{D}Key[@name='RelayPath']")
    assert path is None, "B's copy for its own customs is no relay"
    assert ENTERPRISE not in b.exchange.config.registry, "A's enterprise is not registered in B"

    receipts = mailbox(a.exchange, ENTERPRISE, 2, wait=30)
    by_info = {}
    for receipt in receipts:
        receiver, code, info = _dxp_rep(receipt)
        assert receiver == ENTERPRISE and code == "0000"
        by_info[receipt.headers.get("x-exchanger-relayed-by")] = info
    # A's own DxpRep (the copy for B was made) and B's, which crossed back over B's link.
    assert by_info[None] == "accepted: 1 copy made"
    assert by_info[B] == "accepted: 1 copy made"

    # Customs at B answers; its receipt crosses to A, where the enterprise takes it, customs' signature intact.
    signed_answer = _agency_receipt(b, GUID["relay-0001"] + "-r")
    publish(login_url(b.exchange, "customs"), signed_answer, b.user("customs"))
    (business,) = mailbox(a.exchange, ENTERPRISE, 1, wait=30)
    assert business.headers["x-exchanger-route"] == "customs-receipts-from-b"
    assert business.headers["x-exchanger-sender"] == "customs"
    assert base64.b64decode(etree.fromstring(business.body).findtext(D + "Data")) == signed_answer
    # Customs has B's receipt for what it sent, and A's DxpRep for the copy A delivered, back over A's link.
    receipts = {r.type: r for r in mailbox(b.exchange, "customs", 2, wait=30)}
    assert set(receipts) == {"PlatformReceipt", "DxpRep"}
    assert _dxp_rep(receipts["DxpRep"])[:2] == ("customs", "0000")
    assert receipts["DxpRep"].headers["x-exchanger-relayed-by"] == A


def test_an_inner_signature_outside_the_peers_domain_is_refused(pair: Pair, tmp_path) -> None:
    a, b = pair.a, pair.b
    key, certificate = self_signed(ENTERPRISE)
    signer = Signer(write_pem(tmp_path / "key.pem", key), write_pem(tmp_path / "cert.pem", certificate))
    _publish_as_peer(b, A, _relayed_by_a(a, _order(a, ENTERPRISE, GUID["relay-0002"], signer), GUID["relay-0002"]))
    (letter,) = _dead(b)
    headers = letter[1].headers
    assert headers["x-exchanger-stage"] == "verify"
    assert "certificate.untrusted" in headers["x-exchanger-reason"] and f"trust domain of the peer e-port {A}" in headers["x-exchanger-reason"]
    (receipt,) = mailbox(a.exchange, ENTERPRISE, 1, wait=30)
    receiver, code, info = _dxp_rep(receipt)
    assert (receiver, code) == (ENTERPRISE, "1005") and "certificate.untrusted" in info
    assert mailbox(b.exchange, "customs", None, wait=1) == []


def test_an_enterprise_the_peer_does_not_vouch_for_is_refused(pair: Pair) -> None:
    a, b = pair.a, pair.b
    _publish_as_peer(b, A, _relayed_by_a(a, _order(a, OTHER, GUID["relay-0003"]), GUID["relay-0003"], sender=OTHER))
    (letter,) = _dead(b)
    assert "relay.not-vouched" in letter[1].headers["x-exchanger-reason"]
    assert mailbox(b.exchange, "customs", None, wait=1) == []


def test_a_message_relayed_back_in_a_loop_is_refused(pair: Pair) -> None:
    a, b = pair.a, pair.b
    # B's platform relays to A a message whose path says it already passed A: A refuses it.
    inner = _agency_receipt(b, GUID["loop-0001"])
    root = etree.fromstring(dxp_message(inner, sender="customs", receivers=(ENTERPRISE,), msg_type="AgencyReceipt",
                                        cop_msg_id=GUID["loop-0001"]))
    key = etree.SubElement(etree.SubElement(etree.SubElement(root, D + "AddInfo"), D + "BizKey"), D + "Key", name="RelayPath")
    key.text = f"{A} {B}"
    looped = b.platform_signer().sign_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))
    _publish_as_peer(a, B, looped)
    (letter,) = _dead(a)
    assert "relay.loop" in letter[1].headers["x-exchanger-reason"]
    assert mailbox(a.exchange, ENTERPRISE, None, wait=1) == []
    # A's DxpRep goes back over A's link to B, which hands it to customs, the sender it answers.
    (receipt,) = mailbox(b.exchange, "customs", 1, wait=30)
    receiver, code, info = _dxp_rep(receipt)
    assert (receiver, code) == ("customs", "1006") and "relay.loop" in info
    assert receipt.headers["x-exchanger-relayed-by"] == A


def test_copies_for_an_unreachable_peer_wait_and_flow_once_the_link_is_fixed(pair: Pair) -> None:
    a, b = pair.a, pair.b
    config = yaml.safe_load(a.exchange.config_path.read_text())
    good = dict(config["participants"][B]["link"])
    config["participants"][B]["link"]["url"] = "amqp://nobody@127.0.0.1:1/nowhere"
    a.exchange.config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    try:
        a.run("links", "apply")
        _lodge(a, ENTERPRISE, _order(a, ENTERPRISE, GUID["relay-0004"]), GUID["relay-0004"])
        (own,) = mailbox(a.exchange, ENTERPRISE, 1, wait=30)
        assert _dxp_rep(own)[1] == "0000"
        time.sleep(2)
        status = a.run("status", "--url", pair.daemons[A].http, check=False).stdout
        assert f"peer e-port {B}: 1 waiting in mailbox.{B}" in status, status
        assert mailbox(b.exchange, "customs", None, wait=1) == []
    finally:
        config["participants"][B]["link"] = good
        a.exchange.config_path.write_text(yaml.safe_dump(config, allow_unicode=True, sort_keys=False))
    a.run("links", "apply")
    (copy,) = mailbox(b.exchange, "customs", 1, wait=30)
    assert etree.fromstring(copy.body).findtext(f"{D}TransInfo/{D}SenderId") == ENTERPRISE
    (receipt,) = mailbox(a.exchange, ENTERPRISE, 1, wait=30)
    assert receipt.headers["x-exchanger-relayed-by"] == B


def test_explain_and_trace_show_the_hop_across_e_ports(pair: Pair, tmp_path) -> None:
    a, b = pair.a, pair.b
    message_id = GUID["relay-0001"]
    inner = _order(a, ENTERPRISE, message_id)
    lodged = tmp_path / "lodged.xml"
    lodged.write_bytes(a.exchange.signer(ENTERPRISE).sign_bytes(
        dxp_message(inner, sender=ENTERPRISE, receivers=("customs",), cop_msg_id=message_id, msg_type="CustomsDeclaration")))
    out = a.run("routes", "explain", str(lodged)).stdout
    assert f"-> customs at the peer e-port {B} by orders-to-customs-at-b" in out, out
    assert f"hop: waits in mailbox.{B}, carried by the link exchanger.link.{B}" in out and f"trust domain {B}: anchors" in out
    relayed = tmp_path / "relayed.xml"
    relayed.write_bytes(_relayed_by_a(a, inner, message_id))
    out = b.run("routes", "explain", str(relayed)).stdout
    assert f"hop: relayed by the peer e-port {A} (relay path {A}); signer judged in its trust domain {A}" in out, out
    assert "-> customs by relayed-orders" in out

    trace_a = a.run("trace", message_id).stdout
    assert f"-> customs at the peer e-port {B} by orders-to-customs-at-b" in trace_a and f"over the link exchanger.link.{B}" in trace_a, trace_a
    trace_b = b.run("trace", message_id).stdout
    assert f"relayed by the peer e-port {A}, judged in its trust domain" in trace_b, trace_b


def test_keys_check_judges_a_peers_certificate_within_its_domain(pair: Pair) -> None:
    checked = pair.b.run("keys", "check", check=False)
    assert checked.returncode == 0, checked.stdout + checked.stderr
    listed = pair.b.run("keys", "list").stdout
    row = next(line for line in listed.splitlines() if line.startswith(f"{A} (peer e-port, in its domain)"))
    assert row.rstrip().endswith("valid") and "CN=eport-a" in row


def test_a_revoked_peer_is_refused_with_a_receipt_and_nothing_is_lost(pair: Pair) -> None:
    a, b = pair.a, pair.b
    platform = load_certificate(a.keys / A / "cert.pem")
    revoke_certificate(a.keys, platform.serial_number)
    pair.restart(B)  # B reads A's new CRL (a SIGHUP reload would do as well)
    _lodge(a, ENTERPRISE, _order(a, ENTERPRISE, GUID["relay-0005"]), GUID["relay-0005"])
    (letter,) = _dead(b, 30)
    assert letter[1].headers["x-exchanger-stage"] == "unwrap"
    assert "certificate.revoked" in letter[1].headers["x-exchanger-reason"]
    assert mailbox(b.exchange, "customs", None, wait=1) == []
    # B answered with a DxpRep over its link; it answers A's own platform, which keeps it for its operators.
    (kept,) = _dead(a, 30)
    assert etree.fromstring(kept[2]).tag == D + "DxpRep" and "relay.for-platform" in kept[1].headers["x-exchanger-reason"]
    checked = b.run("keys", "check", check=False)
    assert checked.returncode == 1 and f"{A} (peer e-port, in its domain)" in checked.stdout + checked.stderr
