"""Stage 5: the broker-validated user, the sender the document names and the signer must be one participant."""

from __future__ import annotations

from collections.abc import Mapping

from exchanger.catalogue import FieldError, FieldRefused
from exchanger.envelope import Envelope, Inbound
from exchanger.outcome import Reason, Rejected
from exchanger.keys.domains import TrustDomain
from exchanger.participants import Participant, Registry
from exchanger.pipeline.stages.relay import check_relayed, relay_path
from exchanger.transport.dead_letters import REPLAY_USER


def connection_identity(inbound: Inbound, registry: Registry, daemon_user: str) -> Participant | None:
    """The participant the broker authenticated for this message.

    An operator's replay of a dead letter is published by the daemon's own user, which alone may
    name the original sender (the broker guarantees the user_id, so no participant can do this).
    """
    if inbound.user_id == daemon_user and inbound.headers.get(REPLAY_USER):
        return registry.by_user(str(inbound.headers[REPLAY_USER]))
    return registry.by_user(inbound.user_id) if inbound.user_id else None


class Authenticate:
    """One entry, one identity: connection, document and certificate agree, or the message is refused."""

    name = "authenticate"

    def __init__(self, registry: Registry, daemon_user: str, domains: Mapping[str, TrustDomain] | None = None,
                 platform_id: str = ""):
        self.registry = registry
        self.daemon_user = daemon_user
        self.domains = dict(domains or {})
        self.platform_id = platform_id

    @classmethod
    def for_config(cls, config) -> Authenticate:
        """The stage as a configuration builds it: its participants, daemon user, peers' domains and platform id."""
        return cls(config.registry, config.broker.daemon_user, config.domains, config.platform.id)

    def _reject(self, code: str, message: str) -> Rejected:
        return Rejected(Reason(self.name, code, message))

    def __call__(self, envelope: Envelope) -> None:
        try:
            self._authenticate(envelope)
        except FieldError as exc:
            raise self._reject("catalogue.field-error", str(exc)) from None
        except FieldRefused as exc:
            raise Rejected(Reason(self.name, exc.code, exc.message, path=exc.path)) from None

    def _authenticate(self, envelope: Envelope) -> None:
        message_type = envelope.message_type
        signed = envelope.signed_root
        envelope.message_id = message_type.message_id(signed)
        envelope.answers = message_type.answers(signed)
        named = message_type.sender(signed)
        user_id = envelope.inbound.user_id
        if not user_id:
            raise self._reject(
                "identity.no-user-id",
                "the message has no AMQP user_id; publish with user_id set to your broker user name",
            )
        connected = envelope.connected_as or connection_identity(envelope.inbound, self.registry, self.daemon_user)
        if connected is None:
            raise self._reject("identity.unknown-user", f"broker user {user_id!r} is not a participant")
        envelope.connected_as = connected
        if not envelope.message_id:
            raise self._reject("identity.no-message-id", f"the {message_type.name} names no message id")
        if not named:
            raise self._reject("identity.no-sender", f"the {message_type.name} names no sender")
        if envelope.signer.relayed_by is not None:
            self._relayed(envelope, named, connected)
            return
        sender = self.registry.get(named)
        if sender is None:
            raise self._reject("identity.unknown-sender", f"the document's sender {named!r} is not a participant")
        receivers = message_type.receivers(signed)
        reasons = []
        if envelope.carrier is not None:
            reasons, receivers = carrier_disagreements(envelope, named, receivers)
        mismatches = []
        if sender.id != connected.id:
            mismatches.append(f"the document names sender {sender.id} but the connection is {connected.id}'s")
        if envelope.signer.id != connected.id:
            mismatches.append(f"the signature is {envelope.signer.id}'s but the connection is {connected.id}'s")
        carrier = envelope.carrier
        if carrier is not None and carrier.signer.id != connected.id:
            mismatches.append(
                f"the {carrier.format.name} envelope's signature is {carrier.signer.id}'s but the connection is {connected.id}'s"
            )
        if mismatches:
            reasons.append(Reason(self.name, "identity.mismatch", "; ".join(mismatches)))
        if reasons:
            raise Rejected(reasons)
        envelope.sender = sender
        envelope.receivers = receivers
        envelope.fields = message_type.field_values(signed)

    def _relayed(self, envelope: Envelope, named: str, connected: Participant) -> None:
        """A message a peer e-port relays: its member signed it, the peer's platform the envelope around it."""
        signer, carrier = envelope.signer, envelope.carrier
        reasons, receivers = carrier_disagreements(envelope, named, envelope.message_type.receivers(envelope.signed_root))
        reasons += check_relayed(
            named, carrier.signer, connected, self.domains[carrier.signer.id], self.registry,
            relay_path(carrier.fields.get("relay_path")), self.platform_id,
        )
        if signer.id != named:
            reasons.append(Reason(self.name, "identity.mismatch",
                                  f"the document names sender {named} but the signature is {signer.id}'s"))
        if reasons:
            raise Rejected(reasons)
        envelope.sender = signer
        envelope.receivers = receivers
        envelope.fields = envelope.message_type.field_values(envelope.signed_root)


def carrier_disagreements(envelope: Envelope, named: str, receivers: list[str]) -> tuple[list[Reason], list[str]]:
    """Where the envelope and the message it carries disagree, each with both values; and the receivers to route to.

    The envelope's sender and type must be the message's. A message that names no receivers goes to those
    its envelope names; one that names receivers must name the same ones.
    """
    carrier = envelope.carrier
    kind = carrier.format.name
    reasons = []

    def disagree(message: str) -> None:
        reasons.append(Reason("authenticate", "envelope.mismatch", message))

    if carrier.sender != named:
        disagree(f"the {kind} envelope names sender {carrier.sender!r} but the message inside names {named!r}")
    expected_type = carrier.format.type_name(envelope.message_type)
    if carrier.message_type != expected_type:
        disagree(
            f"the {kind} envelope says the message is {carrier.message_type!r} but the message inside is "
            f"{expected_type!r} ({envelope.message_type.name})"
        )
    if not receivers:
        receivers = list(carrier.receivers)
    elif set(receivers) != set(carrier.receivers):
        disagree(
            f"the {kind} envelope names receivers {', '.join(carrier.receivers) or '(none)'} but the message inside "
            f"names {', '.join(receivers)}"
        )
    return reasons, receivers
