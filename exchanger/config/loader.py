"""Load YAML configuration into a checked Config, collecting every problem instead of stopping at the first."""

from __future__ import annotations

import hashlib
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import yaml
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from lxml import etree

from exchanger.catalogue import Catalogue, MessageType
from exchanger.config.model import BrokerSettings, Config, JournalSettings, Limits, MetricsSettings, Platform
from exchanger.journal.period import parse_period
from exchanger.keys.material import load_crl
from exchanger.keys.trust import (
    DEFAULT_EXPIRY_WARNING_DAYS,
    DEFAULT_IDENTITY_FIELD,
    IDENTITY_FIELDS,
    TrustStore,
    identities,
)
from exchanger.participants import KINDS, Participant, Registry
from exchanger.routing.rules import ADDRESSED, Approval, Route, Selector
from exchanger.routing.table import RoutingTable
from exchanger.xml.parser import trusted_schema_parser
from exchanger.xml.schema import CompiledSchema, SchemaLoadError

_ID = re.compile(r"^[a-z0-9][a-z0-9-]{1,31}$")
_VARIABLE = re.compile(r"\$([A-Za-z_][\w-]*)")


class ConfigError(Exception):
    """The configuration cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class _Problems:
    """Collects problems so an operator sees all of them at once."""

    def __init__(self):
        self.items: list[str] = []

    def add(self, where: str, message: str) -> None:
        self.items.append(f"{where}: {message}")

    def raise_if_any(self) -> None:
        if self.items:
            raise ConfigError(self.items)


class _Digest:
    """The config version: a digest over every file the configuration reads."""

    def __init__(self):
        self._hash = hashlib.sha256()
        self.files: list[Path] = []

    def add_file(self, path: Path) -> None:
        self.files.append(path)
        try:
            data = path.read_bytes()
        except OSError:
            return
        self._hash.update(str(path.name).encode() + b"\0" + data + b"\0")

    def add_schema(self, path: Path, seen: set[Path] | None = None) -> None:
        """Add an XSD and every local schema it includes or imports, so an edit to any of them is a new version."""
        seen = set() if seen is None else seen
        path = path.resolve()
        if path in seen:
            return
        seen.add(path)
        self.add_file(path)
        try:
            root = etree.parse(str(path), trusted_schema_parser()).getroot()
        except (OSError, etree.XMLSyntaxError):
            return
        for location in root.xpath("xs:include/@schemaLocation | xs:import/@schemaLocation | xs:redefine/@schemaLocation",
                                   namespaces={"xs": "http://www.w3.org/2001/XMLSchema"}):
            if "://" not in location:
                self.add_schema(path.parent / location, seen)

    def hexdigest(self) -> str:
        return self._hash.hexdigest()[:16]


def _read_yaml(path: Path, problems: _Problems) -> dict[str, Any]:
    try:
        with path.open("rb") as stream:
            data = yaml.safe_load(stream)
    except OSError as exc:
        problems.add(str(path), f"cannot read: {exc.strerror}")
        return {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problems.add(where, f"not valid YAML: {getattr(exc, 'problem', exc)}")
        return {}
    if not isinstance(data, dict):
        problems.add(str(path), "must be a mapping at the top level")
        return {}
    return data


def _as_list(value: Any) -> list:
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def _compile_xpath(expr: Any, namespaces: dict[str, str], where: str, problems: _Problems) -> etree.XPath | None:
    if not isinstance(expr, str) or not expr.strip():
        problems.add(where, "must be a non-empty XPath string")
        return None
    try:
        return etree.XPath(expr, namespaces=namespaces, smart_strings=False)
    except etree.XPathSyntaxError as exc:
        problems.add(where, f"XPath {expr!r} does not compile: {exc}")
        return None


def _clark(qname: str, namespaces: dict[str, str], where: str, problems: _Problems) -> str | None:
    if not isinstance(qname, str) or not qname:
        problems.add(where, "root must be a prefixed name such as dec:CustomsDeclaration")
        return None
    if qname.startswith("{"):
        return qname
    prefix, _, local = qname.rpartition(":")
    if not prefix:
        return local
    if prefix not in namespaces:
        problems.add(where, f"prefix {prefix!r} is not declared under namespaces")
        return None
    return f"{{{namespaces[prefix]}}}{local}"


def _catalogue_from(data: dict, base: Path, where: str, problems: _Problems, digest: _Digest) -> Catalogue:
    namespaces = data.get("namespaces") or {}
    if not isinstance(namespaces, dict):
        problems.add(f"{where} namespaces", "must map prefixes to namespace URIs")
        namespaces = {}
    types_data = data.get("types") or {}
    if not isinstance(types_data, dict) or not types_data:
        problems.add(f"{where} types", "must define at least one message type")
        types_data = {}
    types: list[MessageType] = []
    roots: dict[str, str] = {}
    schemas: dict[tuple, CompiledSchema] = {}  # several types often share one XSD: compile it once
    for name, spec in types_data.items():
        at = f"{where} types.{name}"
        if not isinstance(spec, dict):
            problems.add(at, "must be a mapping")
            continue
        root = _clark(spec.get("root"), namespaces, f"{at}.root", problems)
        if root and root in roots:
            problems.add(f"{at}.root", f"root {spec.get('root')} is already used by {roots[root]}")
        xsd_paths = [base / p for p in _as_list(spec.get("xsd"))]
        schema = None
        if not xsd_paths:
            problems.add(f"{at}.xsd", "names no schema: every message type needs an XSD")
        else:
            for p in xsd_paths:
                digest.add_schema(p)
            missing = [str(p) for p in xsd_paths if not p.is_file()]
            if missing:
                problems.add(f"{at}.xsd", f"schema file not found: {', '.join(missing)}")
            else:
                key = (tuple(p.resolve() for p in xsd_paths), spec.get("engine", "libxml2"))
                try:
                    schema = schemas.get(key) or schemas.setdefault(key, CompiledSchema(xsd_paths, engine=key[1]))
                except SchemaLoadError as exc:
                    problems.add(f"{at}.xsd", f"does not compile: {exc}")
        id_path = _compile_xpath(spec.get("id"), namespaces, f"{at}.id", problems)
        sender_path = _compile_xpath(spec.get("sender"), namespaces, f"{at}.sender", problems)
        receivers_path = (
            _compile_xpath(spec["receivers"], namespaces, f"{at}.receivers", problems) if spec.get("receivers") else None
        )
        fields = {}
        for field_name, expr in (spec.get("fields") or {}).items():
            compiled = _compile_xpath(expr, namespaces, f"{at}.fields.{field_name}", problems)
            if compiled is not None:
                fields[field_name] = compiled
        if None in (root, schema, id_path, sender_path):
            continue
        roots[root] = name
        types.append(
            MessageType(
                name=name,
                root=root,
                schema=schema,
                id_path=id_path,
                sender_path=sender_path,
                receivers_path=receivers_path,
                fields=fields,
                description=str(spec.get("description", "")),
            )
        )
    return Catalogue(types, namespaces)


def load_catalogue(path: Path | str) -> Catalogue:
    """Load a message catalogue file alone (for ``validate`` and onboarding new standards)."""
    path = Path(path)
    problems = _Problems()
    catalogue = _catalogue_from(_read_yaml(path, problems), path.parent, str(path), problems, _Digest())
    problems.raise_if_any()
    return catalogue


def _load_certificate(path: Path, where: str, problems: _Problems) -> x509.Certificate | None:
    try:
        return x509.load_pem_x509_certificate(path.read_bytes())
    except FileNotFoundError:
        problems.add(where, f"certificate {path} not found (run `exchanger keys init`)")
    except (OSError, ValueError) as exc:
        problems.add(where, f"certificate {path} cannot be read: {exc}")
    return None


def _platform_from(data: dict, base: Path, keys_dir: Path, problems: _Problems, digest: _Digest) -> Platform:
    spec = data.get("platform") or {}
    pid = spec.get("id", "eport")
    key_path = base / spec["key"] if spec.get("key") else keys_dir / pid / "key.pem"
    cert_path = base / spec["certificate"] if spec.get("certificate") else keys_dir / pid / "cert.pem"
    digest.add_file(cert_path)
    certificate = _load_certificate(cert_path, "platform.certificate", problems)
    if certificate is not None:
        try:
            key = serialization.load_pem_private_key(key_path.read_bytes(), password=None)
        except FileNotFoundError:
            problems.add("platform.key", f"private key {key_path} not found (run `exchanger keys init`)")
        except (OSError, ValueError, TypeError) as exc:
            problems.add("platform.key", f"private key {key_path} cannot be read: {exc}")
        else:
            public = serialization.PublicFormat.SubjectPublicKeyInfo
            encoding = serialization.Encoding.DER
            if key.public_key().public_bytes(encoding, public) != certificate.public_key().public_bytes(
                encoding, public
            ):
                problems.add("platform.key", f"{key_path} does not match the certificate {cert_path}")
    return Platform(pid, str(spec.get("name", "Electronic Port")), key_path, cert_path, certificate)


def _registry_from(data: dict, base: Path, keys_dir: Path, problems: _Problems, digest: _Digest) -> Registry:
    participants = []
    users: dict[str, str] = {}
    specs = data.get("participants") or {}
    if not isinstance(specs, dict) or not specs:
        problems.add("participants", "must map participant ids to their kind, name and certificates")
        specs = {}
    for pid, spec in specs.items():
        at = f"participants.{pid}"
        spec = spec or {}
        if not isinstance(pid, str) or not _ID.match(pid):
            problems.add(at, "id must be 2-32 characters of a-z, 0-9 and '-', starting with a letter or digit")
            continue
        kind = spec.get("kind")
        if kind not in KINDS - {"platform"}:
            problems.add(f"{at}.kind", f"must be one of {', '.join(sorted(KINDS - {'platform'}))}, not {kind!r}")
            continue
        user = str(spec.get("amqp_user", pid))
        if user in users:
            problems.add(f"{at}.amqp_user", f"broker user {user!r} is already {users[user]}'s")
        users[user] = pid
        paths = [base / p for p in _as_list(spec.get("certificates"))] or [keys_dir / pid / "cert.pem"]
        certificates = []
        for path in paths:
            digest.add_file(path)
            cert = _load_certificate(path, f"{at}.certificates", problems)
            if cert is not None:
                certificates.append(cert)
        participants.append(Participant(pid, kind, str(spec.get("name", pid)), user, tuple(certificates)))
    return Registry(participants)


def _compile_predicate(
    source: Any, catalogue: Catalogue, types: frozenset[str], where: str, problems: _Problems
) -> etree.XPath | None:
    """Compile a route condition with XPath's own truth (``boolean()``), and try it once now.

    Unknown functions, undeclared prefixes and wrong argument counts only show when an XPath is
    evaluated: trying it on an empty document of each type makes them a config problem instead
    of a failure on the first message.
    """
    if not isinstance(source, str) or not source.strip():
        problems.add(where, "must be a non-empty XPath string")
        return None
    variables = set(_VARIABLE.findall(source))
    known = [catalogue.get(name) for name in sorted(types) if name in catalogue]
    for message_type in known:
        for variable in sorted(variables - set(message_type.fields)):
            problems.add(where, f"${variable} is not a field of {message_type.name} in the catalogue")
    compiled = _compile_xpath(f"boolean({source})", catalogue.namespaces, where, problems)
    if compiled is None or variables - set().union(*(set(t.fields) for t in known or [])):
        return compiled
    for message_type in known:
        probe = etree.Element(message_type.root)
        try:
            compiled(probe, **{name: "" for name in message_type.fields})
        except etree.XPathError as exc:
            problems.add(where, f"XPath {source!r} cannot be evaluated on a {message_type.name}: {exc}")
            return None
    return compiled


def _route_from(
    index: int, spec: Any, catalogue: Catalogue, registry: Registry, problems: _Problems
) -> Route | None:
    if not isinstance(spec, dict):
        problems.add(f"routes[{index}]", "must be a mapping")
        return None
    rid = spec.get("id") or f"#{index + 1}"
    at = f"routes.{rid}"
    types = frozenset(_as_list(spec.get("types", spec.get("type"))))
    if not types:
        problems.add(f"{at}.types", "names no message type")
    for name in sorted(types - set(catalogue.names())):
        problems.add(f"{at}.types", f"message type {name!r} is not in the catalogue")
    selectors = {}
    for key in ("from", "to"):
        terms = [str(t) for t in _as_list(spec.get(key))]
        for term in terms:
            if term == "*":
                continue
            if term.startswith("kind:"):
                if term[5:] not in KINDS:
                    problems.add(f"{at}.{key}", f"unknown participant kind {term[5:]!r}")
            elif term not in registry:
                problems.add(f"{at}.{key}", f"{term!r} is not a participant")
        selectors[key] = Selector.parse(terms)
    deliver = tuple(str(d) for d in _as_list(spec.get("deliver", ADDRESSED)))
    for target in deliver:
        if target != ADDRESSED and target not in registry:
            problems.add(f"{at}.deliver", f"destination {target!r} is not a participant")
    approval = None
    if spec.get("approval") is not None:
        raw = spec["approval"]
        if isinstance(raw, dict) and raw.get("by") and raw.get("ref"):
            approval = Approval(str(raw["by"]), str(raw["ref"]))
        else:
            problems.add(f"{at}.approval", "must name the approving authority and its reference: {by: ..., ref: ...}")
    copies = [d for d in deliver if d != ADDRESSED]
    if copies and approval is None:
        problems.add(
            f"{at}.approval",
            f"copies to {', '.join(copies)} are data sharing and must name the authority that approved them",
        )
    external = [
        p.id
        for p in registry
        if p.external and (p.id in copies or (ADDRESSED in deliver and selectors["to"].matches(p)))
    ]
    if external and approval is None and not copies:
        problems.add(f"{at}.approval", f"reaches the external exchange(s) {', '.join(external)} without an approval")
    when = None
    when_source = spec.get("when")
    if when_source is not None:
        when = _compile_predicate(when_source, catalogue, types, f"{at}.when", problems)
    return Route(
        id=str(rid),
        types=types,
        senders=selectors["from"],
        receivers=selectors["to"],
        deliver=deliver,
        when=when,
        when_source=when_source,
        approval=approval,
        description=str(spec.get("description", "")),
    )


def _routes_from(data: dict, catalogue: Catalogue, registry: Registry, problems: _Problems) -> RoutingTable:
    specs = data.get("routes")
    if not isinstance(specs, list) or not specs:
        problems.add("routes", "must be a list of at least one rule")
        specs = []
    routes, seen = [], set()
    for index, spec in enumerate(specs):
        route = _route_from(index, spec, catalogue, registry, problems)
        if route is None:
            continue
        if route.id in seen:
            problems.add(f"routes.{route.id}", "id is used by more than one rule")
        seen.add(route.id)
        routes.append(route)
    return RoutingTable(routes, registry)


def _positive_int(section: dict, key: str, default: int, where: str, problems: _Problems) -> int:
    value = section.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        problems.add(f"{where}.{key}", f"must be a positive whole number, not {value!r}")
        return default
    return value


def _metrics_from(section: dict, problems: _Problems) -> MetricsSettings:
    port = section.get("port", MetricsSettings.port)
    if not isinstance(port, int) or isinstance(port, bool) or not 0 <= port <= 65535:
        problems.add("metrics.port", f"must be a TCP port number (0 picks a free one), not {port!r}")
        port = MetricsSettings.port
    return MetricsSettings(bind=str(section.get("bind", MetricsSettings.bind)), port=port)


KEEP_ORIGINALS = ("rejected", "all", "none")


def _journal_url(url: Any, base: Path, problems: _Problems) -> str:
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


def _journal_from(section: Any, base: Path, problems: _Problems) -> JournalSettings:
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


def read_journal_settings(path: Path | str) -> JournalSettings:
    """Read only the ``journal:`` section: for the log commands, which must work even when routes do not load."""
    path = Path(path).resolve()
    problems = _Problems()
    data = _read_yaml(path, problems)
    problems.raise_if_any()
    journal = _journal_from(data.get("journal") or {}, path.parent, problems)
    problems.raise_if_any()
    return journal


def _trust_from(data: dict, base: Path, keys_dir: Path, problems: _Problems, digest: _Digest) -> TrustStore:
    """The trust anchors, their CRLs, and which subject field names a participant."""
    spec = data.get("trust") or {}
    if not isinstance(spec, dict):
        problems.add("trust", "must be a mapping with anchors, crls, identity_field and expiry_warning_days")
        spec = {}
    identity_field = spec.get("identity_field", DEFAULT_IDENTITY_FIELD)
    if identity_field not in IDENTITY_FIELDS:
        problems.add("trust.identity_field", f"must be one of {', '.join(IDENTITY_FIELDS)}, not {identity_field!r}")
        identity_field = DEFAULT_IDENTITY_FIELD
    warning_days = _positive_int(spec, "expiry_warning_days", DEFAULT_EXPIRY_WARNING_DAYS, "trust", problems)
    anchors = []
    for anchor_path in [base / p for p in _as_list(spec.get("anchors"))] or [keys_dir / "ca" / "cert.pem"]:
        digest.add_file(anchor_path)
        anchor = _load_certificate(anchor_path, "trust.anchors", problems)
        if anchor is not None:
            anchors.append(anchor)
    crls = []
    for crl_path in [base / p for p in _as_list(spec.get("crls"))] or [keys_dir / "ca" / "crl.pem"]:
        digest.add_file(crl_path)
        try:
            crls.append(load_crl(crl_path))
        except FileNotFoundError:
            problems.add("trust.crls", f"CRL {crl_path} not found (run `exchanger keys init`)")
        except (OSError, ValueError) as exc:
            problems.add("trust.crls", f"CRL {crl_path} cannot be read: {exc}")
    store = TrustStore(anchors, crls, identity_field=identity_field, expiry_warning_days=warning_days)
    # Without any anchor every CRL is "signed by no anchor": the missing anchor is the one problem to report.
    for problem in store.problems if anchors else ():
        problems.add("trust", problem)
    return store


def _check_signers(trust: TrustStore, platform: Platform, registry: Registry, problems: _Problems) -> None:
    """Every certificate must name whom it is registered for; the platform's must also be valid now."""
    if platform.certificate is not None:
        refused = trust.assess(platform.certificate, platform.id)
        if refused is not None:
            problems.add(
                "platform.certificate",
                f"{refused.code}: {refused.message} (the exchange signs with it, so it does not start on it; "
                f"`exchanger keys issue {platform.id}` makes a new one)",
            )
    for participant in registry:
        for certificate in participant.certificates:
            if not trust.names(certificate, participant.id):
                named = ", ".join(identities(certificate, trust.identity_field)) or "nobody"
                problems.add(
                    f"participants.{participant.id}.certificates",
                    f"the certificate {certificate.subject.rfc4514_string()} (serial {certificate.serial_number:x}) "
                    f"names {named} in {trust.identity_field}, not {participant.id}",
                )


def load_config(path: Path | str) -> Config:
    """Load, compile and check the whole configuration, or raise ConfigError with every problem."""
    path = Path(path).resolve()
    base = path.parent
    problems = _Problems()
    digest = _Digest()
    digest.add_file(path)
    data = _read_yaml(path, problems)
    problems.raise_if_any()

    keys_dir = base / str(data.get("keys_dir", "keys"))
    messages = data.get("messages")
    if isinstance(messages, str):
        messages_path = base / messages
        digest.add_file(messages_path)
        catalogue = _catalogue_from(
            _read_yaml(messages_path, problems), messages_path.parent, str(messages_path), problems, digest
        )
    elif isinstance(messages, dict):
        catalogue = _catalogue_from(messages, base, "messages", problems, digest)
    else:
        problems.add("messages", "must name the catalogue file or hold the catalogue inline")
        catalogue = Catalogue([], {})

    platform = _platform_from(data, base, keys_dir, problems, digest)
    registry = _registry_from(data, base, keys_dir, problems, digest)
    if platform.id in registry:
        problems.add("platform.id", f"{platform.id!r} is also a participant id; the platform's identity must be its own")
    table = _routes_from(data, catalogue, registry, problems)
    trust = _trust_from(data, base, keys_dir, problems, digest)
    _check_signers(trust, platform, registry, problems)
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
    )


def read_identities(path: Path | str) -> tuple[Path, tuple[str, str], list[tuple[str, str]], str]:
    """Read who the configuration names, without loading keys: for ``keys init``, before any key exists.

    Returns the keys directory, the platform (id, name), every participant (id, name) and the daemon's broker user.
    """
    path = Path(path).resolve()
    problems = _Problems()
    data = _read_yaml(path, problems)
    problems.raise_if_any()
    platform = data.get("platform") or {}
    participants = [
        (str(pid), str((spec or {}).get("name", pid))) for pid, spec in (data.get("participants") or {}).items()
    ]
    daemon_user = str((data.get("broker") or {}).get("daemon_user", BrokerSettings.daemon_user))
    keys_dir = path.parent / str(data.get("keys_dir", "keys"))
    return keys_dir, (str(platform.get("id", "eport")), str(platform.get("name", "Electronic Port"))), participants, daemon_user


def read_metrics_address(path: Path | str) -> tuple[str, int]:
    """Where a configuration says the daemon serves its HTTP endpoint, without loading anything else."""
    problems = _Problems()
    settings = _metrics_from(_read_yaml(Path(path), problems).get("metrics") or {}, problems)
    problems.raise_if_any()
    return settings.bind, settings.port


def catalogue_path_of(path: Path | str) -> Path | None:
    """The catalogue file a configuration names, or None when the catalogue is inline."""
    path = Path(path).resolve()
    problems = _Problems()
    messages = _read_yaml(path, problems).get("messages")
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
    problems = _Problems()
    data = _read_yaml(path, problems)
    problems.raise_if_any()
    keys_dir = base / str(data.get("keys_dir", "keys"))
    store = _trust_from(data, base, keys_dir, problems, _Digest())
    # The same defaults as _platform_from and _registry_from.
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
        paths = [base / p for p in _as_list(spec.get("certificates"))] or [keys_dir / str(participant_id) / "cert.pem"]
        for cert_path in paths:
            # A participant's key is with the participant; the demo PKI keeps it beside cert.pem.
            key_path = cert_path.with_name("key.pem")
            usable = cert_path.name == "cert.pem" and key_path.exists()
            files.append(CertificateFile(str(participant_id), False, cert_path, key_path if usable else None))
    return store, files, problems.items
