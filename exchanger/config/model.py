"""The checked, compiled configuration the exchange runs on."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path

from cryptography import x509

from exchanger.catalogue import Catalogue
from exchanger.participants import Registry
from exchanger.routing import RoutingTable

DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024


@dataclass(frozen=True)
class Limits:
    """Bounds on what one message may cost."""

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES


@dataclass(frozen=True)
class BrokerSettings:
    """How the daemon uses the broker."""

    delivery_limit: int = 5
    prefetch: int = 200
    heartbeat: int = 30
    daemon_user: str = "exchanger"


@dataclass(frozen=True)
class MetricsSettings:
    """Where the daemon serves /metrics, /healthz and /readyz."""

    bind: str = "127.0.0.1"
    port: int = 9464


@dataclass(frozen=True)
class Platform:
    """The exchange's own identity: what it signs forwards and receipts with."""

    id: str
    name: str
    key_path: Path
    certificate_path: Path
    certificate: x509.Certificate | None = field(default=None, repr=False)


@dataclass(frozen=True)
class Config:
    """Everything one version of the configuration decides."""

    path: Path
    version: str
    keys_dir: Path
    platform: Platform
    registry: Registry
    catalogue: Catalogue
    table: RoutingTable
    limits: Limits = Limits()
    broker: BrokerSettings = BrokerSettings()
    metrics: MetricsSettings = MetricsSettings()

    def password_file(self, user: str) -> Path:
        """Where the generated broker password of a participant (or the daemon) lives."""
        return self.keys_dir / user / "amqp-password"
