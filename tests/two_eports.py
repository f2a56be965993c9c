"""Two e-ports on one broker, each in its own vhost with its own CA, participants, message log and daemon, linked
by `exchanger links apply` (RabbitMQ's shovel): e-port A hosts the e-commerce enterprises, e-port B the customs
office; each registers the other as a peer e-port whose domain is the other's CA and members.
"""

from __future__ import annotations

import secrets
from dataclasses import dataclass
from pathlib import Path

import yaml

from daemon_fixture import cli
from exchange_fixture import PROJECT, ROUTES, Exchange
from exchanger.config import load_config
from exchanger.dsig.signer import Signer
from exchanger.keys.pki import init_demo_pki
from exchanger.transport.url import with_vhost

A, B = "eport-a", "eport-b"  # each platform's id, and the id the other registers it under
ENTERPRISE, OTHER = "ent-a", "ent-b"  # enterprises of A; customs is B's
APPROVAL = {"by": "GACC", "ref": "Cross-border interconnection agreement 2026-7"}


@dataclass
class Side:
    """One e-port: its exchange (config, keys), vhost, daemon URL and the broker admin's URL."""

    exchange: Exchange
    vhost: str
    admin_url: str
    prefix: str

    @property
    def keys(self) -> Path:
        """This e-port's keys directory: its CA, platform and participants."""
        return self.exchange.keys_dir

    def platform_signer(self) -> Signer:
        """The platform's own signer (what signs its DxpMsg copies for the peer)."""
        platform = self.exchange.config.platform
        return Signer(platform.key_path, platform.certificate_path)

    def user(self, participant: str) -> str:
        """The broker user of a participant of this e-port."""
        return self.exchange.config.registry.get(participant).amqp_user

    def run(self, *args: str, check: bool = True):
        """An `exchanger` command on this e-port, as the broker admin."""
        return cli(self.exchange, self.admin_url, *args, check=check)


def _peer(peer: str, peer_dir: Path, my_id: str, members: list[str], link_url: str) -> dict:
    """The participant that stands for a peer e-port: its platform certificate, trust domain, link and members."""
    return {
        "kind": "peer-eport",
        "name": f"the e-port {peer}",
        "envelope": "dxp",
        "certificates": [str(peer_dir / "keys" / peer / "cert.pem")],
        "link": {"url": link_url, "reconnect_delay": 1},
        "domain": {
            "anchors": [str(peer_dir / "keys" / "ca" / "cert.pem")],
            "crls": [str(peer_dir / "keys" / "ca" / "crl.pem")],
            "identity_field": "CN",
            "members": members,
        },
    }


def _config(directory: Path, platform: str, participants: dict, routes: list, prefix: str) -> Path:
    data = yaml.safe_load(ROUTES.read_text())
    data["messages"] = str(PROJECT / "schemas" / "messages.yaml")
    data["envelopes"] = str(PROJECT / "schemas" / "envelopes.yaml")
    data["keys_dir"] = str(directory / "keys")
    data["platform"] = {"id": platform, "name": f"E-port {platform}"}
    data["participants"] = participants
    data["routes"] = routes
    for pid, spec in participants.items():
        spec["amqp_user"] = prefix + pid
    data["broker"]["daemon_user"] = prefix + "exchanger"
    data["journal"] = {"url": f"sqlite:///{directory / 'journal.db'}"}
    path = directory / "routes.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def write_pair(root: Path, vhosts: dict[str, str], host: str = "127.0.0.1:5672", algorithm: str = "rsa",
               tag: str | None = None, algorithm_a: str | None = None) -> tuple[dict[str, Path], dict[str, str]]:
    """Both e-ports' keys and routes.yaml (each registering the other as a peer); their paths and user prefixes.

    ``algorithm_a`` gives e-port A's CA, platform and participants another algorithm (such as sm2) than B's.
    """
    tag = tag or secrets.token_hex(3)
    prefixes = {A: f"r{tag}a-", B: f"r{tag}b-"}
    dirs = {A: root / "a", B: root / "b"}
    people = {
        A: [(A, "E-port A platform"), (ENTERPRISE, "Import e-commerce platform"), (OTHER, "Another enterprise"),
            (B, "e-port B's link user")],
        B: [(B, "E-port B platform"), ("customs", "Customs at e-port B"), (A, "e-port A's link user")],
    }
    for side, identities in people.items():
        dirs[side].mkdir(parents=True)
        chosen = algorithm_a if side == A and algorithm_a else algorithm
        init_demo_pki(dirs[side] / "keys", identities, algorithm=chosen, daemon_user=prefixes[side] + "exchanger")
    link = {side: f"amqp://{prefixes[other]}{side}@{host}/{vhosts[other]}" for side, other in ((A, B), (B, A))}
    a_participants = {
        ENTERPRISE: {"kind": "enterprise", "name": "An importer", "envelope": "dxp"},
        OTHER: {"kind": "enterprise", "name": "Another enterprise"},
        B: _peer(B, dirs[B], A, ["customs"], link[A]),
    }
    a_routes = [
        {"id": "orders-to-customs-at-b", "description": "Orders for customs at e-port B go through the link.",
         "types": ["CustomsDeclaration"], "from": ["kind:enterprise"], "to": [B], "deliver": "addressed", "approval": APPROVAL},
        {"id": "customs-receipts-from-b", "description": "Customs at e-port B answers enterprises here.",
         "types": ["AgencyReceipt"], "from": [f"via:{B}"], "to": ["kind:enterprise"], "deliver": "addressed"},
    ]
    b_participants = {
        "customs": {"kind": "customs", "name": "Customs at e-port B", "envelope": "dxp"},
        A: _peer(A, dirs[A], B, [ENTERPRISE], link[B]),
    }
    b_routes = [
        {"id": "relayed-orders", "description": "Orders e-port A relays for its enterprises.",
         "types": ["CustomsDeclaration"], "from": [f"via:{A}"], "to": ["kind:customs"], "deliver": "addressed"},
        {"id": "receipts-to-a", "description": "Customs answers enterprises of e-port A through the link.",
         "types": ["AgencyReceipt"], "from": ["customs"], "to": [A], "deliver": "addressed", "approval": APPROVAL},
    ]
    paths = {A: _config(dirs[A], A, a_participants, a_routes, prefixes[A]),
             B: _config(dirs[B], B, b_participants, b_routes, prefixes[B])}
    for side in (A, B):
        other = B if side == A else A
        # The peer gives the password of the user it registered for this e-port to this e-port's operators.
        (dirs[side] / "keys" / other / "link-password").write_text((dirs[other] / "keys" / side / "amqp-password").read_text())
    return paths, prefixes


def make_pair(broker, root: Path, algorithm: str = "rsa", algorithm_a: str | None = None) -> tuple[Side, Side]:
    """E-ports A and B on fresh keys and vhosts, users, topology and links applied (daemons not started)."""
    vhosts = {A: broker.new_vhost(), B: broker.new_vhost()}
    host = broker.base_url.split("@", 1)[1].split("/", 1)[0]
    paths, prefixes = write_pair(root, vhosts, host, algorithm, algorithm_a=algorithm_a)
    sides = {}
    for side in (A, B):
        config = load_config(paths[side])
        for participant in config.registry:
            broker.track_user(participant.amqp_user)
        broker.track_user(config.broker.daemon_user)
        exchange = Exchange(paths[side], paths[side].parent / "keys", config)
        exchange.url = with_vhost("amqp://127.0.0.1:5672/", vhosts[side])
        sides[side] = Side(exchange, vhosts[side], broker.admin_url(vhosts[side]), prefixes[side])
        sides[side].run("topology", "apply")
    for side in (A, B):
        sides[side].run("links", "apply")
    return sides[A], sides[B]
