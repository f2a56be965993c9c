"""Operators' actions in the message log: recorded with their name, found by search and trace, covered by verify."""

from __future__ import annotations

import json

import pytest

from test_journal import _cli, _execute, logged, postgres_database, store_url  # noqa: F401  (fixtures)
from exchanger.journal.records import OPERATOR_ACTION
from exchanger.journal.store import Query, open_store
from exchanger.operations import messages
from exchanger.operations.actor import Operator, OperatorError, record_action

DECLARATION_ID = "ENTA-DEC-20240318-000002"


def _act(url: str, operator: Operator, action: str, **about):
    store = open_store(url)
    try:
        return record_action(store, operator, action, **about)
    finally:
        store.close()


def test_an_action_on_a_message_shows_in_its_trace_and_in_search(logged):
    url, config_path, _ = logged
    alice = Operator("alice", "console")
    _act(url, alice, "dead-letter-replay", message_id=DECLARATION_ID, sender="ent-a",
         message_type="CustomsDeclaration", details={"dead_letter_id": "abc123"})
    _act(url, Operator("bob_1", "cli"), "route-change", details={"diff": ["+ route x"]})

    traced = _cli(config_path, "trace", DECLARATION_ID, "--sender", "ent-a")
    assert traced.exit_code == 0, traced.output
    (line,) = [line for line in traced.output.splitlines() if OPERATOR_ACTION in line]
    assert "dead-letter-replay by alice via console: done" in line
    assert "dead_letter_id: abc123" in traced.output

    listed = _cli(config_path, "log", "search", "--kind", OPERATOR_ACTION)
    assert listed.exit_code == 0, listed.output
    lines = [line for line in listed.stdout.splitlines() if line.strip()]
    assert len(lines) == 2 and "route-change by bob_1 via cli" in lines[0]  # newest first
    by_alice = _cli(config_path, "log", "search", "--operator", "alice", "--json")
    (record,) = json.loads(by_alice.stdout)
    assert record["details"]["operator"] == "alice" and record["message_id"] == DECLARATION_ID
    # A LIKE wildcard in a name matches only itself.
    assert _cli(config_path, "log", "search", "--operator", "bob%").stdout.strip() == ""
    assert _cli(config_path, "log", "search", "--operator", "bobx1").stdout.strip() == ""
    assert len(_cli(config_path, "log", "search", "--operator", "bob_1").stdout.splitlines()) == 1
    # The outcomes listed by default are unchanged by operators' records.
    assert len(_cli(config_path, "log", "search").stdout.splitlines()) == 3


def test_operator_actions_are_in_the_chain_and_an_edit_is_caught(logged):
    url, config_path, _ = logged
    record = _act(url, Operator("alice", "cli"), "dead-letter-purge", message_id=DECLARATION_ID, sender="ent-a")
    assert _cli(config_path, "log", "verify").exit_code == 0
    forged = record.data.replace('"alice"', '"mallory"')
    _execute(url, ("UPDATE journal_records SET data = ? WHERE seq = ?", (forged, record.seq)))
    result = _cli(config_path, "log", "verify")
    assert result.exit_code == 1
    assert f"seq {record.seq}: edited" in result.output and "operator-action" in result.output


def test_search_through_the_operations_layer(logged):
    url, _, _ = logged
    _act(url, Operator("carol", "console"), "sign-in-failed", outcome="refused")
    store = open_store(url)
    try:
        (found,) = messages.search(store, Query(operator="carol"))
        assert found.details["outcome"] == "refused"
        assert len(messages.search(store, Query())) == 3
        assert messages.trace(store, "NO-SUCH-ID").found is False
    finally:
        store.close()


@pytest.mark.parametrize(
    "make, problem",
    [
        (lambda: Operator("", "cli"), "operator's name"),
        (lambda: Operator("alice", "mail"), "via cli or console"),
    ],
)
def test_an_operator_must_be_named_and_act_through_a_known_door(make, problem):
    with pytest.raises(OperatorError, match=problem):
        make()


def test_unknown_actions_and_reserved_details_are_refused(tmp_path):
    store = open_store(f"sqlite:///{tmp_path / 'log.db'}")
    try:
        with pytest.raises(OperatorError, match="unknown operator action"):
            record_action(store, Operator("alice", "cli"), "delete-everything")
        with pytest.raises(OperatorError, match="may not set operator"):
            record_action(store, Operator("alice", "cli"), "report", details={"operator": "mallory"})
        assert store.bounds()[2] == 0
    finally:
        store.close()


def test_the_login_name_acts_via_the_command_line():
    operator = Operator.from_login()
    assert operator.via == "cli" and operator.name
