"""The operators' console in a real headless Chromium, served by a real `exchanger run` on the real broker.

`browser` is Debian's Chromium driven through its chromedriver; `console` is one deployment of the
exchange per test module with the console on a free port and an account of each role made with
`exchanger console users add`; `page` is the browser signed out, bound to that console, with the
waits and look-ups the tests share. Screenshots go to docs/console/ only with EXCHANGER_SCREENSHOTS=1,
so that an ordinary run never rewrites the repository.
"""

from __future__ import annotations

import itertools
import json
import os
import re
import secrets
import subprocess
import sys
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from daemon_fixture import Daemon, cli, deploy, empty_mailboxes, login_url, publish
from exchange_fixture import PROJECT, SAMPLES, Exchange

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")
SCREENSHOTS = PROJECT / "docs" / "console"
WINDOW = (1280, 900)
WAIT = 30  # seconds an explicit wait may take before the test fails (the daemon polls every few seconds)

# One account per role, made through the command line as an administrator would.
ACCOUNTS = {
    "viewer": ("vera", "vera-reads-only-1"),
    "operator": ("otto", "otto-operates-22"),
}
FIRST_ADMIN = "admin"
SESSION_COOKIE = "exchanger_console"
SESSION_MINUTES = 30


# ---- the browser -------------------------------------------------------------------------------------------------


def _browser_missing() -> str | None:
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        return (f"the console's browser tests need Debian's chromium and chromium-driver ({', '.join(missing)} missing): "
                "bin/test installs them (bin/lib/setup.sh ensure_browser), or run "
                "`apt-get install chromium chromium-driver` as root")
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed: bin/test installs the test extras (`pip install -e .[test]`)"
    return None


@pytest.fixture(scope="session")
def downloads(tmp_path_factory) -> Path:
    """Where the browser saves what the console offers for download."""
    return tmp_path_factory.mktemp("downloads")


@pytest.fixture(scope="session")
def browser(downloads: Path):
    """A headless Chromium WebDriver; in CI a missing browser fails the run instead of skipping it."""
    problem = _browser_missing()
    if problem:
        if os.environ.get("CI"):
            pytest.fail(problem, pytrace=False)
        pytest.skip(problem)
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    for argument in ("--headless=new", f"--window-size={WINDOW[0]},{WINDOW[1]}", "--disable-dev-shm-usage",
                     "--disable-gpu", "--no-first-run", "--lang=en-GB", "--hide-scrollbars"):
        options.add_argument(argument)
    if os.geteuid() == 0:
        # Chromium's sandbox refuses to run as root; CI and the set-up script run as root.
        options.add_argument("--no-sandbox")
    options.add_experimental_option("prefs", {
        "download.default_directory": str(downloads),
        "download.prompt_for_download": False,
        "profile.password_manager_leak_detection": False,
        "credentials_enable_service": False,
    })
    driver = webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)
    driver.execute_cdp_cmd("Browser.setDownloadBehavior", {"behavior": "allow", "downloadPath": str(downloads)})
    try:
        yield driver
    finally:
        driver.quit()


# ---- the exchange with its console -------------------------------------------------------------------------------

_SERIAL = itertools.count(secrets.randbelow(400_000) + 100_000)


def fresh_message(path: Path, message_id: str | None = None) -> tuple[str, bytes]:
    """A sample with a message id of its own (the log answers a repeated id as a duplicate): (id, bytes)."""
    text = path.read_text()
    original = re.search(r"<cm:MessageId>([^<]+)</cm:MessageId>", text).group(1)
    new_id = message_id or re.sub(r"\d{6}$", f"{next(_SERIAL):06d}", original)
    return new_id, text.replace(f"<cm:MessageId>{original}</cm:MessageId>", f"<cm:MessageId>{new_id}</cm:MessageId>", 1).encode()


@dataclass
class Console:
    """A running exchange whose console the browser opens."""

    exchange: Exchange
    broker_url: str
    daemon: Daemon
    address: str
    first_password: str

    def url(self, path: str = "/") -> str:
        """An absolute address on the console."""
        return self.address.rstrip("/") + path

    def cli(self, *args: str, check: bool = True) -> subprocess.CompletedProcess:
        """Run an `exchanger` command on the deployment."""
        return cli(self.exchange, self.broker_url, *args, check=check)

    def send(self, sample: str, sender: str, message_id: str | None = None) -> str:
        """Sign a bundled sample as ``sender`` under a new message id and publish it as the sender; return the id."""
        new_id, body = fresh_message(SAMPLES / sample, message_id)
        user = self.exchange.config.registry.get(sender).amqp_user
        publish(login_url(self.exchange, sender), self.exchange.signed(sender, body), user)
        return new_id

    def log_records(self, *args: str) -> list[dict]:
        """`exchanger log search --json` with extra filters: the records as the command prints them."""
        return json.loads(self.cli("log", "search", "--json", *args).stdout or "[]")

    def operator_actions(self, operator: str, action: str) -> list[dict]:
        """Records of one operator action by one account, as `exchanger log search` shows them."""
        records = self.log_records("--kind", "operator-action", "--operator", operator)
        return [record for record in records if f'"{action}"' in json.dumps(record)]

    def pending_dead_letters(self) -> str:
        """`exchanger dead list`: the pending dead letters, one a line, as the operators' command prints them."""
        return self.cli("dead", "list").stdout

    @property
    def routes_path(self) -> Path:
        """The routes.yaml the daemon runs on (the console's route edits write it)."""
        return self.exchange.config_path


def add_account(exchange: Exchange, broker_url: str, name: str, role: str, password: str) -> None:
    """`exchanger console users add NAME --role ROLE --password-stdin`, as an administrator runs it."""
    result = subprocess.run(
        [sys.executable, "-m", "exchanger", "--config", str(exchange.config_path), "--amqp-url", broker_url,
         "console", "users", "add", name, "--role", role, "--password-stdin"],
        input=password + "\n", capture_output=True, text=True, timeout=60,
    )
    assert result.returncode == 0, f"console users add {name}: {result.stdout}\n{result.stderr}"


def start_console(broker, directory: Path, edit: Callable[[dict, Exchange], None] | None = None,
                  users: list[str] | None = None) -> Iterator[Console]:
    """Deploy the exchange, start `exchanger run` with the console on a free port, add an account per role."""

    def configure(data: dict, exchange: Exchange) -> None:
        data["console"] = {"enabled": True, "bind": "127.0.0.1", "port": 0, "session_minutes": SESSION_MINUTES, "max_upload_kb": 64}
        if edit is not None:
            edit(data, exchange)

    exchange = deploy(broker, directory, configure, users=users)
    # As deployed: the daemon logs in as its own broker user (replays and purges are published in its name).
    daemon = Daemon(exchange, exchange.url, workers=1)
    try:
        daemon.wait_for("worker.consuming")
        daemon.wait_for("console.listening")
        address = next(e["address"] for e in list(daemon.events) if e.get("event") == "console.listening")
        # With no account yet, the daemon made the first admin and said its one-time password on the terminal.
        match = re.search(r"one-time password (\S+)", "".join(daemon.raw))
        assert match, "the daemon did not print the first admin's one-time password:\n" + "".join(daemon.raw[-40:])
        for role, (name, password) in ACCOUNTS.items():
            add_account(exchange, broker.url, name, role, password)
        # Dead letters that earlier tests left on the run's broker would crowd the pages: settle them first.
        cli(exchange, exchange.url, "dead", "purge", "--older-than", "0s")
        yield Console(exchange, broker.url, daemon, address, match.group(1))
    finally:
        stopped = daemon.stop()
        empty_mailboxes(broker, exchange)  # the pages' traffic must not reach the next module's mailboxes
        assert stopped == 0, "".join(daemon.raw[-40:])


# ---- the page --------------------------------------------------------------------------------------------------


def by_test(test_id: str) -> tuple[str, str]:
    """The locator of an element by its data-test attribute."""
    return ("css selector", f'[data-test="{test_id}"]')


def _replaced(element) -> bool:
    """True once an element's document has been replaced by the next page."""
    from selenium.common.exceptions import StaleElementReferenceException, WebDriverException

    try:
        element.is_enabled()
    except StaleElementReferenceException:
        return True
    except WebDriverException as exc:
        # While the next page replaces the old one, Chromium may say the node no longer belongs to the document.
        return "does not belong to the document" in str(exc)
    return False


class Page:
    """The browser on one console: open pages, sign in, find elements by data-test, wait explicitly, screenshot."""

    def __init__(self, driver, console: Console, downloads: Path):
        self.driver = driver
        self.console = console
        self.downloads = downloads

    # -- navigation and sign-in

    def open(self, path: str = "/") -> Page:
        """Open a page of the console and wait until it is loaded."""
        self.driver.get(self.console.url(path))
        self.until(lambda d: d.execute_script("return document.readyState") == "complete")
        return self

    def sign_in(self, name: str, password: str, *, expect_success: bool = True) -> Page:
        """Sign in through the form; wait for the signed-in header (or, when failure is expected, the error)."""
        self.open("/login")
        self.type("login-username", name)
        self.type("login-password", password)
        self.click("login-submit")
        if expect_success:
            self.until(lambda d: d.find_elements(*by_test("signed-in-user")) or d.find_elements(*by_test("password-form")),
                       f"signing in as {name} did not reach a page of the console")
        return self

    def sign_in_as(self, role: str) -> Page:
        """Sign in with the account of a role made for the tests."""
        name, password = ACCOUNTS[role]
        self.sign_in(name, password)
        assert self.text("signed-in-user") == name
        return self

    def sign_out(self) -> None:
        """Forget the session (the browser is shared by the tests)."""
        self.driver.delete_all_cookies()

    # -- elements

    def find(self, test_id: str):
        """The element with a data-test attribute, waiting until it is there."""
        return self.until(lambda d: d.find_element(*by_test(test_id)), f"no element data-test={test_id!r} on {self.driver.current_url}")

    def all(self, test_id: str) -> list:
        """Every element with a data-test attribute now (perhaps none)."""
        return self.driver.find_elements(*by_test(test_id))

    def has(self, test_id: str) -> bool:
        """True when an element with a data-test attribute is on the page now."""
        return bool(self.all(test_id))

    def text(self, test_id: str) -> str:
        """The visible text of an element."""
        return self.find(test_id).text.strip()

    def type(self, test_id: str, value: str) -> None:
        """Replace the text of an input."""
        element = self.find(test_id)
        element.clear()
        element.send_keys(value)

    def fill(self, test_id: str, value: str) -> None:
        """Set a long text (a whole routes.yaml) at once, as a paste would, and tell the page it changed."""
        element = self.find(test_id)
        self.driver.execute_script(
            "arguments[0].value = arguments[1];"
            "arguments[0].dispatchEvent(new Event('input', {bubbles: true}));"
            "arguments[0].dispatchEvent(new Event('change', {bubbles: true}));",
            element, value,
        )

    def click(self, test_id: str) -> None:
        """Click an element once it can be clicked."""
        from selenium.webdriver.support import expected_conditions as ec

        self.until(ec.element_to_be_clickable(by_test(test_id)), f"data-test={test_id!r} is not clickable").click()

    def submit(self, test_id: str) -> None:
        """Click a button that loads a new page, and wait until the new page has replaced the old one."""
        old = self.driver.find_element("tag name", "html")
        self.click(test_id)
        self.until(lambda _driver: _replaced(old), f"pressing data-test={test_id!r} loaded no page")
        self.until(lambda d: d.execute_script("return document.readyState") == "complete")

    def until(self, condition, message: str = "", timeout: float = WAIT, poll: float = 0.2):
        """Wait explicitly for a condition on the driver (WebDriverWait), failing with ``message``."""
        from selenium.common.exceptions import NoSuchElementException, StaleElementReferenceException
        from selenium.webdriver.support.ui import WebDriverWait

        from selenium.common.exceptions import TimeoutException

        wait = WebDriverWait(self.driver, timeout, poll_frequency=poll,
                             ignored_exceptions=(NoSuchElementException, StaleElementReferenceException))
        try:
            return wait.until(condition, message)
        except TimeoutException:
            pytest.fail(f"{message or 'waited in vain'} (after {timeout}s)\n{self.why}", pytrace=False)

    def until_text(self, test_id: str, predicate: Callable[[str], bool], message: str = "", timeout: float = WAIT) -> str:
        """Wait until an element's text satisfies ``predicate``; return the text."""

        def check(driver):
            elements = driver.find_elements(*by_test(test_id))
            return elements and predicate(elements[0].text.strip()) and elements[0].text.strip()

        return self.until(check, message or f"data-test={test_id!r} never showed what was expected", timeout)

    def refresh_until(self, condition: Callable[[], bool], message: str, timeout: float = WAIT) -> None:
        """Reload the page until ``condition`` holds (for server-rendered pages that do not poll)."""

        def reloaded(driver):
            driver.refresh()
            return condition()

        # Each reload asks the daemon's log or the broker again: half a second between them is plenty.
        self.until(reloaded, message, timeout, poll=0.5)

    @property
    def body(self) -> str:
        """The page's visible text."""
        return self.driver.find_element("tag name", "body").text

    @property
    def why(self) -> str:
        """The page shown now and the daemon's last errors, for a failing assertion to say."""
        errors = [line for line in list(self.console.daemon.raw) if "error" in line.lower()][-4:]
        return (f"page {self.driver.current_url}:\n{self.body[:1500]}"
                + "".join(f"\nthe daemon said: {line.strip()[:2000]}" for line in errors))

    @property
    def path(self) -> str:
        """The path of the page shown now."""
        from urllib.parse import urlsplit

        return urlsplit(self.driver.current_url).path

    def cookie(self, name: str) -> str | None:
        """A cookie of the console as the browser holds it."""
        found = self.driver.get_cookie(name)
        return found["value"] if found else None

    # -- the exchange as the console shows it

    def dead_letter_of(self, message_id: str) -> str:
        """Open the dead letters until one of the message shows (the daemon writes it asynchronously); its id."""
        self.open("/dead-letters")
        row = f"//tr[starts-with(@data-test, 'dead-row-')][td[normalize-space(.)='{message_id}']]"

        def listed(driver):
            driver.refresh()
            rows = driver.find_elements("xpath", row)
            return rows[0].get_attribute("data-test").removeprefix("dead-row-") if rows else None

        return self.until(listed, f"no dead letter of {message_id} on the dead letters page", poll=0.5)

    # -- requests the page's own forms would not send

    def csrf_token(self) -> str:
        """The CSRF token of the page shown now (every page with a form carries one)."""
        return self.driver.find_element("css selector", "input[name=csrf_token]").get_attribute("value")

    def post(self, path: str, fields: dict) -> tuple[int, str]:
        """POST a form from inside the page (same origin, the session's cookie): (status, text of the answer)."""
        self.driver.set_script_timeout(WAIT)
        status, text = self.driver.execute_async_script(
            """
            const [path, fields, done] = arguments;
            const body = new URLSearchParams();
            for (const [name, value] of Object.entries(fields)) for (const v of [].concat(value)) body.append(name, v);
            fetch(path, {method: 'POST', body, credentials: 'same-origin'})
              .then(async (r) => done([r.status, await r.text()]))
              .catch((e) => done([0, String(e)]));
            """,
            path, fields,
        )
        return status, text

    def age_session(self, minutes: int) -> None:
        """Make the browser's session look unused for ``minutes``: the cookie re-signed with the console's own key.

        Waiting out a real expiry would take the configured minutes; the cookie is what the console judges.
        """
        from flask import Flask
        from flask.sessions import SecureCookieSessionInterface

        app = Flask("console-session")
        app.secret_key = (self.console.exchange.config_path.parent / "var" / "console-secret").read_bytes()
        serializer = SecureCookieSessionInterface().get_signing_serializer(app)
        cookie = self.driver.get_cookie(SESSION_COOKIE)
        assert cookie, "not signed in: no session cookie"
        data = serializer.loads(cookie["value"])
        data["seen"] = int(data["seen"]) - minutes * 60
        self.driver.delete_cookie(SESSION_COOKIE)
        self.driver.add_cookie({"name": SESSION_COOKIE, "value": serializer.dumps(data), "path": "/",
                                "httpOnly": True, "sameSite": "Strict"})

    # -- downloads and screenshots

    def download(self, test_id: str, suffix: str = ".zip") -> Path:
        """Click a download link and wait until the browser has saved the whole file; return it."""
        before = set(self.downloads.iterdir())
        self.click(test_id)

        def saved(_driver):
            new = [p for p in self.downloads.iterdir() if p not in before and p.name.endswith(suffix)]
            partial = [p for p in self.downloads.iterdir() if p.name.endswith(".crdownload")]
            return new[0] if new and not partial else None

        return self.until(saved, f"the browser saved no {suffix} file after data-test={test_id!r}")

    def screenshot(self, name: str) -> None:
        """Save the whole page to docs/console/<name>.png when EXCHANGER_SCREENSHOTS=1 (never in an ordinary run)."""
        if os.environ.get("EXCHANGER_SCREENSHOTS") != "1":
            return
        import base64

        SCREENSHOTS.mkdir(parents=True, exist_ok=True)
        size = self.driver.execute_cdp_cmd("Page.getLayoutMetrics", {})["cssContentSize"]
        clip = {"x": 0, "y": 0, "width": max(size["width"], WINDOW[0]), "height": min(size["height"], 4000), "scale": 1}
        shot = self.driver.execute_cdp_cmd("Page.captureScreenshot",
                                           {"format": "png", "captureBeyondViewport": True, "clip": clip})
        (SCREENSHOTS / f"{name}.png").write_bytes(base64.b64decode(shot["data"]))


@pytest.fixture
def page(browser, console: Console, downloads: Path) -> Iterator[Page]:
    """The shared browser, signed out, on the module's console."""
    view = Page(browser, console, downloads)
    view.open("/healthz")
    view.sign_out()
    yield view
    view.sign_out()
