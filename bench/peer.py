"""The honest peer: the bridge a competent integrator writes in a day to do the exchange's job.

Asynchronous pika (one SelectConnection per process, the exchange's prefetch), lxml's XSD
validation, signxml to verify the sender's signature against its certificate and to sign both the
forwarding envelope (the original in base64, as the exchange forwards it) and a receipt for the
sender, every message; both published persistent and ``mandatory`` with pipelined publisher
confirms; the inbound delivery acked once both are confirmed. No certificate chain, revocation,
routing table, duplicate check, message log or metrics: it still does less than the exchange.
Run as ``python -m bench.peer URL PREFETCH KEYS_DIR ALGORITHM USER=PARTICIPANT...`` (one process
per worker); the benchmark drains the same backlog through it as through the exchange.
"""

from __future__ import annotations

import base64
import sys
from pathlib import Path

import pika
from cryptography.hazmat.primitives import serialization
from lxml import etree

from bench.ceiling import Bridge
from bench.processes import ModuleProcesses
from exchanger.transport.names import MAILBOX_EXCHANGE

ROOT = Path(__file__).resolve().parents[1]
XSD = {
    "CustomsDeclaration": ROOT / "schemas/xsd/customs-declaration.xsd",
    "CargoManifest": ROOT / "schemas/xsd/cargo-manifest.xsd",
}
NS = "urn:eport:exchange:1"


class Peer(Bridge):
    """The ceiling's bridge with the XML work done in its consume callback."""

    def __init__(self, url: str, prefetch: int, senders: dict[str, str], keys_dir: Path, algorithm: str):
        super().__init__(url, prefetch, senders)
        from signxml import CanonicalizationMethod, SignatureMethod, XMLSigner, XMLVerifier

        self.schemas = {}
        for path in XSD.values():
            schema = etree.XMLSchema(etree.parse(str(path)))
            self.schemas[etree.parse(str(path)).getroot().get("targetNamespace")] = schema
        self.certificates = {pid: (keys_dir / pid / "cert.pem").read_text() for pid in senders.values()}
        # Loaded once: signxml would parse (and check) an RSA key given as PEM on every signature, 50 ms each.
        self.key = serialization.load_pem_private_key((keys_dir / "eport" / "key.pem").read_bytes(), password=None)
        self.certificate = (keys_dir / "eport" / "cert.pem").read_text()
        self.method = SignatureMethod.ECDSA_SHA256 if algorithm == "ec" else SignatureMethod.RSA_SHA256
        self.c14n = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
        self.signer_class, self.verifier = XMLSigner, XMLVerifier()

    def signed(self, root) -> bytes:
        signer = self.signer_class(signature_algorithm=self.method, c14n_algorithm=self.c14n)
        return etree.tostring(signer.sign(root, key=self.key, cert=self.certificate), xml_declaration=True,
                              encoding="UTF-8")

    def _on_message(self, _channel, method, properties, body: bytes) -> None:
        sender = self.senders.get(properties.user_id or "", "")
        document = etree.fromstring(body)
        schema = self.schemas.get(etree.QName(document).namespace)
        status = "accepted"
        try:
            if schema is None:
                raise ValueError("no schema for this document")
            schema.assertValid(document)
            self.verifier.verify(document, x509_cert=self.certificates[sender])
        except Exception:  # noqa: BLE001 - a bad message gets a rejection receipt, as from the exchange
            status = "rejected"
        copies = []
        if status == "accepted":
            forward = etree.Element(f"{{{NS}}}ExchangeMessage")
            etree.SubElement(forward, f"{{{NS}}}Sender").text = sender
            etree.SubElement(forward, f"{{{NS}}}Data").text = base64.b64encode(body).decode()
            copies.append(("customs", self.signed(forward), {"x-exchanger-kind": "forward",
                                                            "x-exchanger-orig-message-id": properties.message_id or ""}))
        receipt = etree.Element(f"{{{NS}}}PlatformReceipt")
        etree.SubElement(receipt, f"{{{NS}}}MessageId").text = properties.message_id or ""
        etree.SubElement(receipt, f"{{{NS}}}Status").text = status
        copies.append((sender, self.signed(receipt), {"x-exchanger-kind": "receipt"}))
        self.outstanding[method.delivery_tag] = len(copies)
        for routing_key, payload, headers in copies:
            self.seq += 1
            self.pending[self.seq] = method.delivery_tag
            self.channel.basic_publish(
                MAILBOX_EXCHANGE, routing_key, payload,
                pika.BasicProperties(delivery_mode=2, content_type="application/xml", message_id=properties.message_id,
                                     headers=headers),
                mandatory=True,
            )


class Peers(ModuleProcesses):
    """W peer processes, run like the daemon's W workers."""

    def __init__(self, url: str, prefetch: int, senders: dict[str, str], processes: int, keys_dir: Path, algorithm: str):
        arguments = [url, str(prefetch), str(keys_dir), algorithm, *(f"{user}={pid}" for user, pid in senders.items())]
        super().__init__("bench.peer", arguments, processes)


def main() -> None:
    url, prefetch, keys_dir, algorithm, *pairs = sys.argv[1:]
    Peer(url, int(prefetch), dict(pair.split("=", 1) for pair in pairs), Path(keys_dir), algorithm).run()


if __name__ == "__main__":
    main()
