"""``keys``: the demo PKI, and the state of every certificate the exchange trusts, signs or verifies with."""

from __future__ import annotations

from dataclasses import astuple, dataclass
from datetime import datetime, timezone
from pathlib import Path

import click
from cryptography import x509

from exchanger.cli.common import EXIT_CODES_HELP, EXIT_USAGE, fail, pass_settings
from exchanger.config.loader import CertificateFile, ConfigError, load_config, read_identities, read_trust
from exchanger.keys.material import load_certificate, load_private_key, same_public_key, serial_hex
from exchanger.errors import ExchangerError
from exchanger.keys.builders import ALGORITHMS, algorithm_of
from exchanger.keys.pki import init_demo_pki, issue_certificate, revoke_certificate
from exchanger.keys.trust import TrustStore, days_left

REASONS = ("keyCompromise", "affiliationChanged", "superseded", "cessationOfOperation", "unspecified")


@click.group()
def keys() -> None:
    """Keys and certificates of the platform and the participants."""


@keys.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--algorithm", type=click.Choice(ALGORITHMS), default="rsa", show_default=True, help="RSA-2048, ECDSA P-256 or SM2 keys."
)
@click.option("--force", is_flag=True, help="Regenerate everything, even what exists (invalidates issued certificates).")
@pass_settings
def init(settings, algorithm: str, force: bool) -> None:
    """Create the demo PKI for every identity the configuration names (existing files are kept).

    A CRL within a week of its next update is renewed, keeping its entries.
    """
    keys_dir, platform, participants, daemon_user = _identities(settings)
    written = init_demo_pki(keys_dir, [platform, *participants], algorithm=algorithm, force=force, daemon_user=daemon_user)
    click.echo(f"{keys_dir}: {len(written)} file(s) written for {1 + len(participants)} identities (CA, platform {platform[0]}, participants)")


@dataclass(frozen=True)
class Row:
    """One certificate as `keys list` shows it, and what is wrong with it, if anything."""

    owner: str
    subject: str
    issuer: str
    serial: str
    not_after: str
    days: str
    status: str


@keys.command("list", epilog=EXIT_CODES_HELP)
@click.option(
    "--warn-days",
    type=click.IntRange(0),
    default=None,
    help="Days before expiry that count as expiring (default: trust.expiry_warning_days).",
)
@pass_settings
def list_(settings, warn_days: int | None) -> None:
    """Every certificate: trust anchors, the platform's and each participant's, with its state.

    Status is valid, expiring (within the warning window), or why signatures with it are refused:
    expired, not-yet-valid, revoked, untrusted, crl-stale, crl-missing, usage, identity, key-mismatch.
    """
    store, rows, crls, _ = _inventory(settings, warn_days)
    headers = Row("OWNER", "SUBJECT", "ISSUER", "SERIAL", "NOT AFTER", "DAYS", "STATUS")
    _table([headers, *rows])
    if crls:
        click.echo()
        _table([("CRL OF", "NUMBER", "NEXT UPDATE", "DAYS", "STATUS"), *crls])
    click.echo(f"\n(identity field {store.identity_field}; expiring = within {_window(store, warn_days)} days)")


@keys.command(epilog=EXIT_CODES_HELP)
@click.option(
    "--warn-days",
    type=click.IntRange(0),
    default=None,
    help="Days before expiry that count as a problem (default: trust.expiry_warning_days).",
)
@pass_settings
def check(settings, warn_days: int | None) -> None:
    """Check every certificate and CRL; exit 1 listing every problem, 0 when there is none.

    A problem is a certificate expired, not yet valid, revoked, untrusted, not for signing, naming
    someone else, expiring within the window or not matching its key; a CRL stale or missing.
    """
    store, rows, crls, problems = _inventory(settings, warn_days)
    if problems:
        fail(f"{len(problems)} problem(s) with the exchange's keys and certificates:", problems)
    click.echo(
        f"OK: {len(rows)} certificate(s) and {len(crls)} CRL(s) checked; none expires within "
        f"{_window(store, warn_days)} days"
    )


@keys.command(epilog=EXIT_CODES_HELP)
@click.argument("participant")
@click.option(
    "--algorithm", type=click.Choice(ALGORITHMS), default=None, help="Type of the new key (default: the current key's)."
)
@click.option("--same-key", is_flag=True, help="Renew the certificate of the current key instead of making a new key.")
@pass_settings
def issue(settings, participant: str, algorithm: str | None, same_key: bool) -> None:
    """Issue PARTICIPANT (or the platform) a new key and certificate from the demo CA.

    The certificate replaced is kept as keys/<id>/cert-<serial>.pem, so that both can be listed
    under the participant's `certificates:` while it moves to the new key.
    """
    keys_dir, platform, participants, _ = _identities(settings)
    names = dict([platform, *participants])
    if participant not in names:
        fail(f"{participant!r} is neither the platform nor a participant", [f"known: {', '.join(names)}"], EXIT_USAGE)
    key_path = keys_dir / participant / "key.pem"
    algorithm = algorithm or _algorithm_of(key_path)
    try:
        written = issue_certificate(
            keys_dir, participant, names[participant], algorithm, new_key=not same_key, keep_previous=True
        )
    except FileNotFoundError as exc:
        fail(f"the demo CA is incomplete ({exc.filename} is missing)", ["run `exchanger keys init` first"])
    cert_path = keys_dir / participant / "cert.pem"
    cert = load_certificate(cert_path)
    click.echo(
        f"{_shown(cert_path)}: serial {serial_hex(cert)}, valid until {cert.not_valid_after_utc:%Y-%m-%d}, "
        f"{'the same key' if same_key else f'a new {algorithm.upper()} key in {_shown(key_path)}'}"
    )
    kept = [p for p in written if p.name.startswith("cert-")]
    if participant == platform[0]:
        click.echo("reload the exchange (SIGHUP): it signs with the new key from then on")
    elif kept:
        click.echo(f"the previous certificate is kept as {_shown(kept[0])}; to accept both during the overlap, set")
        click.echo(f"  participants.{participant}.certificates: [{_shown(cert_path)}, {_shown(kept[0])}]")
        click.echo("in the configuration and reload the exchange (SIGHUP); remove the old one when the overlap ends")


@keys.command(epilog=EXIT_CODES_HELP)
@click.argument("target", metavar="PARTICIPANT|SERIAL")
@click.option(
    "--reason", type=click.Choice(REASONS), default="unspecified", show_default=True, help="The reason recorded in the CRL."
)
@pass_settings
def revoke(settings, target: str, reason: str) -> None:
    """Revoke a certificate of the demo CA and regenerate keys/ca/crl.pem.

    PARTICIPANT revokes its current keys/<id>/cert.pem; SERIAL (hex, as `keys list` shows it) any one.
    The exchange refuses signatures with it once reloaded (SIGHUP).
    """
    keys_dir, platform, participants, _ = _identities(settings)
    ids = {platform[0], *(pid for pid, _ in participants)}
    subject = None
    if target in ids:
        try:
            cert = load_certificate(keys_dir / target / "cert.pem")
        except OSError:
            fail(f"{target} has no certificate at {_shown(keys_dir / target / 'cert.pem')}")
        serial, subject = cert.serial_number, cert.subject.rfc4514_string()
    else:
        try:
            serial = int(target.lower().removeprefix("0x").replace(":", ""), 16)
        except ValueError:
            fail(f"{target!r} is neither a participant nor a serial number in hex", code=EXIT_USAGE)
    flag = None if reason == "unspecified" else x509.ReasonFlags[_snake(reason)]
    try:
        crl = revoke_certificate(keys_dir, serial, reason=flag)
    except FileNotFoundError as exc:
        fail(f"the demo CA is incomplete ({exc.filename} is missing)", ["run `exchanger keys init` first"])
    number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
    click.echo(
        f"revoked serial {serial:x}{f' ({subject})' if subject else ''}: {_shown(keys_dir / 'ca' / 'crl.pem')} "
        f"is CRL number {number}, next update {crl.next_update_utc:%Y-%m-%d}; reload the exchange (SIGHUP) to apply it"
    )
    if target == platform[0]:
        click.echo(
            f"the exchange does not start or reload on a revoked certificate: `exchanger keys issue {target}` first"
        )


def _inventory(settings, warn_days: int | None) -> tuple[TrustStore, list[Row], list[tuple], list[str]]:
    """Every certificate and CRL the configuration names, each with its state, and every problem found."""
    try:
        store, files, problems = read_trust(settings.config_path)
    except ConfigError as exc:
        fail(f"the configuration {settings.config_path} cannot be read:", exc.problems)
    window = _window(store, warn_days)
    now = datetime.now(timezone.utc)
    rows = [_anchor_row(anchor, now, window, problems) for anchor in store.anchors]
    # A peer e-port's platform certificate chains to the peer's own CA: judged in its trust domain, not here.
    domains = _domains(settings)
    rows += [
        _certificate_row(domains[file.owner].store if file.owner in domains else store, file, now, window, problems,
                         peer=file.owner in domains)
        for file in files
    ]
    crls = []
    for anchor, crl in store.revocation_lists():
        number = crl.extensions.get_extension_for_class(x509.CRLNumber).value.crl_number
        left = (crl.next_update_utc - now).days
        stale = now > crl.next_update_utc
        shown = f"{crl.next_update_utc:%Y-%m-%d %H:%M}"
        crls.append((_subject(anchor), str(number), shown, str(left), "stale" if stale else "current"))
        if stale:
            problems.append(
                f"the CRL of {_subject(anchor)} is stale since {shown} UTC: every signature under this CA is "
                "refused until a current CRL is installed (`exchanger keys init` renews the demo CA's)"
            )
    return store, rows, crls, problems


def _anchor_row(anchor: x509.Certificate, now: datetime, window: int, problems: list[str]) -> Row:
    left = days_left(anchor, now)
    status = "expired" if left < 0 else "not-yet-valid" if now < anchor.not_valid_before_utc else "valid"
    if status == "valid" and left < window:
        status = "expiring"
    if status != "valid":
        problems.append(f"trust anchor {_subject(anchor)}: {status} (not after {anchor.not_valid_after_utc:%Y-%m-%d})")
    return _row("(trust anchor)", anchor, left, status)


def _domains(settings) -> dict:
    """The peers' trust domains, when the whole configuration loads; none otherwise (its problems show elsewhere)."""
    try:
        return dict(load_config(settings.config_path).domains)
    except ConfigError:
        return {}


def _certificate_row(store: TrustStore, file: CertificateFile, now: datetime, window: int, problems: list[str],
                     peer: bool = False) -> Row:
    owner = f"{file.owner} (platform)" if file.platform else f"{file.owner} (peer e-port, in its domain)" if peer else file.owner
    try:
        cert = load_certificate(file.path)
    except (OSError, ValueError) as exc:
        why = getattr(exc, "strerror", None) or exc
        problems.append(f"{owner}: certificate {_shown(file.path)} cannot be read: {why}")
        return Row(owner, str(_shown(file.path)), "-", "-", "-", "-", "unreadable")
    left = days_left(cert, now)
    refused = store.assess(cert, file.owner)
    if refused is not None:
        problems.append(f"{owner}: {_shown(file.path)}: {refused.code}: {refused.message}")
        return _row(owner, cert, left, refused.code.removeprefix("certificate."))
    if file.key_path is not None and file.key_path.exists():
        try:
            matches = same_public_key(cert, load_private_key(file.key_path))
        except (OSError, ValueError) as exc:
            problems.append(f"{owner}: private key {_shown(file.key_path)} cannot be read: {exc}")
            return _row(owner, cert, left, "key-unreadable")
        if not matches:
            problems.append(f"{owner}: {_shown(file.path)} does not belong to the private key {_shown(file.key_path)}")
            return _row(owner, cert, left, "key-mismatch")
    if left < window:
        problems.append(
            f"{owner}: {_shown(file.path)} expires in {left} day(s), on {cert.not_valid_after_utc:%Y-%m-%d} "
            f"(`exchanger keys issue {file.owner}` for a new one)"
        )
        return _row(owner, cert, left, "expiring")
    return _row(owner, cert, left, "valid")


def _row(owner: str, cert: x509.Certificate, left: int, status: str) -> Row:
    return Row(
        owner,
        _subject(cert),
        cert.issuer.rfc4514_string(),
        serial_hex(cert),
        f"{cert.not_valid_after_utc:%Y-%m-%d}",
        str(left),
        status,
    )


def _table(rows) -> None:
    cells = [[str(value) for value in (astuple(row) if isinstance(row, Row) else row)] for row in rows]
    widths = [max(len(row[i]) for row in cells) for i in range(len(cells[0]))]
    for row in cells:
        click.echo("  ".join(value.ljust(width) for value, width in zip(row, widths)).rstrip())


def _identities(settings):
    try:
        return read_identities(settings.config_path)
    except ConfigError as exc:
        fail(f"the configuration {settings.config_path} cannot be read:", exc.problems)


def _window(store: TrustStore, warn_days: int | None) -> int:
    return store.expiry_warning_days if warn_days is None else warn_days


def _algorithm_of(key_path: Path) -> str:
    try:
        key = load_private_key(key_path)
    except (OSError, ValueError, ExchangerError):
        return "rsa"
    return algorithm_of(key)


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def _shown(path: Path) -> Path:
    """A path relative to the working directory when it is below it, as an operator would type it."""
    try:
        return path.resolve().relative_to(Path.cwd())
    except ValueError:
        return path


def _snake(camel: str) -> str:
    return "".join(f"_{c.lower()}" if c.isupper() else c for c in camel).lstrip("_")


COMMANDS = [keys]
