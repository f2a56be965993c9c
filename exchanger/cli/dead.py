"""``exchanger dead``: list, show, replay and purge dead letters."""

from __future__ import annotations

import re
import time
from datetime import datetime, timezone

import click
import pika.exceptions

from exchanger.cli.common import EXIT_BROKER, EXIT_CODES_HELP, EXIT_FAILED, fail, has_credentials, pass_settings, read_password
from exchanger.transport.dead_letters import MAX_REPLAYS, DeadLetter, dead_letter_queue
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


def _session(settings):
    config = settings.load()
    url = resolve_amqp_url(settings.amqp_url)
    if not has_credentials(url):
        url = with_credentials(url, config.broker.daemon_user, read_password(settings, config.broker.daemon_user, config))
    try:
        return dead_letter_queue(connection_parameters(url, client_name="exchanger dead"), config.broker.daemon_user)
    except pika.exceptions.AMQPError as exc:
        fail(f"cannot open the dead-letter queue: {exc!r}", code=EXIT_BROKER)


def _browse(queue, limit: int | None = None) -> list[DeadLetter]:
    """Browse the dead letters, or exit with what to do when the broker connection breaks on one."""
    try:
        return queue.browse(limit)
    except pika.exceptions.AMQPError as exc:
        fail(
            f"browsing the dead-letter queue failed: {exc!r}",
            [
                "a dead letter whose headers the AMQP client cannot decode breaks browsing;",
                "inspect the queue with `rabbitmqctl list_queues` and remove it with `rabbitmqctl purge_queue exchanger.dead`",
            ],
            EXIT_BROKER,
        )


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
@click.option("--limit", type=click.IntRange(1), default=1000, show_default=True, help="Browse at most this many.")
@pass_settings
def list_(settings, reason, sender, message_type, since, until, limit) -> None:
    """List dead letters, one line each (they stay in the queue)."""
    filters = _filters(reason, sender, message_type, since, until)
    with _session(settings) as queue:
        letters = [letter for letter in _browse(queue, limit) if letter.matches(**filters)]
    for letter in letters:
        click.echo(_line(letter))
    click.echo(f"{len(letters)} dead letter(s)", err=True)


@dead.command(epilog=EXIT_CODES_HELP)
@click.argument("letter_id")
@pass_settings
def show(settings, letter_id: str) -> None:
    """Show one dead letter: its headers, every reason, and its original bytes."""
    with _session(settings) as queue:
        found = [letter for letter in _browse(queue) if letter.id.startswith(letter_id)]
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
    with _session(settings) as queue:
        for letter in _browse(queue):
            if letter_ids and not any(letter.id.startswith(i) for i in letter_ids):
                continue
            if not letter.matches(**filters):
                continue
            if letter.replays >= MAX_REPLAYS and not force:
                click.echo(f"skipped {letter.id}: already replayed {letter.replays} times (use --force)")
                skipped += 1
                continue
            queue.replay(letter)
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
    """Remove dead letters older than a period, for good."""
    cutoff = time.time() - parse_age(older_than)
    removed = 0
    with _session(settings) as queue:
        for letter in _browse(queue):
            if letter.dead_at is not None and letter.dead_at < cutoff:
                if not dry_run:
                    queue.purge(letter)
                removed += 1
                click.echo(f"{'would remove' if dry_run else 'removed'} {_line(letter)}")
    click.echo(f"{removed} dead letter(s) {'would be ' if dry_run else ''}removed", err=True)


COMMANDS = [dead]
