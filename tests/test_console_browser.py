"""The operators' console in a real browser: signing in, the live dashboard, tracing a message, and refusals.

One exchange runs for the module (`exchanger run` with its console, on the real broker); Chromium signs in
with accounts made by `exchanger console users add` and does what an operator does. Every action that
changes something is refused without the role, without the form's CSRF token and after the session
expired, and changes nothing; what is done shows in `exchanger log search`.
"""

from __future__ import annotations

import zipfile

import pytest
import yaml

from browser_fixture import ACCOUNTS, FIRST_ADMIN, SESSION_MINUTES, browser, downloads, page, start_console  # noqa: F401

pytestmark = [pytest.mark.broker, pytest.mark.e2e, pytest.mark.browser]

PARTICIPANTS = ["ent-a", "customs", "ciq", "forex"]


def without_forex_route(data: dict, _exchange) -> None:
    """Forex verifications have no route here: each becomes a dead letter (no-route) for the tests to act on."""
    data["routes"] = [r for r in data["routes"] if r["id"] != "forex-verification"]


@pytest.fixture(scope="module")
def console(broker, tmp_path_factory):
    """The exchange with its console, running for the whole module."""
    yield from start_console(broker, tmp_path_factory.mktemp("console"), without_forex_route, users=PARTICIPANTS)


def test_the_first_admin_signs_in_with_the_one_time_password_and_must_choose_another(page, console):
    """`exchanger run` printed a one-time password; it opens only the page that replaces it, and only once."""
    page.sign_in(FIRST_ADMIN, console.first_password)
    assert page.path == "/account/password"
    assert "for one use" in page.text("flash-warning")
    page.open("/dead-letters")  # any other page leads back to choosing a password
    assert page.path == "/account/password"
    own = "harbour-master-2026"
    page.type("password-current", console.first_password)
    page.type("password-new", own)
    page.type("password-repeat", own)
    page.submit("password-submit")
    assert page.path == "/" and "password is changed" in page.text("flash-info")
    assert page.text("signed-in-role") == "admin"
    page.sign_out()
    page.sign_in(FIRST_ADMIN, console.first_password, expect_success=False)
    assert page.text("login-error") == "Wrong account name or password."
    page.sign_in(FIRST_ADMIN, own)
    assert page.path == "/" and page.text("signed-in-user") == FIRST_ADMIN


def test_a_wrong_password_gets_a_clear_message_and_is_on_record(page, console):
    """A wrong password leaves the operator on the sign-in page with a message; the failure is in the log."""
    name, password = ACCOUNTS["viewer"]
    page.open("/messages")
    assert page.path == "/login"  # nothing but /healthz answers without sign-in
    page.sign_in(name, password + "-wrong", expect_success=False)
    assert page.text("login-error") == "Wrong account name or password."
    assert page.path == "/login" and not page.has("signed-in-user")
    page.screenshot("sign-in")
    page.sign_in(name, password)
    assert page.text("signed-in-role") == "viewer"
    assert console.operator_actions(name, "sign-in-failed"), "the failed sign-in is not in exchanger log search"
    assert console.operator_actions(name, "sign-in")


def test_the_dashboard_moves_while_messages_flow_through_the_daemon(page, console):
    """Without reloading, the dashboard's figures follow the messages the real daemon processes."""
    page.sign_in_as("viewer")
    page.until(lambda d: d.execute_script("return document.body.dataset.dashboardUpdated"), "the dashboard never polled")
    before = int(page.text("dashboard-total-messages"))
    traffic = [("customs-declaration/valid.xml", 6), ("customs-declaration/valid-with-inspection.xml", 3),
               ("customs-declaration/broken.xml", 2), ("inspection-declaration/valid.xml", 3),
               ("forex-verification/valid.xml", 1)]
    for sample, count in traffic:
        for _ in range(count):
            console.send(sample, "ent-a")
    sent = sum(count for _, count in traffic)
    page.until_text("dashboard-total-messages", lambda t: t.isdigit() and int(t) >= before + sent,
                    "the dashboard's message count did not follow the traffic")
    page.until_text("messages-table", lambda t: "CustomsDeclaration" in t and "InspectionDeclaration" in t)
    page.until_text("rejections-table", lambda t: "validate" in t)
    page.until_text("agencies-table", lambda t: "customs" in t)
    assert page.text("workers-consuming") == "1"
    page.screenshot("dashboard")


def test_a_message_is_found_traced_and_its_evidence_downloaded(page, console, tmp_path):
    """Search by message id, the trace's stages, rule and deliveries, and the evidence bundle that verifies offline."""
    message_id = console.send("customs-declaration/valid-with-inspection.xml", "ent-a")
    page.sign_in_as("viewer")
    page.open("/messages")
    page.type("search-message-id", message_id)
    page.submit("search-submit")
    page.refresh_until(lambda: page.has(f"trace-link-{message_id}"), f"{message_id} never showed in the search")
    page.open("/messages")
    page.submit("search-latest")
    page.screenshot("messages")
    page.open(f"/messages?message_id={message_id}")
    page.submit(f"trace-link-{message_id}")
    assert page.text("trace-message-id") == message_id and page.text("trace-sender") == "ent-a"

    def kinds() -> list[str]:
        return [row.get_attribute("data-kind") for row in page.all("trace-event")]

    page.refresh_until(lambda: "receipt" in kinds(), "the trace never reached the receipt")
    assert kinds() == ["received", "routed", "delivered", "delivered", "receipt"], kinds()
    timeline = page.text("trace-timeline")
    assert "declaration-to-customs" in timeline and "declaration-copy-to-inspection" in timeline
    assert "GACC" in page.text("trace-text")  # the approval the copy to inspection was made under
    page.screenshot("trace")

    # A message this fresh is under no signed checkpoint yet: an operator has one signed with the bundle.
    page.sign_out()
    page.sign_in_as("operator")
    page.open(f"/messages/ent-a/{message_id}")
    page.click("evidence-sign-checkpoint")
    bundle = page.download("evidence-download")
    with zipfile.ZipFile(bundle) as archive:
        assert archive.testzip() is None and archive.namelist()
    verified = console.cli("evidence", "verify", str(bundle), check=False)
    assert verified.returncode == 0, verified.stdout + verified.stderr
    assert console.operator_actions(ACCOUNTS["operator"][0], "evidence-export")


def test_a_viewer_can_look_but_not_replay_purge_or_change_routes(page, console):
    """Without the operator role the buttons are absent and the requests themselves are refused; nothing changes."""
    message_id = console.send("forex-verification/valid.xml", "ent-a")
    page.sign_in_as("viewer")
    letter = page.dead_letter_of(message_id)
    assert not page.has("dead-replay-button") and not page.has("dead-purge-button")
    page.open(f"/dead-letters/{letter}")
    assert "no route" in page.text("dead-letter-reason").lower() or "no-route" in page.text("dead-letter-reason")
    assert not page.has("dead-letter-replay") and not page.has("dead-letter-purge")
    token = page.csrf_token()  # the viewer's own, valid token: the role alone refuses
    for action in ("replay", "purge"):
        status, text = page.post(f"/dead-letters/{action}", {"csrf_token": token, "ids": letter})
        assert status == 403 and "Nothing was changed" in text, (status, text[:300])
    assert letter in console.pending_dead_letters()

    page.open("/routes")
    assert page.has("routes-table") and not page.has("routes-edit-link")
    page.open("/routes/edit")
    assert page.text("error-title") == "Not allowed" and "operator" in page.text("error-message")
    routes_before = console.routes_path.read_bytes()
    status, _ = page.post("/routes/edit", {"csrf_token": token, "action": "apply", "text": routes_before.decode()})
    assert status == 403
    assert console.routes_path.read_bytes() == routes_before


def test_a_change_without_the_forms_csrf_token_is_refused(page, console):
    """An operator's session alone is not enough: a missing or wrong token is refused and nothing changes."""
    message_id = console.send("forex-verification/valid.xml", "ent-a")
    page.sign_in_as("operator")
    letter = page.dead_letter_of(message_id)
    routes_before = console.routes_path.read_bytes()
    changed = yaml.safe_load(routes_before)
    changed["routes"] = changed["routes"][1:]
    for fields in ({}, {"csrf_token": "not-the-token"}):
        for action in ("replay", "purge"):
            status, text = page.post(f"/dead-letters/{action}", {**fields, "ids": letter})
            assert status == 400 and "Form refused" in text and "Nothing was changed" in text, (status, text[:300])
        status, text = page.post("/routes/edit", {**fields, "action": "apply", "text": yaml.safe_dump(changed)})
        assert status == 400 and "Form refused" in text, (status, text[:300])
    assert letter in console.pending_dead_letters()
    assert console.routes_path.read_bytes() == routes_before


def test_an_expired_session_sends_back_to_sign_in_and_changes_nothing(page, console):
    """A purge pressed after the session expired leads to the sign-in page, which says why; the letter stays."""
    message_id = console.send("forex-verification/valid.xml", "ent-a")
    page.sign_in_as("operator")
    letter = page.dead_letter_of(message_id)
    page.open(f"/dead-letters/{letter}")
    page.age_session(SESSION_MINUTES + 1)
    page.submit("dead-letter-purge")
    assert page.path == "/login"
    assert "session expired" in page.text("flash-warning")
    assert letter in console.pending_dead_letters()
    page.open("/")
    assert page.path == "/login"  # the expired session is gone, not revived
