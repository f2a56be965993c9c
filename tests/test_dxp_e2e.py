"""End to end on the real broker: an enterprise lodges a DxpMsg carrying a CEB message; customs, configured for
DXP, gets a platform-signed DxpMsg; the enterprise gets a DxpRep; a refused one is dead-lettered whole with a
DxpRep naming the reason.

The CEB message is the official CEB311 sample signed again with the test PKI (RSA): the corpus samples'
own signatures are illustrative and do not verify.
"""

from __future__ import annotations

import base64

import pytest
from lxml import etree

from daemon_fixture import Daemon, cli, deploy, login_url, mailbox, new_dead_letters, publish, skip_dead_letters
from dsig_oracle import xmlsec1_accepts_with_ca
from exchange_fixture import SAMPLES
from dxp_fixture import D, ENTERPRISE, OTHER, dxp_config_data, dxp_message, official_schema, signed_ceb
from exchanger.keys.pki import init_demo_pki

pytestmark = [pytest.mark.broker, pytest.mark.e2e]


def _as_dxp_exchange(data: dict, exchange) -> None:
    """Turn the bundled deployment into the DXP exchange, keeping this run's broker user prefix."""
    prefix = data["broker"]["daemon_user"].removesuffix("exchanger")
    wanted = dxp_config_data(exchange.config_path.parent, exchange.keys_dir)
    for pid, spec in wanted["participants"].items():
        spec["amqp_user"] = f"{prefix}{pid}"
    data.update(messages=wanted["messages"], envelopes=wanted["envelopes"], participants=wanted["participants"],
                routes=wanted["routes"])
    init_demo_pki(exchange.keys_dir, [(pid, spec["name"]) for pid, spec in wanted["participants"].items()],
                  daemon_user=data["broker"]["daemon_user"])


def _official(body: bytes) -> None:
    tree = etree.ElementTree(etree.fromstring(body))
    for release in ("2018", "202205"):
        schema = official_schema(release)
        assert schema.validate(tree), f"{release}: {schema.error_log}"


def test_dxp_in_dxp_out_with_transport_receipts_and_dead_letters(broker, tmp_path):
    exchange = deploy(broker, tmp_path, edit=_as_dxp_exchange, users=[ENTERPRISE, OTHER, "customs", "ciq"])
    ca = exchange.keys_dir / "ca" / "cert.pem"
    inner = signed_ceb(exchange)
    accepted = exchange.signer(ENTERPRISE).sign_bytes(dxp_message(inner))
    mismatched = exchange.signer(ENTERPRISE).sign_bytes(dxp_message(inner, msg_type="CEB621Message", cop_msg_id="bad-1"))
    user = exchange.config.registry.get(ENTERPRISE).amqp_user
    skip_dead_letters(broker.url)
    daemon = Daemon(exchange, exchange.url)
    try:
        daemon.wait_for("worker.consuming")
        publish(login_url(exchange, ENTERPRISE), accepted, user)
        daemon.wait_for("message.accepted")
        publish(login_url(exchange, ENTERPRISE), mismatched, user)
        daemon.wait_for("message.rejected")

        (copy,) = mailbox(exchange, "customs", 1)
        root = etree.fromstring(copy.body)
        assert root.tag == D + "DxpMsg" and copy.headers["x-exchanger-envelope"] == "dxp"
        assert root.findtext(f"{D}TransInfo/{D}SenderId") == ENTERPRISE
        assert base64.b64decode(root.findtext(D + "Data")) == inner
        _official(copy.body)
        assert xmlsec1_accepts_with_ca(copy.body, ca)

        (shared,) = mailbox(exchange, "ciq", 1)
        assert etree.fromstring(shared.body).tag == "{urn:eport:exchange:1}ExchangeMessage"

        receipts = mailbox(exchange, ENTERPRISE, 2)
        codes = {}
        for receipt in receipts:
            assert receipt.type == "DxpRep"
            _official(receipt.body)
            assert xmlsec1_accepts_with_ca(receipt.body, ca)
            response = etree.fromstring(receipt.body).find(D + "Response")
            codes[response.findtext(f"{D}OriHead/{D}CopMsgId")] = (
                response.findtext(D + "ResponseCode"),
                response.findtext(D + "ResponseInfo"),
            )
        assert codes["CEB311-20160308-0001"] == ("0000", "accepted: 2 copies made")
        code, info = codes["bad-1"]
        assert code == "1001" and "'CEB621Message'" in info and "'CEB311Message'" in info

        letters = new_dead_letters(broker.url)
        assert [body for _, _, body in letters] == [mismatched], "the refused DxpMsg is dead-lettered as received"
        (_, properties, _) = letters[0]
        assert properties.headers["x-exchanger-stage"] == "authenticate"
        assert "envelope.mismatch" in properties.headers["x-exchanger-reason"]

        # Sent again, the accepted one is a duplicate: its first DxpRep comes back byte for byte, nothing is copied.
        publish(login_url(exchange, ENTERPRISE), accepted, user)
        daemon.wait_for("message.duplicate")
        (again,) = mailbox(exchange, ENTERPRISE, 1)
        first = next(r for r in receipts if b"CEB311-20160308-0001" in r.body)
        assert again.body == first.body and again.type == "DxpRep"
        assert mailbox(exchange, "customs", None, wait=2) == []
    finally:
        assert daemon.stop() == 0


def _customs_takes_dxp(data: dict, exchange) -> None:
    data["participants"]["customs"]["envelope"] = "dxp"


def test_the_readme_walkthrough_over_dxp_runs_as_written(broker, tmp_path):
    """README, "Connecting to China E-Port and to other e-ports": the same commands on the bundled configuration."""
    exchange = deploy(broker, tmp_path, edit=_customs_takes_dxp, users=["ent-a", "customs", "ciq"])
    run = lambda *args, check=True: cli(exchange, exchange.url, *args, check=check)  # noqa: E731
    sample = str(SAMPLES / "customs-declaration" / "valid.xml")
    wrapped, wrong = tmp_path / "dxp.xml", tmp_path / "dxp-wrong.xml"
    assert "OK" in run("routes", "check").stdout
    run("wrap", sample, "--as", "ent-a", "--to", "customs", "--sign-inner", "--out", str(wrapped))
    explained = run("routes", "explain", str(wrapped)).stdout
    assert "dxp envelope (DxpMsg)" in explained and "-> customs by declaration-to-customs, in a dxp envelope" in explained
    run("wrap", sample, "--as", "ent-a", "--to", "ciq", "--sign-inner", "--out", str(wrong))
    skip_dead_letters(broker.url)
    daemon = Daemon(exchange, exchange.url)
    try:
        daemon.wait_for("worker.consuming")
        run("send", str(wrapped), str(wrong), "--as", "ent-a")
        daemon.wait_for("message.rejected")
        received = run("receive", "customs", "--out", str(tmp_path / "customs")).stdout
        (copy,) = (tmp_path / "customs").glob("0001-forward-*.xml")
        verified = run("verify", str(copy), "--extract", str(tmp_path / "original.xml")).stdout
        assert "in a dxp envelope" in received
        assert verified.count("OK  ") == 3
        assert xmlsec1_accepts_with_ca(copy.read_bytes(), exchange.keys_dir / "ca" / "cert.pem")
        receipts = run("receive", "ent-a").stdout
        assert "(DxpRep 0000) -> delivered to customs" in receipts
        assert "(DxpRep 1001)" in receipts and "names receivers ciq but the message inside names customs" in receipts
        # Taken, so that the run's later tests see only their own dead letters.
        assert [body for _, _, body in new_dead_letters(broker.url)] == [wrong.read_bytes()]
    finally:
        assert daemon.stop() == 0
