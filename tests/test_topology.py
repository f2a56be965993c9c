"""The broker topology, participant permissions and the blocking client, against the real RabbitMQ."""

from __future__ import annotations

import re
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import closing, contextmanager
from dataclasses import dataclass

import pika
import pika.exceptions
import pytest
from pika.adapters.blocking_connection import BlockingChannel

# Importing the fixtures registers them here too, so the module runs on its own;
# the run still gets one sandbox when a conftest imports them as well.
from broker import Broker, BrokerUnreachable, amqp_url, broker, broker_vhost, unavailable  # noqa: F401
from exchanger.transport.admin import Permissions, apply_users
from exchanger.transport.client import DeliveryError, drain_mailbox, publish_inbound
from exchanger.transport.dead_letter_store import stream_entries
from exchanger.transport.topology import Topology, TopologyConflict, declare
from exchanger.transport.url import with_credentials, with_vhost

pytestmark = pytest.mark.broker


@dataclass(frozen=True)
class Sandbox:
    """This module's own vhost with the topology declared and two participants' users applied."""

    broker: Broker
    vhost: str
    url: str
    topology: Topology
    a: str
    b: str
    passwords: dict[str, str]
    daemon: str

    def url_as(self, participant_id: str) -> str:
        """The URL that logs in as a participant."""
        return self.broker.url_for(participant_id, self.passwords[participant_id], self.vhost)


@contextmanager
def channel_on(url: str) -> Iterator[BlockingChannel]:
    """A channel on a fresh connection, closed afterwards."""
    connection = pika.BlockingConnection(pika.URLParameters(url))
    try:
        yield connection.channel()
    finally:
        if connection.is_open:
            connection.close()


@contextmanager
def refused(url: str, code: int) -> Iterator[BlockingChannel]:
    """A channel on which the body must make the broker close it with this reply code."""
    name = {403: "ACCESS_REFUSED", 406: "PRECONDITION_FAILED"}[code]
    with channel_on(url) as channel, pytest.raises(pika.exceptions.ChannelClosedByBroker) as closed:
        yield channel
    assert closed.value.reply_code == code
    assert closed.value.reply_text.startswith(name)


@pytest.fixture(scope="module")
def sandbox(broker: Broker) -> Iterator[Sandbox]:
    """A vhost of this module's own, so that other tests' topologies and dead letters do not mix in."""
    vhost = broker.new_vhost()
    url = broker.admin_url(vhost)
    a, b, daemon = broker.unique("a"), broker.unique("b"), broker.unique("daemon")
    topology = Topology(participants=(a, b))
    with channel_on(url) as channel:
        declare(channel, topology)
    passwords = {a: secrets.token_urlsafe(12), b: secrets.token_urlsafe(12)}
    for user in (a, b, daemon):
        broker.track_user(user)
    daemon_password = secrets.token_urlsafe(12)
    apply_users(broker.admin, vhost, topology, passwords, daemon_user=daemon, daemon_password=daemon_password)
    yield Sandbox(broker, vhost, url, topology, a, b, passwords, daemon)


def _purge(url: str, *queues: str) -> None:
    with channel_on(url) as channel:
        for queue in queues:
            channel.queue_purge(queue)


def _dead_letter(url: str, message_id: str) -> tuple[pika.BasicProperties, bytes] | None:
    """The entry of the dead-letter stream with this message id, read without taking it."""
    with channel_on(url) as channel:
        for _, properties, body in stream_entries(channel, "exchanger.dead-letters"):
            if properties.message_id == message_id:
                return properties, body
    return None


def _count(url: str, queue: str) -> int:
    with channel_on(url) as channel:
        return channel.queue_declare(queue, passive=True).method.message_count


def _to_mailbox(sandbox: Sandbox, participant_id: str, body: bytes, **properties: object) -> None:
    with channel_on(sandbox.url) as channel:
        channel.confirm_delivery()
        channel.basic_publish(
            sandbox.topology.mailbox_exchange,
            sandbox.topology.mailbox_routing_key(participant_id),
            body,
            pika.BasicProperties(delivery_mode=2, **properties),
            mandatory=True,
        )


# --- the session fixture -----------------------------------------------------------------


def test_the_run_has_a_fresh_vhost_of_its_own(broker: Broker, broker_vhost: str, amqp_url: str) -> None:
    assert re.fullmatch(r"exchanger-test-[0-9a-f]{8}", broker_vhost)
    assert broker.admin.vhost_exists(broker_vhost)
    with channel_on(amqp_url) as channel:
        assert channel.is_open


def test_an_unreachable_broker_fails_under_ci_and_skips_elsewhere() -> None:
    env = {"EXCHANGER_TEST_AMQP_URL": "amqp://guest:guest@127.0.0.1:1/%2F"}
    with pytest.raises(BrokerUnreachable, match="127.0.0.1:1") as unreachable:
        Broker.open(env)
    with pytest.raises(pytest.fail.Exception, match="unavailable"):
        unavailable(str(unreachable.value), {"CI": "true"})
    with pytest.raises(pytest.skip.Exception, match="unavailable"):
        unavailable(str(unreachable.value), {})


# --- topology ----------------------------------------------------------------------------


def test_declaring_twice_changes_nothing(sandbox: Sandbox) -> None:
    before = sandbox.broker.admin.list_queues(sandbox.vhost)
    with channel_on(sandbox.url) as channel:
        declare(channel, sandbox.topology)
        declare(channel, sandbox.topology)
    after = sandbox.broker.admin.list_queues(sandbox.vhost)

    def settings(rows: list[dict]) -> list[tuple]:
        return sorted((r["name"], r["type"], r["durable"], sorted(r["arguments"].items())) for r in rows)

    assert settings(after) == settings(before)
    assert {q.name for q in sandbox.topology.queues()} <= {r["name"] for r in after}


def test_every_queue_is_a_durable_quorum_queue_with_limit_and_dead_lettering_into_a_stream(sandbox: Sandbox) -> None:
    queues = {row["name"]: row for row in sandbox.broker.admin.list_queues(sandbox.vhost)}
    live = {
        "x-queue-type": "quorum",
        "x-delivery-limit": 5,
        "x-dead-letter-exchange": "exchanger.dead",
        "x-dead-letter-strategy": "at-least-once",
        "x-overflow": "reject-publish",
    }
    for name in ("exchanger.inbound", f"mailbox.{sandbox.a}", f"mailbox.{sandbox.b}"):
        assert queues[name]["type"] == "quorum"
        assert queues[name]["durable"] is True
        assert queues[name]["arguments"] == live
    # Every quorum queue the topology declares names its delivery limit (4.x would otherwise apply 20).
    for spec in sandbox.topology.queues():
        if spec.arguments["x-queue-type"] == "quorum":
            assert spec.arguments["x-delivery-limit"] == sandbox.topology.delivery_limit, spec.name
    # The dead letters end in a stream: it is read by offset, so no delivery limit can ever drop one.
    assert queues["exchanger.dead-letters"]["type"] == "stream"
    assert queues["exchanger.dead-letters"]["durable"] is True
    assert queues["exchanger.dead-letters"]["arguments"] == {"x-queue-type": "stream"}
    assert "exchanger.dead" not in queues


def test_a_queue_declared_with_other_arguments_is_a_conflict(sandbox: Sandbox) -> None:
    with channel_on(sandbox.url) as channel, pytest.raises(TopologyConflict) as conflict:
        declare(channel, Topology(participants=sandbox.topology.participants, delivery_limit=3))
    assert conflict.value.kind == "queue"
    assert conflict.value.name == "exchanger.inbound"
    assert conflict.value.argument == "x-delivery-limit"
    assert (conflict.value.current, conflict.value.wanted) == ("'5'", "'3'")
    assert "queue 'exchanger.inbound'" in str(conflict.value) and "x-delivery-limit" in str(conflict.value)


def test_a_classic_queue_in_the_way_is_a_conflict(sandbox: Sandbox) -> None:
    newcomer = sandbox.broker.unique("c")
    with channel_on(sandbox.url) as channel:
        channel.queue_declare(f"mailbox.{newcomer}", durable=True)
    try:
        with channel_on(sandbox.url) as channel, pytest.raises(TopologyConflict) as conflict:
            declare(channel, Topology(participants=(*sandbox.topology.participants, newcomer)))
        assert conflict.value.name == f"mailbox.{newcomer}"
        # The broker names the first differing argument it checks, not all of them.
        assert conflict.value.argument in sandbox.topology.queue_arguments()
        assert conflict.value.current == "not set"
    finally:
        with channel_on(sandbox.url) as channel:
            channel.queue_delete(f"mailbox.{newcomer}")


def test_a_message_returned_past_the_delivery_limit_is_dead_lettered(sandbox: Sandbox) -> None:
    mailbox = sandbox.topology.mailbox_queue(sandbox.a)
    _purge(sandbox.url, mailbox)
    message_id = secrets.token_hex(8)
    _to_mailbox(sandbox, sandbox.a, b"<poison/>", message_id=message_id)
    deliveries = 0
    with channel_on(sandbox.url) as channel:
        while (got := channel.basic_get(mailbox))[0] is not None:
            deliveries += 1
            assert deliveries <= 10, "the delivery limit is not enforced"
            # basic.reject, as the worker hands back a failure: from 4.3 a basic.nack no longer counts.
            channel.basic_reject(got[0].delivery_tag, requeue=True)
        # The first delivery plus delivery_limit redeliveries.
        assert deliveries == sandbox.topology.delivery_limit + 1
    deadline = time.monotonic() + 10
    while not (found := _dead_letter(sandbox.url, message_id)):
        assert time.monotonic() < deadline, "the message never reached the dead-letter stream"
        time.sleep(0.1)
    properties, body = found
    assert (body, properties.message_id) == (b"<poison/>", message_id)
    assert properties.headers["x-first-death-reason"] == "delivery_limit"
    assert properties.headers["x-first-death-queue"] == mailbox


# --- broker users ------------------------------------------------------------------------


def test_participants_get_least_privilege_and_no_tags(sandbox: Sandbox) -> None:
    permissions = sandbox.broker.admin.permissions(sandbox.vhost)
    for pid in (sandbox.a, sandbox.b):
        assert permissions[pid] == Permissions("^$", r"^exchanger\.inbound$", f"^mailbox\\.{re.escape(pid)}$")
    assert permissions[sandbox.daemon] == Permissions(".*", ".*", ".*")
    users = sandbox.broker.admin.users()
    assert users[sandbox.a] == users[sandbox.b] == users[sandbox.daemon] == ()


def test_applying_users_again_changes_the_password(sandbox: Sandbox, broker: Broker) -> None:
    old_url = sandbox.url_as(sandbox.a)
    new_password = secrets.token_urlsafe(12)
    single = Topology(participants=(sandbox.a,))

    def apply(passwords: dict[str, str]) -> None:
        apply_users(broker.admin, sandbox.vhost, single, passwords, daemon_user=sandbox.daemon, daemon_password="p")

    apply({sandbox.a: new_password})
    try:
        with pytest.raises(pika.exceptions.ProbableAuthenticationError):
            pika.BlockingConnection(pika.URLParameters(old_url))
        with channel_on(broker.url_for(sandbox.a, new_password, sandbox.vhost)) as channel:
            assert channel.is_open
    finally:
        apply(sandbox.passwords)


def test_a_participant_publishes_to_inbound_as_itself(sandbox: Sandbox) -> None:
    _purge(sandbox.url, "exchanger.inbound")
    with channel_on(sandbox.url_as(sandbox.a)) as channel:
        channel.confirm_delivery()
        as_a = pika.BasicProperties(user_id=sandbox.a)
        channel.basic_publish("exchanger.inbound", "inbound", b"<doc/>", as_a, mandatory=True)
    with channel_on(sandbox.url) as channel:
        method, properties, body = channel.basic_get("exchanger.inbound", auto_ack=True)
    assert (body, properties.user_id) == (b"<doc/>", sandbox.a)


def test_publishing_under_another_participants_user_id_is_refused(sandbox: Sandbox) -> None:
    with refused(sandbox.url_as(sandbox.a), 406) as channel:
        channel.confirm_delivery()
        as_b = pika.BasicProperties(user_id=sandbox.b)
        channel.basic_publish("exchanger.inbound", "inbound", b"<doc/>", as_b)


def test_reading_another_participants_mailbox_is_refused(sandbox: Sandbox) -> None:
    other = sandbox.topology.mailbox_queue(sandbox.b)
    with refused(sandbox.url_as(sandbox.a), 403) as channel:
        channel.basic_get(other)
    with refused(sandbox.url_as(sandbox.a), 403) as channel:
        channel.basic_consume(other, lambda *_: None)


def test_a_participant_reads_its_own_mailbox(sandbox: Sandbox) -> None:
    with channel_on(sandbox.url_as(sandbox.a)) as channel:
        channel.basic_get(sandbox.topology.mailbox_queue(sandbox.a))
        channel.basic_consume(sandbox.topology.mailbox_queue(sandbox.a), lambda *_: None)


@pytest.mark.parametrize("what", ["a new queue", "its own mailbox"])
def test_a_participant_cannot_declare_queues(sandbox: Sandbox, what: str) -> None:
    name = sandbox.broker.unique("q") if what == "a new queue" else sandbox.topology.mailbox_queue(sandbox.a)
    with refused(sandbox.url_as(sandbox.a), 403) as channel:
        channel.queue_declare(name, durable=True, arguments={"x-queue-type": "quorum"})


def test_a_participant_cannot_declare_a_private_reply_queue(sandbox: Sandbox) -> None:
    with refused(sandbox.url_as(sandbox.a), 403) as channel:
        channel.queue_declare("", exclusive=True)


@pytest.mark.parametrize(
    "exchange,key",
    [("exchanger.mailbox", "B"), ("", "mailbox.B"), ("exchanger.dead", ""), ("", "exchanger.dead-letters")],
)
def test_a_participant_cannot_publish_anywhere_but_inbound(sandbox: Sandbox, exchange: str, key: str) -> None:
    with refused(sandbox.url_as(sandbox.a), 403) as channel:
        channel.confirm_delivery()
        forged = pika.BasicProperties(user_id=sandbox.a)
        channel.basic_publish(exchange, key.replace("B", sandbox.b), b"<forged/>", forged)


# --- the blocking client -----------------------------------------------------------------


def test_publish_inbound_then_drain_mailbox_round_trip(sandbox: Sandbox) -> None:
    _purge(sandbox.url, "exchanger.inbound", sandbox.topology.mailbox_queue(sandbox.b))
    url_a, url_b = sandbox.url_as(sandbox.a), sandbox.url_as(sandbox.b)
    publish_inbound(url_a, b"<order/>", user_id=sandbox.a, message_id="m-1", headers={"x-test": "yes"})
    with channel_on(sandbox.url) as channel:
        method, properties, body = channel.basic_get("exchanger.inbound", auto_ack=True)
    assert body == b"<order/>"
    assert (properties.user_id, properties.message_id) == (sandbox.a, "m-1")
    assert properties.headers["x-test"] == "yes"
    assert (properties.delivery_mode, properties.content_type) == (2, "application/xml")
    assert properties.timestamp is not None

    # Play the daemon: forward it to B's mailbox.
    forwarded = {"message_id": "m-1", "type": "Order", "correlation_id": "c-1"}
    _to_mailbox(sandbox, sandbox.b, body, headers={"x-exchanger-sender": sandbox.a}, **forwarded)
    received = list(drain_mailbox(url_b, sandbox.b, count=None, wait=0.5))
    assert [(m.body, m.message_id, m.type, m.correlation_id) for m in received] == [
        (b"<order/>", "m-1", "Order", "c-1")
    ]
    assert received[0].headers["x-exchanger-sender"] == sandbox.a
    assert received[0].delivery_count == 0 and not received[0].redelivered
    assert _count(sandbox.url, sandbox.topology.mailbox_queue(sandbox.b)) == 0


def test_drain_mailbox_stops_after_count_and_leaves_the_rest(sandbox: Sandbox) -> None:
    mailbox = sandbox.topology.mailbox_queue(sandbox.b)
    _purge(sandbox.url, mailbox)
    for n in range(3):
        _to_mailbox(sandbox, sandbox.b, f"<m n='{n}'/>".encode())
    taken = [m.body for m in drain_mailbox(sandbox.url_as(sandbox.b), sandbox.b, count=2, wait=5)]
    assert taken == [b"<m n='0'/>", b"<m n='1'/>"]
    assert _count(sandbox.url, mailbox) == 1
    rest = list(drain_mailbox(sandbox.url_as(sandbox.b), sandbox.b, count=None, wait=0.2))
    assert [m.body for m in rest] == [b"<m n='2'/>"]
    assert rest[0].delivery_count == 0, "count must not fetch a message it does not hand over"


def test_drain_mailbox_gives_back_a_message_the_caller_failed_on(sandbox: Sandbox) -> None:
    mailbox = sandbox.topology.mailbox_queue(sandbox.b)
    _purge(sandbox.url, mailbox)
    _to_mailbox(sandbox, sandbox.b, b"<fragile/>")
    with pytest.raises(RuntimeError):
        for _message in drain_mailbox(sandbox.url_as(sandbox.b), sandbox.b, count=None, wait=0.2):
            raise RuntimeError("disk full")
    again = list(drain_mailbox(sandbox.url_as(sandbox.b), sandbox.b, count=None, wait=0.2))
    assert [(m.body, m.redelivered, m.delivery_count) for m in again] == [(b"<fragile/>", True, 1)]
    assert _count(sandbox.url, mailbox) == 0


def test_drain_mailbox_stops_when_nothing_arrives(sandbox: Sandbox) -> None:
    _purge(sandbox.url, sandbox.topology.mailbox_queue(sandbox.b))
    started = time.monotonic()
    assert list(drain_mailbox(sandbox.url_as(sandbox.b), sandbox.b, count=5, wait=0.5)) == []
    assert 0.5 <= time.monotonic() - started < 5


def test_drain_mailbox_of_another_participant_is_a_delivery_error(sandbox: Sandbox) -> None:
    with pytest.raises(DeliveryError, match="not allowed"):
        list(drain_mailbox(sandbox.url_as(sandbox.a), sandbox.b, count=None, wait=0))


def test_publish_inbound_under_another_user_id_is_a_delivery_error(sandbox: Sandbox) -> None:
    with pytest.raises(DeliveryError, match="user_id"):
        publish_inbound(sandbox.url_as(sandbox.a), b"<doc/>", user_id=sandbox.b)


def test_publish_inbound_without_topology_is_a_delivery_error(broker: Broker) -> None:
    bare = broker.admin_url(broker.new_vhost())
    with pytest.raises(DeliveryError, match="does not exist"):
        publish_inbound(bare, b"<doc/>", user_id=broker.admin_user)


def test_publish_inbound_with_a_wrong_password_is_a_delivery_error(sandbox: Sandbox) -> None:
    wrong = sandbox.broker.url_for(sandbox.a, "not-the-password", sandbox.vhost)
    with pytest.raises(DeliveryError, match="refused the login"):
        publish_inbound(wrong, b"<doc/>", user_id=sandbox.a)


def test_publish_inbound_gives_up_when_the_broker_never_confirms(sandbox: Sandbox) -> None:
    with _SwallowingProxy() as proxy:
        via_proxy = f"amqp://127.0.0.1:{proxy.port}/"
        url = with_vhost(with_credentials(via_proxy, sandbox.a, sandbox.passwords[sandbox.a]), sandbox.vhost)
        started = time.monotonic()
        with pytest.raises(DeliveryError, match="did not confirm"):
            publish_inbound(url, b"<doc/>", user_id=sandbox.a, timeout=1)
        assert time.monotonic() - started < 3


class _SwallowingProxy:
    """A TCP proxy to the broker that drops everything a client sends from its first basic.publish on."""

    _BASIC_PUBLISH = b"\x00\x3c\x00\x28"  # class 60, method 40

    def __init__(self, target: tuple[str, int] = ("127.0.0.1", 5672)) -> None:
        self.target = target
        self.listener = socket.create_server(("127.0.0.1", 0))
        self.port = self.listener.getsockname()[1]
        self.sockets: list[socket.socket] = [self.listener]

    def __enter__(self) -> _SwallowingProxy:
        threading.Thread(target=self._accept, daemon=True).start()
        return self

    def __exit__(self, *_: object) -> None:
        # Closing the sockets also ends the abandoned publisher's connection.
        for sock in self.sockets:
            with closing(sock):
                try:
                    sock.shutdown(socket.SHUT_RDWR)
                except OSError:
                    pass

    def _accept(self) -> None:
        while True:
            try:
                client, _ = self.listener.accept()
            except OSError:
                return
            upstream = socket.create_connection(self.target)
            self.sockets += [client, upstream]
            swallowing = threading.Event()
            for ends in ((client, upstream, swallowing, True), (upstream, client, swallowing, False)):
                threading.Thread(target=self._pump, args=ends, daemon=True).start()

    def _pump(self, source: socket.socket, sink: socket.socket, swallow: threading.Event, upward: bool) -> None:
        while True:
            try:
                data = source.recv(65536)
            except OSError:
                return
            if not data:
                return
            if upward and self._BASIC_PUBLISH in data:
                swallow.set()
            if upward and swallow.is_set():
                continue
            try:
                sink.sendall(data)
            except OSError:
                return
