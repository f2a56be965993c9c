"""China E-Port's DXP envelope in and out: DxpMsg opened and checked in two layers, DxpMsg written per copy,
and a DxpRep transport receipt for every DxpMsg, all valid against GACC's own terminal-node schemas."""

from __future__ import annotations

import base64
import hashlib

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from dsig_oracle import xmlsec1_accepts_with_ca
from dxp_fixture import (
    CEB311,
    D,
    ENTERPRISE,
    OTHER,
    dxp_config_data,
    dxp_message,
    make_dxp_exchange,
    official_schema,
    project_schema,
    signed_ceb,
    unsigned,
)
from exchange_fixture import PROJECT, SAMPLES, make_exchange
from exchanger.cli.main import main
from exchanger.config import ConfigError, load_config
from exchanger.dsig.verifier import Verifier
from exchanger.envelope import Envelope, Inbound
from exchanger.outcome import Rejected
from exchanger.pipeline import build_pipeline
from exchanger.pipeline.stages.parse import Parse
from exchanger.pipeline.stages.unwrap import Unwrap
from exchanger.pipeline.stages.verify import Verify
from exchanger.platform_documents import NS as EX_NS
from exchanger.platform_documents import read_exchange_message

RELEASES = ["2018", "202205"]


@pytest.fixture(scope="module")
def dxp(tmp_path_factory):
    """The DXP exchange on a fresh demo PKI."""
    return make_dxp_exchange(tmp_path_factory.mktemp("dxp"))


@pytest.fixture(scope="module")
def pipeline(dxp):
    """The daemon's pipeline for the DXP exchange (no message log)."""
    return build_pipeline(dxp.config)


def lodged(dxp, inner: bytes | None = None, *, signer: str = ENTERPRISE, **fields) -> bytes:
    """A DxpMsg carrying inner (default: the CEB311 sample signed by the enterprise), signed by ``signer``."""
    inner = inner if inner is not None else signed_ceb(dxp)
    return dxp.signer(signer).sign_bytes(dxp_message(inner, **fields))


def process(pipeline, body: bytes, user: str = ENTERPRISE):
    """Run the pipeline on a message published by a participant's broker user."""
    return pipeline.process(Inbound(body, user_id=pipeline.config.registry.get(user).amqp_user))


def receipt_of(disposition):
    """The receipt publication of a disposition."""
    (receipt,) = [p for p in disposition.publications if p.headers.get("x-exchanger-kind") == "receipt"]
    return receipt


def texts(element, names) -> dict:
    """The texts of a TransInfoType element's children (ReceiverIds as a list)."""
    found = {name: element.findtext(D + name) for name in names}
    found["ReceiverIds"] = [r.text for r in element.iter(D + "ReceiverId")]
    return found


TRANS_INFO = ("CopMsgId", "SenderId", "CreatTime", "MsgType")


def assert_official(document: bytes) -> None:
    """Valid against the exchange's own DXP schema and GACC's terminal-node schema of both releases."""
    tree = etree.ElementTree(etree.fromstring(document))
    for name, schema in [("project", project_schema())] + [(r, official_schema(r)) for r in RELEASES]:
        assert schema.validate(tree), f"{name}: {schema.error_log}"


# ---- accepted: the copy to a DXP receiver, the copy to an exchange receiver, and the DxpRep ------------------------


def test_a_dxp_message_is_opened_checked_and_forwarded_as_a_platform_signed_dxpmsg(dxp, pipeline):
    inner = signed_ceb(dxp)
    disposition = process(pipeline, lodged(dxp, inner))
    assert disposition.outcome == "accepted", disposition.reasons
    copies = {p.routing_key: p for p in disposition.publications if p.headers.get("x-exchanger-kind") == "forward"}
    assert set(copies) == {"customs", "ciq"}
    assert copies["customs"].headers["x-exchanger-envelope"] == "dxp"
    assert copies["ciq"].headers["x-exchanger-envelope"] == "exchange"

    copy = copies["customs"].body
    root = etree.fromstring(copy)
    assert root.tag == D + "DxpMsg"
    info = texts(root.find(D + "TransInfo"), TRANS_INFO)
    # The client's header travels on: the original sender and creation time; the id is the copy's own.
    assert info["SenderId"] == ENTERPRISE
    assert info["ReceiverIds"] == ["customs"]
    assert info["CreatTime"] == "2016-03-08T11:27:01"
    assert info["MsgType"] == "CEB311Message"
    assert info["CopMsgId"] == copies["customs"].message_id != "CEB311-20160308-0001"
    # Data is the enterprise's signed message byte for byte: its own signature still verifies.
    assert base64.b64decode(root.findtext(D + "Data")) == inner
    carried = Envelope(Inbound(inner))
    Parse(None)(carried)
    Verify(dxp.config.registry, dxp.config.trust)(carried)
    assert carried.signer.id == ENTERPRISE
    assert_official(copy)
    Verifier().verify(root, [dxp.config.platform.certificate])
    assert xmlsec1_accepts_with_ca(copy, dxp.keys_dir / "ca" / "cert.pem")

    # The exchange-envelope copy carries the message inside, not the DxpMsg it came in.
    shared = copies["ciq"].body
    forwarded = read_exchange_message(etree.fromstring(shared))
    assert forwarded["original"] == inner
    assert forwarded["Digest"] == hashlib.sha256(inner).hexdigest()
    exchange_xsd = etree.XMLSchema(etree.parse(str(PROJECT / "schemas" / "xsd" / "exchange.xsd")))
    assert exchange_xsd.validate(etree.ElementTree(etree.fromstring(shared))), exchange_xsd.error_log
    Verifier().verify(etree.fromstring(shared), [dxp.config.platform.certificate])
    assert xmlsec1_accepts_with_ca(shared, dxp.keys_dir / "ca" / "cert.pem")


def test_ecdsa_signed_dxpmsg_and_dxprep_are_as_valid(tmp_path):
    ec = make_dxp_exchange(tmp_path, algorithm="ec")
    disposition = process(build_pipeline(ec.config), lodged(ec))
    assert disposition.outcome == "accepted", disposition.reasons
    for publication in disposition.publications:
        if publication.routing_key in ("customs", ENTERPRISE):
            assert_official(publication.body)
            verified = Verifier().verify(etree.fromstring(publication.body), [ec.config.platform.certificate])
            assert verified.signature_method.endswith("ecdsa-sha256")


def test_copy_ids_are_derived_the_same_on_redelivery_and_differ_per_receiver(dxp, pipeline):
    body = lodged(dxp)
    first = process(pipeline, body)
    again = process(pipeline, body)
    ids = lambda d: {p.routing_key: p.message_id for p in d.publications if p.headers.get("x-exchanger-kind") == "forward"}  # noqa: E731
    assert ids(first) == ids(again)
    assert len(set(ids(first).values())) == 2


def test_the_dxprep_of_an_accepted_message_names_each_copy_and_echoes_the_trans_info(dxp, pipeline):
    body = lodged(dxp)
    disposition = process(pipeline, body)
    receipt = receipt_of(disposition)
    assert (receipt.routing_key, receipt.type) == (ENTERPRISE, "DxpRep")
    root = etree.fromstring(receipt.body)
    assert root.findtext(D + "RecevierId") == ENTERPRISE
    (response,) = root.findall(D + "Response")
    assert response.findtext(D + "NodeId") == dxp.config.platform.id
    assert response.findtext(D + "ResponseCode") == "0000"
    results = {r.findtext(D + "RecId"): r.findtext(D + "Code") for r in response.iter(D + "Result")}
    assert results == {"customs": "0000", "ciq": "0000"}
    sent = texts(etree.fromstring(body).find(D + "TransInfo"), TRANS_INFO)
    assert texts(response.find(D + "OriHead"), TRANS_INFO) == sent
    assert_official(receipt.body)
    Verifier().verify(root, [dxp.config.platform.certificate])
    assert xmlsec1_accepts_with_ca(receipt.body, dxp.keys_dir / "ca" / "cert.pem")


# ---- refused: every one answered by a DxpRep naming the reason, and dead-lettered whole ----------------------------


def refused(pipeline, body: bytes, user: str = ENTERPRISE):
    """The rejection's reasons and its DxpRep's Response, after checking the dead letter and the receipt."""
    disposition = process(pipeline, body, user)
    assert disposition.outcome == "rejected"
    (dead,) = [p for p in disposition.publications if p.exchange == "exchanger.dead"]
    assert dead.body == body, "the dead letter carries the DxpMsg as received"
    receipt = receipt_of(disposition)
    assert (receipt.routing_key, receipt.type) == (user, "DxpRep")
    assert_official(receipt.body)
    assert xmlsec1_accepts_with_ca(receipt.body, pipeline.config.keys_dir / "ca" / "cert.pem")
    response = etree.fromstring(receipt.body).find(D + "Response")
    return disposition.reasons, response


@pytest.mark.parametrize(
    "data, code",
    [
        ("QUJDRA=", "envelope.xsd"),  # refused by the schema's base64Binary, quoted and clipped
        ("QUJD*", "envelope.payload-base64"),  # libxml2's base64Binary lets this through; the strict decoder does not
    ],
)
def test_data_that_is_not_base64_is_refused_before_anything_is_parsed(dxp, pipeline, data, code):
    reasons, response = refused(pipeline, lodged(dxp, data=data))
    assert (reasons[0].stage, reasons[0].code) == ("unwrap", code)
    assert response.findtext(D + "ResponseCode") == "1001"
    assert data in response.findtext(D + "ResponseInfo") or "not base64" in response.findtext(D + "ResponseInfo")


def test_a_schema_refusal_quoting_a_huge_payload_is_clipped(dxp, pipeline):
    reasons, _ = refused(pipeline, lodged(dxp, data="QUJD" * 50_000 + "Q"))
    assert reasons[0].code == "envelope.xsd"
    assert len(reasons[0].message) <= 500


def test_the_decoder_refuses_what_the_schema_lets_through(dxp):
    unwrap = Unwrap(dxp.config.envelopes, Verify(dxp.config.registry, dxp.config.trust), Parse(None))
    with pytest.raises(Rejected) as caught:
        unwrap._decode("QUJD=Q==", "dxp")
    assert caught.value.reasons[0].code == "envelope.payload-base64"
    assert "not base64" in caught.value.reasons[0].message


def test_a_payload_over_the_size_limit_is_refused_before_it_is_decoded(dxp):
    inner = signed_ceb(dxp)
    body = lodged(dxp, inner)
    envelope = Envelope(Inbound(body, user_id=ENTERPRISE))
    Parse(None)(envelope)
    # The carried message must fit the same limit as any message; here the limit is below its size.
    unwrap = Unwrap(dxp.config.envelopes, Verify(dxp.config.registry, dxp.config.trust), Parse(len(inner) // 2))
    with pytest.raises(Rejected) as caught:
        unwrap(envelope)
    (reason,) = caught.value.reasons
    assert (reason.stage, reason.code) == ("unwrap", "envelope.payload-size")
    assert str(len(inner) // 2) in reason.message


def test_an_oversize_data_block_is_refused_at_parse_and_still_answered_by_a_dxprep(dxp, tmp_path):
    data = dxp_config_data(tmp_path, tmp_path / "keys")
    data["limits"]["max_text_bytes"] = 4096
    small = make_dxp_exchange(tmp_path, data)
    reasons, response = refused(build_pipeline(small.config), lodged(small, signed_ceb(small)))
    assert (reasons[0].stage, reasons[0].code) == ("parse", "limits.text")
    assert response.findtext(D + "ResponseCode") == "1002"
    assert "limits.text" in response.findtext(D + "ResponseInfo")


def test_an_envelope_invalid_against_its_schema_is_refused_with_line_and_path(dxp, pipeline):
    reasons, response = refused(pipeline, lodged(dxp, cop_msg_id="x" * 300))
    assert (reasons[0].stage, reasons[0].code) == ("unwrap", "envelope.xsd")
    assert reasons[0].line == 4 and reasons[0].path == "/dxp:DxpMsg/dxp:TransInfo/dxp:CopMsgId"
    info = response.findtext(D + "ResponseInfo")
    assert "line 4" in info and "/dxp:DxpMsg/dxp:TransInfo/dxp:CopMsgId" in info
    # A CopMsgId too long to echo is answered by the message's digest, so OriHead stays valid.
    assert len(response.findtext(f"{D}OriHead/{D}CopMsgId")) == 64


def test_an_unsigned_envelope_is_refused(dxp, pipeline):
    reasons, response = refused(pipeline, dxp_message(signed_ceb(dxp)))
    assert (reasons[0].stage, reasons[0].code) == ("unwrap", "signature.missing")
    assert response.findtext(D + "ResponseCode") == "1001"


def test_an_envelope_signed_by_someone_else_is_refused_naming_both(dxp, pipeline):
    reasons, response = refused(pipeline, lodged(dxp, signer=OTHER))
    (reason,) = reasons
    assert (reason.stage, reason.code) == ("authenticate", "identity.mismatch")
    assert f"envelope's signature is {OTHER}'s but the connection is {ENTERPRISE}'s" in reason.message
    assert response.findtext(D + "ResponseCode") == "1006"


def test_an_envelope_whose_sender_is_not_the_message_senders_is_refused_naming_both(dxp, pipeline):
    # The other enterprise wraps and signs a message the first one signed, and sends it over its own connection.
    reasons, response = refused(pipeline, lodged(dxp, sender=OTHER, signer=OTHER), user=OTHER)
    assert (reasons[0].code, reasons[0].stage) == ("envelope.mismatch", "authenticate")
    assert f"names sender '{OTHER}' but the message inside names '{ENTERPRISE}'" in reasons[0].message
    assert response.findtext(D + "ResponseCode") == "1001"


def test_an_envelope_whose_type_is_not_the_messages_is_refused_naming_both(dxp, pipeline):
    reasons, response = refused(pipeline, lodged(dxp, msg_type="CEB621Message"))
    (reason,) = reasons
    assert reason.code == "envelope.mismatch"
    assert "'CEB621Message'" in reason.message and "'CEB311Message' (CEB311)" in reason.message
    assert response.findtext(f"{D}OriHead/{D}MsgType") == "CEB621Message"


def test_a_carried_message_invalid_against_its_schema_is_refused_at_its_own_line_and_path(dxp, pipeline):
    root = unsigned(CEB311)
    head = root.find("{http://www.chinaport.gov.cn/ceb}Order/{http://www.chinaport.gov.cn/ceb}OrderHead")
    head.remove(head.find("{http://www.chinaport.gov.cn/ceb}orderNo"))
    inner = signed_ceb(dxp, root=root)
    reasons, response = refused(pipeline, lodged(dxp, inner))
    assert (reasons[0].stage, reasons[0].code) == ("validate", "xsd")
    # Line and path are the carried message's: where orderNo is missing, the next element is unexpected.
    line = 1 + inner[: inner.index(b"<ceb:ebpCode>")].count(b"\n")
    assert (reasons[0].line, reasons[0].path) == (line, "/ceb:CEB311Message/ceb:Order[1]/ceb:OrderHead/ceb:ebpCode")
    info = response.findtext(D + "ResponseInfo")
    assert info.startswith(f"in the message carried in Data: [validate/xsd] (line {line}, /ceb:CEB311Message/")
    assert response.findtext(D + "ResponseCode") == "1004"
    assert [r.findtext(D + "Code") for r in response.iter(D + "Result")] == ["1004"]


def test_a_carried_message_whose_signature_fails_is_refused(dxp, pipeline):
    tampered = signed_ceb(dxp).replace(b"order20160321116421002", b"order20160321116421003")
    reasons, response = refused(pipeline, lodged(dxp, tampered))
    assert (reasons[0].stage, reasons[0].code) == ("verify", "signature.invalid")
    assert response.findtext(D + "ResponseCode") == "1005"


def test_a_carried_message_that_is_not_xml_is_refused_as_the_carried_message(dxp, pipeline):
    reasons, response = refused(pipeline, lodged(dxp, b"plain text, not a message"))
    assert (reasons[0].stage, reasons[0].code) == ("parse", "parse.malformed")
    assert response.findtext(D + "ResponseInfo").startswith("in the message carried in Data: [parse/")


def test_a_dxpmsg_inside_a_dxpmsg_is_not_opened_twice(dxp, pipeline):
    nested = lodged(dxp)
    reasons, response = refused(pipeline, lodged(dxp, nested))
    assert (reasons[0].stage, reasons[0].code) == ("identify", "unknown-type")
    assert response.findtext(D + "ResponseCode") == "1003"


def test_a_business_message_sent_bare_is_answered_by_a_platform_receipt(dxp, pipeline):
    # A CEB311 names no receivers of its own: bare, it goes nowhere; in a DxpMsg, to those the envelope names.
    disposition = process(pipeline, signed_ceb(dxp))
    assert disposition.outcome == "rejected"
    assert disposition.reasons[0].code == "no-route"
    receipt = receipt_of(disposition)
    assert receipt.type == "PlatformReceipt"
    assert etree.fromstring(receipt.body).tag == f"{{{EX_NS}}}PlatformReceipt"


def test_a_dxp_receiver_gets_a_dxpmsg_of_a_message_sent_in_the_exchanges_own_form(tmp_path):
    exchange = make_exchange(tmp_path)
    data = yaml.safe_load(exchange.config_path.read_text())
    data["participants"]["customs"]["envelope"] = "dxp"
    exchange.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    config = load_config(exchange.config_path)
    sample = exchange.signed("ent-a", SAMPLES / "customs-declaration" / "valid-with-inspection.xml")
    disposition = build_pipeline(config).process(Inbound(sample, user_id="ent-a"))
    assert disposition.outcome == "accepted", disposition.reasons
    bodies = {p.routing_key: p.body for p in disposition.publications}
    assert etree.fromstring(bodies["ciq"]).tag == f"{{{EX_NS}}}ExchangeMessage"
    assert etree.fromstring(bodies["ent-a"]).tag == f"{{{EX_NS}}}PlatformReceipt"
    copy = etree.fromstring(bodies["customs"])
    info = texts(copy.find(D + "TransInfo"), TRANS_INFO)
    assert (info["SenderId"], info["ReceiverIds"], info["MsgType"]) == ("ent-a", ["customs"], "CustomsDeclaration")
    assert info["CreatTime"].endswith("Z"), "the time the exchange received it, in UTC"
    assert base64.b64decode(copy.findtext(D + "Data")) == sample
    assert_official(bodies["customs"])
    assert xmlsec1_accepts_with_ca(bodies["customs"], exchange.keys_dir / "ca" / "cert.pem")


def test_a_dxpmsg_the_exchange_fails_on_at_every_delivery_is_answered_by_a_dxprep(dxp, pipeline):
    body = lodged(dxp)
    user = pipeline.config.registry.get(ENTERPRISE).amqp_user
    disposition = pipeline.failed(Inbound(body, user_id=user), RuntimeError("a fault of the exchange"), 6)
    assert disposition.outcome == "rejected"
    receipt = receipt_of(disposition)
    assert receipt.type == "DxpRep"
    response = etree.fromstring(receipt.body).find(D + "Response")
    assert response.findtext(D + "ResponseCode") == "1099"
    assert "processing-failed" in response.findtext(D + "ResponseInfo")
    assert response.findtext(f"{D}OriHead/{D}CopMsgId") == "CEB311-20160308-0001"
    assert_official(receipt.body)


def test_a_dxpmsg_that_is_not_well_formed_is_answered_by_a_dxprep_from_its_first_tag(dxp, pipeline):
    body = lodged(dxp).replace(b"</dxp:TransInfo>", b"</dxp:TransInfoo>")
    reasons, response = refused(pipeline, body)
    assert (reasons[0].stage, reasons[0].code) == ("parse", "parse.malformed")
    assert response.findtext(D + "ResponseCode") == "1002"
    # Nothing of the envelope was read: OriHead is filled in from what the exchange knows.
    assert response.findtext(f"{D}OriHead/{D}CopMsgId") == hashlib.sha256(body).hexdigest()
    assert response.findtext(f"{D}OriHead/{D}SenderId") == ENTERPRISE


# ---- configuration ------------------------------------------------------------------------------------------------


def _problems(dxp, tmp_path, edit) -> list[str]:
    data = yaml.safe_load(dxp.config_path.read_text(encoding="utf-8"))
    edit(data)
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_a_receiver_envelope_must_be_in_the_catalogue(dxp, tmp_path):
    problems = _problems(dxp, tmp_path, lambda d: d["participants"]["ciq"].update(envelope="dxpp"))
    assert any("participants.ciq.envelope" in p and "known: dxp, exchange" in p for p in problems), problems


def test_a_participant_dxp_cannot_name_is_refused_when_dxp_is_in_use(dxp, tmp_path):
    def edit(data):
        data["participants"]["a-very-long-participant-id"] = {"kind": "enterprise"}

    problems = _problems(dxp, tmp_path, edit)
    assert any("a-very-long-participant-id" in p and "at most 16" in p for p in problems), problems


def test_a_message_type_may_not_take_an_envelopes_root(dxp, tmp_path):
    catalogue = yaml.safe_load(open(dxp.config.path.parent / "ceb-2018.yaml", encoding="utf-8"))
    catalogue["types"]["DxpMsg"] = {"root": "dxp:DxpMsg", "xsd": str(project_schema_path()), "id": "dxp:TransInfo/dxp:CopMsgId",
                                    "sender": "dxp:TransInfo/dxp:SenderId"}
    path = tmp_path / "with-dxp.yaml"
    path.write_text(yaml.safe_dump(catalogue, allow_unicode=True), encoding="utf-8")
    problems = _problems(dxp, tmp_path, lambda d: d.update(messages=str(path)))
    assert any("types.DxpMsg.root" in p and "dxp envelope" in p for p in problems), problems


def test_a_platform_node_id_longer_than_dxp_allows_is_refused(dxp, tmp_path):
    problems = _problems(dxp, tmp_path, lambda d: d["platform"].update(node_id="EPORT-XIAN-01"))
    assert any("platform.node_id" in p and "1 to 8 characters" in p for p in problems), problems


def project_schema_path():
    from dxp_fixture import PROJECT_DXP_XSD

    return PROJECT_DXP_XSD


def test_an_unknown_envelope_key_is_refused_with_a_suggestion(dxp, tmp_path):
    envelopes = yaml.safe_load((project_schema_path().parents[1] / "envelopes.yaml").read_text())
    envelopes["envelopes"]["dxp"]["reciept"] = envelopes["envelopes"]["dxp"].pop("receipt")
    for spec in envelopes["envelopes"].values():
        spec["xsd"] = str(project_schema_path().parent / spec["xsd"].removeprefix("xsd/"))
    path = tmp_path / "envelopes.yaml"
    path.write_text(yaml.safe_dump(envelopes))
    problems = _problems(dxp, tmp_path, lambda d: d.update(envelopes=str(path)))
    assert any("envelopes.dxp.reciept" in p and "did you mean `receipt`" in p for p in problems), problems


# ---- the command line ---------------------------------------------------------------------------------------------


def _invoke(dxp, *args):
    return CliRunner().invoke(main, ["--config", str(dxp.config_path), *args])


def test_verify_checks_both_layers_of_a_forwarded_dxpmsg_and_a_dxprep(dxp, pipeline, tmp_path):
    disposition = process(pipeline, lodged(dxp))
    (copy,) = [p for p in disposition.publications if p.routing_key == "customs"]
    path = tmp_path / "copy.xml"
    path.write_bytes(copy.body)
    extracted = tmp_path / "inner.xml"
    result = _invoke(dxp, "verify", str(path), "--extract", str(extracted))
    assert result.exit_code == 0, result.output
    assert f"OK   platform: signed by the exchange ({dxp.config.platform.id})" in result.output
    assert "OK   envelope: agrees with the message inside: CEB311Message from 1101180326" in result.output
    assert f"OK   sender: signed by {ENTERPRISE}, the sender it names" in result.output
    assert extracted.read_bytes() == signed_ceb(dxp)

    receipt = tmp_path / "receipt.xml"
    receipt.write_bytes(receipt_of(disposition).body)
    result = _invoke(dxp, "verify", str(receipt))
    assert result.exit_code == 0 and "OK   platform" in result.output, result.output

    forged = tmp_path / "forged.xml"
    forged.write_bytes(copy.body.replace(b"<dxp:MsgType>CEB311Message<", b"<dxp:MsgType>CEB621Message<"))
    result = _invoke(dxp, "verify", str(forged))
    assert result.exit_code == 1 and "FAIL platform: signature.invalid" in result.output, result.output


def test_verify_checks_an_enterprise_dxpmsg_and_names_a_disagreement(dxp, tmp_path):
    path = tmp_path / "lodged.xml"
    path.write_bytes(lodged(dxp, msg_type="CEB621Message"))
    result = _invoke(dxp, "verify", str(path))
    assert result.exit_code == 1
    assert f"OK   envelope signature: signed by {ENTERPRISE}" in result.output
    assert "FAIL envelope: the envelope says the message is 'CEB621Message' but the message inside is 'CEB311Message'" in result.output


def test_wrap_writes_what_a_terminal_node_sends_and_the_daemon_accepts_it(dxp, pipeline, tmp_path):
    document = tmp_path / "ceb311.xml"
    document.write_bytes(etree.tostring(unsigned(CEB311), xml_declaration=True, encoding="UTF-8"))
    out = tmp_path / "dxp.xml"
    result = _invoke(dxp, "wrap", str(document), "--as", ENTERPRISE, "--to", "customs", "--sign-inner", "--id", "T-1",
                     "--out", str(out))
    assert result.exit_code == 0, result.output
    body = out.read_bytes()
    assert_official(body)
    info = texts(etree.fromstring(body).find(D + "TransInfo"), TRANS_INFO)
    assert (info["CopMsgId"], info["SenderId"], info["ReceiverIds"], info["MsgType"]) == (
        "T-1", ENTERPRISE, ["customs"], "CEB311Message"
    )
    assert process(pipeline, body).outcome == "accepted"


def test_wrap_refuses_a_document_of_no_known_type(dxp, tmp_path):
    document = tmp_path / "other.xml"
    document.write_bytes(b"<other/>")
    result = _invoke(dxp, "wrap", str(document), "--as", ENTERPRISE, "--to", "customs")
    assert result.exit_code == 1
    assert "unknown-type" in result.output


def test_routes_explain_shows_the_envelope_the_message_inside_and_the_decision(dxp, tmp_path):
    path = tmp_path / "lodged.xml"
    path.write_bytes(lodged(dxp))
    result = _invoke(dxp, "routes", "explain", str(path))
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == (
        f"{path}: dxp envelope (DxpMsg) CEB311-20160308-0001 from {ENTERPRISE} to customs, carrying 'CEB311Message'"
    )
    assert lines[1] == f"  envelope signature: verified, signed by {ENTERPRISE}"
    assert f"{path}: CEB311 4CDE1CFD-EDED-46B1-946C-B8022E42FC94 from {ENTERPRISE} to customs" in lines
    assert "  -> customs by ceb-orders-to-customs, in a dxp envelope" in lines
    assert "  -> ciq by ceb-orders-copy-to-inspection (shared under GACC Announcement 2018-113)" in lines


def test_routes_diff_shows_a_receiver_moving_to_dxp(dxp, tmp_path):
    data = yaml.safe_load(dxp.config_path.read_text(encoding="utf-8"))
    data["participants"]["ciq"]["envelope"] = "dxp"
    changed = tmp_path / "routes.yaml"
    changed.write_text(yaml.safe_dump(data, allow_unicode=True), encoding="utf-8")
    result = _invoke(dxp, "routes", "diff", str(dxp.config_path), str(changed))
    assert result.exit_code == 1
    assert "  ~ ciq takes its copies in the dxp envelope (was exchange)" in result.output.splitlines()


def test_routes_explain_of_a_refused_envelope_names_the_reason(dxp, tmp_path):
    path = tmp_path / "lodged.xml"
    path.write_bytes(lodged(dxp, msg_type="CEB621Message"))
    result = _invoke(dxp, "routes", "explain", str(path))
    assert result.exit_code == 1
    assert "[authenticate/envelope.mismatch]" in result.output


# ---- whatever the envelope holds, the answer is a valid DxpRep ----------------------------------------------------

_XML_TEXT = st.text(
    alphabet=st.characters(blacklist_categories=("Cs",), blacklist_characters="\x00\ufffe\uffff", min_codepoint=0x20),
    max_size=300,
)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    cop_msg_id=_XML_TEXT,
    sender=st.sampled_from([ENTERPRISE, OTHER, "", "x" * 17]) | _XML_TEXT,
    receivers=st.lists(st.sampled_from(["customs", "ciq", "", "nobody", "y" * 20]) | _XML_TEXT, max_size=7),
    created=st.sampled_from(["2016-03-08T11:27:01", "2026-02-30T00:00:00", "yesterday", ""]) | _XML_TEXT,
    msg_type=st.sampled_from(["CEB311Message", "CEB621Message", "", "z" * 31]) | _XML_TEXT,
    data=st.sampled_from([None, "", "QUJD*", "QUJDRA=="]) | st.text(alphabet="ABCD+/= \n", max_size=40),
    envelope_signer=st.sampled_from([ENTERPRISE, OTHER, None]),
)
def test_every_dxpmsg_is_answered_by_a_dxprep_valid_against_the_official_schemas(
    dxp, pipeline, cop_msg_id, sender, receivers, created, msg_type, data, envelope_signer
):
    escape = lambda value: value.replace("&", "&amp;").replace("<", "&lt;")  # noqa: E731
    body = dxp_message(
        signed_ceb(dxp), sender=escape(sender), receivers=[escape(r) for r in receivers], msg_type=escape(msg_type),
        cop_msg_id=escape(cop_msg_id), created=escape(created), data=data,
    )
    if envelope_signer is not None:
        body = dxp.signer(envelope_signer).sign_bytes(body)
    disposition = process(pipeline, body)
    receipt = receipt_of(disposition)
    assert receipt.type == "DxpRep"
    assert_official(receipt.body)
    code = etree.fromstring(receipt.body).findtext(f"{D}Response/{D}ResponseCode")
    assert (code == "0000") == (disposition.outcome == "accepted")
    if disposition.outcome == "rejected":
        (dead,) = [p for p in disposition.publications if p.exchange == "exchanger.dead"]
        assert dead.body == body
