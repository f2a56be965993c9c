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

from daemon_fixture import Daemon, cli, deploy, mailbox
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

        browser.post("/logout", {}, page="/")
        assert browser.get("/")[1].startswith(base + "/login")
    finally:
        assert daemon.stop() == 0
    found = cli(exchange, exchange.url, "log", "search", "--kind", "operator-action", "--operator", "admin")
    assert "sign-in by admin via console: done" in found.stdout
    assert "sign-out by admin via console: done" in found.stdout
