"""The daemon's HTTP endpoint: Prometheus metrics, liveness and readiness."""

from __future__ import annotations

import json
import threading
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timezone
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pika
import pika.exceptions
import structlog
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, generate_latest
from prometheus_client.core import GaugeMetricFamily

from exchanger.config import Config, ConfigError, load_config
from exchanger.transport.broker_version import broker_version
from exchanger.transport.dead_letter_store import DeadLetterLog, read_log
from exchanger.transport.names import mailbox_queue
from exchanger.transport.url import connection_parameters

log = structlog.get_logger("exchanger.health")

# A check returns None when healthy, or what is wrong.
Check = Callable[[], "str | None"]


@dataclass
class ConfigState:
    """The configuration the daemon runs, and whether the file on disk still passes its checks."""

    config: Config
    problems: list[str] = field(default_factory=list)

    def refresh(self) -> None:
        """Check the file again (on reload), keeping the running configuration when it fails."""
        try:
            self.config = load_config(self.config.path)
            self.problems = []
        except ConfigError as exc:
            self.problems = exc.problems
        except Exception as exc:  # an unreadable key must show as a failing check, not kill the endpoint
            self.problems = [str(exc)]


def days_left(certificate, now: datetime | None = None) -> float:
    """Days until a certificate expires (negative once it has)."""
    now = now or datetime.now(timezone.utc)
    return (certificate.not_valid_after_utc - now).total_seconds() / 86400


def peer_depths(connection, config: Config) -> dict[str, int]:
    """How many copies wait in each peer e-port's mailbox: a stalled link shows as a depth that only grows."""
    depths = {}
    for peer in (p for p in config.registry if p.external):
        channel = connection.channel()
        try:
            depths[peer.id] = channel.queue_declare(mailbox_queue(peer.id), passive=True).method.message_count
        except pika.exceptions.ChannelClosedByBroker:
            continue  # no mailbox yet: `exchanger topology apply` makes it
        if channel.is_open:
            channel.close()
    return depths


class ExchangeCollector:
    """Metrics read at scrape time: pending dead letters and the broker's version, certificate expiry from the config."""

    def __init__(self, state: ConfigState, amqp_url: str):
        self.state = state
        self.amqp_url = amqp_url
        # Read on from where the last scrape stopped: a scrape costs only the entries added since.
        self._dead_letters = DeadLetterLog()
        self._lock = threading.Lock()
        self.broker = None
        self.peer_waiting: dict[str, int] = {}

    def dead_letter_depth(self) -> int | None:
        """Dead letters nobody has replayed or purged yet, or None when the broker cannot say."""
        try:
            connection = pika.BlockingConnection(
                connection_parameters(self.amqp_url, client_name="exchanger metrics", heartbeat=0)
            )
        except pika.exceptions.AMQPError:
            return None
        try:
            self.broker = broker_version(connection) or self.broker
            self.peer_waiting = peer_depths(connection, self.state.config)
            with self._lock:
                read_log(connection.channel(), self.state.config.broker.daemon_user, into=self._dead_letters)
                return len(self._dead_letters.pending())
        except pika.exceptions.AMQPError:
            return None
        finally:
            if connection.is_open:
                connection.close()

    def collect(self):
        """Yield the scrape-time metric families."""
        depth = self.dead_letter_depth()
        if depth is not None:
            dead = GaugeMetricFamily("exchanger_dead_letters", "Dead letters waiting: neither replayed nor purged.")
            dead.add_metric([], depth)
            yield dead
        waiting = GaugeMetricFamily(
            "exchanger_peer_waiting", "Copies waiting in each peer e-port's mailbox for its link to carry them.",
            labels=["peer"],
        )
        for peer, count in sorted(self.peer_waiting.items()):
            waiting.add_metric([peer], count)
        yield waiting
        if self.broker is not None:
            info = GaugeMetricFamily("exchanger_broker_info", "The broker's product and version (value 1).",
                                     labels=["product", "version"])
            info.add_metric([self.broker.product, self.broker.version], 1)
            yield info
        expiry = GaugeMetricFamily(
            "exchanger_certificate_expiry_days", "Days until each certificate expires.", labels=["participant", "serial"]
        )
        config = self.state.config
        owners = [(config.platform.id, config.platform.certificate)]
        owners += [(p.id, cert) for p in config.registry for cert in p.certificates]
        for owner, certificate in owners:
            if certificate is not None:
                expiry.add_metric([owner, format(certificate.serial_number, "x")], days_left(certificate))
        yield expiry
        version = GaugeMetricFamily(
            "exchanger_config_file_ok", "1 when the configuration file on disk passes its checks.", labels=["version"]
        )
        version.add_metric([config.version], 0 if self.state.problems else 1)
        yield version


class Readiness:
    """The named checks behind /readyz."""

    def __init__(self, registry: CollectorRegistry, state: ConfigState, workers: int):
        self.registry = registry
        self.state = state
        self.workers = workers
        self.extra: dict[str, Check] = {}

    def _broker(self) -> str | None:
        connected = self.registry.get_sample_value("exchanger_broker_connected") or 0
        if connected < self.workers:
            return f"{int(connected)} of {self.workers} worker(s) consuming from the broker"
        return None

    def _config(self) -> str | None:
        if self.state.problems:
            return "the configuration file fails its checks (the running version is kept): " + "; ".join(
                self.state.problems[:5]
            )
        return None

    def _message_log(self) -> str | None:
        failing = self.registry.get_sample_value("exchanger_message_log_failing") or 0
        if failing:
            return f"the message log cannot be written by {int(failing)} worker(s) (see their message_log events)"
        return None

    def _platform(self) -> str | None:
        certificate = self.state.config.platform.certificate
        if certificate is None:
            return "no platform certificate"
        left = days_left(certificate)
        if left <= 0:
            return f"the platform certificate expired {-left:.0f} day(s) ago"
        if certificate.not_valid_before_utc > datetime.now(timezone.utc):
            return "the platform certificate is not valid yet"
        return None

    def results(self) -> dict[str, str | None]:
        """Every check's outcome: None for healthy, else what is wrong."""
        checks: dict[str, Check] = {
            "broker": self._broker,
            "config": self._config,
            "platform_certificate": self._platform,
            "message_log": self._message_log,
        }
        checks.update(self.extra)
        outcome = {}
        for name, check in checks.items():
            try:
                outcome[name] = check()
            except Exception as exc:  # a check that cannot run is a failing check, not a dead endpoint
                outcome[name] = f"check failed: {exc!r}"
        return outcome


def _handler(registry: CollectorRegistry, readiness: Readiness):
    class Handler(BaseHTTPRequestHandler):
        def _send(self, status: int, body: bytes, content_type: str) -> None:
            self.send_response(status)
            self.send_header("Content-Type", content_type)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            self.wfile.write(body)

        def do_GET(self):  # noqa: N802 (the http.server API)
            path = self.path.split("?", 1)[0]
            if path == "/metrics":
                self._send(200, generate_latest(registry), CONTENT_TYPE_LATEST)
            elif path == "/healthz":
                self._send(200, b'{"alive": true}\n', "application/json")
            elif path == "/readyz":
                results = readiness.results()
                ready = not any(results.values())
                body = {"ready": ready, "checks": {k: {"ok": v is None, "detail": v or "ok"} for k, v in results.items()}}
                self._send(200 if ready else 503, json.dumps(body, indent=2).encode() + b"\n", "application/json")
            else:
                self._send(404, b"not found: try /metrics, /healthz or /readyz\n", "text/plain")

        def log_message(self, *_args):  # scrapes every few seconds are not worth a log line each
            pass

    return Handler


def serve(bind: str, port: int, registry: CollectorRegistry, readiness: Readiness) -> ThreadingHTTPServer | None:
    """Serve /metrics, /healthz and /readyz from a background thread; None (and an error event) if the port is taken."""
    try:
        server = ThreadingHTTPServer((bind, port), _handler(registry, readiness))
    except OSError as exc:
        log.error("metrics.unavailable", bind=bind, port=port, error=str(exc))
        return None
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, name="exchanger-http", daemon=True).start()
    log.info("metrics.listening", bind=bind, port=server.server_address[1])
    return server
