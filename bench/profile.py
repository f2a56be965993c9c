"""Where a worker's time goes in the drain: py-spy samples by category, a flame graph, callgrind instructions.

``python -m bench.profile [--messages N] [--callgrind M] [--out DIR] [--label NAME]`` (or ``bin/bench
--profile``) drains N preloaded 2 KB RSA declarations through one worker (`exchanger run --workers 1`:
the daemon process is the worker) while py-spy samples it, and as many through one process of the
honest peer (bench/peer.py) the same way, in alternated runs pooled, and writes:

- ``DIR/NAME.svg`` and ``DIR/NAME-peer.svg``: the flame graphs of the worker's threads and of the peer;
- ``DIR/NAME.txt``: the samples by category (stages, publishing, confirms, message log, logging,
  metrics, hand-off between threads, broker I/O), as CPU ms per message from /proc, the worker's
  beside the peer's (whose lxml and signxml work counts as its stages);
- ``DIR/NAME.json``: the same figures, and the callgrind ones below.

With ``--callgrind M`` the same worker runs under valgrind's callgrind as well: its counters are
zeroed once it consumes, M messages are published to it, and the instructions it executed are
dumped once the last copy and receipt are in: instructions per message, by shared object. Slow
(valgrind runs Python some 50 times slower) but repeatable on a machine shared with other work.
"""

from __future__ import annotations

import argparse
import json
import os
import re
import secrets
import signal
import subprocess
import sys
import time
from collections import Counter
from contextlib import closing
from pathlib import Path

from bench import deployment, peer
from bench.processes import Daemon, cpu_seconds, rabbitmq_pid, wait_for_quiet
from bench.workload import SIZES, Generator
from exchanger.transport.names import INBOUND_QUEUE, mailbox_queue

HERE = Path(__file__).resolve().parent
DESTINATION = "customs"
PY_SPY = str(Path(sys.executable).parent / "py-spy")

# First matching rule names a sample's category; frames are "function (path:line)" from the leaf up.
CATEGORIES = [
    ("metrics", re.compile(r"prometheus_client")),
    ("logging", re.compile(r"structlog|exchanger/logging\.py|/logging/__init__\.py")),
    ("message log", re.compile(r"exchanger/journal/")),
    ("confirms", re.compile(r"_on_confirm|transport/confirms\.py|_on_settled|_acknowledge|basic_ack")),
    ("publishing", re.compile(r"_publish \(|basic_publish|_settle \(|BasicProperties")),
    # The peer's XML and crypto (lxml, signxml) run in its consume callback: its "stages". (Its main() is
    # at the root of every stack of the peer, so the callback is named, not the file.)
    ("stages", re.compile(r"exchanger/pipeline/|exchanger/dsig/|exchanger/xml/|exchanger/receipts/|exchanger/routing/"
                          r"|signxml/|(_on_message|signed) \(bench/peer\.py")),
    ("hand-off", re.compile(r"add_callback_threadsafe|_work\.|queue\.py|_compute_loop|_from_compute|threading\.py")),
    ("broker I/O", re.compile(r"pika/")),
]


# A thread sampled in one of these, innermost, is waiting rather than computing (py-spy's --nonblocking
# sampling cannot always tell); such samples are counted apart and share out no CPU.
WAITING = re.compile(r"^(\w+\.)?(poll|wait|_wait_for_tstate_lock|select|get|sleep|_wait_for_work) \(")
# The message log's BEGIN and COMMIT wait for the file's lock and for fsync, with the GIL released.
WAITING_FOR_DISK = re.compile(r"^(\w+\.)?_transaction \(exchanger/journal/sqlite\.py")


def categorise(stack: list[str]) -> str:
    """The category of one sampled stack (innermost frame first): the first category any frame matches."""
    if stack and (WAITING.search(stack[0]) or WAITING_FOR_DISK.search(stack[0])):
        return "waiting"
    text = "\n".join(stack)
    for name, pattern in CATEGORIES:
        if pattern.search(text):
            return name
    return "other"


THREADS = {"compute": "compute", "MainThread": "I/O (pika)", "journal-writer": "message-log writer"}


def _thread(stack: list[str]) -> str:
    """The thread a stack was sampled on, from py-spy's root frame ``thread (id): name``."""
    root = stack[-1] if stack else ""
    name = root.rpartition(": ")[2] if root.startswith("thread") else ""
    return next((label for key, label in THREADS.items() if key in name), "other")


def read_collapsed(path: Path) -> tuple[Counter, Counter, int]:
    """py-spy's raw (collapsed) output: samples by category and by thread, and in all."""
    by_category, by_thread, total = Counter(), Counter(), 0
    for line in path.read_text().splitlines():
        stack_text, _, count = line.rpartition(" ")
        if not stack_text or not count.isdigit():
            continue
        frames = stack_text.split(";")[::-1]
        category = categorise(frames)
        by_category[category] += int(count)
        if category != "waiting":
            by_thread[_thread(frames)] += int(count)
            total += int(count)
    return by_category, by_thread, total


def _depth(dep, channel, queue: str) -> int:
    return dep.depth(channel, queue)


def _wait_drained(dep, daemon, count: int, timeout: float) -> None:
    started = time.perf_counter()
    with closing(dep.connect()) as connection:
        channel = connection.channel()
        while True:
            copies = _depth(dep, channel, mailbox_queue(DESTINATION))
            receipts = _depth(dep, channel, mailbox_queue(deployment.SENDERS[0]))
            if copies >= count and receipts >= count:
                return
            if not daemon.alive():
                raise RuntimeError(f"the worker exited:\n{daemon.tail()}")
            if time.perf_counter() - started > timeout:
                raise TimeoutError(f"{copies}/{count} copies after {timeout:.0f}s:\n{daemon.tail()}")
            time.sleep(0.05)


def _wait_consuming(dep, daemon, count: int) -> None:
    with closing(dep.connect()) as connection:
        channel = connection.channel()
        while _depth(dep, channel, INBOUND_QUEUE) >= count:
            if not daemon.alive():
                raise RuntimeError(f"the worker exited:\n{daemon.tail()}")
            time.sleep(0.002)


def _exchange_worker(dep, label: str):
    """``exchanger run --workers 1``: the daemon process is the worker."""
    return Daemon(dep.config_path, dep.url, 1, log_path=dep.directory / f"profile-{label}.log")


def _honest_peer(dep, _label: str):
    """One process of the honest peer (bench/peer.py), on the same queues with the same prefetch."""
    senders = {dep.amqp_user(p): p for p in deployment.SENDERS}
    return peer.Peers(dep.admin_url, dep.config.broker.prefetch, senders, 1, dep.keys_dir, dep.algorithm)


SUBJECTS = {"exchange": _exchange_worker, "peer": _honest_peer}


def sample(dep, gen: Generator, messages: int, out: Path, label: str, rate: int = 100, *,
           subject: str = "exchange", graph: bool = True) -> dict:
    """Drain ``messages`` through one worker (or one peer process) under py-spy; the flame graph, samples by category."""
    batch = gen.batch(SIZES["2KB"], messages)
    dep.purge(batch.sender, DESTINATION)
    dep.preload(batch.sender, batch.bodies)
    wait_for_quiet(10)
    daemon = SUBJECTS[subject](dep, label)
    raw, svg = out / f"{label}.collapsed", out / f"{label}.svg"
    spies = []
    try:
        _wait_consuming(dep, daemon, messages)
        pid = daemon.worker_pids()[0]
        before = cpu_seconds(pid)
        started = time.perf_counter()
        for fmt, path in (("raw", raw), ("flamegraph", svg))[:2 if graph else 1]:  # py-spy writes one format a run
            spies.append(subprocess.Popen([PY_SPY, "record", "--pid", str(pid), "--rate", str(rate), "--threads",
                                           "--nonblocking", "--format", fmt, "--output", str(path)],
                                          stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))
        _wait_drained(dep, daemon, messages, timeout=600)
        seconds = time.perf_counter() - started
        cpu = cpu_seconds(pid) - before
    finally:
        for spy in spies:
            spy.send_signal(signal.SIGINT)
        for spy in spies:
            spy.wait(60)
        daemon.stop()
    if svg.exists():  # the graph's title is py-spy's command line: name the project's files relative to it
        svg.write_text(svg.read_text().replace(f"{HERE.parent}/", ""))
    by_category, by_thread, total = read_collapsed(raw)
    if not os.environ.get("BENCH_KEEP_STACKS"):
        raw.unlink()  # large; the flame graph holds the same stacks
    waiting = by_category.pop("waiting", 0)
    ms = 1000 * cpu / messages
    return {
        "messages": messages, "seconds": seconds, "rate": messages / seconds, "cpu_ms_per_message": ms,
        "samples": total, "waiting_samples": waiting,
        "categories_ms": {k: ms * v / total for k, v in by_category.most_common()} if total else {},
        "threads_ms": {k: ms * v / total for k, v in by_thread.most_common()} if total else {},
    }


def side_by_side(dep, gen: Generator, messages: int, out: Path, label: str, *, rounds: int = 2, before=None) -> dict:
    """One worker and one process of the honest peer, ``messages`` each, in alternated runs (A B B A…), pooled.

    The machine's speed drifts from one minute to the next; alternating the two and pooling their runs
    lets the drift fall on both alike. The first run of each writes its flame graph.
    """
    runs: dict[str, list[dict]] = {"exchange": [], "peer": []}
    per_run = max(1, messages // rounds)
    for index in range(rounds):
        order = ("exchange", "peer") if index % 2 == 0 else ("peer", "exchange")
        for subject in order:
            if before is not None:
                before()
            name = label if subject == "exchange" else f"{label}-peer"
            runs[subject].append(sample(dep, gen, per_run, out, name, subject=subject, graph=not runs[subject]))
    return {"py_spy": pooled(runs["exchange"]), "peer": pooled(runs["peer"])}


def pooled(runs: list[dict]) -> dict:
    """Several runs of ``sample`` as one: CPU per message and its shares weighted by each run's messages."""
    messages = sum(run["messages"] for run in runs)

    def weighted(key: str) -> dict[str, float]:
        names = dict.fromkeys(name for run in runs for name in run[key])
        totals = {name: sum(run[key].get(name, 0.0) * run["messages"] for run in runs) / messages for name in names}
        return dict(sorted(totals.items(), key=lambda item: -item[1]))

    seconds = sum(run["seconds"] for run in runs)
    return {
        "messages": messages, "seconds": seconds, "rate": messages / seconds,
        "cpu_ms_per_message": sum(run["cpu_ms_per_message"] * run["messages"] for run in runs) / messages,
        "samples": sum(run["samples"] for run in runs), "waiting_samples": sum(run["waiting_samples"] for run in runs),
        "categories_ms": weighted("categories_ms"), "threads_ms": weighted("threads_ms"),
        "runs": [{"messages": run["messages"], "rate": run["rate"], "cpu_ms_per_message": run["cpu_ms_per_message"]}
                 for run in runs],
    }


def callgrind(dep, gen: Generator, messages: int, out: Path, label: str) -> dict:
    """Instructions per message of one worker in the drain, counted by callgrind, by shared object."""
    batch = gen.batch(SIZES["2KB"], messages)
    dep.purge(batch.sender, DESTINATION)
    dump = out / f"{label}.callgrind"
    prefix = ("valgrind", "--tool=callgrind", f"--callgrind-out-file={dump}", "--dump-line=no")
    daemon = Daemon(dep.config_path, dep.url, 1, log_path=dep.directory / f"callgrind-{label}.log", prefix=prefix)
    try:
        daemon.wait_ready(timeout=900)
        pid = _valgrind_pid(daemon)
        subprocess.run(["callgrind_control", "--zero", str(pid)], check=True, capture_output=True, timeout=120)
        dep.preload(batch.sender, batch.bodies)
        _wait_drained(dep, daemon, messages, timeout=3600)
        for stale in out.glob(f"{label}.callgrind*"):
            stale.unlink()
        subprocess.run(["callgrind_control", "--dump", str(pid)], check=True, capture_output=True, timeout=300)
    finally:
        daemon.stop(timeout=300)
    dumps = sorted(out.glob(f"{label}.callgrind*"), key=lambda p: p.stat().st_mtime)
    by_object = _costs_by_object(dumps[0]) if dumps else {}
    for path in dumps:
        path.unlink()
    total = sum(by_object.values())
    return {"messages": messages, "instructions_per_message": total / messages,
            "by_object": {k: v / messages for k, v in sorted(by_object.items(), key=lambda kv: -kv[1])}}


def _valgrind_pid(daemon) -> int:
    return daemon.process.pid


_OBJECT_NAMES = [("libcrypto", "OpenSSL (RSA, digests)"), ("libssl", "OpenSSL (RSA, digests)"),
                 ("libxmlsec", "xmlsec"), ("libxml2", "libxml2 (parse, c14n, XSD)"), ("etree", "lxml"),
                 ("libexslt", "libxml2 (parse, c14n, XSD)"), ("libxslt", "libxml2 (parse, c14n, XSD)"),
                 ("sqlite", "SQLite (message log)"), ("_rust", "cryptography"), ("python", "Python interpreter"),
                 ("libc.so", "libc"), ("ld-linux", "libc"), ("vgpreload", "libc"), ("libz", "zlib")]


def _object_name(path: str) -> str:
    for needle, name in _OBJECT_NAMES:
        if needle in path:
            return name
    return "other extension modules" if path.endswith(".so") or ".so." in path else "Python interpreter"


def _costs_by_object(path: Path) -> dict[str, int]:
    """Exclusive instruction counts of a callgrind dump, summed by shared object."""
    names: dict[str, str] = {}
    costs: Counter = Counter()
    current, after_call = "?", False
    with open(path, errors="replace") as stream:
        for line in stream:
            if line.startswith("ob="):
                current = _resolve(line[3:].strip(), names)
            elif line.startswith(("cob=", "cfi=", "cfl=", "cfn=")):
                if line.startswith("cob="):
                    _resolve(line[4:].strip(), names)
            elif line.startswith("calls="):
                after_call = True
            elif line[:1].isdigit() or line[:1] in "+-*":
                if after_call:
                    after_call = False  # the inclusive cost of the call just named: counted in its callee
                    continue
                parts = line.split()
                if len(parts) >= 2:
                    costs[_object_name(current)] += int(parts[1])
    return dict(costs)


def _resolve(text: str, names: dict[str, str]) -> str:
    match = re.match(r"\((\d+)\)\s*(.*)", text)
    if not match:
        return text
    key, name = match.groups()
    if name:
        names[key] = name
    return names.get(key, name)


def _runs_text(pooled_result: dict) -> str:
    runs = pooled_result.get("runs") or []
    if len(runs) < 2:
        return ""
    return " in runs of " + ", ".join(f"{run['cpu_ms_per_message']:.2f}" for run in runs) + " ms per message"


def markdown(result: dict) -> str:
    """The profile as tables: CPU ms per message by category (beside the honest peer's), and instructions per message."""
    lines = []
    spy, rival = result.get("py_spy"), result.get("peer")
    if spy:
        total = spy["cpu_ms_per_message"]
        lines += [f"Worker CPU {total:.2f} ms per message ({spy['messages']:,} messages through one "
                  f"worker at {spy['rate']:,.0f} msg/s{_runs_text(spy)}; {spy['samples']:,} py-spy samples of work shared out "
                  "by category, samples of waiting threads left out)"]
        if rival:
            lines[-1] += (f"; the honest peer, one process, drained as many the same way, its runs alternated with the "
                          f"worker's: {rival['cpu_ms_per_message']:.2f} ms per message at {rival['rate']:,.0f} msg/s"
                          f"{_runs_text(rival)} ({rival['samples']:,} samples)")
        lines[-1] += ":"
        lines.append("")
        if rival:
            lines += ["| category | exchange worker, CPU ms per message | share | honest peer, CPU ms per message | exchange − peer |",
                      "|---|---|---|---|---|"]
            names = list(spy["categories_ms"]) + [n for n in rival["categories_ms"] if n not in spy["categories_ms"]]
            for name in names:
                mine, theirs = spy["categories_ms"].get(name, 0.0), rival["categories_ms"].get(name, 0.0)
                lines.append(f"| {name} | {mine:.3f} | {mine / total:.0%} | {theirs:.3f} | {mine - theirs:+.3f} |")
            lines.append(f"| **total** | **{total:.3f}** | | **{rival['cpu_ms_per_message']:.3f}** | "
                         f"**{total - rival['cpu_ms_per_message']:+.3f}** |")
        else:
            lines += ["| category | CPU ms per message | share |", "|---|---|---|"]
            lines += [f"| {name} | {ms:.3f} | {ms / total:.0%} |" for name, ms in spy["categories_ms"].items()]
        if spy.get("threads_ms"):
            lines += ["", "| exchange worker's thread | CPU ms per message |", "|---|---|"]
            lines += [f"| {name} | {ms:.3f} |" for name, ms in spy["threads_ms"].items()]
    grind = result.get("callgrind")
    if grind:
        lines += ["", f"callgrind: **{grind['instructions_per_message'] / 1e6:.2f} M instructions per message** "
                      f"({grind['messages']:,} messages through one worker), by shared object:", "",
                  "| object | M instructions per message |", "|---|---|"]
        lines += [f"| {name} | {value / 1e6:.3f} |" for name, value in grind["by_object"].items()]
    return "\n".join(lines) + "\n"


def run(messages: int, grind_messages: int, out: Path, label: str, *, say=print) -> dict:
    """Profile one worker (py-spy, and callgrind if ``grind_messages``) and write DIR/LABEL.{svg,txt,json}."""
    out.mkdir(parents=True, exist_ok=True)
    tag = secrets.token_hex(3)
    dep = deployment.create(tag, "rsa")
    try:
        gen = Generator(dep.keys_dir, tag)
        result: dict = {"label": label, "when": time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())}
        say(f"py-spy: {messages:,} messages through one worker and as many through one process of the honest peer")
        result.update(side_by_side(dep, gen, messages, out, label))
        if grind_messages:
            say(f"callgrind: {grind_messages:,} messages through one worker (slow)")
            result["callgrind"] = callgrind(dep, gen, grind_messages, out, label)
    finally:
        dep.close()
    (out / f"{label}.json").write_text(json.dumps(result, indent=1))
    (out / f"{label}.txt").write_text(markdown(result))
    say(markdown(result))
    return result


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="bin/bench --profile", description=__doc__.split("\n\n")[0])
    parser.add_argument("--messages", type=int, default=3000, help="messages drained under py-spy (default 3000)")
    parser.add_argument("--callgrind", type=int, default=0, metavar="M", help="also count instructions over M messages")
    parser.add_argument("--out", type=Path, default=HERE / "profile")
    parser.add_argument("--label", default="worker")
    args = parser.parse_args(argv)
    if os.geteuid() != 0:
        print("note: py-spy needs root (or ptrace permission) to sample another process", file=sys.stderr)
    run(args.messages, args.callgrind, args.out, args.label)
    return 0


if __name__ == "__main__":
    sys.exit(main())
