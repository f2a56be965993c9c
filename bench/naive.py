"""The naive peer: what an integrator writes by hand to do the exchange's job on the same queues.

pika's BlockingConnection; `basic_get` one message at a time; xmlschema (pure Python) to validate;
signxml's XMLVerifier to verify the sender's signature against its certificate and XMLSigner to
sign the forwarding envelope (the original in base64, as the exchange does) and the receipt; each
publication waits for its own publisher confirm (one round trip per publish); then the ack. No
certificate chain, revocation, routing table, message log or metrics: it does less than the exchange.
"""

from __future__ import annotations

import base64
import multiprocessing
import time
from dataclasses import dataclass
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
XSD = {
    "CustomsDeclaration": ROOT / "schemas/xsd/customs-declaration.xsd",
    "CargoManifest": ROOT / "schemas/xsd/cargo-manifest.xsd",
}


@dataclass
class Naive:
    label: str
    processes: int
    messages: int
    seconds: float

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0


def _peer(admin_url: str, message_type: str, keys_dir: str, sender: str, algorithm: str, barrier, results) -> None:
    import pika
    import xmlschema
    from lxml import etree
    from signxml import CanonicalizationMethod, SignatureMethod, XMLSigner, XMLVerifier

    from exchanger.transport.names import INBOUND_QUEUE, MAILBOX_EXCHANGE

    keys = Path(keys_dir)
    schema = xmlschema.XMLSchema(str(XSD[message_type]))
    sender_cert = (keys / sender / "cert.pem").read_text()
    platform_key = (keys / "eport" / "key.pem").read_bytes()
    platform_cert = (keys / "eport" / "cert.pem").read_text()
    method = SignatureMethod.ECDSA_SHA256 if algorithm == "ec" else SignatureMethod.RSA_SHA256
    connection = pika.BlockingConnection(pika.URLParameters(admin_url))
    channel = connection.channel()
    channel.confirm_delivery()
    properties = pika.BasicProperties(delivery_mode=2, content_type="application/xml")

    def signed(root) -> bytes:
        signer = XMLSigner(signature_algorithm=method, c14n_algorithm=CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0)
        return etree.tostring(signer.sign(root, key=platform_key, cert=platform_cert), xml_declaration=True, encoding="UTF-8")

    barrier.wait()
    started = time.perf_counter()
    done = 0
    while True:
        method_frame, _props, body = channel.basic_get(INBOUND_QUEUE)
        if method_frame is None:
            break
        document = etree.fromstring(body)
        schema.validate(document)
        XMLVerifier().verify(document, x509_cert=sender_cert)
        forward = etree.Element("{urn:eport:exchange:1}ExchangeMessage")
        etree.SubElement(forward, "{urn:eport:exchange:1}Data").text = base64.b64encode(body).decode()
        channel.basic_publish(MAILBOX_EXCHANGE, "customs", signed(forward), properties, mandatory=True)
        receipt = etree.Element("{urn:eport:exchange:1}PlatformReceipt")
        etree.SubElement(receipt, "{urn:eport:exchange:1}Status").text = "accepted"
        channel.basic_publish(MAILBOX_EXCHANGE, sender, signed(receipt), properties, mandatory=True)
        channel.basic_ack(method_frame.delivery_tag)
        done += 1
    elapsed = time.perf_counter() - started
    connection.close()
    results.put((done, elapsed))


def measure(deployment, batch, *, processes: int, label: str) -> Naive:
    """Preload the batch and let ``processes`` naive peers drain it; messages/s over the slowest peer's time."""
    deployment.purge(batch.sender, "customs")
    deployment.preload(batch.sender, batch.bodies)
    context = multiprocessing.get_context("spawn")
    barrier, results = context.Barrier(processes), context.Queue()
    peers = [
        context.Process(target=_peer, args=(deployment.admin_url, batch.message_type, str(deployment.keys_dir),
                                            batch.sender, deployment.algorithm, barrier, results))
        for _ in range(processes)
    ]
    for peer in peers:
        peer.start()
    outcomes = [results.get(timeout=1800) for _ in peers]
    for peer in peers:
        peer.join(30)
    return Naive(label, processes, sum(o[0] for o in outcomes), max(o[1] for o in outcomes))
