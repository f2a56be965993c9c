"""Which RabbitMQ the exchange talks to, and what that changes for its queues and dead letters."""

from __future__ import annotations

import re
from dataclasses import dataclass

# Streams came in 3.9 and at-least-once dead-lettering from quorum queues in 3.10: the exchange needs both.
MINIMUM = (3, 10)


@dataclass(frozen=True)
class BrokerVersion:
    """The product and version a broker announced when the connection opened."""

    product: str
    version: str

    @property
    def parts(self) -> tuple[int, ...]:
        """The leading numbers of the version (3.10.8 -> (3, 10, 8)); () when it has none."""
        match = re.match(r"\d+(?:\.\d+)*", self.version)
        return tuple(int(n) for n in match.group(0).split(".")) if match else ()

    def __str__(self) -> str:
        return f"{self.product} {self.version}"

    def differences(self) -> list[str]:
        """What this version changes for the exchange's topology, in words for the log and the operator."""
        parts = self.parts
        notes = []
        if parts and parts < MINIMUM:
            notes.append(
                "older than 3.10: no at-least-once dead-lettering from quorum queues, so a dead letter "
                "can be lost between a queue and the dead-letter stream; upgrade the broker"
            )
        if parts >= (4, 0):
            notes.append(
                "4.x: a quorum queue declared without a delivery limit gets a default of 20; "
                "every queue of the exchange declares its own"
            )
            notes.append("4.x: classic queue mirroring is gone; the exchange uses only quorum queues and a stream")
        if parts >= (4, 3):
            notes.append(
                "4.3+: basic.nack with requeue no longer counts towards the delivery limit; the worker "
                "hands a failed delivery back with basic.reject, which does"
            )
        return notes


def broker_version(connection) -> BrokerVersion | None:
    """The version a pika connection's broker announced (blocking or asynchronous), or None if it said none."""
    impl = getattr(connection, "_impl", connection)
    properties = getattr(impl, "server_properties", None) or {}
    version = properties.get("version")
    if version is None:
        return None
    product = properties.get("product", "broker")
    decode = lambda value: value.decode(errors="replace") if isinstance(value, bytes) else str(value)  # noqa: E731
    return BrokerVersion(decode(product), decode(version))
