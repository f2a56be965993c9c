"""``exchanger evidence export|verify``: one message's evidence bundle, and checking one offline."""

from __future__ import annotations

from pathlib import Path

import click
from cryptography import x509

from exchanger.cli.common import EXIT_CODES_HELP, EXIT_FAILED, EXIT_FILE, fail, pass_settings
from exchanger.cli.log import open_log
from exchanger.operations.actor import Operator
from exchanger.operations.evidence import export_bundle, verify_bundle


@click.group()
def evidence() -> None:
    """Evidence bundles: a message's documents, log records, chain path to a signed checkpoint, certificates."""


@evidence.command(epilog=EXIT_CODES_HELP)
@click.argument("message_id")
@click.option("--sender", default=None, help="The participant that sent it (needed when several used the same id).")
@click.option("--out", "out", required=True, type=click.Path(dir_okay=False, path_type=Path), help="The .zip to write.")
@click.option("--sign-checkpoint", is_flag=True,
              help="If no signed checkpoint covers the message yet, sign one now with the platform key.")
@pass_settings
def export(settings, message_id: str, sender: str | None, out: Path, sign_checkpoint: bool) -> None:
    """Write the evidence bundle of MESSAGE_ID: what anyone can check offline with `evidence verify`.

    The export is recorded in the message log under your login name.
    """
    config = settings.load()
    store = open_log(settings, config.journal.url)
    try:
        payload = export_bundle(store, config, message_id, sender, Operator.from_login(), sign_checkpoint=sign_checkpoint)
    finally:
        store.close()
    try:
        out.write_bytes(payload)
    except OSError as exc:
        fail(f"cannot write {out}: {exc.strerror}", code=EXIT_FILE)
    click.echo(f"{out}: evidence of message {message_id} ({len(payload)} bytes); check it with `exchanger evidence verify {out}`")


@evidence.command(epilog=EXIT_CODES_HELP)
@click.argument("bundle", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--ca", "cas", multiple=True, type=click.Path(exists=True, dir_okay=False, path_type=Path),
              help="A CA certificate you trust (PEM), instead of the configuration's trust anchors. Repeat for several.")
@click.option("-v", "--verbose", is_flag=True, help="List every check, not only the failed ones.")
@pass_settings
def verify(settings, bundle: Path, cas: tuple[Path, ...], verbose: bool) -> None:
    """Check BUNDLE offline: every document's digest, each record's hash along the chain to the signed
    checkpoint, the checkpoint's signature, and the certificates' chain to a CA you trust. Exit 0 only if all hold.

    The CA is one given with --ca (someone without this exchange's configuration passes the CA
    certificate they trust), or else one of the configuration's trust anchors: never merely the
    bundle's own, which anyone could have replaced along with everything it vouches for.
    """
    if cas:
        try:
            trusted = [x509.load_pem_x509_certificate(path.read_bytes()) for path in cas]
        except ValueError as exc:
            fail(f"not a PEM certificate: {exc}", code=EXIT_FILE)
    else:
        config = settings.load()
        trusted = list(config.trust.anchors) if config.trust is not None else []
        if not trusted:
            fail(f"{settings.config_path} names no trust anchors: give the CA certificate you trust with --ca")
    verdict = verify_bundle(bundle, trusted)
    for check in verdict.checks:
        if verbose or not check.ok:
            mark = click.style("ok  ", fg="green") if check.ok else click.style("FAIL", fg="red")
            click.echo(f"  {mark} {check.name}: {check.detail}")
    if not verdict.ok:
        click.secho(f"FAIL {bundle}: {len(verdict.problems)} check(s) failed", fg="red")
        raise SystemExit(EXIT_FAILED)
    click.echo(f"OK   {bundle}: message {verdict.message_id or '(no id)'} from {verdict.sender or '?'}; "
               f"{len(verdict.checks)} checks held")


COMMANDS = [evidence]
