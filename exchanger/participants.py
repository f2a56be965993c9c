"""The participant registry: every enterprise and agency, with one identity each."""

from __future__ import annotations

from dataclasses import dataclass, field

from cryptography import x509

KINDS = frozenset(
    {"platform", "enterprise", "customs", "inspection", "tax", "forex", "transport", "terminal", "peer-eport"}
)


@dataclass(frozen=True)
class Participant:
    """One identity: the broker user, the sender named in documents and the signing certificate."""

    id: str
    kind: str
    name: str
    amqp_user: str
    certificates: tuple[x509.Certificate, ...] = field(default=(), compare=False, repr=False)
    envelope: str = "exchange"  # the envelope its copies travel in (a name in the envelope catalogue)
    relayed_by: str | None = None  # for a sender registered with a peer e-port: the peer that relayed it

    @classmethod
    def relayed(cls, identity: str, peer: Participant) -> Participant:
        """A sender registered with a peer e-port, known here only as the peer vouches for it."""
        return cls(identity, "relayed", f"{identity}, relayed by {peer.id}", "", relayed_by=peer.id)

    @property
    def external(self) -> bool:
        """True for another region's exchange: every copy to it is data sharing."""
        return self.kind == "peer-eport"


class Registry:
    """Look participants up by id or by broker user, in constant time."""

    def __init__(self, participants: list[Participant]):
        self._by_id = {p.id: p for p in participants}
        self._by_user = {p.amqp_user: p for p in participants}

    def __iter__(self):
        return iter(self._by_id.values())

    def __len__(self) -> int:
        return len(self._by_id)

    def __contains__(self, participant_id: str) -> bool:
        return participant_id in self._by_id

    def get(self, participant_id: str) -> Participant | None:
        """The participant with this id, or None."""
        return self._by_id.get(participant_id)

    def by_user(self, amqp_user: str) -> Participant | None:
        """The participant that connects as this broker user, or None."""
        return self._by_user.get(amqp_user)

    def ids(self) -> tuple[str, ...]:
        """Every participant id, in config order."""
        return tuple(self._by_id)
