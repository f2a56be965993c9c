"""What the benchmark runs against the broker: `exchanger run` as a subprocess, and the bridges of the ceiling.

A runner starts its processes, names the worker processes (for their peak RSS), reads the daemon's
/metrics, and stops them gracefully.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from pathlib import Path

from prometheus_client.parser import text_string_to_metric_families

ROOT = Path(__file__).resolve().parents[1]


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def children(pid: int) -> list[int]:
    """The direct child processes of a process."""
    found = []
    for entry in os.listdir("/proc"):
        if not entry.isdigit():
            continue
        try:
            with open(f"/proc/{entry}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except OSError:
            continue
        if int(fields[1]) == pid:
            found.append(int(entry))
    return sorted(found)


def cmdline(pid: int) -> str:
    try:
        with open(f"/proc/{pid}/cmdline", "rb") as stream:
            return stream.read().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return ""


def memory_kb(pid: int) -> dict[str, int]:
    """VmHWM (peak resident set) and VmRSS of a process, in KiB."""
    values = {}
    try:
        with open(f"/proc/{pid}/status") as status:
            for line in status:
                if line.startswith(("VmHWM:", "VmRSS:")):
                    name, value = line.split(":", 1)
                    values[name] = int(value.split()[0])
    except OSError:
        pass
    return values


def cpu_seconds(pid: int) -> float:
    """User + system CPU time a process has used so far."""
    try:
        with open(f"/proc/{pid}/stat") as stat:
            fields = stat.read().rsplit(")", 1)[1].split()
        return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")
    except OSError:
        return 0.0


def context_switches(pid: int) -> tuple[int, int]:
    """Voluntary and involuntary context switches of a process so far, all its threads together."""
    voluntary = involuntary = 0
    try:
        tasks = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return 0, 0
    for task in tasks:
        try:
            with open(f"/proc/{pid}/task/{task}/status") as status:
                for line in status:
                    if line.startswith("voluntary_ctxt_switches:"):
                        voluntary += int(line.split()[1])
                    elif line.startswith("nonvoluntary_ctxt_switches:"):
                        involuntary += int(line.split()[1])
        except OSError:
            continue  # a thread that ended meanwhile
    return voluntary, involuntary


def system_busy() -> float:
    """CPU seconds all cores have spent busy since boot (user, nice, system, irq, softirq, steal)."""
    with open("/proc/stat") as stat:
        fields = [int(v) for v in stat.readline().split()[1:]]
    idle = fields[3] + (fields[4] if len(fields) > 4 else 0)
    return (sum(fields[:8]) - idle) / os.sysconf("SC_CLK_TCK")


def wait_for_quiet(max_wait: float, threshold: float = 0.35, window: float = 0.5) -> tuple[float, float]:
    """Wait until the machine is nearly idle (at most ``threshold`` cores busy over ``window`` seconds).

    On a machine shared with other work, measuring in a quiet moment keeps that work out of the
    results as far as possible. Returns (seconds waited, busy cores in the last window); gives up
    after ``max_wait`` seconds.
    """
    started = time.perf_counter()
    while True:
        before = system_busy()
        time.sleep(window)
        busy = (system_busy() - before) / window
        waited = time.perf_counter() - started
        if busy <= threshold or waited >= max_wait:
            return waited, busy


def rabbitmq_pid() -> int | None:
    """The broker's Erlang VM (beam.smp), to account for its CPU time."""
    for entry in os.listdir("/proc"):
        if entry.isdigit() and "beam.smp" in cmdline(int(entry)) and "rabbit" in cmdline(int(entry)):
            return int(entry)
    return None


class Daemon:
    """`exchanger run --workers W` in a child process, its JSON logs in a file."""

    def __init__(self, config_path: Path, url: str, workers: int, *, log_path: Path, declare: bool = True,
                 log_level: str = "info", prefix: tuple[str, ...] = (), options: tuple[str, ...] = ()):
        self.workers = workers
        self.port = free_port()
        self.log_path = log_path
        command = [
            *prefix, sys.executable, "-m", "exchanger", "--config", str(config_path), "--amqp-url", url,
            "--log-level", log_level, "run", "--workers", str(workers), "--json-logs",
            "--metrics-port", str(self.port),
        ]
        if not declare:
            command.append("--no-declare")
        command.extend(options)
        self._log = open(log_path, "ab")
        self.process = subprocess.Popen(command, cwd=ROOT, stdout=self._log, stderr=subprocess.STDOUT)

    def alive(self) -> bool:
        return self.process.poll() is None

    def worker_pids(self) -> list[int]:
        """The worker processes: the daemon itself with one worker, else its spawned children."""
        if self.workers == 1:
            return [self.process.pid]
        return [pid for pid in children(self.process.pid) if "spawn_main" in cmdline(pid)]

    def all_pids(self) -> list[int]:
        return [self.process.pid, *children(self.process.pid)]

    def get(self, path: str, timeout: float = 5) -> tuple[int, str]:
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{self.port}{path}", timeout=timeout) as response:
                return response.status, response.read().decode()
        except urllib.error.HTTPError as exc:
            return exc.code, exc.read().decode()

    def wait_ready(self, timeout: float = 120) -> float:
        """Wait until /readyz says every worker consumes; return the seconds it took."""
        started = time.perf_counter()
        while time.perf_counter() - started < timeout:
            if not self.alive():
                raise RuntimeError(f"the daemon exited:\n{self.tail()}")
            try:
                if self.get("/readyz", timeout=2)[0] == 200:
                    return time.perf_counter() - started
            except OSError:
                pass
            time.sleep(0.1)
        raise TimeoutError(f"the daemon was not ready within {timeout:.0f}s:\n{self.tail()}")

    def metrics(self) -> dict[str, dict]:
        """Per-stage, wait and end-to-end histograms from /metrics: {name: {labels: (sum, count, buckets)}}."""
        status, text = self.get("/metrics", timeout=10)
        out: dict[str, dict] = {}
        for family in text_string_to_metric_families(text):
            if family.name not in ("exchanger_stage_seconds", "exchanger_message_seconds", "exchanger_wait_seconds"):
                continue
            table = out.setdefault(family.name, {})
            for sample in family.samples:
                key = sample.labels.get("stage", "")
                sums = table.setdefault(key, [0.0, 0.0, {}])
                if sample.name.endswith("_sum"):
                    sums[0] += sample.value
                elif sample.name.endswith("_count"):
                    sums[1] += sample.value
                elif sample.name.endswith("_bucket"):
                    sums[2][sample.labels["le"]] = sums[2].get(sample.labels["le"], 0) + sample.value
        return out

    def events(self, *names: str) -> list[dict]:
        found = []
        with open(self.log_path, "rb") as stream:
            for line in stream:
                if not any(name.encode() in line for name in names):
                    continue
                try:
                    event = json.loads(line)
                except ValueError:
                    continue
                if event.get("event") in names:
                    found.append(event)
        return found

    def tail(self, lines: int = 30) -> str:
        try:
            return "".join(Path(self.log_path).read_text(errors="replace").splitlines(True)[-lines:])
        except OSError:
            return ""

    def stop(self, timeout: float = 90) -> int:
        if self.alive():
            self.process.send_signal(signal.SIGTERM)
            try:
                self.process.wait(timeout)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()
        self._log.close()
        return self.process.returncode


class Group:
    """Several runners as one (two daemon processes sharing the queues, or N bridges)."""

    def __init__(self, members: list):
        self.members = members

    def alive(self) -> bool:
        return all(member.alive() for member in self.members)

    def worker_pids(self) -> list[int]:
        return [pid for member in self.members for pid in member.worker_pids()]

    def all_pids(self) -> list[int]:
        return [pid for member in self.members for pid in member.all_pids()]

    def metrics(self) -> dict:
        merged: dict[str, dict] = {}
        for member in self.members:
            if not hasattr(member, "metrics"):
                continue
            for name, table in member.metrics().items():
                target = merged.setdefault(name, {})
                for key, (total, count, buckets) in table.items():
                    entry = target.setdefault(key, [0.0, 0.0, {}])
                    entry[0] += total
                    entry[1] += count
                    for le, value in buckets.items():
                        entry[2][le] = entry[2].get(le, 0) + value
        return merged

    def wait_ready(self, timeout: float = 120) -> float:
        return max(member.wait_ready(timeout) for member in self.members)

    def tail(self) -> str:
        return "\n".join(member.tail() for member in self.members)

    def stop(self) -> None:
        for member in self.members:
            if member.alive():
                member.process.send_signal(signal.SIGTERM)
        for member in self.members:
            member.stop()


class ModuleProcesses:
    """W processes of one bench module (a bridge or a peer), run like the daemon's W workers."""

    def __init__(self, module: str, arguments: list[str], processes: int):
        self.processes = [
            subprocess.Popen([sys.executable, "-m", module, *arguments], cwd=ROOT) for _ in range(processes)
        ]

    def alive(self) -> bool:
        """Every process still runs."""
        return all(process.poll() is None for process in self.processes)

    def worker_pids(self) -> list[int]:
        """The processes doing the work: all of them."""
        return [process.pid for process in self.processes]

    all_pids = worker_pids

    def tail(self) -> str:
        """No log of their own to show."""
        return ""

    def stop(self) -> None:
        """SIGTERM each, then wait (kill after 30 s)."""
        for process in self.processes:
            if process.poll() is None:
                process.send_signal(signal.SIGTERM)
        for process in self.processes:
            try:
                process.wait(30)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait()
