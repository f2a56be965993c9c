"""The ``console:`` section of routes.yaml: where the operators' web console listens and whom it lets in."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from exchanger.config.problems import Problems

_PORT = {"type": "integer", "minimum": 0, "maximum": 65535, "errorMessage": "must be a TCP port number (0 picks a free one)"}

CONSOLE_SCHEMA: dict = {
    "type": "object",
    "additionalProperties": False,
    "properties": {
        "enabled": {"type": "boolean", "errorMessage": "must be true or false"},
        "bind": {"type": "string"},
        "port": _PORT,
        "tls": {
            "type": "object",
            "additionalProperties": False,
            "properties": {"cert": {"type": "string"}, "key": {"type": "string"}},
            "required": ["cert", "key"],
        },
        "session_minutes": {"type": "integer", "minimum": 1, "maximum": 1440,
                            "errorMessage": "must be a whole number of minutes from 1 to 1440"},
        "users": {"type": "string", "errorMessage": "must be the path of the console's accounts file"},
        "max_upload_kb": {"type": "integer", "minimum": 1, "errorMessage": "must be a positive whole number"},
    },
}


@dataclass(frozen=True)
class ConsoleSettings:
    """Where the console listens, its TLS files, how long a sign-in lasts, and the files it keeps."""

    enabled: bool = True
    bind: str = "127.0.0.1"
    port: int = 8470
    tls_cert: Path | None = None
    tls_key: Path | None = None
    session_minutes: int = 30
    users_file: Path = Path("var/console-users.yaml")
    secret_file: Path = Path("var/console-secret")
    max_upload_bytes: int = 2 * 1024 * 1024

    @property
    def tls(self) -> bool:
        """True when the console serves HTTPS."""
        return self.tls_cert is not None

    @property
    def address(self) -> str:
        """The URL an operator opens."""
        host = "127.0.0.1" if self.bind in ("", "0.0.0.0") else self.bind
        host = f"[{host}]" if ":" in host else host
        return f"{'https' if self.tls else 'http'}://{host}:{self.port}/"


def console_from(section: Any, base: Path, problems: Problems) -> ConsoleSettings:
    """The console's settings from the schema-checked section, paths made absolute against the config's folder."""
    if not isinstance(section, dict):
        section = {}
    tls = section.get("tls") if isinstance(section.get("tls"), dict) else {}
    cert = base / tls["cert"] if tls.get("cert") else None
    key = base / tls["key"] if tls.get("key") else None
    for name, path in (("cert", cert), ("key", key)):
        if path is not None and not path.is_file():
            problems.add(f"console.tls.{name}", f"no such file {path}")
    users = base / str(section.get("users", ConsoleSettings.users_file))
    return ConsoleSettings(
        enabled=bool(section.get("enabled", True)),
        bind=str(section.get("bind", ConsoleSettings.bind)),
        port=int(section.get("port", ConsoleSettings.port)),
        tls_cert=cert,
        tls_key=key,
        session_minutes=int(section.get("session_minutes", ConsoleSettings.session_minutes)),
        users_file=users,
        secret_file=users.with_name("console-secret"),
        max_upload_bytes=int(section.get("max_upload_kb", ConsoleSettings.max_upload_bytes // 1024)) * 1024,
    )
