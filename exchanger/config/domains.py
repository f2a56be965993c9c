"""The trust domains of peer e-ports, read from the ``domain:`` of each ``peer-eport`` participant."""

from __future__ import annotations

from pathlib import Path

from exchanger.config.digest import Digest
from exchanger.config.identities import store_from
from exchanger.config.messages import as_list
from exchanger.config.problems import Problems
from exchanger.keys.domains import MemberPattern, TrustDomain
from exchanger.participants import Registry


def domains_from(data: dict, base: Path, registry: Registry, problems: Problems, digest: Digest) -> dict[str, TrustDomain]:
    """One TrustDomain per peer e-port with a domain; the peer's own certificates must chain within it."""
    domains = {}
    specs = data.get("participants")
    for pid, spec in (specs if isinstance(specs, dict) else {}).items():
        domain = (spec or {}).get("domain") if isinstance(spec, dict) else None
        if not isinstance(domain, dict) or pid not in registry:
            continue
        at = f"participants.{pid}.domain"
        participant = registry.get(pid)
        if participant.kind != "peer-eport":
            problems.add(at, "only a participant of kind peer-eport has a trust domain of its own")
            continue
        store = store_from(domain, at, base, None, problems, digest)
        members = []
        for text in as_list(domain.get("members")):
            if "*" in text[:-1] or text in ("", "*"):
                problems.add(f"{at}.members", f"{text!r}: give an id, or a prefix ending in one * (such as ent-*)")
                continue
            if text in registry:
                problems.add(f"{at}.members", f"{text!r} is a participant of this exchange: a peer cannot vouch for it")
                continue
            members.append(MemberPattern(text))
        for certificate in participant.certificates if store.anchors else ():
            refused = store.assess(certificate, pid)
            # A revoked peer is a runtime refusal, not a broken configuration: the exchange runs and
            # answers every message the peer sends with the reason, instead of refusing to start.
            if refused is not None and refused.code != "certificate.revoked":
                problems.add(
                    f"participants.{pid}.certificates",
                    f"{refused.code}: {refused.message} (a peer's platform certificate must chain within its own domain)",
                )
        domains[pid] = TrustDomain(pid, store, tuple(members))
    return domains
