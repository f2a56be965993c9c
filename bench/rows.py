"""What the benchmark's one table says: a row (section, measure, result, detail) per measurement, with the
prose of each detail."""

from __future__ import annotations

from bench.readings import (ALGORITHM_LABELS, daemon_stages, measured, megabytes_text, number_text, other_work,
                            rate_text, ratio_text, scale_changes, stages_by_cost)
from bench.targets import TARGET_FLAT, targets


def _samples(drain: dict) -> str:
    samples = drain.get("samples") or []
    if len(samples) < 2:
        return ""
    listed = ", ".join(f"{s['rate']:,.0f} (other work {s['other_cores']:.2f})" for s in samples)
    return f"; median of {len(samples)} drains: {listed} msg/s"


def _per_message(drain: dict) -> str:
    """What one message cost the workers and the broker in a drain, and the workers' context switches."""
    n, cpu = drain["messages"], drain["cpu"]
    text = f"; per message: workers {1000 * cpu['workers'] / n:.2f} ms CPU, broker {1000 * cpu['broker'] / n:.2f} ms"
    switches = drain.get("switches")
    if switches:
        text += (f", the workers' threads switched {switches['voluntary'] / n:.1f} times voluntarily and "
                 f"{switches['involuntary'] / n:.1f} times preempted")
    return text


def _peer_ratio(rate: float | None, peer: dict) -> tuple[str, str]:
    """The exchange against the honest peer: the median of drains paired in the same minutes, when there are pairs."""
    pairs = peer.get("pairs") or []
    if not pairs:
        return ratio_text(rate, peer["rate"]), "the headline: the same backlog, the same broker, minutes apart"
    listed = ", ".join(f"{p['exchange']:,.0f}/{p['peer']:,.0f}" for p in pairs)
    return (f"{peer['ratio']:.2f}", f"the headline: median of {len(pairs)} pairs of drains of the same size, the peer's "
            f"just before the exchange's on the same broker (exchange/peer msg/s: {listed})")


def _sweep_runs(point: dict) -> str:
    runs = point.get("runs") or []
    if len(runs) < 2:
        return ""
    listed = ", ".join(f"{r['rate']:,.0f} msg/s" + (f" p99 {r['p99']:.1f} ms" if r["p99"] is not None else "") for r in runs)
    return f"; the rounds: {listed}"


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


def rows(results: dict) -> list[tuple[str, str, str, str]]:
    """The table's rows, section by section: (section, measure, result, detail)."""
    w = results["workers"]
    out: list[tuple[str, str, str, str]] = []
    batch = results.get("headline_batch", {})
    headline = results["drains"].get(f"2KB-rsa-w{w}")
    ex = headline["rate"] if headline else None
    if headline:
        cpu = headline["cpu"]
        seconds = headline["seconds"]
        out.append(("exchanger", f"end to end, {w} workers, 2 KB, RSA-2048", rate_text(ex),
                    f"drain of {headline['messages']:,} preloaded declarations ({batch.get('document_bytes', 0):,} B, "
                    f"{batch.get('signed_bytes', 0):,} B signed), first consume → last copy and receipt confirmed; "
                    f"CPU: workers {cpu['workers'] / seconds:.2f}, broker {cpu['broker'] / seconds:.2f}, "
                    f"whole machine {cpu.get('machine', 0) / seconds:.2f} of {results['machine']['cores']} cores "
                    f"(other work: {other_work(cpu) / seconds:.2f}){_per_message(headline)}{_samples(headline)}"))
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
            out.append(("prefetch", f"prefetch {prefetch}", f"{rate_text(point['rate'])}; {tail}",
                        f"drain of the same size, worker CPU {point['cpu_ms']:.2f} ms per message; then published at "
                        f"half the headline drain rate ({sweep['rate']:.0f} msg/s)"
                        + (f"; {latency['lost']} not received" if latency else "") + _sweep_runs(point)))
    ceil = measured(results, "ceiling", f"2KB-w{w}")
    out.append(("ceiling", f"bare bridge, {w} processes", rate_text(ceil),
                "same queues, prefetch, persistent publishes with confirms and mandatory, ack after confirms; no XML"))
    in1 = results["inprocess"].get("2KB-rsa-w1")
    inw = results["inprocess"].get(f"2KB-rsa-w{w}")
    if in1:
        out.append(("in-process", "1 worker", rate_text(in1["rate"]), f"{in1['ms_per_message']:.2f} ms per message, no broker"))
    if inw and w > 1:
        out.append(("in-process", f"{w} worker processes", rate_text(inw["rate"]),
                    f"{inw['ms_per_message']:.2f} ms per message and core (both cores, no broker)"))
    peer_w = results.get("peer", {}).get(f"2KB-rsa-p{w}")
    if peer_w:
        out.append(("honest peer", f"{w} processes", rate_text(peer_w["rate"]),
                    "asynchronous pika, prefetch as the exchange's, lxml XSD, signxml verify + sign of the copy and of "
                    f"a receipt, pipelined confirms, ack after both; {peer_w['messages']:,} messages drained"
                    + _per_message(peer_w) + _samples(peer_w)))
    n1 = measured(results, "naive", "2KB-rsa-p1")
    nw = measured(results, "naive", f"2KB-rsa-p{w}")
    out.append(("naive peer", "1 process", rate_text(n1), "basic_get, xmlschema, signxml verify + sign ×2, a confirm per publish"))
    if w > 1:
        out.append(("naive peer", f"{w} processes", rate_text(nw), "as many processes as the exchange has workers"))
    if peer_w:
        out.append(("ratio", f"exchanger / honest peer ({w} processes)", *_peer_ratio(ex, peer_w)))
    if in1:
        out.append(("ratio", f"exchanger / (in-process × {w})", ratio_text(ex, in1["rate"] * w),
                    "end to end against the pipeline alone on as many cores"))
    if headline and in1:
        worker_ms = 1000 * headline["cpu"]["workers"] / headline["messages"]
        out.append(("ratio", "worker CPU per message / in-process", ratio_text(worker_ms, in1["ms_per_message"]),
                    f"{worker_ms:.2f} ms in the drain vs {in1['ms_per_message']:.2f} ms in-process: the daemon's own cost "
                    "is the difference"))
    out.append(("ratio", "exchanger / ceiling", ratio_text(ex, ceil), ""))
    out.append(("ratio", f"exchanger / naive peer ({w} process{'es' if w > 1 else ''})", ratio_text(ex, nw or n1, "{:.1f}×"),
                f"against 1 naive process: {ratio_text(ex, n1, '{:.1f}×')}"))
    # where the time goes
    if in1:
        stages = stages_by_cost(in1["stages_ms"])
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
            detail = f"{d['messages']:,} messages; peak RSS per worker {megabytes_text(d['peak_rss_kb'])}"
            if key == "2KB-rsa-w1":
                detail += f"; ceiling 1 bridge {rate_text(measured(results, 'ceiling', '2KB-w1'))}"
            out.append(("workers", label, rate_text(d["rate"]), detail))
    # sizes
    for label in ("2KB", "20KB", "200KB", "5MB"):
        d = results["drains"].get(f"{label}-rsa-w{w}")
        if d is None:
            continue
        mb_s = d["rate"] * d["document_bytes"] / 1e6
        inproc = results["inprocess"].get(f"{label}-rsa-w1")
        out.append(("size", f"{label} ({d['document_bytes']:,} B)", rate_text(d["rate"]),
                    f"{mb_s:.1f} MB/s in; ceiling {rate_text(measured(results, 'ceiling', f'{label}-w{w}'))}; in-process "
                    f"{number_text(inproc and inproc['ms_per_message'])} ms/msg; peak RSS per worker {megabytes_text(d['peak_rss_kb'])}"))
    # routes and participants
    scale = scale_changes(results)
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
            detail += f"; end to end {rate_text(e2e['rate'])}"
        out.append(("scale", f"10 → {name}", f"{base:.2f} → {value:.2f} ms CPU/msg ({change:+.1%})", detail))
    # algorithms
    for algorithm, label in ALGORITHM_LABELS:
        d = results["drains"].get(f"2KB-{algorithm}-w{w}")
        inproc = results["inprocess"].get(f"2KB-{algorithm}-w1")
        if d or inproc:
            out.append(("algorithm", f"{label}, platform and senders", rate_text(d and d["rate"]),
                        f"in-process {number_text(inproc and inproc['ms_per_message'])} ms/msg "
                        f"({rate_text(inproc and inproc['rate'])}); ceiling {rate_text(measured(results, 'ceiling', f'2KB-{algorithm}-w{w}' if algorithm == 'ec' else f'2KB-w{w}'))}"))
    for entry in results.get("signatures", {}).values():
        out.append(("algorithm", f"{entry['label']}: sign / verify", f"{entry['sign_per_cpu_second']:,} / "
                    f"{entry['verify_per_cpu_second']:,} per CPU-s", "the exchange's Signer.sign and Verifier.verify on "
                    "one 2 KB declaration (bench/signatures.py)"))
    # memory
    for key, label in ((f"2KB-rsa-w{w}", "2 KB"), (f"2KB-rsa-w{w} backlog", "2 KB, large backlog"), (f"5MB-rsa-w{w}", "5 MB")):
        d = results["drains"].get(key)
        if d:
            out.append(("memory", f"peak RSS per worker, {label}", megabytes_text(d["peak_rss_kb"]),
                        f"VmHWM of each worker process after a {d['messages']:,}-message backlog drained"))
    for target, met, how in targets(results):
        out.append(("target", target, "met" if met else "MISSED", how))
    for error in results.get("errors", []):
        out.append(("error", error.splitlines()[0][:60], "failed", error.splitlines()[0][60:200]))
    return out

