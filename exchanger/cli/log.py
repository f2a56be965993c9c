"""``trace`` and ``log search|verify|prune``: the operator's view of the message log."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from cryptography import x509

from exchanger.cli.common import EXIT_CODES_HELP, EXIT_FAILED, EXIT_USAGE, fail, pass_settings
from exchanger.config import ConfigError
from exchanger.config.loader import read_journal_settings
from exchanger.dsig.signer import Signer
from exchanger.journal.checkpoint import Checkpointer
from exchanger.journal.period import parse_moment, parse_period, stamp
from exchanger.journal.records import KINDS, PRUNED, Event
from exchanger.journal.sqlite import sqlite_path
from exchanger.journal.store import Query, Store, StoreError, open_store
from exchanger.journal.timeline import KIND_OF_STATUS, search_line
from exchanger.journal.verify import verify as verify_log
from exchanger.operations import messages


def open_log(settings, url: str | None = None) -> Store:
    """The store the configuration's ``journal.url`` names, or exit saying why it cannot be opened."""
    if url is None:
        try:
            url = read_journal_settings(settings.config_path).url
        except ConfigError as exc:
            fail(f"the journal section of {settings.config_path} cannot be used:", exc.problems)
    try:
        if url.lower().startswith("sqlite:") and not sqlite_path(url).exists():
            fail(f"there is no message log at {sqlite_path(url)} yet", ["the daemon creates it when it starts"])
        return open_store(url)
    except StoreError as exc:
        fail(str(exc))


def _echo_json(value) -> None:
    click.echo(json.dumps(value, indent=2, ensure_ascii=False))


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("message_id")
@click.option("--sender", default=None, help="Only the message this participant sent (ids are unique per sender).")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@pass_settings
def trace(settings, message_id: str, sender: str | None, as_json: bool) -> None:
    """Print the timeline of one message: received, stages, routed, delivered, receipt.

    MESSAGE_ID is the id the document names or, for a message rejected before its id could be
    read, the start of the SHA-256 of its bytes (as receipts and dead letters show it).
    """
    store = open_log(settings)
    try:
        found = messages.trace(store, message_id, sender)
    finally:
        store.close()
    if not found.found:
        fail(f"no message {message_id!r}{f' from {sender}' if sender else ''} in the message log")
    if as_json:
        _echo_json([record.as_dict() for record in found.records])
        return
    for line in found.lines:
        click.echo(line)


@click.group()
def log() -> None:
    """Search, verify and prune the message log."""


def _moment(value: str | None, option: str) -> str | None:
    if value is None:
        return None
    try:
        return stamp(parse_moment(value))
    except ValueError as exc:
        raise click.BadParameter(str(exc), param_hint=option) from None


@log.command(epilog=EXIT_CODES_HELP)
@click.option("--sender", default=None, help="Sent by this participant.")
@click.option("--receiver", default=None, help="Delivered (or to be delivered) to this participant.")
@click.option("--type", "message_type", default=None, help="Of this message type (CustomsDeclaration, …).")
@click.option("--status", type=click.Choice(sorted(KIND_OF_STATUS)), default=None, help="With this outcome.")
@click.option("--kind", "kinds", multiple=True, type=click.Choice(sorted(KINDS)),
              help="Records of this kind instead of outcomes (repeat for several), e.g. operator-action.")
@click.option("--operator", default=None, help="The actions of this operator (operator-action records).")
@click.option("--since", default=None, help="At or after: 2024-03-18, 2024-03-18T10:00Z, or a period ago (2h, 7d).")
@click.option("--until", default=None, help="Before: same forms as --since.")
@click.option("--limit", type=click.IntRange(1), default=100, show_default=True, help="At most this many, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print the records as JSON.")
@pass_settings
def search(settings, sender, receiver, message_type, status, kinds, operator, since, until, limit, as_json) -> None:
    """List messages by outcome, newest first: one line each, where it went or why it was refused.

    With --kind or --operator, list those records instead: operators' actions (replays, purges,
    route changes, evidence exports, sign-ins) with who did them and through what.
    """
    query = Query(
        sender=sender,
        receiver=receiver,
        message_type=message_type,
        kinds=((KIND_OF_STATUS[status],) if status else ()) + tuple(kinds),
        operator=operator,
        since=_moment(since, "--since"),
        until=_moment(until, "--until"),
        limit=limit,
        newest_first=True,
    )
    store = open_log(settings)
    try:
        records = messages.search(store, query)
    finally:
        store.close()
    if as_json:
        _echo_json([record.as_dict() for record in records])
        return
    for record in records:
        click.echo(search_line(record))
    more = " (the limit: narrow the search or raise --limit)" if len(records) == limit else ""
    click.echo(f"{len(records)} {'message(s)' if not (kinds or operator) else 'record(s)'}{more}", err=True)


def _platform_certificates(settings, paths: tuple[Path, ...]) -> list[x509.Certificate]:
    if paths:
        try:
            return [x509.load_pem_x509_certificate(path.read_bytes()) for path in paths]
        except ValueError as exc:
            fail(f"not a PEM certificate: {exc}")
    certificate = settings.load().platform.certificate
    if certificate is None:
        fail("the configuration names no platform certificate to verify checkpoints with")
    return [certificate]


@log.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--certificate",
    "certificates",
    multiple=True,
    type=click.Path(exists=True, dir_okay=False, path_type=Path),
    help="Platform certificate(s) to verify checkpoints with (default: the configuration's). Repeat for rotated keys.",
)
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON.")
@pass_settings
def verify(settings, certificates: tuple[Path, ...], as_json: bool) -> None:
    """Check the whole log: every record's hash and link, checkpoint signatures, archived originals.

    Names each record that was edited, removed or moved, by its sequence number. Exit 0 only
    when nothing is wrong.
    """
    trusted = _platform_certificates(settings, certificates)
    store = open_log(settings)
    result = verify_log(store, trusted)
    checkpoints = store.checkpoints()
    store.close()
    signed_to = max((c.seq for c in checkpoints), default=0)
    if as_json:
        _echo_json(
            {
                "ok": result.ok,
                "records": result.records,
                "first_seq": result.first_seq,
                "last_seq": result.last_seq,
                "anchor": result.anchor,
                "checkpoints": result.checkpoints,
                "archived": result.archived,
                "signed_through_seq": signed_to,
                "problems": [problem.as_dict() for problem in result.problems],
            }
        )
    elif result.records == 0 and result.ok:
        click.echo("OK   the message log is empty")
    else:
        span = f"seq {result.first_seq} to {result.last_seq}" if result.records else "no records"
        mark = click.style("OK  ", fg="green") if result.ok else click.style("FAIL", fg="red")
        click.echo(
            f"{mark} {result.records} records ({span}) checked from {result.anchor}; "
            f"{result.checkpoints} signed checkpoint(s); {result.archived} archived original(s) and receipt(s)"
        )
        for problem in result.problems:
            click.echo(f"  {problem.describe()}")
        if result.last_seq and signed_to < result.last_seq:
            click.echo(f"  note: records after seq {signed_to} are chained but not yet under a signed checkpoint")
    if not result.ok:
        raise SystemExit(EXIT_FAILED)


@log.command(epilog=EXIT_CODES_HELP)
@click.option("--older-than", default=None, help="A period: 90d, 12h, 2w (default: the configuration's journal.retention).")
@pass_settings
def prune(settings, older_than: str | None) -> None:
    """Remove records and archived originals older than a period; what remains still verifies.

    Records go up to the newest signed checkpoint before the first record to keep, so the
    remaining chain starts from a checkpoint; the prune itself is recorded in the log and signed.
    """
    config = settings.load()
    if older_than is not None:
        try:
            period = parse_period(older_than)
        except ValueError as exc:
            raise click.BadParameter(str(exc), param_hint="--older-than") from None
    elif config.journal.retention_seconds is not None:
        period = config.journal.retention_seconds
    else:
        fail("give --older-than, or set journal.retention in the configuration", code=EXIT_USAGE)
    cutoff = stamp(time.time() - period)
    store = open_log(settings, config.journal.url)
    event = Event.of(PRUNED, data={"cutoff": cutoff, "older_than_seconds": period}, config_version=config.version)
    try:
        result = store.prune(cutoff, event)
        if result.through_seq is not None:
            signer = Signer(config.platform.key_path, config.platform.certificate_path, config.signatures)
            checkpointer = Checkpointer(signer, config.platform.id)
            store.add_checkpoint(checkpointer.sign(*store.head()))
    finally:
        store.close()
    if result.through_seq is None:
        click.echo(f"nothing to prune: no signed checkpoint comes before the first record newer than {cutoff}")
        return
    click.echo(
        f"pruned {result.records} records up to seq {result.through_seq}, {result.originals} archived originals "
        f"and {result.receipts} accepted receipts older than {cutoff}; the log now starts after the signed "
        f"checkpoint at seq {result.through_seq}"
    )


COMMANDS = [trace, log]
