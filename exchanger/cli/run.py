"""``exchanger run``: the daemon."""

from __future__ import annotations

import click

from exchanger import logging as exchange_logging
from exchanger.cli.console import console_settings
from exchanger.cli.common import EXIT_BROKER, EXIT_CODES_HELP, has_credentials, pass_settings, read_password
from exchanger.cli.topology import declare_topology
from exchanger.daemon import Supervisor, run_in_process
from exchanger.transport.url import resolve_amqp_url, with_credentials


@click.command(epilog=EXIT_CODES_HELP)
@click.option("--workers", type=click.IntRange(1, 64), default=1, show_default=True, help="Worker processes sharing the inbound queue.")
@click.option("--declare/--no-declare", default=True, show_default=True, help="Declare the queues at start (idempotent).")
@click.option("--json-logs/--console-logs", default=None, help="Log format; default JSON unless on a terminal.")
@click.option("--metrics-port", type=click.IntRange(0, 65535), default=None, help="Port of /metrics, /healthz and /readyz (default: metrics.port in the config, 9464; 0 picks a free one).")
@click.option("--metrics-bind", default=None, help="Address to serve them on (default: metrics.bind, 127.0.0.1).")
@click.option("--watch-config", is_flag=True, help="Also reload when a file the configuration is read from changes.")
@click.option("--console-port", type=click.IntRange(0, 65535), default=None, help="Port of the operators' web console (default: console.port in the config, 8470; 0 picks a free one).")
@click.option("--console-bind", default=None, help="Address the console listens on (default: console.bind, 127.0.0.1).")
@click.option("--no-console", is_flag=True, help="Do not start the operators' web console.")
@pass_settings
def run(settings, workers: int, declare: bool, json_logs: bool | None, metrics_port: int | None,
        metrics_bind: str | None, watch_config: bool, console_port: int | None, console_bind: str | None,
        no_console: bool) -> None:
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
    address = (
        metrics_bind if metrics_bind is not None else config.metrics.bind,
        metrics_port if metrics_port is not None else config.metrics.port,
    )
    console = console_settings(config.console, console_bind, console_port, no_console)
    if workers == 1:
        run_in_process(
            config, url, metrics_address=address, log_level=settings.log_level, json_logs=json_logs, watch=watch_config,
            console=console,
        )
    else:
        supervisor = Supervisor(
            config, url, workers, metrics_address=address, log_level=settings.log_level, json_logs=json_logs,
            watch=watch_config, console=console,
        )
        raise SystemExit(supervisor.run())


COMMANDS = [run]
