"""The message log in the running daemon, on both stores: duplicates answered with the original receipt, trace, verify."""

from __future__ import annotations

import json

import pytest

from daemon_fixture import Daemon, cli, deploy, login_url, mailbox, publish
from exchange_fixture import SAMPLES
from test_journal import _postgres_schema, postgres_database  # noqa: F401  (fixture)

pytestmark = [pytest.mark.broker, pytest.mark.e2e]


@pytest.fixture(params=["sqlite", "postgres"])
def journal_url(request, tmp_path) -> str:
    """The daemon's log: the default SQLite file, or a fresh schema on the real PostgreSQL."""
    if request.param == "sqlite":
        return "sqlite:///var/journal.db"
    return _postgres_schema(request.getfixturevalue("postgres_database"))


def test_a_duplicate_is_answered_with_the_original_receipt_and_not_forwarded(broker, tmp_path, journal_url):
    """Sender + message id already accepted: the same receipt again, no second copy; rejected ones go through again."""

    def use_store(data, _exchange):
        data["journal"]["url"] = journal_url

    exchange = deploy(broker, tmp_path, use_store, users=["ent-a", "customs", "ciq"])
    body = exchange.signed("ent-a", SAMPLES / "customs-declaration/valid-with-inspection.xml")
    broken = exchange.signed("ent-a", SAMPLES / "customs-declaration/broken.xml")
    user = exchange.config.registry.get("ent-a").amqp_user
    daemon = Daemon(exchange, broker.url)
    try:
        daemon.wait_for("worker.consuming")
        publish(login_url(exchange, "ent-a"), body, user)
        (first,) = mailbox(exchange, "ent-a", 1)
        publish(login_url(exchange, "ent-a"), body, user)
        (second,) = mailbox(exchange, "ent-a", 1)
        daemon.wait_for("message.duplicate")
        assert second.body == first.body and second.message_id == first.message_id
        assert second.headers["x-exchanger-duplicate"] == "true"
        assert len(mailbox(exchange, "customs", None, wait=2)) == 1
        assert len(mailbox(exchange, "ciq", None, wait=2)) == 1
        for _ in range(2):  # a rejected message is processed again each time (it may have been fixed)
            publish(login_url(exchange, "ent-a"), broken, user)
            (again,) = mailbox(exchange, "ent-a", 1)
            assert again.headers["x-exchanger-status"] == "rejected" and "x-exchanger-duplicate" not in again.headers
    finally:
        assert daemon.stop() == 0
    trace = cli(exchange, broker.url, "trace", "ENTA-DEC-20240318-000002", "--json")
    kinds = [r["kind"] for r in json.loads(trace.stdout)]
    assert kinds == ["received", "routed", "delivered", "delivered", "receipt", "received", "duplicate", "receipt"]
    readable = cli(exchange, broker.url, "trace", "ENTA-DEC-20240318-000002")
    assert "duplicate" in readable.stdout and "customs" in readable.stdout
    search = cli(exchange, broker.url, "log", "search", "--status", "rejected", "--json")
    assert len([r for r in json.loads(search.stdout) if r.get("message_id") == "ENTA-DEC-20240315-000091"]) >= 2
    verified = cli(exchange, broker.url, "log", "verify")
    assert verified.stdout.startswith("OK")
