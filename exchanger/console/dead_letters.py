"""Dead letters: browse with filters (never consuming one), show reasons and original bytes, replay and purge."""

from __future__ import annotations

from datetime import datetime, timezone

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for

from exchanger.console.audit import operator
from exchanger.console.auth import requires

bp = Blueprint("dead_letters", __name__, url_prefix="/dead-letters")

FILTERS = ("reason", "sender", "message_type", "since", "until")


def _desk():
    from exchanger.operations.dead_letters import DeadLetterDesk

    services = current_app.config["SERVICES"]
    return DeadLetterDesk(services.config, services.amqp_url, services.store())


def when(epoch: float | None) -> str:
    """A dead letter's time as people read it."""
    if epoch is None:
        return "unknown time"
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


@bp.get("")
def browse():
    """The pending dead letters matching the filters (reading removes nothing)."""
    from exchanger.operations.dead_letters import DeadLetterFilter

    form = {name: request.args.get(name, "").strip() for name in FILTERS}
    try:
        filters = DeadLetterFilter.parse(**form)
    except ValueError as exc:
        return render_template("dead_letters.html", form=form, letters=[], error=str(exc), when=when), 400
    letters = _desk().browse(filters)
    return render_template("dead_letters.html", form=form, letters=letters, when=when)


@bp.get("/<letter_id>")
def show(letter_id: str):
    """One dead letter: every reason, its headers, and its original bytes (shown as text, escaped)."""
    letter = _desk().find(letter_id)
    if letter is None:
        abort(404, description=f"There is no pending dead letter {letter_id!r} (replayed or purged ones are gone).")
    return render_template("dead_letter.html", letter=letter, when=when,
                           text=letter.body.decode("utf-8", "replace"))


def _act(kind: str):
    ids = request.form.getlist("ids") or [i for i in [request.form.get("id")] if i]
    if not ids:
        flash("Choose at least one dead letter first.", "error")
        return redirect(url_for("dead_letters.browse"))
    desk = _desk()
    act = desk.replay if kind == "replay" else desk.purge
    results = act(ids, operator(g.user.name))
    for result in results:
        ok = getattr(result, "ok", True)
        flash(f"{kind} {getattr(result, 'letter_id', '')}: {getattr(result, 'detail', 'done')}", "info" if ok else "error")
    return redirect(url_for("dead_letters.browse"))


@bp.post("/replay")
@requires("operator")
def replay():
    """Publish the chosen dead letters to the inbound queue again (after a fix)."""
    return _act("replay")


@bp.post("/purge")
@requires("operator")
def purge():
    """Settle the chosen dead letters as purged: they leave the pending list for good."""
    return _act("purge")
