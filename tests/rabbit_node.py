"""A RabbitMQ node of the tests' own, for faults that would disturb everyone else on the machine's node.

Restarting a broker or raising a memory alarm on the shared node would break every other test run
using it, so those faults are injected into a separate node started from the same installation:
its own node name, AMQP and distribution ports, data, logs and (empty) plugin list, the shared epmd.
"""

from __future__ import annotations

import contextlib
import os
import pwd
import secrets
import shutil
import signal
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path

import pika
import pika.exceptions

from exchanger.transport.admin import BrokerAdmin


class NodeUnavailable(Exception):
    """A node of our own cannot be started here (no RabbitMQ installation, or not allowed to run it)."""


def free_port() -> int:
    """A TCP port nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def _server_user() -> pwd.struct_passwd | None:
    """The account the packaged scripts run RabbitMQ as, when it exists."""
    try:
        return pwd.getpwnam("rabbitmq")
    except KeyError:
        return None


class RabbitNode:
    """One RabbitMQ node on free ports with its data in a temporary directory; ``stop`` removes it all."""

    def __init__(self, label: str = "exchanger-faults"):
        """Choose a node name and free ports; nothing starts before ``start``."""
        self.name = f"{label}-{secrets.token_hex(4)}@localhost"
        self.port = free_port()
        self.dist_port = free_port()
        self.base: Path | None = None

    @property
    def url(self) -> str:
        """The AMQP URL of the node's default vhost as its built-in admin (guest may log in from localhost)."""
        return f"amqp://guest:guest@127.0.0.1:{self.port}/%2F"

    def environment(self) -> dict[str, str]:
        """The variables that make the packaged scripts (server and rabbitmqctl) mean this node."""
        assert self.base is not None
        return {
            "RABBITMQ_NODENAME": self.name,
            "RABBITMQ_NODE_PORT": str(self.port),
            "RABBITMQ_DIST_PORT": str(self.dist_port),
            "RABBITMQ_MNESIA_BASE": str(self.base / "mnesia"),
            "RABBITMQ_LOG_BASE": str(self.base / "log"),
            "RABBITMQ_PID_FILE": str(self.base / "node.pid"),
            "RABBITMQ_ENABLED_PLUGINS_FILE": str(self.base / "enabled_plugins"),
            "RABBITMQ_CONFIG_FILE": str(self.base / "rabbitmq.conf"),
            "RABBITMQ_ADVANCED_CONFIG_FILE": str(self.base / "advanced.config"),
            # The machine's rabbitmq-env.conf names the shared node; an empty one keeps it out.
            "RABBITMQ_CONF_ENV_FILE": str(self.base / "rabbitmq-env.conf"),
        }

    def start(self, timeout: float = 90) -> RabbitNode:
        """Start the node detached and wait until it serves AMQP; raise NodeUnavailable if it cannot run here."""
        if shutil.which("rabbitmq-server") is None or shutil.which("rabbitmqctl") is None:
            raise NodeUnavailable("rabbitmq-server is not installed")
        account = _server_user()
        if account is not None and os.geteuid() not in (0, account.pw_uid):
            raise NodeUnavailable("only root or the rabbitmq user may start a RabbitMQ node from the package")
        # Not under pytest's private temp dir: the server runs as the rabbitmq user and must reach it.
        self.base = Path(tempfile.mkdtemp(prefix="exchanger-faults-node-"))
        self.base.chmod(0o755)
        (self.base / "mnesia").mkdir()
        (self.base / "log").mkdir()
        (self.base / "enabled_plugins").write_text("[].\n")
        (self.base / "rabbitmq-env.conf").write_text("")
        (self.base / "rabbitmq.conf").write_text(
            f"listeners.tcp.default = 127.0.0.1:{self.port}\nvm_memory_high_watermark.relative = 0.4\n"
        )
        if account is not None and os.geteuid() == 0:
            for path in [self.base, *self.base.rglob("*")]:
                os.chown(path, account.pw_uid, account.pw_gid)
        self._launch(timeout)
        return self

    def _launch(self, timeout: float) -> None:
        """Run the packaged server detached on this node's files and wait until it serves AMQP."""
        started = subprocess.run(["rabbitmq-server", "-detached"], env=self._env(), capture_output=True, text=True, timeout=60)
        if started.returncode != 0:
            raise NodeUnavailable(f"rabbitmq-server -detached failed: {started.stderr or started.stdout}")
        self.wait_until_serving(timeout)

    def restart(self, timeout: float = 120) -> None:
        """Start the node again on its own data, after ``kill`` (a cluster member rejoins its cluster)."""
        self._launch(timeout)

    def kill(self) -> None:
        """SIGKILL the node's Erlang VM, as a crash or a power cut would stop it."""
        assert self.base is not None
        os.kill(int((self.base / "node.pid").read_text().strip()), signal.SIGKILL)
        deadline = time.monotonic() + 30
        # Until epmd has seen the VM go, starting it again would find the name taken.
        while time.monotonic() < deadline and self.name.split("@")[0] in subprocess.run(
            ["epmd", "-names"], capture_output=True, text=True
        ).stdout.split():
            time.sleep(0.2)

    def join(self, other: RabbitNode) -> None:
        """Make this (fresh) node a member of the other node's cluster."""
        self.ctl("stop_app")
        self.ctl("join_cluster", other.name)
        self.start_app()

    def _env(self) -> dict[str, str]:
        """This process's environment with the node's variables on top."""
        return {**os.environ, **self.environment()}

    def ctl(self, *args: str, timeout: float = 120, check: bool = True, attempts: int = 3) -> subprocess.CompletedProcess:
        """Run rabbitmqctl against this node only (the commands used here are idempotent, so a failure is retried)."""
        for attempt in range(attempts):
            result = subprocess.run(
                ["rabbitmqctl", "-n", self.name, *args], env=self._env(), capture_output=True, text=True, timeout=timeout
            )
            if result.returncode == 0 or not check:
                return result
            # The CLI reaches the node over Erlang distribution, which a busy machine sometimes fails to set up.
            time.sleep(1 + attempt)
        raise RuntimeError(f"rabbitmqctl {' '.join(args)} on {self.name} failed {attempts} times: {result.stdout}{result.stderr}")

    def admin(self) -> BrokerAdmin:
        """The exchange's own broker administration, aimed at this node."""
        return BrokerAdmin(node=self.name)

    def wait_until_serving(self, timeout: float = 90) -> None:
        """Wait until an AMQP client can open a connection (the app is up and the listener bound)."""
        deadline = time.monotonic() + timeout
        last: Exception | None = None
        while time.monotonic() < deadline:
            try:
                connection = pika.BlockingConnection(pika.URLParameters(self.url))
                connection.close()
                return
            except pika.exceptions.AMQPError as exc:
                last = exc
                time.sleep(0.5)
        log = self.base / "log" if self.base else None
        raise NodeUnavailable(f"node {self.name} did not serve AMQP within {timeout}s ({last!r}); logs in {log}")

    def stop_app(self) -> None:
        """Stop the RabbitMQ application (the Erlang node stays up): every connection is closed."""
        self.ctl("stop_app")

    def start_app(self) -> None:
        """Start the application again and wait until it serves AMQP."""
        self.ctl("start_app")
        self.ctl("await_startup", "--timeout", "60")
        self.wait_until_serving()

    @contextlib.contextmanager
    def memory_alarm(self) -> Iterator[None]:
        """Raise the memory alarm (a watermark no node can stay under) for the duration of the block."""
        self.ctl("set_vm_memory_high_watermark", "0.0000001")
        try:
            yield
        finally:
            self.ctl("set_vm_memory_high_watermark", "0.4")

    def alarms(self) -> str:
        """The node's alarms as rabbitmqctl reports them."""
        return self.ctl("eval", "rabbit_alarm:get_alarms().").stdout

    def stop(self) -> None:
        """Stop and halt the node, then remove its data."""
        try:
            if self.base is not None:
                self.ctl("stop", timeout=120, check=False)
        finally:
            if self.base is not None:
                shutil.rmtree(self.base, ignore_errors=True)
                self.base = None
