"""A deployment of the exchange for tests against the running daemon, and the odd certificates tests need.

The deployment is the bundled configuration on a fresh demo PKI, with broker users of its own
(prefixed per run), its topology and users applied; `exchanger run` is started as a subprocess.
"""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pika
import pika.exceptions
import pytest
import yaml
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID

from exchange_fixture import Exchange, make_exchange
from exchanger.config import load_config
from exchanger.keys.material import PrivateKey, load_certificate, load_private_key
from exchanger.keys.pki import build_ca_certificate, build_participant_certificate, generate_key, participant_uri
from exchanger.transport.admin import BrokerAdmin, apply_users
from exchanger.transport.client import drain_mailbox
from exchanger.transport.dead_letter_store import stream_entries
from exchanger.transport.dead_letters import DeadLetter, Settlement
from exchanger.transport.names import DEAD_LETTERS, INBOUND_EXCHANGE, INBOUND_ROUTING_KEY, mailbox_queue
from exchanger.transport.topology import Topology
from exchanger.transport.url import with_credentials, with_vhost

# ---- the daemon and the command line ---------------------------------------------------------------------------


def cli(exchange: Exchange, url: str, *args: str, check: bool = True, timeout: float = 120) -> subprocess.CompletedProcess:
    """Run an `exchanger` command on the deployment's configuration."""
    result = subprocess.run(
        [sys.executable, "-m", "exchanger", "--config", str(exchange.config_path), "--amqp-url", url, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
    )
    if check:
        assert result.returncode == 0, f"exchanger {' '.join(args)}: {result.stdout}\n{result.stderr}"
    return result


class Daemon:
    """`exchanger run` in a child process, its JSON log lines collected as they come."""

    def __init__(self, exchange: Exchange, url: str, workers: int = 1, extra: list[str] | None = None):
        # Port 0 for /metrics and the console: any free port, so daemons of several tests (or a running
        # exchange) never collide.
        self.process = subprocess.Popen(
            [sys.executable, "-m", "exchanger", "--config", str(exchange.config_path), "--amqp-url", url,
             "run", "--workers", str(workers), "--json-logs", "--metrics-port", "0", "--console-port", "0",
             *(extra or [])],
            stdout=subprocess.PIPE,
            stderr=subprocess.STDOUT,
            text=True,
        )
        self.events: list[dict] = []
        self.raw: list[str] = []
        threading.Thread(target=self._read, daemon=True).start()

    def _read(self) -> None:
        for line in self.process.stdout:
            self.raw.append(line)
            try:
                self.events.append(json.loads(line))
            except ValueError:
                pass

    def count(self, event: str) -> int:
        """How many times the daemon has logged an event so far."""
        return sum(1 for e in list(self.events) if e.get("event") == event)

    def wait_for(self, event: str, count: int = 1, timeout: float = 60) -> None:
        """Wait until the daemon has logged an event ``count`` times (failing the test after ``timeout``)."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.count(event) >= count:
                return
            assert self.process.poll() is None, "".join(self.raw)
            time.sleep(0.1)
        pytest.fail(f"no {count}x {event} within {timeout}s:\n" + "".join(self.raw[-50:]))

    @property
    def http(self) -> str:
        """The base URL of the daemon's /metrics, /healthz and /readyz."""
        self.wait_for("metrics.listening")
        port = next(e["port"] for e in self.events if e.get("event") == "metrics.listening")
        return f"http://127.0.0.1:{port}"

    @property
    def console(self) -> str:
        """The base URL of the operators' console (without the trailing slash)."""
        self.wait_for("console.listening")
        return next(e["address"] for e in self.events if e.get("event") == "console.listening").rstrip("/")

    @property
    def console_first_password(self) -> str | None:
        """The one-time password of the first admin, as the daemon printed it on the terminal (None if it did not)."""
        self.wait_for("console.listening")
        marker = "one-time password "
        for line in list(self.raw):
            if marker in line:
                return line.split(marker, 1)[1].split()[0]
        return None

    def stop(self) -> int:
        """Stop gracefully (SIGTERM) and return the exit status."""
        self.process.send_signal(signal.SIGTERM)
        return self.process.wait(timeout=60)


def deploy(
    broker,
    directory: Path,
    edit: Callable[[dict, Exchange], None] | None = None,
    users: Iterable[str] | None = None,
) -> Exchange:
    """The bundled configuration on fresh keys, with this run's broker users, its topology and users applied.

    ``edit`` may change the configuration (and add keys) before it is loaded and applied. ``users``
    limits the participants given a broker user (each costs several rabbitmqctl runs); default: all.
    """
    exchange = make_exchange(directory, user_prefix=broker.unique("u") + "-")
    if edit is not None:
        data = yaml.safe_load(exchange.config_path.read_text())
        edit(data, exchange)
        exchange.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
        exchange.config = load_config(exchange.config_path)
    for participant in exchange.config.registry:
        broker.track_user(participant.amqp_user)
    broker.track_user(exchange.config.broker.daemon_user)
    # No credentials in the URL: each command connects as the identity it acts for.
    exchange.url = with_vhost("amqp://127.0.0.1:5672/", broker.vhost)
    if users is None:
        cli(exchange, broker.url, "topology", "apply")
        return exchange
    cli(exchange, broker.url, "topology", "apply", "--no-users")
    config = exchange.config
    chosen = [config.registry.get(pid) for pid in users]
    apply_users(
        BrokerAdmin(),
        broker.vhost,
        Topology(participants=tuple(p.id for p in chosen), delivery_limit=config.broker.delivery_limit),
        {p.amqp_user: exchange.password(p.id) for p in chosen},
        daemon_user=config.broker.daemon_user,
        daemon_password=exchange.password(config.broker.daemon_user),
        broker_users={p.id: p.amqp_user for p in chosen},
    )
    return exchange


def login_url(exchange: Exchange, participant: str) -> str:
    """The URL that logs in as a participant's broker user (or, for the daemon's user name, as the daemon)."""
    if participant == exchange.config.broker.daemon_user:
        return with_credentials(exchange.url, participant, exchange.password(participant))
    user = exchange.config.registry.get(participant).amqp_user
    return with_credentials(exchange.url, user, exchange.password(participant))


def publish(url: str, body: bytes, user_id: str | None) -> None:
    """Publish to the inbound exchange with pika itself, ``user_id`` set as given (None: not set), confirmed."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        channel = connection.channel()
        channel.confirm_delivery()
        properties = pika.BasicProperties(content_type="application/xml", delivery_mode=2, user_id=user_id)
        channel.basic_publish(INBOUND_EXCHANGE, INBOUND_ROUTING_KEY, body, properties, mandatory=True)
    finally:
        if connection.is_open:
            connection.close()


def mailbox(exchange: Exchange, participant: str, count: int | None, wait: float = 20, *, url: str | None = None) -> list:
    """Take up to ``count`` messages from a participant's mailbox, waiting up to ``wait`` seconds for each.

    Read as the participant, or through ``url`` (the broker admin's, for participants without a user).
    """
    return list(drain_mailbox(url or login_url(exchange, participant), participant, count=count, wait=wait))


def empty_mailboxes(broker, exchange: Exchange) -> None:
    """Purge every participant's mailbox on the run's virtual host: tests that share it must not read another's mail."""
    connection = pika.BlockingConnection(pika.URLParameters(broker.url))
    try:
        channel = connection.channel()
        for participant in exchange.config.registry:
            try:
                channel.queue_purge(mailbox_queue(participant.id))
            except pika.exceptions.ChannelClosedByBroker:  # a participant without a mailbox on this deployment
                channel = connection.channel()
    finally:
        connection.close()


# Where each vhost's dead-letter stream was last read up to: reading it removes nothing, so "taking"
# the dead letters is remembering how far they were taken.
_DEAD_TAKEN: dict[str, int] = {}


def new_dead_letters(admin_url: str, *, take: bool = True) -> list[tuple[int, pika.BasicProperties, bytes]]:
    """The dead letters appended to the stream since the last take, not replayed or purged: (offset, properties, body).

    Settlements by any user count here (the operator commands run as the daemon's user, tests as the admin).
    """
    connection = pika.BlockingConnection(pika.URLParameters(admin_url))
    try:
        entries = list(stream_entries(connection.channel(), DEAD_LETTERS))
    finally:
        if connection.is_open:
            connection.close()
    settled = set()
    for _, properties, _ in entries:
        settlement = Settlement.from_message(properties, properties.user_id or "")
        if settlement is not None:
            settled.add(settlement.letter_id)
    start = _DEAD_TAKEN.get(admin_url, 0)
    letters = [
        (offset, properties, body)
        for offset, properties, body in entries
        if offset >= start
        and Settlement.from_message(properties, properties.user_id or "") is None
        and DeadLetter.from_message(properties, body).id not in settled
    ]
    if take and entries:
        _DEAD_TAKEN[admin_url] = max(start, entries[-1][0] + 1)
    return letters


def skip_dead_letters(admin_url: str) -> None:
    """Take every dead letter there is now without looking: later reads start after them."""
    new_dead_letters(admin_url)


def drain_dead(admin_url: str) -> list[tuple[dict, bytes]]:
    """Take every dead letter added since the last take: (headers, body)."""
    return [(_without_offset(properties.headers), body) for _, properties, body in new_dead_letters(admin_url)]


def _without_offset(headers: dict | None) -> dict:
    """A stream entry's headers as the letter was published: without the offset the stream adds."""
    return {k: v for k, v in (headers or {}).items() if k != "x-stream-offset"}


# ---- certificates: a second CA, and signing certificates the demo PKI never makes ---------------------------------


@dataclass
class Authority:
    """A CA that can issue participant certificates with any validity, and its revocation lists."""

    certificate: x509.Certificate
    key: PrivateKey

    @classmethod
    def of(cls, keys_dir: Path) -> Authority:
        """The demo CA of a keys directory."""
        return cls(load_certificate(keys_dir / "ca" / "cert.pem"), load_private_key(keys_dir / "ca" / "key.pem"))

    @classmethod
    def create(cls, common_name: str) -> Authority:
        """A new root CA of its own."""
        key = generate_key()
        return cls(build_ca_certificate(key, common_name), key)

    def issue(
        self, participant_id: str, *, not_before: datetime | None = None, not_after: datetime | None = None
    ) -> tuple[PrivateKey, x509.Certificate]:
        """A new key and the demo profile's certificate for it, optionally with the given validity."""
        key = generate_key()
        cert = build_participant_certificate(
            key, participant_id, participant_id, self.certificate, self.key, not_before=not_before, not_after=not_after
        )
        return key, cert

    def issue_with(self, participant_id: str, extensions: Iterable[tuple[x509.ExtensionType, bool]]):
        """A new key and a certificate carrying exactly the given extensions (and the participant's CN)."""
        key = generate_key()
        return key, _certificate(participant_id, key, self.certificate.subject, self.key, extensions)

    def crl(self, revoked: Iterable[int] = (), *, next_update: datetime | None = None) -> x509.CertificateRevocationList:
        """A CRL of this CA revoking the serial numbers given, due for renewal at ``next_update`` (default: in a week)."""
        now = datetime.now(timezone.utc)
        builder = (
            x509.CertificateRevocationListBuilder()
            .issuer_name(self.certificate.subject)
            .last_update(min(now, next_update or now) - timedelta(days=1))
            .next_update(next_update or now + timedelta(days=7))
            .add_extension(x509.CRLNumber(1), critical=False)
        )
        for serial in revoked:
            entry = x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(now - timedelta(minutes=1))
            builder = builder.add_revoked_certificate(entry.build())
        return builder.sign(self.key, hashes.SHA256())


def self_signed(participant_id: str) -> tuple[PrivateKey, x509.Certificate]:
    """A key and a self-signed certificate with the demo profile, naming the participant: trusted by nobody."""
    key = generate_key()
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, participant_id)])
    return key, _certificate(participant_id, key, name, key, signing_extensions(participant_id))


def signing_extensions(participant_id: str, *, digital_signature: bool = True, purposes=None):
    """The extensions of a demo participant certificate, with keyUsage and extendedKeyUsage adjustable."""
    usage = x509.KeyUsage(digital_signature, not digital_signature, not digital_signature, False, False, False, False, False, False)
    return [
        (x509.BasicConstraints(ca=False, path_length=None), True),
        (usage, True),
        (x509.ExtendedKeyUsage(purposes or [ExtendedKeyUsageOID.CLIENT_AUTH]), False),
        (x509.SubjectAlternativeName([x509.UniformResourceIdentifier(participant_uri(participant_id))]), False),
    ]


def _certificate(participant_id, key, issuer: x509.Name, issuer_key, extensions) -> x509.Certificate:
    now = datetime.now(timezone.utc)
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, participant_id)]))
        .issuer_name(issuer)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(hours=1))
        .not_valid_after(now + timedelta(days=30))
        .add_extension(x509.AuthorityKeyIdentifier.from_issuer_public_key(issuer_key.public_key()), critical=False)
        .add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), critical=False)
    )
    for extension, critical in extensions:
        builder = builder.add_extension(extension, critical=critical)
    return builder.sign(issuer_key, hashes.SHA256())


def write_pem(path: Path, thing) -> Path:
    """Write a private key, certificate or CRL as PEM; return the path."""
    path.parent.mkdir(parents=True, exist_ok=True)
    if isinstance(thing, (x509.Certificate, x509.CertificateRevocationList)):
        path.write_bytes(thing.public_bytes(serialization.Encoding.PEM))
    else:
        path.write_bytes(
            thing.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption())
        )
    return path
