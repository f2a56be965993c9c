"""Check every signature layer of a document as a receiver would: the platform's, and the sender's inside it."""

from __future__ import annotations

import hashlib
from dataclasses import dataclass

from exchanger.dsig.verifier import SignatureError, Verifier
from exchanger.envelope import Envelope, Inbound
from exchanger.outcome import Rejected
from exchanger.pipeline.stages.verify import Verify
from exchanger.platform_documents import NS, read_exchange_message
from exchanger.xml.parser import HostileXML, parse_untrusted

_FORWARD = f"{{{NS}}}ExchangeMessage"
_RECEIPT = f"{{{NS}}}PlatformReceipt"


@dataclass(frozen=True)
class Layer:
    """The outcome of checking one signature."""

    layer: str
    ok: bool
    detail: str


def _platform_layer(tree, config, verifier: Verifier) -> Layer:
    try:
        verifier.verify(tree.getroot(), [config.platform.certificate])
    except SignatureError as exc:
        return Layer("platform", False, f"{exc.code}: {exc}")
    return Layer("platform", True, f"signed by the exchange ({config.platform.id})")


def _sender_layer(data: bytes, config) -> Layer:
    envelope = Envelope(Inbound(data))
    try:
        envelope.tree = parse_untrusted(data)
        Verify.for_config(config)(envelope)
    except HostileXML as exc:
        return Layer("sender", False, f"{exc.code}: {exc}")
    except Rejected as exc:
        return Layer("sender", False, str(exc))
    return Layer("sender", True, f"signed by {envelope.signer.id}")


def verify_layers(data: bytes, config) -> tuple[list[Layer], bytes | None]:
    """Check every signature a document carries; also return the sender's original bytes of a forward."""
    try:
        tree = parse_untrusted(data)
    except HostileXML as exc:
        return [Layer("document", False, f"{exc.code}: {exc}")], None
    tag = tree.getroot().tag
    if tag == _RECEIPT:
        return [_platform_layer(tree, config, Verifier(config.signatures))], None
    if tag != _FORWARD:
        return [_sender_layer(data, config)], None
    fields = read_exchange_message(tree.getroot())
    original = fields["original"]
    layers = [_platform_layer(tree, config, Verifier(config.signatures))]
    if hashlib.sha256(original).hexdigest() != (fields.get("Digest") or "").lower():
        layers.append(Layer("payload", False, "the carried document does not match the envelope's digest"))
    layers.append(_sender_layer(original, config))
    return layers, original
