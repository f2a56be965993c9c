"""One routing rule, and the participant selectors it matches senders and receivers with."""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from exchanger.outcome import Reason, Rejected
from exchanger.participants import Participant

ADDRESSED = "addressed"
VIA = "via:"  # a selector term naming the peer e-port that relays a sender registered with it


@dataclass(frozen=True)
class Selector:
    """Matches participants by id (``ent-a``), by kind (``kind:customs``), all (``*``) or relayed by a peer (``via:eport-b``).

    A sender registered with a peer e-port is matched by ``via:<peer>`` alone: ``*`` and kinds select this
    exchange's own participants, so no route takes relayed messages unless it names the peer that relays them.
    """

    ids: frozenset[str] = frozenset()
    kinds: frozenset[str] = frozenset()
    anyone: bool = False
    via: frozenset[str] = frozenset()

    @classmethod
    def parse(cls, terms: list[str] | None) -> Selector:
        """Build a selector from config terms; no terms means anyone."""
        if not terms:
            return cls(anyone=True)
        ids, kinds, anyone, via = set(), set(), False, set()
        for term in terms:
            if term == "*":
                anyone = True
            elif term.startswith("kind:"):
                kinds.add(term[5:])
            elif term.startswith(VIA):
                via.add(term[len(VIA):])
            else:
                ids.add(term)
        return cls(frozenset(ids), frozenset(kinds), anyone, frozenset(via))

    def matches(self, participant: Participant) -> bool:
        """True when the participant is selected."""
        if participant.relayed_by is not None:
            return participant.relayed_by in self.via
        return self.anyone or participant.id in self.ids or participant.kind in self.kinds

    def __str__(self) -> str:
        if self.anyone and not self.via:
            return "*"
        terms = ["*"] if self.anyone else []
        return ", ".join(terms + sorted(self.ids) + [f"kind:{k}" for k in sorted(self.kinds)]
                         + [f"{VIA}{p}" for p in sorted(self.via)])


@dataclass(frozen=True)
class Approval:
    """The authority that approved sharing a document with a third party."""

    by: str
    ref: str

    def __str__(self) -> str:
        return f"{self.by} {self.ref}"


@dataclass(frozen=True)
class Delivery:
    """One copy to deliver: to whom, under which rule, and under which approval if it is shared."""

    to: str
    route: str
    approval: Approval | None = None
    addressee: str | None = None  # when ``to`` is a peer e-port: the receiver it hosts, whom the copy is for

    @property
    def final(self) -> str:
        """Whom the copy is for: the addressee a peer e-port hosts, else the receiver itself."""
        return self.addressee or self.to


@dataclass(frozen=True)
class Route:
    """A rule: for these types from these senders (to these receivers, when this holds), deliver here."""

    id: str
    types: frozenset[str]
    senders: Selector
    receivers: Selector
    deliver: tuple[str, ...]  # ADDRESSED and/or participant ids
    when: etree.XPath | None = field(default=None, compare=False)
    when_source: str | None = None
    approval: Approval | None = None
    description: str = ""

    @property
    def delivers_addressed(self) -> bool:
        """True when the rule delivers to the receivers the document names."""
        return ADDRESSED in self.deliver

    @property
    def copies(self) -> tuple[str, ...]:
        """The third parties this rule copies to (data sharing)."""
        return tuple(d for d in self.deliver if d != ADDRESSED)

    def condition_holds(self, root: etree._Element, variables: dict[str, str]) -> bool:
        """Evaluate the predicate (compiled as XPath ``boolean()``) over the signed document; none means true."""
        if self.when is None:
            return True
        try:
            return bool(self.when(root, **variables))
        except etree.XPathError as exc:
            # The loader tries every condition once, so this is rare; still a clear refusal, never a crash.
            raise Rejected(Reason("route", "condition-error", f"rule {self.id}: condition {self.when_source!r} failed: {exc}")) from None
