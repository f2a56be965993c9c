"""AMQP URLs: which one to use, how to put credentials and a vhost in it, and connection parameters."""

from __future__ import annotations

import os
import ssl
from collections.abc import Mapping
from urllib.parse import SplitResult, parse_qs, quote, urlencode, urlsplit, urlunsplit

import pika
from pika.credentials import ExternalCredentials

from exchanger.errors import ExchangerError, FileProblem

ENV_VAR = "EXCHANGER_AMQP_URL"
DEFAULT_URL = "amqp://127.0.0.1:5672/%2F"
_SCHEMES = ("amqp", "amqps")
# The TLS query parameters of RabbitMQ's URI spec that the exchange understands; pika knows none of them.
TLS_PARAMETERS = ("cacertfile", "certfile", "keyfile", "server_name_indication", "auth_mechanism")


class AmqpUrlError(ExchangerError, ValueError):
    """The AMQP URL cannot be used as written."""


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
    raise AmqpUrlError("no AMQP URL given")


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
    operator can tune one deployment without a code change. An ``amqps://`` URL
    connects over TLS, verifying the broker's certificate and host name against
    ``cacertfile`` (else the system's CAs), presenting ``certfile``/``keyfile``
    when given, and logging in by that certificate with ``auth_mechanism=external``.
    """
    _check_scheme(url)
    parts = urlsplit(url)
    query = parse_qs(parts.query)
    tls = {name: query.pop(name)[-1] for name in TLS_PARAMETERS if name in query}
    if tls and parts.scheme != "amqps":
        raise AmqpUrlError(f"{', '.join(tls)} need an amqps:// URL: {redact(url)}")
    if tls and "ssl_options" in query:
        raise AmqpUrlError(f"give either pika's ssl_options or {', '.join(tls)}, not both: {redact(url)}")
    mechanism = tls.get("auth_mechanism", "plain").lower()
    if mechanism not in ("plain", "external"):
        raise AmqpUrlError(f"auth_mechanism must be plain or external, not {mechanism!r}: {redact(url)}")
    if tls:
        url = urlunsplit(parts._replace(query=urlencode(query, doseq=True)))
    try:
        params = pika.URLParameters(url)
    except ValueError as exc:  # a port that is not a number, a query value pika cannot read
        raise AmqpUrlError(f"{exc}: {redact(url)}") from None
    if parts.scheme == "amqps" and "ssl_options" not in query:
        params.ssl_options = _ssl_options(parts.hostname, tls)
        if mechanism == "external":
            if "certfile" not in tls:
                raise AmqpUrlError(f"auth_mechanism=external needs a client certificate (certfile=...): {redact(url)}")
            # The broker takes the user name from the certificate (ssl_cert_login_from), not from the URL.
            params.credentials = ExternalCredentials()
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


def _ssl_options(host: str | None, tls: dict[str, str]) -> pika.SSLOptions:
    """A TLS client context that always verifies the broker, with the client certificate when one is given."""
    try:
        context = ssl.create_default_context(cafile=tls.get("cacertfile"))
    except (OSError, ValueError) as exc:
        raise _unreadable(tls.get("cacertfile"), "the CA certificates (cacertfile in the AMQP URL)", exc) from None
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if "certfile" in tls:
        try:
            context.load_cert_chain(tls["certfile"], tls.get("keyfile"))
        except (OSError, ValueError) as exc:
            raise _unreadable(tls["certfile"], "the client certificate and key (certfile/keyfile in the AMQP URL)", exc) from None
    elif "keyfile" in tls:
        raise AmqpUrlError("keyfile given without certfile")
    return pika.SSLOptions(context, server_hostname=tls.get("server_name_indication") or host)


def _unreadable(path: str | None, what: str, exc: Exception) -> FileProblem:
    reason = getattr(exc, "strerror", None) or getattr(exc, "reason", None) or str(exc)
    return FileProblem(path or "(system default)", what, reason)


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
        raise AmqpUrlError(f"not an AMQP URL (scheme must be amqp or amqps): {redact(url)}")
