"""Did the machine itself pause? A real-time sleeper beside a latency run, in the manner of cyclictest.

A child process asks for SCHED_FIFO (it then runs the moment its timer fires, ahead of every
ordinary process), sleeps 1 ms at a time and notes each wake-up that came more than 5 ms late. On
a machine whose CPUs are not taken away (by the hypervisor, or by the kernel), it sees none, however
busy the ordinary processes keep the cores: so a late wake-up means a pause no process of the
exchange could have caused, and none rules such pauses out as the cause of the latency's tail.
Without the privilege for SCHED_FIFO it runs at normal priority and says so; its lateness then
includes ordinary scheduling delay. ``python -m bench.stalls [LIMIT]`` watches until its stdin closes
(or LIMIT seconds pass) and prints JSON.
"""

from __future__ import annotations

import json
import os
import select
import subprocess
import sys
import time

LATE = 0.005  # a wake-up this late counts
TICK = 0.001


def watch(limit: float) -> dict:
    """Sleep TICK at a time until stdin closes (or ``limit`` seconds pass); the late wake-ups, in ms."""
    try:
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(50))
        policy = "SCHED_FIFO"
    except (PermissionError, AttributeError, OSError):
        policy = "normal"
    late: list[float] = []
    started = last = time.perf_counter()
    while last - started < limit:
        # select() with a TICK timeout is the sleep, and it returns at once when the parent closes stdin.
        ready, _, _ = select.select([sys.stdin], [], [], TICK)
        now = time.perf_counter()
        if ready and not sys.stdin.read(1):
            break
        if now - last > LATE:
            late.append(round(1000 * (now - last), 1))
        last = now
    return {"policy": policy, "seconds": round(last - started, 1), "late_ms": late}


class Monitor:
    """``with Monitor() as m: ...``; then ``m.result``: the late wake-ups while the block ran."""

    def __init__(self, limit: float = 3600.0):
        self.limit = limit
        self.result: dict = {}
        self._process: subprocess.Popen | None = None
        self._started = 0.0

    def __enter__(self) -> Monitor:
        self._started = time.perf_counter()
        self._process = subprocess.Popen([sys.executable, "-m", "bench.stalls", str(self.limit)],
                                         stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True,
                                         cwd=os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
        return self

    def __exit__(self, *_exc) -> None:
        process = self._process
        assert process is not None
        try:
            out, _ = process.communicate("", timeout=30)
            self.result = json.loads(out)
        except (subprocess.TimeoutExpired, ValueError):
            process.kill()
            self.result = {}

    @staticmethod
    def summary(result: dict) -> dict:
        """Counts of the late wake-ups: over 5 and over 20 ms, the longest, and the policy the sleeper had."""
        late = result.get("late_ms") or []
        return {"policy": result.get("policy", "n/a"), "over_5ms": len(late), "over_20ms": sum(1 for v in late if v > 20),
                "longest_ms": max(late, default=0.0)}


if __name__ == "__main__":
    print(json.dumps(watch(float(sys.argv[1]) if len(sys.argv) > 1 else 3600.0)))
