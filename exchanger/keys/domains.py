"""Trust domains: what a peer e-port is trusted for.

The exchange's own participants chain to its own anchors. A peer e-port brings a domain of its own: the anchors
and CRLs its enterprises' certificates (and its platform's) chain to, and the identities it may vouch for. A
document relayed by a peer is believed only within that peer's domain: signed by a certificate that chains to
the peer's anchors and names an identity the peer may vouch for, never one of this exchange's participants.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass

from exchanger.keys.trust import TrustStore
from exchanger.participants import Participant, Registry


@dataclass(frozen=True)
class MemberPattern:
    """One identity a peer may vouch for: an exact id, or a prefix ending in "*" (matched without a regex)."""

    text: str

    def matches(self, identity: str) -> bool:
        """True when the identity is this one, or starts with this prefix."""
        if self.text.endswith("*"):
            return identity.startswith(self.text[:-1])
        return identity == self.text


@dataclass(frozen=True)
class TrustDomain:
    """One peer e-port's anchors, CRLs and members."""

    peer_id: str
    store: TrustStore
    members: tuple[MemberPattern, ...] = ()

    def vouches_for(self, identity: str) -> bool:
        """True when the peer may vouch for this identity (its platform always vouches for itself)."""
        return identity == self.peer_id or any(pattern.matches(identity) for pattern in self.members)

    def describe(self) -> str:
        """One line for operators: the peer, its anchors and whom it vouches for."""
        anchors = ", ".join(anchor.subject.rfc4514_string() for anchor in self.store.anchors) or "none"
        members = ", ".join(pattern.text for pattern in self.members) or "its platform alone"
        return f"{self.peer_id}: anchors {anchors}; vouches for {members}"


def host_finder(domains: Mapping[str, TrustDomain], registry: Registry) -> Callable[[str], Participant | None]:
    """Which peer e-port hosts a receiver that is not registered here: the first whose members include it."""

    def host(receiver_id: str) -> Participant | None:
        for peer_id, domain in domains.items():
            if receiver_id != peer_id and any(pattern.matches(receiver_id) for pattern in domain.members):
                return registry.get(peer_id)
        return None

    return host
