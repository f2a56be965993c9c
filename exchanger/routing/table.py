"""The routing table: indexed rules and the decision for one document."""

from __future__ import annotations

from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass

from lxml import etree

from exchanger.outcome import Reason, Rejected
from exchanger.participants import Participant, Registry
from exchanger.routing.rules import Delivery, Route


@dataclass(frozen=True)
class RouteDecision:
    """Where one document goes: every copy with the rule (and approval) that allows it."""

    deliveries: tuple[Delivery, ...]

    @property
    def destinations(self) -> tuple[str, ...]:
        """The participant ids that receive a copy."""
        return tuple(d.to for d in self.deliveries)

    @property
    def route_ids(self) -> tuple[str, ...]:
        """The rules used, without repeats."""
        return tuple(dict.fromkeys(d.route for d in self.deliveries))


@dataclass(frozen=True)
class RuleVerdict:
    """Why one rule did or did not apply to a document (for ``routes explain``)."""

    route: Route
    applies: bool
    why: str


def _reject(code: str, message: str) -> Rejected:
    return Rejected(Reason("route", code, message))


class RoutingTable:
    """Rules indexed by message type and sender, so the cost per message does not grow with the table."""

    def __init__(self, routes: list[Route], registry: Registry, hosts: Callable[[str], Participant | None] | None = None):
        self.routes = tuple(routes)
        self._registry = registry
        # Which peer e-port hosts a receiver not registered here (the peer's domain vouches for it), if any.
        self._hosts = hosts or (lambda receiver_id: None)
        self._order = {route.id: index for index, route in enumerate(routes)}
        self._by_sender_id: dict[tuple[str, str], list[Route]] = defaultdict(list)
        self._by_sender_kind: dict[tuple[str, str], list[Route]] = defaultdict(list)
        self._by_type: dict[str, list[Route]] = defaultdict(list)
        self._by_via: dict[tuple[str, str], list[Route]] = defaultdict(list)
        for route in routes:
            for message_type in route.types:
                for peer in route.senders.via:
                    self._by_via[(message_type, peer)].append(route)
                if route.senders.anyone:
                    self._by_type[message_type].append(route)
                    continue
                for pid in route.senders.ids:
                    self._by_sender_id[(message_type, pid)].append(route)
                for kind in route.senders.kinds:
                    self._by_sender_kind[(message_type, kind)].append(route)

    def candidates(self, message_type: str, sender: Participant) -> list[Route]:
        """The rules that could apply to this type from this sender, in config order."""
        found = {
            route.id: route
            for bucket in (
                self._by_type.get(message_type, ()),
                self._by_sender_id.get((message_type, sender.id), ()),
                self._by_sender_kind.get((message_type, sender.kind), ()),
                self._by_via.get((message_type, sender.relayed_by), ()) if sender.relayed_by else (),
            )
            for route in bucket
        }
        return sorted(found.values(), key=lambda route: self._order[route.id])

    def decide(
        self,
        message_type: str,
        sender: Participant,
        receivers: list[str],
        root: etree._Element,
        variables: dict[str, str],
    ) -> RouteDecision:
        """Decide every copy for a document, or raise Rejected naming what no rule allows."""
        addressed = self._addressed(receivers)
        applicable = [
            route
            for route in self.candidates(message_type, sender)
            if self._receivers_match(route, [receiver for receiver, _ in addressed])
            and route.condition_holds(root, variables)
        ]
        deliveries: dict[str, Delivery] = {}
        for receiver, addressee in addressed:
            route = next((r for r in applicable if r.delivers_addressed and r.receivers.matches(receiver)), None)
            if route is None:
                hop = f" (hosted by the peer e-port {receiver.id})" if addressee else ""
                raise _reject(
                    "no-route",
                    f"no route allows {message_type} from {sender.id} to {addressee or receiver.id}{hop}",
                )
            deliveries[addressee or receiver.id] = Delivery(receiver.id, route.id, route.approval, addressee)
        for route in applicable:
            for target in route.copies:
                if target != sender.id and target not in deliveries:
                    deliveries[target] = Delivery(target, route.id, route.approval)
        if not deliveries:
            raise _reject("no-route", f"no route allows {message_type} from {sender.id}")
        return RouteDecision(tuple(deliveries.values()))

    def explain(
        self,
        message_type: str,
        sender: Participant,
        receivers: list[str],
        root: etree._Element,
        variables: dict[str, str],
    ) -> list[RuleVerdict]:
        """For every rule in the table, whether it applies to this document and why."""
        known = [self._registry.get(r) or self._hosts(r) for r in receivers]
        addressed = [p for p in known if p is not None]
        verdicts = []
        for route in self.routes:
            if message_type not in route.types:
                why, applies = f"type {message_type} is not one of {sorted(route.types)}", False
            elif not route.senders.matches(sender):
                why, applies = f"sender {sender.id} ({sender.kind}) is not in from: {route.senders}", False
            elif not self._receivers_match(route, addressed):
                why, applies = f"no addressed receiver is in to: {route.receivers}", False
            elif not route.condition_holds(root, variables):
                why, applies = f"condition is false: {route.when_source}", False
            else:
                targets = [
                    _hop(r, receivers[i]) for i, r in enumerate(known)
                    if r is not None and route.delivers_addressed and route.receivers.matches(r)
                ]
                targets += list(route.copies)
                approval = f" under approval {route.approval}" if route.approval else ""
                why, applies = f"delivers to {', '.join(targets) or 'nobody'}{approval}", True
            verdicts.append(RuleVerdict(route, applies, why))
        return verdicts

    def _addressed(self, receivers: list[str]) -> list[tuple[Participant, str | None]]:
        """Each receiver the document names, as the participant here that takes its copy, and whom a peer hosts."""
        addressed = []
        for receiver_id in receivers:
            receiver = self._registry.get(receiver_id)
            if receiver is not None:
                addressed.append((receiver, None))
                continue
            peer = self._hosts(receiver_id)
            if peer is None:
                raise _reject(
                    "unknown-receiver",
                    f"receiver {receiver_id!r} is not a participant of this exchange, nor a member of a peer e-port's domain",
                )
            addressed.append((peer, receiver_id))
        return addressed

    @staticmethod
    def _receivers_match(route: Route, addressed: list[Participant]) -> bool:
        # A rule with no receiver condition applies whatever the document addresses.
        if route.receivers.anyone:
            return True
        return any(route.receivers.matches(r) for r in addressed)


def _hop(receiver: Participant, named: str) -> str:
    """A receiver as explain shows it: itself, or the addressee and the peer e-port that hosts it."""
    return receiver.id if receiver.id == named else f"{named} via the peer e-port {receiver.id}"
