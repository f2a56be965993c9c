"""The checked, compiled configuration the exchange runs on."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field, fields
from pathlib import Path

from cryptography import x509

from exchanger.catalogue import Catalogue
from exchanger.config.console import ConsoleSettings
from exchanger.dsig.methods import SignatureSettings
from exchanger.envelopes.formats import EnvelopeCatalogue
from exchanger.keys.domains import TrustDomain
from exchanger.keys.trust import TrustStore
from exchanger.participants import Registry
from exchanger.routing import RoutingTable
from exchanger.xml.limits import StructuralLimits

DEFAULT_MAX_MESSAGE_BYTES = 10 * 1024 * 1024


def file_stamps(files) -> dict[Path, float]:
    """Modification times of files (-1 for a missing one)."""
    stamps = {}
    for path in files:
        try:
            stamps[path] = path.stat().st_mtime_ns
        except OSError:
            stamps[path] = -1
    return stamps


@dataclass(frozen=True)
class Limits(StructuralLimits):
    """Bounds on what one message may cost: its size, checked first, then its shape (exchanger.xml.limits)."""

    max_message_bytes: int = DEFAULT_MAX_MESSAGE_BYTES

    @classmethod
    def keys(cls) -> tuple[str, ...]:
        """The keys routes.yaml's ``limits:`` section accepts, one per field."""
        return tuple(f.name for f in fields(cls))


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
class JournalSettings:
    """Where the message log is kept, which originals it archives, and how often the platform signs it."""

    url: str = "sqlite:///var/journal.db"  # the loader makes a relative SQLite path absolute, from the config's folder
    keep_originals: str = "rejected"  # rejected | all | none
    checkpoint_records: int = 1000
    checkpoint_seconds: int = 60
    retention_seconds: int | None = None  # what `exchanger log prune` removes when not told --older-than


@dataclass(frozen=True)
class LinkSettings:
    """Where a peer e-port's copies go: its broker and virtual host, as the user it registered for this exchange."""

    peer_id: str
    url: str  # without the password, which is read from password_file when the link is applied
    password_file: Path
    reconnect_delay: int = 5


@dataclass(frozen=True)
class Platform:
    """The exchange's own identity: what it signs forwards and receipts with."""

    id: str
    name: str
    key_path: Path
    certificate_path: Path
    certificate: x509.Certificate | None = field(default=None, repr=False)
    node_id: str | None = None  # its DXP node id, named in the receipts it writes (at most 8 characters)


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
    journal: JournalSettings = JournalSettings()
    files: tuple[Path, ...] = ()  # every file this version was read from, for change detection
    trust: TrustStore | None = field(default=None, repr=False)  # anchors and CRLs that signers must chain to
    signatures: SignatureSettings = SignatureSettings()  # per key family: the SM2 signer ID and encoding
    links: tuple[LinkSettings, ...] = ()  # one per peer e-port that copies are shovelled to
    domains: Mapping[str, TrustDomain] = field(default_factory=dict)  # peer e-port id -> what it is trusted for
    envelopes: EnvelopeCatalogue = field(default_factory=lambda: EnvelopeCatalogue([]))  # transport envelopes
    console: ConsoleSettings = ConsoleSettings()  # the operators' web console

    def files_changed_since(self, stamps: dict[Path, float]) -> bool:
        """True when any file this configuration was read from changed (or appeared, or vanished)."""
        return stamps != file_stamps(self.files)

    def password_file(self, user: str) -> Path:
        """Where the generated broker password of a participant (or the daemon) lives."""
        return self.keys_dir / user / "amqp-password"
