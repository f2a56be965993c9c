"""Links to peer e-ports: RabbitMQ dynamic shovels that carry a peer's mailbox here to the peer's inbound there.

A peer e-port is a participant of kind ``peer-eport``: the exchange delivers its copies to the peer's mailbox
like anyone else's. A link moves them on, with the broker's own shovel plugin rather than a forwarder of the
exchange's: it reads the mailbox as the peer's own least-privilege user here, and publishes to the peer's
``exchanger.inbound`` as the user the peer registered for this exchange there, stamping that user as the
message's ``user_id`` so that the peer's broker vouches for who sent it, exactly as for a participant.

Acknowledgements are ``on-confirm``: a copy leaves the mailbox only once the peer's broker has confirmed it, so
a peer that is down or refuses the link leaves every copy waiting here. The shovel declares nothing on either
side (a queue source that exists, an exchange destination), so both users keep empty configure permissions.
"""

from __future__ import annotations

from dataclasses import dataclass
from urllib.parse import unquote, urlsplit

from exchanger.transport.admin import AdminError, BrokerAdmin
from exchanger.transport.topology import Topology
from exchanger.transport.url import redact

SHOVEL = "shovel"
LINK_PREFIX = "exchanger.link."
# The first version whose shovel guide documents src-predeclared (the 3.13 guide does not).
PREDECLARED_SINCE = (4, 0)


def link_name(peer_id: str) -> str:
    """The name of the shovel that carries a peer e-port's copies."""
    return LINK_PREFIX + peer_id


@dataclass(frozen=True)
class PeerLink:
    """One peer's link: where its copies are read here and where they are published there."""

    peer_id: str
    # This broker and virtual host, as the peer's own user (it may read its mailbox and nothing else).
    source_url: str
    # The peer's broker and virtual host, as the user the peer registered for this exchange.
    destination_url: str
    reconnect_delay: int = 5
    prefetch: int = 100

    @property
    def name(self) -> str:
        """The shovel's name on this broker."""
        return link_name(self.peer_id)

    @property
    def destination_user(self) -> str:
        """The broker user the peer registered for this exchange: the sender its broker vouches for."""
        return unquote(urlsplit(self.destination_url).username or "")

    def definition(self, topology: Topology, broker: tuple[int, ...] = ()) -> dict:
        """The shovel's definition for a broker of the given version (AMQP 0-9-1 at both ends)."""
        definition = {
            "src-protocol": "amqp091",
            "src-uri": self.source_url,
            "src-queue": topology.mailbox_queue(self.peer_id),
            "src-prefetch-count": self.prefetch,
            "dest-protocol": "amqp091",
            "dest-uri": self.destination_url,
            # An exchange, not a queue: a queue destination would be declared, which needs configure rights.
            "dest-exchange": topology.inbound_exchange,
            "dest-exchange-key": topology.inbound_routing_key,
            # The peer's broker refuses a user_id other than the connection's own, and a refused copy would
            # stop the link: every copy carries the link's user instead of whatever it had here.
            "dest-publish-properties": {"user_id": self.destination_user, "delivery_mode": 2},
            "ack-mode": "on-confirm",
            "src-delete-after": "never",
            "reconnect-delay": self.reconnect_delay,
        }
        if broker >= PREDECLARED_SINCE:
            # 4.x declares a source queue unless told it exists, which needs configure rights the peer's user
            # lacks; 3.10 refuses the key ("Unrecognised terms") and only checks that the queue is there.
            definition["src-predeclared"] = True
        return definition

    def describe(self) -> str:
        """One line for operators, with passwords redacted."""
        return f"{self.name}: {redact(self.source_url)} -> {redact(self.destination_url)}"


@dataclass(frozen=True)
class LinkState:
    """What the broker says of one link: running, starting, terminated (with why), or absent."""

    name: str
    state: str
    reason: str = ""


def apply_links(
    admin: BrokerAdmin, vhost: str, topology: Topology, links: list[PeerLink], broker: tuple[int, ...] = ()
) -> list[str]:
    """Declare every link as a shovel in vhost for a broker of the given version (replacing an older definition),
    and remove links no longer configured; return the names removed."""
    for link in links:
        admin.set_parameter(vhost, SHOVEL, link.name, link.definition(topology, broker))
    wanted = {link.name for link in links}
    stale = [name for name in admin.parameter_names(vhost, SHOVEL) if name.startswith(LINK_PREFIX) and name not in wanted]
    for name in stale:
        admin.clear_parameter(vhost, SHOVEL, name)
    return stale


def link_states(admin: BrokerAdmin, vhost: str, names: list[str]) -> list[LinkState]:
    """The broker's view of each named link in vhost; a link the broker does not know is "absent"."""
    try:
        rows = admin.shovel_status()
    except AdminError as exc:
        if "shovel" in str(exc).lower():
            return [LinkState(name, "absent", "the rabbitmq_shovel plugin is not enabled") for name in names]
        raise
    found = {row.get("name"): row for row in rows if row.get("vhost") == vhost}
    states = []
    for name in names:
        row = found.get(name)
        if row is None:
            states.append(LinkState(name, "absent"))
        else:
            states.append(LinkState(name, str(row.get("state", "")), _reason(row.get("termination_reason"))))
    return states


def _reason(value) -> str:
    text = str(value or "")
    # rabbitmqctl shows Erlang binaries as <<"...">>: the operator wants the words.
    return text.removeprefix('<<"').removesuffix('">>')
