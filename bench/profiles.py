"""The benchmark's profiles: how many messages and seconds each measurement gets (--quick, default, --full)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass(frozen=True)
class Profile:
    name: str
    messages: int  # the headline drain
    ceiling: int
    inprocess: int
    naive: tuple[int, int]  # documents for 1 naive process, for W processes
    latency_seconds: int
    workers_sweep: int
    sizes: dict  # label -> messages for the exchanger drain
    scale_messages: int  # in-process documents per configuration for routes / participants
    scale_repeats: int
    scale_e2e: int  # messages of the end-to-end drain with 10,000 routes / participants (0: skipped)
    ec_messages: int
    backlog: int  # the large backlog for peak RSS
    quiet_budget: float = 60.0  # seconds the run may spend in all waiting for the shared machine to be idle
    repeats: int = 1  # headline drains (the median is reported, every one is listed)
    latency_runs: int = 1  # latency runs at half the median drain rate (the median p99 is reported, all are listed)
    prefetches: tuple[int, ...] = ()  # the prefetch sweep: a drain and a half-load latency run per setting
    sweep_messages: int = 2000
    sweep_rounds: int = 1  # the prefetch sweep, each round in the opposite order to the one before
    sweep_latency_seconds: int = 8
    profile_messages: int = 3000  # one worker's drain under py-spy (bench/profile.py)
    callgrind_messages: int = 0  # and under callgrind (slow: a few minutes for 300)


PROFILES = {
    "quick": Profile("quick", 2000, 6000, 600, (60, 100), 8, 1500,
                     {"20KB": 600, "200KB": 80, "5MB": 6}, 400, 1, 0, 1500, 4000, 40, 1, 1,
                     prefetches=(4, 16, 200), sweep_messages=1500, sweep_latency_seconds=6,
                     profile_messages=1500),
    "default": Profile("default", 5000, 12000, 1500, (120, 240), 15, 3000,
                       {"20KB": 1500, "200KB": 200, "5MB": 12}, 800, 3, 2000, 4000, 15000, 100, 3, 3,
                       prefetches=(4, 8, 16, 32, 64, 200), sweep_rounds=2),
    "full": Profile("full", 20000, 40000, 3000, (300, 600), 60, 10000,
                    {"20KB": 5000, "200KB": 800, "5MB": 40}, 2000, 5, 10000, 20000, 100000, 400, 3, 3,
                    prefetches=(1, 2, 4, 8, 16, 32, 64, 200), sweep_messages=5000, sweep_rounds=3,
                    sweep_latency_seconds=20, callgrind_messages=300),
}
SCALE = 10_000  # routes and participants in the large configurations
LIGHT_LOAD = 0.25  # the lighter latency run, as a fraction of the headline drain rate
