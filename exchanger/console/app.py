"""The console's Flask application: sign-in on every page but /healthz, CSRF on every change, clear error pages."""

from __future__ import annotations

import os
import secrets
from datetime import timedelta
from pathlib import Path

from flask import Flask, g, render_template, request
from flask_wtf.csrf import CSRFError, CSRFProtect

from exchanger.config.console import ConsoleSettings
from exchanger.console import auth
from exchanger.console.figures import Sampler
from exchanger.console.services import ConsoleServices
from exchanger.console.throttle import Throttle
from exchanger.console.users import UserStore

ROLE_WORDS = {
    "viewer": "viewer (reading)",
    "operator": "operator (replay, purge and route changes)",
    "admin": "admin (accounts)",
}


def secret_key(path: Path) -> bytes:
    """The key that signs session cookies: made once, kept in a file only the daemon's user can read."""
    try:
        key = path.read_bytes()
        if len(key) >= 32:
            return key
    except FileNotFoundError:
        pass
    path.parent.mkdir(parents=True, exist_ok=True)
    key = secrets.token_bytes(32)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "wb") as out:
        out.write(key)
    os.chmod(path, 0o600)
    return key


def create_app(settings: ConsoleSettings, services: ConsoleServices) -> Flask:
    """The console, for the daemon's server thread or a test client."""
    app = Flask(__name__)
    app.config.update(
        SECRET_KEY=secret_key(settings.secret_file),
        SESSION_COOKIE_NAME="exchanger_console",
        SESSION_COOKIE_HTTPONLY=True,
        SESSION_COOKIE_SAMESITE="Strict",
        SESSION_COOKIE_SECURE=settings.tls,
        PERMANENT_SESSION_LIFETIME=timedelta(minutes=settings.session_minutes),
        MAX_CONTENT_LENGTH=settings.max_upload_bytes,
        # A form's token lives as long as the session that shows it.
        WTF_CSRF_TIME_LIMIT=None,
        WTF_CSRF_SSL_STRICT=settings.tls,
        CONSOLE=settings,
        SERVICES=services,
        USERS=UserStore(settings.users_file),
        THROTTLE=Throttle(),
        SAMPLER=Sampler(services),
    )
    CSRFProtect(app)
    app.before_request(auth.enforce_sign_in)
    _register_pages(app)
    _register_errors(app, settings)

    @app.get("/healthz")
    def health():
        """Alive: the only page that answers without sign-in."""
        return {"alive": True}

    @app.get("/favicon.ico")
    def favicon():
        """No icon: an empty answer, so browsers stop asking."""
        return "", 204

    @app.context_processor
    def globals_for_pages():
        return {"user": g.get("user"), "platform": services.config.platform, "tls": settings.tls}

    @app.after_request
    def headers(response):
        # The console's pages use only their own scripts and styles, and are never framed.
        response.headers.setdefault(
            "Content-Security-Policy",
            "default-src 'self'; img-src 'self' data:; style-src 'self'; frame-ancestors 'none'; form-action 'self'",
        )
        response.headers.setdefault("X-Frame-Options", "DENY")
        response.headers.setdefault("X-Content-Type-Options", "nosniff")
        response.headers.setdefault("Referrer-Policy", "same-origin")
        if settings.tls:
            response.headers.setdefault("Strict-Transport-Security", "max-age=31536000")
        if request.endpoint != "static":
            response.headers.setdefault("Cache-Control", "no-store")
        return response

    return app


def _register_pages(app: Flask) -> None:
    from exchanger.console import accounts, dashboard, dead_letters, messages, reports, routes

    app.register_blueprint(auth.bp)
    for module in (dashboard, messages, dead_letters, routes, reports, accounts):
        app.register_blueprint(module.bp)


def _register_errors(app: Flask, settings: ConsoleSettings) -> None:
    def page(status: int, title: str, message: str, hint: str | None = None):
        return render_template("error.html", status=status, title=title, message=message, hint=hint), status

    @app.errorhandler(CSRFError)
    def csrf_refused(error):
        return page(400, "Form refused", "This form was not sent from a page of this console, or its page is too old "
                    f"({error.description}). Nothing was changed.", "Open the page again and repeat the action.")

    @app.errorhandler(403)
    def forbidden(error):
        role = ROLE_WORDS.get(error.description, error.description)
        return page(403, "Not allowed", f"This needs the role {role}; your account {g.user.name!r} is {g.user.role}. "
                    "Nothing was changed.", "Ask an admin for the role if your work needs it.")

    @app.errorhandler(404)
    def not_found(error):
        return page(404, "Not found", error.description or "There is no such page.")

    @app.errorhandler(503)
    def unavailable(error):
        return page(503, "Not available now", error.description, "Try again once the broker is back.")

    @app.errorhandler(413)
    def too_large(_error):
        limit = settings.max_upload_bytes // 1024
        return page(413, "Upload too large", f"The upload is larger than the console accepts ({limit} KB). "
                    "Nothing was changed.", "Send a smaller file, or raise console.max_upload_kb in routes.yaml.")

    @app.errorhandler(500)
    def failed(_error):
        return page(500, "Something failed", "The console could not complete this request; the daemon's log has "
                    "the details (event console.error).")
