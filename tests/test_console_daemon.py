"""The console served by `exchanger run`: first admin, sign-in, live figures of the real daemon, trace, its records."""

from __future__ import annotations

import http.cookiejar
import json
import re
import time
import urllib.error
import urllib.parse
import urllib.request

import pytest
import yaml

from daemon_fixture import Daemon, cli, deploy, empty_mailboxes, mailbox
from exchange_fixture import SAMPLES

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

_CSRF = re.compile(r'name="csrf_token" value="([^"]+)"')
FOREX = "forex-verification/valid.xml"


class Browser:
    """A cookie-keeping HTTP client that fills in each form's CSRF token, as a browser submits it."""

    def __init__(self, base: str):
        self.base = base
        self.opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))

    def get(self, path: str) -> tuple[int, str, str]:
        try:
            with self.opener.open(self.base + path, timeout=30) as response:
                return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.geturl(), exc.read().decode()

    def post(self, path: str, fields: dict, page: str) -> tuple[int, str, str]:
        _, _, form = self.get(page)
        data = urllib.parse.urlencode({**fields, "csrf_token": _CSRF.search(form).group(1)}).encode()
        try:
            with self.opener.open(self.base + path, data=data, timeout=30) as response:
                return response.status, response.geturl(), response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.geturl(), exc.read().decode()

    def download(self, path: str, fields: dict, page: str) -> bytes:
        """Post a form that answers with a zip, and return the zip."""
        _, _, form = self.get(page)
        data = urllib.parse.urlencode({**fields, "csrf_token": _CSRF.search(form).group(1)}).encode()
        with self.opener.open(self.base + path, data=data, timeout=60) as response:
            assert response.headers["Content-Type"] == "application/zip"
            return response.read()


def _wait_for_messages(browser: Browser, count: int, timeout: float = 60) -> dict:
    deadline = time.monotonic() + timeout
    while True:
        status, _, body = browser.get("/dashboard.json")
        figures = json.loads(body)
        if figures["total_messages"] >= count or time.monotonic() > deadline:
            return figures
        time.sleep(1)


def test_the_console_starts_with_the_daemon_and_shows_its_work(broker, tmp_path):
    exchange = deploy(broker, tmp_path, users=["ent-a", "forex"])
    daemon = Daemon(exchange, exchange.url, workers=2)
    try:
        daemon.wait_for("worker.consuming", count=2)
        base, one_time = daemon.console, daemon.console_first_password
        assert base.startswith("http://127.0.0.1:") and one_time
        browser = Browser(base)
        assert browser.get("/healthz")[0] == 200
        status, url, _ = browser.get("/")
        assert url.startswith(base + "/login")
        status, url, _ = browser.post("/login", {"username": "admin", "password": one_time}, page="/login")
        assert url == base + "/account/password"
        status, url, _ = browser.post("/account/password", {"current": one_time, "new": "the admin's own one",
                                                            "repeat": "the admin's own one"}, page="/account/password")
        assert status == 200 and url == base + "/"

        cli(exchange, exchange.url, "send", "--sign", "--as", "ent-a", str(SAMPLES / FOREX))
        mailbox(exchange, "forex", 1)
        mailbox(exchange, "ent-a", 1)  # its receipt: the broker's virtual host is shared with the next test
        figures = _wait_for_messages(browser, 1)
        assert {"type": "ForexVerification", "outcome": "accepted", "count": 1} in figures["messages"]
        assert figures["workers"] == {"consuming": 2, "expected": 2}
        assert any(row["participant"] == "eport" for row in figures["certificates"])
        assert {row["check"] for row in figures["readiness"]} >= {"broker", "config"}
        page = browser.get("/")[2]
        assert 'data-test="dashboard-total-messages"' in page and "ForexVerification" in page

        status, _, results = browser.get("/messages?sender=ent-a")
        assert status == 200 and "ForexVerification" in results
        link = re.search(r'href="(/messages/ent-a/[^"]+)"', results).group(1)
        status, _, trace = browser.get(link)
        assert status == 200 and "routed" in trace and "delivered" in trace
        bundle = browser.download(link + "/evidence", {"sign_checkpoint": "1"}, page=link)
        (tmp_path / "bundle.zip").write_bytes(bundle)
        verified = cli(exchange, exchange.url, "evidence", "verify", str(tmp_path / "bundle.zip"))
        assert verified.returncode == 0

        browser.post("/logout", {}, page="/")
        assert browser.get("/")[1].startswith(base + "/login")
    finally:
        stopped = daemon.stop()
        empty_mailboxes(broker, exchange)  # what the test did not read must not reach a later test's mailbox
        assert stopped == 0
    found = cli(exchange, exchange.url, "log", "search", "--kind", "operator-action", "--operator", "admin")
    assert "sign-in by admin via console: done" in found.stdout
    assert "sign-out by admin via console: done" in found.stdout


def _add_account(exchange, name: str, role: str, password: str) -> None:
    import subprocess
    import sys

    subprocess.run([sys.executable, "-m", "exchanger", "--config", str(exchange.config_path), "console", "users", "add",
                    name, "--role", role, "--password-stdin"], input=password + "\n", text=True, check=True,
                   capture_output=True)


def _dead_ids(page: str) -> list[str]:
    return re.findall(r'data-test="dead-row-([^"]+)"', page)


def test_route_change_and_dead_letter_replay_through_the_console(broker, tmp_path):
    exchange = deploy(broker, tmp_path, users=["ent-a", "forex"])
    cli(exchange, exchange.url, "dead", "purge", "--older-than", "0s")
    _add_account(exchange, "olga", "operator", "olga's long password")
    _add_account(exchange, "vic", "viewer", "vic's long password")
    original = exchange.config_path.read_text()
    daemon = Daemon(exchange, exchange.url, workers=1)
    try:
        daemon.wait_for("worker.consuming")
        assert daemon.console_first_password is None  # accounts exist: no admin is made
        operator, viewer = Browser(daemon.console), Browser(daemon.console)
        operator.post("/login", {"username": "olga", "password": "olga's long password"}, page="/login")
        viewer.post("/login", {"username": "vic", "password": "vic's long password"}, page="/login")

        # The route for forex verifications goes: previewed, applied, and the daemon reloads it.
        data = yaml.safe_load(original)
        data["routes"] = [route for route in data["routes"] if route["id"] != "forex-verification"]
        edited = yaml.safe_dump(data, sort_keys=False)
        status, _, preview = operator.post("/routes/edit", {"text": edited, "base": original, "action": "preview"},
                                           page="/routes/edit")
        assert status == 200 and "- route forex-verification" in preview and "ForexVerification loses destination" in preview
        status, url, _ = operator.post("/routes/edit", {"text": edited, "base": original, "action": "apply"},
                                       page="/routes/edit")
        assert url.endswith("/routes")
        daemon.wait_for("config.reloaded")

        cli(exchange, exchange.url, "send", "--sign", "--as", "ent-a", str(SAMPLES / FOREX))
        (receipt,) = mailbox(exchange, "ent-a", 1)
        assert receipt.headers["x-exchanger-status"] == "rejected"
        page = viewer.get("/dead-letters?reason=no-route")[2]
        (letter,) = _dead_ids(page)
        assert 'data-test="dead-replay-button"' not in page  # not offered to a viewer
        status, _, shown = viewer.get(f"/dead-letters/{letter}")
        assert status == 200 and "&lt;fx:ForexVerification" in shown and "no route allows" in shown
        assert "ent-a (broker user " in shown
        assert viewer.post("/dead-letters/replay", {"ids": letter}, page="/dead-letters")[0] == 403
        assert _dead_ids(viewer.get("/dead-letters")[2]) == [letter]  # looking took nothing

        # The route comes back, and the operator replays what it had refused.
        operator.post("/routes/edit", {"text": original, "base": edited, "action": "apply"}, page="/routes/edit")
        daemon.wait_for("config.reloaded", count=2)
        status, _, after = operator.post("/dead-letters/replay", {"ids": letter}, page="/dead-letters")
        assert f"{letter}: replayed" in after
        (copy,) = mailbox(exchange, "forex", 1)
        assert copy.headers["x-exchanger-sender"] == "ent-a"
        assert _dead_ids(operator.get("/dead-letters")[2]) == []
    finally:
        stopped = daemon.stop()
        empty_mailboxes(broker, exchange)  # what the test did not read must not reach a later test's mailbox
        assert stopped == 0
    assert exchange.config_path.read_text() == original
    actions = cli(exchange, exchange.url, "log", "search", "--kind", "operator-action", "--operator", "olga").stdout
    assert actions.count("route-change by olga via console: done") == 2
    assert "dead-letter-replay by olga via console: done" in actions
