"""Reading the benchmark's results: one figure out of results.json, how each kind of figure is written, and the
derived figures (other work on the machine, the daemon's stages, the paired scale changes)."""

from __future__ import annotations

import math

ALGORITHM_LABELS = (("rsa", "RSA-2048"), ("ec", "ECDSA P-256"), ("sm2", "SM2/SM3"))


def measured(results: dict, kind: str, key: str, field: str = "rate"):
    """One figure of one measurement (a drain, a ceiling, a peer...), or None when it was not measured."""
    entry = results.get(kind, {}).get(key)
    return None if entry is None else entry.get(field)


def rate_text(value) -> str:
    """A rate as the table writes it: whole messages per second from 100 up, else one decimal."""
    if value is None:
        return "n/a"
    return f"{value:,.0f} msg/s" if value >= 100 else f"{value:,.1f} msg/s"


def number_text(value, fmt: str = "{:,.2f}") -> str:
    """A number in the given format, or n/a when missing or not a number."""
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def megabytes_text(kb_list) -> str:
    """Peak RSS of each worker (kB as read from /proc) in MB, one after another."""
    return "n/a" if not kb_list else "/".join(f"{kb / 1024:.0f}" for kb in kb_list) + " MB"


def ratio_text(a, b, fmt: str = "{:.2f}") -> str:
    """a / b in the given format, or n/a when either is missing or zero."""
    return "n/a" if not a or not b else fmt.format(a / b)


def other_work(cpu: dict) -> float:
    """CPU seconds used by processes that are not part of the measurement (other work sharing the machine)."""
    return max(0.0, cpu.get("machine", 0) - cpu["workers"] - cpu["broker"] - cpu.get("bench", 0))


def interference(results: dict) -> float | None:
    """Mean cores used by other work on the machine while the benchmark measured (drains and in-process runs)."""
    busy = seconds = 0.0
    for table in (results.get("drains", {}), results.get("ceiling", {})):
        for d in table.values():
            if "machine" in d.get("cpu", {}):
                busy += other_work(d["cpu"])
                seconds += d["seconds"]
    for d in results.get("inprocess", {}).values():
        if d.get("machine_cpu_seconds"):
            busy += max(0.0, d["machine_cpu_seconds"] - d["cpu_seconds"])
            seconds += d["seconds"]
    return busy / seconds if seconds else None


def stages_by_cost(stages_ms: dict) -> list[tuple[str, float]]:
    """The stages and their ms per message, costliest first."""
    return sorted(stages_ms.items(), key=lambda item: -item[1])


def daemon_stages(drain: dict | None) -> dict[str, float]:
    """Mean ms per message of each stage in the daemon, from its exchanger_stage_seconds histogram."""
    if not drain:
        return {}
    table = (drain.get("stages") or {}).get("exchanger_stage_seconds", {})
    return {stage: 1000 * total / count for stage, (total, count, *_rest) in table.items() if count}


def scale_changes(results: dict) -> dict:
    """{configuration: (base CPU ms, its CPU ms, median change over the paired blocks)} against the first one."""
    paired = results.get("scale", {}).get("paired") or {}
    costs = paired.get("cpu_ms", {})
    base_name = next(iter(costs), None)
    out = {}
    for name, ratios in (paired.get("ratios") or {}).items():
        if ratios and base_name:
            median = sorted(ratios)[len(ratios) // 2]
            out[name] = (costs[base_name], costs[name], median - 1)
    return out

