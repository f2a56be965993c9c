"""Each console page renders what the exchange knows: the dashboard's figures, messages, routes, reports, accounts."""

from __future__ import annotations

import pytest

from console_fixture import make_console
from exchanger.journal.records import ROUTED, Event

DECLARATION = "ENTA-DEC-20261105-000001"


@pytest.fixture
def console(tmp_path, exchange):
    made = make_console(tmp_path, exchange)
    yield made
    made.services.close()


def test_the_dashboard_shows_the_daemons_figures_and_follows_them(console):
    console.sign_in("viewer")
    console.messages.labels("CustomsDeclaration", "accepted").inc(3)
    console.latency.observe(0.05)
    page = console.client.get("/")
    assert page.status_code == 200
    text = page.get_data(as_text=True)
    assert 'data-figure="total_messages">3<' in text
    assert "<td>CustomsDeclaration</td><td>accepted</td><td>3</td>" in text
    assert "dashboard.js" in text and 'data-test="chart-messages"' in text
    console.messages.labels("CustomsDeclaration", "rejected").inc()
    sampler = console.app.config["SAMPLER"]
    sampler.clock = lambda: sampler.samples[-1].at + 10  # the next reading is due
    figures = console.client.get("/dashboard.json").get_json()
    assert figures["total_messages"] == 4
    assert {"type": "CustomsDeclaration", "outcome": "rejected", "count": 1} in figures["messages"]
    assert figures["latency"]["overall"]["p50"] is not None
    assert figures["rates"]["series"]["CustomsDeclaration · rejected"][-1] > 0
    # Without a broker the depths are unknown, and said so rather than made up.
    assert {"queue": "inbound", "depth": None} in figures["queues"]
    assert {row["participant"] for row in figures["certificates"]} == set()  # no exchange collector given


def _routed(console, message_id: str = DECLARATION):
    console.services.store().append([Event.of(ROUTED, data={"deliveries": [{"to": "customs", "route": "declarations"}]},
                                              message_id=message_id, sender="ent-a", message_type="CustomsDeclaration",
                                              receivers=["customs"])])


def test_messages_search_and_trace(console):
    _routed(console)
    console.sign_in("viewer")
    empty = console.client.get("/messages").get_data(as_text=True)
    assert 'data-test="messages-search-form"' in empty and 'data-test="search-results"' not in empty
    found = console.client.get("/messages?sender=ent-a").get_data(as_text=True)
    assert DECLARATION in found and 'data-test="search-count">1 message(s)' in found
    assert console.client.get("/messages?sender=nobody").get_data(as_text=True).count('data-test="search-row"') == 0
    bad = console.client.get("/messages?since=yesterday-ish")
    assert bad.status_code == 200 and 'data-test="search-problems"' in bad.get_data(as_text=True)
    trace = console.client.get(f"/messages/ent-a/{DECLARATION}")
    assert trace.status_code == 200 and 'data-kind="routed"' in trace.get_data(as_text=True)
    missing = console.client.get("/messages/ent-a/NOT-THERE")
    assert missing.status_code == 404 and "holds no message" in missing.get_data(as_text=True)


def test_a_hostile_message_id_is_shown_escaped(console):
    _routed(console, "<script>alert(1)</script>")
    console.sign_in("viewer")
    text = console.client.get("/messages?sender=ent-a").get_data(as_text=True)
    assert "<script>alert(1)</script>" not in text and "&lt;script&gt;" in text


def test_routes_and_catalogue_are_tables(console, exchange):
    console.sign_in("viewer")
    text = console.client.get("/routes").get_data(as_text=True)
    for route in exchange.config.table.routes:
        assert f'data-test="route-row-{route.id}"' in text
    assert 'data-test="catalogue-row-CustomsDeclaration"' in text
    assert 'data-test="routes-edit-link"' not in text  # a viewer is not offered what it may not do


def test_reports_render_a_period_as_html_and_pdf(console):
    _routed(console)
    console.sign_in("viewer")
    assert 'data-test="report-form"' in console.client.get("/reports").get_data(as_text=True)
    wrong = console.post("/reports", {"period": "November"}, page="/reports")
    assert wrong.status_code == 400 and "is not a period" in wrong.get_data(as_text=True)
    period = "2026-11"
    done = console.post("/reports", {"period": period}, page="/reports")
    assert done.status_code == 302 and done.headers["Location"] == f"/reports/{period}"
    shown = console.client.get(f"/reports/{period}").get_data(as_text=True)
    assert 'data-test="report-open-html"' in shown and 'data-test="report-open-pdf"' in shown
    html = console.client.get(f"/reports/{period}/report.html")
    assert html.status_code == 200 and html.mimetype == "text/html"
    pdf = console.client.get(f"/reports/{period}/report.pdf")
    assert pdf.data.startswith(b"%PDF") and "attachment" in pdf.headers["Content-Disposition"]
    assert f'data-test="report-row-{period}"' in console.client.get("/reports").get_data(as_text=True)


def test_an_admin_adds_and_removes_accounts(console):
    console.sign_in("admin")
    added = console.post("/accounts", {"name": "carol", "role": "operator"})
    text = added.get_data(as_text=True)
    assert added.status_code == 200 and 'data-test="accounts-created-password"' in text
    assert console.users.get("carol").must_change
    taken = console.post("/accounts", {"name": "carol", "role": "viewer"})
    assert taken.status_code == 400 and "there is already an account" in taken.get_data(as_text=True)
    console.post("/accounts/carol/remove", {}, page="/accounts")
    assert console.users.get("carol") is None
    last = console.post("/accounts/admin/remove", {}, page="/accounts")
    assert last.status_code == 302 and console.users.get("admin") is not None


def test_an_evidence_bundle_is_downloaded_with_its_token_and_recorded(console):
    import io
    import zipfile

    _routed(console)
    page = f"/messages/ent-a/{DECLARATION}"
    console.sign_in("viewer")
    text = console.client.get(page).get_data(as_text=True)
    assert 'data-test="evidence-download"' in text and 'data-test="evidence-sign-checkpoint"' not in text
    assert console.client.post(f"{page}/evidence").status_code == 400  # no form token
    early = console.post(f"{page}/evidence", {"sign_checkpoint": "1"}, page=page)
    assert early.status_code == 409 and "no signed checkpoint covers" in early.get_data(as_text=True)
    console.client.post("/logout", data={"csrf_token": console.csrf("/")})
    console.sign_in("operator")
    bundle = console.post(f"{page}/evidence", {"sign_checkpoint": "1"}, page=page)
    assert bundle.status_code == 200 and bundle.mimetype == "application/zip"
    assert f'filename="evidence-ent-a-{DECLARATION}.zip"' in bundle.headers["Content-Disposition"]
    names = zipfile.ZipFile(io.BytesIO(bundle.data)).namelist()
    assert "manifest.json" in names and "records.json" in names
    trace = console.client.get(page).get_data(as_text=True)
    assert "evidence-export by operator via console: done" in trace


def test_dead_letters_say_what_is_wrong_with_a_filter_or_the_broker(console):
    console.sign_in("viewer")
    bad = console.client.get("/dead-letters?since=yesterday")
    assert bad.status_code == 400
    assert "dead at most: &#39;yesterday&#39; is not a duration such as 30m" in bad.get_data(as_text=True)
    down = console.client.get("/dead-letters")
    assert down.status_code == 503 and "The dead letters cannot be read" in down.get_data(as_text=True)
    nothing = console.post("/dead-letters/replay", {}, page="/routes")
    assert nothing.status_code == 403  # a viewer may not, even with nothing chosen
