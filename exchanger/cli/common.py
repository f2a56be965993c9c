"""What every command shares: the options for config and broker, exit codes, and error output."""

from __future__ import annotations

import functools
import os
import sys
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

import click

from exchanger import logging as exchange_logging
from exchanger.config import ConfigError, load_config

# Exit codes, documented in ``exchanger --help`` and the README.
EXIT_OK = 0
EXIT_FAILED = 1  # the checked thing is bad: invalid document, bad signature, broken config
EXIT_USAGE = 2  # wrong options or arguments (click's own code), an AMQP URL that cannot be used
EXIT_BROKER = 3  # the broker could not be reached, refused the login or the request, or did not confirm
EXIT_INCOMPLETE = 4  # fewer messages arrived than asked for
EXIT_FILE = 5  # a file the command needs (other than the configuration) cannot be read or written
EXIT_INTERNAL = 70  # a bug: an error the exchange did not expect (EX_SOFTWARE)

EXIT_CODES_HELP = """\b
Exit codes:
  0  success
  1  the checked thing is bad (invalid document, bad signature, configuration
     missing, malformed or failing its checks)
  2  usage error (wrong option or argument, an AMQP URL that cannot be used)
  3  the broker could not be reached, refused the login or the request, or did not confirm
  4  receive: fewer messages arrived than --count asked for
  5  a file the command needs cannot be read or written (e.g. the TLS CA file)
  70 an unexpected internal error (a bug: please report it)
"""


@dataclass
class Settings:
    """The shared options, resolved once per invocation."""

    config_path: Path
    amqp_url: str | None
    log_level: str

    def load(self):
        """Load and check the configuration, or exit 1 printing every problem."""
        try:
            return load_config(self.config_path)
        except ConfigError as exc:
            fail(f"the configuration {self.config_path} cannot be used:", exc.problems)


def fail(message: str, details: list[str] | None = None, code: int = EXIT_FAILED):
    """Print an actionable error to stderr and exit with ``code``."""
    click.secho(f"error: {message}", fg="red", err=True)
    for line in details or ():
        click.echo(f"  - {line}", err=True)
    sys.exit(code)


def has_credentials(url: str) -> bool:
    """True when an AMQP URL names its own user."""
    return bool(urlsplit(url).username)


def read_password(settings: Settings, user: str, config=None) -> str:
    """The generated broker password of a participant or of the daemon, from ``keys/``."""
    keys_dir = config.keys_dir if config is not None else settings.config_path.resolve().parent / "keys"
    path = keys_dir / user / "amqp-password"
    try:
        return path.read_text().strip()
    except OSError:
        fail(f"no broker password for {user!r} at {path}", ["run `exchanger keys init` and `exchanger topology apply`"])


def pass_settings(command):
    """Give a command the resolved Settings as its first argument."""

    @click.pass_obj
    @functools.wraps(command)
    def wrapper(settings, *args, **kwargs):
        return command(settings, *args, **kwargs)

    return wrapper


def default_config() -> str:
    """The configuration file used when --config is not given."""
    return os.environ.get("EXCHANGER_CONFIG", "routes.yaml")


def configure_logging(level: str) -> None:
    """Set up structured logging for a command."""
    exchange_logging.configure(level)
