"""Routes in the console: explain a document, and a route change previewed, refused or applied by the same loader."""

from __future__ import annotations

from io import BytesIO

import pytest
import yaml

from console_fixture import make_console
from exchange_fixture import SAMPLES, write_config
from exchanger.journal.records import OPERATOR_ACTION
from exchanger.journal.store import Query
from exchanger.operations import messages


@pytest.fixture
def editable(tmp_path, exchange):
    """A console on a configuration file of its own, which the test may change."""
    path = write_config(tmp_path, exchange.keys_dir)
    made = make_console(tmp_path, exchange, config_path=path)
    yield made, path
    made.services.close()


def _actions(console):
    records = messages.search(console.services.store(), Query(kinds=(OPERATOR_ACTION,)))
    return [(r.details["action"], r.details["operator"]) for r in records]


def test_explain_a_pasted_or_uploaded_document(editable, exchange):
    console, _ = editable
    console.sign_in("viewer")
    signed = exchange.signed("ent-a", SAMPLES / "customs-declaration/valid.xml")
    pasted = console.post("/routes/explain", {"text": signed.decode()})
    text = pasted.get_data(as_text=True)
    assert pasted.status_code == 200 and 'data-test="explain-deliveries"' in text and "customs" in text
    assert "Signature: verified, signed by ent-a" in text
    token = console.csrf("/routes/explain")
    uploaded = console.client.post("/routes/explain", data={"csrf_token": token,
                                                           "document": (BytesIO(b"<not-xml"), "broken.xml")},
                                   content_type="multipart/form-data")
    assert uploaded.status_code in (200, 400)
    assert 'data-test="explain-rejected"' in uploaded.get_data(as_text=True) or \
        'data-test="explain-error"' in uploaded.get_data(as_text=True)
    empty = console.post("/routes/explain", {"text": "  "})
    assert empty.status_code == 400 and "both were empty" in empty.get_data(as_text=True)


def test_a_malformed_route_edit_shows_every_problem_and_changes_nothing(editable):
    console, path = editable
    before = path.read_text()
    console.sign_in("operator")
    assert 'data-test="route-edit-text"' in console.client.get("/routes/edit").get_data(as_text=True)
    data = yaml.safe_load(before)
    data["routes"][0]["deliverr"] = ["customs"]
    data["routes"][1]["to"] = ["nobody-known"]
    broken = yaml.safe_dump(data, sort_keys=False)
    for action in ("preview", "apply"):
        response = console.post("/routes/edit", {"text": broken, "base": before, "action": action})
        text = response.get_data(as_text=True)
        assert response.status_code == 422, action
        assert text.count('data-test="route-problem"') >= 2, text
        assert "deliverr" in text and "nobody-known" in text
    assert 'data-test="route-refused"' in text
    unparsable = console.post("/routes/edit", {"text": "routes: [\n", "base": before, "action": "apply"})
    assert unparsable.status_code == 422 and 'data-test="route-problem"' in unparsable.get_data(as_text=True)
    assert path.read_text() == before and console.reloads == []
    assert ("route-change-refused", "operator") in _actions(console)


def test_a_route_change_is_previewed_then_applied_and_reloaded(editable):
    console, path = editable
    before = path.read_text()
    console.sign_in("operator")
    data = yaml.safe_load(before)
    removed = data["routes"].pop(0)
    changed = yaml.safe_dump(data, sort_keys=False)
    preview = console.post("/routes/edit", {"text": changed, "base": before, "action": "preview"})
    text = preview.get_data(as_text=True)
    assert preview.status_code == 200 and 'data-test="route-preview-ok"' in text
    assert f"- route {removed['id']}" in text
    assert path.read_text() == before
    applied = console.post("/routes/edit", {"text": changed, "base": before, "action": "apply"})
    assert applied.status_code == 302 and applied.headers["Location"] == "/routes"
    assert yaml.safe_load(path.read_text())["routes"] == data["routes"]
    assert console.reloads == [1]
    assert "previous version is kept" in console.client.get("/routes").get_data(as_text=True)
    assert ("route-change", "operator") in _actions(console)
    # A second edit started from the old text is refused: someone changed the file meanwhile.
    stale = console.post("/routes/edit", {"text": before, "base": before, "action": "apply"})
    assert stale.status_code == 422


def test_the_edit_needs_the_operator_role_and_its_form_token(editable):
    console, path = editable
    before = path.read_text()
    console.sign_in("viewer")
    assert console.client.get("/routes/edit").status_code == 403
    console.client.post("/logout", data={"csrf_token": console.csrf("/")})
    console.sign_in("operator")
    forged = console.client.post("/routes/edit", data={"text": "version: 1\n", "action": "apply"})
    assert forged.status_code == 400 and path.read_text() == before
