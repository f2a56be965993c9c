"""The message log on both stores: the chain, tampering caught and named, checkpoints, prune, trace, search, duplicates."""

from __future__ import annotations

import hashlib
import itertools
import json
import os
import secrets
import sqlite3
import subprocess
import sys
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import click
import pytest
from click.testing import CliRunner

from exchange_fixture import SAMPLES, write_config
from exchanger.cli.common import Settings
from exchanger.cli.log import log as log_command
from exchanger.cli.log import trace as trace_command
from exchanger.config import ConfigError, load_config
from exchanger.envelope import Envelope, Inbound
from exchanger.journal.chain import content_digest, link
from exchanger.journal.checkpoint import Checkpointer
from exchanger.journal.recorder import Recorder, open_recorder
from exchanger.journal.records import RECEIPT, RECEIVED, Event
from exchanger.journal.sqlite import sqlite_path
from exchanger.journal.store import Query, open_store
from exchanger.journal.writer import Writer
from exchanger.pipeline.runner import Pipeline
from exchanger.pipeline.stages.deduplicate import Deduplicate, Duplicate, duplicate_disposition

POSTGRES_URL_VAR = "EXCHANGER_TEST_POSTGRES_URL"
DEFAULT_POSTGRES_URL = "postgresql://postgres@127.0.0.1:5432/postgres"
DECLARATION = SAMPLES / "customs-declaration/valid-with-inspection.xml"
BROKEN = SAMPLES / "customs-declaration/broken.xml"
X_DIGEST = hashlib.sha256(b"x").hexdigest()
_schemas = itertools.count(1)


# ---- the two stores ------------------------------------------------------------------------------


def _under_ci() -> bool:
    return os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")


@pytest.fixture(scope="session")
def postgres_database():
    """A database of this run's own on the real PostgreSQL (fails under CI if there is none), dropped afterwards."""
    import psycopg

    admin_url = os.environ.get(POSTGRES_URL_VAR, DEFAULT_POSTGRES_URL)
    try:
        admin = psycopg.connect(admin_url, autocommit=True, connect_timeout=5)
    except psycopg.OperationalError as exc:
        reason = f"no PostgreSQL at {admin_url}: {exc}".strip()
        if _under_ci():
            pytest.fail(f"the PostgreSQL server the tests need is unavailable: {reason}", pytrace=False)
        pytest.skip(reason)
    name = f"exchanger_test_{secrets.token_hex(4)}"
    admin.execute(f'CREATE DATABASE "{name}"')
    try:
        yield urlunsplit(urlsplit(admin_url)._replace(path=f"/{name}"))
    finally:
        admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        admin.close()


def _postgres_schema(database_url: str) -> str:
    import psycopg

    schema = f"journal_{next(_schemas)}"
    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA {schema}")
    return f"{database_url}?options=-csearch_path%3D{schema}"


@pytest.fixture(params=["sqlite", "postgres"])
def store_url(request, tmp_path) -> str:
    """A fresh, empty log store: a SQLite file in tmp, or a new schema in the run's PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journal.db'}"
    return _postgres_schema(request.getfixturevalue("postgres_database"))


@pytest.fixture
def postgres_url(postgres_database) -> str:
    """A fresh schema in the run's PostgreSQL database."""
    return _postgres_schema(postgres_database)


def _execute(url: str, *statements: tuple[str, tuple]) -> None:
    """Run SQL directly against the store, as someone with access to the database would: one transaction."""
    if url.startswith("sqlite:"):
        connection = sqlite3.connect(sqlite_path(url))
        with connection:
            for sql, params in statements:
                connection.execute(sql, params)
        connection.close()
        return
    import psycopg

    with psycopg.connect(url) as connection:
        for sql, params in statements:
            connection.execute(sql.replace("?", "%s"), params)


# ---- the exchange with its log -------------------------------------------------------------------


def _config(tmp_path: Path, exchange, url: str, **journal) -> Path:
    directory = tmp_path / f"config-{secrets.token_hex(3)}"
    directory.mkdir()
    return write_config(directory, exchange.keys_dir, journal={"url": url, **journal})


def _cli(config_path: Path, *args: str):
    group = click.Group(commands={"trace": trace_command, "log": log_command})
    return CliRunner().invoke(group, list(args), obj=Settings(config_path, None, "info"))


def _recorder(exchange, url: str, **settings) -> Recorder:
    config = exchange.config
    journal = replace(config.journal, url=url, **settings)
    return open_recorder(replace(config, journal=journal), exchange.signer("eport"))


def _stages(pipeline: Pipeline) -> list:
    return [item[0] if isinstance(item, tuple) else item for item in pipeline.stages]


def _handle(pipeline, recorder, body: bytes, user: str = "ent-a"):
    """One message as the worker handles it: processed, logged, every publication confirmed, logged."""
    inbound = Inbound(body, user_id=user)
    disposition = pipeline.process(inbound)
    entry = recorder.processed(inbound, disposition, pipeline)
    recorder.settled(entry)
    return disposition


def _receipt(disposition):
    (receipt,) = [p for p in disposition.publications if p.headers.get("x-exchanger-kind") == "receipt"]
    return receipt


def _populate(exchange, pipeline, recorder) -> dict:
    """A short day at the exchange: a declaration shared with inspection, a broken one, a manifest."""
    accepted = _handle(pipeline, recorder, exchange.signed("ent-a", DECLARATION))
    rejected = _handle(pipeline, recorder, exchange.signed("ent-a", BROKEN))
    manifest = _handle(pipeline, recorder, exchange.signed("rail", SAMPLES / "cargo-manifest/valid.xml"), "rail")
    assert recorder.flush(30)
    return {"accepted": accepted, "rejected": rejected, "manifest": manifest}


@pytest.fixture
def logged(exchange, pipeline, store_url, tmp_path):
    """A log holding a few real messages, closed (so its last checkpoint is signed), and a config that names it."""
    recorder = _recorder(exchange, store_url)
    dispositions = _populate(exchange, pipeline, recorder)
    assert recorder.close()
    return store_url, _config(tmp_path, exchange, store_url), dispositions


def _verify(config_path: Path):
    return _cli(config_path, "log", "verify")


# ---- the chain -------------------------------------------------------------------------------------


def test_a_good_log_verifies(logged):
    url, config_path, _ = logged
    result = _verify(config_path)
    assert result.exit_code == 0, result.output
    assert "OK" in result.output and "14 records (seq 1 to 14)" in result.output
    # The rejected original, the two accepted receipts and the rejection's receipt.
    assert "1 signed checkpoint(s); 4 archived original(s) and receipt(s)" in result.output


def test_every_record_carries_the_config_version_and_the_chain(logged, exchange):
    url, _, _ = logged
    store = open_store(url)
    records = list(store.records())
    store.close()
    assert [r.seq for r in records] == list(range(1, 15))
    assert {r.config_version for r in records} == {exchange.config.version}
    assert all(b.prev == a.hash for a, b in zip(records, records[1:]))
    assert [r.kind for r in records[:5]] == ["received", "routed", "delivered", "delivered", "receipt"]


def test_a_batch_larger_than_one_statement_is_appended_whole_and_in_order(store_url):
    # 300 records of 12 columns are more parameters than one INSERT may bind (999), so several statements.
    events = [
        Event.of(RECEIPT if i % 3 == 0 else RECEIVED, sender="ent-a", message_id=f"M-{i // 6}",
                 original=f"original {i}".encode() if i % 2 else None,
                 receipt=f"receipt {i}".encode() if i % 3 == 0 else None)
        for i in range(300)
    ]
    store = open_store(store_url)
    try:
        written = store.append(events)
        records = list(store.records())
        assert [r.seq for r in written] == [r.seq for r in records] == list(range(1, 301))
        assert [r.message_id for r in records] == [e.message_id for e in events]
        assert all(b.prev == a.hash for a, b in zip(records, records[1:]))
        assert store.head() == (300, records[-1].hash)
        assert store.original(2) == b"original 1" and store.original(1) is None and store.original(300) == b"original 299"
        # Two receipts of one message in the same batch (i = 0 and 3 for M-0): the first stays the original.
        assert store.accepted_receipt("ent-a", "M-0") == b"receipt 0"
        assert store.accepted_receipt("ent-a", "M-49") == b"receipt 294"
    finally:
        store.close()


def test_an_edited_record_is_named(logged):
    url, config_path, _ = logged
    # Someone with database access hides the copy shared with inspection.
    _execute(url, ("UPDATE journal_records SET receivers = ? WHERE seq = ?", (",customs,", 2)))
    result = _verify(config_path)
    assert result.exit_code == 1
    assert "seq 2: edited: its content no longer matches its hash (routed message ENTA-DEC-20240318-000002" in result.output


def test_a_removed_record_is_named(logged):
    url, config_path, _ = logged
    _execute(url, ("DELETE FROM journal_records WHERE seq = ?", (7,)))
    result = _verify(config_path)
    assert result.exit_code == 1
    assert "seq 7: record 7 is missing (removed)" in result.output
    assert result.output.count("seq ") == 2  # the summary line and the one problem, nothing else blamed


def test_swapped_records_are_named(logged):
    url, config_path, _ = logged
    _execute(
        url,
        ("UPDATE journal_records SET seq = -1 WHERE seq = 3", ()),
        ("UPDATE journal_records SET seq = 3 WHERE seq = 4", ()),
        ("UPDATE journal_records SET seq = 4 WHERE seq = -1", ()),
    )
    result = _verify(config_path)
    assert result.exit_code == 1
    assert "seq 3: reordered: it holds the record written as seq 4" in result.output
    assert "seq 4: reordered: it holds the record written as seq 3" in result.output
    assert "seq 5" not in result.output


def test_a_record_rewritten_with_its_hash_recomputed_is_named(logged):
    url, config_path, _ = logged
    store = open_store(url)
    (record,) = store.find(Query(kinds=("rejected",)))
    store.close()
    forged = record.details
    forged["reasons"] = []
    data = json.dumps(forged, sort_keys=True, separators=(",", ":"))
    rehashed = link(record.seq, record.prev, content_digest(replace(record, data=data)))
    _execute(url, ("UPDATE journal_records SET data = ?, hash = ? WHERE seq = ?", (data, rehashed, record.seq)))
    result = _verify(config_path)
    assert result.exit_code == 1
    assert f"seq {record.seq}: rewritten: seq {record.seq + 1} was chained to a different record {record.seq}" in result.output


def test_records_removed_from_the_end_are_caught(logged):
    url, config_path, _ = logged
    _execute(url, ("DELETE FROM journal_records WHERE seq >= ?", (13,)))
    result = _verify(config_path)
    assert result.exit_code == 1
    assert "seq 13: records 13 to 14 are missing from the end of the log" in result.output
    assert "seq 14: a signed checkpoint names this record, which is missing" in result.output


def test_a_forged_checkpoint_is_caught(logged):
    url, config_path, _ = logged
    _execute(url, ("UPDATE journal_checkpoints SET hash = ? WHERE seq = ?", ("f" * 64, 14)))
    result = _verify(config_path)
    assert result.exit_code == 1
    assert "seq 14: checkpoint: its signature does not verify with the platform certificate (forged or altered)" in result.output


def test_a_checkpoint_signed_by_another_key_is_caught(logged, exchange):
    url, config_path, _ = logged
    store = open_store(url)
    # A checkpoint made with a key that is not the platform's vouches for nothing.
    store.add_checkpoint(Checkpointer(exchange.signer("ent-a"), "eport").sign(5, store.find(Query())[4].hash))
    store.close()
    result = _verify(config_path)
    assert result.exit_code == 1
    assert "seq 5: checkpoint: signed with certificate" in result.output and "not the platform certificate" in result.output


def test_an_altered_archived_original_is_caught(logged):
    url, config_path, _ = logged
    _execute(url, ("UPDATE journal_originals SET body = ?", (b"<forged/>",)))
    result = _verify(config_path)
    assert result.exit_code == 1
    assert "seq 6: the archived original does not match the SHA-256 its record names (altered)" in result.output


# ---- retention -----------------------------------------------------------------------------------


def test_prune_keeps_what_remains_verifiable(exchange, store_url, tmp_path):
    store = open_store(store_url)
    checkpointer = Checkpointer(exchange.signer("eport"), "eport")
    old = time.time() - 100 * 86400

    def events(count, at, prefix):
        return [
            Event.of(RECEIVED, at=at, sender="ent-a", message_id=f"{prefix}-{i}", digest=X_DIGEST, original=b"x")
            for i in range(count)
        ]

    store.append(events(10, old, "OLD"))
    store.add_checkpoint(checkpointer.sign(*store.head()))
    store.append(events(5, old, "OLDER-BUT-UNSIGNED"))
    receipt = Event.of(RECEIPT, at=old, sender="ent-a", message_id="OLD-ACCEPTED", data={"receipt_sha256": "x"}, receipt=b"<r/>")
    store.append([receipt])
    store.add_checkpoint(checkpointer.sign(*store.head()))  # seq 16
    store.append(events(4, time.time(), "NEW"))
    assert store.accepted_receipt("ent-a", "OLD-ACCEPTED") == b"<r/>"
    store.close()
    config_path = _config(tmp_path, exchange, store_url)

    result = _cli(config_path, "log", "prune", "--older-than", "90d")
    assert result.exit_code == 0, result.output
    assert "pruned 16 records up to seq 16, 15 archived originals and 1 accepted receipts" in result.output
    result = _verify(config_path)
    assert result.exit_code == 0, result.output
    assert "5 records (seq 17 to 21) checked from the signed checkpoint at seq 16" in result.output

    store = open_store(store_url)
    assert store.accepted_receipt("ent-a", "OLD-ACCEPTED") is None
    assert not store.find(Query(message_id="OLD-1"))
    assert store.find(Query(message_id="NEW-1"))
    store.close()
    # Nothing more is old enough, and the oldest records cannot simply be deleted either.
    assert "nothing to prune" in _cli(config_path, "log", "prune", "--older-than", "90d").output
    _execute(store_url, ("DELETE FROM journal_records WHERE seq = ?", (17,)))
    result = _verify(config_path)
    assert result.exit_code == 1
    assert "seq 18: the log starts here, but no signed checkpoint vouches for seq 17" in result.output


def test_prune_needs_a_period(logged):
    _, config_path, _ = logged
    result = _cli(config_path, "log", "prune")
    assert result.exit_code == 2 and "--older-than" in result.output


# ---- trace and search ------------------------------------------------------------------------------


def test_trace_prints_the_timeline(logged):
    _, config_path, dispositions = logged
    result = _cli(config_path, "trace", "ENTA-DEC-20240318-000002", "--sender", "ent-a")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0] == "CustomsDeclaration ENTA-DEC-20240318-000002 from ent-a"
    kinds = [line.split()[2] for line in lines[1:] if line.startswith("  20")]
    assert kinds == ["received", "routed", "delivered", "delivered", "receipt"]
    text = result.output
    assert "passed parse, unwrap, identify, validate, verify, authenticate, route, sign" in text
    assert "-> ciq by declaration-copy-to-inspection (shared under GACC: Announcement 2018-50" in text
    receipt = _receipt(dispositions["accepted"])
    assert f"accepted -> ent-a (receipt {receipt.message_id})" in text


def test_trace_of_a_rejection_names_the_stage_and_reasons(logged):
    _, config_path, _ = logged
    result = _cli(config_path, "trace", "ENTA-DEC-20240315-000091")
    assert result.exit_code == 0, result.output
    assert "at validate, after passing parse, unwrap, identify" in result.output
    assert "[validate/xsd] (line 68, /dec:CustomsDeclaration/dec:GoodsList/dec:Goods[2]/dec:HSCode)" in result.output
    assert "dead-lettered" in result.output and "rejected -> ent-a" in result.output


def test_trace_json_and_digest_lookup(logged):
    url, config_path, _ = logged
    result = _cli(config_path, "trace", "ENTA-DEC-20240315-000091", "--json")
    records = json.loads(result.output)
    assert [r["kind"] for r in records] == ["received", "rejected", "dead-lettered", "receipt"]
    assert records[1]["details"]["stage"] == "validate" and records[1]["details"]["reasons"][0]["line"] == 68
    by_digest = _cli(config_path, "trace", records[0]["digest"][:16], "--json")
    assert json.loads(by_digest.output) == records
    missing = _cli(config_path, "trace", "NO-SUCH-ID")
    assert missing.exit_code == 1 and "no message 'NO-SUCH-ID'" in missing.output


def test_search_filters(logged):
    _, config_path, _ = logged

    def search(*args):
        result = _cli(config_path, "log", "search", *args)
        assert result.exit_code == 0, result.output
        return [line for line in result.stdout.splitlines() if line.strip()]

    everything = search()
    assert len(everything) == 3
    assert "rail" in everything[0] and "-> customs, terminal" in everything[0]  # newest first
    (rejected,) = search("--status", "rejected")
    assert "ENTA-DEC-20240315-000091" in rejected and "[validate/xsd]" in rejected
    (to_ciq,) = search("--receiver", "ciq")
    assert "ENTA-DEC-20240318-000002" in to_ciq and "-> customs, ciq" in to_ciq
    assert len(search("--sender", "ent-a")) == 2
    assert len(search("--type", "CargoManifest", "--since", "1h")) == 1
    assert search("--until", "2000-01-01") == []
    as_json = json.loads(_cli(config_path, "log", "search", "--status", "accepted", "--json").stdout)
    assert {r["message_type"] for r in as_json} == {"CustomsDeclaration", "CargoManifest"}


# ---- duplicates --------------------------------------------------------------------------------------


def _until_authenticated(pipeline: Pipeline, inbound: Inbound) -> Envelope:
    envelope = Envelope(inbound)
    for stage in _stages(pipeline):
        stage(envelope)
        if stage.name == "authenticate":
            return envelope
    raise AssertionError("the pipeline has no authenticate stage")


def test_a_duplicate_of_an_accepted_message_gets_the_original_receipt(exchange, pipeline, store_url, tmp_path):
    recorder = _recorder(exchange, store_url)
    body = exchange.signed("ent-a", DECLARATION)
    first = _handle(pipeline, recorder, body)
    original = _receipt(first)
    assert recorder.close()

    # Another instance, with nothing in memory: the store answers.
    other = _recorder(exchange, store_url)
    inbound = Inbound(body, user_id="ent-a", redelivered=False)
    envelope = _until_authenticated(pipeline, inbound)
    with pytest.raises(Duplicate) as caught:
        Deduplicate(other)(envelope)
    assert caught.value.receipt == original.body
    answer = duplicate_disposition(envelope, caught.value, exchange.config.version)
    (receipt,) = answer.publications  # nothing forwarded
    assert (receipt.routing_key, receipt.body, receipt.message_id) == ("ent-a", original.body, original.message_id)
    assert receipt.headers["x-exchanger-duplicate"] == "true"

    other.settled(other.processed(inbound, answer, pipeline))
    assert other.close()
    trace = _cli(_config(tmp_path, exchange, store_url), "trace", "ENTA-DEC-20240318-000002")
    assert "duplicate of an accepted message: its receipt" in trace.output
    assert "the original sent again" in trace.output
    assert _verify(_config(tmp_path, exchange, store_url)).exit_code == 0


def test_a_duplicate_of_a_rejected_message_is_processed_again(exchange, pipeline, store_url):
    recorder = _recorder(exchange, store_url)
    deduplicate = Deduplicate(recorder)
    # Rejected after authentication (no rule lets ent-a send a declaration to tax), then sent again.
    unroutable = exchange.signed(
        "ent-a",
        (SAMPLES / "customs-declaration/valid.xml").read_bytes().replace(b">customs</cm:ReceiverId>", b">tax</cm:ReceiverId>"),
    )
    assert _handle(pipeline, recorder, unroutable).reasons[0].stage == "route"
    assert recorder.flush(30)
    deduplicate(_until_authenticated(pipeline, Inbound(unroutable, user_id="ent-a")))  # no Duplicate
    assert _handle(pipeline, recorder, unroutable).outcome == "rejected"
    # A broken declaration, then the same message id fixed: processed again, and accepted.
    broken = exchange.signed("ent-a", BROKEN)
    assert _handle(pipeline, recorder, broken).outcome == "rejected"
    fixed = exchange.signed("ent-a", BROKEN.read_bytes().replace(b">847160710<", b">8471607100<"))
    assert recorder.flush(30)
    deduplicate(_until_authenticated(pipeline, Inbound(fixed, user_id="ent-a")))
    assert _handle(pipeline, recorder, fixed).outcome == "accepted"
    assert recorder.flush(30)
    with pytest.raises(Duplicate):
        deduplicate(_until_authenticated(pipeline, Inbound(fixed, user_id="ent-a")))
    recorder.close()


def test_a_redelivery_before_the_log_is_forwarded_again_with_the_same_ids(exchange, pipeline, store_url):
    recorder = _recorder(exchange, store_url)
    body = exchange.signed("ent-a", DECLARATION)
    inbound = Inbound(body, user_id="ent-a")
    first = pipeline.process(inbound)
    recorder.processed(inbound, first, pipeline)
    # The process dies after the broker confirmed the copies but before the settlement was logged.
    assert recorder.close()
    again = _recorder(exchange, store_url)
    redelivered = Inbound(body, user_id="ent-a", redelivered=True)
    Deduplicate(again)(_until_authenticated(pipeline, redelivered))  # not known as accepted: no Duplicate
    second = pipeline.process(redelivered)
    assert [(p.routing_key, p.message_id) for p in second.publications] == [
        (p.routing_key, p.message_id) for p in first.publications
    ]
    # Once its settlement is logged, the next copy is a duplicate.
    again.settled(again.processed(redelivered, second, pipeline))
    with pytest.raises(Duplicate):
        Deduplicate(again)(_until_authenticated(pipeline, Inbound(body, user_id="ent-a", redelivered=True)))
    again.close()


def test_instances_sharing_postgresql_agree_on_the_original_receipt(exchange, pipeline, postgres_url):
    first, second = _recorder(exchange, postgres_url), _recorder(exchange, postgres_url)
    body = exchange.signed("ent-a", DECLARATION)
    one = _handle(pipeline, first, body)
    assert first.flush(30)
    # The other instance sees the acceptance at once, through the shared store.
    with pytest.raises(Duplicate) as caught:
        Deduplicate(second)(_until_authenticated(pipeline, Inbound(body, user_id="ent-a")))
    assert caught.value.receipt == _receipt(one).body
    # Had both taken the message before either logged it (the window the guarantee states), both
    # forward it and both receipts are logged, but the first one logged stays the original.
    two = _handle(pipeline, second, body)
    assert second.flush(30)
    assert _receipt(two).body != _receipt(one).body
    for recorder in (first, second):
        assert recorder.accepted_receipt("ent-a", "ENTA-DEC-20240318-000002") == _receipt(one).body
    assert len(first.store.find(Query(message_id="ENTA-DEC-20240318-000002", kinds=("receipt",)))) == 2
    first.close()
    second.close()


# ---- several writers ----------------------------------------------------------------------------------

_WRITER = """
import sys
from exchanger.journal.records import Event
from exchanger.journal.store import open_store
store = open_store(sys.argv[1])
for batch in range(40):
    store.append([Event.of("received", sender=sys.argv[2], message_id=f"{sys.argv[2]}-{batch}-{i}") for i in range(7)])
store.close()
"""


def test_writer_processes_sharing_a_store_keep_one_chain(exchange, store_url, tmp_path):
    open_store(store_url).close()  # the schema exists before the writers race
    writers = [
        subprocess.Popen([sys.executable, "-c", _WRITER, store_url, f"w{index}"]) for index in range(3)
    ]
    assert [writer.wait(timeout=120) for writer in writers] == [0, 0, 0]
    store = open_store(store_url)
    assert store.bounds() == (1, 840, 840)
    assert {r.sender for r in store.find(Query(since=None))} == {"w0", "w1", "w2"}
    store.close()
    result = _verify(_config(tmp_path, exchange, store_url))
    assert result.exit_code == 0, result.output


def test_the_writer_batches_signs_checkpoints_and_flushes_on_close(exchange, store_url):
    store = open_store(store_url)
    writer = Writer(store, Checkpointer(exchange.signer("eport"), "eport", every_records=10, every_seconds=3600)).start()
    for count in (10, 10, 5):
        # Events queued while a transaction runs go together into the next one.
        writer.submit([Event.of(RECEIVED, message_id=f"M-{index}") for index in range(count)])
        assert writer.flush(30)
    status = writer.status
    assert (status.written, status.batches, status.checkpoints, status.healthy) == (25, 3, 2, True)
    assert writer.close()
    store = open_store(store_url)
    assert [c.seq for c in store.checkpoints()] == [10, 20, 25]  # every 10 records, and the rest on close
    store.close()


def test_an_idle_writer_commits_at_once_and_a_busy_one_gathers_what_queues(store_url):
    writer = Writer(open_store(store_url), commit_interval=2.0).start()

    def written(count: int) -> float:
        began = time.monotonic()
        while writer.status.written < count:
            assert time.monotonic() - began < 30, writer.status
            time.sleep(0.005)
        return time.monotonic() - began

    writer.submit([Event.of(RECEIVED, message_id="M-first")])
    assert written(1) < 1.0  # nothing was committed lately: no waiting
    for index in range(5):
        writer.submit([Event.of(RECEIVED, message_id=f"M-{index}")])
    assert writer.status.written == 1  # a commit just ended: these wait to share the next one
    written(6)
    assert writer.status.batches == 2
    writer.submit([Event.of(RECEIVED, message_id="M-flushed")])
    began = time.monotonic()
    assert writer.flush(30) and time.monotonic() - began < 1.0  # flush does not wait for the interval
    assert writer.status.written == 7
    assert writer.close()


def test_a_settlement_is_acknowledged_only_once_it_is_in_the_log(exchange, pipeline, store_url):
    recorder = _recorder(exchange, store_url)
    inbound = Inbound(exchange.signed("ent-a", DECLARATION), user_id="ent-a")
    disposition = pipeline.process(inbound)
    seen = []
    reader = open_store(store_url)

    def acknowledge():
        # What the worker does here (ack the inbound) must find the accepted receipt already stored.
        seen.append(reader.accepted_receipt("ent-a", "ENTA-DEC-20240318-000002"))

    recorder.settled(recorder.processed(inbound, disposition, pipeline), then=acknowledge)
    assert recorder.flush(30)
    assert seen == [_receipt(disposition).body]
    recorder.close()
    reader.close()


def test_originals_are_kept_as_configured(exchange, pipeline, tmp_path):
    kept = {}
    for policy in ("rejected", "all", "none"):
        url = f"sqlite:///{tmp_path / policy}.db"
        recorder = _recorder(exchange, url, keep_originals=policy)
        _populate(exchange, pipeline, recorder)
        recorder.close()
        store = open_store(url)
        kept[policy] = sorted(what for what, *_ in store.archived())
        store.close()
    # Accepted receipts are always kept (they answer duplicates); a rejection's receipt unless none;
    # the four signed copies (two per accepted message) with all.
    assert kept == {
        "rejected": ["original", "receipt", "receipt", "receipt"],
        "all": ["copy"] * 4 + ["original"] * 3 + ["receipt"] * 3,
        "none": ["receipt", "receipt"],
    }


# ---- configuration ----------------------------------------------------------------------------------


def test_journal_section_is_checked(exchange, tmp_path):
    path = write_config(tmp_path, exchange.keys_dir, journal={"url": "sqlite:///var/log.db", "retention": "90d"})
    config = load_config(path)
    assert config.journal.url == f"sqlite:///{tmp_path.resolve() / 'var/log.db'}"
    assert config.journal.retention_seconds == 90 * 86400 and config.journal.keep_originals == "rejected"
    bad = write_config(
        tmp_path,
        exchange.keys_dir,
        journal={"url": "mysql://x", "keep_originals": "some", "retention": "soon", "checkpoint": {"records": 0}},
    )
    with pytest.raises(ConfigError) as caught:
        load_config(bad)
    problems = "\n".join(caught.value.problems)
    for expected in ("journal.url", "journal.keep_originals", "journal.retention", "journal.checkpoint.records"):
        assert expected in problems
