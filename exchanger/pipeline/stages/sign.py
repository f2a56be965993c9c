"""Stage 7: wrap the sender's document in each receiver's envelope and sign it with the platform key."""

from __future__ import annotations

from lxml import etree

from exchanger.dsig.signer import Signer
from exchanger.envelope import Envelope
from exchanger.envelopes.formats import EXCHANGE, EnvelopeCatalogue
from exchanger.envelopes.forwarding import Forwarding
from exchanger.envelopes.shapes import SHAPES
from exchanger.participants import Registry
from exchanger.pipeline.decision import Copy
from exchanger.pipeline.stages.relay import received_path, written_path


class Sign:
    """Platform-signed envelopes for every copy: one ExchangeMessage listing them all, one DxpMsg per DXP receiver.

    Which envelope a receiver takes is its ``envelope:`` in routes.yaml; the envelope catalogue says
    which adapter writes it. Receivers check both signatures: the platform's and the sender's inside.
    """

    name = "sign"

    def __init__(self, signer: Signer, config_version: str, envelopes: EnvelopeCatalogue | None = None,
                 registry: Registry | None = None, platform_id: str = ""):
        self.signer = signer
        self.config_version = config_version
        self.envelopes = envelopes or EnvelopeCatalogue([])
        self.registry = registry
        self.platform_id = platform_id
        self.peers = frozenset(p.id for p in registry or () if p.external)

    def _envelope_of(self, participant_id: str) -> str:
        participant = self.registry.get(participant_id) if self.registry is not None else None
        return participant.envelope if participant is not None else EXCHANGE

    def __call__(self, envelope: Envelope) -> None:
        deliveries = envelope.decision.deliveries
        carrier = envelope.carrier
        forwarding = Forwarding(
            sender=envelope.sender.id,
            message_id=envelope.message_id,
            message_type=envelope.message_type,
            document=envelope.body,
            digest=envelope.digest,
            received_at=envelope.inbound.received_at,
            config_version=self.config_version,
            deliveries=deliveries,
            created=carrier.fields.get("created") if carrier is not None else None,
            relay_path=written_path(received_path(envelope), self.platform_id),
            peers=self.peers,
        )
        groups: dict[str, list] = {}
        for delivery in deliveries:
            groups.setdefault(self._envelope_of(delivery.to), []).append(delivery)
        copies: dict[str, Copy] = {}
        for name, group in groups.items():
            envelope_format = self.envelopes.get(name)
            for shaped in SHAPES[envelope_format.shape](forwarding, envelope_format, tuple(group)):
                # Each envelope was built just now for this message alone, so it is signed without a copy.
                signed = self.signer.sign(shaped.root, in_place=True)
                body = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
                for delivery in shaped.deliveries:
                    copies[delivery.final] = Copy(
                        delivery.to, delivery.route, delivery.approval, name, shaped.document_id, body, delivery.addressee
                    )
        envelope.copies = tuple(copies[delivery.final] for delivery in deliveries)
