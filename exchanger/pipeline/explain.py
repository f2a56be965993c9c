"""What the daemon would do with one document, found by running the daemon's own stages (for ``routes explain``)."""

from __future__ import annotations

from dataclasses import dataclass, field, replace

from lxml import etree

from exchanger.catalogue import FieldError, FieldRefused
from exchanger.config import Config
from exchanger.envelope import Envelope, Inbound
from exchanger.outcome import Rejected
from exchanger.participants import Participant
from exchanger.pipeline.runner import checking_stages
from exchanger.pipeline.stages.route import Route
from exchanger.routing import RouteDecision
from exchanger.routing.table import RuleVerdict
from exchanger.xml.parser import parse_untrusted

DS_SIGNATURE = "{http://www.w3.org/2000/09/xmldsig#}Signature"

# Stands for the connection of an unsigned document whose named sender is no participant: the identity
# checks then refuse it for what the document names, exactly as they would a signed one.
_NOBODY = Participant(id="", kind="", name="no participant", amqp_user="(nobody)")


@dataclass
class Explanation:
    """The daemon's verdict on a document, and why each rule does or does not apply."""

    envelope: Envelope
    signed: bool = False
    unsigned_refusal: Rejected | None = None  # what the daemon says of an unsigned file, before any routing
    rejected: Rejected | None = None  # the refusal the daemon gives (for a signed file) or would give once signed
    verdicts: list[RuleVerdict] = field(default_factory=list)
    decision: RouteDecision | None = None


def unsigned_signed_root(root: etree._Element) -> etree._Element:
    """The tree the verify stage would hand on had the document been signed: its c14n without comments, re-parsed."""
    return parse_untrusted(etree.tostring(root, method="c14n", exclusive=True, with_comments=False)).getroot()


def explain_document(config: Config, body: bytes) -> Explanation:
    """Run parse, unwrap, identify, validate, verify (when signed) and authenticate as the daemon does, then routing.

    A signed document is taken as published by its signer; an unsigned one is verified by nobody,
    so the daemon refuses it (``unsigned_refusal``), and routing is shown as if the sender it names
    had signed and published it.
    """
    envelope = Envelope(Inbound(body))
    explanation = Explanation(envelope)
    try:
        # In the daemon's order, whatever stages it gains: only verify is stood in for, and only when unsigned.
        for stage in checking_stages(config):
            if stage.name == "verify":
                _verify(stage, config, explanation)
            else:
                stage(envelope)
        explanation.verdicts = config.table.explain(
            envelope.message_type.name, envelope.sender, envelope.receivers, envelope.signed_root, envelope.fields
        )
        Route(config.table, config.registry, config.platform.id)(envelope)
        explanation.decision = envelope.decision
    except Rejected as exc:
        explanation.rejected = exc
    return explanation


def _verify(stage, config: Config, explanation: Explanation) -> None:
    """Verify a signed document as the daemon does; for an unsigned one, note the refusal and stand in for the signer."""
    envelope = explanation.envelope
    root = envelope.tree.getroot()
    explanation.signed = next(root.iter(DS_SIGNATURE), None) is not None
    if explanation.signed:
        stage(envelope)
        # A relayed message is published by the peer e-port whose platform signed its envelope.
        publisher = envelope.carrier.signer if envelope.signer.relayed_by is not None else envelope.signer
    else:
        explanation.unsigned_refusal = _refusal(stage, envelope)
        envelope.signed_root = unsigned_signed_root(root)
        publisher = _named_participant(config, envelope) or _NOBODY
        envelope.signer = publisher
        envelope.connected_as = publisher
    # As if the signer (or, unsigned, the sender it names) had published it over its own connection.
    envelope.inbound = replace(envelope.inbound, user_id=publisher.amqp_user)


def _refusal(stage, envelope: Envelope) -> Rejected | None:
    try:
        stage(envelope)
    except Rejected as exc:
        return exc
    return None


def _named_participant(config: Config, envelope: Envelope) -> Participant | None:
    # Read through the one reader; a field it refuses is refused again, with its reason, by authenticate.
    try:
        named = envelope.message_type.sender(envelope.signed_root)
    except (FieldError, FieldRefused):
        return None
    return config.registry.get(named) if named else None
