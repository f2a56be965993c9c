"""Relaying between e-ports, without a broker: e-port B's own pipeline judging what e-port A relays, the routing
table's via: selector and the loader's checks of it, loop refusal and a peer's receipts.

Both e-ports are written by tests/two_eports.py (each its own CA and participants); the pipeline runs as the
daemon builds it, on Inbound messages with the broker user the daemon would see.
"""

from __future__ import annotations

import base64

import pytest
import yaml
from lxml import etree

from dxp_fixture import D, dxp_message
from exchange_fixture import SAMPLES
from exchanger.config import ConfigError, load_config
from exchanger.dsig.signer import Signer
from exchanger.envelope import Inbound
from exchanger.keys.pki import issue_certificate
from exchanger.participants import Participant
from exchanger.pipeline.runner import build_pipeline
from exchanger.routing.rules import Selector
from two_eports import A, B, ENTERPRISE, OTHER, write_pair

CM = "{urn:eport:common:1}"


@pytest.fixture(scope="module")
def paths(tmp_path_factory):
    found, _ = write_pair(tmp_path_factory.mktemp("relay"), {A: "vhost-a", B: "vhost-b"})
    return found


def _signer(paths, side: str, who: str) -> Signer:
    keys = paths[side].parent / "keys" / who
    return Signer(keys / "key.pem", keys / "cert.pem")


def _declaration(paths, sender: str = ENTERPRISE, receiver: str = "customs", message_id: str = "DEC-1",
                 signer: Signer | None = None) -> bytes:
    root = etree.parse(str(SAMPLES / "customs-declaration" / "valid.xml")).getroot()
    root.find(f"*/{CM}MessageId").text = message_id
    root.find(f"*/{CM}SenderId").text = sender
    root.find(f"*/{CM}ReceiverId").text = receiver
    signer = signer or _signer(paths, A, sender)
    return signer.sign_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _relayed(paths, inner: bytes, *, sender: str = ENTERPRISE, receiver: str = "customs", path: str | None = A,
             message_id: str = "DEC-1") -> bytes:
    """A DxpMsg as A's platform relays it: the enterprise's message, RelayPath, A's platform signature."""
    root = etree.fromstring(dxp_message(inner, sender=sender, receivers=(receiver,), cop_msg_id=message_id,
                                        msg_type="CustomsDeclaration"))
    if path is not None:
        key = etree.SubElement(etree.SubElement(etree.SubElement(root, D + "AddInfo"), D + "BizKey"), D + "Key",
                               name="RelayPath")
        key.text = path
    return _signer(paths, A, A).sign_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _process(config, body: bytes, peer: str = A):
    return build_pipeline(config).process(Inbound(body, user_id=config.registry.get(peer).amqp_user))


def _codes(disposition) -> list[str]:
    return [reason.code for reason in disposition.reasons]


def test_a_relayed_declaration_is_routed_and_answered_through_the_peer(paths) -> None:
    config = load_config(paths[B])
    disposition = _process(config, _relayed(paths, _declaration(paths)))
    assert disposition.outcome == "accepted", disposition.reasons
    copy, receipt = disposition.publications
    assert (copy.routing_key, copy.headers["x-exchanger-route"]) == ("customs", "relayed-orders")
    # The receipt names the enterprise and goes back through A's mailbox here: the enterprise has none.
    assert receipt.routing_key == A and receipt.headers["x-exchanger-relayed-for"] == ENTERPRISE
    assert etree.fromstring(receipt.body).findtext(D + "RecevierId") == ENTERPRISE
    assert disposition.context["relayed_by"] == A


def test_a_copy_for_a_peer_names_the_receiver_it_hosts_and_carries_the_relay_path(paths) -> None:
    config = load_config(paths[A])
    wrapped = _signer(paths, A, ENTERPRISE).sign_bytes(
        dxp_message(_declaration(paths), sender=ENTERPRISE, cop_msg_id="DEC-1", msg_type="CustomsDeclaration"))
    disposition = build_pipeline(config).process(Inbound(wrapped, user_id=config.registry.get(ENTERPRISE).amqp_user))
    assert disposition.outcome == "accepted", disposition.reasons
    copy = disposition.publications[0]
    assert (copy.routing_key, copy.headers["x-exchanger-addressee"]) == (B, "customs")
    root = etree.fromstring(copy.body)
    assert root.findtext(f"{D}TransInfo/{D}ReceiverIds/{D}ReceiverId") == "customs"
    assert root.findtext(f"{D}AddInfo/{D}BizKey/{D}Key[@name='RelayPath']") == A
    assert copy.headers["x-exchanger-approved-by"] == "GACC", "a copy to a peer is data sharing: approval-gated"
    # The enterprise's DxpRep names customs, and the peer its copy crossed to.
    result = etree.fromstring(disposition.publications[-1].body).find(f"{D}Response/{D}Results/{D}Result")
    assert result.findtext(D + "RecId") == "customs" and f"through the peer e-port {B}" in result.findtext(D + "Info")


def test_an_enterprise_the_peer_does_not_vouch_for_is_refused(paths) -> None:
    config = load_config(paths[B])
    disposition = _process(config, _relayed(paths, _declaration(paths, sender=OTHER), sender=OTHER))
    assert _codes(disposition) == ["relay.not-vouched"]
    dead, receipt = disposition.publications
    assert receipt.routing_key == A and receipt.headers["x-exchanger-relayed-for"] == OTHER


def test_a_relay_path_that_does_not_end_with_the_signing_peer_is_refused(paths) -> None:
    config = load_config(paths[B])
    for path in (None, "eport-z", f"{A} eport-z"):
        assert "relay.path" in _codes(_process(config, _relayed(paths, _declaration(paths), path=path))), path


def test_a_message_that_passed_this_exchange_before_is_refused(paths) -> None:
    config = load_config(paths[B])
    disposition = _process(config, _relayed(paths, _declaration(paths), path=f"{B} {A}"))
    assert _codes(disposition) == ["relay.loop"]


def test_a_copy_back_to_the_peer_it_came_from_is_refused_at_routing(paths, tmp_path) -> None:
    data = yaml.safe_load(paths[B].read_text())
    data["participants"][A]["domain"]["members"] = [ENTERPRISE, OTHER]
    data["routes"].append({"id": "back-to-a", "types": ["CustomsDeclaration"], "from": [f"via:{A}"], "to": [A],
                           "deliver": "addressed", "approval": {"by": "GACC", "ref": "test"}})
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    config = load_config(path)
    inner = _declaration(paths, receiver=OTHER)
    disposition = _process(config, _relayed(paths, inner, receiver=OTHER))
    assert _codes(disposition) == ["relay.loop"] and disposition.reasons[0].stage == "route"


def test_a_relayed_signature_is_judged_in_the_peers_domain_not_this_exchanges(paths) -> None:
    config = load_config(paths[B])
    # A certificate of B's own CA naming ent-a, relayed by A: B's anchors do not count for what A relays.
    issue_certificate(paths[B].parent / "keys", ENTERPRISE, "ent-a, certified by B's CA")
    inner = _declaration(paths, signer=_signer(paths, B, ENTERPRISE))
    disposition = _process(config, _relayed(paths, inner))
    assert _codes(disposition) == ["certificate.untrusted"]
    assert f"in the trust domain of the peer e-port {A}" in disposition.reasons[0].message
    # One of B's own participants, signing with its registered certificate, cannot be relayed by A.
    inner = _declaration(paths, sender="customs", signer=_signer(paths, B, "customs"))
    assert _codes(_process(config, _relayed(paths, inner, sender="customs"))) == ["identity.mismatch"]


def test_a_peers_receipt_that_fails_its_checks_is_dead_lettered_without_an_answer(paths) -> None:
    config = load_config(paths[A])
    # A DxpRep "from B" signed by A's own enterprise: not the peer's platform.
    rep = b'<dxp:DxpRep xmlns:dxp="http://www.chinaport.gov.cn/dxp" ver="1.0"><dxp:RecevierId>ent-a</dxp:RecevierId></dxp:DxpRep>'
    signed = _signer(paths, A, ENTERPRISE).sign_bytes(rep)
    disposition = _process(config, signed, peer=B)
    assert disposition.outcome == "rejected" and disposition.reasons[0].stage == "peer-receipt"
    assert [p.exchange for p in disposition.publications] == ["exchanger.dead"], "a receipt is never answered"


def test_a_peers_receipt_invalid_against_its_schema_is_refused_though_its_platform_signed_it(paths) -> None:
    """Nothing invalid passes: a DxpRep signed by the peer's own platform, but with no Response, is refused."""
    config = load_config(paths[A])
    rep = b'<dxp:DxpRep xmlns:dxp="http://www.chinaport.gov.cn/dxp" ver="1.0"><dxp:RecevierId>ent-a</dxp:RecevierId></dxp:DxpRep>'
    signed = _signer(paths, B, B).sign_bytes(rep)
    disposition = _process(config, signed, peer=B)
    assert disposition.outcome == "rejected"
    assert [(r.stage, r.code) for r in disposition.reasons][:1] == [("peer-receipt", "xsd")], disposition.reasons
    assert "Response" in disposition.reasons[0].message and disposition.reasons[0].path == "/dxp:DxpRep/ds:Signature"
    assert [p.exchange for p in disposition.publications] == ["exchanger.dead"], "a receipt is never answered"


def test_a_relayed_sender_is_selected_by_via_alone() -> None:
    relayed = Participant.relayed(ENTERPRISE, Participant(A, "peer-eport", A, "u"))
    assert not Selector.parse(["*"]).matches(relayed)
    assert not Selector.parse(["kind:enterprise", ENTERPRISE]).matches(relayed)
    assert Selector.parse([f"via:{A}"]).matches(relayed)
    assert not Selector.parse([f"via:{A}"]).matches(Participant(ENTERPRISE, "enterprise", "e", "u"))


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (lambda d: d["routes"][0].update({"to": [f"via:{A}"]}), "belongs in from:"),
        (lambda d: d["routes"][0].update({"from": ["via:customs"]}), "not a participant of kind peer-eport"),
        (lambda d: d["participants"][A]["domain"].update({"members": ["customs"]}), "a peer cannot vouch for it"),
        (lambda d: d["participants"][A].pop("domain"), "has no domain"),
    ],
)
def test_the_loader_checks_how_routes_name_relayed_senders(paths, tmp_path, edit, expected) -> None:
    data = yaml.safe_load(paths[B].read_text())
    edit(data)
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert expected in str(caught.value)


def test_an_sm2_enterprise_of_an_sm2_peer_is_believed_within_its_domain(tmp_path) -> None:
    """E-port A on SM2 (its CA, platform and enterprise), B on RSA: B judges both SM2 signatures in A's domain."""
    sm2_paths, _ = write_pair(tmp_path, {A: "vhost-a", B: "vhost-b"}, algorithm_a="sm2")
    config = load_config(sm2_paths[B])
    disposition = _process(config, _relayed(sm2_paths, _declaration(sm2_paths)))
    assert disposition.outcome == "accepted", disposition.reasons
    carried = base64.b64decode(etree.fromstring(disposition.publications[0].body).findtext(D + "Data"))
    assert b"chinaport.gov.cn/2022/04/xmldsig#sm2-sm3" in carried, "the enterprise's SM2 signature crossed inside"
