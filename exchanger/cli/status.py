"""``exchanger status``: readiness and the main figures of a running exchange, at a glance."""

from __future__ import annotations

import json
import urllib.error
import urllib.request
from collections import defaultdict

import click
from prometheus_client.parser import text_string_to_metric_families

from exchanger.cli.common import EXIT_BROKER, EXIT_CODES_HELP, EXIT_FAILED, EXIT_USAGE, fail, pass_settings
from exchanger.config.loader import ConfigError, read_metrics_address
from exchanger.transport.links import link_name
from exchanger.transport.names import mailbox_queue


def _get(url: str) -> tuple[int, bytes]:
    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:  # 503 from /readyz still has the body we want
        return exc.code, exc.read()


def _samples(text: str) -> dict[str, list]:
    found = defaultdict(list)
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            found[sample.name].append(sample)
    return found


@click.command(epilog=EXIT_CODES_HELP)
@click.option("--url", default=None, help="The daemon's HTTP endpoint (default: from the config's metrics section).")
@pass_settings
def status(settings, url: str | None) -> None:
    """Show whether the running exchange is ready, and its main figures (exit 1 when not ready)."""
    if url is None:
        try:
            bind, port = read_metrics_address(settings.config_path)
        except ConfigError as exc:
            fail(f"the configuration {settings.config_path} cannot be read:", exc.problems)
        url = f"http://{'127.0.0.1' if bind in ('0.0.0.0', '') else bind}:{port}"
    try:
        code, body = _get(f"{url}/readyz")
        _, metrics_text = _get(f"{url}/metrics")
    except (urllib.error.URLError, OSError) as exc:
        fail(f"no exchange answers at {url}: {exc}", ["is `exchanger run` running, with this metrics port?"], EXIT_BROKER)
    except ValueError as exc:  # not an http:// URL at all
        fail(f"--url {url} is not an HTTP URL: {exc}", ["e.g. --url http://127.0.0.1:9464"], EXIT_USAGE)
    readiness = json.loads(body)
    label = click.style("READY", fg="green") if readiness["ready"] else click.style("NOT READY", fg="red")
    click.echo(f"exchange at {url}: {label}")
    for name, check in readiness["checks"].items():
        mark = click.style("ok  ", fg="green") if check["ok"] else click.style("FAIL", fg="red")
        click.echo(f"  {mark} {name}: {check['detail']}")
    samples = _samples(metrics_text.decode())
    totals = defaultdict(float)
    for sample in samples.get("exchanger_messages_total", []):
        totals[sample.labels["outcome"]] += sample.value
    click.echo("messages: " + (", ".join(f"{k} {v:.0f}" for k, v in sorted(totals.items())) or "none yet"))
    reasons = sorted(samples.get("exchanger_rejections_total", []), key=lambda s: -s.value)[:5]
    for sample in reasons:
        click.echo(f"  rejected at {sample.labels['stage']}/{sample.labels['code']}: {sample.value:.0f}")
    for sample in samples.get("exchanger_broker_info", []):
        click.echo(f"broker: {sample.labels['product']} {sample.labels['version']}")
    for sample in samples.get("exchanger_dead_letters", []):
        click.echo(f"dead letters waiting: {sample.value:.0f}")
    for sample in samples.get("exchanger_peer_waiting", []):
        peer = sample.labels["peer"]
        waiting = f"{sample.value:.0f} waiting in {mailbox_queue(peer)}"
        click.echo(f"peer e-port {peer}: {waiting} for its link ({link_name(peer)})")
    for sample in samples.get("exchanger_config_file_ok", []):
        click.echo(f"config version {sample.labels['version']}: {'file ok' if sample.value else 'FILE FAILS ITS CHECKS'}")
    expiring = sorted(samples.get("exchanger_certificate_expiry_days", []), key=lambda s: s.value)[:3]
    for sample in expiring:
        click.echo(f"certificate {sample.labels['participant']} (serial {sample.labels['serial'][:12]}…): {sample.value:.0f} days left")
    if not readiness["ready"]:
        raise SystemExit(EXIT_FAILED)


COMMANDS = [status]
