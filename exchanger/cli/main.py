"""The ``exchanger`` command group and its shared options."""

from __future__ import annotations

from pathlib import Path

import click

from exchanger import __version__
from exchanger.cli import (
    console, dead, documents, envelopes, evidence, keys, links, log, mailbox, routes, run, status, topology,
)
from exchanger.cli import report as management_report
from exchanger.cli.common import EXIT_CODES_HELP, Settings, default_config
from exchanger.cli.errors import report
from exchanger.logging import LEVELS


class ExchangerGroup(click.Group):
    """The command group that ends every command on an operator's message and a documented exit code."""

    def invoke(self, ctx: click.Context):
        """Run the command; tell any error it ends on as `error: ...` on stderr (see cli/errors.py)."""
        try:
            return super().invoke(ctx)
        except (click.exceptions.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise  # click's own: usage errors (exit 2), --help, Ctrl-C
        except Exception as exc:  # noqa: BLE001  (every error, a bug too, ends in a message, not a traceback)
            ctx.exit(report(exc, ctx.obj))


@click.group(cls=ExchangerGroup, epilog=EXIT_CODES_HELP, context_settings={"help_option_names": ["-h", "--help"]})
@click.option(
    "--config",
    "config_path",
    type=click.Path(dir_okay=False, path_type=Path),
    default=default_config,
    show_default="routes.yaml, or $EXCHANGER_CONFIG",
    help="The exchange configuration (participants, catalogue, routes).",
)
@click.option(
    "--amqp-url",
    envvar="EXCHANGER_AMQP_URL",
    default=None,
    help="Broker URL (or $EXCHANGER_AMQP_URL); default amqp://127.0.0.1:5672/%2F. "
    "Without a user in it, each command connects as the identity it acts for.",
)
@click.option("--log-level", type=click.Choice(LEVELS), default="info", show_default=True)
@click.version_option(__version__, prog_name="exchanger")
@click.pass_context
def main(ctx: click.Context, config_path: Path, amqp_url: str | None, log_level: str) -> None:
    """exchanger: the message-exchange hub of an electronic port.

    Enterprises lodge signed XML declarations once; the exchange validates them against
    their XSD, verifies the sender's signature and identity, routes them by routes.yaml,
    signs what it forwards, and delivers to every agency entitled to them, with a signed
    receipt back to the sender.
    """
    ctx.obj = Settings(config_path=config_path, amqp_url=amqp_url, log_level=log_level)


for module in (run, status, topology, links, mailbox, documents, envelopes, routes, dead, log, evidence, keys,
               management_report, console):
    for command in module.COMMANDS:
        main.add_command(command)
