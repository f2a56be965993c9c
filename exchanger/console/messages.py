"""Messages: search the log, one message's trace timeline, and its evidence bundle."""

from __future__ import annotations

import re

from flask import Blueprint, Response, abort, current_app, g, render_template, request

from exchanger.console.audit import operator
from exchanger.journal.period import parse_moment, stamp
from exchanger.journal.store import Query
from exchanger.journal.timeline import KIND_OF_STATUS, event_lines, when
from exchanger.operations import messages as operations
from exchanger.operations.evidence import EvidenceError, export_bundle

bp = Blueprint("messages", __name__, url_prefix="/messages")

LIMIT = 200
FIELDS = ("message_id", "sender", "receiver", "message_type", "status", "operator", "since", "until")


def _moment(value: str, label: str, problems: list[str]) -> str | None:
    if not value:
        return None
    try:
        return stamp(parse_moment(value))
    except ValueError as exc:
        problems.append(f"{label}: {exc}")
        return None


def _query(form: dict, problems: list[str]) -> Query | None:
    status = form.get("status") or ""
    if status and status not in KIND_OF_STATUS:
        problems.append(f"status: {status!r} is not one of {', '.join(sorted(KIND_OF_STATUS))}")
    since = _moment(form.get("since", ""), "since", problems)
    until = _moment(form.get("until", ""), "until", problems)
    if problems:
        return None
    return Query(
        message_id=form.get("message_id") or None,
        sender=form.get("sender") or None,
        receiver=form.get("receiver") or None,
        message_type=form.get("message_type") or None,
        kinds=(KIND_OF_STATUS[status],) if status else (),
        operator=form.get("operator") or None,
        since=since,
        until=until,
        limit=LIMIT,
        newest_first=True,
    )


@bp.get("")
def search():
    """The search form and, when it was filled in, the matching messages (newest first)."""
    form = {name: request.args.get(name, "").strip() for name in FIELDS}
    problems: list[str] = []
    records = None
    if any(form.values()) or request.args.get("all"):
        query = _query(form, problems)
        if query is not None:
            records = operations.search(current_app.config["SERVICES"].store(), query)
    return render_template("messages.html", form=form, records=records, problems=problems,
                           statuses=sorted(KIND_OF_STATUS), limit=LIMIT, when=when, event_lines=event_lines)


@bp.get("/<sender>/<message_id>")
def trace(sender: str, message_id: str):
    """One message's life: received, every stage, routing, deliveries, receipts, operators' actions."""
    found = operations.trace(current_app.config["SERVICES"].store(), message_id, None if sender == "-" else sender)
    if not found.found:
        abort(404, description=f"The message log holds no message {message_id!r} from {sender!r}.")
    return render_template("trace.html", trace=found, sender=sender, when=when, event_lines=event_lines)


@bp.post("/<sender>/<message_id>/evidence")
def evidence(sender: str, message_id: str):
    """The message's evidence bundle (.zip): originals, copies, receipts, log records with their chain path.

    A POST with the form's token, as the export is itself recorded in the log under the operator's name.
    """
    services = current_app.config["SERVICES"]
    store = services.store()
    # Signing a checkpoint now uses the platform key: that is the operator's to decide.
    sign_now = request.form.get("sign_checkpoint") == "1" and g.user.may("operator")
    try:
        bundle = export_bundle(store, services.config, message_id, None if sender == "-" else sender,
                               operator(g.user.name), sign_checkpoint=sign_now)
    except EvidenceError as exc:
        found = operations.trace(store, message_id, None if sender == "-" else sender)
        if not found.found:
            abort(404, description=f"{exc}.")
        return render_template("trace.html", trace=found, sender=sender, when=when, event_lines=event_lines,
                               evidence_error=str(exc)), 409
    name = re.sub(r"[^A-Za-z0-9._-]", "_", f"evidence-{sender}-{message_id}") + ".zip"
    return Response(bundle, mimetype="application/zip", headers={"Content-Disposition": f'attachment; filename="{name}"'})
