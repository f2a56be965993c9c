"""The attack suite: against the running daemon on the real broker, every attack is refused.

Refused means: the broker turns it away before the exchange sees it, or the exchange dead-letters it
with the stage and code listed here, sends a signed rejection receipt to the broker-authenticated
sender (none when the broker vouches for no sender), and delivers nothing to any mailbox.
SECURITY.md's table is checked against ATTACKS, so the two cannot drift apart.
"""

from __future__ import annotations

import copy
import hashlib
import json
import os
import re
import signal
from base64 import b64encode
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pika.exceptions
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner

from daemon_fixture import Authority, Daemon, deploy, drain_dead, login_url, mailbox, publish, self_signed, signing_extensions, write_pem
from exchange_fixture import CORPUS, PROJECT, SAMPLES
from exchanger.dsig.signer import Signer
from exchanger.envelope import Inbound
from exchanger.keys.material import load_certificate, load_private_key
from exchanger.keys.pki import revoke_certificate
from exchanger.pipeline import build_pipeline

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

SECURITY_MD = PROJECT / "SECURITY.md"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"ds": DS, "dec": "urn:eport:dec:1", "cm": "urn:eport:common:1"}
EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
BROKER = "broker"
DAEMON = "daemon"  # stands for the daemon's own broker user, whatever this run calls it
NOW = datetime.now(timezone.utc)

# The signing certificates registered for ent-b besides its own, each broken in one way.
ODD_CERTIFICATES = ("self-signed", "expired", "not-yet-valid", "revoked", "no-digital-signature", "stale-crl")


# ---- what the attacks are made of --------------------------------------------------------------------------------


class Kit:
    """The deployment's keys, and ways to sign documents that the exchange's own signer never would."""

    def __init__(self, exchange):
        self.exchange = exchange
        self.keys = exchange.keys_dir

    def document(self, sample: str, sender: str = "ent-a") -> bytes:
        """A bundled sample naming ``sender`` as its sender."""
        data = (SAMPLES / sample).read_bytes()
        return data.replace(b"<cm:SenderId>ent-a</cm:SenderId>", f"<cm:SenderId>{sender}</cm:SenderId>".encode())

    def signed(self, participant: str, document: bytes) -> bytes:
        """Signed with a participant's own key, as `exchanger sign` does."""
        return self.exchange.signer(participant).sign_bytes(document)

    def signed_odd(self, name: str, document: bytes) -> bytes:
        """Signed by ent-b with one of its odd certificates."""
        directory = self.keys / "ent-b"
        return Signer(directory / f"{name}-key.pem", directory / f"{name}-cert.pem").sign_bytes(document)

    def key(self, participant: str):
        return load_private_key(self.keys / participant / "key.pem")

    def cert(self, participant: str) -> x509.Certificate:
        return load_certificate(self.keys / participant / "cert.pem")

    def crafted(self, document: bytes, cls: type[XMLSigner] = XMLSigner, **sign) -> etree._Element:
        """A signature made with signxml directly (URI="" like the exchange's), with any algorithm or KeyInfo."""
        options = {k: sign.pop(k) for k in ("signature_algorithm", "digest_algorithm") if k in sign}
        signer = cls(c14n_algorithm=EXC_C14N, **options)
        signer.signature_annotators.append(_whole_document)
        return signer.sign(etree.fromstring(document), **sign)


class LegacySigner(XMLSigner):
    """signxml's signer with its SHA-1 refusal switched off: what old systems still send."""

    def check_deprecated_methods(self) -> None:
        """Allow SHA-1."""


def _whole_document(sig_root, signing_settings) -> None:
    sig_root.find("ds:SignedInfo/ds:Reference", NS).set("URI", "")


def _bytes(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _signature(root: etree._Element) -> etree._Element:
    return root.find("ds:Signature", NS)


def _forged_declaration(kit: Kit) -> etree._Element:
    """What an attacker wants customs to read: the same declaration for a hundredth of the goods."""
    return etree.fromstring(kit.document("customs-declaration/valid.xml").replace(b">500<", b">5<"))


def xsw_in_object(kit: Kit) -> bytes:
    root = etree.fromstring(kit.signed("ent-a", kit.document("customs-declaration/valid.xml")))
    etree.SubElement(_signature(root), f"{{{DS}}}Object").append(_forged_declaration(kit))
    return _bytes(root)


def xsw_in_key_info(kit: Kit) -> bytes:
    root = etree.fromstring(kit.signed("ent-a", kit.document("customs-declaration/valid.xml")))
    _signature(root).find("ds:KeyInfo/ds:X509Data", NS).append(_forged_declaration(kit))
    return _bytes(root)


def xsw_forged_root_original_in_object(kit: Kit) -> bytes:
    original = etree.fromstring(kit.signed("ent-a", kit.document("customs-declaration/valid.xml")))
    signature = _signature(original)
    original.remove(signature)
    forged = _forged_declaration(kit)
    forged.append(signature)
    etree.SubElement(signature, f"{{{DS}}}Object").append(original)
    return _bytes(forged)


def xsw_forged_root_with_signature(kit: Kit) -> bytes:
    """The signed declaration's signature moved onto a forged declaration, the original dropped."""
    original = etree.fromstring(kit.signed("ent-a", kit.document("customs-declaration/valid.xml")))
    forged = _forged_declaration(kit)
    forged.append(_signature(original))
    return _bytes(forged)


def xsw_signature_into_child(kit: Kit) -> bytes:
    root = etree.fromstring(kit.signed("ent-a", kit.document("customs-declaration/valid.xml")))
    root.find("dec:Head", NS).append(_signature(root))
    return _bytes(root)


def xsw_second_base_transfer(kit: Kit) -> bytes:
    root = etree.fromstring(kit.signed("ent-a", kit.document("customs-declaration/valid.xml")))
    second = copy.deepcopy(root.find("dec:BaseTransfer", NS))
    second.find("cm:ReceiverId", NS).text = "ciq"
    root.insert(1, second)
    return _bytes(root)


def xsw_duplicate_ids(kit: Kit) -> bytes:
    """A signature by reference to Id="D1", with a forged element carrying the same Id before the signed one."""
    document = etree.fromstring(kit.document("customs-declaration/valid.xml"))
    document.find("dec:Head", NS).set("Id", "D1")
    signer = XMLSigner(c14n_algorithm=EXC_C14N)
    root = signer.sign(document, key=kit.key("ent-a"), cert=[kit.cert("ent-a")], reference_uri="#D1")
    forged = copy.deepcopy(root.find("dec:Head", NS))
    forged.find("dec:InspectionRequired", NS).text = "1"
    root.insert(1, forged)
    return _bytes(root)


def second_declaration_beside(kit: Kit) -> bytes:
    """The signed declaration and a forged one side by side under an element of the attacker's."""
    wrapper = etree.Element("{urn:attacker}Batch")
    wrapper.append(_forged_declaration(kit))
    wrapper.append(etree.fromstring(kit.signed("ent-a", kit.document("customs-declaration/valid.xml"))))
    return _bytes(wrapper)


def sha1(kit: Kit) -> bytes:
    root = kit.crafted(
        kit.document("forex-verification/valid.xml"),
        LegacySigner,
        signature_algorithm=SignatureMethod.RSA_SHA1,
        digest_algorithm=DigestAlgorithm.SHA1,
        key=kit.key("ent-a"),
        cert=[kit.cert("ent-a")],
    )
    return _bytes(root)


def hmac_keyed_with_the_certificate(kit: Kit) -> bytes:
    """Key confusion: HMAC keyed with ent-a's public certificate, which anyone has, and that certificate in KeyInfo."""
    cert = kit.cert("ent-a")
    root = kit.crafted(
        kit.document("forex-verification/valid.xml"),
        signature_algorithm=SignatureMethod.HMAC_SHA256,
        key=cert.public_bytes(Encoding.PEM),
    )
    key_info = etree.SubElement(_signature(root), f"{{{DS}}}KeyInfo")
    data = etree.SubElement(key_info, f"{{{DS}}}X509Data")
    etree.SubElement(data, f"{{{DS}}}X509Certificate").text = b64encode(cert.public_bytes(Encoding.DER)).decode()
    return _bytes(root)


def hmac_bare(kit: Kit) -> bytes:
    root = kit.crafted(
        kit.document("inspection-declaration/valid.xml"),
        signature_algorithm=SignatureMethod.HMAC_SHA256,
        key=b"a secret nobody shares with the exchange",
    )
    return _bytes(root)


def bare_key_value(kit: Kit) -> bytes:
    return _bytes(kit.crafted(kit.document("forex-verification/valid.xml"), key=kit.key("ent-a")))


def key_value_mismatch(kit: Kit) -> bytes:
    root = kit.crafted(
        kit.document("forex-verification/valid.xml"), key=kit.key("ent-a"), cert=[kit.cert("ent-a")], always_add_key_value=True
    )
    modulus = root.find("ds:Signature/ds:KeyInfo/ds:KeyValue/ds:RSAKeyValue/ds:Modulus", NS)
    n = kit.cert("ent-b").public_key().public_numbers().n
    modulus.text = b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).decode()
    return _bytes(root)


def external_reference(kit: Kit) -> bytes:
    root = etree.fromstring(kit.signed("ent-a", kit.document("inspection-declaration/valid.xml")))
    root.find("ds:Signature/ds:SignedInfo/ds:Reference", NS).set("URI", "http://attacker.example/declaration.xml")
    return _bytes(root)


def tampered(kit: Kit) -> bytes:
    body = kit.signed("ent-a", kit.document("customs-declaration/valid.xml"))
    changed = body.replace(b"Hanseatic Elektronik Handels GmbH", b"Phantom Trading Ltd")
    assert changed != body
    return changed


def replayed_platform_receipt(kit: Kit) -> bytes:
    """A receipt the exchange signed, sent back in by the participant it was for."""
    body = kit.signed("customs", kit.document("agency-receipt/valid.xml"))
    user = kit.exchange.config.registry.get("customs").amqp_user
    disposition = build_pipeline(kit.exchange.config).process(Inbound(body, user_id=user))
    assert disposition.outcome == "accepted", disposition.reasons
    return next(p.body for p in disposition.publications if p.type == "PlatformReceipt")


def markup_in_value(kit: Kit, value: bytes, disguised: bytes) -> bytes:
    """The declaration with inspection required, one value written with a comment or PI inside it."""
    document = kit.document("customs-declaration/valid-with-inspection.xml")
    assert value in document
    return document.replace(value, disguised, 1)


def corpus(relative: str) -> Callable[[Kit], bytes]:
    def read(_kit: Kit) -> bytes:
        path = CORPUS / relative
        if not path.is_file():
            pytest.fail(f"corpus file {path} is missing: the shared corpus must sit beside the repository")
        return path.read_bytes()

    return read


@dataclass(frozen=True)
class Attack:
    """One attack: what it is, who sends it how, and where and why the exchange (or the broker) refuses it."""

    id: str
    what: str
    build: Callable[[Kit], bytes]
    stage: str
    code: str
    login: str = "ent-a"
    # The user_id property: the login's own broker user (the default), another participant's, or none.
    user_id: str | None = "self"

    @property
    def receipt_to(self) -> str | None:
        """Who gets the rejection receipt: the participant the broker vouches for, if any."""
        if self.stage == BROKER or self.user_id is None or self.login == DAEMON:
            return None
        return self.login


XSW_SAML = "xml-attacks-saml-xsw/responses"
XML_CRYPTO = "xmldsig-xml-crypto/static"

ATTACKS = [
    # Signature wrapping from public corpora, with SAML Response made a message type of this deployment
    # so that they reach signature verification instead of stopping at an unknown root.
    Attack("corpus-saml-xsw-1", f"XSW: {XSW_SAML}/invalids/signature_wrapping_attack.xml", corpus(f"{XSW_SAML}/invalids/signature_wrapping_attack.xml"), "verify", "signature.misplaced"),
    Attack("corpus-saml-xsw-2", f"XSW: {XSW_SAML}/invalids/signature_wrapping_attack2.xml", corpus(f"{XSW_SAML}/invalids/signature_wrapping_attack2.xml"), "verify", "signature.misplaced"),
    Attack("corpus-saml-xsw-response4", f"XSW: {XSW_SAML}/response4.xml", corpus(f"{XSW_SAML}/response4.xml"), "verify", "signature.misplaced"),
    Attack("corpus-saml-wrapped-response", f"XSW, signature moved into a foreign element: {XSW_SAML}/wrapped_response_2.xml", corpus(f"{XSW_SAML}/wrapped_response_2.xml"), "verify", "signature.misplaced"),
    Attack("corpus-saml-multiple-assertions", f"two assertions, one signed: {XSW_SAML}/invalids/multiple_assertions.xml", corpus(f"{XSW_SAML}/invalids/multiple_assertions.xml"), "verify", "signature.multiple"),
    Attack("corpus-saml-comment-injection", f"comment injection in a signed value: {XSW_SAML}/response_node_text_attack.xml", corpus(f"{XSW_SAML}/response_node_text_attack.xml"), "parse", "parse.markup-in-text"),
    Attack("corpus-xml-crypto-wrapping", f"XSW: {XML_CRYPTO}/valid_saml_signature_wrapping.xml", corpus(f"{XML_CRYPTO}/valid_saml_signature_wrapping.xml"), "verify", "signature.multiple"),
    Attack("corpus-xml-crypto-wrapped-signed-info", f"SignedInfo wrapped: {XML_CRYPTO}/saml_wrapped_signed_info_node.xml", corpus(f"{XML_CRYPTO}/saml_wrapped_signed_info_node.xml"), "verify", "signature.misplaced"),
    Attack("corpus-xml-crypto-two-signed-infos", f"two SignedInfo: {XML_CRYPTO}/saml_multiple_signed_info_nodes.xml", corpus(f"{XML_CRYPTO}/saml_multiple_signed_info_nodes.xml"), "verify", "signature.misplaced"),
    Attack("corpus-xml-crypto-hmac", f"HMAC signature: {XML_CRYPTO}/hmac_signature.xml (its root is no message type)", corpus(f"{XML_CRYPTO}/hmac_signature.xml"), "identify", "unknown-type"),
    # Wrapping crafted against this exchange's own documents.
    Attack("xsw-forged-declaration-in-object", "a forged declaration in a ds:Object of the signed declaration's signature", xsw_in_object, "verify", "signature.unsigned-content"),
    Attack("xsw-forged-declaration-in-key-info", "a forged declaration inside KeyInfo/X509Data", xsw_in_key_info, "verify", "signature.unsigned-content"),
    Attack("xsw-forged-root-original-in-object", "a forged declaration as root, the signed original moved into its signature's ds:Object", xsw_forged_root_original_in_object, "verify", "signature.unsigned-content"),
    Attack("xsw-signature-on-forged-root", "the signature of a signed declaration moved onto a forged one", xsw_forged_root_with_signature, "verify", "signature.invalid"),
    Attack("xsw-second-declaration-beside", "the signed declaration and a forged one side by side under the attacker's root", second_declaration_beside, "identify", "unknown-type"),
    Attack("xsw-signature-moved-into-child", "the signature moved from the root into dec:Head", xsw_signature_into_child, "validate", "xsd"),
    Attack("xsw-second-base-transfer", "a second, unsigned BaseTransfer naming another receiver", xsw_second_base_transfer, "validate", "xsd"),
    Attack("xsw-duplicate-ids", "a signature by reference to Id=\"D1\" and a forged element with the same Id", xsw_duplicate_ids, "validate", "xsd"),
    # Markup inside a signed value: receivers that stop at the first child node read another value.
    Attack("pi-hides-inspection", "a PI inside dec:InspectionRequired, signed, so the exchange would read '' and customs '1'", lambda kit: kit.signed("ent-a", markup_in_value(kit, b"<dec:InspectionRequired>1", b"<dec:InspectionRequired><?x?>1")), "parse", "parse.markup-in-text"),
    Attack("pi-hides-second-receiver", "a second ReceiverId whose value starts with a PI, signed", lambda kit: kit.signed("ent-a", markup_in_value(kit, b"<cm:ReceiverId>customs</cm:ReceiverId>", b"<cm:ReceiverId>customs</cm:ReceiverId><cm:ReceiverId><?x?>ent-b</cm:ReceiverId>")), "parse", "parse.markup-in-text"),
    Attack("comment-truncates-message-id", "a comment inside cm:MessageId, signed (the id of receipts and duplicate suppression)", lambda kit: kit.signed("ent-a", markup_in_value(kit, b"<cm:MessageId>ENTA-DEC", b"<cm:MessageId>ENTA<!---->-DEC")), "parse", "parse.markup-in-text"),
    Attack("tampered-after-signing", "the consignee changed after signing", tampered, "verify", "signature.invalid"),
    # Identity: signer, document and connection must be one participant.
    Attack("another-participants-signature", "ent-b's valid signature on a declaration naming ent-a, sent by ent-a", lambda kit: kit.signed("ent-b", kit.document("customs-declaration/valid.xml")), "authenticate", "identity.mismatch"),
    Attack("forged-sender", "ent-b signs and sends a declaration naming ent-a as its sender", lambda kit: kit.signed("ent-b", kit.document("inspection-declaration/valid.xml")), "authenticate", "identity.mismatch", login="ent-b"),
    Attack("replayed-over-another-connection", "ent-a's signed declaration sent in again over ent-b's connection", lambda kit: kit.signed("ent-a", kit.document("forex-verification/valid.xml")), "authenticate", "identity.mismatch", login="ent-b"),
    Attack("replayed-platform-receipt", "a receipt signed by the exchange sent back in as a message", replayed_platform_receipt, "verify", "signature.certificate", login="customs"),
    # Certificates: registered for ent-b (pinned), and still refused.
    Attack("self-signed-certificate", "a self-signed certificate naming ent-b, registered for ent-b", lambda kit: kit.signed_odd("self-signed", kit.document("forex-verification/valid.xml", "ent-b")), "verify", "certificate.untrusted", login="ent-b"),
    Attack("unregistered-self-signed-certificate", "a self-signed certificate naming ent-b, not registered", lambda kit: kit.signed_odd("unregistered", kit.document("forex-verification/valid.xml", "ent-b")), "verify", "signature.certificate", login="ent-b"),
    Attack("expired-certificate", "a certificate of the trusted CA that expired yesterday", lambda kit: kit.signed_odd("expired", kit.document("forex-verification/valid.xml", "ent-b")), "verify", "certificate.expired", login="ent-b"),
    Attack("not-yet-valid-certificate", "a certificate of the trusted CA valid from tomorrow", lambda kit: kit.signed_odd("not-yet-valid", kit.document("forex-verification/valid.xml", "ent-b")), "verify", "certificate.not-yet-valid", login="ent-b"),
    Attack("revoked-certificate", "a certificate on the trusted CA's CRL (keyCompromise)", lambda kit: kit.signed_odd("revoked", kit.document("forex-verification/valid.xml", "ent-b")), "verify", "certificate.revoked", login="ent-b"),
    Attack("certificate-not-for-signing", "a certificate whose keyUsage does not allow digital signatures", lambda kit: kit.signed_odd("no-digital-signature", kit.document("forex-verification/valid.xml", "ent-b")), "verify", "certificate.usage", login="ent-b"),
    Attack("certificate-under-a-stale-crl", "a certificate of a trusted CA whose CRL is past its nextUpdate", lambda kit: kit.signed_odd("stale-crl", kit.document("forex-verification/valid.xml", "ent-b")), "verify", "certificate.crl-stale", login="ent-b"),
    # Signature algorithms and KeyInfo.
    Attack("sha1-signature", "RSA-SHA1 signature with SHA-1 digest", sha1, "verify", "signature.algorithm"),
    Attack("hmac-keyed-with-public-certificate", "HMAC-SHA256 keyed with ent-a's public certificate, that certificate in KeyInfo", hmac_keyed_with_the_certificate, "verify", "signature.algorithm"),
    Attack("hmac-signature", "HMAC-SHA256 with no certificate at all", hmac_bare, "verify", "signature.algorithm"),
    Attack("bare-key-value", "a signature whose KeyInfo has only a KeyValue", bare_key_value, "verify", "signature.key-info"),
    Attack("key-value-not-matching", "a KeyValue naming ent-b's key beside ent-a's certificate", key_value_mismatch, "verify", "signature.key-info"),
    Attack("external-reference-uri", "a reference to http://attacker.example/declaration.xml", external_reference, "verify", "signature.reference"),
    Attack("unsigned", "a valid declaration with no signature", lambda kit: kit.document("inspection-declaration/valid.xml"), "verify", "signature.missing"),
    # The broker-validated user_id.
    Attack("missing-user-id", "ent-a publishes with pika, no user_id property", lambda kit: kit.signed("ent-a", kit.document("inspection-declaration/valid.xml")), "authenticate", "identity.no-user-id", user_id=None),
    Attack("missing-user-id-daemon-user", "the daemon's own broker user publishes with no user_id", lambda kit: kit.signed("ent-a", kit.document("customs-declaration/valid-with-inspection.xml")), "authenticate", "identity.no-user-id", login=DAEMON, user_id=None),
    Attack("daemon-user-as-sender", "the daemon's own broker user publishes with its own user_id", lambda kit: kit.signed("ent-a", kit.document("export-rebate-data/valid.xml")), "authenticate", "identity.unknown-user", login=DAEMON),
    Attack("mismatched-user-id", "ent-a publishes with user_id ent-b", lambda kit: kit.signed("ent-b", kit.document("forex-verification/valid.xml", "ent-b")), BROKER, "PRECONDITION_FAILED", user_id="ent-b"),
]


# Only the participants that send get a broker user (each costs several rabbitmqctl runs).
SENDERS = sorted({a.login for a in ATTACKS if a.login != DAEMON})


# ---- the deployment under attack --------------------------------------------------------------------------------


SAML_XSD = """<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema"
    targetNamespace="urn:oasis:names:tc:SAML:2.0:protocol" elementFormDefault="qualified">
  <xs:element name="Response">
    <xs:complexType>
      <xs:sequence><xs:any processContents="skip" minOccurs="0" maxOccurs="unbounded"/></xs:sequence>
      <xs:anyAttribute processContents="skip"/>
    </xs:complexType>
  </xs:element>
</xs:schema>
"""


def _catalogue_with_saml(directory: Path) -> Path:
    """The bundled catalogue plus SAML 2.0 Response, accepted by an XSD that checks nothing: onboarding by data."""
    bundled = PROJECT / "schemas" / "messages.yaml"
    data = yaml.safe_load(bundled.read_text())
    for spec in data["types"].values():
        spec["xsd"] = [str(bundled.parent / p) for p in ([spec["xsd"]] if isinstance(spec["xsd"], str) else spec["xsd"])]
    (directory / "saml-response.xsd").write_text(SAML_XSD)
    data["namespaces"].update(samlp="urn:oasis:names:tc:SAML:2.0:protocol", saml="urn:oasis:names:tc:SAML:2.0:assertion")
    data["types"]["SamlResponse"] = {
        "root": "samlp:Response",
        "xsd": str(directory / "saml-response.xsd"),
        "id": "@ID",
        "sender": "saml:Issuer",
    }
    path = directory / "messages.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _prepare(data: dict, exchange) -> None:
    """Register ent-b's odd certificates, trust a second CA whose CRL is overdue, and onboard SAML Response."""
    keys = exchange.keys_dir
    ca = Authority.of(keys)
    regional = Authority.create("regional exchange CA")
    odd = {
        "self-signed": self_signed("ent-b"),
        "expired": ca.issue("ent-b", not_before=NOW - timedelta(days=30), not_after=NOW - timedelta(days=1)),
        "not-yet-valid": ca.issue("ent-b", not_before=NOW + timedelta(days=1), not_after=NOW + timedelta(days=30)),
        "revoked": ca.issue("ent-b"),
        "no-digital-signature": ca.issue_with("ent-b", signing_extensions("ent-b", digital_signature=False)),
        "stale-crl": regional.issue("ent-b"),
    }
    for name, (key, cert) in {**odd, "unregistered": self_signed("ent-b")}.items():
        write_pem(keys / "ent-b" / f"{name}-key.pem", key)
        write_pem(keys / "ent-b" / f"{name}-cert.pem", cert)
    revoke_certificate(keys, odd["revoked"][1].serial_number, reason=x509.ReasonFlags.key_compromise)
    anchor = write_pem(keys / "regional" / "cert.pem", regional.certificate)
    overdue = write_pem(keys / "regional" / "crl.pem", regional.crl(next_update=NOW - timedelta(hours=1)))
    data["participants"]["ent-b"]["certificates"] = [
        str(keys / "ent-b" / "cert.pem"),
        *(str(keys / "ent-b" / f"{name}-cert.pem") for name in ODD_CERTIFICATES),
    ]
    data["trust"] = {
        "anchors": [str(keys / "ca" / "cert.pem"), str(anchor)],
        "crls": [str(keys / "ca" / "crl.pem"), str(overdue)],
        "identity_field": "CN",
    }
    data["messages"] = str(_catalogue_with_saml(exchange.config_path.parent))


@dataclass
class Outcomes:
    """What became of every attack: broker refusals, dead letters, and every mailbox's content."""

    bodies: dict[str, bytes]
    broker_refusals: dict[str, Exception]
    dead: list[tuple[dict, bytes]]
    mailboxes: dict[str, list]
    events: list[dict]
    control_digest: str


def _digest(body: bytes) -> str:
    return hashlib.sha256(body).hexdigest()


@pytest.fixture(scope="module")
def deployment(broker, tmp_path_factory):
    """The deployment under attack; ciq is kept out of the attacks, for the revocation-on-reload test."""
    return deploy(broker, tmp_path_factory.mktemp("security"), _prepare, users=[*SENDERS, "ciq"])


@pytest.fixture(scope="module")
def outcomes(broker, deployment) -> Outcomes:
    """Start the daemon, send every attack and one valid control message, collect where everything went."""
    exchange = deployment
    kit = Kit(exchange)
    bodies = {attack.id: attack.build(kit) for attack in ATTACKS}
    by_digest: dict[str, list[str]] = {}
    for attack_id, body in bodies.items():
        by_digest.setdefault(_digest(body), []).append(attack_id)
    same = [ids for ids in by_digest.values() if len(ids) > 1]
    assert not same, f"attacks sending the same bytes cannot be told apart: {same}"
    digests = list(by_digest)
    control = kit.signed("ent-a", kit.document("customs-declaration/valid.xml"))
    assert _digest(control) not in digests
    daemon_user = exchange.config.broker.daemon_user
    daemon = Daemon(exchange, exchange.url)
    refusals: dict[str, Exception] = {}
    try:
        daemon.wait_for("worker.consuming")
        for attack in ATTACKS:
            login = daemon_user if attack.login == DAEMON else attack.login
            user_id = attack.user_id
            if user_id == "self":
                user_id = daemon_user if attack.login == DAEMON else exchange.config.registry.get(login).amqp_user
            elif user_id is not None:
                user_id = exchange.config.registry.get(user_id).amqp_user
            try:
                publish(login_url(exchange, login), bodies[attack.id], user_id)
            except pika.exceptions.ChannelClosedByBroker as exc:
                refusals[attack.id] = exc
        publish(login_url(exchange, "ent-a"), control, exchange.config.registry.get("ent-a").amqp_user)
        reaching = sum(1 for attack in ATTACKS if attack.stage != BROKER)
        daemon.wait_for("message.rejected", count=reaching)
        daemon.wait_for("message.accepted")
    finally:
        # A graceful stop settles every message in flight: afterwards all that was published is in its queue.
        code = daemon.stop()
    assert code == 0, "".join(daemon.raw[-30:])
    boxes = {pid: mailbox(exchange, pid, count=None, wait=0.5, url=broker.url) for pid in exchange.config.registry.ids()}
    dead = drain_dead(broker.url)
    return Outcomes(bodies, refusals, dead, boxes, list(daemon.events), _digest(control))


def _receipts_for(outcomes: Outcomes, digest: str) -> dict[str, list]:
    return {
        pid: [m for m in messages if m.headers.get("x-exchanger-kind") == "receipt" and m.headers.get("x-exchanger-orig-digest") == digest]
        for pid, messages in outcomes.mailboxes.items()
    }


# ---- the tests --------------------------------------------------------------------------------------------------


@pytest.mark.parametrize("attack", ATTACKS, ids=[a.id for a in ATTACKS])
def test_attack_is_refused(outcomes, attack):
    body = outcomes.bodies[attack.id]
    digest = _digest(body)
    dead = [(headers, dead_body) for headers, dead_body in outcomes.dead if headers.get("x-exchanger-digest") == digest]
    receipts = {pid: found for pid, found in _receipts_for(outcomes, digest).items() if found}
    forwards = [
        (pid, m) for pid, messages in outcomes.mailboxes.items() for m in messages
        if m.headers.get("x-exchanger-kind") == "forward" and m.headers.get("x-exchanger-orig-digest") == digest
    ]
    assert forwards == [], f"{attack.id} was delivered to {[pid for pid, _ in forwards]}"
    if attack.stage == BROKER:
        refusal = outcomes.broker_refusals.get(attack.id)
        assert refusal is not None, f"the broker accepted {attack.id}"
        assert refusal.reply_code == 406 and attack.code in refusal.reply_text
        assert dead == [] and receipts == {}  # it never reached the exchange
        return
    assert attack.id not in outcomes.broker_refusals
    (headers, dead_body), = dead
    assert dead_body == body  # kept byte for byte
    reasons = json.loads(headers["x-exchanger-reasons"])
    assert (headers["x-exchanger-stage"], reasons[0]["code"]) == (attack.stage, attack.code), reasons
    if attack.receipt_to is None:
        assert receipts == {}, f"a receipt for {attack.id} went to {list(receipts)}"
    else:
        assert list(receipts) == [attack.receipt_to]
        (receipt,) = receipts[attack.receipt_to]
        assert receipt.headers["x-exchanger-status"] == "rejected"
        reason = etree.fromstring(receipt.body).find("{urn:eport:exchange:1}Reason")
        assert (reason.get("stage"), reason.get("code")) == (attack.stage, attack.code)


def test_nothing_but_the_control_message_was_delivered(outcomes):
    """The deployment does deliver (the control reached customs), and delivered nothing else."""
    delivered = {
        (pid, m.headers.get("x-exchanger-orig-digest"))
        for pid, messages in outcomes.mailboxes.items()
        for m in messages
        if m.headers.get("x-exchanger-kind") != "receipt"
    }
    assert delivered == {("customs", outcomes.control_digest)}
    receipts = [m for messages in outcomes.mailboxes.values() for m in messages if m.headers.get("x-exchanger-kind") == "receipt"]
    assert all(m.headers["x-exchanger-status"] == "rejected" for m in receipts if m.headers.get("x-exchanger-orig-digest") != outcomes.control_digest)


def test_a_stale_crl_raises_the_operator_alert(outcomes):
    stale = [e for e in outcomes.events if e.get("event") == "trust.crl_stale"]
    assert stale and stale[0]["level"] == "error" and "regional exchange CA" in stale[0]["issuer"]


def test_a_certificate_revoked_while_running_is_refused_after_a_reload(broker, deployment):
    """`keys revoke` regenerates the CRL; SIGHUP makes the running daemon read it."""
    exchange = deployment
    kit = Kit(exchange)
    body = kit.signed("ciq", (SAMPLES / "inspection-certificate/valid.xml").read_bytes())
    url, user = login_url(exchange, "ciq"), exchange.config.registry.get("ciq").amqp_user
    daemon = Daemon(exchange, exchange.url)
    try:
        daemon.wait_for("worker.consuming")
        publish(url, body, user)
        daemon.wait_for("message.accepted")
        revoke_certificate(exchange.keys_dir, kit.cert("ciq").serial_number, reason=x509.ReasonFlags.key_compromise)
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for("config.reloaded")
        publish(url, body, user)
        daemon.wait_for("message.rejected")
    finally:
        assert daemon.stop() == 0
    statuses = [m.headers["x-exchanger-status"] for m in mailbox(exchange, "ciq", count=None, wait=0.5, url=broker.url)]
    assert statuses == ["accepted", "rejected"]
    assert len(mailbox(exchange, "customs", count=None, wait=0.5, url=broker.url)) == 1  # the copy made before
    (headers, _), = [d for d in drain_dead(broker.url) if d[0].get("x-exchanger-digest") == _digest(body)]
    assert json.loads(headers["x-exchanger-reasons"])[0]["code"] == "certificate.revoked"


# ---- SECURITY.md ---------------------------------------------------------------------------------------------------

BEGIN, END = "<!-- attack-table:begin -->", "<!-- attack-table:end -->"
TABLE_HEADER = ["| attack | expected outcome | stage / code | test |", "|---|---|---|---|"]


def _outcome(attack: Attack) -> str:
    if attack.stage == BROKER:
        return "refused by the broker (channel closed, 406); never reaches the exchange"
    receipt = f"receipt to {attack.receipt_to}" if attack.receipt_to else "no receipt (the broker vouches for no participant)"
    return f"rejected: dead letter, {receipt}, nothing delivered"


def table_rows() -> list[str]:
    """The attack table SECURITY.md must hold, one row per attack, in ATTACKS order."""
    return [
        f"| {a.what.replace('|', '/')} | {_outcome(a)} | `{a.stage}` / `{a.code}` | `test_attack_is_refused[{a.id}]` |"
        for a in ATTACKS
    ]


def test_security_md_lists_every_attack_as_the_suite_checks_it():
    """SECURITY.md's table is exactly the suite's: set EXCHANGER_WRITE_SECURITY_TABLE=1 to regenerate it."""
    text = SECURITY_MD.read_text()
    assert BEGIN in text and END in text, f"{SECURITY_MD} lacks the {BEGIN} ... {END} markers"
    head, rest = text.split(BEGIN, 1)
    _, tail = rest.split(END, 1)
    wanted = "\n".join(["", *TABLE_HEADER, *table_rows(), ""])
    if os.environ.get("EXCHANGER_WRITE_SECURITY_TABLE") == "1":
        SECURITY_MD.write_text(head + BEGIN + wanted + END + tail)
        return
    rows = [line for line in rest.split(END, 1)[0].splitlines() if line.startswith("|")][2:]
    listed = {re.search(r"test_attack_is_refused\[([\w-]+)\]", row).group(1): row for row in rows}
    suite = {attack.id: row for attack, row in zip(ATTACKS, table_rows())}
    assert set(listed) - set(suite) == set(), "SECURITY.md lists attacks the suite does not run"
    assert set(suite) - set(listed) == set(), "the suite runs attacks SECURITY.md does not list"
    for attack_id, row in suite.items():
        assert listed[attack_id] == row, f"SECURITY.md's row for {attack_id} differs from what the suite checks"
