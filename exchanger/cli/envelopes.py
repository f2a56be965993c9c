"""``wrap``: put a document in a national envelope (a DxpMsg) and sign it, as a participant's terminal node does."""

from __future__ import annotations

import hashlib
import sys
from pathlib import Path

import click
from lxml import etree

from exchanger.cli.common import EXIT_CODES_HELP, fail, pass_settings
from exchanger.cli.documents import FILE, signer_for
from exchanger.envelope import Envelope, Inbound
from exchanger.envelopes.dxp import dxp_message
from exchanger.outcome import Rejected
from exchanger.pipeline.stages.identify import Identify
from exchanger.pipeline.stages.parse import Parse
from exchanger.platform_documents import derived_id, timestamp


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("file", type=FILE)
@click.option("--as", "participant", required=True, help="The sending participant, whose key signs the envelope.")
@click.option("--to", "receivers", multiple=True, required=True, help="A receiver the envelope names (up to five).")
@click.option("--envelope", "envelope_name", default="dxp", show_default=True, help="The envelope of the catalogue.")
@click.option("--sign-inner/--no-sign-inner", default=False, help="Sign the document itself first.")
@click.option("--id", "message_id", default=None, help="The envelope's message id (default: derived from the content).")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write here instead of stdout.")
@pass_settings
def wrap(settings, file: Path, participant: str, receivers: tuple[str, ...], envelope_name: str, sign_inner: bool,
         message_id: str | None, out: Path | None) -> None:
    """Wrap FILE in a DxpMsg from PARTICIPANT to the receivers and sign it: what an enterprise lodges over DXP.

    The envelope names the document's type as the envelope catalogue says (CEB311Message for a CEB311).
    """
    config = settings.load()
    envelope_format = config.envelopes.get(envelope_name)
    if envelope_format is None or envelope_format.shape != "dxp":
        fail(f"{envelope_name!r} is not a DXP envelope of the envelope catalogue")
    signer = signer_for(settings, participant)
    document = file.read_bytes()
    try:
        if sign_inner:
            document = signer.sign_bytes(document)
        found = Envelope(Inbound(document))
        Parse(config.limits.max_message_bytes, config.limits)(found)
        Identify(config.catalogue)(found)
    except (ValueError, Rejected) as exc:
        fail(f"{file}: {exc}")
    root = dxp_message(
        message_id=message_id or derived_id("terminal", participant, hashlib.sha256(document).hexdigest()),
        sender=participant,
        receivers=list(receivers),
        created=timestamp(),
        message_type=envelope_format.type_name(found.message_type),
        document=document,
    )
    wrapped = etree.tostring(signer.sign(root, in_place=True), xml_declaration=True, encoding="UTF-8")
    if out:
        out.write_bytes(wrapped)
        click.echo(f"wrapped {file} ({found.message_type.name}) as {participant} for {', '.join(receivers)} -> {out}", err=True)
    else:
        sys.stdout.buffer.write(wrapped)


COMMANDS = [wrap]
