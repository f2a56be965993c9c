"""``validate``, ``sign`` and ``verify``: work on one XML file, no broker needed."""

from __future__ import annotations

import sys
from pathlib import Path

import click

from exchanger.catalogue import FieldError
from exchanger.cli.common import EXIT_CODES_HELP, EXIT_FAILED, fail, pass_settings
from exchanger.config import ConfigError, load_catalogue
from exchanger.config.loader import catalogue_path_of, read_identities, read_signature_settings
from exchanger.dsig.layers import Layer, verify_layers
from exchanger.dsig.signer import Signer
from exchanger.envelopes.layers import verify_envelope_layers
from exchanger.envelope import Envelope, Inbound
from exchanger.outcome import Rejected
from exchanger.pipeline.stages.authenticate import Authenticate
from exchanger.pipeline.stages.identify import Identify
from exchanger.pipeline.stages.parse import Parse
from exchanger.pipeline.stages.validate import Validate
from exchanger.pipeline.stages.verify import Verify

FILE = click.Path(exists=True, dir_okay=False, path_type=Path)


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("files", nargs=-1, required=True, type=FILE)
@click.option(
    "--catalogue",
    type=FILE,
    default=None,
    help="A message catalogue to validate against instead of the configuration's.",
)
@pass_settings
def validate(settings, files: tuple[Path, ...], catalogue: Path | None) -> None:
    """Validate documents against their message type's XSD (found by root element)."""
    try:
        source = catalogue or catalogue_path_of(settings.config_path)
        if source is None:
            catalogue_obj = settings.load().catalogue
        else:
            catalogue_obj = load_catalogue(source)
    except ConfigError as exc:
        fail("the message catalogue cannot be used:", exc.problems)
    stages = [Parse(max_bytes=None), Identify(catalogue_obj), Validate()]
    failures = 0
    for path in files:
        envelope = Envelope(Inbound(path.read_bytes()))
        try:
            for stage in stages:
                stage(envelope)
        except Rejected as exc:
            failures += 1
            click.secho(f"{path}: INVALID", fg="red")
            for reason in exc.reasons:
                click.echo(f"  {reason.describe()}")
            continue
        click.secho(f"{path}: valid {envelope.message_type.name}", fg="green")
    if failures:
        raise SystemExit(EXIT_FAILED)


def signer_for(settings, participant: str) -> Signer:
    """The signer holding a participant's key and certificate from keys/, or exit with what to do."""
    try:
        keys_dir = read_identities(settings.config_path)[0]
        signatures = read_signature_settings(settings.config_path)
    except ConfigError as exc:
        fail(f"the configuration {settings.config_path} cannot be read:", exc.problems)
    key, cert = keys_dir / participant / "key.pem", keys_dir / participant / "cert.pem"
    if not key.exists() or not cert.exists():
        fail(f"no key and certificate for {participant!r} in {keys_dir}", ["run `exchanger keys init`"])
    # The configured SM2 signer ID and encoding, so that what this command signs is what the exchange expects.
    return Signer(key, cert, signatures)


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("file", type=FILE)
@click.option("--as", "participant", required=True, help="The participant whose key signs.")
@click.option("--out", type=click.Path(dir_okay=False, path_type=Path), default=None, help="Write here instead of stdout.")
@pass_settings
def sign(settings, file: Path, participant: str, out: Path | None) -> None:
    """Sign a document with a participant's key (enveloped XML-DSig over the whole document)."""
    try:
        signed = signer_for(settings, participant).sign_bytes(file.read_bytes())
    except ValueError as exc:
        fail(f"{file}: {exc}")
    if out:
        out.write_bytes(signed)
        click.echo(f"signed {file} as {participant} -> {out}", err=True)
    else:
        sys.stdout.buffer.write(signed)


def identity_layer(data: bytes, config) -> Layer:
    """The sender's layer as the daemon judges it: the signer must be the sender the document names.

    A file has no broker connection, so the daemon's own stages run as if the sender it names had
    sent it: a document signed by anyone else is refused with the authenticate stage's words.
    """
    envelope = Envelope(Inbound(data, user_id="(file)"))
    stages = [
        Parse(config.limits.max_message_bytes, config.limits),
        Identify(config.catalogue),
        Validate(),
        Verify.for_config(config),
    ]
    named = None
    try:
        for stage in stages:
            stage(envelope)
        named = envelope.message_type.sender(envelope.signed_root)
        envelope.connected_as = config.registry.get(named or "") or envelope.signer
        Authenticate.for_config(config)(envelope)
    except FieldError as exc:
        return Layer("sender", False, f"[authenticate/catalogue.field-error] {exc}")
    except Rejected as exc:
        as_if = f" (as if {named}, the sender it names, had sent it)" if named else ""
        return Layer("sender", False, "; ".join(reason.describe() for reason in exc.reasons) + as_if)
    return Layer("sender", True, f"signed by {envelope.signer.id}, the sender it names")


@click.command(epilog=EXIT_CODES_HELP)
@click.argument("file", type=FILE)
@click.option(
    "--extract",
    type=click.Path(dir_okay=False, path_type=Path),
    default=None,
    help="For a forwarded message, write the sender's original document here.",
)
@pass_settings
def verify(settings, file: Path, extract: Path | None) -> None:
    """Verify every signature layer: the exchange's, and the sender's inside a forwarded message.

    A DxpMsg is checked in both layers, its envelope's signature (the exchange's or a participant's)
    and the sender's inside, and the envelope must agree with the message it carries; a DxpRep is
    checked as the exchange's.

    The sender's layer is judged as the exchange judges it: signed by a registered participant
    whose certificate is valid, and by the very sender the document names.
    """
    config = settings.load()
    data = file.read_bytes()
    layers, original = verify_envelope_layers(data, config) or verify_layers(data, config)
    layers = [
        identity_layer(original if original is not None else data, config) if layer.layer == "sender" and layer.ok else layer
        for layer in layers
    ]
    for layer in layers:
        mark = click.style("OK  ", fg="green") if layer.ok else click.style("FAIL", fg="red")
        click.echo(f"{mark} {layer.layer}: {layer.detail}")
    if extract and original is not None:
        extract.write_bytes(original)
        click.echo(f"original document written to {extract}", err=True)
    if not all(layer.ok for layer in layers):
        raise SystemExit(EXIT_FAILED)


COMMANDS = [validate, sign, verify]
