"""The benchmark run: every measurement in one go, on the same broker, queues and documents.

Profiles (bench/profiles.py) bound the run time on the project's 2-core machine: --quick (about 7 minutes), the default
(about 14 minutes) and --full (35 to 45 minutes: a 100,000-message backlog and longer runs); --headline about half.
"""

from __future__ import annotations

import secrets
import sys
import time
import traceback
from dataclasses import asdict, replace
from pathlib import Path

from bench import ceiling, deployment, hostile, inprocess, machine, naive, peer, profile, signatures, throughput
from bench.processes import Daemon, Group, wait_for_quiet
from bench.profiles import LIGHT_LOAD, SCALE, Profile
from bench.workload import KB, SIZES, Batch, Generator

HERE = Path(__file__).resolve().parent


def _other_cores(drain: dict) -> float:
    cpu = drain["cpu"]
    return (cpu.get("machine", 0) - cpu["workers"] - cpu["broker"] - cpu.get("bench", 0)) / drain["seconds"]


class Run:
    """One benchmark run: its deployments, its generators and everything measured."""

    def __init__(self, profile: Profile, workers: int, *, headline_only: bool = False):
        self.profile = profile
        self.headline_only = headline_only
        self.workers = workers
        self.tag = secrets.token_hex(3)
        self.started = time.perf_counter()
        self.results: dict = {"profile": profile.name, "workers": workers, "machine": machine.describe(),
                              "errors": [], "drains": {}, "inprocess": {}, "ceiling": {}, "naive": {},
                              "latency": {}, "scale": {},
                              "quiet": {"waited_seconds": 0.0, "checks": 0, "not_quiet": 0}}
        self.deployments: list = []

    def say(self, text: str) -> None:
        print(f"[{time.perf_counter() - self.started:6.0f}s] {text}", file=sys.stderr, flush=True)

    def quiet(self) -> None:
        """Before a measurement: wait (within the run's budget) for other work on the machine to pause."""
        record = self.results["quiet"]
        left = self.profile.quiet_budget - record["waited_seconds"]
        waited, busy = wait_for_quiet(max(0.5, min(15.0, left)))
        record["waited_seconds"] += waited
        record["checks"] += 1
        if busy > 0.35:
            record["not_quiet"] += 1

    def step(self, name: str, function, *args, **kwargs):
        """Run one measurement; a failure is recorded and the run goes on with the others."""
        try:
            return function(*args, **kwargs)
        except Exception as exc:  # noqa: BLE001 - the rest of the benchmark is still worth having
            self.say(f"{name} FAILED: {exc!r}")
            self.results["errors"].append(f"{name}: {exc!r}\n{traceback.format_exc(limit=3)}")
            return None

    # ---- building blocks -------------------------------------------------------------------------------------------

    def daemon(self, dep, workers: int, *, config: Path | None = None, declare: bool = True, name: str = "d"):
        log = dep.directory / f"daemon-{name}-{secrets.token_hex(2)}.log"
        return Daemon(config or dep.config_path, dep.url, workers, log_path=log, declare=declare)

    def drain(self, key: str, dep, batch: Batch, start, *, keep: bool = False):
        result, runner = throughput.drain(dep, batch, start, label=key, keep=keep, before=self.quiet)
        self.results["drains"][key] = asdict(result) | {"rate": result.rate}
        cpu = result.cpu
        cores = cpu.get("machine", 0) / result.seconds if result.seconds else 0
        other = (cpu.get("machine", 0) - cpu["workers"] - cpu["broker"] - cpu.get("bench", 0)) / result.seconds if result.seconds else 0
        self.say(f"{key}: {result.rate:,.0f} msg/s ({result.messages} in {result.seconds:.1f}s; "
                 f"workers {result.cpu['workers'] / result.seconds:.2f} cores, broker {result.cpu['broker'] / result.seconds:.2f}, "
                 f"machine {cores:.2f}, other work {other:.2f}; peak RSS {', '.join(f'{k / 1024:.0f}' for k in result.peak_rss_kb)} MB"
                 f"{'; REJECTED ' + str(result.rejected) if result.rejected else ''})")
        return result, runner

    def exchanger_drain(self, key: str, dep, batch: Batch, workers: int, *, keep: bool = False, **options):
        return self.drain(key, dep, batch, lambda: self.daemon(dep, workers, name=key, **options), keep=keep)

    def ceiling_drain(self, key: str, dep, batch: Batch, processes: int):
        senders = {dep.amqp_user(p): p for p in deployment.SENDERS}
        prefetch = dep.config.broker.prefetch
        result, _ = throughput.drain(dep, batch, lambda: ceiling.Bridges(dep.daemon_url, prefetch, senders, processes),
                                     label=key, before=self.quiet)
        self.results["ceiling"][key] = asdict(result) | {"rate": result.rate}
        self.say(f"{key}: {result.rate:,.0f} msg/s ({result.messages} in {result.seconds:.2f}s)")
        return result

    def in_process(self, key: str, dep, gen: Generator, size: int, count: int, workers: int, *, config: Path | None = None,
                   batch: Batch | None = None):
        batch = batch or gen.batch(size, count)
        warmup = gen.batch(size, max(1, min(20, count // 10)))
        self.quiet()
        result = inprocess.measure(config or dep.config_path, dep.amqp_user(batch.sender), batch.bodies, warmup.bodies,
                                   workers=workers, label=key)
        self.results["inprocess"][key] = asdict(result) | {"rate": result.rate, "ms_per_message": result.ms_per_message}
        other = (result.machine_cpu_seconds - result.cpu_seconds) / result.seconds if result.seconds else 0
        self.say(f"{key}: {result.rate:,.0f} msg/s, {result.ms_per_message:.2f} ms per message and core "
                 f"(config loaded in {result.load_seconds:.1f}s; other work on the machine meanwhile: {other:.2f} cores)")
        return result

    @staticmethod
    def _median(section: dict, key: str) -> dict:
        """Replace the runs ``KEY #n`` of a section by their median under KEY, all listed; the runs by their number."""
        runs = {k.rsplit("#", 1)[1]: section.pop(k) for k in list(section) if k.startswith(f"{key} #")}
        if runs:
            # Other work sharing the machine makes single drains vary by tens of percent: the median is reported.
            ranked = sorted(runs.values(), key=lambda d: d["rate"])
            section[key] = dict(ranked[(len(ranked) - 1) // 2], samples=[
                {"rate": d["rate"], "other_cores": _other_cores(d)} for d in runs.values()])
        return runs

    @staticmethod
    def repeated(batch: Batch, count: int) -> Batch:
        """The ceiling copies bytes without reading them: reuse documents rather than sign more."""
        bodies = (batch.bodies * (count // len(batch) + 1))[:count]
        ids = (batch.message_ids * (count // len(batch) + 1))[:count]
        return replace(batch, bodies=bodies, message_ids=ids)

    # ---- the run ---------------------------------------------------------------------------------------------------

    def headline(self, rsa, gen: Generator) -> None:
        p, w = self.profile, self.workers
        small = SIZES["2KB"]
        self.step("in-process 1 worker", self.in_process, "2KB-rsa-w1", rsa, gen, small, p.inprocess, 1)
        if w > 1:
            self.step(f"in-process {w} workers", self.in_process, f"2KB-rsa-w{w}", rsa, gen, small, p.inprocess, w)
        batch = gen.batch(small, p.messages)
        self.results["headline_batch"] = {"document_bytes": batch.document_bytes, "signed_bytes": batch.signed_bytes,
                                          "type": batch.message_type, "sender": batch.sender}
        self.step("ceiling", self.ceiling_drain, f"2KB-w{w}", rsa, self.repeated(batch, p.ceiling), w)
        key, peer_key = f"2KB-rsa-w{w}", f"2KB-rsa-p{w}"
        daemon = None
        for index in range(p.repeats):
            last = index == p.repeats - 1
            # Each exchange drain follows a drain of the honest peer of the same size: a pair shares the machine's
            # minutes, so their ratio holds while single drains drift by tens of percent from one minute to the next.
            self.step(f"honest peer {w} processes", self.peer, f"{peer_key} #{index + 1}", rsa, gen.batch(small, p.messages), w)
            sample = batch if index == 0 else gen.batch(small, p.messages)
            outcome = self.step("exchanger drain", self.exchanger_drain, f"{key} #{index + 1}", rsa, sample, w, keep=last)
            if outcome is not None and last:
                daemon = outcome[1]
        drains = self._median(self.results["drains"], key)
        peers = self._median(self.results.setdefault("peer", {}), peer_key)
        if drains and peers:
            pairs = [(drains[k]["rate"], peers[k]["rate"]) for k in drains if k in peers]
            ratios = sorted(ex / pr for ex, pr in pairs)
            self.results["peer"][peer_key]["pairs"] = [{"exchange": ex, "peer": pr} for ex, pr in pairs]
            self.results["peer"][peer_key]["ratio"] = ratios[(len(ratios) - 1) // 2]
        if daemon is not None:
            try:
                drained = self.results["drains"][key]["rate"]
                rate = drained / 2
                for index in range(p.latency_runs):
                    latency_batch = gen.batch(small, max(50, int(rate * p.latency_seconds)))
                    self.step("latency", self.latency, f"{key} #{index + 1}", rsa, latency_batch, rate, daemon)
                # Half load is where the target is set; a lighter load shows how the tail depends on spare CPU.
                light = drained * LIGHT_LOAD
                self.step("latency", self.latency, f"{key} light", rsa, gen.batch(small, max(50, int(light * p.latency_seconds))),
                          light, daemon)
            finally:
                daemon.stop()
            runs = {k: self.results["latency"].pop(k) for k in list(self.results["latency"]) if k.startswith(f"{key} #")}
            if runs:
                # The median run by p99 (other work sharing the machine makes single runs vary widely); all are listed.
                ranked = sorted(runs.values(), key=lambda r: r["copies_ms"]["99"])
                chosen = ranked[(len(ranked) - 1) // 2]
                self.results["latency"][key] = dict(chosen, runs=[
                    {"p50": r["copies_ms"]["50"], "p95": r["copies_ms"]["95"], "p99": r["copies_ms"]["99"],
                     "other_cores": r["other_cores"]} for r in runs.values()])
        self.step("naive 1 process", self.naive, "2KB-rsa-p1", rsa, gen, p.naive[0], 1)
        if w > 1:
            self.step(f"naive {w} processes", self.naive, f"2KB-rsa-p{w}", rsa, gen, p.naive[1], w)

    def latency(self, key: str, dep, batch: Batch, rate: float, daemon) -> None:
        self.quiet()
        result = throughput.latency(dep, batch, rate, label=key, pids=daemon.all_pids(), metrics=daemon.metrics)
        self.results["latency"][key] = {
            "target_rate": result.target_rate, "achieved_rate": result.achieved_rate, "messages": result.messages,
            "lost": result.lost, "warmup": result.warmup,
            "copies_ms": {str(q): 1000 * result.percentile(q) for q in (50, 95, 99, 99.9)},
            "receipts_ms": {str(q): 1000 * result.percentile(q, "receipts") for q in (50, 95, 99)},
            "max_ms": 1000 * max(result.copies, default=float("nan")),
            "cpu": result.cpu, "seconds": result.seconds,
            "other_cores": (result.cpu["machine"] - result.cpu["exchange"] - result.cpu["broker"]) / (result.seconds or 1),
            "samples_ms": [round(1000 * v, 2) for v in result.copies],
            "waits": result.waits,
            "stalls": result.stalls,
        }
        pct = self.results["latency"][key]["copies_ms"]
        cpu, seconds = result.cpu, result.seconds or 1
        other = (cpu["machine"] - cpu["exchange"] - cpu["broker"]) / seconds
        wait = result.waits.get("exchanger_wait_seconds", {})
        self.say(f"latency at {result.achieved_rate:.0f} msg/s: p50 {pct['50']:.1f} ms, p95 {pct['95']:.1f}, "
                 f"p99 {pct['99']:.1f} ({result.lost} not received; exchange {cpu['exchange'] / seconds:.2f} cores, "
                 f"broker {cpu['broker'] / seconds:.2f}, everything else incl. the load generator {other:.2f}; "
                 f"waited in a worker {wait.get('mean_ms', 0):.1f} ms on average, {wait.get('over_50ms', 0):.0f} over 50 ms; "
                 f"the machine's pauses: {result.stalls.get('over_20ms', 0)} over 20 ms, longest "
                 f"{result.stalls.get('longest_ms', 0):.0f} ms, seen by a {result.stalls.get('policy')} sleeper)")

    def naive(self, key: str, dep, gen: Generator, count: int, processes: int) -> None:
        batch = gen.batch(SIZES["2KB"], count)
        self.quiet()
        result = naive.measure(dep, batch, processes=processes, label=key)
        self.results["naive"][key] = asdict(result) | {"rate": result.rate}
        self.say(f"naive peer, {processes} process(es): {result.rate:,.1f} msg/s ({result.messages} in {result.seconds:.1f}s)")

    def peer(self, key: str, dep, batch: Batch, processes: int) -> None:
        senders = {dep.amqp_user(p): p for p in deployment.SENDERS}
        result, _ = throughput.drain(
            dep, batch, lambda: peer.Peers(dep.admin_url, dep.config.broker.prefetch, senders, processes, dep.keys_dir,
                                           dep.algorithm),
            label=key, before=self.quiet)
        self.results.setdefault("peer", {})[key] = asdict(result) | {"rate": result.rate}
        self.say(f"honest peer, {processes} process(es): {result.rate:,.0f} msg/s ({result.messages} in {result.seconds:.1f}s; "
                 f"CPU {1000 * result.cpu['workers'] / result.messages:.2f} ms per message)")

    def prefetch_sweep(self, rsa, gen: Generator) -> None:
        """Throughput and the tail at half load per prefetch: every latency run at the same rate, half the headline's.

        Settings are measured in rounds, in the opposite order each round, so that a slow spell of the machine
        does not fall on one setting; each setting reports its median drain and its median p99, every run listed.
        """
        p = self.profile
        headline = self.results["drains"].get(f"2KB-rsa-w{self.workers}", {}).get("rate")
        if not p.prefetches or not headline:
            return
        sweep = self.results.setdefault("prefetch", {"rate": headline / 2, "points": {}})
        runs: dict[int, list[dict]] = {prefetch: [] for prefetch in p.prefetches}
        for round_ in range(p.sweep_rounds):
            for prefetch in (p.prefetches if round_ % 2 == 0 else reversed(p.prefetches)):
                point = self.step(f"prefetch {prefetch}", self._prefetch_point, rsa, gen, prefetch, headline / 2)
                if point is not None:
                    runs[prefetch].append(point)
        for prefetch, points in runs.items():
            if points:
                by_rate = sorted(points, key=lambda q: q["rate"])[(len(points) - 1) // 2]
                tails = [q for q in points if q["latency"]]
                by_p99 = sorted(tails, key=lambda q: q["latency"]["copies_ms"]["99"])[len(tails) // 2] if tails else None
                sweep["points"][str(prefetch)] = dict(by_rate, latency=by_p99 and by_p99["latency"], runs=[
                    {"rate": q["rate"], "p99": q["latency"] and q["latency"]["copies_ms"]["99"]} for q in points])

    def _prefetch_point(self, rsa, gen: Generator, prefetch: int, rate: float) -> dict | None:
        """One drain with this prefetch, then a latency run at ``rate`` on the same daemon."""
        p, w = self.profile, self.workers
        config = deployment.with_prefetch(rsa, prefetch)
        key = f"prefetch {prefetch}"
        _, daemon = self.drain(key, rsa, gen.batch(SIZES["2KB"], p.sweep_messages),
                               lambda: self.daemon(rsa, w, config=config, declare=False, name=f"p{prefetch}"), keep=True)
        drained = self.results["drains"].pop(key)
        try:
            self.step(f"latency prefetch {prefetch}", self.latency, key, rsa,
                      gen.batch(SIZES["2KB"], max(50, int(rate * p.sweep_latency_seconds))), rate, daemon)
            latency = self.results["latency"].pop(key, None)
        finally:
            daemon.stop()
        return {
            "rate": drained["rate"], "cpu_ms": 1000 * drained["cpu"]["workers"] / drained["messages"],
            "latency": {k: latency[k] for k in ("copies_ms", "achieved_rate", "lost", "waits", "other_cores")}
            if latency else None,
        }

    def profile_worker(self, rsa, gen: Generator) -> None:
        """Where one worker's CPU goes in the drain, by category, and a flame graph (bench/profile.py)."""
        p = self.profile
        out = self.out_dir / "profile"
        out.mkdir(parents=True, exist_ok=True)
        result = profile.side_by_side(rsa, gen, p.profile_messages, out, "worker", before=self.quiet)
        if p.callgrind_messages:
            result["callgrind"] = profile.callgrind(rsa, gen, p.callgrind_messages, out, "worker")
        self.results["worker_profile"] = result
        self.say("profile of one worker in the drain, and of one process of the honest peer (bench/profile/worker*.svg):\n" + profile.markdown(result))

    def workers_sweep(self, rsa, gen: Generator) -> None:
        p = self.profile
        batch = gen.batch(SIZES["2KB"], p.workers_sweep)
        if self.workers != 1:
            self.step("exchanger 1 worker", self.exchanger_drain, "2KB-rsa-w1", rsa, batch, 1)
            batch = gen.batch(SIZES["2KB"], p.workers_sweep)
        self.step("exchanger 2 daemons", self.drain, "2KB-rsa-2daemons", rsa, batch,
                  lambda: Group([self.daemon(rsa, 1, name="a"), self.daemon(rsa, 1, name="b")]))
        if self.workers != 1:
            self.step("ceiling 1 bridge", self.ceiling_drain, "2KB-w1", rsa, self.repeated(batch, p.ceiling // 2), 1)

    def sizes_sweep(self, rsa, gen: Generator) -> None:
        w = self.workers
        for label, count in self.profile.sizes.items():
            size = SIZES[label]
            inproc_count = max(3, min(count, self.profile.inprocess // (size // (2 * KB))))
            self.step(f"in-process {label}", self.in_process, f"{label}-rsa-w1", rsa, gen, size, inproc_count, 1)
            batch = gen.batch(size, count)
            self.step(f"ceiling {label}", self.ceiling_drain, f"{label}-w{w}", rsa,
                      self.repeated(batch, max(count, min(self.profile.ceiling, count * 4))), w)
            self.step(f"exchanger {label}", self.exchanger_drain, f"{label}-rsa-w{w}", rsa, batch, w)

    def scale_sweep(self, rsa, gen: Generator) -> None:
        p = self.profile
        self.say(f"making configurations with {SCALE:,} routes and with {SCALE:,} participants")
        started = time.perf_counter()
        configs = {
            "10 routes, 10 participants": rsa.config_path,
            f"{SCALE:,} routes": deployment.with_many(rsa, routes=SCALE, name="routes"),
            f"{SCALE:,} participants": deployment.with_many(rsa, participants=SCALE, name="participants"),
        }
        self.results["scale"]["generation_seconds"] = time.perf_counter() - started
        self.step("in-process routes and participants", self.compare, configs, rsa, gen,
                  p.scale_messages * p.scale_repeats)
        if p.scale_e2e:
            for name, path in list(configs.items())[1:]:
                batch = gen.batch(SIZES["2KB"], p.scale_e2e)
                self.step(f"exchanger {name}", self.exchanger_drain, f"2KB-rsa-w{self.workers} {name}", rsa, batch,
                          self.workers, config=path, declare=False)

    def compare(self, configs: dict, dep, gen: Generator, count: int) -> None:
        batch = gen.batch(SIZES["2KB"], count)
        warmup = gen.batch(SIZES["2KB"], inprocess.WARMUP)
        self.quiet()
        result = inprocess.compare(configs, dep.amqp_user(batch.sender), batch.bodies, warmup.bodies, label="scale")
        self.results["scale"]["paired"] = asdict(result)
        base = next(iter(configs))
        for name in list(configs)[1:]:
            self.say(f"{name}: {result.cpu_ms[base]:.2f} → {result.cpu_ms[name]:.2f} ms CPU per message "
                     f"({result.cpu_ms[name] / result.cpu_ms[base] - 1:+.1%}; median of {result.blocks} paired blocks "
                     f"{result.median_ratio(name) - 1:+.1%}; config loads in {result.load_seconds[name]:.1f}s)")

    def algorithm_sweep(self) -> None:
        p, w = self.profile, self.workers
        ec = deployment.create(self.tag, "ec")
        self.deployments.append(ec)
        gen = Generator(ec.keys_dir, self.tag + "e")
        self.step("in-process ECDSA", self.in_process, "2KB-ec-w1", ec, gen, SIZES["2KB"], p.inprocess, 1)
        batch = gen.batch(SIZES["2KB"], p.ec_messages)
        self.step("exchanger ECDSA", self.exchanger_drain, f"2KB-ec-w{w}", ec, batch, w)
        self.step("ceiling ECDSA", self.ceiling_drain, f"2KB-ec-w{w}", ec, self.repeated(batch, p.ceiling), w)
        # SM2/SM3 as GACC writes it: platform and senders sign with sm2-sm3. The ceiling reads no signature,
        # so the ECDSA one stands for it.
        sm2 = deployment.create(self.tag, "sm2")
        self.deployments.append(sm2)
        gen = Generator(sm2.keys_dir, self.tag + "s")
        self.step("in-process SM2", self.in_process, "2KB-sm2-w1", sm2, gen, SIZES["2KB"], p.inprocess, 1)
        self.step("exchanger SM2", self.exchanger_drain, f"2KB-sm2-w{w}", sm2, gen.batch(SIZES["2KB"], p.ec_messages), w)
        self.step("signature rates", self.signature_rates)

    def signature_rates(self) -> None:
        """Sign and verify per CPU-second of the exchange's own code path, per algorithm (bench/signatures.py)."""
        self.quiet()
        rates = signatures.measure(seconds=1.0 if self.profile.name == "quick" else 2.0)
        self.results["signatures"] = rates
        for entry in rates.values():
            self.say(f"{entry['label']}: sign {entry['sign_per_cpu_second']:,}/s, "
                     f"verify {entry['verify_per_cpu_second']:,}/s per CPU-second")

    def backlog(self, rsa, gen: Generator) -> None:
        count = self.profile.backlog
        self.say(f"signing a backlog of {count:,} declarations")
        batch = gen.batch(SIZES["2KB"], count)
        self.step("exchanger backlog", self.exchanger_drain, f"2KB-rsa-w{self.workers} backlog", rsa, batch, self.workers)

    def hostile(self) -> None:
        self.results["hostile"] = hostile.run(self.say, quick=self.profile.name == "quick")
        self.results["hostile"]["before"] = hostile.BEFORE

    def run(self, out_dir: Path) -> dict:
        self.out_dir = out_dir
        self.say(f"profile {self.profile.name}, {self.workers} worker(s); machine: {self.results['machine']['cores']} cores "
                 f"{self.results['machine']['cpu']}, load average {self.results['machine']['load_average_at_start']}")
        try:
            rsa = deployment.create(self.tag, "rsa")
            self.deployments.append(rsa)
            gen = Generator(rsa.keys_dir, self.tag)
            self.say(f"deployment ready: vhost {rsa.vhost}, keys and configuration in {rsa.directory}")
            self.headline(rsa, gen)
            self.step("prefetch sweep", self.prefetch_sweep, rsa, gen)
            self.step("profile", self.profile_worker, rsa, gen)
            if not self.headline_only:
                self.workers_sweep(rsa, gen)
                self.sizes_sweep(rsa, gen)
                self.scale_sweep(rsa, gen)
                self.step("ECDSA and SM2 deployments", self.algorithm_sweep)
                self.backlog(rsa, gen)
                self.step("hostile-input cost", self.hostile)
        finally:
            for dep in self.deployments:
                dep.close()
            self.results["seconds"] = time.perf_counter() - self.started
            self.results["machine"]["load_average_at_end"] = [round(v, 2) for v in machine.load_average()]
        return self.results
