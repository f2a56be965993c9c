"""The routing rules: who may send which type to whom, the copies to third parties, and their conditions."""

from __future__ import annotations

import re
from collections.abc import Mapping
from typing import Any

from lxml import etree

from exchanger.catalogue import Catalogue
from exchanger.config.messages import as_list, compile_xpath
from exchanger.config.problems import Problems
from exchanger.keys.domains import TrustDomain, host_finder
from exchanger.participants import KINDS, Registry
from exchanger.routing.rules import ADDRESSED, VIA, Approval, Route, Selector
from exchanger.routing.table import RoutingTable

_VARIABLE = re.compile(r"\$([A-Za-z_][\w-]*)")


def _compile_predicate(
    source: Any, catalogue: Catalogue, types: frozenset[str], where: str, problems: Problems
) -> etree.XPath | None:
    """Compile a route condition with XPath's own truth (``boolean()``), and try it once now.

    Unknown functions, undeclared prefixes and wrong argument counts only show when an XPath is
    evaluated: trying it on an empty document of each type makes them a config problem instead
    of a failure on the first message.
    """
    if not isinstance(source, str) or not source.strip():
        problems.add(where, "must be a non-empty XPath string")
        return None
    variables = set(_VARIABLE.findall(source))
    known = [catalogue.get(name) for name in sorted(types) if name in catalogue]
    for message_type in known:
        for variable in sorted(variables - set(message_type.fields)):
            problems.add(where, f"${variable} is not a field of {message_type.name} in the catalogue")
    compiled = compile_xpath(f"boolean({source})", catalogue.namespaces, where, problems)
    if compiled is None or variables - set().union(*(set(t.fields) for t in known or [])):
        return compiled
    for message_type in known:
        probe = etree.Element(message_type.root)
        try:
            compiled(probe, **{name: "" for name in message_type.fields})
        except etree.XPathError as exc:
            problems.add(where, f"XPath {source!r} cannot be evaluated on a {message_type.name}: {exc}")
            return None
    return compiled


def _route_from(
    index: int, spec: Any, catalogue: Catalogue, registry: Registry, problems: Problems,
    domains: Mapping[str, TrustDomain],
) -> Route | None:
    if not isinstance(spec, dict):
        problems.add(f"routes[{index}]", "must be a mapping")
        return None
    rid = spec.get("id") or f"#{index + 1}"
    at = f"routes.{rid}"
    types = frozenset(as_list(spec.get("types", spec.get("type"))))
    if not types:
        problems.add(f"{at}.types", "names no message type")
    for name in sorted(types - set(catalogue.names())):
        problems.add(f"{at}.types", f"message type {name!r} is not in the catalogue")
    selectors = {}
    for key in ("from", "to"):
        terms = [str(t) for t in as_list(spec.get(key))]
        for term in terms:
            if term == "*":
                continue
            if term.startswith("kind:"):
                if term[5:] not in KINDS:
                    problems.add(f"{at}.{key}", f"unknown participant kind {term[5:]!r}")
            elif term.startswith(VIA):
                _check_via(term, key, at, registry, domains, problems)
            elif term not in registry:
                problems.add(f"{at}.{key}", f"{term!r} is not a participant")
        selectors[key] = Selector.parse(terms)
    deliver = tuple(str(d) for d in as_list(spec.get("deliver", ADDRESSED)))
    for target in deliver:
        if target != ADDRESSED and target not in registry:
            problems.add(f"{at}.deliver", f"destination {target!r} is not a participant")
    approval = None
    if spec.get("approval") is not None:
        raw = spec["approval"]
        if isinstance(raw, dict) and raw.get("by") and raw.get("ref"):
            approval = Approval(str(raw["by"]), str(raw["ref"]))
        else:
            problems.add(f"{at}.approval", "must name the approving authority and its reference: {by: ..., ref: ...}")
    copies = [d for d in deliver if d != ADDRESSED]
    if copies and approval is None:
        problems.add(
            f"{at}.approval",
            f"copies to {', '.join(copies)} are data sharing and must name the authority that approved them",
        )
    external = [
        p.id
        for p in registry
        if p.external and (p.id in copies or (ADDRESSED in deliver and selectors["to"].matches(p)))
    ]
    if external and approval is None and not copies:
        problems.add(f"{at}.approval", f"reaches the external exchange(s) {', '.join(external)} without an approval")
    when = None
    when_source = spec.get("when")
    if when_source is not None:
        when = _compile_predicate(when_source, catalogue, types, f"{at}.when", problems)
    return Route(
        id=str(rid),
        types=types,
        senders=selectors["from"],
        receivers=selectors["to"],
        deliver=deliver,
        when=when,
        when_source=when_source,
        approval=approval,
        description=str(spec.get("description", "")),
    )


def _check_via(term: str, key: str, at: str, registry: Registry, domains: Mapping[str, TrustDomain],
               problems: Problems) -> None:
    """``via:<peer>`` selects senders a peer e-port relays: only in from:, and only a peer with a trust domain."""
    peer = term[len(VIA):]
    if key != "from":
        problems.add(f"{at}.{key}", f"{term!r}: via: selects relayed senders, so it belongs in from:; "
                                     f"to reach a peer's members name the peer ({peer}) in to:")
    elif peer not in registry or not registry.get(peer).external:
        problems.add(f"{at}.{key}", f"{term!r}: {peer!r} is not a participant of kind peer-eport")
    elif peer not in domains:
        problems.add(f"{at}.{key}", f"{term!r}: the peer {peer} has no domain: whose signatures it relays is unchecked")


def routes_from(data: dict, catalogue: Catalogue, registry: Registry, problems: Problems,
                domains: Mapping[str, TrustDomain] | None = None) -> RoutingTable:
    """Compile every rule in order, noting every problem; rule ids must be unique."""
    domains = domains or {}
    specs = data.get("routes")
    if not isinstance(specs, list) or not specs:
        problems.add("routes", "must be a list of at least one rule")
        specs = []
    routes, seen = [], set()
    for index, spec in enumerate(specs):
        route = _route_from(index, spec, catalogue, registry, problems, domains)
        if route is None:
            continue
        if route.id in seen:
            problems.add(f"routes.{route.id}", "id is used by more than one rule")
        seen.add(route.id)
        routes.append(route)
    return RoutingTable(routes, registry, host_finder(domains, registry))
