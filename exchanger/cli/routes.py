"""``routes check`` and ``routes explain``: the operator's view of the routing configuration."""

from __future__ import annotations

from pathlib import Path

import click

from exchanger.catalogue import FieldError
from exchanger.cli.common import EXIT_CODES_HELP, EXIT_FAILED, Settings, pass_settings
from exchanger.envelope import Envelope, Inbound
from exchanger.outcome import Rejected
from exchanger.pipeline.stages.identify import Identify
from exchanger.pipeline.stages.parse import Parse
from exchanger.pipeline.stages.validate import Validate
from exchanger.routing.diff import diff as routing_diff


@click.group()
def routes() -> None:
    """Check and explain the routing configuration."""


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
    """Show which rules match a document, which do not and why, and where it would go.

    The document's signature is not checked here (see `exchanger verify`): explain reads
    the sender and receivers the document names.
    """
    config = settings.load()
    envelope = Envelope(Inbound(file.read_bytes()))
    try:
        for stage in (Parse(config.limits.max_message_bytes), Identify(config.catalogue), Validate()):
            stage(envelope)
    except Rejected as exc:
        click.secho(f"{file}: would be rejected before routing:", fg="red")
        for reason in exc.reasons:
            click.echo(f"  {reason.describe()}")
        raise SystemExit(EXIT_FAILED)
    message_type = envelope.message_type
    root = envelope.tree.getroot()
    try:
        sender_id = message_type.sender(root)
        receivers = message_type.receivers(root)
        fields = message_type.field_values(root)
        message_id = message_type.message_id(root)
    except FieldError as exc:
        click.secho(f"{file}: would be rejected: {exc}", fg="red")
        raise SystemExit(EXIT_FAILED) from None
    sender = config.registry.get(sender_id or "")
    click.echo(f"{file}: {message_type.name} {message_id} from {sender_id} to {', '.join(receivers) or '(nobody named)'}")
    if fields:
        click.echo("  fields: " + ", ".join(f"{k}={v!r}" for k, v in fields.items()))
    if sender is None:
        click.secho(f"  rejected: sender {sender_id!r} is not a participant", fg="red")
        raise SystemExit(EXIT_FAILED)
    for verdict in config.table.explain(message_type.name, sender, receivers, root, fields):
        mark = click.style("match", fg="green") if verdict.applies else click.style("skip ", fg="yellow")
        click.echo(f"  {mark} {verdict.route.id}: {verdict.why}")
    try:
        decision = config.table.decide(message_type.name, sender, receivers, root, fields)
    except Rejected as exc:
        click.secho(f"  rejected: {exc.reasons[0].message}", fg="red")
        raise SystemExit(EXIT_FAILED)
    for delivery in decision.deliveries:
        approval = f" (shared under {delivery.approval})" if delivery.approval else ""
        click.echo(f"  -> {delivery.to} by {delivery.route}{approval}")


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
    for label, names in (
        ("participants added", change.participants_added),
        ("participants removed", change.participants_removed),
        ("message types added", change.types_added),
        ("message types removed", change.types_removed),
    ):
        if names:
            click.echo(f"  {label}: {', '.join(sorted(names))}")
    for route in change.added:
        click.secho(f"  + route {route.id}: {', '.join(sorted(route.types))} from {route.senders} deliver {', '.join(route.deliver)}", fg="green")
    for route in change.removed:
        click.secho(f"  - route {route.id}: {', '.join(sorted(route.types))} from {route.senders} deliver {', '.join(route.deliver)}", fg="red")
    for route, changes in change.changed:
        click.secho(f"  ~ route {route.id}: " + "; ".join(changes), fg="yellow")
    for message_type in sorted(change.gained.keys() | change.lost.keys()):
        for target in sorted(change.gained.get(message_type, ())):
            click.echo(f"  {message_type} gains destination: {target}")
        for target in sorted(change.lost.get(message_type, ())):
            click.echo(f"  {message_type} loses destination: {target}")
    raise SystemExit(EXIT_FAILED)


COMMANDS = [routes]
