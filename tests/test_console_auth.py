"""The console lets in only signed-in accounts, for as long as their session lasts, and only to what their role allows."""

from __future__ import annotations

import os
import stat

import pytest

from console_fixture import PASSWORD, make_console
from exchanger.journal.records import OPERATOR_ACTION
from exchanger.journal.store import Query
from exchanger.operations import messages


@pytest.fixture
def console(tmp_path, exchange):
    made = make_console(tmp_path, exchange)
    yield made
    made.services.close()


def _actions(console, name):
    records = messages.search(console.services.store(), Query(kinds=(OPERATOR_ACTION,), operator=name))
    return [(r.details["action"], r.details["outcome"], r.details["via"]) for r in records]


def test_only_healthz_answers_without_sign_in(console):
    assert console.client.get("/healthz").get_json() == {"alive": True}
    for path in ("/", "/messages", "/dead-letters", "/routes", "/routes/edit", "/reports", "/accounts", "/nowhere"):
        response = console.client.get(path)
        assert response.status_code == 302 and "/login" in response.headers["Location"], path
    assert console.client.get("/dashboard.json").status_code == 401


def test_sign_in_and_out_are_recorded_under_the_operators_name(console):
    response = console.sign_in("viewer", next="/routes")
    assert response.status_code == 302 and response.headers["Location"] == "/routes"
    page = console.client.get("/").get_data(as_text=True)
    assert 'data-test="signed-in-user">viewer<' in page
    assert console.post("/logout", {}, page="/").status_code == 302
    assert console.client.get("/").status_code == 302
    assert _actions(console, "viewer") == [("sign-in", "done", "console"), ("sign-out", "done", "console")]
    console.sign_in("admin")
    found = console.client.get("/messages?operator=viewer").get_data(as_text=True)
    assert found.count('data-test="search-row"') == 2 and "sign-out by viewer via console: done" in found


def test_a_wrong_password_is_told_in_the_page_and_recorded(console):
    response = console.sign_in("operator", "not the password")
    assert response.status_code == 401
    assert "Wrong account name or password." in response.get_data(as_text=True)
    assert console.client.get("/").status_code == 302
    assert _actions(console, "operator") == [("sign-in-failed", "refused", "console")]


def test_a_next_address_elsewhere_is_not_followed(console):
    response = console.sign_in("viewer", next="//elsewhere.example/")
    assert response.headers["Location"] == "/"


def test_repeated_failures_make_the_account_wait_even_with_the_right_password(console):
    for _ in range(5):
        assert console.sign_in("admin", "wrong password!").status_code == 401
    response = console.sign_in("admin")
    assert response.status_code == 429
    assert "Too many failed sign-ins" in response.get_data(as_text=True)
    # Another account from another address is not held up by it.
    other = console.client.post("/login", data={"username": "viewer", "password": PASSWORD,
                                                "csrf_token": console.csrf()},
                                environ_base={"REMOTE_ADDR": "10.0.0.9"})
    assert other.status_code == 302


def test_a_form_without_its_token_is_refused_and_changes_nothing(console):
    console.sign_in("admin")
    response = console.client.post("/accounts", data={"name": "mallory", "role": "admin"})
    assert response.status_code == 400
    assert "Form refused" in response.get_data(as_text=True)
    assert console.users.get("mallory") is None
    forged = console.client.post("/login", data={"username": "viewer", "password": PASSWORD})
    assert forged.status_code == 400


def test_an_idle_session_expires_with_a_message(console):
    console.sign_in("viewer")
    assert console.client.get("/routes").status_code == 200
    with console.client.session_transaction() as session:
        session["seen"] -= 31 * 60
    response = console.client.get("/routes")
    assert response.status_code == 302 and "/login" in response.headers["Location"]
    page = console.client.get(response.headers["Location"]).get_data(as_text=True)
    assert "Your session expired after 30 minutes without use" in page


def test_the_dashboards_polling_does_not_keep_an_idle_session_alive(console):
    console.sign_in("viewer")
    with console.client.session_transaction() as session:
        session["seen"] -= 29 * 60
    assert console.client.get("/dashboard.json").status_code == 200
    with console.client.session_transaction() as session:
        session["seen"] -= 2 * 60
    expired = console.client.get("/dashboard.json")
    assert expired.status_code == 401 and expired.get_json()["login"] == "/login"


def test_a_changed_password_ends_the_other_sessions(console, exchange, tmp_path):
    console.sign_in("viewer")
    console.users.set_password("viewer", "another long password")
    response = console.client.get("/routes")
    assert response.status_code == 302


def test_missing_role_gets_the_403_page(console):
    console.sign_in("viewer")
    for path in ("/routes/edit", "/accounts"):
        response = console.client.get(path)
        assert response.status_code == 403, path
        text = response.get_data(as_text=True)
        assert "Not allowed" in text and "your account &#39;viewer&#39; is viewer" in text
    replay = console.post("/dead-letters/replay", {"ids": "x"}, page="/routes")
    assert replay.status_code == 403


def test_first_start_makes_an_admin_who_must_choose_a_password(tmp_path, exchange):
    console = make_console(tmp_path, exchange, roles=())
    one_time = console.users.ensure_first_admin()
    assert one_time and console.users.ensure_first_admin() is None
    response = console.sign_in("admin", one_time)
    assert response.status_code == 302
    forced = console.client.get("/")
    assert forced.status_code == 302 and forced.headers["Location"] == "/account/password"
    token = console.csrf("/account/password")
    short = console.client.post("/account/password", data={"current": one_time, "new": "short", "repeat": "short",
                                                          "csrf_token": token})
    assert short.status_code == 400 and "at least 10 characters" in short.get_data(as_text=True)
    done = console.client.post("/account/password", data={"current": one_time, "new": "my own password",
                                                         "repeat": "my own password", "csrf_token": token})
    assert done.status_code == 302
    assert console.client.get("/").status_code == 200
    assert console.users.verify("admin", "my own password") is not None
    assert console.users.verify("admin", one_time) is None
    console.services.close()


def test_cookies_and_secret_are_kept_tight(tmp_path, exchange):
    console = make_console(tmp_path, exchange, tls=True)
    response = console.sign_in("viewer")
    cookie = response.headers["Set-Cookie"]
    assert "HttpOnly" in cookie and "SameSite=Strict" in cookie and "Secure" in cookie
    assert stat.S_IMODE(os.stat(console.settings.secret_file).st_mode) == 0o600
    assert stat.S_IMODE(os.stat(console.settings.users_file).st_mode) == 0o600
    assert "argon2id" in console.settings.users_file.read_text()
    assert PASSWORD not in console.settings.users_file.read_text()
    console.services.close()


def test_an_oversized_upload_is_refused_with_the_limit(console):
    console.sign_in("viewer")
    token = console.csrf("/routes/explain")
    big = b"<x>" + b"a" * (80 * 1024) + b"</x>"
    from io import BytesIO

    response = console.client.post("/routes/explain", data={"csrf_token": token, "document": (BytesIO(big), "big.xml")},
                                   content_type="multipart/form-data")
    assert response.status_code == 413
    assert "larger than the console accepts (64 KB)" in response.get_data(as_text=True)
