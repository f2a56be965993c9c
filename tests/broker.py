"""The real RabbitMQ broker for tests: a throwaway vhost per run, throwaway users, all removed afterwards."""

from __future__ import annotations

import itertools
import os
import secrets
from collections.abc import Iterator, Mapping
from typing import NoReturn
from urllib.parse import unquote, urlsplit

import pika
import pika.exceptions
import pytest

from exchanger.transport.admin import AdminError, BrokerAdmin
from exchanger.transport.url import connection_parameters, redact, resolve_amqp_url, with_credentials, with_vhost

BASE_URL_VAR = "EXCHANGER_TEST_AMQP_URL"
DEFAULT_BASE_URL = "amqp://guest:guest@127.0.0.1:5672/%2F"


class BrokerUnreachable(Exception):
    """The tests cannot use the broker: not running, or not administrable from here."""


class Broker:
    """One test run's sandbox on the real broker; its vhosts and users are deleted by close()."""

    def __init__(self, admin: BrokerAdmin, base_url: str) -> None:
        self.admin = admin
        self.base_url = base_url
        self.run_id = secrets.token_hex(4)
        self.admin_user = unquote(urlsplit(base_url).username or "guest")
        self._serial = itertools.count(1)
        self._vhosts: list[str] = []
        self._users: set[str] = set()
        self.vhost = self.new_vhost(f"exchanger-test-{self.run_id}")
        self.url = self.admin_url(self.vhost)

    @classmethod
    def open(cls, env: Mapping[str, str] = os.environ) -> Broker:
        """Check the broker answers both AMQP and rabbitmqctl, then make the run's vhost."""
        base_url = env.get(BASE_URL_VAR) or resolve_amqp_url(None, env, default=DEFAULT_BASE_URL)
        if not urlsplit(base_url).username:
            base_url = with_credentials(base_url, "guest", "guest")
        try:
            connection = pika.BlockingConnection(connection_parameters(base_url, client_name="exchanger tests"))
        except pika.exceptions.AMQPError as exc:
            raise BrokerUnreachable(f"no AMQP broker at {redact(base_url)}: {exc!r}") from exc
        connection.close()
        admin = BrokerAdmin()
        try:
            admin.ping()
            return cls(admin, base_url)
        except AdminError as exc:
            raise BrokerUnreachable(f"cannot administer the broker with rabbitmqctl: {exc}") from exc

    def unique(self, label: str) -> str:
        """Return a name no other test run or test uses, valid as a participant id."""
        return f"t{self.run_id}-{label}{next(self._serial)}"

    def new_vhost(self, name: str | None = None) -> str:
        """Create a vhost the admin user may do anything in; return its name."""
        name = name or f"exchanger-test-{self.run_id}-{next(self._serial)}"
        self.admin.add_vhost(name)
        self._vhosts.append(name)
        self.admin.set_permissions(name, self.admin_user, ".*", ".*", ".*")
        return name

    def admin_url(self, vhost: str) -> str:
        """Return the URL that logs in as the admin user on a vhost."""
        return with_vhost(self.base_url, vhost)

    def track_user(self, name: str) -> None:
        """Have a user made by the code under test deleted along with the sandbox."""
        self._users.add(name)

    def delete_user(self, name: str) -> None:
        """Delete one user now rather than at the end of the run."""
        self.admin.delete_user(name)
        self._users.discard(name)

    def url_for(self, user: str, password: str, vhost: str | None = None) -> str:
        """Return the URL that logs in as the user on a vhost (the run's by default)."""
        return with_vhost(with_credentials(self.base_url, user, password), vhost or self.vhost)

    def close(self) -> None:
        """Delete every user and vhost the run made, reporting what could not be deleted."""
        failures = []
        # Keep going after a failure so one stuck user does not leave every vhost behind.
        steps = [(self.admin.delete_user, name) for name in sorted(self._users)]
        steps += [(self.admin.delete_vhost, name) for name in reversed(self._vhosts)]
        for delete, name in steps:
            try:
                delete(name)
            except AdminError as exc:
                failures.append(f"{name}: {exc}")
        self._users.clear()
        self._vhosts.clear()
        if failures:
            raise AdminError("could not clean up the test broker: " + "; ".join(failures))


def unavailable(reason: str, env: Mapping[str, str] = os.environ) -> NoReturn:
    """Fail the test under CI, where the broker is part of the job, and skip it elsewhere."""
    if env.get("CI", "").strip().lower() not in ("", "0", "false", "no"):
        pytest.fail(f"the RabbitMQ broker the tests need is unavailable: {reason}", pytrace=False)
    pytest.skip(f"RabbitMQ broker unavailable: {reason}")


# Kept on the pytest config so that the run gets one sandbox even when these
# fixtures are imported into more than one test module or conftest.
_SANDBOX = pytest.StashKey[Broker]()
_UNREACHABLE = pytest.StashKey[str]()


def run_sandbox(config: pytest.Config) -> Broker:
    """Return the run's sandbox, making it on first use (skips, or fails under CI, without a broker)."""
    stash = config.stash
    if _SANDBOX not in stash and _UNREACHABLE not in stash:
        try:
            stash[_SANDBOX] = Broker.open()
            config.add_cleanup(stash[_SANDBOX].close)
        except BrokerUnreachable as exc:
            stash[_UNREACHABLE] = str(exc)
    if _UNREACHABLE in stash:
        # Outside the except block, so the report is the reason alone, not pika's traceback.
        unavailable(stash[_UNREACHABLE])
    return stash[_SANDBOX]


@pytest.fixture(scope="session")
def broker(request: pytest.FixtureRequest) -> Broker:
    """The run's broker sandbox: admin, fresh vhost, throwaway users."""
    return run_sandbox(request.config)


@pytest.fixture(scope="session")
def broker_vhost(request: pytest.FixtureRequest) -> str:
    """The name of the run's fresh vhost."""
    return run_sandbox(request.config).vhost


@pytest.fixture(scope="session")
def amqp_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """The AMQP URL of the run's fresh vhost, logged in as the broker's admin user; deleted after the run."""
    yield run_sandbox(request.config).url
