"""``exchanger links``: the shovels that carry peer e-ports' copies to them, applied from the configuration and watched."""

from __future__ import annotations

from urllib.parse import unquote, urlsplit

import click
import pika

from exchanger.cli.common import EXIT_BROKER, EXIT_CODES_HELP, EXIT_FAILED, fail, pass_settings, read_password
from exchanger.cli.topology import topology_of, vhost_of
from exchanger.transport.admin import AdminError, BrokerAdmin
from exchanger.transport.broker_version import broker_version
from exchanger.transport.links import PeerLink, apply_links, link_name, link_states
from exchanger.transport.url import connection_parameters, resolve_amqp_url, with_credentials

_BROKER_HINTS = [
    "run on the broker's host as a user that may run rabbitmqctl",
    "enable the shovel plugin on this broker: rabbitmq-plugins enable rabbitmq_shovel",
]


def peer_links(settings, config, url: str) -> list[PeerLink]:
    """Every configured link, with its passwords read: this broker's as the peer's own user, the peer's from its file."""
    links = []
    for link in config.links:
        try:
            peer_password = link.password_file.read_text().strip()
        except OSError as exc:
            fail(
                f"no password for the link to {link.peer_id}: {link.password_file} cannot be read ({exc.strerror})",
                [f"write the password {link.peer_id} registered for this exchange into {link.password_file} (mode 0600)"],
                EXIT_FAILED,
            )
        user = config.registry.get(link.peer_id).amqp_user
        source = with_credentials(url, user, read_password(settings, link.peer_id, config))
        destination = with_credentials(link.url, _user(link.url), peer_password)
        links.append(PeerLink(link.peer_id, source, destination, link.reconnect_delay))
    return links


def _user(url: str) -> str:
    return unquote(urlsplit(url).username or "")


def _reachable(url: str) -> tuple[int, ...]:
    """Connect once to this exchange's broker and vhost (the shovels run on that node and read from that vhost);
    return the broker's version, which decides the shovel's definition.

    An unreachable broker or a refused login ends in the central handler's message, as for every command.
    """
    connection = pika.BlockingConnection(connection_parameters(url, client_name="exchanger links"))
    try:
        version = broker_version(connection)
    finally:
        connection.close()
    return version.parts if version else ()


@click.group()
def links() -> None:
    """Links to peer e-ports: RabbitMQ shovels from each peer's mailbox here to its inbound there."""


@links.command(epilog=EXIT_CODES_HELP)
@pass_settings
def apply(settings) -> None:
    """Declare one shovel per configured link (replacing older definitions) and remove links no longer configured."""
    config = settings.load()
    url = resolve_amqp_url(settings.amqp_url)
    vhost = vhost_of(url)
    wanted = peer_links(settings, config, url)
    version = _reachable(url)
    try:
        removed = apply_links(BrokerAdmin(), vhost, topology_of(config), wanted, version)
    except AdminError as exc:
        fail(str(exc), _BROKER_HINTS, EXIT_BROKER)
    for link in wanted:
        click.echo(f"link {link.describe()}")
    for name in removed:
        click.echo(f"removed {name} (no longer configured)")
    if not wanted and not removed:
        click.echo("no links configured (a peer-eport participant's link: names its broker)")


@links.command(epilog=EXIT_CODES_HELP)
@pass_settings
def status(settings) -> None:
    """Show each configured link's state as the broker sees it; exit 1 unless every one is running."""
    config = settings.load()
    url = resolve_amqp_url(settings.amqp_url)
    vhost = vhost_of(url)
    _reachable(url)
    names = [link_name(link.peer_id) for link in config.links]
    try:
        states = link_states(BrokerAdmin(), vhost, names)
    except AdminError as exc:
        fail(str(exc), _BROKER_HINTS, EXIT_BROKER)
    for state in states:
        click.echo(f"{state.name}: {state.state}" + (f" ({state.reason})" if state.reason else ""))
    if any(state.state != "running" for state in states):
        raise SystemExit(EXIT_FAILED)


COMMANDS = [links]
