"""A console app on the bundled configuration, with its own accounts, message log and metrics, for Flask's test client."""

from __future__ import annotations

import re
from dataclasses import dataclass, replace
from pathlib import Path

from prometheus_client import CollectorRegistry, Counter, Histogram

from exchanger.config.console import ConsoleSettings
from exchanger.config.model import JournalSettings
from exchanger.console.app import create_app
from exchanger.console.services import ConsoleServices
from exchanger.console.users import UserStore

PASSWORD = "correct horse battery"
# Nothing listens on port 1: the broker's figures are "unknown", at once.
NO_BROKER = "amqp://guest:guest@127.0.0.1:1/%2F"
_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')


@dataclass
class State:
    """Stands in for the daemon's ConfigState: the configuration it runs and the problems of the file on disk."""

    config: object
    problems: list


@dataclass
class Console:
    """The app, its client, accounts and metrics."""

    app: object
    client: object
    users: UserStore
    settings: ConsoleSettings
    services: ConsoleServices
    messages: Counter
    latency: Histogram
    reloads: list

    def csrf(self, path: str = "/login") -> str:
        """The CSRF token of a form on the page at ``path``."""
        page = self.client.get(path)
        match = _CSRF.search(page.get_data(as_text=True))
        assert match, f"no form token on {path}: {page.status}"
        return match.group(1)

    def sign_in(self, name: str, password: str = PASSWORD, **extra):
        """Post the sign-in form as a browser would."""
        return self.client.post("/login", data={"username": name, "password": password, "csrf_token": self.csrf(), **extra})

    def post(self, path: str, data: dict, page: str | None = None, **kwargs):
        """Post a form with the token from its page."""
        return self.client.post(path, data={**data, "csrf_token": self.csrf(page or path)}, **kwargs)


def make_console(tmp_path: Path, exchange, *, session_minutes: int = 30, tls: bool = False,
                 max_upload_bytes: int = 64 * 1024, roles=("viewer", "operator", "admin"), config_path=None) -> Console:
    """A console on ``exchange``'s configuration with one account per role (named after it)."""
    config = replace(exchange.config, journal=JournalSettings(url=f"sqlite:///{tmp_path / 'journal.db'}"))
    if config_path is not None:
        config = replace(config, path=config_path)
    settings = ConsoleSettings(
        users_file=tmp_path / "console-users.yaml", secret_file=tmp_path / "console-secret",
        session_minutes=session_minutes, max_upload_bytes=max_upload_bytes,
        tls_cert=tmp_path / "cert.pem" if tls else None, tls_key=tmp_path / "key.pem" if tls else None,
    )
    registry = CollectorRegistry()
    messages = Counter("exchanger_messages_total", "Messages.", ["type", "outcome"], registry=registry)
    latency = Histogram("exchanger_message_seconds", "End to end.", registry=registry, buckets=(0.01, 0.1, 1.0))
    reloads: list = []
    services = ConsoleServices(State(config, []), NO_BROKER, fast_metrics=[registry], reload=lambda: reloads.append(1),
                               reports_dir=tmp_path / "reports")
    users = UserStore(settings.users_file)
    for role in roles:
        users.add(role, role, PASSWORD)
    app = create_app(settings, services)
    return Console(app, app.test_client(), users, settings, services, messages, latency, reloads)
