"""Dead letters: browse with filters (never consuming one), show reasons and original bytes, replay and purge."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import pika.exceptions
from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, url_for

from exchanger.console.audit import operator
from exchanger.console.auth import requires
from exchanger.errors import ExchangerError
from exchanger.operations.dead_letters import DeadLetterDesk, DeadLetterFilter, DeadLetterStreamError

bp = Blueprint("dead_letters", __name__, url_prefix="/dead-letters")

FIELDS = ("reason", "sender", "message_type", "since", "until")
LIMIT = 500
_AGE = re.compile(r"^(\d+)([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


class FilterProblem(ExchangerError):
    """A filter the page cannot use."""


def _desk() -> DeadLetterDesk:
    services = current_app.config["SERVICES"]
    return DeadLetterDesk(services.config, services.amqp_url, services.store(), client_name="exchanger console")


def _age(text: str, label: str) -> float | None:
    if not text:
        return None
    match = _AGE.match(text)
    if not match:
        raise FilterProblem(f"{label}: {text!r} is not a duration such as 30m, 12h or 7d")
    return time.time() - int(match.group(1)) * _SECONDS[match.group(2)]


def filters_from(form: dict) -> DeadLetterFilter:
    """The page's filter fields as the desk's filter (ages become moments)."""
    return DeadLetterFilter(
        reason=form.get("reason") or None, sender=form.get("sender") or None,
        message_type=form.get("message_type") or None,
        since=_age(form.get("since", ""), "dead at most"), until=_age(form.get("until", ""), "dead at least"),
        limit=LIMIT,
    )


def when(epoch: float | None) -> str:
    """A dead letter's time as people read it."""
    if epoch is None:
        return "unknown time"
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def who(letter) -> str:
    """The participant a dead letter came from, with its broker user when that is another name."""
    if not letter.sender:
        return "?"
    participant = current_app.config["SERVICES"].config.registry.by_user(letter.sender)
    if participant is None or participant.id == letter.sender:
        return letter.sender
    return f"{participant.id} (broker user {letter.sender})"


def _broker_trouble(exc: Exception) -> str:
    hints = getattr(exc, "hints", [])
    return f"The dead letters cannot be read: {exc or type(exc).__name__}." + "".join(f" {h}." for h in hints)


@bp.get("")
def browse():
    """The pending dead letters matching the filters (reading removes nothing)."""
    form = {name: request.args.get(name, "").strip() for name in FIELDS}
    try:
        letters = _desk().browse(filters_from(form))
    except FilterProblem as exc:
        return render_template("dead_letters.html", form=form, letters=[], error=str(exc), when=when, limit=LIMIT), 400
    except (DeadLetterStreamError, pika.exceptions.AMQPError) as exc:
        return render_template("dead_letters.html", form=form, letters=[], error=_broker_trouble(exc), when=when,
                               limit=LIMIT), 503
    return render_template("dead_letters.html", form=form, letters=letters, when=when, limit=LIMIT, who=who)


@bp.get("/<letter_id>")
def show(letter_id: str):
    """One dead letter: every reason, and its original bytes (shown as text, escaped)."""
    try:
        letter = _desk().find(letter_id)
    except (DeadLetterStreamError, pika.exceptions.AMQPError) as exc:
        abort(503, description=_broker_trouble(exc))
    if letter is None:
        abort(404, description=f"There is no pending dead letter {letter_id!r} (replayed or purged ones are settled).")
    return render_template("dead_letter.html", letter=letter, when=when, who=who, text=letter.body.decode("utf-8", "replace"))


def _act(kind: str):
    ids = [i for i in request.form.getlist("ids") if i] or [i for i in [request.form.get("id")] if i]
    if not ids:
        flash("Choose at least one dead letter first: nothing was replayed or purged.", "error")
        return redirect(url_for("dead_letters.browse"))
    desk = _desk()
    try:
        if kind == "replay":
            results = desk.replay(ids, operator(g.user.name))
        else:
            results = desk.purge(ids, operator(g.user.name))
    except (ExchangerError, pika.exceptions.AMQPError) as exc:
        flash(f"Nothing was {kind}d: {exc}", "error")
        return redirect(url_for("dead_letters.browse"))
    for result in results:
        why = getattr(result, "why", None)
        flash(f"{result.letter.id}: {result.outcome}{f' ({why})' if why else ''}.",
              "info" if result.outcome in ("replayed", "purged") else "warning")
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
