"""China E-Port's receipt layers beyond the DxpRep: the CEB900 format receipt and agencies' business receipts.

The official samples' own signatures are illustrative and never verify (SOURCE.txt), so every CEB
message here is the official sample with its signature removed, signed again by the test PKI.
"""

from __future__ import annotations

import base64
import hashlib
from dataclasses import replace
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner
from lxml import etree

from dsig_oracle import xmlsec1_accepts_with_ca
from dxp_fixture import CEB, D, ENTERPRISE, dxp_config_data, dxp_message, make_dxp_exchange, official_schema, unsigned
from exchange_fixture import PROJECT
from exchanger.cli.common import Settings
from exchanger.cli.log import trace as trace_command
from exchanger.cli.main import main
from exchanger.config import ConfigError, load_config
from exchanger.dsig.verifier import Verifier
from exchanger.envelope import Inbound
from exchanger.journal.recorder import open_recorder
from exchanger.outcome import Reason
from exchanger.pipeline import build_pipeline
from exchanger.receipts import ReceiptFacts, ceb900

C = "{http://www.chinaport.gov.cn/ceb}"
RELEASES = {
    "2018": ("ceb-2018.yaml", CEB / "2018-gacc-113", "进口业务节点报文.xsd"),
    "202205": ("ceb-202205.yaml", CEB / "202205", "海关跨境进口业务节点报文定义202205.xsd"),
}
PLATFORM_ENTERPRISE = "1105910159"  # the ebpCode of the official CEB311 sample: whom customs' CEB312 answers
COP_MSG_ID = "CEB311-20160308-0001"


def official_import_schema(release: str) -> etree.XMLSchema:
    """GACC's import business-node schema of a release (where CEB900Message is declared), by path."""
    _, directory, name = RELEASES[release]
    return etree.XMLSchema(etree.parse(str(directory / "xsd" / name)))


def project_ceb900_schema() -> etree.XMLSchema:
    """The exchange's own schema of what it writes."""
    return etree.XMLSchema(etree.parse(str(PROJECT / "schemas" / "xsd" / "ceb900.xsd")))


def release_data(directory: Path, release: str) -> dict:
    """The DXP exchange of a release; the e-commerce platform the sample orders name takes DXP too,
    and customs' receipts go back to whom they name."""
    data = dxp_config_data(directory, directory / "keys", RELEASES[release][0])
    data["participants"][PLATFORM_ENTERPRISE] = {
        "kind": "enterprise", "name": "E-commerce platform (CEB312 sample)", "envelope": "dxp",
    }
    data["routes"].append(
        {
            "id": "ceb-receipts-to-enterprises",
            "description": "Customs' receipts go back to the enterprise they answer.",
            "types": ["CEB312", "CEB622"],
            "from": ["customs"],
            "to": ["kind:enterprise"],
            "deliver": "addressed",
        }
    )
    return data


@pytest.fixture(scope="module", params=list(RELEASES))
def release(request, tmp_path_factory):
    """The release, and its DXP exchange on a fresh demo PKI."""
    directory = tmp_path_factory.mktemp(f"ceb-{request.param}")
    return request.param, make_dxp_exchange(directory, release_data(directory, request.param))


def sample(release: str, code: str) -> Path:
    """An official import sample of a release."""
    return RELEASES[release][1] / "samples" / "import" / f"{code}Message.xml"


def signed(exchange, root: etree._Element, who: str) -> bytes:
    """A CEB message signed again by a participant of the test PKI."""
    return exchange.signer(who).sign_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def lodged(exchange, inner: bytes, who: str, receivers, msg_type: str) -> bytes:
    """The message in a DxpMsg signed by its sender."""
    return exchange.signer(who).sign_bytes(
        dxp_message(inner, sender=who, receivers=receivers, msg_type=msg_type, cop_msg_id=COP_MSG_ID)
    )


def process(exchange, pipeline, body: bytes, who: str):
    """The pipeline's disposition of a message published by a participant's broker user."""
    return pipeline.process(Inbound(body, user_id=exchange.config.registry.get(who).amqp_user))


def of_kind(disposition, kind: str) -> list:
    """The publications of one kind (forward, receipt, format-receipt)."""
    return [p for p in disposition.publications if p.headers.get("x-exchanger-kind") == kind]


def broken_order(release: str, flood: int = 0) -> etree._Element:
    """The CEB311 sample with two schema violations (an over-long orderType, an unknown element), or a flood:
    ``flood`` goods lines more, each with an over-long unit."""
    root = unsigned(sample(release, "CEB311"))
    head = root.find(f"{C}Order/{C}OrderHead")
    head.find(f"{C}orderType").text = "TOO-LONG"
    etree.SubElement(head, f"{C}unexpected0").text = "x"
    if flood:
        head.remove(head.find(f"{C}unexpected0"))
        line = root.find(f"{C}Order/{C}OrderList")
        for _ in range(flood):
            extra = etree.fromstring(etree.tostring(line))
            extra.find(f"{C}unit").text = "U" * 200
            line.addnext(extra)
    return root


def verify_file(exchange, body: bytes):
    """`exchanger verify` on a document, as a receiver would run it."""
    path = exchange.config_path.parent / f"verify-{hashlib.sha256(body).hexdigest()[:12]}.xml"
    path.write_bytes(body)
    return CliRunner().invoke(main, ["--config", str(exchange.config_path), "verify", str(path)])


def carried_ceb900(publication) -> etree._Element:
    """The CEB900Message the format receipt's DxpMsg carries."""
    message = ceb900.carried(etree.fromstring(publication.body))
    assert message is not None
    return message


# ---- CEB900: the format receipt ---------------------------------------------------------------------------------


def test_a_ceb_message_in_dxp_that_fails_its_schema_gets_a_dxprep_and_a_signed_ceb900(release):
    name, exchange = release
    pipeline = build_pipeline(exchange.config)
    original = broken_order(name)
    disposition = process(
        exchange, pipeline, lodged(exchange, signed(exchange, original, ENTERPRISE), ENTERPRISE, ["customs"], "CEB311Message"),
        ENTERPRISE,
    )
    assert disposition.outcome == "rejected" and disposition.reasons[0].stage == "validate"
    (transport,) = of_kind(disposition, "receipt")
    (formatted,) = of_kind(disposition, "format-receipt")
    assert transport.type == "DxpRep" and etree.fromstring(transport.body).findtext(f"{D}Response/{D}ResponseCode") == "1004"
    assert formatted.routing_key == ENTERPRISE and formatted.type == "CEB900Message"

    # The DxpMsg it travels in is the platform's, signed, valid against GACC's terminal-node schema.
    envelope = etree.fromstring(formatted.body)
    assert envelope.tag == f"{D}DxpMsg"
    assert envelope.findtext(f"{D}TransInfo/{D}MsgType") == "CEB900Message"
    assert [r.text for r in envelope.iter(f"{D}ReceiverId")] == [ENTERPRISE]
    assert official_schema("2018").validate(etree.ElementTree(envelope)), official_schema("2018").error_log
    Verifier().verify(envelope, [exchange.config.platform.certificate])
    assert xmlsec1_accepts_with_ca(formatted.body, exchange.keys_dir / "ca" / "cert.pem")
    checked = verify_file(exchange, formatted.body)
    assert checked.exit_code == 0, checked.output
    assert "OK   receipt: a CEB900Message the exchange wrote, signed by the envelope it travels in" in checked.output

    # The CEB900 inside: valid against the release's official import schema and the exchange's own.
    message = carried_ceb900(formatted)
    tree = etree.ElementTree(message)
    official = official_import_schema(name)
    assert official.validate(tree), official.error_log
    assert project_ceb900_schema().validate(tree), project_ceb900_schema().error_log
    assert len(message.get("guid")) == 36 and message.get("guid") == message.get("guid").upper()
    assert message.get("guid") != original.get("guid")
    ret = message.find(f"{C}MessageReturn")
    assert ret.findtext(f"{C}guid") == original.get("guid")
    assert ret.findtext(f"{C}returnStatus") == "-1"
    assert ret.findtext(f"{C}oriCopMsgId") == COP_MSG_ID
    assert ret.findtext(f"{C}oriMessageType") == "CEB311Message"
    assert len(ret.findtext(f"{C}returnTime")) == 17 and ret.findtext(f"{C}returnTime").isdigit()
    info = ret.findtext(f"{C}returnInfo")
    # Each violation, numbered, with the line of the carried message and its path.
    for number, reason in enumerate(disposition.reasons, start=1):
        assert f"{number}. (line {reason.line}" in info
    assert "orderType" in info and "unexpected0" in info
    assert "/ceb:CEB311Message/ceb:Order/ceb:OrderHead/ceb:orderType" in info or "orderType" in info


def test_a_flood_of_violations_is_capped_and_the_ceb900_stays_valid(release):
    name, exchange = release
    pipeline = build_pipeline(exchange.config)
    root = broken_order(name, flood=60)
    disposition = process(
        exchange, pipeline, lodged(exchange, signed(exchange, root, ENTERPRISE), ENTERPRISE, ["customs"], "CEB311Message"),
        ENTERPRISE,
    )
    (formatted,) = of_kind(disposition, "format-receipt")
    message = carried_ceb900(formatted)
    info = message.findtext(f"{C}MessageReturn/{C}returnInfo")
    assert len(info) <= 5000
    assert "only the first 20 are reported" in info
    assert official_import_schema(name).validate(etree.ElementTree(message))


def test_no_ceb900_for_a_valid_message_another_refusal_or_a_message_outside_dxp(release):
    name, exchange = release
    pipeline = build_pipeline(exchange.config)
    good = signed(exchange, unsigned(sample(name, "CEB311")), ENTERPRISE)
    accepted = process(exchange, pipeline, lodged(exchange, good, ENTERPRISE, ["customs"], "CEB311Message"), ENTERPRISE)
    assert accepted.outcome == "accepted", accepted.reasons
    assert not of_kind(accepted, "format-receipt")

    # A signature that does not verify is the DxpRep's to answer (1005): the format was fine.
    tampered = good.replace(b"<ceb:buyerName>aa<", b"<ceb:buyerName>ab<")
    assert tampered != good
    refused = process(exchange, pipeline, lodged(exchange, tampered, ENTERPRISE, ["customs"], "CEB311Message"), ENTERPRISE)
    assert refused.outcome == "rejected" and refused.reasons[0].stage == "verify"
    assert not of_kind(refused, "format-receipt")

    # Sent bare, outside DXP: the exchange's own receipt names every violation; no DXP layer to answer in.
    bare = process(exchange, pipeline, signed(exchange, broken_order(name), ENTERPRISE), ENTERPRISE)
    assert bare.outcome == "rejected" and bare.reasons[0].stage == "validate"
    assert [p.type for p in of_kind(bare, "receipt")] == ["PlatformReceipt"]
    assert not of_kind(bare, "format-receipt")


def test_format_receipts_are_chosen_by_configuration_and_checked(tmp_path):
    data = release_data(tmp_path, "2018")
    catalogue = yaml.safe_load(Path(data["messages"]).read_text(encoding="utf-8"))
    catalogue["types"]["CEB311"]["format_receipt"] = "CEB999Message"
    Path(data["messages"]).write_text(yaml.safe_dump(catalogue, allow_unicode=True), encoding="utf-8")
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "format_receipt" in str(caught.value) and "CEB900Message" in str(caught.value)

    # A format receipt is never an envelope's own receipt: the envelope answers every message, CEB900 only CEB ones.
    envelopes = yaml.safe_load((PROJECT / "schemas" / "envelopes.yaml").read_text())
    envelopes["envelopes"]["dxp"]["receipt"] = "CEB900Message"
    (tmp_path / "envelopes.yaml").write_text(yaml.safe_dump(envelopes))
    data = release_data(tmp_path, "2018")
    data["envelopes"] = str(tmp_path / "envelopes.yaml")
    path.write_text(yaml.safe_dump(data, allow_unicode=True))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "receipt" in str(caught.value)


# ---- business receipts: routed back and correlated by guid ---------------------------------------------------


def test_a_customs_receipt_goes_back_in_dxp_and_is_correlated_with_the_original_in_the_log(release, tmp_path):
    name, exchange = release
    config = exchange.config
    config = replace(config, journal=replace(config.journal, url=f"sqlite:///{tmp_path / 'journal.db'}"))
    pipeline = build_pipeline(config)
    recorder = open_recorder(config, exchange.signer(config.platform.id))

    def handle(body: bytes, who: str):
        inbound = Inbound(body, user_id=config.registry.get(who).amqp_user)
        disposition = pipeline.process(inbound)
        recorder.settled(recorder.processed(inbound, disposition, pipeline))
        return disposition

    order = unsigned(sample(name, "CEB311"))
    guid = order.get("guid")
    sent = handle(lodged(exchange, signed(exchange, order, ENTERPRISE), ENTERPRISE, ["customs"], "CEB311Message"), ENTERPRISE)
    assert sent.outcome == "accepted", sent.reasons

    # Customs answers with its own guid; OrderReturn/guid names the order it answers.
    answer = unsigned(sample(name, "CEB312"))
    own = "0A1B2C3D-0000-4000-8000-00000000312A"
    answer.set("guid", own)
    assert answer.findtext(f"{C}OrderReturn/{C}guid") == guid
    # GACC's schema leaves no place for a signature in a CEB312: customs signs the DxpMsg it travels in.
    inner = etree.tostring(answer, xml_declaration=True, encoding="UTF-8")
    bare = handle(inner, "customs")
    assert bare.outcome == "rejected" and bare.reasons[0].code == "signature.envelope-required", bare.reasons
    answered = handle(lodged(exchange, inner, "customs", [PLATFORM_ENTERPRISE], "CEB312Message"), "customs")
    assert answered.outcome == "accepted", answered.reasons
    (copy,) = of_kind(answered, "forward")
    assert copy.routing_key == PLATFORM_ENTERPRISE and copy.headers["x-exchanger-answers"] == guid
    # The enterprise takes DXP: its copy is a platform-signed DxpMsg carrying customs' CEB312 byte for byte.
    envelope = etree.fromstring(copy.body)
    assert envelope.tag == f"{D}DxpMsg" and envelope.findtext(f"{D}TransInfo/{D}MsgType") == "CEB312Message"
    assert base64.b64decode(envelope.findtext(f"{D}Data")) == inner
    assert xmlsec1_accepts_with_ca(copy.body, exchange.keys_dir / "ca" / "cert.pem")
    checked = verify_file(exchange, copy.body)
    assert checked.exit_code == 0, checked.output
    assert "OK   message: no signature of its own (none has a place in a CEB312): the envelope's, by" in checked.output
    assert recorder.flush(30)

    settings_path = tmp_path / "routes.yaml"
    data = yaml.safe_load(exchange.config_path.read_text(encoding="utf-8"))
    data["journal"] = {"url": f"sqlite:///{tmp_path / 'journal.db'}"}
    settings_path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    group = click.Group(commands={"trace": trace_command})

    def trace(*args: str) -> str:
        result = CliRunner().invoke(group, ["trace", *args], obj=Settings(settings_path, None, "info"))
        assert result.exit_code == 0, result.output
        return result.output

    original = trace(guid)
    assert f"CEB311 {guid} from {ENTERPRISE}" in original
    assert f"answered by CEB312 {own} from customs -> {PLATFORM_ENTERPRISE}" in original
    back = trace(own)
    assert f"CEB312 {own} from customs" in back and f"answers message {guid}" in back
    recorder.close()


def test_a_ceb900_about_odd_or_hostile_facts_still_validates():
    """Whatever the refused message held, the CEB900 fits the schema: ids it cannot echo are replaced or left empty."""
    reasons = tuple(
        Reason("validate", "xsd", "bad \x00\x07 value " + "x" * 400, line=n, path=f"/ceb:Root/ceb:e{n}") for n in range(30)
    )
    facts = ReceiptFacts(
        receipt_id="0f0e0d0c-0b0a-4909-8807-060504030201", platform_id="eport", node_id=None, receiver=ENTERPRISE,
        status="rejected", digest="0" * 64, received_at=0.0, config_version="test",
        orig_message_id="not-a-guid", orig_message_type="X", reasons=reasons, orig_root="CEB311MessageWithALongName",
    )
    message = ceb900.ceb900_message(facts)
    ret = message.find(f"{C}MessageReturn")
    assert ret.findtext(f"{C}guid") == "0F0E0D0C-0B0A-4909-8807-060504030201"  # the receipt's own, not a guess
    assert ret.findtext(f"{C}oriMessageType") == "Unknown" and ret.findtext(f"{C}oriCopMsgId") == ""
    info = ret.findtext(f"{C}returnInfo")
    assert len(info) == 5000 and info.endswith("…") and "\x00" not in info and "\ufffd" in info
    tree = etree.ElementTree(etree.fromstring(etree.tostring(message)))
    for schema in (official_import_schema("2018"), official_import_schema("202205"), project_ceb900_schema()):
        assert schema.validate(tree), schema.error_log
    envelope = ceb900.build(facts)
    assert official_schema("202205").validate(etree.ElementTree(envelope)), official_schema("202205").error_log
    assert ceb900.describe(envelope).orig_message_id == "0F0E0D0C-0B0A-4909-8807-060504030201"
