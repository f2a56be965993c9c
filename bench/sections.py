"""The sections of bench/RESULTS.md beside the main table: where the time goes, by stage, by size and by process,
the profile of one worker, and how busy the machine was with other work."""

from __future__ import annotations

from bench import profile
from bench.readings import daemon_stages, interference, number_text, other_work


def stages_markdown(results: dict) -> str:
    """Per message, by stage: in-process (RSA-2048, ECDSA P-256) against the daemon's /metrics."""
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
        lines.append(f"| {name} | {number_text(in1.get(name))} | {share} | {number_text(ec.get(name))} | {number_text(daemon.get(name))} |")
    lines.append(f"| **total** | **{total_in:.2f}** | | **{total_ec:.2f}** | |")
    return "\n".join(lines)


def profile_markdown(results: dict) -> str:
    """The profile of one worker in the drain, or nothing when it was not taken."""
    found = results.get("worker_profile")
    if not found:
        return ""
    return ("One worker (`exchanger run --workers 1`) draining a preloaded backlog under py-spy (bench/profile.py; "
            "flame graph: `bench/profile/worker.svg`). CPU per message is the worker's from /proc; py-spy's "
            "samples share it out: *stages* is the pipeline, *publishing* and *confirms* the outbound side on the "
            "I/O thread, *message log* the journal (its SQLite writer thread included), *logging* structlog, "
            "*metrics* prometheus_client, *hand-off* the queues between threads, *broker I/O* the rest of pika. "
            "Beside it, one process of the honest peer drained the same way (flame graph: `bench/profile/worker-peer.svg`): "
            "its lxml and signxml work counts as its *stages*; it has no message log, logging, metrics or threads.\n\n"
            + profile.markdown(found))


def interference_text(results: dict) -> str:
    """How much of the machine other work took while the run measured, or nothing if unknown."""
    other = interference(results)
    if other is None:
        return ""
    return (f"While this run measured, processes outside it used **{other:.2f} of the {results['machine']['cores']} cores** "
            "on average (from /proc/stat, less the CPU time of the benchmark's own processes and the broker): the "
            "numbers are for what was left of the machine. Before each measurement the run waits (up to 15 s, "
            f"{results.get('quiet', {}).get('waited_seconds', 0):.0f} s in all) for a moment when the machine is nearly "
            f"idle; {results.get('quiet', {}).get('not_quiet', 0)} of {results.get('quiet', {}).get('checks', 0)} "
            "measurements had to start without one.")


def sizes_markdown(results: dict) -> str:
    """Per message, by stage and by document size (in-process, RSA-2048, one worker)."""
    sizes = [(label, results["inprocess"].get(f"{label}-rsa-w1")) for label in ("2KB", "20KB", "200KB", "5MB")]
    sizes = [(label, entry) for label, entry in sizes if entry]
    if not sizes:
        return ""
    names = list(dict.fromkeys(name for _, entry in sizes for name in entry["stages_ms"]))
    names.sort(key=lambda n: -sizes[-1][1]["stages_ms"].get(n, 0))
    lines = ["| stage | " + " | ".join(label for label, _ in sizes) + " |", "|---|" + "---|" * len(sizes)]
    for name in names:
        lines.append(f"| {name} | " + " | ".join(number_text(entry["stages_ms"].get(name)) for _, entry in sizes) + " |")
    lines.append("| **total (wall, one core)** | " + " | ".join(f"**{entry['ms_per_message']:.2f}**" for _, entry in sizes) + " |")
    return "\n".join(lines)


def cpu_markdown(results: dict) -> str:
    """CPU seconds of each drain and ceiling run: workers, broker, other work, whole machine."""
    lines = ["| run | msg/s | workers (cores) | broker (cores) | other work (cores) | whole machine (cores) "
             "| worker CPU ms/msg | broker CPU ms/msg |",
             "|---|---|---|---|---|---|---|---|"]
    for kind, table in (("exchanger", results["drains"]), ("ceiling", results["ceiling"])):
        for key, d in table.items():
            s, n, cpu = d["seconds"], d["messages"], d["cpu"]
            lines.append(f"| {kind} {key} | {d['rate']:,.0f} | {cpu['workers'] / s:.2f} | {cpu['broker'] / s:.2f} | "
                         f"{other_work(cpu) / s:.2f} | {cpu.get('machine', 0) / s:.2f} | {1000 * cpu['workers'] / n:.2f} | "
                         f"{1000 * cpu['broker'] / n:.2f} |")
    return "\n".join(lines)

