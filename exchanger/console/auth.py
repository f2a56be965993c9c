"""Signing in and out, the session's life, changing one's password, and the role each page needs."""

from __future__ import annotations

import functools
import time
from urllib.parse import urlsplit

from flask import Blueprint, abort, current_app, flash, g, redirect, render_template, request, session, url_for

from exchanger.console import audit
from exchanger.console.users import AccountError

bp = Blueprint("auth", __name__)

# Pages anyone may open: the health check, signing in, and the console's own scripts, styles and (empty) icon.
OPEN_ENDPOINTS = {"health", "favicon", "auth.login", "static"}
# Requests a page makes by itself, which do not keep its session alive.
BACKGROUND_ENDPOINTS = {"dashboard.data"}


def requires(role: str):
    """Let only accounts with this role (or a higher one) use the view; others get the 403 page."""

    def decorate(view):
        @functools.wraps(view)
        def wrapper(*args, **kwargs):
            if not g.user.may(role):
                abort(403, description=role)
            return view(*args, **kwargs)

        return wrapper

    return decorate


def enforce_sign_in():
    """Before every request: a signed-in, unexpired session of an existing account, or the sign-in page."""
    g.user = None
    if request.endpoint in OPEN_ENDPOINTS:
        return None
    name = session.get("user")
    if not name:
        return _to_login()
    limit = current_app.config["CONSOLE"].session_minutes * 60
    user = current_app.config["USERS"].get(name)
    if time.time() - session.get("seen", 0) > limit:
        session.clear()
        flash("Your session expired after "
              f"{current_app.config['CONSOLE'].session_minutes} minutes without use: please sign in again.", "warning")
        return _to_login()
    if user is None or user.stamp != session.get("stamp"):
        session.clear()
        flash("Your account or its password changed: please sign in again.", "warning")
        return _to_login()
    # The dashboard's own polling is not use: a console left open still signs out when nobody looks at it.
    if request.endpoint not in BACKGROUND_ENDPOINTS:
        session["seen"] = int(time.time())
    g.user = user
    if user.must_change and request.endpoint not in ("auth.password", "auth.logout"):
        flash("Choose your own password before going on: the one you signed in with was for one use.", "warning")
        return redirect(url_for("auth.password"))
    return None


def _to_login():
    if request.path.endswith(".json"):
        return {"error": "sign in first", "login": url_for("auth.login")}, 401
    target = request.full_path if request.method == "GET" else None
    return redirect(url_for("auth.login", next=target) if target and target != "/?" else url_for("auth.login"))


def _safe_next(target: str | None) -> str:
    # Only a path on this console: an absolute URL in ?next= would send the operator elsewhere after sign-in.
    if not target or not target.startswith("/") or target.startswith("//") or urlsplit(target).netloc:
        return url_for("dashboard.index")
    return target


@bp.route("/login", methods=["GET", "POST"])
def login():
    """The sign-in form; too many failures for a name or from an address make it wait."""
    if request.method == "GET":
        return render_template("login.html", next=request.args.get("next", ""))
    name = request.form.get("username", "").strip()
    password = request.form.get("password", "")
    address = request.remote_addr or "-"
    throttle = current_app.config["THROTTLE"]
    services = current_app.config["SERVICES"]
    wait = throttle.wait_for(f"user:{name}", f"address:{address}")
    if wait > 0:
        audit.record(services, name or "-", "sign-in-failed", outcome="throttled", details={"address": address})
        message = f"Too many failed sign-ins: wait {int(wait) + 1} seconds before trying again."
        return render_template("login.html", error=message, next=request.form.get("next", ""), username=name), 429
    user = current_app.config["USERS"].verify(name, password) if name and password else None
    if user is None:
        throttle.failed(f"user:{name}", f"address:{address}")
        audit.record(services, name or "-", "sign-in-failed", outcome="refused", details={"address": address})
        return render_template("login.html", error="Wrong account name or password.", next=request.form.get("next", ""),
                               username=name), 401
    throttle.succeeded(f"user:{name}", f"address:{address}")
    session.clear()
    session.permanent = True
    session.update(user=user.name, stamp=user.stamp, seen=int(time.time()))
    audit.record(services, user.name, "sign-in", details={"address": address, "role": user.role})
    return redirect(_safe_next(request.form.get("next")))


@bp.route("/logout", methods=["GET", "POST"])
def logout():
    """Sign out (POST, from the button in every page's header); GET asks to confirm."""
    if request.method == "GET":
        return render_template("logout.html")
    audit.record(current_app.config["SERVICES"], g.user.name, "sign-out")
    session.clear()
    flash("You are signed out.", "info")
    return redirect(url_for("auth.login"))


@bp.route("/account/password", methods=["GET", "POST"])
def password():
    """Change one's own password (required after a one-time password)."""
    if request.method == "GET":
        return render_template("password.html")
    users = current_app.config["USERS"]
    current = request.form.get("current", "")
    new = request.form.get("new", "")
    if users.verify(g.user.name, current) is None:
        return render_template("password.html", error="Your current password is not right."), 400
    if new != request.form.get("repeat", ""):
        return render_template("password.html", error="The new password and its repetition differ."), 400
    if new == current:
        return render_template("password.html", error="Choose a password other than the current one."), 400
    try:
        users.set_password(g.user.name, new)
    except AccountError as exc:
        return render_template("password.html", error=f"{exc}."), 400
    session["stamp"] = users.get(g.user.name).stamp
    flash("Your password is changed.", "info")
    return redirect(url_for("dashboard.index"))
