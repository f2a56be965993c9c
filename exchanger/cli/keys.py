"""``keys init``: the demo PKI (a CA, the platform, every participant) and broker passwords."""

from __future__ import annotations

import click

from exchanger.cli.common import EXIT_CODES_HELP, fail, pass_settings
from exchanger.config.loader import ConfigError, read_identities
from exchanger.keys.pki import init_demo_pki


@click.group()
def keys() -> None:
    """Keys and certificates of the platform and the participants."""


@keys.command(epilog=EXIT_CODES_HELP)
@click.option("--algorithm", type=click.Choice(["rsa", "ec"]), default="rsa", show_default=True, help="RSA-2048 or ECDSA P-256 keys.")
@click.option("--force", is_flag=True, help="Regenerate everything, even what exists (invalidates issued certificates).")
@pass_settings
def init(settings, algorithm: str, force: bool) -> None:
    """Create the demo PKI for every identity the configuration names (existing files are kept)."""
    try:
        keys_dir, platform, participants, daemon_user = read_identities(settings.config_path)
    except ConfigError as exc:
        fail(f"the configuration {settings.config_path} cannot be read:", exc.problems)
    written = init_demo_pki(keys_dir, [platform, *participants], algorithm=algorithm, force=force, daemon_user=daemon_user)
    click.echo(f"{keys_dir}: {len(written)} file(s) written for {1 + len(participants)} identities (CA, platform {platform[0]}, participants)")


COMMANDS = [keys]
