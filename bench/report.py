"""The benchmark's one table, bench/RESULTS.md and the chart of the sweeps (bench/sweeps.png)."""

from __future__ import annotations

import math
from pathlib import Path

from bench import hostile, profile

ANALYSIS = "## Analysis"
TARGET_RATE = 2000
TARGET_NAIVE = 5
TARGET_PEER = 1.0  # the exchange against the honest peer, same number of processes (issue 13)
TARGET_INPROCESS = 0.8  # end to end against the in-process rate for as many workers (issue 13)
TARGET_P99_MS = 50
TARGET_FLAT = 0.10
TARGET_RSS_GROWTH = 0.10
ALGORITHM_LABELS = (("rsa", "RSA-2048"), ("ec", "ECDSA P-256"), ("sm2", "SM2/SM3"))


# ---- reading results -----------------------------------------------------------------------------------------------

def _get(results: dict, kind: str, key: str, field: str = "rate"):
    entry = results.get(kind, {}).get(key)
    return None if entry is None else entry.get(field)


def _rate(value) -> str:
    if value is None:
        return "n/a"
    return f"{value:,.0f} msg/s" if value >= 100 else f"{value:,.1f} msg/s"


def _num(value, fmt: str = "{:,.2f}") -> str:
    return "n/a" if value is None or (isinstance(value, float) and math.isnan(value)) else fmt.format(value)


def _mb(kb_list) -> str:
    return "n/a" if not kb_list else "/".join(f"{kb / 1024:.0f}" for kb in kb_list) + " MB"


def _ratio(a, b, fmt: str = "{:.2f}") -> str:
    return "n/a" if not a or not b else fmt.format(a / b)


def _samples(drain: dict) -> str:
    samples = drain.get("samples") or []
    if len(samples) < 2:
        return ""
    listed = ", ".join(f"{s['rate']:,.0f} (other work {s['other_cores']:.2f})" for s in samples)
    return f"; median of {len(samples)} drains: {listed} msg/s"


def _latency_runs(latency: dict) -> str:
    runs = latency.get("runs") or []
    if len(runs) < 2:
        return ""
    listed = "; ".join(f"p50 {r['p50']:.1f} / p95 {r['p95']:.1f} / p99 {r['p99']:.1f} ms (other work {r['other_cores']:.2f})"
                       for r in runs)
    return f"; the median of {len(runs)} runs by p99: {listed}"


def _latency_cpu(latency: dict) -> str:
    cpu, seconds = latency.get("cpu"), latency.get("seconds")
    if not cpu or not seconds:
        return ""
    rest = max(0.0, cpu["machine"] - cpu["exchange"] - cpu["broker"]) / seconds
    return (f"; CPU meanwhile: exchange {cpu['exchange'] / seconds:.2f}, broker {cpu['broker'] / seconds:.2f}, "
            f"load generator and other work {rest:.2f} cores")


def _latency_why(latency: dict, drain: dict | None, cores: int) -> str:
    """Where the tail comes from: how busy the machine was, how long deliveries queued in the workers, and the
    exchange's CPU per message at this fixed rate against the drain's (which takes its messages in batches)."""
    cpu, seconds, waits = latency.get("cpu"), latency.get("seconds"), latency.get("waits") or {}
    parts = []
    if cpu and seconds:
        parts.append(f"machine {cpu['machine'] / seconds / cores:.0%} busy")
    wait = waits.get("exchanger_wait_seconds")
    whole = waits.get("exchanger_message_seconds")
    if wait and wait["count"]:
        parts.append(f"deliveries waited {wait['mean_ms']:.1f} ms on average in a worker for its CPU "
                     f"({wait['over_50ms']:.0f} of {wait['count']:.0f} over 50 ms)"
                     + (f", of {whole['mean_ms']:.1f} ms from delivery to ack" if whole and whole["count"] else ""))
    stalls = latency.get("stalls")
    if stalls:
        parts.append(f"the machine itself paused {stalls['over_20ms']} times for over 20 ms (longest "
                     f"{stalls['longest_ms']:.0f} ms; a {stalls['policy']} sleeper's late wake-ups)")
    if cpu and wait and wait["count"] and drain and drain.get("messages"):
        fixed = 1000 * cpu["exchange"] / wait["count"]
        batched = 1000 * drain["cpu"]["workers"] / drain["messages"]
        parts.append(f"exchange CPU {fixed:.2f} ms per message at this rate vs {batched:.2f} in the drain")
    return "; " + "; ".join(parts) if parts else ""


def _other(cpu: dict) -> float:
    """CPU seconds used by processes that are not part of the measurement (other work sharing the machine)."""
    return max(0.0, cpu.get("machine", 0) - cpu["workers"] - cpu["broker"] - cpu.get("bench", 0))


def interference(results: dict) -> float | None:
    """Mean cores used by other work on the machine while the benchmark measured (drains and in-process runs)."""
    busy = seconds = 0.0
    for table in (results.get("drains", {}), results.get("ceiling", {})):
        for d in table.values():
            if "machine" in d.get("cpu", {}):
                busy += _other(d["cpu"])
                seconds += d["seconds"]
    for d in results.get("inprocess", {}).values():
        if d.get("machine_cpu_seconds"):
            busy += max(0.0, d["machine_cpu_seconds"] - d["cpu_seconds"])
            seconds += d["seconds"]
    return busy / seconds if seconds else None


def _stage_rows(stages_ms: dict) -> list[tuple[str, float]]:
    return sorted(stages_ms.items(), key=lambda item: -item[1])


def daemon_stages(drain: dict | None) -> dict[str, float]:
    """Mean ms per message of each stage in the daemon, from its exchanger_stage_seconds histogram."""
    if not drain:
        return {}
    table = (drain.get("stages") or {}).get("exchanger_stage_seconds", {})
    return {stage: 1000 * total / count for stage, (total, count, *_rest) in table.items() if count}


def _scale(results: dict) -> dict:
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


def targets(results: dict) -> list[tuple[str, bool | None, str]]:
    """Each target of issue 5: (target, met?, how far)."""
    w = results["workers"]
    headline = _get(results, "drains", f"2KB-rsa-w{w}")
    naive_w = _get(results, "naive", f"2KB-rsa-p{w}") or _get(results, "naive", "2KB-rsa-p1")
    latency = results.get("latency", {}).get(f"2KB-rsa-w{w}")
    out = []
    peer_w = _get(results, "peer", f"2KB-rsa-p{w}")
    if headline and peer_w:
        out.append((f"≥ {TARGET_PEER:.1f}× the honest peer ({w} processes)", headline / peer_w >= TARGET_PEER,
                    f"{headline / peer_w:.2f}× ({headline:,.0f} vs {peer_w:,.0f} msg/s)"))
    in1 = results["inprocess"].get("2KB-rsa-w1")
    if headline and in1:
        ratio = headline / (in1["rate"] * w)
        out.append((f"end to end ≥ {TARGET_INPROCESS} × in-process ({w} workers)", ratio >= TARGET_INPROCESS,
                    f"{ratio:.2f} ({headline:,.0f} vs {w} × {in1['rate']:,.0f} msg/s)"))
    if headline is not None:
        out.append((f"≥ {TARGET_RATE:,} msg/s end to end (2 KB, RSA-2048, {w} workers)", headline >= TARGET_RATE,
                    f"{headline:,.0f} msg/s = {headline / TARGET_RATE:.0%} of the target"))
    if headline and naive_w:
        out.append((f"≥ {TARGET_NAIVE}× the naive peer", headline / naive_w >= TARGET_NAIVE,
                    f"{headline / naive_w:.1f}× ({headline:,.0f} vs {naive_w:,.1f} msg/s, same number of processes)"))
    if latency:
        p99 = latency["copies_ms"]["99"]
        detail = f"p99 {p99:.1f} ms at {latency['achieved_rate']:.0f} msg/s"
        light = results.get("latency", {}).get(f"2KB-rsa-w{w} light")
        if light:
            detail += f"; {light['copies_ms']['99']:.1f} ms at quarter load ({light['achieved_rate']:.0f} msg/s)"
        out.append((f"p99 < {TARGET_P99_MS} ms at half load", p99 < TARGET_P99_MS, detail))
    for name, (base, value, change) in _scale(results).items():
        out.append((f"cost per message flat with {name} (within {TARGET_FLAT:.0%})", abs(change) <= TARGET_FLAT,
                    f"{base:.2f} → {value:.2f} ms CPU per message (median paired change {change:+.1%})"))
    small = results["drains"].get(f"2KB-rsa-w{w}", {}).get("peak_rss_kb")
    big_drain = results["drains"].get(f"2KB-rsa-w{w} backlog", {})
    big = big_drain.get("peak_rss_kb")
    if small and big:
        growth = max(big) / max(small) - 1
        out.append((f"RSS per worker independent of the backlog (within {TARGET_RSS_GROWTH:.0%})",
                    growth <= TARGET_RSS_GROWTH,
                    f"{max(small) / 1024:.0f} MB after {results['drains'][f'2KB-rsa-w{w}']['messages']:,} messages, "
                    f"{max(big) / 1024:.0f} MB after a {big_drain['messages']:,}-message backlog ({growth:+.1%})"))
    return out


# ---- the table -----------------------------------------------------------------------------------------------------

def rows(results: dict) -> list[tuple[str, str, str, str]]:
    w = results["workers"]
    out: list[tuple[str, str, str, str]] = []
    batch = results.get("headline_batch", {})
    headline = results["drains"].get(f"2KB-rsa-w{w}")
    ex = headline["rate"] if headline else None
    if headline:
        cpu = headline["cpu"]
        seconds = headline["seconds"]
        out.append(("exchanger", f"end to end, {w} workers, 2 KB, RSA-2048", _rate(ex),
                    f"drain of {headline['messages']:,} preloaded declarations ({batch.get('document_bytes', 0):,} B, "
                    f"{batch.get('signed_bytes', 0):,} B signed), first consume → last copy and receipt confirmed; "
                    f"CPU: workers {cpu['workers'] / seconds:.2f}, broker {cpu['broker'] / seconds:.2f}, "
                    f"whole machine {cpu.get('machine', 0) / seconds:.2f} of {results['machine']['cores']} cores "
                    f"(other work: {_other(cpu) / seconds:.2f}){_samples(headline)}"))
    for suffix, load in (("", "50%"), (" light", "25%")):
        latency = results.get("latency", {}).get(f"2KB-rsa-w{w}{suffix}")
        if not latency:
            continue
        c = latency["copies_ms"]
        out.append(("exchanger", f"latency at {load} load ({latency['achieved_rate']:.0f} msg/s)",
                    f"p50 {c['50']:.1f} / p95 {c['95']:.1f} / p99 {c['99']:.1f} ms",
                    f"{latency['messages']:,} published at a fixed rate (confirmed; {latency.get('warmup', 0)} more before, "
                    f"as warm-up), timed at the customs mailbox's consumer; max {latency['max_ms']:.0f} ms; "
                    f"{latency['lost']} not received{_latency_cpu(latency)}"
                    f"{_latency_why(latency, headline, results['machine']['cores'])}{_latency_runs(latency)}"))
    sweep = results.get("prefetch")
    if sweep and sweep.get("points"):
        for prefetch, point in sweep["points"].items():
            latency = point.get("latency")
            tail = (f"p50 {latency['copies_ms']['50']:.1f} / p99 {latency['copies_ms']['99']:.1f} ms at "
                    f"{latency['achieved_rate']:.0f} msg/s" if latency else "latency n/a")
            out.append(("prefetch", f"prefetch {prefetch}", f"{_rate(point['rate'])}; {tail}",
                        f"drain of the same size, worker CPU {point['cpu_ms']:.2f} ms per message; then published at "
                        f"half the headline drain rate ({sweep['rate']:.0f} msg/s)"
                        + (f"; {latency['lost']} not received" if latency else "")))
    ceil = _get(results, "ceiling", f"2KB-w{w}")
    out.append(("ceiling", f"bare bridge, {w} processes", _rate(ceil),
                "same queues, prefetch, persistent publishes with confirms and mandatory, ack after confirms; no XML"))
    in1 = results["inprocess"].get("2KB-rsa-w1")
    inw = results["inprocess"].get(f"2KB-rsa-w{w}")
    if in1:
        out.append(("in-process", "1 worker", _rate(in1["rate"]), f"{in1['ms_per_message']:.2f} ms per message, no broker"))
    if inw and w > 1:
        out.append(("in-process", f"{w} worker processes", _rate(inw["rate"]),
                    f"{inw['ms_per_message']:.2f} ms per message and core (both cores, no broker)"))
    peer_w = results.get("peer", {}).get(f"2KB-rsa-p{w}")
    if peer_w:
        out.append(("honest peer", f"{w} processes", _rate(peer_w["rate"]),
                    "asynchronous pika, prefetch as the exchange's, lxml XSD, signxml verify + sign of the copy and of "
                    f"a receipt, pipelined confirms, ack after both; CPU {1000 * peer_w['cpu']['workers'] / peer_w['messages']:.2f} "
                    f"ms per message ({peer_w['messages']:,} messages drained)"))
    n1 = _get(results, "naive", "2KB-rsa-p1")
    nw = _get(results, "naive", f"2KB-rsa-p{w}")
    out.append(("naive peer", "1 process", _rate(n1), "basic_get, xmlschema, signxml verify + sign ×2, a confirm per publish"))
    if w > 1:
        out.append(("naive peer", f"{w} processes", _rate(nw), "as many processes as the exchange has workers"))
    if peer_w:
        out.append(("ratio", f"exchanger / honest peer ({w} processes)", _ratio(ex, peer_w["rate"]),
                    "the headline: the same backlog, the same broker, minutes apart"))
    if in1:
        out.append(("ratio", f"exchanger / (in-process × {w})", _ratio(ex, in1["rate"] * w),
                    "end to end against the pipeline alone on as many cores"))
    if headline and in1:
        worker_ms = 1000 * headline["cpu"]["workers"] / headline["messages"]
        out.append(("ratio", "worker CPU per message / in-process", _ratio(worker_ms, in1["ms_per_message"]),
                    f"{worker_ms:.2f} ms in the drain vs {in1['ms_per_message']:.2f} ms in-process: the daemon's own cost "
                    "is the difference"))
    out.append(("ratio", "exchanger / ceiling", _ratio(ex, ceil), ""))
    out.append(("ratio", f"exchanger / naive peer ({w} process{'es' if w > 1 else ''})", _ratio(ex, nw or n1, "{:.1f}×"),
                f"against 1 naive process: {_ratio(ex, n1, '{:.1f}×')}"))
    # where the time goes
    if in1:
        stages = _stage_rows(in1["stages_ms"])
        total = sum(v for _, v in stages)
        top = stages[0]
        out.append(("stages", "dominant (in-process, ms per message)", f"{top[0]} {top[1]:.2f} ms ({top[1] / total:.0%})",
                    ", ".join(f"{k} {v:.2f}" for k, v in stages)))
    ds = daemon_stages(headline)
    if ds:
        top = max(ds.items(), key=lambda item: item[1])
        out.append(("stages", "dominant (daemon /metrics)", f"{top[0]} {top[1]:.2f} ms",
                    ", ".join(f"{k} {v:.2f}" for k, v in sorted(ds.items(), key=lambda i: -i[1]))))
    # workers
    for key, label in (("2KB-rsa-w1", "1 worker"), (f"2KB-rsa-w{w}", f"{w} workers, one daemon"),
                       ("2KB-rsa-2daemons", "2 daemons × 1 worker")):
        if key in results["drains"] and not (key == f"2KB-rsa-w{w}" and w == 1 and label.startswith("1")):
            d = results["drains"][key]
            detail = f"{d['messages']:,} messages; peak RSS per worker {_mb(d['peak_rss_kb'])}"
            if key == "2KB-rsa-w1":
                detail += f"; ceiling 1 bridge {_rate(_get(results, 'ceiling', '2KB-w1'))}"
            out.append(("workers", label, _rate(d["rate"]), detail))
    # sizes
    for label in ("2KB", "20KB", "200KB", "5MB"):
        d = results["drains"].get(f"{label}-rsa-w{w}")
        if d is None:
            continue
        mb_s = d["rate"] * d["document_bytes"] / 1e6
        inproc = results["inprocess"].get(f"{label}-rsa-w1")
        out.append(("size", f"{label} ({d['document_bytes']:,} B)", _rate(d["rate"]),
                    f"{mb_s:.1f} MB/s in; ceiling {_rate(_get(results, 'ceiling', f'{label}-w{w}'))}; in-process "
                    f"{_num(inproc and inproc['ms_per_message'])} ms/msg; peak RSS per worker {_mb(d['peak_rss_kb'])}"))
    # routes and participants
    scale = _scale(results)
    loads = (results.get("scale", {}).get("paired") or {}).get("load_seconds", {})
    for name, (base, value, change) in scale.items():
        e2e = results["drains"].get(f"2KB-rsa-w{w} {name}")
        verdict = "within 10%" if abs(change) <= TARGET_FLAT else "NOT within 10%"
        paired = results["scale"]["paired"]
        ratios = sorted(paired["ratios"][name])
        detail = (f"in-process CPU per message, {paired['messages']:,} documents through each configuration in "
                  f"{paired['blocks']} blocks taken in turns; median change per block {change:+.1%} "
                  f"(middle half {ratios[len(ratios) // 4] - 1:+.1%} to {ratios[3 * len(ratios) // 4] - 1:+.1%}); "
                  f"{verdict}; config loads in {loads.get(name, 0):.1f}s")
        if e2e:
            detail += f"; end to end {_rate(e2e['rate'])}"
        out.append(("scale", f"10 → {name}", f"{base:.2f} → {value:.2f} ms CPU/msg ({change:+.1%})", detail))
    # algorithms
    for algorithm, label in ALGORITHM_LABELS:
        d = results["drains"].get(f"2KB-{algorithm}-w{w}")
        inproc = results["inprocess"].get(f"2KB-{algorithm}-w1")
        if d or inproc:
            out.append(("algorithm", f"{label}, platform and senders", _rate(d and d["rate"]),
                        f"in-process {_num(inproc and inproc['ms_per_message'])} ms/msg "
                        f"({_rate(inproc and inproc['rate'])}); ceiling {_rate(_get(results, 'ceiling', f'2KB-{algorithm}-w{w}' if algorithm == 'ec' else f'2KB-w{w}'))}"))
    for entry in results.get("signatures", {}).values():
        out.append(("algorithm", f"{entry['label']}: sign / verify", f"{entry['sign_per_cpu_second']:,} / "
                    f"{entry['verify_per_cpu_second']:,} per CPU-s", "the exchange's Signer.sign and Verifier.verify on "
                    "one 2 KB declaration (bench/signatures.py)"))
    # memory
    for key, label in ((f"2KB-rsa-w{w}", "2 KB"), (f"2KB-rsa-w{w} backlog", "2 KB, large backlog"), (f"5MB-rsa-w{w}", "5 MB")):
        d = results["drains"].get(key)
        if d:
            out.append(("memory", f"peak RSS per worker, {label}", _mb(d["peak_rss_kb"]),
                        f"VmHWM of each worker process after a {d['messages']:,}-message backlog drained"))
    for target, met, how in targets(results):
        out.append(("target", target, "met" if met else "MISSED", how))
    for error in results.get("errors", []):
        out.append(("error", error.splitlines()[0][:60], "failed", error.splitlines()[0][60:200]))
    return out


def table(results: dict) -> str:
    header = ("", "measure", "result", "detail")
    body = rows(results)
    widths = [max(len(r[i]) for r in [header, *body]) for i in range(3)]
    lines = []
    machine = results["machine"]
    lines.append(f"exchanger benchmark, profile {results['profile']}: {machine['cores']} cores {machine['cpu']}, "
                 f"{machine['memory_gb']} GB, Python {machine['python']}, RabbitMQ {machine['rabbitmq']}; "
                 f"load average {machine['load_average_at_start']} at start, {machine.get('load_average_at_end')} at end; "
                 f"{results.get('seconds', 0) / 60:.1f} min")
    other = interference(results)
    if other is not None:
        quiet = results.get("quiet", {})
        lines.append(f"other work on the machine while measuring: {other:.2f} cores on average "
                     f"(CPU time of processes outside the benchmark; the results are for what was left); "
                     f"{quiet.get('waited_seconds', 0):.0f}s spent waiting for quiet moments, "
                     f"{quiet.get('not_quiet', 0)} of {quiet.get('checks', 0)} measurements started without one")
    fmt = "  ".join(f"{{:<{w}}}" for w in widths) + "  {}"
    lines.append(fmt.format(*header))
    lines.append("  ".join("-" * w for w in widths) + "  " + "-" * 6)
    previous = None
    for row in body:
        section = row[0] if row[0] != previous else ""
        previous = row[0]
        lines.append(fmt.format(section, row[1], row[2], row[3]).rstrip())
    return "\n".join(lines)


def markdown_table(results: dict) -> str:
    out = ["| | measure | result | detail |", "|---|---|---|---|"]
    previous = None
    for section, measure, result, detail in rows(results):
        shown = section if section != previous else ""
        previous = section
        out.append(f"| {shown} | {measure} | **{result}** | {detail} |".replace("**n/a**", "n/a"))
    return "\n".join(out)


# ---- RESULTS.md ----------------------------------------------------------------------------------------------------

def _stages_markdown(results: dict) -> str:
    w = results["workers"]
    in1 = results["inprocess"].get("2KB-rsa-w1", {}).get("stages_ms", {})
    ec = results["inprocess"].get("2KB-ec-w1", {}).get("stages_ms", {})
    daemon = daemon_stages(results["drains"].get(f"2KB-rsa-w{w}"))
    names = list(dict.fromkeys([*in1, *ec, *daemon]))
    total_in, total_ec = sum(in1.values()), sum(ec.values())
    lines = [
        "| stage | in-process, RSA-2048 (ms) | share | in-process, ECDSA P-256 (ms) | daemon /metrics, RSA-2048, "
        f"{w} workers (ms) |",
        "|---|---|---|---|---|",
    ]
    for name in sorted(names, key=lambda n: -in1.get(n, 0)):
        share = f"{in1[name] / total_in:.0%}" if name in in1 and total_in else ""
        lines.append(f"| {name} | {_num(in1.get(name))} | {share} | {_num(ec.get(name))} | {_num(daemon.get(name))} |")
    lines.append(f"| **total** | **{total_in:.2f}** | | **{total_ec:.2f}** | |")
    return "\n".join(lines)


def _profile_markdown(results: dict) -> str:
    found = results.get("worker_profile")
    if not found:
        return ""
    return ("One worker (`exchanger run --workers 1`) draining a preloaded backlog under py-spy (bench/profile.py; "
            "flame graph: `bench/profile/worker.svg`). CPU per message is the worker's from /proc; py-spy's "
            "samples share it out: *stages* is the pipeline, *publishing* and *confirms* the outbound side on the "
            "I/O thread, *message log* the journal (its SQLite writer thread included), *logging* structlog, "
            "*metrics* prometheus_client, *hand-off* the queues between threads, *broker I/O* the rest of pika.\n\n"
            + profile.markdown(found))


def _interference_text(results: dict) -> str:
    other = interference(results)
    if other is None:
        return ""
    return (f"While this run measured, processes outside it used **{other:.2f} of the {results['machine']['cores']} cores** "
            "on average (from /proc/stat, less the CPU time of the benchmark's own processes and the broker): the "
            "numbers are for what was left of the machine. Before each measurement the run waits (up to 15 s, "
            f"{results.get('quiet', {}).get('waited_seconds', 0):.0f} s in all) for a moment when the machine is nearly "
            f"idle; {results.get('quiet', {}).get('not_quiet', 0)} of {results.get('quiet', {}).get('checks', 0)} "
            "measurements had to start without one.")


def _sizes_markdown(results: dict) -> str:
    sizes = [(label, results["inprocess"].get(f"{label}-rsa-w1")) for label in ("2KB", "20KB", "200KB", "5MB")]
    sizes = [(label, entry) for label, entry in sizes if entry]
    if not sizes:
        return ""
    names = list(dict.fromkeys(name for _, entry in sizes for name in entry["stages_ms"]))
    names.sort(key=lambda n: -sizes[-1][1]["stages_ms"].get(n, 0))
    lines = ["| stage | " + " | ".join(label for label, _ in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(_num(entry["stages_ms"].get(name)) for _, entry in sizes) + " |")
    lines.append("| **total (wall, one core)** | " + " | ".join(f"**{entry['ms_per_message']:.2f}**" for _, entry in sizes) + " |")
    return "\n".join(lines)


def _cpu_markdown(results: dict) -> str:
    lines = ["| run | msg/s | workers (cores) | broker (cores) | other work (cores) | whole machine (cores) "
             "| worker CPU ms/msg | broker CPU ms/msg |",
             "|---|---|---|---|---|---|---|---|"]
    for kind, table in (("exchanger", results["drains"]), ("ceiling", results["ceiling"])):
        for key, d in table.items():
            s, n, cpu = d["seconds"], d["messages"], d["cpu"]
            lines.append(f"| {kind} {key} | {d['rate']:,.0f} | {cpu['workers'] / s:.2f} | {cpu['broker'] / s:.2f} | "
                         f"{_other(cpu) / s:.2f} | {cpu.get('machine', 0) / s:.2f} | {1000 * cpu['workers'] / n:.2f} | "
                         f"{1000 * cpu['broker'] / n:.2f} |")
    return "\n".join(lines)


def write(results: dict, out: Path) -> None:
    chart(results, out / "sweeps.png")
    path = out / "RESULTS.md"
    kept = ""
    if path.exists():
        text = path.read_text()
        if ANALYSIS in text:
            kept = text[text.index(ANALYSIS):]
    m = results["machine"]
    libraries = ", ".join(f"{k} {v}" for k, v in m["libraries"].items())
    w = results["workers"]
    target_lines = "\n".join(f"- {'met' if met else '**missed**'}: {target}: {how}" for target, met, how in targets(results))
    text = f"""# Benchmark results

Produced by `bin/bench{'' if results['profile'] == 'default' else ' --' + results['profile']}{' --headline' if results.get('headline_only') else ''}` on {m['date']}
(profile {results['profile']}, {results.get('seconds', 0) / 60:.1f} minutes). Raw numbers: `bench/results.json`;
chart of the sweeps: `bench/sweeps.png`.

**Machine:** {m['cores']} cores, {m['cpu']}, {m['memory_gb']} GB RAM, Linux {m['kernel']}; Python {m['python']};
RabbitMQ {m['rabbitmq']} on the same cores; {libraries}. The broker, the exchange and the load generator share
the two cores. Load average {m['load_average_at_start']} at the start and {m.get('load_average_at_end')} at the end
(anything above what this run itself puts on the machine is other work sharing it). {_interference_text(results)}

**How:** each measurement gets its own documents (distinct MessageIds, signed by the sender ahead of time) on
one RabbitMQ virtual host made for the run, with the bundled routes.yaml and catalogue on keys made for the
run. Exchanger throughput is the drain of a preloaded backlog through `exchanger run --workers {w}`, from the
first consume to the last copy and receipt confirmed into the mailboxes. The message log (SQLite) and info
logging are on, as configured by default.

## Results

{markdown_table(results)}

## Targets (issues 5 and 13)

{target_lines}

## Where the time goes

Per message, by stage. In-process: the pipeline alone, one core, no broker. Daemon: the
`exchanger_stage_seconds` histogram served on /metrics during the headline drain (wall time per stage
on the compute thread, so it includes waiting for the core and the GIL while the I/O thread, the
message-log writer and the broker run).

{_stages_markdown(results)}

By message size (in-process, RSA-2048, one worker; ms per message):

{_sizes_markdown(results)}

{_profile_markdown(results)}

CPU seconds per drain, read from /proc (worker processes, the broker's Erlang VM, and every core of the machine):

{_cpu_markdown(results)}

"""
    if results.get("hostile"):
        text += hostile.markdown(results["hostile"]) + "\n"
    path.write_text(text + (kept or f"{ANALYSIS}\n\n(none yet)\n"))


# ---- the chart -----------------------------------------------------------------------------------------------------

def chart(results: dict, path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    w = results["workers"]
    fig, axes = plt.subplots(2, 3, figsize=(17, 9.5))
    fig.suptitle(f"exchanger benchmark — {results['machine']['cores']} cores {results['machine']['cpu']}, "
                 f"RabbitMQ {results['machine']['rabbitmq']}, profile {results['profile']}", fontsize=12)
    colours = {"exchanger": "#1f77b4", "ceiling": "#7f7f7f", "in-process": "#2ca02c", "naive": "#d62728"}

    # (a) workers
    ax = axes[0][0]
    labels, series = [], {"exchanger": [], "in-process": [], "ceiling": []}
    for key, label, ceil_key, inproc_factor in (("2KB-rsa-w1", "1 worker", "2KB-w1", 1),
                                                (f"2KB-rsa-w{w}", f"{w} workers", f"2KB-w{w}", w),
                                                ("2KB-rsa-2daemons", "2 daemons×1", f"2KB-w{w}", 2)):
        if key not in results["drains"]:
            continue
        labels.append(label)
        series["exchanger"].append(results["drains"][key]["rate"])
        in1 = _get(results, "inprocess", "2KB-rsa-w1") or 0
        series["in-process"].append(in1 * inproc_factor)
        series["ceiling"].append(_get(results, "ceiling", ceil_key) or 0)
    _bars(ax, labels, series, colours)
    naive_rate = _get(results, "naive", f"2KB-rsa-p{w}")
    if naive_rate:
        ax.axhline(naive_rate, color=colours["naive"], linestyle="--", label=f"naive peer ({w} proc.)")
    ax.axhline(TARGET_RATE, color="black", linestyle=":", label="target 2,000")
    ax.set_yscale("log")
    ax.set_ylim(top=ax.get_ylim()[1] * 8)
    ax.set_ylabel("messages/s (log)")
    ax.set_title("Workers (2 KB, RSA-2048); in-process = 1 worker × n")
    ax.legend(fontsize=7, ncol=3, loc="upper center")

    # (b) sizes
    ax = axes[0][1]
    xs, ex, ce, ip = [], [], [], []
    for label in ("2KB", "20KB", "200KB", "5MB"):
        d = results["drains"].get(f"{label}-rsa-w{w}")
        if not d:
            continue
        xs.append(d["document_bytes"])
        ex.append(d["rate"])
        ce.append(_get(results, "ceiling", f"{label}-w{w}"))
        inproc = results["inprocess"].get(f"{label}-rsa-w1")
        ip.append(inproc["rate"] * w if inproc else None)
    ax.plot(xs, ex, "o-", color=colours["exchanger"], label=f"exchanger ({w} workers)")
    ax.plot(xs, ce, "s--", color=colours["ceiling"], label="ceiling")
    ax.plot(xs, ip, "^:", color=colours["in-process"], label=f"in-process × {w}")
    ax.set_xscale("log")
    ax.set_yscale("log")
    ax.set_xlabel("document size (bytes, log)")
    ax.set_ylabel("messages/s (log)")
    ax.set_title("Message size")
    ax.legend(fontsize=8)

    # (c) routes and participants
    ax = axes[0][2]
    paired = results.get("scale", {}).get("paired") or {}
    ratios = paired.get("ratios") or {}
    if ratios:
        names = list(ratios)
        ax.boxplot([[100 * (r - 1) for r in ratios[n]] for n in names], showfliers=False)
        ax.axhline(100 * TARGET_FLAT, color="black", linestyle=":", label="±10%")
        ax.axhline(-100 * TARGET_FLAT, color="black", linestyle=":")
        ax.axhline(0, color="grey", linewidth=0.5)
        ax.set_xticks(range(1, len(names) + 1), [f"{n}\n{paired['cpu_ms'][n]:.2f} ms" for n in names], fontsize=8)
        ax.legend(fontsize=8)
    base = next(iter(paired.get("cpu_ms", {})), "")
    ax.set_ylabel(f"CPU per message vs {base} (%, per block)")
    ax.set_title("Routes and participants (in-process, in turns)")

    # (d) algorithms
    ax = axes[1][0]
    labels, series = [], {"exchanger": [], "in-process": []}
    for algorithm, label in ALGORITHM_LABELS:
        d = results["drains"].get(f"2KB-{algorithm}-w{w}")
        inproc = results["inprocess"].get(f"2KB-{algorithm}-w1")
        if not d and not inproc:
            continue
        labels.append(label)
        series["exchanger"].append(d["rate"] if d else 0)
        series["in-process"].append(inproc["rate"] if inproc else 0)
    _bars(ax, labels, {"exchanger": series["exchanger"], "in-process": series["in-process"]}, colours,
          names={"exchanger": f"exchanger ({w} workers)", "in-process": "in-process (1 worker)"})
    ax.set_ylabel("messages/s")
    ax.set_title("Signature algorithm (platform and senders)")
    ax.legend(fontsize=8)

    # (e) latency
    ax = axes[1][1]
    latency = results.get("latency", {}).get(f"2KB-rsa-w{w}")
    light = results.get("latency", {}).get(f"2KB-rsa-w{w} light")
    if latency and latency.get("samples_ms"):
        for run, load, colour in ((latency, "50%", colours["exchanger"]), (light, "25%", colours["in-process"])):
            if not run or not run.get("samples_ms"):
                continue
            samples = sorted(run["samples_ms"])
            ys = [(i + 1) / len(samples) for i in range(len(samples))]
            ax.plot(samples, ys, color=colour, label=f"{load} load ({run['achieved_rate']:.0f} msg/s): "
                                                    f"p99 {run['copies_ms']['99']:.1f} ms")
        for q, style in (("50", ":"), ("95", "--")):
            ax.axvline(latency["copies_ms"][q], color="grey", linestyle=style, label=f"p{q} at 50%: {latency['copies_ms'][q]:.1f} ms")
        ax.axvline(TARGET_P99_MS, color="black", linestyle=":", label="target p99 50 ms")
        ax.axhline(0.99, color="grey", linewidth=0.5)
        ax.set_xscale("log")
        ax.legend(fontsize=7)
        ax.set_title("Latency at a fixed rate, publish → destination")
    ax.set_xlabel("ms (log)")
    ax.set_ylabel("fraction of messages")

    # (f) memory
    ax = axes[1][2]
    labels, values = [], []
    for key, label in ((f"2KB-rsa-w{w}", "2 KB"), (f"2KB-rsa-w{w} backlog", "2 KB, big backlog"),
                       (f"200KB-rsa-w{w}", "200 KB"), (f"5MB-rsa-w{w}", "5 MB")):
        d = results["drains"].get(key)
        if d and d["peak_rss_kb"]:
            labels.append(f"{label}\n{d['messages']:,} msgs")
            values.append(max(d["peak_rss_kb"]) / 1024)
    ax.bar(range(len(values)), values, color=colours["exchanger"])
    ax.set_xticks(range(len(values)), labels, fontsize=8)
    for i, value in enumerate(values):
        ax.text(i, value, f"{value:.0f}", ha="center", va="bottom", fontsize=8)
    ax.set_ylabel("peak RSS of the largest worker (MB)")
    ax.set_title("Memory per worker (VmHWM)")

    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def _bars(ax, labels, series, colours, names=None) -> None:
    width = 0.8 / max(1, len(series))
    for index, (name, values) in enumerate(series.items()):
        positions = [i + (index - (len(series) - 1) / 2) * width for i in range(len(labels))]
        ax.bar(positions, values, width, color=colours.get(name), label=(names or {}).get(name, name))
        for x, value in zip(positions, values):
            if value:
                ax.text(x, value, f"{value:,.0f}", ha="center", va="bottom", fontsize=7)
    ax.set_xticks(range(len(labels)), labels)
