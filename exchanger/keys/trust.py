"""Trust in signing certificates: the anchors, their revocation lists, and whether a certificate may sign now."""

from __future__ import annotations

import time
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timezone

import structlog
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from cryptography.x509.verification import Criticality, ExtensionPolicy, PolicyBuilder, Store, VerificationError

from exchanger.errors import ExchangerError
from exchanger.keys.builders import participant_uri
from exchanger.keys.sm2_chain import ChainProblem, sm2_chain
from exchanger.keys.x509_signing import certifies_sm2, crl_signed_by

log = structlog.get_logger("exchanger.trust")

IDENTITY_FIELDS = ("CN", "organizationIdentifier", "serialNumber", "SAN-URI")
DEFAULT_IDENTITY_FIELD = "CN"
DEFAULT_EXPIRY_WARNING_DAYS = 30

CODES = (
    "certificate.identity",
    "certificate.not-yet-valid",
    "certificate.expired",
    "certificate.usage",
    "certificate.untrusted",
    "certificate.crl-missing",
    "certificate.crl-stale",
    "certificate.revoked",
)

_NAME_OIDS = {
    "CN": NameOID.COMMON_NAME,
    "organizationIdentifier": NameOID.ORGANIZATION_IDENTIFIER,
    "serialNumber": NameOID.SERIAL_NUMBER,
}
# id-kp-documentSigning (RFC 9336).
DOCUMENT_SIGNING = x509.ObjectIdentifier("1.3.6.1.5.5.7.3.36")
# A certificate restricted to other purposes (a TLS server's, say) must not sign declarations.
SIGNING_PURPOSES = frozenset(
    {
        ExtendedKeyUsageOID.CLIENT_AUTH,
        ExtendedKeyUsageOID.EMAIL_PROTECTION,
        DOCUMENT_SIGNING,
        ExtendedKeyUsageOID.ANY_EXTENDED_KEY_USAGE,
    }
)
_PURPOSE_NAMES = {
    ExtendedKeyUsageOID.SERVER_AUTH: "serverAuth",
    ExtendedKeyUsageOID.CLIENT_AUTH: "clientAuth",
    ExtendedKeyUsageOID.CODE_SIGNING: "codeSigning",
    ExtendedKeyUsageOID.EMAIL_PROTECTION: "emailProtection",
    ExtendedKeyUsageOID.TIME_STAMPING: "timeStamping",
    ExtendedKeyUsageOID.OCSP_SIGNING: "OCSPSigning",
}
# Each refused message is logged anyway (message.rejected); the alert event comes at most this often per CRL.
STALE_ALERT_INTERVAL = 60.0


class CertificateRefused(ExchangerError):
    """A certificate the exchange does not accept signatures from: a code (one of CODES) and why."""

    def __init__(self, code: str, message: str) -> None:
        super().__init__(message)
        self.code = code
        self.message = message

    def __repr__(self) -> str:
        return f"CertificateRefused({self.code!r}, {self.message!r})"


@dataclass(frozen=True)
class _Outcome:
    """A checked certificate: refused or not, and until when that answer holds (None: until a reload)."""

    refused: CertificateRefused | None
    until: datetime | None
    stale_crl: x509.CertificateRevocationList | None = None


class TrustStore:
    """Trust anchors with one CRL each; checks a certificate's chain, validity, usage, revocation and name.

    Answers are cached per certificate until the earliest time they could change (the certificate's
    or its CA's notAfter, the CRL's nextUpdate). A reload builds a new store, so new CRLs apply at once.
    """

    def __init__(
        self,
        anchors: Iterable[x509.Certificate],
        crls: Iterable[x509.CertificateRevocationList],
        *,
        identity_field: str = DEFAULT_IDENTITY_FIELD,
        expiry_warning_days: int = DEFAULT_EXPIRY_WARNING_DAYS,
    ) -> None:
        if identity_field not in IDENTITY_FIELDS:
            raise ValueError(f"identity field must be one of {', '.join(IDENTITY_FIELDS)}, not {identity_field!r}")
        self.anchors = tuple(anchors)
        self.identity_field = identity_field
        self.expiry_warning_days = expiry_warning_days
        self.problems: list[str] = []
        self._crls: dict[bytes, x509.CertificateRevocationList] = {}
        for anchor in self.anchors:
            if not _is_ca(anchor):
                self.problems.append(f"trust anchor {_subject(anchor)} is not a CA certificate")
        for crl in crls:
            self._add_crl(crl)
        for anchor in self.anchors:
            if _fingerprint(anchor) not in self._crls:
                self.problems.append(
                    f"no CRL for trust anchor {_subject(anchor)}: its certificates will be refused "
                    "(certificate.crl-missing) until its CRL is configured under trust.crls"
                )
        # cryptography's verifier knows no SM2: SM2 anchors are checked by sm2_chain, the others by it.
        webpki_anchors = [anchor for anchor in self.anchors if not certifies_sm2(anchor)]
        self._store = Store(webpki_anchors) if webpki_anchors else None
        self._cache: dict[tuple[int, str | None], tuple[x509.Certificate, _Outcome]] = {}
        self._alerted: dict[bytes, float] = {}

    def _add_crl(self, crl: x509.CertificateRevocationList) -> None:
        issuers = [a for a in self.anchors if crl_signed_by(crl, a)]
        if not issuers:
            self.problems.append(
                f"the CRL issued by {crl.issuer.rfc4514_string()} is not signed by any trust anchor"
            )
            return
        if crl.next_update_utc is None:
            # Without a nextUpdate nobody can tell when the list stops being current.
            self.problems.append(f"the CRL of {_subject(issuers[0])} has no nextUpdate")
            return
        for issuer in issuers:
            known = self._crls.get(_fingerprint(issuer))
            if known is None or known.last_update_utc < crl.last_update_utc:
                self._crls[_fingerprint(issuer)] = crl

    def revocation_lists(self) -> list[tuple[x509.Certificate, x509.CertificateRevocationList]]:
        """Every trust anchor that has a CRL, with it."""
        return [(a, self._crls[_fingerprint(a)]) for a in self.anchors if _fingerprint(a) in self._crls]

    def names(self, certificate: x509.Certificate, participant_id: str) -> bool:
        """Tell whether the certificate names this participant in the configured identity field."""
        expected = participant_uri(participant_id) if self.identity_field == "SAN-URI" else participant_id
        return expected in identities(certificate, self.identity_field)

    def check(
        self, certificate: x509.Certificate, identity: str | None = None, *, at: datetime | None = None, pinned: bool = True
    ) -> None:
        """Raise CertificateRefused unless the certificate may sign (for ``identity``, when given) now or at ``at``."""
        refused = self.assess(certificate, identity, at=at, pinned=pinned)
        if refused is not None:
            raise refused

    def assess(
        self,
        certificate: x509.Certificate,
        identity: str | None = None,
        *,
        at: datetime | None = None,
        pinned: bool = True,
    ) -> CertificateRefused | None:
        """Return why the certificate may not sign (for ``identity``, when given), or None when it may.

        A pinned certificate (one the configuration registers) has its answer remembered; any other, such as
        one a peer e-port's member signed with, is judged afresh, so that what senders send cannot grow the cache.
        """
        if at is not None:
            # An explicit time is a question about another moment: answered afresh, never cached.
            return self._evaluate(certificate, identity, at).refused
        now = datetime.now(timezone.utc)
        # Keyed by the certificate object, which the registry keeps for the life of this store: hashing
        # its DER would cost more than the rest of the lookup. The entry holds the object, so its id
        # cannot be reused while the entry exists; only pinned certificates are kept, so it stays small.
        key = (id(certificate), identity)
        cached = self._cache.get(key) if pinned else None
        if cached is not None and cached[0] is certificate and (cached[1].until is None or now < cached[1].until):
            outcome = cached[1]
        else:
            outcome = self._evaluate(certificate, identity, now)
            if pinned:
                self._cache[key] = (certificate, outcome)
        if outcome.stale_crl is not None:
            self._alert_stale(outcome.stale_crl, now)
        return outcome.refused

    def _evaluate(self, cert: x509.Certificate, identity: str | None, at: datetime) -> _Outcome:
        if identity is not None and not self.names(cert, identity):
            named = ", ".join(identities(cert, self.identity_field)) or "nobody"
            return _refused(
                "certificate.identity",
                f"the certificate {_subject(cert)} names {named} in {self.identity_field}, not {identity}",
            )
        if at < cert.not_valid_before_utc:
            return _refused(
                "certificate.not-yet-valid",
                f"the certificate {_subject(cert)} is not valid before {_when(cert.not_valid_before_utc)}",
                until=cert.not_valid_before_utc,
            )
        if at > cert.not_valid_after_utc:
            return _refused(
                "certificate.expired", f"the certificate {_subject(cert)} expired on {_when(cert.not_valid_after_utc)}"
            )
        usage = _usage_problem(cert)
        if usage:
            return _refused("certificate.usage", f"the certificate {_subject(cert)} {usage}")
        if not self.anchors:
            return _refused("certificate.untrusted", "no trust anchor is configured, so no certificate is trusted")
        try:
            chain = self._chain(cert, at)
        except (VerificationError, ChainProblem) as exc:
            return _refused(
                "certificate.untrusted",
                f"the certificate {_subject(cert)} (issuer {cert.issuer.rfc4514_string()}) does not chain to a "
                f"trusted CA: {exc}",
            )
        if len(chain) < 2:
            return _refused("certificate.untrusted", f"the trust anchor {_subject(cert)} cannot sign documents itself")
        issuer = chain[1]
        crl = self._crls.get(_fingerprint(issuer))
        if crl is None:
            return _refused(
                "certificate.crl-missing",
                f"no CRL of {_subject(issuer)} is loaded, so whether {_subject(cert)} is revoked cannot be told",
            )
        if at > crl.next_update_utc:
            stale = CertificateRefused(
                "certificate.crl-stale",
                f"the CRL of {_subject(issuer)} was due for renewal on {_when(crl.next_update_utc)}; "
                "signatures under this CA are refused until a current CRL is installed and the exchange reloaded",
            )
            return _Outcome(stale, None, stale_crl=crl)
        entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
        if entry is not None:
            return _refused(
                "certificate.revoked",
                f"the certificate {_subject(cert)} (serial {cert.serial_number:x}) was revoked on "
                f"{_when(entry.revocation_date_utc)}{_reason(entry)}",
            )
        return _Outcome(None, min(crl.next_update_utc, *(c.not_valid_after_utc for c in chain)))

    def _chain(self, cert: x509.Certificate, at: datetime) -> list[x509.Certificate]:
        """The certificate's chain up to a trust anchor: SM2 certificates to SM2 anchors, the rest to the others."""
        if certifies_sm2(cert):
            return sm2_chain(cert, self.anchors, at)
        if self._store is None:
            raise ChainProblem("no RSA or ECDSA trust anchor is configured")
        return self._verifier(at).verify(cert, []).chain

    def _verifier(self, at: datetime):
        # The RFC 5280 profile as cryptography's client verifier applies it, with the end-entity rules
        # of a signing certificate: keyUsage digitalSignature required, a SAN allowed but not required.
        ee_policy = (
            ExtensionPolicy.webpki_defaults_ee()
            .may_be_present(x509.SubjectAlternativeName, Criticality.AGNOSTIC, None)
            .may_be_present(x509.ExtendedKeyUsage, Criticality.AGNOSTIC, _check_purposes)
            .require_present(x509.KeyUsage, Criticality.AGNOSTIC, _check_key_usage)
        )
        builder = PolicyBuilder().store(self._store).time(at)
        builder = builder.extension_policies(ca_policy=ExtensionPolicy.webpki_defaults_ca(), ee_policy=ee_policy)
        return builder.build_client_verifier()

    def _alert_stale(self, crl: x509.CertificateRevocationList, now: datetime) -> None:
        key = crl.fingerprint(hashes.SHA256())
        moment = time.monotonic()
        last = self._alerted.get(key)
        if last is not None and moment - last < STALE_ALERT_INTERVAL:
            return
        self._alerted[key] = moment
        log.error(
            "trust.crl_stale",
            issuer=crl.issuer.rfc4514_string(),
            next_update=_when(crl.next_update_utc),
            overdue_hours=round((now - crl.next_update_utc).total_seconds() / 3600, 1),
        )


def identities(certificate: x509.Certificate, field: str) -> list[str]:
    """The values a certificate carries in an identity field (CN, organizationIdentifier, serialNumber, SAN-URI)."""
    if field == "SAN-URI":
        try:
            san = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
        except x509.ExtensionNotFound:
            return []
        return list(san.get_values_for_type(x509.UniformResourceIdentifier))
    return [str(attribute.value) for attribute in certificate.subject.get_attributes_for_oid(_NAME_OIDS[field])]


def days_left(certificate: x509.Certificate, at: datetime | None = None) -> int:
    """Whole days until the certificate expires (negative once it has)."""
    at = at or datetime.now(timezone.utc)
    return (certificate.not_valid_after_utc - at).days


def _usage_problem(cert: x509.Certificate) -> str | None:
    try:
        basic = cert.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    if basic is not None and basic.ca:
        return "is a CA certificate; CA keys sign certificates, not documents"
    try:
        usage = cert.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return "has no keyUsage extension; digitalSignature is required"
    if not usage.digital_signature:
        return "does not allow digital signatures (keyUsage without digitalSignature)"
    try:
        purposes = set(cert.extensions.get_extension_for_class(x509.ExtendedKeyUsage).value)
    except x509.ExtensionNotFound:
        return None
    if not purposes & SIGNING_PURPOSES:
        named = ", ".join(sorted(_PURPOSE_NAMES.get(p, p.dotted_string) for p in purposes))
        return f"is restricted to other purposes ({named}); clientAuth, emailProtection or documentSigning is required"
    return None


def _check_key_usage(_policy, _cert, usage: x509.KeyUsage) -> None:
    if not usage.digital_signature:
        raise ValueError("keyUsage does not include digitalSignature")


def _check_purposes(_policy, _cert, purposes: x509.ExtendedKeyUsage | None) -> None:
    if purposes is not None and not set(purposes) & SIGNING_PURPOSES:
        raise ValueError("extendedKeyUsage allows no signing purpose")


def _is_ca(cert: x509.Certificate) -> bool:
    try:
        return cert.extensions.get_extension_for_class(x509.BasicConstraints).value.ca
    except x509.ExtensionNotFound:
        return False


def _refused(code: str, message: str, *, until: datetime | None = None) -> _Outcome:
    return _Outcome(CertificateRefused(code, message), until)


def _fingerprint(cert: x509.Certificate) -> bytes:
    return cert.fingerprint(hashes.SHA256())


def _subject(cert: x509.Certificate) -> str:
    return cert.subject.rfc4514_string() or "(empty subject)"


def _when(moment: datetime) -> str:
    return moment.strftime("%Y-%m-%d %H:%M:%S UTC")


def _reason(entry: x509.RevokedCertificate) -> str:
    try:
        reason = entry.extensions.get_extension_for_class(x509.CRLReason).value.reason
    except x509.ExtensionNotFound:
        return ""
    return f" ({reason.value})"
