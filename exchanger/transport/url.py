"""AMQP URLs: which one to use, how to put credentials and a vhost in it, and connection parameters."""

from __future__ import annotations

import os
from collections.abc import Mapping
from urllib.parse import SplitResult, parse_qs, quote, urlsplit, urlunsplit

import pika

ENV_VAR = "EXCHANGER_AMQP_URL"
DEFAULT_URL = "amqp://127.0.0.1:5672/%2F"
_SCHEMES = ("amqp", "amqps")


def resolve_amqp_url(
    explicit: str | None,
    env: Mapping[str, str] = os.environ,
    default: str = DEFAULT_URL,
) -> str:
    """Return the URL to use: an explicit one, else $EXCHANGER_AMQP_URL, else the default."""
    for candidate in (explicit, env.get(ENV_VAR), default):
        if candidate:
            _check_scheme(candidate)
            return candidate
    raise ValueError("no AMQP URL given")


def with_credentials(url: str, user: str, password: str) -> str:
    """Return the URL with its user and password replaced, everything else kept."""
    parts = _split(url)
    userinfo = f"{quote(user, safe='')}:{quote(password, safe='')}"
    return urlunsplit(parts._replace(netloc=f"{userinfo}@{_hostport(parts.netloc)}"))


def with_vhost(url: str, vhost: str) -> str:
    """Return the URL pointing at another virtual host, everything else kept."""
    parts = _split(url)
    # The vhost is one path segment, so "/" itself must be escaped as %2F.
    return urlunsplit(parts._replace(path="/" + quote(vhost, safe="")))


def redact(url: str) -> str:
    """Return the URL with any password replaced by asterisks, for logs and messages."""
    parts = urlsplit(url)
    userinfo, at, hostport = parts.netloc.rpartition("@")
    if not at or ":" not in userinfo:
        return url
    user = userinfo.split(":", 1)[0]
    return urlunsplit(parts._replace(netloc=f"{user}:***@{hostport}"))


def connection_parameters(
    url: str,
    *,
    heartbeat: int = 30,
    blocked_connection_timeout: float = 60,
    client_name: str | None = None,
) -> pika.URLParameters:
    """Return pika parameters for the URL with a heartbeat and a blocked-connection timeout.

    A value given in the URL's query string wins over the keyword, so an
    operator can tune one deployment without a code change.
    """
    _check_scheme(url)
    params = pika.URLParameters(url)
    query = parse_qs(urlsplit(url).query)
    if "heartbeat" not in query:
        params.heartbeat = heartbeat
    # Without this a client publishing during a broker memory or disk alarm
    # waits for the alarm to clear, however long that takes.
    if "blocked_connection_timeout" not in query:
        params.blocked_connection_timeout = blocked_connection_timeout
    if client_name:
        properties = dict(params.client_properties or {})
        # Shown by rabbitmqctl list_connections, so an operator can tell clients apart.
        properties["connection_name"] = client_name
        params.client_properties = properties
    return params


def _split(url: str) -> SplitResult:
    _check_scheme(url)
    return urlsplit(url)


def _hostport(netloc: str) -> str:
    # The last "@" ends the userinfo: a hand-written password sometimes holds
    # a raw "@", the host never does.
    return netloc.rpartition("@")[2]


def _check_scheme(url: str) -> None:
    scheme = urlsplit(url).scheme
    if scheme not in _SCHEMES:
        raise ValueError(f"not an AMQP URL (scheme must be amqp or amqps): {redact(url)}")
