"""Chain validation for SM2 certificates, which ``cryptography``'s X.509 verifier cannot check.

The demo PKI and GACC's own are one level deep: an SM2 root CA that the configuration names as a
trust anchor directly issues signing certificates. So the chain is the certificate and one anchor,
and the checks are those RFC 5280 path validation makes on such a chain: issuer name, the SM2-with-SM3
signature under the anchor's point, the anchor's validity, basicConstraints and keyUsage. The end
entity's own validity, usage and revocation are checked by the trust store as for every certificate.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime

from cryptography import x509

from exchanger.errors import ExchangerError
from exchanger.keys.x509_signing import SM2_WITH_SM3_OID, certifies_sm2, issued_by


class ChainProblem(ExchangerError):
    """Why an SM2 certificate does not chain to a trusted SM2 CA."""


def sm2_chain(
    certificate: x509.Certificate, anchors: Iterable[x509.Certificate], at: datetime
) -> list[x509.Certificate]:
    """Return [certificate, anchor] for the trusted SM2 CA that issued it; raise ChainProblem otherwise."""
    if certificate.signature_algorithm_oid != SM2_WITH_SM3_OID:
        raise ChainProblem(
            f"it holds an SM2 key but is signed with {_algorithm(certificate)}; an SM2 certificate must be "
            "signed with SM2-with-SM3 (1.2.156.10197.1.501) by an SM2 CA"
        )
    issuers = [anchor for anchor in anchors if anchor.subject == certificate.issuer and certifies_sm2(anchor)]
    if not issuers:
        raise ChainProblem(f"no trusted SM2 CA is named {certificate.issuer.rfc4514_string()}")
    for anchor in issuers:
        if issued_by(certificate, anchor):
            problem = anchor_problem(anchor, at)
            if problem:
                raise ChainProblem(f"its CA {anchor.subject.rfc4514_string()} {problem}")
            return [certificate, anchor]
    raise ChainProblem(
        f"its SM2-with-SM3 signature does not verify with the key of the SM2 CA {certificate.issuer.rfc4514_string()}"
    )


def anchor_problem(anchor: x509.Certificate, at: datetime) -> str | None:
    """What keeps an SM2 trust anchor from issuing certificates now, or None."""
    if at < anchor.not_valid_before_utc:
        return f"is not valid before {anchor.not_valid_before_utc:%Y-%m-%d %H:%M:%S} UTC"
    if at > anchor.not_valid_after_utc:
        return f"expired on {anchor.not_valid_after_utc:%Y-%m-%d %H:%M:%S} UTC"
    try:
        basic = anchor.extensions.get_extension_for_class(x509.BasicConstraints).value
    except x509.ExtensionNotFound:
        basic = None
    if basic is None or not basic.ca:
        return "is not a CA certificate (basicConstraints without CA:TRUE)"
    try:
        usage = anchor.extensions.get_extension_for_class(x509.KeyUsage).value
    except x509.ExtensionNotFound:
        return None  # RFC 5280 §4.2.1.3: without keyUsage, the key may sign certificates
    if not usage.key_cert_sign:
        return "may not sign certificates (keyUsage without keyCertSign)"
    return None


def _algorithm(certificate: x509.Certificate) -> str:
    oid = certificate.signature_algorithm_oid
    return f"{oid._name} ({oid.dotted_string})" if oid._name != "Unknown OID" else oid.dotted_string
