"""``exchanger topology apply``: queues, exchanges, bindings and broker users from the configuration."""

from __future__ import annotations

from pathlib import Path
from urllib.parse import unquote, urlsplit

import click
import pika
import pika.exceptions

from exchanger.cli.common import EXIT_BROKER, EXIT_CODES_HELP, EXIT_FAILED, Settings, fail, pass_settings, read_password
from exchanger.cli.errors import explain
from exchanger.transport.admin import AdminError, BrokerAdmin, apply_users
from exchanger.transport.broker_version import MINIMUM, broker_version
from exchanger.transport.dead_letter_store import legacy_queue_depth
from exchanger.transport.names import LEGACY_DEAD_QUEUE
from exchanger.transport.topology import Topology, TopologyError, declare
from exchanger.transport.url import connection_parameters, resolve_amqp_url


def topology_of(config) -> Topology:
    """The broker topology a configuration needs."""
    return Topology(participants=config.registry.ids(), delivery_limit=config.broker.delivery_limit)


def declare_topology(url: str, config, *, exit_code: int = EXIT_BROKER) -> Topology:
    """Declare every exchange, queue and binding, or exit with an actionable error."""
    topology = topology_of(config)
    try:
        connection = pika.BlockingConnection(connection_parameters(url, client_name="exchanger topology"))
    except pika.exceptions.AMQPError as exc:
        failure = explain(exc, Settings(Path(), url, "info"))
        fail(failure.message, failure.details, exit_code)
    version = broker_version(connection)
    if version is not None and version.parts and version.parts < MINIMUM:
        connection.close()
        fail(
            f"the broker is {version}: the exchange needs RabbitMQ {'.'.join(map(str, MINIMUM))} or later",
            ["its dead letters live in a stream (3.9+) that quorum queues dead-letter into at least once (3.10+)"],
            EXIT_FAILED,
        )
    try:
        declare(connection.channel(), topology)
        legacy = legacy_queue_depth(connection)
        if legacy is not None:
            click.echo(
                f"an earlier version's dead-letter queue {LEGACY_DEAD_QUEUE} is still there ({legacy} message(s)): "
                f"move them into the stream {topology.dead_letters} with `exchanger dead migrate`",
                err=True,
            )
    except TopologyError as exc:
        fail(str(exc), code=EXIT_FAILED)
    except pika.exceptions.AMQPError as exc:
        fail(f"the broker refused the topology: {exc!r}", code=exit_code)
    finally:
        if connection.is_open:
            connection.close()
    return topology


def vhost_of(url: str) -> str:
    """The virtual host an AMQP URL names ("/" when it names none)."""
    path = urlsplit(url).path
    return unquote(path[1:]) if len(path) > 1 else "/"


@click.group()
def topology() -> None:
    """Broker topology: exchanges, durable quorum queues, the dead-letter stream, bindings and participant users."""


@topology.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--users/--no-users",
    default=True,
    show_default=True,
    help="Also create one least-privilege broker user per participant, and the daemon's user (needs rabbitmqctl).",
)
@pass_settings
def apply(settings, users: bool) -> None:
    """Declare the topology idempotently (and the broker users) from the configuration."""
    config = settings.load()
    url = resolve_amqp_url(settings.amqp_url)
    vhost = vhost_of(url)
    if users:
        passwords = {p.amqp_user: read_password(settings, p.id, config) for p in config.registry}
        daemon_user = config.broker.daemon_user
        try:
            admin = BrokerAdmin()
            if not admin.vhost_exists(vhost):
                admin.add_vhost(vhost)
                click.echo(f"created virtual host {vhost}")
            apply_users(
                admin,
                vhost,
                topology_of(config),
                passwords,
                daemon_user=daemon_user,
                daemon_password=read_password(settings, daemon_user, config),
                broker_users={p.id: p.amqp_user for p in config.registry},
            )
        except AdminError as exc:
            fail(str(exc), ["run as root on the broker's host, or use --no-users and create the users yourself"], EXIT_BROKER)
        click.echo(f"users: {daemon_user} (daemon) and {len(passwords)} participants on {vhost}")
    applied = declare_topology(url, config)
    click.echo(
        f"declared on {vhost}: {len(applied.exchanges())} exchanges, {len(applied.queues()) - 1} quorum queues "
        f"(delivery limit {applied.delivery_limit}), the dead-letter stream {applied.dead_letters}, "
        f"{len(applied.bindings())} bindings"
    )


COMMANDS = [topology]
