"""Load YAML configuration into a checked Config, collecting every problem instead of stopping at the first.

One loader serves the daemon, `routes check` and reload: the file is read with its lines kept
(yaml_source), checked against its schema (schema), then compiled and cross-checked: the catalogue
(messages), who signs (identities) and the routing rules (routes).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchanger.catalogue import Catalogue
from exchanger.config.console import ConsoleSettings, console_from
from exchanger.config.digest import Digest
from exchanger.config.domains import domains_from
from exchanger.config.envelopes import check_envelopes, load_envelopes
from exchanger.config.identities import check_signers, platform_from, registry_from, trust_from
from exchanger.config.links import links_from
from exchanger.config.messages import as_list, catalogue_from, load_catalogue
from exchanger.config.model import BrokerSettings, Config, JournalSettings, Limits, MetricsSettings
from exchanger.config.problems import ConfigError, Problems
from exchanger.config.problems import positive_int as _positive_int
from exchanger.config.routes import routes_from
from exchanger.config.schema import check_catalogue_file, check_routes_file
from exchanger.config.yaml_source import read_yaml
from exchanger.dsig.methods import SignatureSettings, Sm2Settings
from exchanger.errors import ExchangerError
from exchanger.journal.period import parse_period
from exchanger.keys.trust import TrustStore

__all__ = [
    "CertificateFile",
    "ConfigError",
    "catalogue_path_of",
    "load_catalogue",
    "load_config",
    "read_identities",
    "read_journal_settings",
    "read_console_settings",
    "read_metrics_address",
    "read_trust",
]


def _read_checked(path: Path, problems: Problems) -> dict[str, Any]:
    """The configuration file, checked against its schema; raise when it cannot be read at all."""
    data = read_yaml(path, problems)
    problems.raise_if_any()
    check_routes_file(data, path, problems)
    return data


def _metrics_from(section: dict, problems: Problems) -> MetricsSettings:
    """Where the daemon serves /metrics, /healthz and /readyz."""
    port = section.get("port", MetricsSettings.port)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        problems.add("metrics.port", f"must be a TCP port number (0 picks a free one), not {port!r}")
        port = MetricsSettings.port
    return MetricsSettings(bind=str(section.get("bind", MetricsSettings.bind)), port=port)


def _signatures_from(section: Any, problems: Problems) -> SignatureSettings:
    """The settings of each key family: for SM2 the signer ID and SignatureValue layout (GM/T 0009's ID, raw r || s)."""
    spec = section.get("sm2") if isinstance(section, dict) else None
    spec = spec if isinstance(spec, dict) else {}
    signer_id = spec.get("signer_id", Sm2Settings.signer_id)
    encoding = spec.get("encoding", Sm2Settings.encoding)
    try:
        return SignatureSettings(sm2=Sm2Settings(signer_id=str(signer_id), encoding=str(encoding)))
    except (ValueError, ExchangerError) as exc:
        # The schema has said what is wrong already; here only what it cannot see (UTF-8 length) is left.
        problems.add("signatures.sm2", str(exc))
        return SignatureSettings()


KEEP_ORIGINALS = ("rejected", "all", "none")


def _journal_url(url: Any, base: Path, problems: Problems) -> str:
    """A SQLite path relative to the config's folder made absolute; a PostgreSQL URL as given."""
    if not isinstance(url, str) or not url:
        problems.add("journal.url", f"must be sqlite:///PATH or postgresql://..., not {url!r}")
        return JournalSettings.url
    scheme, _, rest = url.partition("://")
    if scheme.lower() in ("postgresql", "postgres"):
        return url
    if scheme.lower() != "sqlite" or not rest.startswith("/") or len(rest) < 2:
        problems.add("journal.url", f"must be sqlite:///PATH (relative to {base}) or postgresql://..., not {url!r}")
        return JournalSettings.url
    # sqlite:///relative and sqlite:////absolute, as SQLAlchemy reads them.
    return f"sqlite:///{(base / rest[1:]).resolve()}"


def _journal_from(section: Any, base: Path, problems: Problems) -> JournalSettings:
    """The message log's store, what it archives, how often it is signed, and how long it is kept."""
    if not isinstance(section, dict):
        problems.add("journal", "must be a mapping with url, keep_originals, checkpoint and retention")
        section = {}
    keep = section.get("keep_originals", JournalSettings.keep_originals)
    if keep not in KEEP_ORIGINALS:
        problems.add("journal.keep_originals", f"must be one of {', '.join(KEEP_ORIGINALS)}, not {keep!r}")
        keep = JournalSettings.keep_originals
    checkpoint = section.get("checkpoint") or {}
    if not isinstance(checkpoint, dict):
        problems.add("journal.checkpoint", "must be a mapping: {records: N, seconds: T}")
        checkpoint = {}
    retention = section.get("retention")
    retention_seconds = None
    if retention is not None:
        try:
            retention_seconds = parse_period(str(retention))
        except ValueError as exc:
            problems.add("journal.retention", str(exc))
    return JournalSettings(
        url=_journal_url(section.get("url", JournalSettings.url), base, problems),
        keep_originals=keep,
        checkpoint_records=_positive_int(
            checkpoint, "records", JournalSettings.checkpoint_records, "journal.checkpoint", problems
        ),
        checkpoint_seconds=_positive_int(
            checkpoint, "seconds", JournalSettings.checkpoint_seconds, "journal.checkpoint", problems
        ),
        retention_seconds=retention_seconds,
    )


def _read_section(path: Path, name: str, build):
    """One section of a configuration, checked, without loading the rest (ConfigError with its problems)."""
    problems = Problems()
    data = _read_checked(path, problems)
    problems.raise_if_any()
    settings = build(data.get(name) or {}, problems)
    problems.raise_if_any()
    return settings


def read_journal_settings(path: Path | str) -> JournalSettings:
    """Read only the ``journal:`` section: for the log commands, which must work even when routes do not load."""
    path = Path(path).resolve()
    return _read_section(path, "journal", lambda section, problems: _journal_from(section, path.parent, problems))


def load_config(path: Path | str) -> Config:
    """Load, compile and check the whole configuration, or raise ConfigError with every problem."""
    path = Path(path).resolve()
    base = path.parent
    problems = Problems()
    digest = Digest()
    digest.add_file(path)
    data = _read_checked(path, problems)

    keys_dir = base / str(data.get("keys_dir", "keys"))
    messages = data.get("messages")
    if isinstance(messages, str):
        messages_path = base / messages
        digest.add_file(messages_path)
        messages_data = read_yaml(messages_path, problems)
        check_catalogue_file(messages_data, messages_path, problems)
        catalogue = catalogue_from(messages_data, messages_path.parent, str(messages_path), problems, digest)
    elif isinstance(messages, dict):
        catalogue = catalogue_from(messages, base, "messages", problems, digest)
    else:
        problems.add("messages", "must name the catalogue file or hold the catalogue inline")
        catalogue = Catalogue([], {})

    envelopes = load_envelopes(data.get("envelopes"), base, problems, digest)
    platform = platform_from(data, base, keys_dir, problems, digest)
    registry = registry_from(data, base, keys_dir, problems, digest)
    check_envelopes(envelopes, catalogue, registry, platform.id, problems)
    if platform.id in registry:
        problems.add("platform.id", f"{platform.id!r} is also a participant id; the platform's identity must be its own")
    domains = domains_from(data, base, registry, problems, digest)
    table = routes_from(data, catalogue, registry, problems, domains)
    links = links_from(data, base, keys_dir, registry, problems)
    trust = trust_from(data, base, keys_dir, problems, digest)
    check_signers(trust, platform, registry, problems)
    # The verify stage is built from the registry alone; it finds the store the registry was checked against.

    limits_data = data.get("limits") or {}
    broker_data = data.get("broker") or {}
    limits = Limits(**{key: _positive_int(limits_data, key, getattr(Limits, key), "limits", problems) for key in Limits.keys()})
    broker = BrokerSettings(
        delivery_limit=_positive_int(broker_data, "delivery_limit", BrokerSettings.delivery_limit, "broker", problems),
        prefetch=_positive_int(broker_data, "prefetch", BrokerSettings.prefetch, "broker", problems),
        heartbeat=_positive_int(broker_data, "heartbeat", BrokerSettings.heartbeat, "broker", problems),
        daemon_user=str(broker_data.get("daemon_user", BrokerSettings.daemon_user)),
    )
    metrics = _metrics_from(data.get("metrics") or {}, problems)
    journal = _journal_from(data.get("journal") or {}, base, problems)
    signatures = _signatures_from(data.get("signatures") or {}, problems)
    console = console_from(data.get("console") or {}, base, problems)
    problems.raise_if_any()
    return Config(
        path=path,
        version=digest.hexdigest(),
        keys_dir=keys_dir,
        platform=platform,
        registry=registry,
        catalogue=catalogue,
        table=table,
        limits=limits,
        broker=broker,
        metrics=metrics,
        journal=journal,
        files=tuple(dict.fromkeys(digest.files)),
        trust=trust,
        signatures=signatures,
        links=links,
        domains=domains,
        envelopes=envelopes,
        console=console,
    )


def read_identities(path: Path | str) -> tuple[Path, tuple[str, str], list[tuple[str, str]], str]:
    """Read who the configuration names, without loading keys: for ``keys init``, before any key exists.

    Returns the keys directory, the platform (id, name), every participant (id, name) and the daemon's broker user.
    """
    path = Path(path).resolve()
    problems = Problems()
    data = _read_checked(path, problems)
    problems.raise_if_any()
    platform = data.get("platform") or {}
    participants = [
        (str(pid), str((spec or {}).get("name", pid))) for pid, spec in (data.get("participants") or {}).items()
    ]
    daemon_user = str((data.get("broker") or {}).get("daemon_user", BrokerSettings.daemon_user))
    keys_dir = path.parent / str(data.get("keys_dir", "keys"))
    return keys_dir, (str(platform.get("id", "eport")), str(platform.get("name", "Electronic Port"))), participants, daemon_user


def read_signature_settings(path: Path | str) -> SignatureSettings:
    """The ``signatures:`` section alone, for commands that sign as a participant without loading everything."""
    return _read_section(Path(path), "signatures", _signatures_from)


def read_metrics_address(path: Path | str) -> tuple[str, int]:
    """Where a configuration says the daemon serves its HTTP endpoint, without loading anything else."""
    settings = _read_section(Path(path), "metrics", _metrics_from)
    return settings.bind, settings.port


def read_console_settings(path: Path | str) -> ConsoleSettings:
    """The ``console:`` section alone: for ``console users``, which must work even when routes do not load."""
    path = Path(path).resolve()
    return _read_section(path, "console", lambda section, problems: console_from(section, path.parent, problems))


def catalogue_path_of(path: Path | str) -> Path | None:
    """The catalogue file a configuration names, or None when the catalogue is inline."""
    path = Path(path).resolve()
    problems = Problems()
    messages = _read_checked(path, problems).get("messages")
    problems.raise_if_any()
    return path.parent / messages if isinstance(messages, str) else None


@dataclass(frozen=True)
class CertificateFile:
    """A certificate file the configuration names, whose it is, and the private key kept beside it, if any."""

    owner: str
    platform: bool
    path: Path
    key_path: Path | None


def read_trust(path: Path | str) -> tuple[TrustStore, list[CertificateFile], list[str]]:
    """Read the trust section and where every certificate is, compiling nothing else; return the problems found.

    For ``keys list`` and ``keys check``, which must work on the very configurations the daemon refuses.
    """
    path = Path(path).resolve()
    base = path.parent
    problems = Problems()
    data = _read_checked(path, problems)
    problems.raise_if_any()
    keys_dir = base / str(data.get("keys_dir", "keys"))
    store = trust_from(data, base, keys_dir, problems, Digest())
    # The same defaults as platform_from and registry_from.
    platform = data.get("platform") or {}
    pid = str(platform.get("id", "eport"))
    files = [
        CertificateFile(
            pid,
            True,
            base / platform["certificate"] if platform.get("certificate") else keys_dir / pid / "cert.pem",
            base / platform["key"] if platform.get("key") else keys_dir / pid / "key.pem",
        )
    ]
    participants = data.get("participants")
    for participant_id, spec in (participants if isinstance(participants, dict) else {}).items():
        spec = spec if isinstance(spec, dict) else {}
        paths = [base / p for p in as_list(spec.get("certificates"))] or [keys_dir / str(participant_id) / "cert.pem"]
        for cert_path in paths:
            # A participant's key is with the participant; the demo PKI keeps it beside cert.pem.
            key_path = cert_path.with_name("key.pem")
            usable = cert_path.name == "cert.pem" and key_path.exists()
            files.append(CertificateFile(str(participant_id), False, cert_path, key_path if usable else None))
    return store, files, problems.items
