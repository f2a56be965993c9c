"""Stage 4: verify the sender's enveloped signature against a pinned certificate that chains to a trusted CA."""

from __future__ import annotations

import hashlib
from collections.abc import Mapping

from cryptography.hazmat.primitives.serialization import Encoding

from exchanger.catalogue import SIGNED_BY_ENVELOPE
from exchanger.dsig.encoding import decode_base64
from exchanger.dsig.verifier import SignatureError, Verifier
from exchanger.envelope import Envelope
from exchanger.keys.domains import TrustDomain
from exchanger.keys.trust import CertificateRefused, TrustStore
from exchanger.outcome import Reason, Rejected
from exchanger.participants import Registry
from exchanger.pipeline.stages.relay import RelayedSignature

_DS = "{http://www.w3.org/2000/09/xmldsig#}"
_CERT_PATH = f"{_DS}Signature/{_DS}KeyInfo/{_DS}X509Data/{_DS}X509Certificate"


class Verify:
    """Find the signer by the certificate in the signature, check that certificate, then the signature with it.

    The certificate must be registered (pinned) for a participant, name that participant, chain to a
    trust anchor, be within its validity period, allow digital signatures and not be revoked.
    From here on, stages read ``envelope.signed_root``: the content the signature covers.
    """

    name = "verify"

    def __init__(
        self,
        registry: Registry,
        trust: TrustStore | None,
        verifier: Verifier | None = None,
        domains: Mapping[str, TrustDomain] | None = None,
    ):
        self.registry = registry
        self.verifier = verifier or Verifier()
        # Without a trust store every signature is refused below, never accepted unchecked.
        self.trust = trust
        # A peer e-port's platform certificate chains to the peer's own anchors, not to this exchange's.
        self.domains = dict(domains or {})
        self.relay = RelayedSignature(self.domains, self.verifier)
        self._by_fingerprint = {
            hashlib.sha256(cert.public_bytes(Encoding.DER)).digest(): (participant, cert)
            for participant in registry
            for cert in participant.certificates
        }

    @classmethod
    def for_config(cls, config) -> Verify:
        """The stage as a configuration builds it: its participants, trust, signature settings and peers' domains."""
        return cls(config.registry, config.trust, Verifier(config.signatures), config.domains)

    def _reject(self, code: str, message: str) -> Rejected:
        return Rejected(Reason(self.name, code, message))

    def __call__(self, envelope: Envelope) -> None:
        if envelope.message_type is not None and envelope.message_type.signed_by == SIGNED_BY_ENVELOPE:
            self._by_envelope(envelope)
            return
        root = envelope.tree.getroot()
        cert_node = root.find(_CERT_PATH)
        if cert_node is None or not (cert_node.text or "").strip():
            raise self._unpinned(root)
        if len(cert_node):
            # .text stops at the first child: markup inside the certificate is the profile's to name.
            raise self._structural(root, SignatureError("signature.unsigned-content", "the X509Certificate holds markup"))
        try:
            der = decode_base64(cert_node.text, "the X509Certificate in KeyInfo", "signature.key-info")
        except SignatureError as exc:
            raise self._structural(root, exc) from None
        signer, certificate = self._by_fingerprint.get(hashlib.sha256(der).digest(), (None, None))
        domain = self.relay.domain_of(envelope.carrier) if signer is None else None
        if domain is not None:
            # Relayed by a peer e-port: its member's certificate is judged in the peer's domain alone.
            envelope.signer, envelope.signed_root = self.relay.verify(root, der, domain, envelope.carrier.signer)
            return
        if signer is None:
            raise self._reject(
                "signature.certificate",
                f"signed with a certificate that is not registered with this exchange "
                f"(sha256 {hashlib.sha256(der).hexdigest()[:16]}…)",
            )
        domain = self.domains.get(signer.id)
        trust = domain.store if domain is not None else self.trust
        if trust is None:
            raise self._reject("certificate.untrusted", "no trust anchors are configured, so no signer can be trusted")
        # Checked before the signature itself so that an expired, revoked or untrusted certificate is
        # refused for that reason, not for whatever the signature library makes of it.
        try:
            trust.check(certificate, signer.id)
        except CertificateRefused as exc:
            raise self._reject(exc.code, exc.message) from None
        try:
            verified = self.verifier.verify(root, [certificate])
        except SignatureError as exc:
            raise self._reject(exc.code, str(exc)) from None
        envelope.signer = signer
        envelope.signed_root = verified.signed_root

    def _by_envelope(self, envelope: Envelope) -> None:
        """A type whose schema leaves no place for a signature is its signed envelope's: Data is under that signature."""
        carrier = envelope.carrier
        if carrier is None or carrier.signer is None:
            name = envelope.message_type.name
            raise self._reject(
                "signature.envelope-required",
                f"a {name} has no place for a signature of its own: send it in a signed envelope (a DxpMsg)",
            )
        # Unwrap read the carried bytes from the envelope's signed content only, so they are covered too.
        envelope.signer = carrier.signer
        envelope.signed_root = envelope.tree.getroot()

    def _refusal_without_certificate(self, root) -> SignatureError | None:
        """What the verifier's structural checks (profile, algorithms, placement, KeyInfo) say of the signature."""
        try:
            # With no certificate to verify against, this only ever raises.
            self.verifier.verify(root, ())
        except SignatureError as exc:
            return exc
        return None  # pragma: no cover - verify(root, ()) always raises

    def _structural(self, root, fallback: SignatureError) -> Rejected:
        """The verifier's own reason for refusing a signature whose certificate cannot be read, else fallback's."""
        refusal = self._refusal_without_certificate(root) or fallback
        return self._reject(refusal.code, refusal.message)

    def _unpinned(self, root) -> Rejected:
        """Explain a document whose signature carries no certificate: no signature, or what is wrong with it."""
        refusal = self._refusal_without_certificate(root)
        if refusal is not None and refusal.code != "signature.missing":
            # e.g. HMAC or a bare KeyValue
            return self._reject(refusal.code, refusal.message)
        return self._reject(
            "signature.missing",
            "the document carries no enveloped ds:Signature with an X509Certificate "
            "(sign it with your participant certificate, e.g. `exchanger sign FILE --as YOU`)",
        )
