"""The broker names every part of the exchange agrees on."""

INBOUND_EXCHANGE = "exchanger.inbound"
INBOUND_QUEUE = "exchanger.inbound"
INBOUND_ROUTING_KEY = "inbound"
MAILBOX_EXCHANGE = "exchanger.mailbox"
MAILBOX_PREFIX = "mailbox."
DEAD_EXCHANGE = "exchanger.dead"
DEAD_QUEUE = "exchanger.dead"


def mailbox_queue(participant_id: str) -> str:
    """The queue a participant's deliveries and receipts wait in."""
    return MAILBOX_PREFIX + participant_id
