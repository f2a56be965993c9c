"""``exchanger dead``: list, show, replay and purge dead letters."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import click
import pika.exceptions

from exchanger.cli.common import EXIT_BROKER, EXIT_CODES_HELP, EXIT_FAILED, fail, has_credentials, pass_settings, read_password
from exchanger.transport.dead_letter_store import DeadLetterLog, dead_letter_store, legacy_queue_depth, migrate_legacy_queue
from exchanger.transport.dead_letters import MAX_REPLAYS, DeadLetter
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


def _session(settings):
    config = settings.load()
    # A broker that cannot be reached or refuses the login is explained by the command group, as for every command.
    return dead_letter_store(connection_parameters(_url(settings, config), client_name="exchanger dead"), config.broker.daemon_user)


def _browse(store, limit: int | None = None) -> list[DeadLetter]:
    """Read the pending dead letters, or exit with what to do when the broker refuses."""
    pending = _read(store).pending()
    return pending if limit is None else pending[:limit]


def _read(store) -> DeadLetterLog:
    """Read the whole dead-letter stream, or exit with what to do when the broker refuses."""
    try:
        return store.read()
    except pika.exceptions.ChannelClosedByBroker as exc:
        if exc.reply_code == 404:
            fail(f"there is no dead-letter stream {DEAD_LETTERS} on this virtual host",
                 ["declare it with `exchanger topology apply`", "then move older dead letters with `exchanger dead migrate`"],
                 EXIT_BROKER)
        fail(f"reading the dead-letter stream failed: {exc!r}", code=EXIT_BROKER)
    except pika.exceptions.AMQPError as exc:
        fail(f"reading the dead-letter stream failed: {exc!r}", code=EXIT_BROKER)


def _filters(reason, sender, message_type, since, until) -> dict:
    now = time.time()
    return {
        "reason": reason,
        "sender": sender,
        "message_type": message_type,
        "since": now - parse_age(since) if since else None,
        "until": now - parse_age(until) if until else None,
    }


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
    filters = _filters(reason, sender, message_type, since, until)
    if settled:
        with _session(settings) as store:
            log = _read(store)
        done = [(log.letters[i], s) for i, s in log.settled.items() if i in log.letters and log.letters[i].matches(**filters)]
        for letter, settlement in done[:limit]:
            click.echo(f"{_line(letter)}  [{settlement.settled_as} by {settlement.settled_by} at {_when(settlement.at)}]")
        click.echo(f"{len(done[:limit])} settled dead letter(s)", err=True)
        return
    with _session(settings) as store:
        letters = [letter for letter in _browse(store, limit) if letter.matches(**filters)]
    for letter in letters:
        click.echo(_line(letter))
    click.echo(f"{len(letters)} dead letter(s)", err=True)


@dead.command(epilog=EXIT_CODES_HELP)
@click.argument("letter_id")
@pass_settings
def show(settings, letter_id: str) -> None:
    """Show one dead letter: its headers, every reason, and its original bytes."""
    with _session(settings) as store:
        found = [letter for letter in _browse(store) if letter.id.startswith(letter_id)]
    if not found:
        fail(f"no dead letter {letter_id}")
    letter = found[0]
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
    dead letter; nothing is ever replayed automatically, so a replay cannot loop.
    """
    if not letter_ids and not any((reason, sender, message_type, since, until)):
        fail("name the dead letters to replay, or select them with a filter", code=EXIT_FAILED)
    filters = _filters(reason, sender, message_type, since, until)
    replayed = skipped = 0
    with _session(settings) as store:
        for letter in _browse(store):
            if letter_ids and not any(letter.id.startswith(i) for i in letter_ids):
                continue
            if not letter.matches(**filters):
                continue
            if not letter.sender:
                click.echo(f"skipped {letter.id}: it names no broker-verified sender, so it cannot be replayed as one")
                skipped += 1
                continue
            if letter.replays >= MAX_REPLAYS and not force:
                click.echo(f"skipped {letter.id}: already replayed {letter.replays} times (use --force)")
                skipped += 1
                continue
            store.replay(letter)
            replayed += 1
            click.echo(f"replayed {letter.id} ({letter.message_type or '?'} {letter.message_id or ''} from {letter.sender or '?'})")
    click.echo(f"{replayed} replayed, {skipped} skipped", err=True)
    if letter_ids and not replayed and not skipped:
        fail(f"no dead letter matches {', '.join(letter_ids)}")


@dead.command(epilog=EXIT_CODES_HELP)
@click.option("--older-than", "older_than", required=True, help="Remove dead letters dead for longer than this (e.g. 30d).")
@click.option("--dry-run", is_flag=True, help="Only say what would be removed.")
@pass_settings
def purge(settings, older_than: str, dry_run: bool) -> None:
    """Settle dead letters older than a period for good: they no longer show, replay or count as waiting."""
    cutoff = time.time() - parse_age(older_than)
    removed = 0
    with _session(settings) as store:
        for letter in _browse(store):
            if letter.dead_at is not None and letter.dead_at < cutoff:
                if not dry_run:
                    store.purge(letter)
                removed += 1
                click.echo(f"{'would remove' if dry_run else 'removed'} {_line(letter)}")
    click.echo(f"{removed} dead letter(s) {'would be ' if dry_run else ''}removed", err=True)


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
