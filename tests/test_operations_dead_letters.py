"""The dead-letter desk on the real broker: browsing consumes nothing; each replay and purge is on record."""

from __future__ import annotations

import hashlib
from dataclasses import replace

import pytest

from test_dead_letters import _pending, _poison, _reject, _stream_depth, store, url  # noqa: F401  (fixtures)
from exchanger.errors import ExchangerError
from exchanger.journal.records import OPERATOR_ACTION
from exchanger.journal.store import Query, open_store
from exchanger.operations import messages
from exchanger.operations.actor import Operator
from exchanger.operations.dead_letters import DeadLetterDesk, DeadLetterFilter

ALICE = Operator("alice", "console")


@pytest.fixture
def log(tmp_path):
    """An empty message log."""
    journal = open_store(f"sqlite:///{tmp_path / 'journal.db'}")
    yield journal
    journal.close()


@pytest.fixture
def desk(exchange, broker, url, log) -> DeadLetterDesk:
    """The desk on a fresh vhost; the broker's admin stands in for the daemon's user."""
    config = replace(exchange.config, broker=replace(exchange.config.broker, daemon_user=broker.admin_user))
    return DeadLetterDesk(config, url, log)


def _actions(log) -> list:
    return log.find(Query(kinds=(OPERATOR_ACTION,)))


def test_browsing_and_finding_take_nothing(url, store, desk, log) -> None:
    _reject(url, "first-letter", b"<first/>")
    _reject(url, "second-letter", b"<second/>", stage="route")
    _pending(store, 2)
    for _ in range(5):
        assert [letter.id for letter in desk.browse()] == ["first-letter", "second-letter"]
    assert [letter.id for letter in desk.browse(DeadLetterFilter(reason="route/"))] == ["second-letter"]
    assert [letter.id for letter in desk.browse(DeadLetterFilter(limit=1))] == ["first-letter"]
    assert desk.find("second").body == b"<second/>"
    assert desk.find("no-such") is None
    assert _stream_depth(url) == 2 and _actions(log) == []


def test_a_replay_is_recorded_with_the_operator_the_letter_and_its_sender(url, store, desk, log) -> None:
    _reject(url, "replayme", b"<again/>")
    _reject(url, "staying", b"<stays/>")
    _pending(store, 2)
    (result,) = desk.replay(["replay"], ALICE)
    assert result.done and result.letter.id == "replayme"
    assert [letter.id for letter in desk.browse()] == ["staying"]
    assert store.read().settled["replayme"].settled_by == "alice"
    (record,) = _actions(log)
    assert record.sender == "a" and record.digest == hashlib.sha256(b"<again/>").hexdigest()
    assert record.details["action"] == "dead-letter-replay" and record.details["operator"] == "alice"
    assert record.details["via"] == "console" and record.details["outcome"] == "done"
    assert record.details["dead_letter_id"] == "replayme"
    # A letter refused before its id was read is traced by its digest: the action shows there.
    traced = messages.trace(log, record.digest[:16], "a")
    assert any("dead-letter-replay by alice via console: done" in line for line in traced.lines)


def test_a_purge_is_recorded_and_the_letter_no_longer_shows(url, store, desk, log) -> None:
    _reject(url, "old", b"<old/>")
    _reject(url, "kept", b"<kept/>")
    _pending(store, 2)
    (purged,) = desk.purge(["old"], Operator("bob", "cli"))
    assert purged.letter.id == "old"
    assert [letter.id for letter in desk.browse()] == ["kept"]
    (record,) = _actions(log)
    assert record.details["action"] == "dead-letter-purge" and record.details["operator"] == "bob"


def test_nothing_is_settled_wholesale_and_nothing_named_is_nothing_done(url, store, desk, log) -> None:
    _reject(url, "lonely", b"<lonely/>")
    _pending(store, 1)
    with pytest.raises(ExchangerError, match="name the dead letters"):
        desk.replay([], ALICE)
    with pytest.raises(ExchangerError, match="name the dead letters"):
        desk.purge([], ALICE)
    assert desk.replay(["nothing-like-it"], ALICE) == []
    assert [letter.id for letter in desk.browse()] == ["lonely"] and _actions(log) == []


def test_a_letter_without_a_verified_sender_is_skipped_and_the_refusal_recorded(url, store, desk, log) -> None:
    _poison(url, b"<poison/>")
    (letter,) = _pending(store, 1)
    (result,) = desk.replay([letter.id], ALICE)
    assert not result.done and "no broker-verified sender" in result.why
    assert [pending.id for pending in desk.browse()] == [letter.id]
    (record,) = _actions(log)
    assert record.details["outcome"] == "refused" and "no broker-verified sender" in record.details["why"]


def test_replay_and_purge_need_the_message_log(exchange, broker, url) -> None:
    config = replace(exchange.config, broker=replace(exchange.config.broker, daemon_user=broker.admin_user))
    reader = DeadLetterDesk(config, url, None)
    assert reader.browse() == []
    with pytest.raises(ExchangerError, match="needs the message log"):
        reader.replay(["x"], ALICE)
