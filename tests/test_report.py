"""The management report: exact figures from a hand-built message log, on SQLite and PostgreSQL alike, rendered as HTML and PDF."""

from __future__ import annotations

import hashlib
import io
import json
from datetime import datetime, timezone
from pathlib import Path

import pypdf
import pytest
from click.testing import CliRunner

from exchange_fixture import write_config
from exchanger.cli.main import main
from exchanger.journal.records import (
    ANSWERED,
    DEAD_LETTERED,
    DELIVERED,
    DUPLICATE,
    HANDED_BACK,
    RECEIPT,
    RECEIVED,
    REJECTED,
    ROUTED,
    Event,
)
from exchanger.journal.store import Store, open_store
from exchanger.reports import PeriodError, build_report, parse_report_period, report_figures
from exchanger.reports.certificates import config_certificates
from exchanger.reports.figures import percentile
from test_journal import _postgres_schema, postgres_database  # noqa: F401  (fixture)

OPERATOR_ACTION = "operator-action"  # written by the operations layer: never a message
AS_OF = datetime(2026, 12, 4, tzinfo=timezone.utc)
DECLARATION, MANIFEST, INSPECTION = "CustomsDeclaration", "CargoManifest", "InspectionDeclaration"
TO_CUSTOMS = ("customs", "declaration-to-customs")
TO_CIQ = ("ciq", "declaration-copy-to-inspection")


def _epoch(moment: str) -> float:
    return datetime.fromisoformat(moment).replace(tzinfo=timezone.utc).timestamp()


def _digest(name: str) -> str:
    return hashlib.sha256(name.encode()).hexdigest()


class Log:
    """Writes a message's life into a store the way the daemon's records read."""

    def __init__(self, store: Store):
        self.store = store

    def _columns(self, sender, message_id, message_type, digest=None):
        return {"sender": sender, "message_id": message_id, "message_type": message_type,
                "digest": digest or _digest(f"{sender}/{message_id}"), "config_version": "v1"}

    def accepted(self, sender, message_id, message_type, received, seconds, copies=(TO_CUSTOMS,), store=None):
        """Received, routed, each copy delivered and the receipt sent ``seconds`` after receipt."""
        columns = self._columns(sender, message_id, message_type)
        at = _epoch(received)
        (store or self.store).append([
            Event.of(RECEIVED, at=at, data={"size": 100}, **columns),
            Event.of(ROUTED, at=at + seconds / 2, receivers=[to for to, _ in copies],
                     data={"deliveries": [{"to": to, "route": route} for to, route in copies]}, **columns),
            *(Event.of(DELIVERED, at=at + seconds, receivers=[to], data={"route": route, "forward_id": "f"}, **columns)
              for to, route in copies),
            Event.of(RECEIPT, at=at + seconds, receivers=[sender], data={"status": "accepted"}, **columns),
        ])

    def rejected(self, sender, message_id, message_type, received, seconds, reasons, digest=None):
        """Received, rejected for ``reasons`` (stage, code, text), dead-lettered and answered ``seconds`` later."""
        columns = self._columns(sender, message_id, message_type, digest)
        at = _epoch(received)
        details = {"stage": reasons[0][0], "receipt_to": sender,
                   "reasons": [{"stage": s, "code": c, "message": m, "line": 3} for s, c, m in reasons]}
        self.store.append([
            Event.of(RECEIVED, at=at, data={"size": 100}, **columns),
            Event.of(REJECTED, at=at + seconds / 2, data=details, **columns),
            Event.of(DEAD_LETTERED, at=at + seconds, data={"queue": "exchanger.dead-letters"}, **columns),
            Event.of(RECEIPT, at=at + seconds, receivers=[sender], data={"status": "rejected"}, **columns),
        ])

    def duplicate(self, sender, message_id, message_type, received):
        """A resend of an accepted message: answered with its receipt again, nothing forwarded."""
        columns = self._columns(sender, message_id, message_type)
        at = _epoch(received)
        self.store.append([
            Event.of(RECEIVED, at=at, data={"size": 100}, **columns),
            Event.of(DUPLICATE, at=at + 0.01, data={"stage": "deduplicate"}, **columns),
            Event.of(RECEIPT, at=at + 0.02, receivers=[sender], data={"status": "accepted"}, **columns),
        ])


def build_november(url: str, second_instance_url: str | None = None) -> None:
    """Eleven messages decided in November 2026, and records around them that are not November's messages."""
    store = open_store(url)
    other = open_store(second_instance_url or url)  # a second instance writing to the same log
    log = Log(store)
    log.accepted("ent-a", "DEC-A0", DECLARATION, "2026-10-30T09:00:00", 0.1)  # October's
    log.accepted("ent-a", "DEC-A1", DECLARATION, "2026-11-02T10:00:00", 0.1)
    log.accepted("ent-a", "DEC-A2", DECLARATION, "2026-11-02T11:00:00", 0.2)
    log.accepted("ent-a", "DEC-A3", DECLARATION, "2026-11-02T12:00:00", 0.3, copies=(TO_CUSTOMS, TO_CIQ))
    log.accepted("ent-c", "MFT-A4", MANIFEST, "2026-11-03T08:00:00", 0.4,
                 copies=(TO_CUSTOMS, ("terminal", "manifest-to-terminal")))
    # Routed by one instance, handed back before its copies were confirmed, routed again by the other.
    columns = log._columns("ent-a", "DEC-A5", DECLARATION)
    first = _epoch("2026-11-03T09:00:00")
    store.append([
        Event.of(RECEIVED, at=first, data={"size": 100}, **columns),
        Event.of(ROUTED, at=first + 0.1, receivers=["customs"], data={"deliveries": []}, **columns),
        Event.of(HANDED_BACK, at=first + 3, data={"why": "copy not confirmed"}, **columns),
    ])
    other.append([
        Event.of(RECEIVED, at=first + 5, data={"size": 100, "redelivered": True}, **columns),
        Event.of(ROUTED, at=first + 5.2, receivers=["customs"], data={"deliveries": []}, **columns),
        Event.of(DELIVERED, at=first + 5.5, receivers=["customs"], data={"route": TO_CUSTOMS[1]}, **columns),
    ])
    # Rejected for a missing route on the 4th, replayed after the fix and accepted on the 5th.
    log.rejected("ent-b", "DEC-A6", DECLARATION, "2026-11-04T10:00:00", 0.05, [("route", "no-route", "no rule")])
    log.accepted("ent-b", "DEC-A6", DECLARATION, "2026-11-05T10:00:00", 0.2)
    log.rejected("ent-b", "DEC-R1", DECLARATION, "2026-11-02T13:00:00", 0.05,
                 [("validate", "xsd", "HSCode: pattern"), ("validate", "xsd", "Quantity: not a decimal")])
    log.rejected("ent-b", "DEC-R2", DECLARATION, "2026-11-03T13:00:00", 0.07,
                 [("verify", "certificate.expired", "the signing certificate expired")])
    log.rejected("ent-b", None, None, "2026-11-03T14:00:00", 0.02, [("parse", "not-well-formed", "not XML")],
                 digest=_digest("garbage"))
    log.rejected("ent-d", "INS-R4", INSPECTION, "2026-11-30T23:59:59.900000", 0.1, [("validate", "xsd", "Port")])
    log.duplicate("ent-a", "DEC-A1", DECLARATION, "2026-11-05T12:00:00")  # the same message again: counted once
    log.duplicate("ent-a", "DEC-A0", DECLARATION, "2026-11-05T13:00:00")  # October's message again
    log.accepted("ent-a", "DEC-E1", DECLARATION, "2026-12-01T01:00:00", 0.1)  # December's
    # Records that are not messages, filed under message ids all the same.
    action = log._columns("ent-a", "DEC-A1", DECLARATION)
    store.append([
        Event.of(OPERATOR_ACTION, at=_epoch("2026-11-06T09:00:00"), data={"operator": "li", "action": "report"},
                 **action),
        Event.of(OPERATOR_ACTION, at=_epoch("2026-11-06T09:01:00"), data={"operator": "li", "action": "sign-in"}),
        Event.of(ANSWERED, at=_epoch("2026-11-06T10:00:00"), receivers=["ent-a"],
                 **dict(action, sender=None, message_type=None)),
    ])
    store.close()
    other.close()


@pytest.fixture(params=["sqlite", "postgres"])
def november(request, tmp_path) -> str:
    """The hand-built November log, on a SQLite file or a fresh PostgreSQL schema, written by two instances."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path / 'journal.db'}"
    else:
        url = _postgres_schema(request.getfixturevalue("postgres_database"))
    build_november(url)
    return url


def _figures(url: str, period: str = "2026-11"):
    store = open_store(url)
    try:
        return report_figures(store, period, as_of=AS_OF)
    finally:
        store.close()


def test_the_months_figures_are_exact(november):
    figures = _figures(november)
    assert (figures.messages, figures.accepted, figures.rejected, figures.duplicates) == (11, 6, 4, 1)
    assert figures.acceptance_rate == pytest.approx(60.0)
    assert figures.resends == 2
    assert figures.copies == 8
    assert {s.name: s.total for s in figures.by_receiver} == {"customs": 6, "ciq": 1, "terminal": 1}
    assert {s.name: s.total for s in figures.by_route} == {
        "declaration-to-customs": 6, "declaration-copy-to-inspection": 1, "manifest-to-terminal": 1}
    assert {s.name: s.total for s in figures.by_type} == {DECLARATION: 8, MANIFEST: 1, INSPECTION: 1, "(unknown)": 1}
    outcomes = {s.name: s.counts for s in figures.outcomes}
    assert outcomes["accepted"][1:5] == (3, 2, 1, 0)  # 2nd to 5th November
    assert outcomes["rejected"][1:3] == (1, 2) and outcomes["rejected"][29] == 1
    assert outcomes["duplicate"][4] == 1
    assert len(figures.buckets) == 30 and sum(map(sum, outcomes.values())) == 11


def test_rejection_reasons_count_each_message_once_with_example_ids(november):
    reasons = [(r.stage, r.code, r.messages, r.examples) for r in _figures(november).reasons]
    assert reasons == [
        ("validate", "xsd", 2, ("DEC-R1 (ent-b)", "INS-R4 (ent-d)")),
        ("parse", "not-well-formed", 1, (f"sha256 {_digest('garbage')[:16]}",)),
        ("verify", "certificate.expired", 1, ("DEC-R2 (ent-b)",)),
    ]  # DEC-A6's missing route is gone: it was replayed and accepted


def test_latency_percentiles_run_from_first_receipt_to_first_settlement(november):
    figures = _figures(november)
    delivered = figures.latency_delivered
    # 0.1, 0.2, 0.3, 0.4, 5.5 (redelivered) and a day plus 0.2 s (rejected, then replayed)
    assert delivered.count == 6
    assert delivered[50] == pytest.approx(0.3, abs=1e-6)
    assert delivered[90] == pytest.approx(86400.2, abs=1e-6) == delivered.maximum
    rejected = figures.latency_rejected
    assert rejected.count == 4 and rejected[50] == pytest.approx(0.05, abs=1e-6)
    assert rejected.maximum == pytest.approx(0.1, abs=1e-6)


def test_busiest_senders(november):
    senders = [(s.sender, s.messages, s.accepted, s.rejected, s.duplicates) for s in _figures(november).senders]
    assert senders == [("ent-a", 5, 4, 0, 1), ("ent-b", 4, 1, 3, 0), ("ent-c", 1, 1, 0, 0), ("ent-d", 1, 0, 1, 0)]


def test_a_day_is_broken_down_by_hour(november):
    figures = _figures(november, "2026-11-02")
    assert (figures.messages, figures.accepted, figures.rejected) == (4, 3, 1)
    assert len(figures.buckets) == 24
    assert {s.name: s.counts[10:14] for s in figures.outcomes}["accepted"] == (1, 1, 1, 0)


def test_sqlite_and_postgresql_give_the_same_figures(tmp_path, postgres_database):  # noqa: F811
    lite = f"sqlite:///{tmp_path / 'journal.db'}"
    postgres = _postgres_schema(postgres_database)
    build_november(lite)
    build_november(postgres)
    assert _figures(lite) == _figures(postgres)


def test_percentile_is_nearest_rank():
    assert percentile([], 50) is None
    assert percentile([1.0], 99) == 1.0
    assert [percentile(list(range(1, 11)), p) for p in (50, 90, 95, 99)] == [5, 9, 10, 10]


# ---- rendering --------------------------------------------------------------------------------------


@pytest.fixture
def sqlite_november(tmp_path) -> str:
    url = f"sqlite:///{tmp_path / 'journal.db'}"
    build_november(url)
    return url


def test_the_report_has_its_charts_in_html_and_pdf(sqlite_november, tmp_path, exchange):
    store = open_store(sqlite_november)
    files = build_report(store, "2026-11", tmp_path / "out", certificates=config_certificates(exchange.config),
                         as_of=AS_OF)
    store.close()
    html = files.html.read_text()
    for chart in ("outcomes", "types", "receivers", "routes", "latency", "reasons", "senders"):
        assert f'data-test="report-chart-{chart}"' in html
    assert html.count("<svg") == 7
    assert "DEC-R1 (ent-b)" in html and "certificate.expired" in html
    assert "No traffic" not in html
    assert "customs (platform)" not in html and "eport (platform)" in html  # the certificates table
    pdf = files.pdf.read_bytes()
    assert pdf.startswith(b"%PDF-")
    reader = pypdf.PdfReader(io.BytesIO(pdf))
    assert len(reader.pages) == files.pages >= 2
    text = "".join(page.extract_text() for page in reader.pages)
    assert "Exchange report: November 2026" in text and "validate/xsd" in text


def test_an_empty_period_gives_a_report_that_says_there_was_no_traffic(sqlite_november, tmp_path):
    store = open_store(sqlite_november)
    files = build_report(store, "2026-09", tmp_path / "out", as_of=AS_OF)
    store.close()
    assert files.figures.empty
    html = files.html.read_text()
    assert "No traffic in this period" in html and "<svg" not in html
    assert files.pages == 1 == len(pypdf.PdfReader(files.pdf).pages)


def test_the_html_alone_is_written_when_asked(sqlite_november, tmp_path):
    store = open_store(sqlite_november)
    files = build_report(store, parse_report_period("2026-11-03"), tmp_path / "out", formats=("html",), as_of=AS_OF)
    store.close()
    assert files.pdf is None and files.pages is None
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["exchange-report-2026-11-03.html"]


@pytest.mark.parametrize("text", ["2026-13", "2026-02-30", "november", "2026/11", "", "2026-11-05T10:00"])
def test_a_bad_period_is_refused_with_what_is_accepted(text):
    with pytest.raises(PeriodError) as caught:
        parse_report_period(text)
    assert "YYYY-MM" in str(caught.value) or "calendar" in str(caught.value)


# ---- the command ------------------------------------------------------------------------------------


def _run(config_path: Path, *args: str):
    """``exchanger --config CONFIG report ARGS``, as the console script runs it."""
    env = {"EXCHANGER_CONFIG": None}
    return CliRunner().invoke(main, ["--config", str(config_path), "report", *args], env=env)


@pytest.fixture
def configured(tmp_path, exchange, sqlite_november) -> Path:
    directory = tmp_path / "config"
    directory.mkdir()
    return write_config(directory, exchange.keys_dir, journal={"url": sqlite_november})


def test_the_command_writes_both_and_names_them(configured, tmp_path):
    result = _run(configured, "--period", "2026-11", "--out", str(tmp_path / "reports"))
    assert result.exit_code == 0, result.output
    assert "November 2026: 11 message(s), 6 accepted, 4 rejected, 1 duplicate(s), 8 copies delivered, 2 resend(s) answered" in result.output
    assert (tmp_path / "reports/exchange-report-2026-11.pdf").read_bytes().startswith(b"%PDF-")
    assert "page(s)" in result.output and "eport (platform)" in (tmp_path / "reports/exchange-report-2026-11.html").read_text()


@pytest.mark.parametrize("period", ["2026-13", "last-month", "2026-11-31"])
def test_the_command_refuses_a_bad_period_clearly(configured, tmp_path, period):
    result = _run(configured, "--period", period, "--out", str(tmp_path / "reports"))
    assert result.exit_code == 2
    assert result.output.startswith("error: ") and "Traceback" not in result.output
    assert not (tmp_path / "reports").exists()


def test_the_command_says_when_a_period_had_no_traffic(configured, tmp_path):
    result = _run(configured, "--period", "2026-08-01", "--out", str(tmp_path / "r"), "--format", "html")
    assert result.exit_code == 0, result.output
    assert "no traffic in 1 August 2026" in result.output
    assert json.dumps("No traffic")[1:-1] in (tmp_path / "r/exchange-report-2026-08-01.html").read_text()


# ---- traffic through the real pipeline ---------------------------------------------------------------


@pytest.fixture(params=["sqlite", "postgres"])
def fresh_log(request, tmp_path) -> str:
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'journal.db'}"
    return _postgres_schema(request.getfixturevalue("postgres_database"))


def test_a_generated_month_adds_up_to_what_the_pipeline_decided(exchange, fresh_log):
    from bench.month_traffic import generate

    store = open_store(fresh_log)
    made = generate(exchange.config, store, 2026, 11, 160, seed=7)
    figures = report_figures(store, "2026-11", as_of=AS_OF)
    store.close()
    assert made.rejected > 0 and made.accepted > 100
    assert (figures.accepted, figures.rejected, figures.resends) == (made.accepted, made.rejected, made.duplicates)
    assert figures.messages == made.accepted + made.rejected  # a resend is the message it repeats
    assert sum(r.messages for r in figures.reasons) >= made.rejected
    assert figures.latency_delivered.count == made.accepted
    assert figures.copies >= made.accepted


def test_the_command_refuses_a_file_as_its_folder(configured, tmp_path):
    (tmp_path / "taken").write_text("not a folder")
    result = _run(configured, "--period", "2026-11", "--out", str(tmp_path / "taken"))
    assert result.exit_code == 1, result.output
    assert result.output.startswith(f"error: cannot create the report folder {tmp_path / 'taken'}: a file")
