"""What a peer e-port relays: a message signed by one of its members, believed only within the peer's trust domain.

A message an enterprise of peer A lodged with A reaches this exchange in a DxpMsg signed by A's platform. Its
inner signature is by a certificate this exchange never registered: it is checked against A's domain alone
(anchors, CRLs, identity field), never this exchange's, and the identity it names must be one A may vouch for.
The platforms that relayed the message are listed, in order, in the envelope each signed (RelayPath): a message
that already passed through this exchange, or whose last relay is not the platform that signed it, is refused.
"""

from __future__ import annotations

from collections.abc import Mapping

from cryptography import x509

from exchanger.dsig.verifier import SignatureError, Verifier
from exchanger.keys.builders import PARTICIPANT_URN_PREFIX
from exchanger.keys.domains import TrustDomain
from exchanger.keys.trust import CertificateRefused, identities
from exchanger.outcome import Reason, Rejected
from exchanger.participants import Participant, Registry

MAX_PATH = 64  # RelayPath travels in one DXP BizKey Key, which holds at most 64 characters


def relay_path(text: str | None) -> tuple[str, ...]:
    """The platforms a message passed through, from the RelayPath the envelope carries (space-separated ids)."""
    return tuple((text or "").split())


def received_path(envelope) -> tuple[str, ...]:
    """The path a relayed message came by, as the peer's signed envelope gives it; () for one lodged here."""
    sender, carrier = envelope.sender, envelope.carrier
    if sender is None or sender.relayed_by is None or carrier is None:
        return ()
    return relay_path(carrier.fields.get("relay_path"))


def written_path(received: tuple[str, ...], platform_id: str) -> str | None:
    """The RelayPath to write on a copy for a peer: the path received, then this platform; None when too long."""
    path = " ".join((*received, platform_id))
    return path if len(path) <= MAX_PATH else None


def identity_of(certificate: x509.Certificate, field: str) -> str | None:
    """The one identity a certificate names in a domain's identity field, or None when it names none or several."""
    found = identities(certificate, field)
    if len(found) != 1:
        return None
    value = found[0]
    if field == "SAN-URI":
        return value[len(PARTICIPANT_URN_PREFIX):] if value.startswith(PARTICIPANT_URN_PREFIX) else None
    return value


class RelayedSignature:
    """Verify an inner signature by a certificate of a peer's member against that peer's domain, not this exchange's."""

    def __init__(self, domains: Mapping[str, TrustDomain], verifier: Verifier):
        self.domains = dict(domains)
        self.verifier = verifier

    def domain_of(self, carrier) -> TrustDomain | None:
        """The domain of the peer e-port whose platform signed the envelope, when one did."""
        relayer = getattr(carrier, "signer", None) if carrier is not None else None
        if relayer is None or not relayer.external:
            return None
        return self.domains.get(relayer.id)

    def verify(self, root, der: bytes, domain: TrustDomain, relayer: Participant) -> tuple[Participant, object]:
        """The relayed signer and the signed content, or Rejected naming the domain and what failed."""
        peer = domain.peer_id
        where = f"in the trust domain of the peer e-port {peer}"
        try:
            certificate = x509.load_der_x509_certificate(der)
        except ValueError as exc:
            raise _reject("signature.key-info", f"the X509Certificate in KeyInfo is not a certificate: {exc}") from None
        identity = identity_of(certificate, domain.store.identity_field)
        if identity is None:
            raise _reject(
                "certificate.identity",
                f"the relayed message's certificate names no single identity in {domain.store.identity_field} ({where})",
            )
        try:
            # Parsed from this message's KeyInfo, so not remembered: each message brings its own.
            domain.store.check(certificate, pinned=False)
        except CertificateRefused as exc:
            raise _reject(exc.code, f"{exc.message} ({where})") from None
        try:
            verified = self.verifier.verify(root, [certificate])
        except SignatureError as exc:
            raise _reject(exc.code, str(exc)) from None
        return Participant.relayed(identity, relayer), verified.signed_root


def check_relayed(sender_id: str, relayer: Participant, connected: Participant, domain: TrustDomain,
                  registry: Registry, path: tuple[str, ...], platform_id: str) -> list[Reason]:
    """Why a relayed message may not be taken: its sender, the peer that relayed it and the path it came by."""
    reasons = []

    def refuse(code: str, message: str) -> None:
        reasons.append(Reason("authenticate", code, message))

    if relayer.id != connected.id:
        refuse("identity.mismatch",
               f"the envelope is signed by the peer e-port {relayer.id} but the connection is {connected.id}'s")
    if sender_id in registry:
        refuse("relay.own-participant",
               f"{sender_id} is a participant of this exchange: the peer e-port {relayer.id} cannot relay its messages")
    elif not domain.vouches_for(sender_id) or sender_id == relayer.id:
        refuse("relay.not-vouched",
               f"the peer e-port {relayer.id} may not vouch for {sender_id} (its domain's members: "
               f"{', '.join(p.text for p in domain.members) or 'none'})")
    if platform_id in path:
        refuse("relay.loop", f"the message already passed through this exchange ({platform_id}) on its way here: "
                             f"relay path {' > '.join(path)}")
    elif not path or path[-1] != relayer.id:
        refuse("relay.path", f"the envelope's RelayPath ({' > '.join(path) or 'none'}) does not end with the peer "
                             f"e-port {relayer.id} that signed it")
    return reasons


def _reject(code: str, message: str) -> Rejected:
    return Rejected(Reason("verify", code, message))


def check_hops(envelope, registry: Registry, platform_id: str) -> None:
    """Refuse a copy for a peer e-port the message already passed through, or one whose path would not fit."""
    path = received_path(envelope)
    for delivery in envelope.decision.deliveries:
        peer = registry.get(delivery.to)
        if peer is None or not peer.external:
            continue
        if delivery.to in path:
            raise Rejected(Reason("route", "relay.loop",
                                  f"the copy for {delivery.final} would go back to the peer e-port {delivery.to}, "
                                  f"which the message already passed through (relay path {' > '.join(path)})"))
        if written_path(path, platform_id) is None:
            raise Rejected(Reason("route", "relay.path",
                                  f"the relay path {' > '.join(path)} has no room for this exchange: at most "
                                  f"{MAX_PATH} characters"))
