"""Certificate expiries ahead: the platform's, each participant's and the trust anchors', soonest first."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

from cryptography import x509

from exchanger.config.loader import read_trust
from exchanger.keys.material import load_certificate
from exchanger.keys.trust import days_left

SHOWN = 12  # the soonest expiries listed; the window's are always all listed
DEFAULT_WINDOW_DAYS = 90


@dataclass(frozen=True)
class CertificateExpiry:
    """One certificate's owner, subject, serial, end of validity and the days left then."""

    owner: str
    subject: str
    serial: str
    not_after: str
    days_left: int

    @property
    def expired(self) -> bool:
        """True once the certificate's validity has ended."""
        return self.days_left < 0


def configured_certificates(config_path: Path | str) -> list[tuple[str, x509.Certificate]]:
    """(owner, certificate) for every certificate the configuration names and every trust anchor; unreadable ones skipped."""
    store, files, _ = read_trust(config_path)
    owned = [("trust anchor", anchor) for anchor in store.anchors]
    for file in files:
        try:
            owned.append((f"{file.owner} (platform)" if file.platform else file.owner, load_certificate(file.path)))
        except (OSError, ValueError):
            continue  # `exchanger keys check` names what cannot be read; the report lists what it can
    return owned


def config_certificates(config) -> list[tuple[str, x509.Certificate]]:
    """(owner, certificate) for a loaded configuration: the platform's, the participants' and the trust anchors."""
    owned = [(f"{config.platform.id} (platform)", config.platform.certificate)]
    owned += [(participant.id, cert) for participant in config.registry for cert in participant.certificates]
    if config.trust is not None:
        owned += [("trust anchor", anchor) for anchor in config.trust.anchors]
    return [(owner, cert) for owner, cert in owned if cert is not None]


def expiries(owned: Iterable[tuple[str, x509.Certificate]], as_of: datetime,
             window_days: int = DEFAULT_WINDOW_DAYS) -> list[CertificateExpiry]:
    """The certificates soonest to expire: every one within the window (or expired), at least the first SHOWN."""
    rows, seen = [], set()
    for owner, cert in owned:
        if (owner, cert.serial_number) in seen:
            continue
        seen.add((owner, cert.serial_number))
        rows.append(CertificateExpiry(
            owner=owner,
            subject=cert.subject.rfc4514_string(),
            serial=format(cert.serial_number, "x"),
            not_after=f"{cert.not_valid_after_utc:%Y-%m-%d}",
            days_left=days_left(cert, as_of),
        ))
    rows.sort(key=lambda row: (row.days_left, row.owner, row.serial))
    return [row for n, row in enumerate(rows) if n < SHOWN or row.days_left <= window_days]
