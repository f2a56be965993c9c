"""Stage after parse: open a transport envelope (such as dxp:DxpMsg), checked as a message is, to the message inside."""

from __future__ import annotations

import binascii

from lxml import etree

from exchanger.catalogue import FieldError, FieldRefused
from exchanger.envelope import Envelope, Inbound
from exchanger.envelopes.formats import Carrier, EnvelopeCatalogue
from exchanger.outcome import Reason, Rejected
from exchanger.pipeline.stages.parse import Parse
from exchanger.pipeline.stages.validate import MAX_REPORTED
from exchanger.pipeline.stages.verify import Verify
from exchanger.xml.parser import HARDENED_OPTIONS

_WHITESPACE = dict.fromkeys(map(ord, " \t\r\n"))


class Unwrap:
    """A message in an inbound envelope is checked in two layers: the envelope here, the message it carries after.

    The envelope must be valid against its schema and signed by a registered participant; its fields are
    then read from the signed content, the payload decoded (bounded before decoding, in one linear pass)
    and parsed with the same limits as any message. The stages after this one judge the carried message;
    authenticate checks that the envelope and the message inside agree. A document in no inbound envelope
    passes through untouched.
    """

    name = "unwrap"

    def __init__(self, envelopes: EnvelopeCatalogue, verify: Verify, parse: Parse):
        self.envelopes = envelopes
        self.verify = verify
        self.parse = parse

    def _reject(self, code: str, message: str, line: int | None = None, path: str | None = None) -> Rejected:
        return Rejected(Reason(self.name, code, message, line=line, path=path))

    def __call__(self, envelope: Envelope) -> None:
        root = envelope.tree.getroot()
        envelope_format = self.envelopes.inbound_for_root(root.tag)
        if envelope_format is None:
            return
        carrier = envelope.carrier = Carrier(envelope_format, tree=envelope.tree)
        reader = envelope_format.reader
        # Read as received, only so that a receipt can echo what the sender sent; read again once signed.
        self._read(carrier, root, trusted=False)
        found = reader.schema.capped_violations(envelope.tree, envelope.inbound.body, MAX_REPORTED)
        if found.violations:
            raise Rejected(
                [Reason(self.name, "envelope.xsd", _clipped(v.message), line=v.line, path=v.path) for v in found.violations]
            )
        outer = Envelope(envelope.inbound, tree=envelope.tree)
        try:
            self.verify(outer)
        except Rejected as exc:
            what = f"the {etree_local(root.tag)} envelope's signature"
            raise Rejected([Reason(self.name, r.code, f"{what}: {r.message}", r.line, r.path) for r in exc.reasons]) from None
        carrier.signer = outer.signer
        carrier.signed_root = outer.signed_root
        self._read(carrier, outer.signed_root, trusted=True)
        payload = carrier.fields.get("payload", "")
        carrier.payload = self._decode(payload, envelope_format.name)
        inner = Envelope(Inbound(carrier.payload))
        self.parse(inner)
        envelope.document = carrier.payload
        envelope.tree = inner.tree

    def _read(self, carrier: Carrier, root, *, trusted: bool) -> None:
        reader = carrier.format.reader
        try:
            carrier.message_id = reader.message_id(root)
            carrier.sender = reader.sender(root)
            carrier.fields = reader.field_values(root)
            carrier.message_type = carrier.fields.get("message_type")
            carrier.receivers = reader.receivers(root)
        except FieldError as exc:
            if trusted:
                raise self._reject("catalogue.field-error", str(exc)) from None
        except FieldRefused as exc:
            if trusted:
                raise self._reject(exc.code, exc.message, path=exc.path) from None

    def _decode(self, text: str, name: str) -> bytes:
        """The payload's bytes: bounded by the message size limit before decoding, strict base64, linear."""
        compact = text.translate(_WHITESPACE)
        limit = self.parse.max_bytes
        if limit is not None and len(compact) // 4 * 3 > limit:
            raise self._reject(
                "envelope.payload-size",
                f"the {name} envelope's payload decodes to about {len(compact) // 4 * 3} bytes, "
                f"over the limit of {limit} bytes",
            )
        if not compact:
            raise self._reject("envelope.payload-empty", f"the {name} envelope carries no message")
        try:
            return binascii.a2b_base64(compact, strict_mode=True)
        except (binascii.Error, ValueError) as exc:
            raise self._reject("envelope.payload-base64", f"the {name} envelope's payload is not base64: {exc}") from None


_SNIFF_BYTES = 64 * 1024
MAX_REASON = 500  # a schema error quotes the value it refuses, and Data may be megabytes of it


def _clipped(message: str) -> str:
    return message if len(message) <= MAX_REASON else message[: MAX_REASON - 1] + "…"


def sniff_carrier(envelopes: EnvelopeCatalogue, body: bytes) -> Carrier | None:
    """For a message refused before it could be parsed: the inbound envelope its first element opens, if any.

    Only the first start tag within the first 64 KiB is read, with the hardened parser's options, to
    choose the receipt format that answers it; nothing else is read or decided on it.
    """
    parser = etree.XMLPullParser(events=("start",), **HARDENED_OPTIONS)
    try:
        parser.feed(body[:_SNIFF_BYTES])
    except etree.XMLSyntaxError:
        pass  # the events read before the error are still there
    for _, element in parser.read_events():
        found = envelopes.inbound_for_root(element.tag)
        return Carrier(found) if found is not None else None
    return None


def etree_local(tag: str) -> str:
    """The local name of a Clark-notation tag."""
    return tag.rpartition("}")[2]
