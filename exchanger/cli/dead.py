"""``exchanger dead``: list, show, replay and purge dead letters."""

from __future__ import annotations

import re
import time
from contextlib import contextmanager
from datetime import datetime, timezone

import click
import pika.exceptions

from exchanger.cli.common import EXIT_BROKER, EXIT_CODES_HELP, EXIT_FAILED, fail, has_credentials, pass_settings, read_password
from exchanger.journal.store import open_store
from exchanger.operations.actor import Operator
from exchanger.operations.dead_letters import DeadLetter, DeadLetterDesk, DeadLetterFilter, DeadLetterStreamError
from exchanger.transport.dead_letter_store import legacy_queue_depth, migrate_legacy_queue
from exchanger.transport.dead_letters import MAX_REPLAYS
from exchanger.transport.names import DEAD_LETTERS, LEGACY_DEAD_QUEUE
from exchanger.transport.url import connection_parameters, resolve_amqp_url, with_credentials

_DURATION = re.compile(r"^(\d+)([smhdw])$")
_SECONDS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def parse_age(text: str) -> float:
    """Seconds in a duration such as 90s, 15m, 12h, 7d or 2w."""
    match = _DURATION.match(text.strip())
    if not match:
        raise click.BadParameter(f"{text!r} is not a duration such as 30m, 12h or 7d")
    return int(match.group(1)) * _SECONDS[match.group(2)]


def _when(epoch: float | None) -> str:
    if epoch is None:
        return "unknown time"
    return datetime.fromtimestamp(epoch, timezone.utc).strftime("%Y-%m-%d %H:%M:%SZ")


def _url(settings, config) -> str:
    url = resolve_amqp_url(settings.amqp_url)
    if not has_credentials(url):
        url = with_credentials(url, config.broker.daemon_user, read_password(settings, config.broker.daemon_user, config))
    return url


@contextmanager
def _desk(settings, *, recording: bool = False):
    """The operations' dead-letter desk as the daemon's user; with ``recording``, over the message log too."""
    config = settings.load()
    url = _url(settings, config)
    # The log is opened (created if the daemon has not yet) so that every replay and purge is on record.
    store = open_store(config.journal.url) if recording else None
    try:
        yield DeadLetterDesk(config, url, store, client_name="exchanger dead")
    except DeadLetterStreamError as exc:
        fail(str(exc), exc.hints, EXIT_BROKER)
    finally:
        if store is not None:
            store.close()


def _filters(reason, sender, message_type, since, until, limit=None) -> DeadLetterFilter:
    now = time.time()
    return DeadLetterFilter(
        reason=reason,
        sender=sender,
        message_type=message_type,
        since=now - parse_age(since) if since else None,
        until=now - parse_age(until) if until else None,
        limit=limit,
    )


def _line(letter: DeadLetter) -> str:
    who = letter.sender or "?"
    what = f"{letter.message_type or '?'} {letter.message_id or '(no id)'}"
    replays = f" replayed {letter.replays}x" if letter.replays else ""
    return f"{letter.id}  {_when(letter.dead_at)}  {who:<10} {what}  {letter.reason}{replays}"


FILTERS = [
    click.option("--reason", default=None, help="Only those whose stage/code/reason contains this text."),
    click.option("--sender", default=None, help="Only those from this broker user."),
    click.option("--type", "message_type", default=None, help="Only this message type."),
    click.option("--since", default=None, help="Only those dead for at most this long (e.g. 2h)."),
    click.option("--until", default=None, help="Only those dead for at least this long (e.g. 10m)."),
]


def with_filters(command):
    """Add the dead-letter filter options to a command."""
    for option in reversed(FILTERS):
        command = option(command)
    return command


@click.group()
def dead() -> None:
    """Dead letters: every rejected input, with its original bytes and why."""


@dead.command(name="list", epilog=EXIT_CODES_HELP)
@with_filters
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True, help="Show at most this many.")
@click.option("--settled", is_flag=True, help="List the replayed and purged ones instead, with who settled them and when.")
@pass_settings
def list_(settings, reason, sender, message_type, since, until, limit, settled) -> None:
    """List pending dead letters, one line each (reading never removes or requeues anything)."""
    filters = _filters(reason, sender, message_type, since, until, limit)
    if settled:
        with _desk(settings) as desk:
            done = desk.settled(filters)
        for letter, settlement in done:
            click.echo(f"{_line(letter)}  [{settlement.settled_as} by {settlement.settled_by} at {_when(settlement.at)}]")
        click.echo(f"{len(done)} settled dead letter(s)", err=True)
        return
    with _desk(settings) as desk:
        letters = desk.browse(filters)
    for letter in letters:
        click.echo(_line(letter))
    click.echo(f"{len(letters)} dead letter(s)", err=True)


@dead.command(epilog=EXIT_CODES_HELP)
@click.argument("letter_id")
@pass_settings
def show(settings, letter_id: str) -> None:
    """Show one dead letter: its headers, every reason, and its original bytes."""
    with _desk(settings) as desk:
        letter = desk.find(letter_id)
    if letter is None:
        fail(f"no dead letter {letter_id}")
    click.echo(_line(letter))
    for item in letter.reasons:
        where = ", ".join(str(x) for x in (f"line {item['line']}" if item.get("line") else None, item.get("path")) if x)
        click.echo(f"  [{item['stage']}/{item['code']}]{f' ({where})' if where else ''} {item['message']}")
    for key, value in sorted(letter.headers.items()):
        if key != "x-exchanger-reasons":
            click.echo(f"  {key}: {value}")
    click.echo("")
    click.echo(letter.body.decode("utf-8", errors="replace"))


@dead.command(epilog=EXIT_CODES_HELP)
@click.argument("letter_ids", nargs=-1)
@with_filters
@click.option("--force", is_flag=True, help=f"Replay even what was already replayed {MAX_REPLAYS} times.")
@pass_settings
def replay(settings, letter_ids, reason, sender, message_type, since, until, force) -> None:
    """Run dead letters through the pipeline again (e.g. after a configuration fix), as their original sender.

    Name them by ID, or select them with filters. A replay that is rejected again becomes a new
    dead letter; nothing is ever replayed automatically, so a replay cannot loop. Each replay
    (and each one skipped) is recorded in the message log with the operator's login name.
    """
    filters = _filters(reason, sender, message_type, since, until)
    if not letter_ids and not filters.selects:
        fail("name the dead letters to replay, or select them with a filter", code=EXIT_FAILED)
    with _desk(settings, recording=True) as desk:
        results = desk.replay(list(letter_ids), Operator.from_login(), force=force, filters=filters)
    for result in results:
        letter = result.letter
        if result.done:
            click.echo(f"replayed {letter.id} ({letter.message_type or '?'} {letter.message_id or ''} from {letter.sender or '?'})")
        else:
            click.echo(f"skipped {letter.id}: {result.why}")
    replayed = sum(result.done for result in results)
    click.echo(f"{replayed} replayed, {len(results) - replayed} skipped", err=True)
    if letter_ids and not results:
        fail(f"no dead letter matches {', '.join(letter_ids)}")


@dead.command(epilog=EXIT_CODES_HELP)
@click.argument("letter_ids", nargs=-1)
@with_filters
@click.option("--older-than", "older_than", default=None, help="Those dead for longer than this (e.g. 30d).")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@pass_settings
def purge(settings, letter_ids, reason, sender, message_type, since, until, older_than: str | None, dry_run: bool) -> None:
    """Settle dead letters for good: they no longer show, replay or count as waiting.

    Name them by ID, or select them with --older-than and the filters. Each purge is recorded in
    the message log with the operator's login name.
    """
    filters = _filters(reason, sender, message_type, since, older_than or until)
    if not letter_ids and not filters.selects:
        fail("name the dead letters to purge, or select them with --older-than or a filter", code=EXIT_FAILED)
    with _desk(settings, recording=not dry_run) as desk:
        if dry_run:
            letters = desk.select(list(letter_ids), filters)
        else:
            letters = [result.letter for result in desk.purge(list(letter_ids), Operator.from_login(), filters=filters)]
    for letter in letters:
        click.echo(f"{'would remove' if dry_run else 'removed'} {_line(letter)}")
    click.echo(f"{len(letters)} dead letter(s) {'would be ' if dry_run else ''}removed", err=True)
    if letter_ids and not letters:
        fail(f"no dead letter matches {', '.join(letter_ids)}")


@dead.command(epilog=EXIT_CODES_HELP)
@pass_settings
def migrate(settings) -> None:
    """Move the dead letters of an earlier version's queue (exchanger.dead) into the stream, then delete the queue."""
    config = settings.load()
    connection = pika.BlockingConnection(connection_parameters(_url(settings, config), client_name="exchanger dead migrate"))
    try:
        if legacy_queue_depth(connection) is None:
            click.echo(f"no queue {LEGACY_DEAD_QUEUE}: nothing to migrate")
            return
        moved = migrate_legacy_queue(connection, config.broker.daemon_user)
    except pika.exceptions.ChannelClosedByBroker as exc:
        hint = ["run `exchanger topology apply` first: it declares the stream"] if exc.reply_code == 404 else []
        fail(f"migrating {LEGACY_DEAD_QUEUE} failed (what was moved is in the stream, the rest is still in the queue): {exc!r}", hint, EXIT_BROKER)
    finally:
        if connection.is_open:
            connection.close()
    click.echo(f"moved {moved} dead letter(s) from {LEGACY_DEAD_QUEUE} to the stream {DEAD_LETTERS}; {LEGACY_DEAD_QUEUE} deleted")


COMMANDS = [dead]
