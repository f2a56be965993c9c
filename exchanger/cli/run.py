"""``exchanger run``: the daemon."""

from __future__ import annotations

import click

from exchanger import logging as exchange_logging
from exchanger.cli.common import EXIT_BROKER, EXIT_CODES_HELP, has_credentials, pass_settings, read_password
from exchanger.cli.topology import declare_topology
from exchanger.daemon import Supervisor, run_in_process
from exchanger.transport.url import resolve_amqp_url, with_credentials


@click.command(epilog=EXIT_CODES_HELP)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Worker processes sharing the inbound queue.")
@click.option("--declare/--no-declare", default=True, show_default=True, help="Declare the queues at start (idempotent).")
@click.option("--json-logs/--console-logs", default=None, help="Log format; default JSON unless on a terminal.")
@pass_settings
def run(settings, workers: int, declare: bool, json_logs: bool | None) -> None:
    """Run the exchange: consume the inbound queue, process and deliver every message.

    SIGTERM or Ctrl-C stops gracefully (in-flight messages are finished and acked);
    SIGHUP reloads the configuration, keeping the running one if the new one fails its checks.
    """
    exchange_logging.configure(settings.log_level, json=json_logs)
    config = settings.load()
    url = resolve_amqp_url(settings.amqp_url)
    if not has_credentials(url):
        url = with_credentials(url, config.broker.daemon_user, read_password(settings, config.broker.daemon_user, config))
    if declare:
        declare_topology(url, config, exit_code=EXIT_BROKER)
    if workers == 1:
        run_in_process(settings.config_path, url, log_level=settings.log_level, json_logs=json_logs)
    else:
        raise SystemExit(
            Supervisor(settings.config_path, url, workers, log_level=settings.log_level, json_logs=json_logs).run()
        )


COMMANDS = [run]
