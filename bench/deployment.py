"""A throwaway deployment of the exchange for one benchmark run, on the local RabbitMQ.

The bundled routes.yaml is copied to a temporary folder with absolute paths, its broker users
prefixed with the run's tag (broker users are global to a node), keys made there with
`exchanger keys init --algorithm rsa|ec`, a fresh virtual host, and `exchanger topology apply`.
Broker users are created only for the identities the benchmark connects as (the daemon and the
senders): every user costs several rabbitmqctl runs. Everything is removed by close().
"""

from __future__ import annotations

import shutil
import subprocess
import sys
import tempfile
import time
from contextlib import closing
from dataclasses import dataclass, field
from pathlib import Path

import pika
import yaml
from cryptography.hazmat.primitives import serialization

from exchanger.config import Config, load_config
from exchanger.keys.material import load_certificate, load_private_key
from exchanger.keys.pki import build_participant_certificate, generate_key
from exchanger.transport.admin import BrokerAdmin, apply_users
from exchanger.transport.names import DEAD_LETTERS, INBOUND_EXCHANGE, INBOUND_QUEUE, INBOUND_ROUTING_KEY, mailbox_queue
from exchanger.transport.topology import Topology
from exchanger.transport.url import with_credentials, with_vhost

ROOT = Path(__file__).resolve().parents[1]
ROUTES = ROOT / "routes.yaml"
BASE_URL = "amqp://127.0.0.1:5672/"
ADMIN = ("guest", "guest")
SENDERS = ("ent-a", "road")  # the participants the workloads publish as


def exchanger_cli(config_path: Path, url: str, *args: str) -> str:
    """Run one `exchanger` command on a configuration; return its output, fail loudly."""
    done = subprocess.run(
        [sys.executable, "-m", "exchanger", "--config", str(config_path), "--amqp-url", url, *args],
        cwd=ROOT, capture_output=True, text=True, timeout=600,
    )
    if done.returncode != 0:
        raise RuntimeError(f"exchanger {' '.join(args)} failed:\n{done.stdout}\n{done.stderr}")
    return done.stdout


@dataclass
class Deployment:
    """One configuration on its own keys, virtual host and broker users."""

    directory: Path
    config_path: Path
    vhost: str
    algorithm: str
    config: Config
    admin: BrokerAdmin = field(default_factory=BrokerAdmin)
    users: list[str] = field(default_factory=list)

    @property
    def keys_dir(self) -> Path:
        return self.config.keys_dir

    @property
    def url(self) -> str:
        """The vhost without credentials: `exchanger run` then logs in as its own daemon user."""
        return with_vhost(BASE_URL, self.vhost)

    @property
    def admin_url(self) -> str:
        return with_credentials(self.url, *ADMIN)

    def amqp_user(self, participant: str) -> str:
        return self.config.registry.get(participant).amqp_user

    def password(self, identity: str) -> str:
        return (self.keys_dir / identity / "amqp-password").read_text().strip()

    def sender_url(self, participant: str) -> str:
        return with_credentials(self.url, self.amqp_user(participant), self.password(participant))

    @property
    def daemon_url(self) -> str:
        user = self.config.broker.daemon_user
        return with_credentials(self.url, user, self.password(user))

    # ---- queues --------------------------------------------------------------------------------------------------

    def connect(self) -> pika.BlockingConnection:
        return pika.BlockingConnection(pika.URLParameters(self.admin_url))

    def purge(self, *participants: str) -> None:
        """Empty the inbound and the given mailboxes, and count dead letters from here on (between two measurements)."""
        with closing(self.connect()) as connection:
            channel = connection.channel()
            for queue in (INBOUND_QUEUE, *(mailbox_queue(p) for p in participants)):
                channel.queue_purge(queue)
            # The dead-letter stream cannot be emptied: later depths count from its length now.
            self.dead_letters_before = channel.queue_declare(DEAD_LETTERS, passive=True).method.message_count

    def depth(self, channel, queue: str) -> int:
        """Messages ready in a queue; for the dead-letter stream, entries added since the last purge."""
        count = channel.queue_declare(queue, passive=True).method.message_count
        if queue == DEAD_LETTERS:
            # The broker updates a stream's count a moment after the append: a drain may end that much later.
            return max(0, count - getattr(self, "dead_letters_before", 0))
        return count

    def preload(self, sender: str, bodies, *, timeout: float = 900) -> float:
        """Publish a backlog into the inbound queue as the sender's broker user, confirmed; return the seconds it took.

        Confirms are pipelined (up to WINDOW unconfirmed publishes) so that preloading stays fast; a
        publish the broker nacks is published again.
        """
        properties = pika.BasicProperties(delivery_mode=2, user_id=self.amqp_user(sender), content_type="application/xml")
        started = time.perf_counter()
        publisher = _Preloader(pika.URLParameters(self.sender_url(sender)), list(bodies), properties)
        publisher.run(timeout)
        return time.perf_counter() - started

    # ---- life cycle ----------------------------------------------------------------------------------------------

    def close(self) -> None:
        for user in self.users:
            try:
                self.admin.delete_user(user)
            except Exception as exc:  # noqa: BLE001 - clean up as much as possible
                print(f"warning: could not delete broker user {user}: {exc}", file=sys.stderr)
        try:
            self.admin.delete_vhost(self.vhost)
        except Exception as exc:  # noqa: BLE001
            print(f"warning: could not delete vhost {self.vhost}: {exc}", file=sys.stderr)
        shutil.rmtree(self.directory, ignore_errors=True)


class _Preloader:
    """Publishes a list of bodies to the inbound exchange with pipelined publisher confirms."""

    WINDOW = 500

    def __init__(self, parameters, bodies: list[bytes], properties):
        self.parameters = parameters
        self.bodies = bodies
        self.properties = properties
        self.todo = list(range(len(bodies) - 1, -1, -1))  # indexes still to publish, popped from the end
        self.outstanding: dict[int, int] = {}  # publish sequence number -> index
        self.seq = 0
        self.nacked = 0
        self.error: str | None = None
        self.connection = None
        self.channel = None

    def run(self, timeout: float) -> None:
        self.connection = pika.SelectConnection(
            self.parameters, on_open_callback=lambda c: c.channel(on_open_callback=self._on_channel),
            on_open_error_callback=self._fail, on_close_callback=lambda c, _reason: c.ioloop.stop(),
        )
        self.connection.ioloop.call_later(timeout, lambda: self._fail(self.connection, "preloading timed out"))
        self.connection.ioloop.start()
        if self.error or self.todo or self.outstanding:
            raise RuntimeError(f"preloading failed: {self.error or 'connection closed'} "
                               f"({len(self.todo) + len(self.outstanding)} not confirmed)")

    def _fail(self, connection, error) -> None:
        self.error = str(error)
        if connection.is_open:
            connection.close()
        else:
            connection.ioloop.stop()

    def _on_channel(self, channel) -> None:
        self.channel = channel
        channel.add_on_close_callback(self._on_channel_closed)
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=lambda _frame: self._pump())

    def _on_channel_closed(self, _channel, reason) -> None:
        if self.todo or self.outstanding:
            self._fail(self.connection, reason)

    def _pump(self) -> None:
        while self.todo and len(self.outstanding) < self.WINDOW:
            index = self.todo.pop()
            self.seq += 1
            self.outstanding[self.seq] = index
            self.channel.basic_publish(INBOUND_EXCHANGE, INBOUND_ROUTING_KEY, self.bodies[index], self.properties)
        if not self.todo and not self.outstanding:
            self.connection.close()

    def _on_confirm(self, frame) -> None:
        method = frame.method
        if method.multiple:
            done = []
            for seq in self.outstanding:
                if seq > method.delivery_tag:
                    break
                done.append(seq)
        else:
            done = [method.delivery_tag]
        for seq in done:
            index = self.outstanding.pop(seq, None)
            if index is not None and isinstance(method, pika.spec.Basic.Nack):
                self.nacked += 1
                self.todo.append(index)
        self._pump()


def _config_data(keys_dir: Path, prefix: str) -> dict:
    data = yaml.safe_load(ROUTES.read_text())
    data["keys_dir"] = str(keys_dir)
    data["messages"] = str(ROOT / data["messages"])
    data["envelopes"] = str(ROOT / data["envelopes"])
    for pid, spec in data["participants"].items():
        spec["amqp_user"] = f"{prefix}{pid}"
    data["broker"]["daemon_user"] = f"{prefix}exchanger"
    # Never collide with an exchange running on the default port; the benchmark passes --metrics-port anyway.
    data.setdefault("metrics", {})["port"] = 0
    return data


def create(run_tag: str, algorithm: str = "rsa", *, parent: Path | None = None) -> Deployment:
    """Keys, configuration, vhost, topology and the senders' and daemon's broker users."""
    label = f"{run_tag}-{algorithm}"
    directory = Path(tempfile.mkdtemp(prefix=f"exchanger-bench-{label}-", dir=parent))
    prefix = f"bench{run_tag}{algorithm}-"
    config_path = directory / "routes.yaml"
    config_path.write_text(yaml.safe_dump(_config_data(directory / "keys", prefix), sort_keys=False, allow_unicode=True))
    vhost = f"exchanger-bench-{label}"
    admin = BrokerAdmin()
    deployment = None
    try:
        exchanger_cli(config_path, BASE_URL, "keys", "init", "--algorithm", algorithm)
        config = load_config(config_path)
        deployment = Deployment(directory, config_path, vhost, algorithm, config, admin)
        admin.add_vhost(vhost)
        admin.set_permissions(vhost, ADMIN[0], ".*", ".*", ".*")
        exchanger_cli(config_path, deployment.admin_url, "topology", "apply", "--no-users")
        chosen = [config.registry.get(pid) for pid in SENDERS]
        deployment.users = list(apply_users(
            admin,
            vhost,
            Topology(participants=tuple(p.id for p in chosen), delivery_limit=config.broker.delivery_limit),
            {p.amqp_user: deployment.password(p.id) for p in chosen},
            daemon_user=config.broker.daemon_user,
            daemon_password=deployment.password(config.broker.daemon_user),
            broker_users={p.id: p.amqp_user for p in chosen},
        ))
        return deployment
    except BaseException:
        if deployment is not None:
            deployment.close()
        else:
            shutil.rmtree(directory, ignore_errors=True)
        raise


# ---- big configurations: many routes, many participants, none of them matching the benchmark's traffic -------------

_OTHER_TYPES = ("InspectionDeclaration", "InspectionCertificate", "ExportRebateData", "ForexVerification", "AgencyReceipt")


def with_many(deployment: Deployment, *, routes: int = 0, participants: int = 0, name: str) -> Path:
    """A variant of the deployment's configuration with extra rules and participants; return its path.

    Extra rules are for other message types, or for customs declarations from ent-b, so the test
    traffic (customs declarations from ent-a, manifests from road) never matches them; extra
    participants are enterprises with a certificate each (ECDSA P-256 keys, quick to make, issued
    by the deployment's CA, since a certificate must name its participant). They get no broker
    user and no mailbox: the daemon runs with --no-declare on such a configuration.
    """
    data = yaml.safe_load(deployment.config_path.read_text())
    extra_ids = [f"bench-p{index:05d}" for index in range(participants)]
    if participants:
        _issue_many(deployment.keys_dir, extra_ids)
        for pid in extra_ids:
            data["participants"][pid] = {"kind": "enterprise", "name": f"Benchmark enterprise {pid}",
                                         "amqp_user": f"{pid}-{deployment.vhost}"}
    senders = ["ent-b", "customs", "ciq", "rail", "air", "tax", "forex", "terminal"]
    for index in range(routes):
        if index % 2 == 0:
            rule = {"id": f"extra-{index:05d}", "types": ["CustomsDeclaration"], "from": ["ent-b"],
                    "to": [["customs", "ciq", "tax", "forex"][index % 4]],
                    "when": f"$guid = 'BENCH-{index:05d}'", "deliver": "addressed"}
        else:
            rule = {"id": f"extra-{index:05d}", "types": [_OTHER_TYPES[index % len(_OTHER_TYPES)]],
                    "from": [senders[index % len(senders)]], "to": ["*"], "deliver": "addressed"}
        data["routes"].append(rule)
    path = deployment.directory / f"routes-{name}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def _issue_many(keys_dir: Path, ids: list[str]) -> None:
    ca_cert = load_certificate(keys_dir / "ca" / "cert.pem")
    ca_key = load_private_key(keys_dir / "ca" / "key.pem")
    key = generate_key("ec")  # one key pair for all: a certificate still names one participant each
    for pid in ids:
        path = keys_dir / pid / "cert.pem"
        if path.exists():
            continue
        path.parent.mkdir(parents=True, exist_ok=True)
        certificate = build_participant_certificate(key, pid, f"Benchmark enterprise {pid}", ca_cert, ca_key)
        path.write_bytes(certificate.public_bytes(serialization.Encoding.PEM))


def with_prefetch(deployment: Deployment, prefetch: int) -> Path:
    """A variant of the deployment's configuration with another ``broker.prefetch``; return its path."""
    data = yaml.safe_load(deployment.config_path.read_text())
    data.setdefault("broker", {})["prefetch"] = prefetch
    path = deployment.directory / f"routes-prefetch-{prefetch}.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path
