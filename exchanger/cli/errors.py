"""Every error a command can end on, told as an operator's message and a documented exit code, never a traceback."""

from __future__ import annotations

import socket
import traceback
from dataclasses import dataclass, field
from urllib.parse import unquote, urlsplit

import click
import pika.exceptions
import yaml

from exchanger.cli.common import EXIT_BROKER, EXIT_FAILED, EXIT_FILE, EXIT_INTERNAL, EXIT_USAGE
from exchanger.config import ConfigError
from exchanger.errors import ExchangerError, FileProblem
from exchanger.journal.store import StoreError
from exchanger.transport.admin import AdminError
from exchanger.transport.client import DeliveryError
from exchanger.transport.url import AmqpUrlError, resolve_amqp_url

_RABBIT_RUNNING = "is RabbitMQ running and listening there? (`rabbitmqctl status`)"
_URL_FORM = "write it as amqp://USER:PASSWORD@HOST:5672/VHOST (amqps://...:5671 for TLS), in --amqp-url or $EXCHANGER_AMQP_URL"


@dataclass(frozen=True)
class Failure:
    """What to tell the operator: one line, a few lines of what to do, and the exit code."""

    message: str
    details: list[str] = field(default_factory=list)
    code: int = EXIT_FAILED


def explain(exc: Exception, settings=None) -> Failure:
    """The operator's account of an error a command ended on."""
    if isinstance(exc, ConfigError):
        source = getattr(settings, "config_path", None)
        return Failure(f"the configuration {source} cannot be used:" if source else "the configuration cannot be used:", exc.problems)
    if isinstance(exc, AmqpUrlError):
        return Failure(f"the AMQP URL cannot be used: {exc}", [_URL_FORM], EXIT_USAGE)
    if isinstance(exc, FileProblem):
        return Failure(f"cannot read {exc.what} {exc.path}: {exc.reason}", [], EXIT_FILE)
    if isinstance(exc, pika.exceptions.AMQPError):
        return _broker_failure(exc, _broker_of(settings))
    if isinstance(exc, socket.gaierror):
        return Failure(
            f"cannot find the broker's host {_broker_of(settings)}: {exc.strerror}", ["check the host in the AMQP URL"], EXIT_BROKER
        )
    if isinstance(exc, (AdminError, DeliveryError)):
        return Failure(str(exc), [], EXIT_BROKER)
    if isinstance(exc, yaml.YAMLError):
        return Failure(f"not valid YAML: {exc}")
    if isinstance(exc, OSError):
        return _file_failure(exc)
    if isinstance(exc, StoreError):
        return Failure(f"the message log cannot be used: {exc}")
    if isinstance(exc, ExchangerError):
        return Failure(str(exc))
    return Failure(
        f"internal error: {type(exc).__name__}: {exc}",
        ["this is a bug in the exchange: please report it with the traceback (`--log-level debug` prints it)"],
        EXIT_INTERNAL,
    )


def report(exc: Exception, settings=None) -> int:
    """Print the operator's account of ``exc`` on stderr; return the exit code."""
    failure = explain(exc, settings)
    click.secho(f"error: {failure.message}", fg="red", err=True)
    for line in failure.details:
        click.echo(f"  - {line}", err=True)
    if failure.code == EXIT_INTERNAL and getattr(settings, "log_level", None) == "debug":
        click.echo("".join(traceback.format_exception(exc)), err=True)
    return failure.code


def _broker_of(settings) -> str:
    """host:port/vhost of the broker the command was pointed at, for messages (never the password)."""
    try:
        parts = urlsplit(resolve_amqp_url(getattr(settings, "amqp_url", None)))
        vhost = unquote(parts.path[1:]) if len(parts.path) > 1 else "/"
        return f"{parts.hostname}:{parts.port or (5671 if parts.scheme == 'amqps' else 5672)} (virtual host {vhost})"
    except ValueError:
        return "the broker"


def _broker_failure(exc: pika.exceptions.AMQPError, broker: str) -> Failure:
    if isinstance(exc, pika.exceptions.ProbableAuthenticationError):
        return Failure(
            f"the broker at {broker} refused the login: wrong user name or password",
            [
                "without a user in the AMQP URL each command logs in as the identity it acts for, "
                "with the password in keys/<id>/amqp-password",
                "`exchanger topology apply` creates those users with those passwords",
            ],
            EXIT_BROKER,
        )
    if isinstance(exc, pika.exceptions.ProbableAccessDeniedError):
        return Failure(
            f"the broker at {broker} refused access to the virtual host: {_innermost(exc)}",
            ["does the virtual host exist (`rabbitmqctl list_vhosts`), and may this user use it (`exchanger topology apply`)?"],
            EXIT_BROKER,
        )
    if isinstance(exc, pika.exceptions.AMQPConnectionError):
        return Failure(f"cannot connect to the broker at {broker}: {_innermost(exc)}", [_RABBIT_RUNNING], EXIT_BROKER)
    if isinstance(exc, pika.exceptions.ChannelClosedByBroker):
        return Failure(
            f"the broker at {broker} refused the request: ({exc.reply_code}) {exc.reply_text}",
            ["is the topology declared? (`exchanger topology apply`)"],
            EXIT_BROKER,
        )
    return Failure(f"the connection to the broker at {broker} failed: {_innermost(exc)}", [_RABBIT_RUNNING], EXIT_BROKER)


def _innermost(exc: BaseException) -> str:
    """The root cause pika wraps (a refused socket, the broker's reply), in its own words."""
    seen = exc
    for _ in range(8):  # pika nests a few levels at most
        inner = next((arg for arg in getattr(seen, "args", ()) if isinstance(arg, BaseException)), None)
        inner = inner or getattr(seen, "exception", None) or seen.__cause__
        if not isinstance(inner, BaseException):
            break
        seen = inner
    if isinstance(seen, OSError) and seen.strerror:
        return seen.strerror
    text = str(seen).strip() or type(seen).__name__
    return text


def _file_failure(exc: OSError) -> Failure:
    what = f" {exc.filename}" if exc.filename else ""
    return Failure(f"cannot use{what}: {exc.strerror or exc}", [], EXIT_FILE)
