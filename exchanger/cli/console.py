"""``exchanger console users``: the accounts of the operators' web console."""

from __future__ import annotations

import sys
from dataclasses import replace

import click

from exchanger.cli.common import EXIT_CODES_HELP, fail, pass_settings
from exchanger.config import ConfigError
from exchanger.config.console import ConsoleSettings
from exchanger.config.loader import read_console_settings
from exchanger.console.users import MIN_PASSWORD, ROLES, AccountError, UserStore


def console_settings(configured: ConsoleSettings, bind: str | None, port: int | None, off: bool) -> ConsoleSettings | None:
    """The console's settings with the command line's overrides; None when it is not to start."""
    if off or not configured.enabled:
        return None
    return replace(
        configured,
        bind=bind if bind is not None else configured.bind,
        port=port if port is not None else configured.port,
    )


def _store(settings) -> UserStore:
    try:
        return UserStore(read_console_settings(settings.config_path).users_file)
    except ConfigError as exc:
        fail(f"the configuration {settings.config_path} cannot be used:", exc.problems)


def _stdin_line() -> str:
    return sys.stdin.readline().rstrip("\n")


def _password(prompt: str) -> str:
    password = click.prompt(prompt, hide_input=True, confirmation_prompt=True)
    if len(password) < MIN_PASSWORD:
        fail(f"a password needs at least {MIN_PASSWORD} characters")
    return password


@click.group("console", epilog=EXIT_CODES_HELP)
def console() -> None:
    """The operators' web console (served by `exchanger run`, console: section of the configuration)."""


@console.group("users")
def users() -> None:
    """Console accounts: add, list, remove, passwd."""


@users.command("add")
@click.argument("name")
@click.option("--role", type=click.Choice(ROLES), required=True, help="viewer reads; operator also replays, purges "
              "and changes routes; admin also manages accounts.")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@pass_settings
def add(settings, name: str, role: str, password_stdin: bool) -> None:
    """Add an account NAME with a role; the password is asked twice (or read from stdin)."""
    store = _store(settings)
    password = _stdin_line() if password_stdin else _password("Password")
    try:
        store.add(name, role, password)
    except AccountError as exc:
        fail(str(exc))
    click.echo(f"added {name} ({role}) to {store.path}")


@users.command("list")
@pass_settings
def listing(settings) -> None:
    """List the accounts and their roles."""
    store = _store(settings)
    try:
        accounts = store.users()
    except AccountError as exc:
        fail(str(exc))
    if not accounts:
        click.echo(f"no accounts yet in {store.path}: `exchanger run` creates `admin` with a one-time password")
    for user in accounts:
        note = "  (one-time password, to be changed)" if user.must_change else ""
        click.echo(f"{user.name:<20} {user.role:<9} since {user.created}{note}")


@users.command("remove")
@click.argument("name")
@pass_settings
def remove(settings, name: str) -> None:
    """Remove the account NAME (never the last admin)."""
    store = _store(settings)
    try:
        store.remove(name)
    except AccountError as exc:
        fail(str(exc))
    click.echo(f"removed {name}")


@users.command("passwd")
@click.argument("name")
@click.option("--password-stdin", is_flag=True, help="Read the password from standard input (for scripts).")
@click.option("--temporary", is_flag=True, help="The owner must choose another password at next sign-in.")
@pass_settings
def passwd(settings, name: str, password_stdin: bool, temporary: bool) -> None:
    """Set a new password for NAME (asked twice, or read from stdin)."""
    store = _store(settings)
    password = _stdin_line() if password_stdin else _password("New password")
    try:
        store.set_password(name, password, must_change=temporary)
    except AccountError as exc:
        fail(str(exc))
    click.echo(f"password of {name} changed")


COMMANDS = [console]
