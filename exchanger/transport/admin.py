"""Broker administration through rabbitmqctl: vhosts, users and least-privilege permissions."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from exchanger.errors import ExchangerError
from exchanger.transport.topology import Topology

DEFAULT_DAEMON_USER = "exchanger"

# rabbitmqctl exits with 69 (EX_UNAVAILABLE) both when the node is down and
# when a vhost is missing, so the node case is told apart by its wording
# (the first for most commands, the second for ping).
_NODE_DOWN = ("unable to perform an operation on node", "Failed to connect and authenticate")


class AdminError(ExchangerError):
    """A rabbitmqctl command failed."""


class BrokerUnavailable(AdminError):
    """rabbitmqctl is missing or cannot reach the RabbitMQ node."""


@dataclass(frozen=True)
class Permissions:
    """The configure, write and read regexes of one user on one vhost."""

    configure: str
    write: str
    read: str


class BrokerAdmin:
    """Administer a RabbitMQ node with its rabbitmqctl command."""

    def __init__(self, rabbitmqctl: str = "rabbitmqctl", *, node: str | None = None, timeout: float = 60) -> None:
        self.rabbitmqctl = rabbitmqctl
        self.node = node
        self.timeout = timeout

    def ping(self) -> None:
        """Raise BrokerUnavailable unless the node answers."""
        self._run("ping")

    def add_vhost(self, name: str) -> None:
        """Create a virtual host; nothing happens if it exists."""
        self._run("add_vhost", _arg(name))

    def delete_vhost(self, name: str) -> None:
        """Delete a virtual host and everything in it; nothing happens if it is absent."""
        if self.vhost_exists(name):
            self._run("delete_vhost", _arg(name))

    def vhost_exists(self, name: str) -> bool:
        """Return whether the virtual host exists."""
        return any(row["name"] == name for row in self._json("list_vhosts", "name"))

    def users(self) -> dict[str, tuple[str, ...]]:
        """Return every broker user with its tags."""
        return {row["user"]: _tags(row["tags"]) for row in self._json("list_users")}

    def user_exists(self, name: str) -> bool:
        """Return whether the broker user exists."""
        return name in self.users()

    def ensure_user(self, name: str, password: str, tags: Iterable[str] = ()) -> None:
        """Create the user, or reset its password, and set exactly the given tags."""
        _check_password(name, password)
        # The password goes through stdin so that it never shows in the process list.
        if self.user_exists(name):
            self._run("change_password", _arg(name), stdin=password)
        else:
            try:
                self._run("add_user", _arg(name), stdin=password)
            except AdminError as exc:
                # Someone else created it since we looked: fall back to an update.
                if "already exists" not in str(exc):
                    raise
                self._run("change_password", _arg(name), stdin=password)
        # Always set, so that a tag given earlier (administrator, impersonator) is taken away.
        self._run("set_user_tags", _arg(name), *(_arg(tag) for tag in tags))

    def delete_user(self, name: str) -> None:
        """Delete a broker user; nothing happens if it is absent."""
        if self.user_exists(name):
            self._run("delete_user", _arg(name))

    def set_permissions(self, vhost: str, user: str, configure: str, write: str, read: str) -> None:
        """Set a user's configure, write and read regexes on a virtual host."""
        self._run("set_permissions", "-p", vhost, _arg(user), configure, write, read)

    def permissions(self, vhost: str) -> dict[str, Permissions]:
        """Return the permissions of every user on a virtual host."""
        return {
            row["user"]: Permissions(row["configure"], row["write"], row["read"])
            for row in self._json("list_permissions", "-p", vhost)
        }

    def list_queues(self, vhost: str) -> list[dict[str, Any]]:
        """Return name, type, durable, arguments and message count of every queue in a vhost."""
        rows = self._json("list_queues", "-p", vhost, "name", "type", "durable", "arguments", "messages")
        for row in rows:
            # rabbitmqctl gives arguments as [name, amqp-type, value] triples.
            row["arguments"] = {name: value for name, _type, value in row["arguments"]}
        return rows

    def set_parameter(self, vhost: str, component: str, name: str, value: Mapping[str, Any]) -> None:
        """Set a runtime parameter (a shovel's definition, say), replacing any earlier value.

        Given as definitions on stdin rather than with set_parameter, so that the credentials in a shovel's
        URIs never show in the process list.
        """
        parameter = {"vhost": vhost, "component": component, "name": _arg(name), "value": dict(value)}
        self._run("import_definitions", "--format", "json", stdin=json.dumps({"parameters": [parameter]}))

    def clear_parameter(self, vhost: str, component: str, name: str) -> None:
        """Remove a runtime parameter; nothing happens if it is absent."""
        if name in self.parameter_names(vhost, component):
            self._run("clear_parameter", "-p", vhost, component, _arg(name))

    def parameter_names(self, vhost: str, component: str) -> list[str]:
        """The names of a component's runtime parameters in a virtual host."""
        return [row["name"] for row in self._json("list_parameters", "-p", vhost) if row.get("component") == component]

    def shovel_status(self) -> list[dict[str, Any]]:
        """Every shovel on the node with its state (needs the rabbitmq_shovel plugin)."""
        return self._json("shovel_status")

    def _json(self, *args: str) -> list[dict[str, Any]]:
        output = self._run(*args, "--formatter", "json")
        return json.loads(output) if output.strip() else []

    def _run(self, *args: str, stdin: str | None = None) -> str:
        executable = shutil.which(self.rabbitmqctl)
        if executable is None:
            raise BrokerUnavailable(
                f"'{self.rabbitmqctl}' was not found; install the RabbitMQ command line tools "
                "or run on the broker host"
            )
        command = [executable, "-q"]
        if self.node:
            command += ["-n", self.node]
        command += list(args)
        try:
            done = subprocess.run(
                command,
                input=stdin,
                capture_output=True,
                text=True,
                timeout=self.timeout,
                check=False,
            )
        except subprocess.TimeoutExpired as exc:
            raise BrokerUnavailable(f"rabbitmqctl {args[0]} did not finish within {self.timeout:g}s") from exc
        if done.returncode == 0:
            return done.stdout
        message = _first_error_line(done.stderr or done.stdout)
        if any(marker in done.stderr for marker in _NODE_DOWN):
            raise BrokerUnavailable(
                f"rabbitmqctl cannot reach the RabbitMQ node {self.node or '(local default)'}: it is not "
                f"running, or the Erlang cookie does not match. rabbitmqctl said: {message}"
            )
        raise AdminError(f"rabbitmqctl {args[0]} failed (exit {done.returncode}): {message}")


def participant_permissions(topology: Topology, participant_id: str) -> Permissions:
    """Return the least privilege a participant needs: publish to inbound, read its own mailbox."""
    return Permissions(
        # No configure at all: participants never declare, delete or bind anything.
        configure="^$",
        write=f"^{re.escape(topology.inbound_exchange)}$",
        # basic.get, basic.consume and queue.purge all check read on the queue only.
        read=f"^{re.escape(topology.mailbox_queue(participant_id))}$",
    )


def apply_users(
    admin: BrokerAdmin,
    vhost: str,
    topology: Topology,
    passwords: Mapping[str, str],
    *,
    daemon_user: str = DEFAULT_DAEMON_USER,
    daemon_password: str,
    broker_users: Mapping[str, str] | None = None,
) -> tuple[str, ...]:
    """Create or update the daemon user and one least-privilege user per participant; return their names.

    A participant's broker user is named after its id unless ``broker_users``
    maps the id to another name; ``passwords`` is keyed by broker user name.
    """
    users = {pid: (broker_users or {}).get(pid, pid) for pid in topology.participants}
    missing = [user for user in users.values() if user not in passwords]
    if missing:
        raise ValueError(f"no broker password for user(s): {', '.join(missing)}")
    taken = [user for user in users.values() if list(users.values()).count(user) > 1]
    if taken:
        raise ValueError(f"broker user(s) shared by several participants: {', '.join(sorted(set(taken)))}")
    if daemon_user in users.values():
        raise ValueError(f"the daemon user '{daemon_user}' must not also be a participant's broker user")
    _check_password(daemon_user, daemon_password)
    for user in users.values():
        _check_password(user, passwords[user])

    admin.add_vhost(vhost)
    admin.ensure_user(daemon_user, daemon_password)
    admin.set_permissions(vhost, daemon_user, ".*", ".*", ".*")
    for participant_id, user in users.items():
        # No tags: "impersonator" would let the user forge user_id, "management" is unused.
        admin.ensure_user(user, passwords[user])
        granted = participant_permissions(topology, participant_id)
        admin.set_permissions(vhost, user, granted.configure, granted.write, granted.read)
    return (daemon_user, *users.values())


def _check_password(user: str, password: str) -> None:
    # rabbitmqctl reads a password from stdin as one line and trims it, and an
    # empty password disables password login, so refuse what would be altered.
    if not password:
        raise ValueError(f"empty broker password for '{user}'")
    if password != password.strip() or "\n" in password or "\r" in password:
        raise ValueError(f"broker password for '{user}' must not contain line breaks or start or end with blanks")


def _tags(value: list[str] | str) -> tuple[str, ...]:
    # Older rabbitmqctl releases print tags as one "[a, b]" string.
    if isinstance(value, str):
        return tuple(value.strip("[]").replace(",", " ").split())
    return tuple(value)


def _arg(value: str) -> str:
    # A leading "-" would be read by rabbitmqctl as an option.
    if not value or value.startswith("-"):
        raise ValueError(f"unusable name for rabbitmqctl: {value!r}")
    return value


def _first_error_line(text: str) -> str:
    for line in text.splitlines():
        line = line.strip().removeprefix("Error:").strip()
        if line:
            return line
    return "(no message)"

