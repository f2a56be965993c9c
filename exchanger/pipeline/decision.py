"""What the stages decide for an accepted message, before any transport: each copy, in its receiver's envelope."""

from __future__ import annotations

from dataclasses import dataclass

from exchanger.routing import Approval


@dataclass(frozen=True)
class Copy:
    """One copy to deliver: to whom, under which rule and approval, in which envelope, as signed bytes."""

    to: str
    route: str
    approval: Approval | None
    envelope: str  # the envelope format's name in the envelope catalogue
    document_id: str  # the id the envelope gives this copy
    body: bytes
    addressee: str | None = None  # when ``to`` is a peer e-port: the receiver it hosts, whom the copy is for
