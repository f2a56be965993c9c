"""Publisher-confirm bookkeeping: which inbound delivery is settled once which publications confirm."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any


@dataclass(eq=False)
class Settlement:
    """One inbound delivery waiting for all of its publications to be confirmed."""

    delivery_tag: int
    publications: tuple
    payload: Any = None
    outstanding: int = 0
    failed: list = field(default_factory=list)
    attempts: int = 0
    started: float = 0.0

    @property
    def settled(self) -> bool:
        """True when no publication is still waiting for a confirm."""
        return self.outstanding == 0


class ConfirmTracker:
    """Maps publish sequence numbers to settlements; confirms may be ``multiple`` and arrive batched."""

    def __init__(self):
        self._next = 1
        self._pending: dict[int, tuple[Settlement, Any, tuple]] = {}
        self._returned: set[int] = set()

    def __len__(self) -> int:
        return len(self._pending)

    def published(self, settlement: Settlement, publication: Any, key: tuple) -> int:
        """Record a publication just sent, with the (exchange, routing key, message id) a return would carry."""
        seq = self._next
        self._next += 1
        self._pending[seq] = (settlement, publication, key)
        settlement.outstanding += 1
        return seq

    def returned(self, key: tuple) -> None:
        """The broker returned a publication as unroutable; its coming ack must not count as delivered.

        A return always precedes the ack of the same publication on a channel, so the oldest
        pending publication with the same key that is not yet marked is the one returned.
        """
        for seq, (_, _, pending_key) in self._pending.items():
            if pending_key == key and seq not in self._returned:
                self._returned.add(seq)
                return

    def confirmed(self, seq: int, multiple: bool, ok: bool) -> list[Settlement]:
        """Apply an ack or nack; return the settlements that are now complete."""
        if multiple:
            # Pending tags are in ascending order (dicts keep insertion order), so stop at the first above seq.
            tags = []
            for tag in self._pending:
                if tag > seq:
                    break
                tags.append(tag)
        else:
            tags = [seq] if seq in self._pending else []
        done = []
        for tag in tags:
            settlement, publication, _ = self._pending.pop(tag)
            if not ok or tag in self._returned:
                settlement.failed.append(publication)
            self._returned.discard(tag)
            settlement.outstanding -= 1
            if settlement.settled:
                done.append(settlement)
        return done

    def abandon(self) -> list[Settlement]:
        """The channel is gone: forget every pending publication and return the settlements it held."""
        settlements = list({id(s): s for s, _, _ in self._pending.values()}.values())
        self._pending.clear()
        self._returned.clear()
        return settlements
