"""Stage 7: wrap the sender's document in the forwarding envelope and sign it with the platform key."""

from __future__ import annotations

from lxml import etree

from exchanger.dsig.signer import Signer
from exchanger.envelope import Envelope
from exchanger.platform_documents import derived_id, exchange_message


class Sign:
    """One platform-signed envelope per message, listing every copy; receivers check both signatures."""

    name = "sign"

    def __init__(self, signer: Signer, config_version: str):
        self.signer = signer
        self.config_version = config_version

    def __call__(self, envelope: Envelope) -> None:
        message_type = envelope.message_type.name
        envelope.forward_id = derived_id("forward", envelope.sender.id, envelope.message_id, envelope.digest)
        unsigned = exchange_message(
            message_id=envelope.forward_id,
            orig_message_id=envelope.message_id,
            message_type=message_type,
            sender=envelope.sender.id,
            deliveries=envelope.decision.deliveries,
            received_at=envelope.inbound.received_at,
            config_version=self.config_version,
            digest=envelope.digest,
            original=envelope.inbound.body,
        )
        # The envelope was built just now for this message alone, so it is signed without a copy.
        signed = self.signer.sign(unsigned, in_place=True)
        envelope.forward = etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
