"""What a configuration change would do to routing: rules added, removed, changed; destinations per type."""

from __future__ import annotations

from dataclasses import dataclass, field

from exchanger.config import Config
from exchanger.routing.rules import ADDRESSED, Route


def _describe(route: Route) -> dict[str, str]:
    return {
        "types": ", ".join(sorted(route.types)),
        "from": str(route.senders),
        "to": str(route.receivers),
        "when": route.when_source or "",
        "deliver": ", ".join(route.deliver),
        "approval": str(route.approval) if route.approval else "",
    }


def destinations(config: Config) -> dict[str, set[str]]:
    """For each message type, where its copies can go: participants, or receivers addressed within a selector."""
    reach: dict[str, set[str]] = {name: set() for name in config.catalogue.names()}
    for route in config.table.routes:
        for message_type in route.types:
            for target in route.deliver:
                reach.setdefault(message_type, set()).add(
                    f"addressed receivers in {route.receivers}" if target == ADDRESSED else target
                )
    return reach


@dataclass
class RoutingDiff:
    """The differences between two configurations, for an operator to read before a reload."""

    added: list[Route] = field(default_factory=list)
    removed: list[Route] = field(default_factory=list)
    changed: list[tuple[Route, list[str]]] = field(default_factory=list)
    gained: dict[str, set[str]] = field(default_factory=dict)
    lost: dict[str, set[str]] = field(default_factory=dict)
    participants_added: set[str] = field(default_factory=set)
    participants_removed: set[str] = field(default_factory=set)
    types_added: set[str] = field(default_factory=set)
    types_removed: set[str] = field(default_factory=set)
    envelopes_changed: dict[str, tuple[str, str]] = field(default_factory=dict)  # participant: (before, after)

    @property
    def empty(self) -> bool:
        """True when the change makes no difference to routing."""
        return not any(
            (self.added, self.removed, self.changed, self.gained, self.lost, self.participants_added,
             self.participants_removed, self.types_added, self.types_removed, self.envelopes_changed)
        )


def diff(old: Config, new: Config) -> RoutingDiff:
    """Compare the routing of two configurations."""
    result = RoutingDiff()
    old_routes = {r.id: r for r in old.table.routes}
    new_routes = {r.id: r for r in new.table.routes}
    result.added = [r for rid, r in new_routes.items() if rid not in old_routes]
    result.removed = [r for rid, r in old_routes.items() if rid not in new_routes]
    for rid in old_routes.keys() & new_routes.keys():
        before, after = _describe(old_routes[rid]), _describe(new_routes[rid])
        changes = [f"{key}: {before[key] or '-'} -> {after[key] or '-'}" for key in before if before[key] != after[key]]
        if changes:
            result.changed.append((new_routes[rid], changes))
    result.changed.sort(key=lambda item: item[0].id)
    old_reach, new_reach = destinations(old), destinations(new)
    for message_type in sorted(old_reach.keys() | new_reach.keys()):
        gained = new_reach.get(message_type, set()) - old_reach.get(message_type, set())
        lost = old_reach.get(message_type, set()) - new_reach.get(message_type, set())
        if gained:
            result.gained[message_type] = gained
        if lost:
            result.lost[message_type] = lost
    result.participants_added = set(new.registry.ids()) - set(old.registry.ids())
    # A receiver's envelope decides what it is sent, if not where: an operator sees it before a reload.
    for participant in new.registry:
        before = old.registry.get(participant.id)
        if before is not None and before.envelope != participant.envelope:
            result.envelopes_changed[participant.id] = (before.envelope, participant.envelope)
    result.participants_removed = set(old.registry.ids()) - set(new.registry.ids())
    result.types_added = set(new.catalogue.names()) - set(old.catalogue.names())
    result.types_removed = set(old.catalogue.names()) - set(new.catalogue.names())
    return result
