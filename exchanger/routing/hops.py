"""The hop across e-ports, as operators read it: which peer, which trust domain, which link."""

from __future__ import annotations

from exchanger.transport.links import link_name
from exchanger.transport.names import mailbox_queue


def outbound_hop(config, peer_id: str) -> str:
    """Where a copy for a peer e-port goes: its mailbox here, the link that carries it, the peer's domain."""
    link = next((link for link in config.links if link.peer_id == peer_id), None)
    over = f"link {link_name(peer_id)} to {link.url}" if link is not None else "no link configured (copies wait)"
    return f"waits in {mailbox_queue(peer_id)}, carried by the {over}; {_domain(config, peer_id)}"


def inbound_hop(config, peer_id: str, path: tuple[str, ...]) -> str:
    """Whence a relayed message came: the peer that signed its envelope, the path, and the domain it was judged in."""
    route = " > ".join(path) if path else "(none)"
    return f"relayed by the peer e-port {peer_id} (relay path {route}); signer judged in its {_domain(config, peer_id)}"


def _domain(config, peer_id: str) -> str:
    domain = config.domains.get(peer_id)
    return f"trust domain {domain.describe()}" if domain is not None else "no trust domain configured"
