"""``send`` and ``receive``: what an integrator does, as a participant, against the broker."""

from __future__ import annotations

import hashlib
from pathlib import Path

import click
from lxml import etree

from exchanger.cli.common import (
    EXIT_BROKER,
    EXIT_CODES_HELP,
    EXIT_INCOMPLETE,
    fail,
    pass_settings,
    read_password,
)
from exchanger.cli.documents import signer_for
from exchanger.envelopes.dxp import NS as DXP_NS
from exchanger.platform_documents import NS
from exchanger.transport.client import DeliveryError, drain_mailbox, publish_inbound
from exchanger.transport.url import resolve_amqp_url, with_credentials

DXP = f"{{{DXP_NS}}}"
DXP_REP = f"{DXP}DxpRep"

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


def _connect_as(settings, participant_id: str) -> tuple[str, str]:
    """The broker URL with a participant's credentials, and its broker user (the user_id to publish with)."""
    config = settings.load()
    participant = config.registry.get(participant_id)
    if participant is None:
        fail(f"{participant_id!r} is not a participant", [f"participants: {', '.join(config.registry.ids())}"])
    password = read_password(settings, participant.id, config)
    return with_credentials(resolve_amqp_url(settings.amqp_url), participant.amqp_user, password), participant.amqp_user


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("files", nargs=-1, required=True, type=FILE)
@click.option("--as", "participant", required=True, help="The participant sending (its broker user and key).")
@click.option("--sign/--no-sign", "sign_it", default=False, help="Sign with the participant's key before sending.")
@pass_settings
def send(settings, files: tuple[Path, ...], participant: str, sign_it: bool) -> None:
    """Publish documents to the inbound queue as PARTICIPANT (the broker checks the user_id)."""
    url, user = _connect_as(settings, participant)
    signer = signer_for(settings, participant) if sign_it else None
    for path in files:
        body = path.read_bytes()
        if signer is not None:
            try:
                body = signer.sign_bytes(body)
            except ValueError as exc:
                fail(f"{path}: {exc}")
        try:
            publish_inbound(url, body, user_id=user)
        except DeliveryError as exc:
            fail(f"{path}: not accepted by the broker: {exc}", code=EXIT_BROKER)
        digest = hashlib.sha256(body).hexdigest()[:16]
        click.echo(f"sent {path} as {participant} ({len(body)} bytes, sha256 {digest}…)")


def _describe_dxp_rep(root, head: str) -> tuple[str, list[str]]:
    """A DxpRep's response code, the receivers that got a copy, and its reason when refused."""
    response = root.find(f"{DXP}Response")
    code = response.findtext(f"{DXP}ResponseCode") if response is not None else "?"
    head += f" (DxpRep {code})"
    delivered = [r.findtext(f"{DXP}RecId") for r in root.iter(f"{DXP}Result") if r.findtext(f"{DXP}Code") == "0000"]
    if delivered:
        head += f" -> delivered to {', '.join(delivered)}"
    lines = [] if code == "0000" or response is None else [f"    {response.findtext(f'{DXP}ResponseInfo')}"]
    return head, lines


def _describe(message, out: Path | None, index: int) -> list[str]:
    headers = message.headers or {}
    kind = headers.get("x-exchanger-kind", "message")
    lines = []
    if kind == "receipt":
        status = headers.get("x-exchanger-status", "?")
        head = f"receipt {status} for {headers.get('x-exchanger-orig-message-id', '(no message id)')}"
        if headers.get("x-exchanger-duplicate"):
            head += " (a duplicate: this is the original receipt again; nothing was forwarded twice)"
        try:
            root = etree.fromstring(message.body, etree.XMLParser(resolve_entities=False, no_network=True))
            if root.tag == DXP_REP:
                head, lines = _describe_dxp_rep(root, head)
            deliveries = [d.get("to") for d in root.iter(f"{{{NS}}}Delivery")]
            if deliveries:
                head += f" -> delivered to {', '.join(deliveries)}"
            for reason in root.iter(f"{{{NS}}}Reason"):
                where = ", ".join(x for x in (f"line {reason.get('line')}" if reason.get("line") else "", reason.get("path") or "") if x)
                lines.append(f"    [{reason.get('stage')}/{reason.get('code')}]{f' ({where})' if where else ''} {reason.text}")
        except etree.XMLSyntaxError:
            head += " (unreadable body)"
    elif kind == "forward":
        head = (
            f"{headers.get('x-exchanger-message-type', message.type)} {headers.get('x-exchanger-orig-message-id')} "
            f"from {headers.get('x-exchanger-sender')} via route {headers.get('x-exchanger-route')}"
        )
        if headers.get("x-exchanger-approved-by"):
            head += f" (shared under {headers['x-exchanger-approved-by']} {headers.get('x-exchanger-approval-ref')})"
        if headers.get("x-exchanger-envelope", "exchange") != "exchange":
            head += f" in a {headers['x-exchanger-envelope']} envelope"
    else:
        head = f"{message.type or 'message'} {message.message_id or ''}".strip()
    if out is not None:
        name = f"{index:04d}-{kind}-{(message.message_id or 'unnamed').replace('/', '_')}.xml"
        (out / name).write_bytes(message.body)
        head += f" -> {out / name}"
    return [head, *lines]


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("participant")
@click.option("--count", type=click.IntRange(1), default=None, help="Stop after this many messages.")
@click.option("--wait", type=click.FloatRange(0), default=5.0, show_default=True, help="Stop when nothing arrives for this long (seconds).")
@click.option("--out", type=click.Path(file_okay=False, path_type=Path), default=None, help="Write each message to a file here.")
@pass_settings
def receive(settings, participant: str, count: int | None, wait: float, out: Path | None) -> None:
    """Drain PARTICIPANT's mailbox, printing one line per message (acked once written)."""
    url, _ = _connect_as(settings, participant)
    if out is not None:
        out.mkdir(parents=True, exist_ok=True)
    received = 0
    try:
        for message in drain_mailbox(url, participant, count=count, wait=wait):
            received += 1
            for line in _describe(message, out, received):
                click.echo(line)
    except DeliveryError as exc:
        fail(f"cannot read {participant}'s mailbox: {exc}", code=EXIT_BROKER)
    click.echo(f"{received} message(s) received by {participant}", err=True)
    if count is not None and received < count:
        raise SystemExit(EXIT_INCOMPLETE)


COMMANDS = [send, receive]
