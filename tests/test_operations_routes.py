"""Route changes: preview by the real loader, refusal that changes nothing, atomic apply with the previous kept, reload."""

from __future__ import annotations

import os
import signal
import subprocess
import sys

import pytest
import yaml
from click.testing import CliRunner

from exchange_fixture import SAMPLES, write_config
from exchanger.cli.main import main
from exchanger.journal.records import OPERATOR_ACTION
from exchanger.journal.store import Query, open_store
from exchanger.journal.verify import verify
from exchanger.operations import routes
from exchanger.operations.actor import Operator

ALICE = Operator("alice", "console")


@pytest.fixture
def configured(exchange, tmp_path):
    """A configuration file of its own with a message log beside it: (path, store)."""
    path = write_config(tmp_path, exchange.keys_dir, journal={"url": f"sqlite:///{tmp_path / 'journal.db'}"})
    store = open_store(f"sqlite:///{tmp_path / 'journal.db'}")
    yield path, store
    store.close()


def _without_forex(path) -> str:
    data = yaml.safe_load(path.read_text())
    data["routes"] = [r for r in data["routes"] if r["id"] != "forex-verification"]
    return yaml.safe_dump(data, sort_keys=False)


def _actions(store) -> list:
    return store.find(Query(kinds=(OPERATOR_ACTION,)))


def test_preview_names_the_routing_difference(configured):
    path, _ = configured
    checked = routes.preview(path, _without_forex(path))
    assert checked.ok and not checked.unchanged_text
    assert any(line.startswith("- route forex-verification") for line in checked.lines)
    assert "ForexVerification loses destination: addressed receivers in kind:forex" in checked.lines
    assert checked.version_before != checked.version_after
    assert routes.preview(path, routes.current_text(path)).unchanged_text


def test_preview_lists_every_problem_located_in_the_configuration_itself(configured):
    path, _ = configured
    data = yaml.safe_load(path.read_text())
    data["routes"][0]["deliver"] = ["nobody-known"]
    data["routes"][1]["types"] = ["NoSuchType"]
    checked = routes.preview(path, yaml.safe_dump(data, sort_keys=False))
    assert not checked.ok and len(checked.problems) >= 2
    text = "\n".join(str(p) for p in checked.problems)
    assert "nobody-known" in text and "NoSuchType" in text
    assert ".check" not in text  # the scratch file never shows
    broken = routes.preview(path, "routes: [\n")
    (problem,) = broken.problems
    assert problem.location.startswith(str(path)) and "YAML" in problem.message
    assert not list(path.parent.glob(".routes.yaml.*.check"))


def test_a_refused_version_changes_nothing_and_the_refusal_is_recorded(configured):
    path, store = configured
    before = path.read_bytes()
    reloads = []
    with pytest.raises(routes.ConfigRejected) as refused:
        routes.apply(path, "participants: [broken", ALICE, store, lambda: reloads.append(1))
    assert refused.value.problems and path.read_bytes() == before and reloads == []
    assert not routes.previous_dir(path).exists()
    (record,) = _actions(store)
    assert record.details["action"] == "route-change-refused" and record.details["outcome"] == "refused"
    assert record.details["problems"] == [str(p) for p in refused.value.problems]


def test_too_large_a_version_is_refused_before_it_is_read(configured):
    path, store = configured
    with pytest.raises(routes.ConfigRejected, match="more than a configuration may hold"):
        routes.apply(path, "#" * (routes.MAX_CONFIG_BYTES + 1), ALICE, store)


def test_apply_keeps_the_previous_version_records_the_diff_and_reloads(configured, exchange):
    path, store = configured
    before = path.read_text()
    os.chmod(path, 0o640)
    reloads = []
    change = routes.apply(path, _without_forex(path), ALICE, store, lambda: reloads.append(1), base_text=before)
    assert reloads == [1] and change.reloaded and change.reload_problem is None
    assert path.read_text() == _without_forex(path) and oct(path.stat().st_mode & 0o777) == "0o640"
    assert change.previous.parent == routes.previous_dir(path) and change.previous.read_text() == before
    (record,) = _actions(store)
    assert record.details["action"] == "route-change" and record.details["operator"] == "alice"
    assert record.details["previous"] == str(change.previous)
    assert "ForexVerification loses destination: addressed receivers in kind:forex" in record.details["diff"]
    assert record.config_version == change.version_after
    assert verify(store, [exchange.config.platform.certificate]).ok
    # Edited from a version that is no longer current: refused, the newer file kept.
    with pytest.raises(routes.ConfigRejected, match="changed by someone else"):
        routes.apply(path, before, ALICE, store, base_text=before)
    assert path.read_text() == _without_forex(path)


def test_a_failing_reload_is_reported_and_the_new_version_stays(configured):
    path, store = configured

    def reload():
        raise OSError("no such process")

    change = routes.apply(path, _without_forex(path), ALICE, store, reload)
    assert not change.reloaded and change.reload_problem == "no such process"
    assert path.read_text() == _without_forex(path)


def test_explain_runs_the_daemons_stages(exchange):
    result = routes.explain(exchange.config, exchange.signed("ent-a", SAMPLES / "customs-declaration/valid-with-inspection.xml"))
    assert result.rejected is None and {d.to for d in result.decision.deliveries} >= {"customs"}


def test_cli_apply_refuses_with_every_problem_then_applies_and_signals_the_daemon(configured, tmp_path):
    path, store = configured
    broken = tmp_path / "broken.yaml"
    broken.write_text("participants: [broken")
    runner = CliRunner()
    before = path.read_bytes()
    refused = runner.invoke(main, ["--config", str(path), "routes", "apply", str(broken)])
    assert refused.exit_code == 1 and "was refused" in refused.output and "is unchanged" in refused.output
    assert path.read_bytes() == before
    new = tmp_path / "new.yaml"
    new.write_text(_without_forex(path))
    # A process standing in for the daemon: it says when SIGHUP arrives.
    listener = subprocess.Popen(
        [sys.executable, "-c", "import signal, sys, time\n"
         "signal.signal(signal.SIGHUP, lambda *_: (print('reload', flush=True), sys.exit(0)))\n"
         "print('ready', flush=True)\ntime.sleep(60)"],
        stdout=subprocess.PIPE, text=True,
    )
    try:
        assert listener.stdout.readline().strip() == "ready"
        applied = runner.invoke(main, ["--config", str(path), "routes", "apply", str(new), "--hup", str(listener.pid)])
        assert applied.exit_code == 0, applied.output
        assert "- route forex-verification" in applied.output and "previous version is kept" in applied.output
        assert listener.stdout.readline().strip() == "reload"
    finally:
        if listener.poll() is None:
            listener.send_signal(signal.SIGTERM)
        listener.wait(10)
    kinds = [r.details["action"] for r in _actions(store)]
    assert kinds == ["route-change-refused", "route-change"]
