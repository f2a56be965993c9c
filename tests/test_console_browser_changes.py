"""Operators change the running exchange from the console in a real browser: dead letters, routes, uploads, reports.

Forex verifications start without a route, so each one becomes a dead letter. An operator previews and
applies the route that was missing, sees the next message routed by it, replays the dead letter and sees
it delivered; purges a broken one; is shown every problem of a malformed route edit, which changes
nothing; and is refused an oversized upload. Each action shows in `exchanger log search`.
"""

from __future__ import annotations

import re
from datetime import datetime, timezone
from pathlib import Path

import pytest
import yaml

from browser_fixture import ACCOUNTS, browser, downloads, page, start_console  # noqa: F401
from daemon_fixture import mailbox
from exchange_fixture import SAMPLES

pytestmark = [pytest.mark.broker, pytest.mark.e2e, pytest.mark.browser]

PARTICIPANTS = ["ent-a", "customs", "ciq", "forex"]
FOREX_ROUTE = {
    "id": "forex-verification",
    "description": "Enterprises file foreign exchange verification records with the forex bureau.",
    "types": ["ForexVerification"],
    "from": ["kind:enterprise"],
    "to": ["kind:forex"],
    "deliver": "addressed",
}


def without_forex_route(data: dict, _exchange) -> None:
    """Forex verifications have no route here: each becomes a dead letter (no-route)."""
    data["routes"] = [r for r in data["routes"] if r["id"] != FOREX_ROUTE["id"]]


@pytest.fixture(scope="module")
def console(broker, tmp_path_factory):
    """The exchange with its console, running for the whole module."""
    yield from start_console(broker, tmp_path_factory.mktemp("console"), without_forex_route, users=PARTICIPANTS)


def _bodies(console, participant: str, count: int) -> list[bytes]:
    return [m.body for m in mailbox(console.exchange, participant, count)]


def test_a_route_change_is_previewed_applied_and_routes_the_next_message_and_the_replayed_dead_letter(page, console):
    """No route: dead letter. Preview shows the destination gained, apply reloads, the next message and the replay arrive."""
    operator = ACCOUNTS["operator"][0]
    dead_id = console.send("forex-verification/valid.xml", "ent-a")
    page.sign_in_as("operator")
    letter = page.dead_letter_of(dead_id)
    page.screenshot("dead-letters")
    page.open(f"/dead-letters/{letter}")
    assert "ForexVerification" in page.text("dead-letter-facts") and dead_id in page.text("dead-letter-body")
    page.screenshot("dead-letter")

    page.open("/routes")
    page.submit("routes-edit-link")
    routes_before = console.routes_path.read_bytes()
    data = yaml.safe_load(page.find("route-edit-text").get_attribute("value"))
    data["routes"].append(FOREX_ROUTE)
    page.fill("route-edit-text", yaml.safe_dump(data, sort_keys=False))
    page.submit("route-preview-button")
    assert page.has("route-preview-ok")
    gained = [e.text for e in page.all("route-diff-gained")]
    assert any(g.startswith("ForexVerification gains destination") and "forex" in g for g in gained), gained
    assert console.routes_path.read_bytes() == routes_before  # a preview writes nothing
    page.screenshot("routes-preview")

    reloads = console.daemon.count("config.reloaded")
    page.submit("route-apply-button")
    assert page.path == "/routes"
    applied = page.text("flash-info")
    assert "applied" in applied
    kept = Path(re.search(r"previous version is kept in (\S+?)\.?$", applied).group(1))
    assert kept.read_bytes() == routes_before
    console.daemon.wait_for("config.reloaded", count=reloads + 1)
    page.open("/routes")  # the table shows the configuration the daemon runs: the new one once reloaded
    assert page.has("route-row-forex-verification")

    routed_id = console.send("forex-verification/valid.xml", "ent-a")
    (copy,) = _bodies(console, "forex", 1)
    assert routed_id.encode() in copy

    page.open(f"/dead-letters/{letter}")
    page.submit("dead-letter-replay")
    assert page.path == "/dead-letters" and page.has("flash-info"), page.why
    (replayed,) = _bodies(console, "forex", 1)
    assert dead_id.encode() in replayed
    assert letter not in console.pending_dead_letters()
    assert not page.all(f"dead-row-{letter}")
    assert console.operator_actions(operator, "route-change")
    assert console.operator_actions(operator, "dead-letter-replay")


def test_a_broken_message_is_purged_from_the_dead_letters(page, console):
    """An operator chooses a dead letter in the list and purges it: it leaves the pending list, on record."""
    message_id = console.send("customs-declaration/broken.xml", "ent-a")
    page.sign_in_as("operator")
    letter = page.dead_letter_of(message_id)
    page.click(f"dead-select-{letter}")
    page.submit("dead-purge-button")
    assert page.path == "/dead-letters" and page.has("flash-info"), page.why
    assert not page.all(f"dead-row-{letter}")
    assert letter not in console.pending_dead_letters()
    assert console.operator_actions(ACCOUNTS["operator"][0], "dead-letter-purge")


def test_a_malformed_route_edit_shows_every_problem_and_changes_nothing(page, console):
    """Unknown type, unknown sender, a rule id used twice: all three listed, on preview and on apply; nothing written."""
    page.sign_in_as("operator")
    page.open("/routes/edit")
    routes_before = console.routes_path.read_bytes()
    reloads = console.daemon.count("config.reloaded")
    data = yaml.safe_load(page.find("route-edit-text").get_attribute("value"))
    first = data["routes"][0]
    data["routes"].append({"id": "broken-rule", "types": ["NoSuchType"], "from": ["nobody"], "to": ["kind:customs"],
                           "deliver": "addressed"})
    data["routes"].append({**first})
    page.fill("route-edit-text", yaml.safe_dump(data, sort_keys=False))
    page.submit("route-preview-button")

    def problems() -> str:
        return "\n".join(e.text for e in page.all("route-problem"))

    for expected in ("NoSuchType", "nobody", first["id"]):
        assert expected in problems(), problems()
    page.screenshot("routes-problems")
    page.submit("route-apply-button")
    assert page.has("route-refused")
    for expected in ("NoSuchType", "nobody", first["id"]):
        assert expected in problems(), problems()
    page.fill("route-edit-text", "participants: [broken")
    page.submit("route-apply-button")
    assert page.has("route-refused") and "YAML" in problems(), problems()
    assert console.routes_path.read_bytes() == routes_before
    assert console.daemon.count("config.reloaded") == reloads
    assert console.operator_actions(ACCOUNTS["operator"][0], "route-change-refused")


def test_an_uploaded_document_is_explained_and_an_oversized_one_refused(page, console, tmp_path):
    """Explain shows the rules a signed declaration matches; a file over the limit gets a clear page, nothing else."""
    page.sign_in_as("viewer")
    page.open("/routes/explain")
    signed = tmp_path / "declaration.xml"
    signed.write_bytes(console.exchange.signed("ent-a", SAMPLES / "customs-declaration/valid-with-inspection.xml"))
    page.find("explain-file").send_keys(str(signed))
    page.submit("explain-submit")
    deliveries = page.text("explain-deliveries")
    assert "customs" in deliveries and "ciq" in deliveries and "declaration-copy-to-inspection" in deliveries
    page.screenshot("explain")

    big = tmp_path / "big.xml"
    big.write_bytes(b"<a>" + b"x" * (200 * 1024) + b"</a>")
    page.open("/routes/explain")
    page.find("explain-file").send_keys(str(big))
    page.submit("explain-submit")
    assert page.text("error-title") == "Upload too large"
    assert "64 KB" in page.text("error-message") and "Nothing was changed" in page.text("error-message")


def test_the_management_report_is_rendered_from_the_console(page, console):
    """An operator renders this month's report from the message log and opens it."""
    console.send("customs-declaration/valid.xml", "ent-a")
    period = datetime.now(timezone.utc).strftime("%Y-%m")
    page.sign_in_as("operator")
    page.open("/reports")
    page.type("report-period", period)
    page.submit("report-submit")
    assert page.path == f"/reports/{period}", page.why
    assert "rendered" in page.text("flash-info")
    assert page.text("report-period-shown") == period
    page.screenshot("reports")
    page.submit("report-open-html")
    assert period in page.body or datetime.now(timezone.utc).strftime("%B %Y") in page.body, page.why
    page.screenshot("report")
    assert console.operator_actions(ACCOUNTS["operator"][0], "report")
