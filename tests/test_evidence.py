"""Evidence bundles: exported from a real log, checked offline, xmlsec1 agreeing; any tampering caught."""

from __future__ import annotations

import hashlib
import io
import json
import zipfile
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography.hazmat.primitives.serialization import Encoding

from daemon_fixture import Authority, write_pem
from dsig_oracle import xmlsec1_accepts_with_ca
from test_journal import _config, _handle, _populate, _recorder
from exchanger.cli.main import main
from exchanger.config import load_config
from exchanger.journal.records import RECEIVED, Event
from exchanger.journal.store import Query, open_store
from exchanger.operations.actor import Operator
from exchanger.operations.evidence import EvidenceError, export_bundle, verify_bundle

ACCEPTED_ID = "ENTA-DEC-20240318-000002"
REJECTED_ID = "ENTA-DEC-20240315-000091"
ALICE = Operator("alice", "console")


def _log(exchange, pipeline, tmp_path, keep: str):
    """A SQLite log of a short day, closed (its last checkpoint signed), and the configuration naming it."""
    url = f"sqlite:///{tmp_path / f'journal-{keep}.db'}"
    recorder = _recorder(exchange, url, keep_originals=keep)
    _populate(exchange, pipeline, recorder)
    assert recorder.close()
    return url, load_config(_config(tmp_path, exchange, url, keep_originals=keep))


@pytest.fixture
def kept_all(exchange, pipeline, tmp_path):
    """A log that kept every original, copy and receipt."""
    return _log(exchange, pipeline, tmp_path, "all")


def _export(url, config, message_id, sender="ent-a", **options) -> bytes:
    store = open_store(url)
    try:
        return export_bundle(store, config, message_id, sender, ALICE, **options)
    finally:
        store.close()


def _write(tmp_path: Path, payload: bytes, name="bundle.zip") -> Path:
    path = tmp_path / name
    path.write_bytes(payload)
    return path


def _members(payload: bytes) -> dict[str, bytes]:
    with zipfile.ZipFile(io.BytesIO(payload)) as bundle:
        return {name: bundle.read(name) for name in bundle.namelist()}


def _rezip(members: dict[str, bytes]) -> bytes:
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w") as bundle:
        for name, body in members.items():
            bundle.writestr(name, body)
    return buffer.getvalue()


def test_a_bundle_holds_everything_and_verifies_offline(kept_all, tmp_path):
    url, config = kept_all
    payload = _export(url, config, ACCEPTED_ID)
    members = _members(payload)
    documents = sorted(name for name in members if name.startswith("documents/"))
    assert documents[-1] == "documents/receipt-" + documents[-1].split("-", 1)[1]
    assert "documents/original.xml" in documents
    assert [name for name in documents if name.startswith("documents/copy-")] and len(documents) == 4
    assert members["documents/original.xml"] == exchange_original(url)
    assert {"certificates/platform.pem", "certificates/sender-1.pem", "certificates/ca-1.pem"} <= set(members)
    manifest = json.loads(members["manifest.json"])
    assert manifest["exported_by"] == {"operator": "alice", "via": "console"} and manifest["notes"] == []
    verdict = verify_bundle(_write(tmp_path, payload))
    assert verdict.ok, [c.detail for c in verdict.problems]
    assert {c.name for c in verdict.checks} >= {"chain", "checkpoint signature", "document", "certificate"}


def exchange_original(url) -> bytes:
    store = open_store(url)
    try:
        (received,) = store.find(Query(message_id=ACCEPTED_ID, kinds=(RECEIVED,)))
        return store.original(received.seq)
    finally:
        store.close()


def test_the_path_reveals_nothing_of_other_messages(kept_all):
    url, config = kept_all
    members = _members(_export(url, config, ACCEPTED_ID))
    revealed = members["chain.json"] + members["records.json"]
    for other in (REJECTED_ID.encode(), b"RAIL-MFT", b'"rail"', b"validate/xsd"):
        assert other not in revealed
    (segment,) = json.loads(members["chain.json"])
    assert segment["contents"] and all(len(value) == 64 for value in segment["contents"].values())


def test_xmlsec1_verifies_every_signed_document_in_the_bundle(kept_all, tmp_path):
    url, config = kept_all
    members = _members(_export(url, config, ACCEPTED_ID))
    ca = tmp_path / "ca.pem"
    ca.write_bytes(members["certificates/ca-1.pem"])
    documents = [name for name in members if name.startswith("documents/")]
    for name in documents:
        assert xmlsec1_accepts_with_ca(members[name], ca), name
    forged = members["documents/original.xml"].replace(b"ENTA-DEC-20240318-000002", b"ENTA-DEC-20240318-000003", 1)
    assert not xmlsec1_accepts_with_ca(forged, ca)


def _tampered(payload: bytes, name: str, change) -> bytes:
    members = _members(payload)
    members[name] = change(members[name])
    return _rezip(members)


def _edit_json(edit):
    def change(body: bytes) -> bytes:
        value = json.loads(body)
        edit(value)
        return json.dumps(value).encode()
    return change


def _first_content(chain):
    segment = chain[0]
    seq = sorted(segment["contents"], key=int)[0]
    segment["contents"][seq] = "0" * 64


def _other_certificate(exchange):
    return lambda _body: exchange.config.registry.get("rail").certificates[0].public_bytes(Encoding.PEM)


@pytest.mark.parametrize(
    "name, change, caught",
    [
        ("documents/original.xml", lambda body: body.replace(b"<", b" <", 1), "original.xml: SHA-256"),
        ("records.json", _edit_json(lambda rs: rs[1].update(data=rs[1]["data"].replace("customs", "kustoms"))), "altered"),
        ("records.json", _edit_json(lambda rs: rs.pop(0)), "chain"),
        ("chain.json", _edit_json(_first_content), "does not reach the hash"),
        ("checkpoints.json", _edit_json(lambda cs: cs[0].update(hash="f" * 64)), "does not reach the hash"),
        ("checkpoints.json", _edit_json(lambda cs: cs[0].update(at="2020-01-01T00:00:00.000000Z")), "forged or altered"),
    ],
    ids=["original", "record", "record-removed", "path", "checkpoint-hash", "checkpoint-claim"],
)
def test_tampering_with_any_part_is_caught(kept_all, tmp_path, name, change, caught):
    url, config = kept_all
    payload = _export(url, config, ACCEPTED_ID)
    verdict = verify_bundle(_write(tmp_path, _tampered(payload, name, change)))
    assert not verdict.ok
    assert any(caught in f"{check.name}: {check.detail}" for check in verdict.problems), verdict.problems


def test_a_certificate_from_elsewhere_and_an_untrusted_ca_are_caught(kept_all, tmp_path, exchange):
    url, config = kept_all
    payload = _export(url, config, ACCEPTED_ID)
    swapped = verify_bundle(_write(tmp_path, _tampered(payload, "certificates/platform.pem", _other_certificate(exchange))))
    assert not swapped.ok and any("not the platform certificate" in c.detail for c in swapped.problems)
    rail = exchange.config.registry.get("rail").certificates[0]
    untrusted = verify_bundle(_write(tmp_path, payload, "again.zip"), trusted=[rail])
    assert not untrusted.ok and any("not among the CA certificates" in c.detail for c in untrusted.problems)
    trusted = verify_bundle(tmp_path / "again.zip", trusted=list(config.trust.anchors))
    assert trusted.ok


def test_what_the_log_did_not_keep_is_named(exchange, pipeline, tmp_path):
    url, config = _log(exchange, pipeline, tmp_path, "rejected")
    accepted = json.loads(_members(_export(url, config, ACCEPTED_ID))["manifest.json"])
    assert any("not kept: the original" in note and "keep_originals: rejected" in note for note in accepted["notes"])
    assert any("not kept: this copy" in note for note in accepted["notes"])
    rejected = _members(_export(url, config, REJECTED_ID))
    assert "documents/original.xml" in rejected and any(n.startswith("documents/receipt-") for n in rejected)
    assert json.loads(rejected["manifest.json"])["notes"] == []
    assert verify_bundle(_write(tmp_path, _export(url, config, REJECTED_ID))).ok


def test_a_message_refused_before_its_id_was_read_is_exported_by_its_digest(exchange, pipeline, tmp_path):
    url = f"sqlite:///{tmp_path / 'journal-unread.db'}"
    recorder = _recorder(exchange, url)
    _handle(pipeline, recorder, b"<not-even-closed")
    assert recorder.close()
    config = load_config(_config(tmp_path, exchange, url))
    digest = hashlib.sha256(b"<not-even-closed").hexdigest()
    payload = _export(url, config, digest[:16])
    members = _members(payload)
    assert members["documents/original.xml"] == b"<not-even-closed"
    manifest = json.loads(members["manifest.json"])
    assert manifest["message_id"] is None and manifest["digest"] == digest
    assert verify_bundle(_write(tmp_path, payload)).ok


def test_records_after_the_last_checkpoint_are_left_out_or_signed_on_request(kept_all, tmp_path):
    url, config = kept_all
    store = open_store(url)
    store.append([Event.of(RECEIVED, message_id="LATE-1", sender="ent-a", digest="ab" * 32)])
    store.close()
    with pytest.raises(EvidenceError, match="no signed checkpoint covers message LATE-1 yet"):
        _export(url, config, "LATE-1")
    assert verify_bundle(_write(tmp_path, _export(url, config, "LATE-1", sign_checkpoint=True))).ok
    # An export's own record comes after the last checkpoint: the next bundle names it as left out.
    _export(url, config, ACCEPTED_ID)
    again = _export(url, config, ACCEPTED_ID)
    notes = json.loads(_members(again)["manifest.json"])["notes"]
    assert any("left out" in note and "operator-action" in note for note in notes)
    assert verify_bundle(_write(tmp_path, again, "again.zip")).ok


def test_the_export_is_recorded_and_shows_in_the_trace(kept_all):
    url, config = kept_all
    _export(url, config, ACCEPTED_ID)
    store = open_store(url)
    try:
        (record,) = store.find(Query(operator="alice"))
        assert record.details["action"] == "evidence-export" and record.message_id == ACCEPTED_ID
        assert len(record.details["bundle_sha256"]) == 64
    finally:
        store.close()


def test_the_cli_exports_and_verifies_and_fails_with_reasons(kept_all, tmp_path):
    url, config = kept_all
    runner = CliRunner()
    out = tmp_path / "cli.zip"
    exported = runner.invoke(main, ["--config", str(config.path), "evidence", "export", ACCEPTED_ID,
                                    "--sender", "ent-a", "--out", str(out)])
    assert exported.exit_code == 0, exported.output
    checked = runner.invoke(main, ["--config", str(config.path), "evidence", "verify", str(out), "-v"])
    assert checked.exit_code == 0 and "OK" in checked.output, checked.output
    ca = tmp_path / "ca.pem"
    ca.write_bytes(_members(out.read_bytes())["certificates/ca-1.pem"])
    assert runner.invoke(main, ["evidence", "verify", str(out), "--ca", str(ca)]).exit_code == 0
    # Another CA is not the one this exchange's certificates chain to.
    other_ca = write_pem(tmp_path / "other-ca.pem", Authority.create("Another CA").certificate)
    other = runner.invoke(main, ["evidence", "verify", str(out), "--ca", str(other_ca)])
    assert other.exit_code == 1 and "not among the CA certificates" in other.output
    out.write_bytes(_tampered(out.read_bytes(), "documents/original.xml", lambda body: body + b" "))
    failed = runner.invoke(main, ["evidence", "verify", str(out), "--ca", str(ca)])
    assert failed.exit_code == 1 and "FAIL" in failed.output and "original.xml" in failed.output
    garbage = tmp_path / "garbage.zip"
    garbage.write_bytes(b"not a zip")
    refused = runner.invoke(main, ["evidence", "verify", str(garbage), "--ca", str(ca)])
    assert refused.exit_code == 1 and "not a readable evidence bundle" in refused.output
    missing = runner.invoke(main, ["--config", str(config.path), "evidence", "export", "NO-SUCH", "--out", str(out)])
    assert missing.exit_code == 1 and "no message 'NO-SUCH'" in missing.output
