"""Accounts (admin role): who may use the console and with which role."""

from __future__ import annotations

import secrets

from flask import Blueprint, current_app, flash, g, redirect, render_template, request, url_for

from exchanger.console import audit
from exchanger.console.auth import requires
from exchanger.console.users import ROLES, AccountError

bp = Blueprint("accounts", __name__, url_prefix="/accounts")


@bp.get("")
@requires("admin")
def listing():
    """Every account, with forms to add one, change a role, reset a password or remove one."""
    return render_template("accounts.html", users=current_app.config["USERS"].users(), roles=ROLES)


@bp.post("")
@requires("admin")
def add():
    """Add an account with a one-time password shown once to the admin."""
    name = request.form.get("name", "").strip()
    role = request.form.get("role", "")
    password = secrets.token_urlsafe(12)
    try:
        current_app.config["USERS"].add(name, role, password, must_change=True)
    except AccountError as exc:
        return render_template("accounts.html", users=current_app.config["USERS"].users(), roles=ROLES,
                               error=f"{exc}."), 400
    audit.record(current_app.config["SERVICES"], g.user.name, "account-add", details={"account": name, "role": role})
    return render_template("accounts.html", users=current_app.config["USERS"].users(), roles=ROLES,
                           created=(name, password))


@bp.post("/<name>/role")
@requires("admin")
def role(name: str):
    """Change an account's role."""
    try:
        current_app.config["USERS"].set_role(name, request.form.get("role", ""))
    except AccountError as exc:
        flash(f"{exc}.", "error")
        return redirect(url_for("accounts.listing"))
    audit.record(current_app.config["SERVICES"], g.user.name, "account-role",
                 details={"account": name, "role": request.form.get("role")})
    flash(f"{name} is now {request.form.get('role')}.", "info")
    return redirect(url_for("accounts.listing"))


@bp.post("/<name>/remove")
@requires("admin")
def remove(name: str):
    """Remove an account (never the last admin)."""
    try:
        current_app.config["USERS"].remove(name)
    except AccountError as exc:
        flash(f"{exc}.", "error")
        return redirect(url_for("accounts.listing"))
    audit.record(current_app.config["SERVICES"], g.user.name, "account-remove", details={"account": name})
    flash(f"The account {name} is removed.", "info")
    return redirect(url_for("accounts.listing"))
