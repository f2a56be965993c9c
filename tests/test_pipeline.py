"""The pipeline end to end without a broker: every bundled sample, and every way a message is refused."""

from __future__ import annotations

import base64
import json
import subprocess

import pytest
from lxml import etree

from exchange_fixture import ROUTED_SAMPLES as ACCEPTED
from exchange_fixture import SAMPLES
from exchanger.envelope import Inbound
from exchanger.platform_documents import NS, read_exchange_message
from exchanger.transport.names import DEAD_EXCHANGE, MAILBOX_EXCHANGE

EX = f"{{{NS}}}"

BROKEN = sorted(p.relative_to(SAMPLES).as_posix() for p in SAMPLES.glob("*/broken.xml"))


def _receipt(disposition, receiver):
    (publication,) = [p for p in disposition.publications if p.headers.get("x-exchanger-kind") == "receipt"]
    assert publication.exchange == MAILBOX_EXCHANGE and publication.routing_key == receiver
    return publication, etree.fromstring(publication.body)


@pytest.mark.parametrize("sample, sender, destinations", ACCEPTED)
def test_every_bundled_sample_is_delivered_where_routes_say(exchange, pipeline, sample, sender, destinations):
    body = exchange.signed(sender, SAMPLES / sample)
    disposition = pipeline.process(Inbound(body, user_id=sender))
    assert disposition.outcome == "accepted", disposition.reasons
    forwards = [p for p in disposition.publications if p.headers.get("x-exchanger-kind") == "forward"]
    assert [p.routing_key for p in forwards] == destinations
    assert all(p.exchange == MAILBOX_EXCHANGE and p.headers["x-exchanger-sender"] == sender for p in forwards)
    # The copy carries the sender's document byte for byte.
    fields = read_exchange_message(etree.fromstring(forwards[0].body))
    assert fields["original"] == body
    receipt, root = _receipt(disposition, sender)
    assert root.findtext(f"{EX}Status") == "accepted"
    assert [d.get("to") for d in root.iter(f"{EX}Delivery")] == destinations


def test_shared_copy_names_its_approval(exchange, pipeline):
    body = exchange.signed("ent-a", SAMPLES / "customs-declaration/valid-with-inspection.xml")
    disposition = pipeline.process(Inbound(body, user_id="ent-a"))
    (to_ciq,) = [p for p in disposition.publications if p.routing_key == "ciq"]
    assert to_ciq.headers["x-exchanger-route"] == "declaration-copy-to-inspection"
    assert to_ciq.headers["x-exchanger-approved-by"] == "GACC"
    (to_customs,) = [p for p in disposition.publications if p.routing_key == "customs"]
    assert "x-exchanger-approved-by" not in to_customs.headers
    _, root = _receipt(disposition, "ent-a")
    shared = [d for d in root.iter(f"{EX}Delivery") if d.get("to") == "ciq"]
    assert shared[0].get("approvedBy") == "GACC" and shared[0].get("approvalRef")


def _rejected(pipeline, body, user_id="ent-a"):
    disposition = pipeline.process(Inbound(body, user_id=user_id, headers={"trace": "t-1"}))
    assert disposition.outcome == "rejected"
    (dead,) = [p for p in disposition.publications if p.exchange == DEAD_EXCHANGE]
    assert dead.body == body  # the original bytes, untouched
    assert dead.headers["trace"] == "t-1"
    assert dead.headers["x-exchanger-stage"] == disposition.reasons[0].stage
    assert json.loads(dead.headers["x-exchanger-reasons"])
    return disposition


@pytest.mark.parametrize("sample", BROKEN)
def test_broken_samples_are_rejected_with_line_and_path(exchange, pipeline, sample):
    body = exchange.signed("ent-a", SAMPLES / sample)
    sender = etree.fromstring(body).findtext(".//{urn:eport:common:1}SenderId")
    disposition = _rejected(pipeline, body, user_id=sender)
    reason = disposition.reasons[0]
    assert (reason.stage, reason.code) == ("validate", "xsd")
    assert reason.line and reason.path and reason.path.startswith("/")
    _, root = _receipt(disposition, sender)
    assert root.findtext(f"{EX}Status") == "rejected"
    located = root.find(f"{EX}Reason")
    assert located.get("line") == str(reason.line) and located.get("path") == reason.path


def test_unsigned_declaration_is_rejected_at_verify(pipeline):
    disposition = _rejected(pipeline, (SAMPLES / "customs-declaration/valid.xml").read_bytes())
    assert disposition.reasons[0].code == "signature.missing"


def test_tampered_declaration_is_rejected(exchange, pipeline):
    body = exchange.signed("ent-a", SAMPLES / "customs-declaration/valid.xml")
    tampered = body.replace(b"<cm:ReceiverId>customs</cm:ReceiverId>", b"<cm:ReceiverId>ciq</cm:ReceiverId>")
    assert tampered != body
    disposition = _rejected(pipeline, tampered)
    assert (disposition.reasons[0].stage, disposition.reasons[0].code) == ("verify", "signature.invalid")


def test_signature_by_another_participant_is_an_identity_mismatch(exchange, pipeline):
    # ent-b signs a declaration that names ent-a as sender, and sends it as ent-b.
    body = exchange.signed("ent-b", SAMPLES / "customs-declaration/valid.xml")
    disposition = _rejected(pipeline, body, user_id="ent-b")
    assert disposition.reasons[0].code == "identity.mismatch"
    assert "names sender ent-a" in disposition.reasons[0].message
    _receipt(disposition, "ent-b")  # the receipt goes to the authenticated connection, not the claimed sender


def test_connection_of_another_participant_is_an_identity_mismatch(exchange, pipeline):
    body = exchange.signed("ent-a", SAMPLES / "customs-declaration/valid.xml")
    disposition = _rejected(pipeline, body, user_id="ent-b")
    assert disposition.reasons[0].code == "identity.mismatch"


def test_missing_user_id_is_rejected_without_a_receipt(exchange, pipeline):
    body = exchange.signed("ent-a", SAMPLES / "customs-declaration/valid.xml")
    disposition = pipeline.process(Inbound(body, user_id=None))
    assert disposition.outcome == "rejected"
    assert disposition.reasons[0].code == "identity.no-user-id"
    assert [p.exchange for p in disposition.publications] == [DEAD_EXCHANGE]


def test_no_route_is_a_rejection_not_a_drop(exchange, pipeline):
    # An enterprise may not send a cargo manifest, even a valid and signed one.
    document = (SAMPLES / "customs-declaration/valid.xml").read_bytes()
    misaddressed = document.replace(b"<cm:ReceiverId>customs</cm:ReceiverId>", b"<cm:ReceiverId>tax</cm:ReceiverId>")
    assert misaddressed != document
    disposition = _rejected(pipeline, exchange.signed("ent-a", misaddressed))
    reason = disposition.reasons[0]
    assert (reason.stage, reason.code) == ("route", "no-route")
    assert "ent-a to tax" in reason.message


def test_unknown_receiver_is_rejected(exchange, pipeline):
    document = (SAMPLES / "customs-declaration/valid.xml").read_bytes()
    body = exchange.signed("ent-a", document.replace(b">customs</cm:ReceiverId>", b">nobody-here</cm:ReceiverId>"))
    assert _rejected(pipeline, body).reasons[0].code == "unknown-receiver"


def test_doctype_is_refused_before_anything_else(pipeline):
    body = b'<?xml version="1.0"?><!DOCTYPE x [<!ENTITY a "b">]><x>&a;</x>'
    assert _rejected(pipeline, body).reasons[0].code == "parse.doctype"


def test_unknown_message_type_names_the_root(pipeline):
    disposition = _rejected(pipeline, b"<Invoice xmlns='urn:example'/>")
    assert disposition.reasons[0].code == "unknown-type" and "{urn:example}Invoice" in disposition.reasons[0].message


def test_platform_signatures_verify_with_xmlsec1(exchange, pipeline, tmp_path):
    """Receivers check the exchange's signature, and the sender's inside, with the reference C implementation."""
    body = exchange.signed("ent-a", SAMPLES / "customs-declaration/valid.xml")
    disposition = pipeline.process(Inbound(body, user_id="ent-a"))
    forward = next(p for p in disposition.publications if p.routing_key == "customs")
    receipt = next(p for p in disposition.publications if p.routing_key == "ent-a")
    ca = exchange.keys_dir / "ca" / "cert.pem"
    original = base64.b64decode(etree.fromstring(forward.body).findtext(f"{EX}Data"))
    for name, data in (("forward.xml", forward.body), ("receipt.xml", receipt.body), ("original.xml", original)):
        (tmp_path / name).write_bytes(data)
        result = subprocess.run(
            ["xmlsec1", "--verify", "--trusted-pem", str(ca), str(tmp_path / name)], capture_output=True, text=True
        )
        assert result.returncode == 0, f"{name}: {result.stderr}"
    # The receiver recovers the sender's document exactly: same bytes, so the same canonical form.
    assert original == body
    assert etree.tostring(etree.fromstring(original), method="c14n") == etree.tostring(etree.fromstring(body), method="c14n")


def test_signing_the_platform_documents_in_place_gives_the_same_bytes(exchange, pipeline):
    """The pipeline signs the documents it has just built without copying them first; nothing else differs."""
    signer = pipeline.signer
    body = exchange.signed("ent-a", SAMPLES / "customs-declaration/valid-with-inspection.xml")
    for publication in pipeline.process(Inbound(body, user_id="ent-a")).publications:
        root = etree.fromstring(publication.body)
        root.remove(root[-1])  # the platform's ds:Signature
        copied = etree.tostring(signer.sign(root), xml_declaration=True, encoding="UTF-8")
        assert etree.tostring(signer.sign(root, in_place=True), xml_declaration=True, encoding="UTF-8") == copied
        assert copied == publication.body  # RSA PKCS#1 v1.5 signatures are deterministic
    with pytest.raises(ValueError, match="in place"):
        signer.sign(etree.fromstring(body)[0], in_place=True)


def test_receipts_and_forwards_are_valid_exchange_documents(exchange, pipeline):
    schema = exchange.config.catalogue.get("PlatformReceipt").schema
    body = exchange.signed("ent-a", SAMPLES / "customs-declaration/valid-with-inspection.xml")
    accepted = pipeline.process(Inbound(body, user_id="ent-a"))
    rejected = pipeline.process(Inbound(b"<not-xml", user_id="ent-a"))
    for disposition in (accepted, rejected):
        for publication in disposition.publications:
            if publication.exchange == MAILBOX_EXCHANGE:
                tree = etree.ElementTree(etree.fromstring(publication.body))
                assert schema.violations(tree) == [], publication.type


def test_redelivery_produces_the_same_ids(exchange, pipeline):
    body = exchange.signed("ent-a", SAMPLES / "customs-declaration/valid.xml")
    first = pipeline.process(Inbound(body, user_id="ent-a"))
    again = pipeline.process(Inbound(body, user_id="ent-a", redelivered=True))
    assert [p.message_id for p in first.publications] == [p.message_id for p in again.publications]


def test_a_catalogue_xpath_failing_on_the_data_rejects_with_a_receipt(exchange, tmp_path):
    # The field's XPath compiles, so the loader accepts it; for a message id starting with BAD its second
    # half, count() of a string, is a type error libxml2 raises only when evaluated on such a document.
    import yaml

    from exchange_fixture import PROJECT, write_config
    from exchanger.config import load_config
    from exchanger.pipeline import build_pipeline

    catalogue_path = PROJECT / "schemas" / "messages.yaml"
    catalogue = yaml.safe_load(catalogue_path.read_text())
    for spec in catalogue["types"].values():
        schemas = spec["xsd"] if isinstance(spec["xsd"], list) else [spec["xsd"]]
        resolved = [str(catalogue_path.parent / s) for s in schemas]
        spec["xsd"] = resolved if isinstance(spec["xsd"], list) else resolved[0]
    probe = "dec:BaseTransfer/cm:MessageId[starts-with(., 'BAD')] and count(string(.)) > 0"
    catalogue["types"]["CustomsDeclaration"]["fields"]["probe"] = probe
    (tmp_path / "messages.yaml").write_text(yaml.safe_dump(catalogue, sort_keys=False, allow_unicode=True))
    config = load_config(write_config(tmp_path, exchange.keys_dir, messages=str(tmp_path / "messages.yaml")))
    pipeline = build_pipeline(config)

    document = (SAMPLES / "customs-declaration/valid.xml").read_bytes()
    message_id = etree.fromstring(document).findtext(".//{urn:eport:common:1}MessageId")
    bad = document.replace(f">{message_id}<".encode(), b">BAD-1<")
    assert bad != document
    disposition = _rejected(pipeline, exchange.signed("ent-a", bad))
    reason = disposition.reasons[0]
    assert (reason.stage, reason.code) == ("authenticate", "catalogue.field-error")
    assert "field probe" in reason.message and probe in reason.message
    _, receipt = _receipt(disposition, "ent-a")
    assert receipt.findtext(f"{EX}Status") == "rejected"
    # The same entry reads every other document as before.
    assert pipeline.process(Inbound(exchange.signed("ent-a", document), user_id="ent-a")).outcome == "accepted"


def test_a_message_failing_at_every_delivery_is_rejected_with_a_receipt(exchange, pipeline):
    # What the worker settles at the broker's last delivery of a message the pipeline keeps failing on.
    body = exchange.signed("ent-a", SAMPLES / "customs-declaration/valid.xml")
    disposition = pipeline.failed(Inbound(body, user_id="ent-a", headers={"trace": "t-1"}), RuntimeError("boom"), 6)
    assert disposition.outcome == "rejected"
    (dead,) = [p for p in disposition.publications if p.exchange == DEAD_EXCHANGE]
    assert dead.body == body and dead.headers["x-exchanger-stage"] == "exchange"
    reason = disposition.reasons[0]
    assert reason.code == "processing-failed" and "6 deliveries" in reason.message and "RuntimeError" in reason.message
    _, receipt = _receipt(disposition, "ent-a")
    assert receipt.findtext(f"{EX}Status") == "rejected"
    # The receipt names the sender's message id, read (not trusted) from the document.
    message_id = etree.parse(str(SAMPLES / "customs-declaration/valid.xml")).findtext(".//{urn:eport:common:1}MessageId")
    assert dead.headers["x-exchanger-orig-message-id"] == message_id
    # Even bytes that cannot be parsed get their receipt.
    garbage = pipeline.failed(Inbound(b"\x00not xml", user_id="ent-a"), RuntimeError("boom"), 6)
    assert [p.routing_key for p in garbage.publications if p.exchange == MAILBOX_EXCHANGE] == ["ent-a"]


@pytest.mark.parametrize(
    "headers, redelivered, expected",
    [
        ({}, False, 1),
        ({"x-delivery-count": 5}, True, 6),
        # A publisher can set the header too: it counts only on a delivery the broker marks as redelivered.
        ({"x-delivery-count": 5}, False, 1),
        ({"x-delivery-count": "5"}, True, 1),
        ({"x-delivery-count": True}, True, 1),
        ({"x-delivery-count": -3}, True, 1),
    ],
)
def test_the_delivery_count_is_believed_only_from_the_broker(headers, redelivered, expected):
    from exchanger.worker import delivery_count

    assert delivery_count(Inbound(b"", headers=headers, redelivered=redelivered)) == expected


def test_a_publication_carries_only_ids_an_amqp_property_can_hold():
    import pika

    from exchanger.pipeline.disposition import Publication

    # A MessageId quoted from a document may be longer than a short string's 255 bytes (here by one
    # byte, and in characters of two and three bytes): the properties must still encode.
    publication = Publication("exchanger.mailbox", "customs", b"<x/>", message_id="é" * 200,
                              correlation_id="R" * 256, type="报关单" * 100)
    properties = pika.BasicProperties(message_id=publication.message_id, correlation_id=publication.correlation_id,
                                      type=publication.type)
    properties.encode()
    assert publication.correlation_id == "R" * 255
    assert publication.message_id == "é" * 127 and publication.type == "报关单" * 28 + "报"
