"""The broker names every part of the exchange agrees on."""

INBOUND_EXCHANGE = "exchanger.inbound"
INBOUND_QUEUE = "exchanger.inbound"
INBOUND_ROUTING_KEY = "inbound"
MAILBOX_EXCHANGE = "exchanger.mailbox"
MAILBOX_PREFIX = "mailbox."
DEAD_EXCHANGE = "exchanger.dead"
# A RabbitMQ stream: reading it never removes or requeues anything, so no delivery limit can drop a dead letter.
DEAD_LETTERS = "exchanger.dead-letters"
# Before the stream, dead letters waited in a quorum queue of this name; `exchanger dead migrate` empties it.
LEGACY_DEAD_QUEUE = "exchanger.dead"


def mailbox_queue(participant_id: str) -> str:
    """The queue a participant's deliveries and receipts wait in."""
    return MAILBOX_PREFIX + participant_id
