"""Capped exponential backoff with jitter, for reconnects and publish retries."""

from __future__ import annotations

import random
from dataclasses import dataclass


@dataclass
class Backoff:
    """Delays that double from ``initial`` up to ``cap``; ``reset`` after a success."""

    initial: float = 0.5
    cap: float = 30.0
    attempt: int = 0

    def next_delay(self) -> float:
        """The delay before the next attempt (full jitter over the upper half, so peers spread out)."""
        ceiling = min(self.cap, self.initial * (2**self.attempt))
        self.attempt += 1
        return ceiling / 2 + random.random() * ceiling / 2

    def reset(self) -> None:
        """Start again from the initial delay."""
        self.attempt = 0
