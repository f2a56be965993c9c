"""Sign-in throttling: after repeated failures for one account or from one address, wait before trying again."""

from __future__ import annotations

import threading
import time
from dataclasses import dataclass

FREE_FAILURES = 5
FIRST_WAIT = 30.0
LONGEST_WAIT = 900.0
# Failures older than this are forgotten.
MEMORY = 3600.0


@dataclass
class _Count:
    failures: int = 0
    last: float = 0.0


class Throttle:
    """Counts failed sign-ins per key (an account name, an address) and says how long a key must wait."""

    def __init__(self, clock=time.monotonic):
        self.clock = clock
        self._counts: dict[str, _Count] = {}
        self._lock = threading.Lock()

    def wait_for(self, *keys: str) -> float:
        """Seconds before any of these keys may try again (0 when free)."""
        now = self.clock()
        with self._lock:
            return max((self._wait(self._counts.get(key), now) for key in keys), default=0.0)

    @staticmethod
    def _wait(count: _Count | None, now: float) -> float:
        if count is None or count.failures < FREE_FAILURES or now - count.last > MEMORY:
            return 0.0
        wait = min(FIRST_WAIT * 2 ** (count.failures - FREE_FAILURES), LONGEST_WAIT)
        return max(0.0, count.last + wait - now)

    def failed(self, *keys: str) -> None:
        """Note one failed sign-in for each key."""
        now = self.clock()
        with self._lock:
            for key in keys:
                count = self._counts.setdefault(key, _Count())
                if now - count.last > MEMORY:
                    count.failures = 0
                count.failures += 1
                count.last = now

    def succeeded(self, *keys: str) -> None:
        """Forget the failures of these keys."""
        with self._lock:
            for key in keys:
                self._counts.pop(key, None)
