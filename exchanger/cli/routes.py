"""``routes check`` and ``routes explain``: the operator's view of the routing configuration."""

from __future__ import annotations

import os
import signal
from pathlib import Path

import click

from exchanger.cli.common import EXIT_CODES_HELP, EXIT_FAILED, EXIT_FILE, Settings, fail, pass_settings
from exchanger.config import ConfigError
from exchanger.config.loader import read_journal_settings
from exchanger.journal.store import open_store
from exchanger.operations import routes as route_changes
from exchanger.operations.actor import Operator
from exchanger.pipeline.explain import explain_document
from exchanger.pipeline.stages.relay import relay_path
from exchanger.pipeline.stages.unwrap import etree_local
from exchanger.routing.diff import diff as routing_diff
from exchanger.routing.hops import inbound_hop, outbound_hop


@click.group()
def routes() -> None:
    """Check, explain, compare and apply the routing configuration."""


@routes.command(epilog=EXIT_CODES_HELP)
@click.argument("file", required=False, type=click.Path(dir_okay=False, path_type=Path))
@pass_settings
def check(settings, file: Path | None) -> None:
    """Load FILE (default: --config) exactly as the daemon would, and report every problem.

    Schemas must compile, keys load and match, XPaths compile, every route name known
    message types and participants, and every copy to a third party name its approval.
    """
    target = Settings(file or settings.config_path, settings.amqp_url, settings.log_level)
    config = target.load()
    click.echo(
        f"{config.path}: OK (version {config.version}): {len(config.registry)} participants, "
        f"{len(config.catalogue.names())} message types, {len(config.table.routes)} routes"
    )


@routes.command(epilog=EXIT_CODES_HELP)
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_settings
def explain(settings, file: Path) -> None:
    """Show what the daemon would do with FILE: its refusal, or which rules match, which do not and why.

    A message in an envelope (a DxpMsg) is shown in both layers: the envelope, then the message inside.
    The daemon's own stages run: parse, unwrap, identify, validate, verify and authenticate, as if the
    signer had published FILE, and fields are read from the signed content as the daemon reads
    them. An unsigned FILE is not verified: the output says that the daemon would refuse it, then
    shows routing as if the sender it names had signed it (exit 0 when that routing succeeds).
    """
    config = settings.load()
    result = explain_document(config, file.read_bytes())
    envelope = result.envelope
    if envelope.carrier is not None:
        _show_carrier(file, envelope.carrier)
    if envelope.message_type is not None and envelope.signed_root is not None and envelope.sender is not None:
        receivers = ", ".join(envelope.receivers) or "(nobody named)"
        click.echo(f"{file}: {envelope.message_type.name} {envelope.message_id} from {envelope.sender.id} to {receivers}")
    if result.signed and envelope.signer is not None:
        click.echo(f"  signature: verified, signed by {envelope.signer.id}")
        if envelope.signer.relayed_by is not None:
            path = relay_path(envelope.carrier.fields.get("relay_path"))
            click.echo(f"  hop: {inbound_hop(config, envelope.signer.relayed_by, path)}")
    elif result.unsigned_refusal is not None:
        click.secho("  signature: NOT VERIFIED (the file is unsigned); the daemon would refuse it as it is:", fg="yellow")
        for reason in result.unsigned_refusal.reasons:
            click.echo(f"    {reason.describe()}")
        click.echo("  routing below is as if the sender it names had signed and sent it")
    if envelope.fields:
        click.echo("  fields: " + ", ".join(f"{k}={v!r}" for k, v in envelope.fields.items()))
    for verdict in result.verdicts:
        mark = click.style("match", fg="green") if verdict.applies else click.style("skip ", fg="yellow")
        click.echo(f"  {mark} {verdict.route.id}: {verdict.why}")
    if result.rejected is not None:
        click.secho(f"{file}: would be rejected:", fg="red")
        for reason in result.rejected.reasons:
            click.echo(f"  {reason.describe()}")
        raise SystemExit(EXIT_FAILED)
    for delivery in result.decision.deliveries:
        approval = f" (shared under {delivery.approval})" if delivery.approval else ""
        receiver = config.registry.get(delivery.to)
        carried_in = f", in a {receiver.envelope} envelope" if receiver is not None and receiver.envelope != "exchange" else ""
        to = f"{delivery.addressee} at the peer e-port {delivery.to}" if delivery.addressee else delivery.to
        click.echo(f"  -> {to} by {delivery.route}{approval}{carried_in}")
        if receiver is not None and receiver.external:
            click.echo(f"     hop: {outbound_hop(config, delivery.to)}")


def _show_carrier(file: Path, carrier) -> None:
    """The envelope a file is in: its transport fields and whose signature over it verified."""
    receivers = ", ".join(carrier.receivers) or "(nobody named)"
    click.echo(
        f"{file}: {carrier.format.name} envelope ({etree_local(carrier.format.root)}) {carrier.message_id} "
        f"from {carrier.sender} to {receivers}, carrying {carrier.message_type!r}"
    )
    if carrier.signer is not None:
        click.echo(f"  envelope signature: verified, signed by {carrier.signer.id}")
    else:
        click.secho("  envelope signature: NOT VERIFIED", fg="yellow")


@routes.command(epilog=EXIT_CODES_HELP)
@click.argument("old", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.argument("new", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@pass_settings
def diff(settings, old: Path, new: Path) -> None:
    """Show what changing the configuration from OLD to NEW would do to routing.

    Exit 0 when routing would not change, 1 when it would (or NEW fails its checks).
    """
    before = Settings(old, settings.amqp_url, settings.log_level).load()
    after = Settings(new, settings.amqp_url, settings.log_level).load()
    change = routing_diff(before, after)
    if change.empty:
        click.echo(f"no routing difference ({before.version} -> {after.version})")
        return
    click.echo(f"routing changes {before.version} -> {after.version}:")
    colours = {"+": "green", "-": "red", "~": "yellow"}
    for line in route_changes.diff_lines(change):
        click.secho(f"  {line}", fg=colours.get(line[:1]) if line[1:2] == " " else None)
    raise SystemExit(EXIT_FAILED)


@routes.command(epilog=EXIT_CODES_HELP)
@click.argument("new", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--hup", "hup_pid", type=click.IntRange(1), default=None,
              help="Send SIGHUP to this process (the running daemon) once the new version is written.")
@pass_settings
def apply(settings, new: Path, hup_pid: int | None) -> None:
    """Replace the configuration (--config) with NEW once it passes every check `routes check` makes.

    A refused NEW changes nothing: every problem is listed (exit 1). Otherwise the file is replaced
    atomically, the previous version kept as CONFIG.previous/<UTC time>.yaml, and the change, with
    its routing difference, recorded in the message log under your login name. A daemon started
    with --watch-config reloads it by itself; otherwise give --hup with the daemon's process id
    (or send it SIGHUP yourself).
    """
    try:
        text = new.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        fail(f"cannot read {new}: {getattr(exc, 'strerror', None) or exc}", code=EXIT_FILE)
    try:
        store = open_store(read_journal_settings(settings.config_path).url)
    except ConfigError as exc:
        fail(f"the journal section of {settings.config_path} cannot be used, so the change could not be recorded:",
             exc.problems)
    reload = (lambda: os.kill(hup_pid, signal.SIGHUP)) if hup_pid else None
    try:
        change = route_changes.apply(settings.config_path, text, Operator.from_login(), store, reload)
    except route_changes.ConfigRejected as exc:
        fail(f"{new} was refused; {settings.config_path} is unchanged:", [str(p) for p in exc.problems])
    finally:
        store.close()
    for line in change.diff_lines or ["no routing difference"]:
        click.echo(f"  {line}")
    kept = f"; the previous version is kept as {change.previous}" if change.previous else ""
    click.echo(f"{change.path}: now version {change.version_after} (was {change.version_before or 'unreadable'}){kept}")
    if change.reload_problem:
        fail(f"the new version is in place, but signalling process {hup_pid} failed: {change.reload_problem}")
    if change.reloaded:
        click.echo(f"sent SIGHUP to process {hup_pid}: the daemon reloads, keeping the running version if it refuses")
    else:
        click.echo("a daemon started with --watch-config reloads it now; any other needs SIGHUP (or --hup PID)")


COMMANDS = [routes]
