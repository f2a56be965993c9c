"""End to end: `exchanger run` as a subprocess on the real broker, every bundled sample pushed through."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import time
from collections import Counter
from pathlib import Path

import pika
import pytest
import yaml
from lxml import etree

from daemon_fixture import Daemon
from daemon_fixture import cli as _cli
from daemon_fixture import drain_dead as _drain_dead
from exchange_fixture import ROUTED_SAMPLES as VALID
from exchange_fixture import SAMPLES, make_exchange
from exchanger.transport.client import drain_mailbox
from exchanger.transport.url import with_credentials, with_vhost

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

BROKEN = [
    ("customs-declaration/broken.xml", "ent-a"),
    ("inspection-declaration/broken.xml", "ent-a"),
    ("inspection-certificate/broken.xml", "ciq"),
    ("cargo-manifest/broken.xml", "rail"),
    ("export-rebate-data/broken.xml", "customs"),
    ("forex-verification/broken.xml", "ent-a"),
    ("agency-receipt/broken.xml", "customs"),
]
CU = "{urn:eport:common:1}"


def _message_id(path: Path) -> str:
    return etree.parse(str(path)).getroot().findtext(f"*/{CU}MessageId")


@pytest.fixture(scope="module")
def deployment(broker, tmp_path_factory):
    """The bundled configuration with this run's broker users, its topology and users applied."""
    exchange = make_exchange(tmp_path_factory.mktemp("deployment"), user_prefix=broker.unique("u") + "-")
    for participant in exchange.config.registry:
        broker.track_user(participant.amqp_user)
    broker.track_user(exchange.config.broker.daemon_user)
    # No credentials in the URL: each command connects as the identity it acts for.
    exchange.url = with_vhost("amqp://127.0.0.1:5672/", broker.vhost)
    applied = _cli(exchange, broker.url, "topology", "apply")
    assert "quorum queues" in applied.stdout
    return exchange


@pytest.fixture(autouse=True)
def fresh_message_log(request):
    """Each test sends the bundled samples afresh: with the log of an earlier test they would be duplicates."""
    if "deployment" in request.fixturenames:
        exchange = request.getfixturevalue("deployment")
        for path in (exchange.config_path.parent / "var").glob("journal.db*"):
            path.unlink()


def _live_copy(exchange, directory: Path):
    """A copy of the deployment's configuration that a test may edit under a running daemon: (exchange, path, text)."""
    live = directory / "live.yaml"
    original = exchange.config_path.read_text()
    live.write_text(original)
    local = type(exchange)(live, exchange.keys_dir, exchange.config)
    local.url = exchange.url
    return local, live, original


def _mailbox(exchange, participant: str, count: int):
    user = exchange.config.registry.get(participant).amqp_user
    url = with_credentials(exchange.url, user, exchange.password(participant))
    return list(drain_mailbox(url, participant, count=count, wait=20))


def test_every_sample_reaches_exactly_where_routes_say(deployment, broker, tmp_path):
    exchange = deployment
    daemon = Daemon(exchange, exchange.url, workers=2)
    try:
        daemon.wait_for("worker.consuming", count=2)
        senders = sorted({s for _, s, _ in VALID} | {s for _, s in BROKEN})
        for sender in senders:
            files = [str(SAMPLES / f) for f, s, *_ in VALID + BROKEN if s == sender]
            sent = _cli(exchange, exchange.url, "send", "--sign", "--as", sender, *files)
            assert sent.stdout.count("sent ") == len(files)
        # An unsigned declaration and a hostile one, from ent-b.
        hostile = tmp_path / "hostile.xml"
        hostile.write_bytes(b'<?xml version="1.0"?><!DOCTYPE d [<!ENTITY x SYSTEM "file:///etc/passwd">]><d>&x;</d>')
        _cli(exchange, exchange.url, "send", "--as", "ent-b", str(SAMPLES / "customs-declaration/valid.xml"), str(hostile))

        expected: dict[str, Counter] = {p: Counter() for p in exchange.config.registry.ids()}
        for sample, sender, destinations in VALID:
            for destination in destinations:
                expected[destination][("forward", _message_id(SAMPLES / sample))] += 1
            expected[sender][("receipt accepted", _message_id(SAMPLES / sample))] += 1
        for sample, sender in BROKEN:
            expected[sender][("receipt rejected", _message_id(SAMPLES / sample))] += 1
        # ent-b's unsigned declaration is refused and its receipt names the message; the hostile one has no id.
        expected["ent-b"][("receipt rejected", _message_id(SAMPLES / "customs-declaration/valid.xml"))] += 1
        expected["ent-b"][("receipt rejected", None)] += 1

        for participant, wanted in expected.items():
            total = sum(wanted.values())
            if total == 0:
                continue
            got = _mailbox(exchange, participant, total)
            seen = Counter()
            for message in got:
                kind = message.headers["x-exchanger-kind"]
                if kind == "receipt":
                    kind = f"receipt {message.headers['x-exchanger-status']}"
                seen[(kind, message.headers.get("x-exchanger-orig-message-id"))] += 1
            assert seen == wanted, participant
        # Nothing more is waiting anywhere.
        for participant in expected:
            assert _mailbox_is_empty(exchange, participant)

        # Every rejected input is in the dead-letter queue with its original bytes and the reason.
        dead = _drain_dead(broker.url)
        assert len(dead) == len(BROKEN) + 2
        stages = Counter(h["x-exchanger-stage"] for h, _ in dead)
        assert stages == {"validate": len(BROKEN), "verify": 1, "parse": 1}
        assert any(body == hostile.read_bytes() for _, body in dead)
    finally:
        code = daemon.stop()
    assert code == 0, "".join(daemon.raw[-30:])
    assert any(e.get("event") == "worker.stopped" for e in daemon.events)


def _mailbox_is_empty(exchange, participant) -> bool:
    user = exchange.config.registry.get(participant).amqp_user
    url = with_credentials(exchange.url, user, exchange.password(participant))
    return list(drain_mailbox(url, participant, count=1, wait=0.5)) == []


def test_walkthrough_commands(deployment, tmp_path):
    """The README's walkthrough: send as an enterprise, receive at customs and ciq, verify, read the receipt."""
    exchange = deployment
    daemon = Daemon(exchange, exchange.url, workers=1)
    try:
        daemon.wait_for("worker.consuming")
        _cli(exchange, exchange.url, "send", "--sign", "--as", "ent-a",
             str(SAMPLES / "customs-declaration/valid-with-inspection.xml"))
        customs = _cli(exchange, exchange.url, "receive", "customs", "--count", "1", "--wait", "20", "--out", str(tmp_path / "customs"))
        assert "CustomsDeclaration" in customs.stdout and "via route declaration-to-customs" in customs.stdout
        ciq = _cli(exchange, exchange.url, "receive", "ciq", "--count", "1", "--wait", "20", "--out", str(tmp_path / "ciq"))
        assert "shared under GACC" in ciq.stdout
        receipt = _cli(exchange, exchange.url, "receive", "ent-a", "--count", "1", "--wait", "20")
        assert "receipt accepted" in receipt.stdout and "delivered to customs, ciq" in receipt.stdout
        (forward,) = (tmp_path / "customs").iterdir()
        verified = _cli(exchange, exchange.url, "verify", str(forward), "--extract", str(tmp_path / "original.xml"))
        assert verified.stdout.count("OK") == 2
        xmlsec = subprocess.run(
            ["xmlsec1", "--verify", "--trusted-pem", str(exchange.keys_dir / "ca" / "cert.pem"), str(forward)],
            capture_output=True, text=True,
        )
        assert xmlsec.returncode == 0, xmlsec.stderr
        broken = _cli(exchange, exchange.url, "send", "--sign", "--as", "ent-a", str(SAMPLES / "customs-declaration/broken.xml"))
        assert broken.returncode == 0
        reply = _cli(exchange, exchange.url, "receive", "ent-a", "--count", "1", "--wait", "20")
        assert "receipt rejected" in reply.stdout
        assert "[validate/xsd] (line" in reply.stdout and "HSCode" in reply.stdout
    finally:
        assert daemon.stop() == 0


def _delete_queue(admin_url: str, queue: str) -> None:
    connection = pika.BlockingConnection(pika.URLParameters(admin_url))
    connection.channel().queue_delete(queue)
    connection.close()


def test_a_copy_to_a_missing_mailbox_waits_until_it_is_back(deployment, broker):
    """A destination queue deleted and recreated: the copy is returned (mandatory), retried, and delivered."""
    exchange = deployment
    daemon = Daemon(exchange, exchange.url, workers=1)
    try:
        daemon.wait_for("worker.consuming")
        _delete_queue(broker.url, "mailbox.tax")
        _cli(exchange, exchange.url, "send", "--sign", "--as", "customs", str(SAMPLES / "export-rebate-data/valid.xml"))
        daemon.wait_for("delivery.unroutable")
        daemon.wait_for("delivery.retrying")
        _cli(exchange, broker.url, "topology", "apply", "--no-users")
        (copy,) = _mailbox(exchange, "tax", 1)
        assert copy.headers["x-exchanger-orig-message-id"] == _message_id(SAMPLES / "export-rebate-data/valid.xml")
        (receipt,) = _mailbox(exchange, "customs", 1)
        assert receipt.headers["x-exchanger-status"] == "accepted"
        assert _mailbox_is_empty(exchange, "tax")
    finally:
        assert daemon.stop() == 0


def test_sighup_reloads_and_keeps_the_last_good_configuration(deployment, tmp_path):
    """Reload swaps a checked configuration in; a broken one is refused and the running one kept."""
    exchange = deployment
    local, live, original = _live_copy(exchange, tmp_path)
    source = (SAMPLES / "customs-declaration/valid-with-inspection.xml").read_bytes()
    copies = []
    for index in range(5):
        # Each send its own message id: the same one again would be a duplicate, answered with the first receipt.
        path = tmp_path / f"declaration-{index}.xml"
        path.write_bytes(source.replace(b"ENTA-DEC-20240318-000002", f"ENTA-DEC-SIGHUP-{index:06d}".encode()))
        copies.append(str(path))
    daemon = Daemon(local, exchange.url, workers=2)
    try:
        daemon.wait_for("worker.consuming", count=2)
        _cli(local, exchange.url, "send", "--sign", "--as", "ent-a", copies[0])
        (before,) = _mailbox(local, "customs", 1)
        (shared,) = _mailbox(local, "ciq", 1)
        old_version = before.headers["x-exchanger-config-version"]

        data = yaml.safe_load(original)
        data["routes"] = [r for r in data["routes"] if r["id"] != "declaration-copy-to-inspection"]
        live.write_text(yaml.safe_dump(data, sort_keys=False))
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for("config.reloaded", count=2)  # both workers, idle ones too
        _cli(local, exchange.url, "send", "--sign", "--as", "ent-a", *copies[1:4])
        after = _mailbox(local, "customs", 3)
        new_versions = {m.headers["x-exchanger-config-version"] for m in after}
        assert len(new_versions) == 1 and old_version not in new_versions
        assert _mailbox_is_empty(local, "ciq")  # the sharing rule is gone

        live.write_text("routes: [this is: not valid")
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for("config.reload_failed", count=2)
        _cli(exchange, exchange.url, "send", "--sign", "--as", "ent-a", copies[4])
        (kept,) = _mailbox(local, "customs", 1)
        assert {kept.headers["x-exchanger-config-version"]} == new_versions
        assert len(_mailbox(local, "ent-a", 5)) == 5  # every message got its receipt
    finally:
        assert daemon.stop() == 0


def test_a_worker_that_dies_is_restarted(deployment):
    """kill -9 of one worker: the supervisor starts another; its unacked messages come back from the broker."""
    exchange = deployment
    daemon = Daemon(exchange, exchange.url, workers=2)
    try:
        daemon.wait_for("worker.consuming", count=2)
        pid = next(e["pid"] for e in daemon.events if e.get("event") == "worker.started")
        os.kill(pid, signal.SIGKILL)
        daemon.wait_for("worker.died")
        daemon.wait_for("worker.consuming", count=3)
        _cli(exchange, exchange.url, "send", "--sign", "--as", "ent-a", str(SAMPLES / "forex-verification/valid.xml"))
        (copy,) = _mailbox(exchange, "forex", 1)
        assert copy.headers["x-exchanger-kind"] == "forward"
        _mailbox(exchange, "ent-a", 1)
    finally:
        assert daemon.stop() == 0


def _http(url: str) -> tuple[int, str]:
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read().decode()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read().decode()


def test_metrics_health_and_status(deployment, tmp_path):
    """Operators see readiness, outcomes, rejection reasons, dead-letter depth and certificate expiry."""
    exchange = deployment
    local, live, _ = _live_copy(exchange, tmp_path)
    daemon = Daemon(local, exchange.url, workers=2)
    try:
        daemon.wait_for("worker.consuming", count=2)
        base = daemon.http
        assert _http(f"{base}/healthz")[0] == 200
        code, body = _http(f"{base}/readyz")
        assert code == 200 and json.loads(body)["ready"], body
        _cli(exchange, exchange.url, "send", "--sign", "--as", "ent-a",
             str(SAMPLES / "forex-verification/valid.xml"), str(SAMPLES / "forex-verification/broken.xml"))
        _mailbox(exchange, "forex", 1)
        _mailbox(exchange, "ent-a", 2)
        _, metrics_text = _http(f"{base}/metrics")
        assert 'exchanger_messages_total{outcome="accepted",type="ForexVerification"} 1.0' in metrics_text
        assert 'exchanger_rejections_total{code="xsd",stage="validate"} 1.0' in metrics_text
        assert 'exchanger_stage_seconds_count{stage="verify"}' in metrics_text
        assert "exchanger_message_seconds_bucket" in metrics_text
        # Both deliveries waited in a worker before their pipeline: one observation each, across the workers.
        waits = [line for line in metrics_text.splitlines() if line.startswith("exchanger_wait_seconds_count")]
        assert waits and float(waits[0].split()[-1]) == 2.0, waits
        assert 'exchanger_deliveries_total{destination="forex",kind="forward"} 1.0' in metrics_text
        assert "exchanger_broker_connected 2.0" in metrics_text
        assert 'exchanger_certificate_expiry_days{participant="eport"' in metrics_text
        assert "exchanger_dead_letters " in metrics_text
        # The broker's version, as it announced it when each worker connected: logged, scraped and shown.
        (version,) = {e["broker"] for e in list(daemon.events) if e.get("event") == "broker.connected"}
        assert version.startswith("RabbitMQ ")
        assert f'exchanger_broker_info{{product="RabbitMQ",version="{version.split()[1]}"}} 1.0' in metrics_text
        status = _cli(local, exchange.url, "status", "--url", base)
        assert "READY" in status.stdout and "accepted 1" in status.stdout and "validate/xsd: 1" in status.stdout
        assert f"broker: {version}" in status.stdout

        live.write_text("participants: [broken")
        daemon.process.send_signal(signal.SIGHUP)
        deadline = time.monotonic() + 30
        while _http(f"{base}/readyz")[0] != 503:
            assert time.monotonic() < deadline, "readiness never reported the broken configuration"
            time.sleep(0.2)
        code, body = _http(f"{base}/readyz")
        checks = json.loads(body)["checks"]
        assert not checks["config"]["ok"] and "not valid YAML" in checks["config"]["detail"]
        assert checks["broker"]["ok"]
        not_ready = _cli(exchange, exchange.url, "status", "--url", base, check=False)
        assert not_ready.returncode == 1 and "NOT READY" in not_ready.stdout
    finally:
        assert daemon.stop() == 0


def test_dead_letters_list_show_replay_and_purge(deployment, tmp_path):
    """Operators browse dead letters, replay them after a configuration fix, and purge old ones."""
    exchange = deployment
    _cli(exchange, exchange.url, "dead", "purge", "--older-than", "0s")  # what earlier tests left
    local, live, original = _live_copy(exchange, tmp_path)
    data = yaml.safe_load(original)
    data["routes"] = [r for r in data["routes"] if r["id"] != "forex-verification"]
    live.write_text(yaml.safe_dump(data, sort_keys=False))
    daemon = Daemon(local, exchange.url, workers=1)
    try:
        daemon.wait_for("worker.consuming")
        _cli(exchange, exchange.url, "send", "--sign", "--as", "ent-a",
             str(SAMPLES / "forex-verification/valid.xml"), str(SAMPLES / "customs-declaration/broken.xml"))
        assert [m.headers["x-exchanger-status"] for m in _mailbox(exchange, "ent-a", 2)] == ["rejected"] * 2
        listed = _cli(exchange, exchange.url, "dead", "list")
        lines = listed.stdout.strip().splitlines()
        assert len(lines) == 2, listed.stdout
        # Reading takes nothing: the same two, however often they are listed.
        assert _cli(exchange, exchange.url, "dead", "list").stdout == listed.stdout
        no_route = next(line for line in lines if "route/no-route" in line)
        assert "ForexVerification" in no_route and "ent-a" in no_route
        assert _cli(exchange, exchange.url, "dead", "list", "--reason", "validate/xsd").stdout.count("\n") == 1
        shown = _cli(exchange, exchange.url, "dead", "show", no_route.split()[0])
        assert "no route allows ForexVerification from ent-a to forex" in shown.stdout
        assert "<fx:ForexVerification" in shown.stdout

        # The fix: the route comes back; reload, then replay what it had refused.
        live.write_text(original)
        daemon.process.send_signal(signal.SIGHUP)
        daemon.wait_for("config.reloaded")
        replayed = _cli(exchange, exchange.url, "dead", "replay", "--reason", "no-route")
        assert "1 replayed" in replayed.stderr
        (copy,) = _mailbox(exchange, "forex", 1)
        assert copy.headers["x-exchanger-sender"] == "ent-a"
        (receipt,) = _mailbox(exchange, "ent-a", 1)
        assert receipt.headers["x-exchanger-status"] == "accepted"

        # Replaying what is still broken makes a new dead letter that says so; it is never replayed by itself.
        _cli(exchange, exchange.url, "dead", "replay", "--reason", "validate/xsd")
        (again,) = _mailbox(exchange, "ent-a", 1)
        assert again.headers["x-exchanger-status"] == "rejected"
        remaining = _cli(exchange, exchange.url, "dead", "list").stdout.strip().splitlines()
        assert len(remaining) == 1 and "replayed 1x" in remaining[0]
        assert "0 dead letter(s) would be removed" in _cli(exchange, exchange.url, "dead", "purge", "--older-than", "1h", "--dry-run").stderr
        _cli(exchange, exchange.url, "dead", "purge", "--older-than", "0s")
        assert _cli(exchange, exchange.url, "dead", "list").stdout.strip() == ""
        # Settled, not gone: each replay and purge is on record with who did it.
        settled = _cli(exchange, exchange.url, "dead", "list", "--settled").stdout
        assert "[replayed by " in settled and "[purged by " in settled
        # And in the message log, under the operator's login name.
        actions = _cli(exchange, exchange.url, "log", "search", "--kind", "operator-action").stdout
        assert "dead-letter-replay by " in actions and "dead-letter-purge by " in actions
    finally:
        assert daemon.stop() == 0


def test_reload_under_load_loses_nothing_and_mixes_nothing(deployment, tmp_path):
    """Four reloads while 300 declarations flow: nothing lost, and each message is handled by one version."""
    exchange = deployment
    local, live, original = _live_copy(exchange, tmp_path)
    without_copy = yaml.safe_load(original)
    without_copy["routes"] = [r for r in without_copy["routes"] if r["id"] != "declaration-copy-to-inspection"]
    total = 300
    template = etree.parse(str(SAMPLES / "customs-declaration/valid-with-inspection.xml")).getroot()
    signer = exchange.signer("ent-a")
    bodies = []
    for index in range(total):
        template.find(f"*/{CU}MessageId").text = f"LOAD-{index:05d}"
        bodies.append(etree.tostring(signer.sign(template), xml_declaration=True, encoding="UTF-8"))
    user = exchange.config.registry.get("ent-a").amqp_user
    daemon = Daemon(local, exchange.url, workers=2)
    try:
        daemon.wait_for("worker.consuming", count=2)
        connection = pika.BlockingConnection(pika.URLParameters(with_credentials(exchange.url, user, exchange.password("ent-a"))))
        channel = connection.channel()
        channel.confirm_delivery()
        properties = pika.BasicProperties(delivery_mode=2, user_id=user)
        for index, body in enumerate(bodies):
            channel.basic_publish("exchanger.inbound", "inbound", body, properties, mandatory=True)
            if index in (60, 180):
                live.write_text(yaml.safe_dump(without_copy, sort_keys=False))
                daemon.process.send_signal(signal.SIGHUP)
            if index in (120, 240):
                live.write_text(original)
                daemon.process.send_signal(signal.SIGHUP)
        connection.close()
        receipts = {m.headers["x-exchanger-orig-message-id"]: m.headers["x-exchanger-config-version"]
                    for m in _mailbox(exchange, "ent-a", total)}
        forwards = {m.headers["x-exchanger-orig-message-id"]: m.headers["x-exchanger-config-version"]
                    for m in _mailbox(exchange, "customs", total)}
        assert len(receipts) == len(forwards) == total  # nothing lost, nothing twice
        assert receipts == forwards  # the copy and the receipt of a message come from the same version
        versions = set(receipts.values())
        assert len(versions) == 2, versions
        shared = {m.headers["x-exchanger-orig-message-id"]: m.headers["x-exchanger-config-version"]
                  for m in list(drain_mailbox(with_credentials(exchange.url, exchange.config.registry.get("ciq").amqp_user,
                                                               exchange.password("ciq")), "ciq", count=None, wait=2))}
        with_rule = set(shared.values())
        assert len(with_rule) == 1  # copies to ciq only under the version that has the sharing rule
        assert {mid for mid, version in receipts.items() if version in with_rule} == set(shared)
        assert sum(1 for e in daemon.events if e.get("event") == "config.reloaded") >= 2  # signals may coalesce
    finally:
        assert daemon.stop() == 0


def test_routes_apply_reaches_a_watching_daemon_and_the_next_message_follows_it(deployment, tmp_path):
    """`routes apply` writes the new version in place; the daemon started with --watch-config routes by it."""
    exchange = deployment
    local, live, original = _live_copy(exchange, tmp_path)
    data = yaml.safe_load(original)
    data["routes"] = [r for r in data["routes"] if r["id"] != "forex-verification"]
    without_forex = tmp_path / "without-forex.yaml"
    without_forex.write_text(yaml.safe_dump(data, sort_keys=False))
    daemon = Daemon(local, exchange.url, workers=1, extra=["--watch-config"])
    try:
        daemon.wait_for("worker.consuming")
        applied = _cli(local, exchange.url, "routes", "apply", str(without_forex))
        assert "- route forex-verification" in applied.stdout and "ForexVerification loses destination: addressed receivers in kind:forex" in applied.stdout
        daemon.wait_for("config.reloaded")
        _cli(exchange, exchange.url, "send", "--sign", "--as", "ent-a", str(SAMPLES / "forex-verification/valid.xml"))
        (receipt,) = _mailbox(exchange, "ent-a", 1)
        assert receipt.headers["x-exchanger-status"] == "rejected"
        (kept,) = (tmp_path / "live.yaml.previous").iterdir()
        assert kept.read_text() == original
        actions = _cli(local, exchange.url, "log", "search", "--kind", "operator-action").stdout
        assert "route-change by " in actions
        _cli(exchange, exchange.url, "dead", "purge", "--older-than", "0s")  # leave no dead letter behind
    finally:
        assert daemon.stop() == 0


def test_watch_config_reloads_when_a_file_changes(deployment, tmp_path):
    """With --watch-config, editing the configuration is enough; a broken edit keeps the running version."""
    exchange = deployment
    local, live, original = _live_copy(exchange, tmp_path)
    daemon = Daemon(local, exchange.url, workers=1, extra=["--watch-config"])
    try:
        daemon.wait_for("worker.consuming")
        data = yaml.safe_load(original)
        data["limits"]["max_message_bytes"] = 1_000
        live.write_text(yaml.safe_dump(data, sort_keys=False))
        daemon.wait_for("config.changed")
        daemon.wait_for("config.reloaded")
        _cli(exchange, exchange.url, "send", "--sign", "--as", "ent-a", str(SAMPLES / "forex-verification/valid.xml"))
        (receipt,) = _mailbox(exchange, "ent-a", 1)
        assert receipt.headers["x-exchanger-status"] == "rejected"  # the new, smaller limit applies
        live.write_text("limits: [")
        daemon.wait_for("config.changed", count=2)
        daemon.wait_for("config.reload_failed")
    finally:
        assert daemon.stop() == 0
