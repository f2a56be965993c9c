"""``report``: the management report of a month or a day, from the message log, as HTML and PDF."""

from __future__ import annotations

from pathlib import Path

import click

from exchanger.cli.common import EXIT_CODES_HELP, EXIT_USAGE, fail, pass_settings
from exchanger.cli.log import open_log
from exchanger.config import ConfigError
from exchanger.reports import PeriodError, build_report, parse_report_period
from exchanger.reports.certificates import configured_certificates
from exchanger.transport.url import redact

_FORMATS = {"html": ("html",), "pdf": ("pdf",), "both": ("html", "pdf")}


@click.command(epilog=EXIT_CODES_HELP)
@click.option("--period", required=True, metavar="YYYY-MM|YYYY-MM-DD",
              help="A month (2026-11, broken down by day) or a day (2026-11-05, broken down by hour), UTC.")
@click.option("--out", "out_dir", required=True, type=click.Path(path_type=Path),
              help="The folder to write exchange-report-PERIOD.html and .pdf into (created if need be).")
@click.option("--format", "format_", type=click.Choice(list(_FORMATS)), default="both", show_default=True,
              help="Write the HTML, the PDF, or both.")
@pass_settings
def report(settings, period: str, out_dir: Path, format_: str) -> None:
    """Write the management report of a period: volumes by type, agency and route, acceptance,
    rejection reasons, latency, busiest senders and certificate expiries ahead.

    The figures come from the message log (journal.url), so every instance sharing it gives the same report.
    """
    try:
        certificates = configured_certificates(settings.config_path)
    except ConfigError as exc:
        fail(f"the configuration {settings.config_path} cannot be read:", exc.problems)
    try:
        chosen = parse_report_period(period)
    except PeriodError as exc:
        fail(str(exc), code=EXIT_USAGE)
    store = open_log(settings)
    try:
        files = build_report(store, chosen, out_dir, formats=_FORMATS[format_], certificates=certificates,
                             source=redact(store.url))
    finally:
        store.close()
    figures = files.figures
    if figures.empty:
        click.echo(f"no traffic in {chosen.title}: the report says so")
    else:
        click.echo(f"{chosen.title}: {figures.messages} message(s), {figures.accepted} accepted, "
                   f"{figures.rejected} rejected, {figures.duplicates} duplicate(s), {figures.copies} copies delivered, "
                   f"{figures.resends} resend(s) answered")
    if files.html is not None:
        click.echo(f"HTML {files.html}")
    if files.pdf is not None:
        click.echo(f"PDF  {files.pdf} ({files.pages} page(s))")
    click.echo(f"built in {files.seconds:.1f} s")


COMMANDS = [report]
