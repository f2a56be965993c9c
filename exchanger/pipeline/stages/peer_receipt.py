"""Stage after parse: a receipt a peer e-port sends back for a message relayed to it goes on to the sender here."""

from __future__ import annotations

from collections.abc import Mapping

from exchanger.envelope import Envelope
from exchanger.outcome import Reason, Rejected
from exchanger.pipeline.disposition import ACCEPTED, Disposition, Publication
from exchanger.participants import Participant, Registry
from exchanger.pipeline.stages.authenticate import connection_identity
from exchanger.pipeline.stages.validate import MAX_REPORTED
from exchanger.pipeline.stages.verify import Verify
from exchanger.receipts.formats import ReceiptFormat, receipt_format_at
from exchanger.transport.names import MAILBOX_EXCHANGE
from exchanger.xml.schema import CompiledSchema

MAX_ANSWERED = 255  # a DXP CopMsgId holds at most 255 characters


class PeerReceipt(Exception):
    """A peer's signed receipt for one of this exchange's participants: delivered as it is, never answered."""

    def __init__(self, answer: ReceiptFormat, peer: Participant, addressee: Participant, answered: str | None):
        self.format = answer.name
        self.peer = peer
        self.addressee = addressee
        self.answered = answered
        super().__init__(f"{answer.name} from the peer e-port {peer.id} for {addressee.id}")


class PeerReceipts:
    """A receipt (DxpRep, PlatformReceipt) from a peer e-port is checked and passed on, whole, to whom it answers.

    It must be valid against its format's schema, signed by the peer's platform (its registered certificate,
    judged in the peer's domain) and answer a participant of this exchange. A refused one is dead-lettered without a receipt of its own: a
    receipt is never answered, so two exchanges can never answer each other's answers in a loop. Any other
    message passes through untouched.
    """

    name = "peer-receipt"

    def __init__(
        self,
        registry: Registry,
        daemon_user: str,
        verify: Verify,
        platform_id: str = "",
        schemas: Mapping[str, CompiledSchema] | None = None,
    ):
        self.registry = registry
        self.daemon_user = daemon_user
        self.verify = verify
        self.platform_id = platform_id
        # Receipt format name -> the schema that declares it (that of the envelope it answers).
        self.schemas = dict(schemas or {})

    @classmethod
    def for_config(cls, config, verify: Verify) -> PeerReceipts:
        """The stage for a configuration: each receipt format checked against the schema of the envelope it answers."""
        schemas = {f.receipt: f.reader.schema for f in config.envelopes if f.reader is not None}
        return cls(config.registry, config.broker.daemon_user, verify, config.platform.id, schemas)

    def _reject(self, code: str, message: str) -> Rejected:
        return Rejected(Reason(self.name, code, message))

    def __call__(self, envelope: Envelope) -> None:
        root = envelope.tree.getroot()
        answer = receipt_format_at(root)
        if answer is None:
            return
        peer = connection_identity(envelope.inbound, self.registry, self.daemon_user)
        if peer is None or not peer.external:
            return
        envelope.connected_as = peer
        envelope.unanswered = True
        self._validate(envelope, answer)
        signed = Envelope(envelope.inbound, tree=envelope.tree)
        try:
            self.verify(signed)
        except Rejected as exc:
            raise Rejected(
                [Reason(self.name, r.code, f"the {answer.name}'s signature: {r.message}") for r in exc.reasons]
            ) from None
        if signed.signer.id != peer.id:
            raise self._reject(
                "identity.mismatch",
                f"the {answer.name} is signed by {signed.signer.id}, not by the peer e-port {peer.id} that sent it",
            )
        named = (signed.signed_root.findtext(answer.addressee) or "").strip()
        addressee = self.registry.get(named)
        if named and named == self.platform_id:
            # The peer refused this platform's own envelope (say, a revoked platform certificate): no
            # participant here is named, so the operators get it, in the dead letters, with this reason.
            raise self._reject(
                "relay.for-platform",
                f"the {answer.name} from the peer e-port {peer.id} answers this platform ({named}) itself: "
                "the peer refused the envelope, not a participant's message; kept for the operators",
            )
        if addressee is None or addressee.external:
            raise self._reject(
                "relay.unknown-addressee",
                f"the {answer.name} from the peer e-port {peer.id} answers {named or 'nobody'!r}, "
                "who is not a participant of this exchange",
            )
        answered = (signed.signed_root.findtext(answer.answered) or "").strip()[:MAX_ANSWERED] or None
        raise PeerReceipt(answer, peer, addressee, answered)

    def _validate(self, envelope: Envelope, answer: ReceiptFormat) -> None:
        """Nothing invalid passes, a peer's receipt included: refused with each violation's line and path."""
        schema = self.schemas.get(answer.name)
        if schema is None:
            raise self._reject("receipt.no-schema", f"no schema of this exchange declares the {answer.name} receipt")
        found = schema.capped_violations(envelope.tree, envelope.inbound.body, MAX_REPORTED)
        if found.violations:
            raise Rejected([Reason(self.name, "xsd", v.message, line=v.line, path=v.path) for v in found.violations])


def peer_receipt_disposition(envelope: Envelope, receipt: PeerReceipt, config_version: str) -> Disposition:
    """The peer's receipt, byte for byte as its platform signed it, in the mailbox of the participant it answers.

    Logged as a copy under the route ``receipt-from-<peer>``, so that the message log and ``trace`` show the hop.
    """
    route = f"receipt-from-{receipt.peer.id}"
    headers = {
        "x-exchanger-kind": "forward",
        "x-exchanger-message-type": receipt.format,
        "x-exchanger-sender": receipt.peer.id,
        "x-exchanger-route": route,
        "x-exchanger-relayed-by": receipt.peer.id,
        "x-exchanger-orig-digest": envelope.digest,
        "x-exchanger-config-version": config_version,
    }
    if receipt.answered:
        headers["x-exchanger-answers"] = receipt.answered
        headers["x-exchanger-orig-message-id"] = receipt.answered
    forward = Publication(
        MAILBOX_EXCHANGE,
        receipt.addressee.id,
        envelope.inbound.body,
        message_id=envelope.inbound.message_id or envelope.digest[:32],
        correlation_id=receipt.answered,
        type=receipt.format,
        headers=headers,
    )
    context = {"digest": envelope.digest[:16], "sender": receipt.peer.id, "type": receipt.format,
               "routes": route, "to": receipt.addressee.id, "relayed_by": receipt.peer.id}
    if receipt.answered:
        context["message_id"] = receipt.answered
    return Disposition(ACCEPTED, (forward,), context=context)
