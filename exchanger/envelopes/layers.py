"""Check every signature of a message in a national envelope (DxpMsg) or of a DxpRep, as a receiver would."""

from __future__ import annotations

import binascii

from cryptography.hazmat.primitives.serialization import Encoding

from exchanger.catalogue import SIGNED_BY_ENVELOPE, FieldError, FieldRefused
from exchanger.dsig.encoding import decode_base64
from exchanger.dsig.layers import Layer
from exchanger.dsig.verifier import SignatureError, Verifier
from exchanger.envelope import Envelope, Inbound
from exchanger.envelopes.dxp import NS as DXP_NS
from exchanger.envelopes.formats import EXCHANGE, EnvelopeFormat
from exchanger.outcome import Rejected
from exchanger.receipts import ceb900
from exchanger.pipeline.stages.identify import Identify
from exchanger.pipeline.stages.parse import Parse
from exchanger.pipeline.stages.validate import Validate
from exchanger.pipeline.stages.verify import Verify
from exchanger.xml.parser import HostileXML, parse_untrusted

_DS = "{http://www.w3.org/2000/09/xmldsig#}"
_CERT_PATH = f"{_DS}Signature/{_DS}KeyInfo/{_DS}X509Data/{_DS}X509Certificate"
DXP_REP = f"{{{DXP_NS}}}DxpRep"
_WHITESPACE = dict.fromkeys(map(ord, " \t\r\n"))


def _signed_by_platform(root, config) -> bool:
    """Whether the signature names the platform's own certificate (then it is checked against that alone)."""
    node = root.find(_CERT_PATH)
    if node is None or config.platform.certificate is None:
        return False
    try:
        der = decode_base64(node.text, "the X509Certificate")
    except SignatureError:
        return False
    return der == config.platform.certificate.public_bytes(Encoding.DER)


def _platform_layer(root, config, what: str) -> tuple[Layer, object]:
    try:
        verified = Verifier(config.signatures).verify(root, [config.platform.certificate])
    except SignatureError as exc:
        return Layer(what, False, f"{exc.code}: {exc}"), None
    return Layer(what, True, f"signed by the exchange ({config.platform.id})"), verified.signed_root


def _participant_layer(data: bytes, tree, config, what: str) -> tuple[Layer, object, str | None]:
    outer = Envelope(Inbound(data), tree=tree)
    try:
        Verify.for_config(config)(outer)
    except Rejected as exc:
        return Layer(what, False, str(exc)), None, None
    return Layer(what, True, f"signed by {outer.signer.id}"), outer.signed_root, outer.signer.id


def _carried(envelope_format: EnvelopeFormat, signed_root) -> tuple[Layer | None, bytes | None]:
    try:
        fields = envelope_format.reader.field_values(signed_root)
    except (FieldError, FieldRefused) as exc:
        return Layer("payload", False, str(exc)), None
    compact = fields.get("payload", "").translate(_WHITESPACE)
    try:
        return None, binascii.a2b_base64(compact, strict_mode=True)
    except (binascii.Error, ValueError) as exc:
        return Layer("payload", False, f"the {envelope_format.name} envelope's payload is not base64: {exc}"), None


def _written_by_the_exchange(inner: Envelope) -> bool:
    """Whether the carried message is a format receipt (CEB900), which only the exchange writes."""
    return inner.tree is not None and inner.tree.getroot().tag == f"{{{ceb900.NS}}}{ceb900.ROOT}"


def _agreement(envelope_format: EnvelopeFormat, signed_root, original: bytes, config, envelope_signer: str) -> list[Layer]:
    """The sender's signature inside, and the envelope's sender and type against that signed message."""
    inner = Envelope(Inbound(original))
    try:
        for stage in (Parse(config.limits.max_message_bytes, config.limits), Identify(config.catalogue)):
            stage(inner)
    except Rejected as exc:
        if envelope_signer == config.platform.id and _written_by_the_exchange(inner):
            return [Layer("receipt", True, "a CEB900Message the exchange wrote, signed by the envelope it travels in")]
        return [Layer("sender", False, str(exc))]
    # A type whose schema has no place for a signature is signed by its envelope, as the daemon takes it.
    by_envelope = inner.message_type.signed_by == SIGNED_BY_ENVELOPE
    try:
        Validate()(inner)
        if by_envelope:
            inner.signed_root = inner.tree.getroot()
        else:
            Verify.for_config(config)(inner)
    except Rejected as exc:
        return [Layer("sender", False, str(exc))]
    if by_envelope:
        # Not "sender": that layer is judged again on the message's own signature, which it cannot have.
        sender_layer = Layer("message", True, f"no signature of its own (none has a place in a {inner.message_type.name}): "
                                              f"the envelope's, by {envelope_signer}")
    else:
        sender_layer = Layer("sender", True, f"signed by {inner.signer.id}")
    try:
        named = inner.message_type.sender(inner.signed_root)
        reader = envelope_format.reader
        sender, declared = reader.sender(signed_root), reader.field_values(signed_root).get("message_type")
    except (FieldError, FieldRefused) as exc:
        return [Layer("envelope", False, f"its fields cannot be read: {exc}"), sender_layer]
    expected = envelope_format.type_name(inner.message_type)
    problems = []
    if sender != named:
        problems.append(f"the envelope names sender {sender!r} but the message inside names {named!r}")
    if declared != expected:
        problems.append(f"the envelope says the message is {declared!r} but the message inside is {expected!r}")
    if problems:
        return [Layer("envelope", False, "; ".join(problems)), sender_layer]
    return [Layer("envelope", True, f"agrees with the message inside: {expected} from {named}"), sender_layer]


def verify_envelope_layers(data: bytes, config) -> tuple[list[Layer], bytes | None] | None:
    """Every signature of a DxpRep or of a message in a catalogue envelope other than the exchange's, and the
    carried message's bytes; None for any other document."""
    try:
        tree = parse_untrusted(data)
    except HostileXML:
        return None
    root = tree.getroot()
    if root.tag == DXP_REP:
        return [_platform_layer(root, config, "platform")[0]], None
    envelope_format = next((f for f in config.envelopes if f.root == root.tag and f.shape != EXCHANGE), None)
    if envelope_format is None:
        return None
    if _signed_by_platform(root, config):
        layer, signed_root = _platform_layer(root, config, "platform")
        envelope_signer = config.platform.id
    else:
        layer, signed_root, envelope_signer = _participant_layer(data, tree, config, "envelope signature")
    layers = [layer]
    if signed_root is None:
        return layers, None
    problem, original = _carried(envelope_format, signed_root)
    if problem is not None:
        return [*layers, problem], None
    return [*layers, *_agreement(envelope_format, signed_root, original, config, envelope_signer)], original
