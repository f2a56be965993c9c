"""Links to peer e-ports: the broker's own shovel carries a peer's mailbox in one exchange to the inbound of the
other, as the user the peer registered, and keeps every copy while the peer cannot take it.

Two exchanges run side by side in two vhosts of the real broker, each with its own PKI, participants and broker
users; the peer e-port is an ordinary least-privilege participant on both sides.
"""

from __future__ import annotations

import secrets
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import pika
import pytest
import yaml
from click.testing import CliRunner

from broker import Broker, amqp_url, broker, broker_vhost  # noqa: F401
from exchange_fixture import ROUTES, write_config
from exchanger.cli.main import main
from exchanger.cli.topology import topology_of
from exchanger.config import ConfigError, load_config
from exchanger.config.loader import read_identities
from exchanger.keys.pki import init_demo_pki
from exchanger.transport.links import LINK_PREFIX, PeerLink
from exchanger.transport.names import INBOUND_QUEUE, mailbox_queue
from exchanger.transport.topology import Topology

pytestmark = pytest.mark.broker


@dataclass
class Side:
    """One exchange: its config, vhost, URL (as the broker's admin) and broker-user prefix."""

    config_path: Path
    vhost: str
    url: str
    prefix: str

    def cli(self, *args: str):
        """Run an exchanger command against this exchange."""
        return CliRunner().invoke(main, ["--config", str(self.config_path), "--amqp-url", self.url, *args])

    def user(self, participant_id: str) -> str:
        """The broker user of a participant of this exchange."""
        return self.prefix + participant_id


def _side(broker: Broker, directory: Path, prefix: str, peer: str, link: dict | None) -> Side:
    """An exchange with the bundled participants and one peer e-port, its PKI made, users and topology applied."""
    directory.mkdir()
    data = yaml.safe_load(ROUTES.read_text())
    # The participants the bundled routes name, and the peer: each is a broker user to make, so no more.
    participants = {pid: data["participants"][pid] for pid in ("ent-a", "customs", "ciq", "rail", "terminal")}
    participants[peer] = {"kind": "peer-eport", "name": f"the e-port {peer}"}
    if link is not None:
        participants[peer]["link"] = link
    for pid, spec in participants.items():
        spec["amqp_user"] = prefix + pid
        broker.track_user(prefix + pid)
    data["broker"]["daemon_user"] = prefix + "exchanger"
    broker.track_user(prefix + "exchanger")
    config_path = write_config(directory, directory / "keys", participants=participants, broker=data["broker"])
    _, platform, identities, daemon_user = read_identities(config_path)
    init_demo_pki(directory / "keys", [platform, *identities], algorithm="ec", daemon_user=daemon_user)
    vhost = broker.new_vhost()
    side = Side(config_path, vhost, broker.admin_url(vhost), prefix)
    applied = side.cli("topology", "apply")
    assert applied.exit_code == 0, applied.output
    return side


@dataclass
class Pair:
    """Exchange A, with a link to exchange B, where A is registered as the peer ``eport-a``."""

    a: Side
    b: Side
    link_password_file: Path


@pytest.fixture(scope="module")
def pair(broker: Broker, tmp_path_factory) -> Pair:
    root = tmp_path_factory.mktemp("links")
    tag = secrets.token_hex(3)
    b = _side(broker, root / "b", f"l{tag}b-", "eport-a", None)
    user_of_a_in_b = b.user("eport-a")
    host = broker.base_url.split("@", 1)[1].split("/", 1)[0]
    link = {"url": f"amqp://{user_of_a_in_b}@{host}/{b.vhost}", "reconnect_delay": 1}
    a = _side(broker, root / "a", f"l{tag}a-", "eport-b", link)
    # The peer gives its registered user's password to A's operators, who keep it beside A's keys.
    password_file = root / "a" / "keys" / "eport-b" / "link-password"
    password_file.write_text((root / "b" / "keys" / "eport-a" / "amqp-password").read_text())
    return Pair(a, b, password_file)


@contextmanager
def channel_on(url: str):
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        yield connection.channel()
    finally:
        connection.close()


def _copy_for_peer(side: Side, body: bytes, message_id: str) -> None:
    """Publish as the daemon would: a persistent copy in the peer's mailbox, with the daemon's user_id."""
    with channel_on(side.url) as channel:
        channel.confirm_delivery()
        channel.basic_publish(
            "",
            mailbox_queue("eport-b"),
            body,
            pika.BasicProperties(delivery_mode=2, message_id=message_id, user_id="guest"),
            mandatory=True,
        )


def _wait_for(url: str, queue: str, message_id: str, seconds: float = 15):
    """Take the message with this id from a queue, waiting for it; None when it does not come."""
    deadline = time.monotonic() + seconds
    with channel_on(url) as channel:
        while time.monotonic() < deadline:
            method, properties, body = channel.basic_get(queue, auto_ack=False)
            if method is None:
                time.sleep(0.2)
                continue
            if properties.message_id == message_id:
                channel.basic_ack(method.delivery_tag)
                return properties, body
            channel.basic_nack(method.delivery_tag, requeue=True)
    return None


def _depth(url: str, queue: str) -> int:
    with channel_on(url) as channel:
        return channel.queue_declare(queue, passive=True).method.message_count


def test_a_copy_for_the_peer_arrives_in_its_inbound_as_the_user_it_registered(pair: Pair) -> None:
    applied = pair.a.cli("links", "apply")
    assert applied.exit_code == 0, applied.output
    assert f"{LINK_PREFIX}eport-b" in applied.output and secrets_hidden(applied.output, pair)
    message_id = secrets.token_hex(8)
    _copy_for_peer(pair.a, b"<DxpMsg/>", message_id)
    arrived = _wait_for(pair.b.url, INBOUND_QUEUE, message_id)
    assert arrived is not None, "the copy never reached the peer's inbound"
    properties, body = arrived
    # The peer's broker vouches for the sender: the user it registered for exchange A, not A's daemon.
    assert (properties.user_id, body, properties.delivery_mode) == (pair.b.user("eport-a"), b"<DxpMsg/>", 2)
    status = pair.a.cli("links", "status")
    assert status.exit_code == 0 and f"{LINK_PREFIX}eport-b: running" in status.output


def secrets_hidden(output: str, pair: Pair) -> bool:
    """No password of either side is printed."""
    return pair.link_password_file.read_text().strip() not in output


def test_copies_wait_in_the_mailbox_while_the_peer_is_unreachable(pair: Pair) -> None:
    config = yaml.safe_load(pair.a.config_path.read_text())
    good = dict(config["participants"]["eport-b"]["link"])
    config["participants"]["eport-b"]["link"]["url"] = "amqp://nobody@127.0.0.1:1/nowhere"
    pair.a.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        assert pair.a.cli("links", "apply").exit_code == 0
        message_id = secrets.token_hex(8)
        _copy_for_peer(pair.a, b"<waiting/>", message_id)
        time.sleep(3)
        status = pair.a.cli("links", "status")
        assert status.exit_code == 1, status.output
        assert _depth(pair.a.url, mailbox_queue("eport-b")) == 1, "the copy left the mailbox with nowhere to go"
    finally:
        config["participants"]["eport-b"]["link"] = good
        pair.a.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    assert pair.a.cli("links", "apply").exit_code == 0
    assert _wait_for(pair.b.url, INBOUND_QUEUE, message_id) is not None, "the waiting copy was not delivered later"


def test_a_peer_that_refuses_the_login_leaves_every_copy_here(pair: Pair) -> None:
    good = pair.link_password_file.read_text()
    pair.link_password_file.write_text("not-the-password")
    try:
        assert pair.a.cli("links", "apply").exit_code == 0
        message_id = secrets.token_hex(8)
        _copy_for_peer(pair.a, b"<refused/>", message_id)
        time.sleep(3)
        assert _depth(pair.a.url, mailbox_queue("eport-b")) == 1
        assert pair.a.cli("links", "status").exit_code == 1
    finally:
        pair.link_password_file.write_text(good)
    assert pair.a.cli("links", "apply").exit_code == 0
    assert _wait_for(pair.b.url, INBOUND_QUEUE, message_id) is not None


def test_the_shovel_declares_nothing_and_the_peer_user_can_do_no_more_than_a_participant(pair: Pair, broker: Broker) -> None:
    granted = broker.admin.permissions(pair.b.vhost)[pair.b.user("eport-a")]
    assert (granted.configure, granted.write) == ("^$", r"^exchanger\.inbound$")
    definition = PeerLink("eport-b", "amqp://s", "amqp://u@h/v").definition(topology_of(load_config(pair.a.config_path)))
    assert "dest-queue" not in definition and definition["ack-mode"] == "on-confirm"


def test_a_link_no_longer_configured_is_removed(pair: Pair, broker: Broker) -> None:
    assert pair.a.cli("links", "apply").exit_code == 0
    config = yaml.safe_load(pair.a.config_path.read_text())
    link = config["participants"]["eport-b"].pop("link")
    pair.a.config_path.write_text(yaml.safe_dump(config, sort_keys=False))
    try:
        removed = pair.a.cli("links", "apply")
        assert removed.exit_code == 0 and f"removed {LINK_PREFIX}eport-b" in removed.output
        assert f"{LINK_PREFIX}eport-b" not in broker.admin.parameter_names(pair.a.vhost, "shovel")
    finally:
        config["participants"]["eport-b"]["link"] = link
        pair.a.config_path.write_text(yaml.safe_dump(config, sort_keys=False))


# ---- the configuration -------------------------------------------------------------------------------------------


def _problems(pair: Pair, tmp_path: Path, **link) -> str:
    data = yaml.safe_load(pair.a.config_path.read_text())
    data["participants"]["eport-b"]["link"] = link
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return str(caught.value)


def test_a_link_url_with_a_password_in_it_is_refused(pair: Pair, tmp_path: Path) -> None:
    assert "without a password" in _problems(pair, tmp_path, url="amqp://u:secret@127.0.0.1/v")


def test_a_typo_in_a_link_is_refused_with_a_suggestion(pair: Pair, tmp_path: Path) -> None:
    problems = _problems(pair, tmp_path, url="amqp://u@127.0.0.1/v", reconect_delay=3)
    assert "reconect_delay" in problems and "reconnect_delay" in problems


def test_only_a_peer_e_port_has_a_link(pair: Pair, tmp_path: Path) -> None:
    data = yaml.safe_load(pair.a.config_path.read_text())
    data["participants"]["customs"]["link"] = {"url": "amqp://u@127.0.0.1/v"}
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "participants.customs.link" in str(caught.value) and "peer-eport" in str(caught.value)


def test_a_missing_link_password_is_an_actionable_error(pair: Pair) -> None:
    good = pair.link_password_file.read_text()
    pair.link_password_file.unlink()
    try:
        result = pair.a.cli("links", "apply")
        assert result.exit_code == 1 and "link-password" in result.output and "Traceback" not in result.output
    finally:
        pair.link_password_file.write_text(good)


def test_the_definition_follows_the_broker_version() -> None:
    """3.10 refuses src-predeclared; 4.x would declare the source queue without it, which the peer's user may not."""
    link = PeerLink("eport-b", "amqp://s", "amqp://u@h/v")
    assert "src-predeclared" not in link.definition(Topology(participants=("eport-b",)), (3, 10, 8))
    assert link.definition(Topology(participants=("eport-b",)), (4, 1, 2))["src-predeclared"] is True
