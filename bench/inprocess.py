"""The compute limit: the exchange's stages without the broker.

Each worker process loads the configuration, builds the pipeline as the daemon's worker does
(`build_pipeline(config, receipts=<message log>)`), and runs `pipeline.process(Inbound(...))` over its
share of the documents, followed by the message log calls the worker makes (processed, settled),
logging at the daemon's default level into /dev/null. The clock stops when the log has written
everything. Time per stage comes from the same `exchanger_stage_seconds` histogram the daemon serves;
"receipt + publications" is what process() spends outside the stages (signing the receipt, building
the publications, counting, the accepted log event).

`compare` measures what one configuration costs against another: one process per configuration,
all run the same documents in small blocks, taking turns, so that whatever else slows the machine
down meanwhile slows every configuration alike.
"""

from __future__ import annotations

import multiprocessing
import os
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

import yaml

WARMUP = 20


@dataclass
class InProcess:
    label: str
    workers: int
    messages: int
    seconds: float
    load_seconds: float
    # mean milliseconds per message: each stage, receipt + publications, message log (compute thread)
    stages_ms: dict[str, float] = field(default_factory=dict)
    peak_rss_kb: list[int] = field(default_factory=list)
    cpu_seconds: float = 0.0  # used by the worker processes while timed
    machine_cpu_seconds: float = 0.0  # used by every process on the machine meanwhile

    @property
    def rate(self) -> float:
        return self.messages / self.seconds if self.seconds else 0.0

    @property
    def ms_per_message(self) -> float:
        """Wall time per message and worker (one core's cost)."""
        return 1000 * self.seconds * self.workers / self.messages if self.messages else 0.0


def with_journal(config_path: Path, journal: Path) -> Path:
    """A copy of the configuration whose message log is a fresh SQLite file (so no message is a duplicate)."""
    data = yaml.safe_load(Path(config_path).read_text())
    data.setdefault("journal", {})["url"] = f"sqlite:///{journal}"
    path = journal.with_suffix(".yaml")
    path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    return path


def _load(config_path: str):
    """In a measuring process: (pipeline, message log, seconds to load), built as the daemon's worker builds them."""
    from exchanger import logging as exchange_logging
    from exchanger.config import load_config
    from exchanger.journal.recorder import open_recorder
    from exchanger.pipeline import build_pipeline

    exchange_logging.configure("info", json=True, stream=open(os.devnull, "w"))
    began = time.perf_counter()
    config = load_config(config_path)
    recorder = open_recorder(config)
    pipeline = build_pipeline(config, receipts=recorder)
    return pipeline, recorder, time.perf_counter() - began


def _worker(config_path: str, user_id: str, bodies: list[bytes], warmup: list[bytes], barrier, results) -> None:
    from prometheus_client import REGISTRY

    from exchanger.envelope import Inbound

    pipeline, recorder, load = _load(config_path)

    def run(documents):
        process_time = log_time = 0.0
        for body in documents:
            inbound = Inbound(body=body, user_id=user_id)
            t0 = time.perf_counter()
            disposition = pipeline.process(inbound)
            t1 = time.perf_counter()
            if disposition.outcome != "accepted":
                raise RuntimeError(f"not accepted: {disposition.reasons}")
            entry = recorder.processed(inbound, disposition, pipeline)
            recorder.settled(entry)
            log_time += time.perf_counter() - t1
            process_time += t1 - t0
        return process_time, log_time

    def stage_sums():
        return {stage.name: REGISTRY.get_sample_value("exchanger_stage_seconds_sum", {"stage": stage.name}) or 0.0
                for stage, _ in pipeline.stages}

    run(warmup)
    recorder.flush(60)
    before = stage_sums()
    barrier.wait()
    started, cpu_started = time.perf_counter(), time.process_time()
    process_time, log_time = run(bodies)
    recorder.flush(120)
    elapsed, cpu = time.perf_counter() - started, time.process_time() - cpu_started
    after = stage_sums()
    stages = {name: after[name] - before[name] for name in after}
    stages["receipt + publications"] = process_time - sum(stages.values())
    stages["message log"] = log_time
    recorder.close()
    with open("/proc/self/status") as status:
        hwm = next((int(line.split()[1]) for line in status if line.startswith("VmHWM:")), 0)
    results.put((len(bodies), elapsed, load, {k: 1000 * v / len(bodies) for k, v in stages.items()}, hwm, cpu))


def measure(config_path: Path, user_id: str, bodies: list[bytes], warmup: list[bytes], *, workers: int, label: str) -> InProcess:
    """Run the pipeline over ``bodies`` split across ``workers`` processes, started together."""
    from bench.processes import system_busy

    context = multiprocessing.get_context("spawn")
    barrier = context.Barrier(workers + 1)
    results = context.Queue()
    with tempfile.TemporaryDirectory(prefix="exchanger-bench-log-") as directory:
        processes = []
        # One message log for all workers, as the daemon's workers share theirs.
        journal = with_journal(config_path, Path(directory) / "journal.db")
        for index in range(workers):
            share = bodies[index::workers]
            own_warmup = warmup[index::workers]
            process = context.Process(target=_worker, args=(str(journal), user_id, share, own_warmup, barrier, results))
            process.start()
            processes.append(process)
        barrier.wait()
        machine_started = system_busy()
        outcomes = [results.get(timeout=1800) for _ in processes]
        machine = system_busy() - machine_started
        for process in processes:
            process.join(60)
    messages = sum(o[0] for o in outcomes)
    seconds = max(o[1] for o in outcomes)
    stages = {name: sum(o[3][name] for o in outcomes) / workers for name in outcomes[0][3]}
    return InProcess(label, workers, messages, seconds, max(o[2] for o in outcomes), stages, [o[4] for o in outcomes],
                     cpu_seconds=sum(o[5] for o in outcomes), machine_cpu_seconds=machine)


@dataclass
class Comparison:
    """CPU per message of each configuration, measured in turns over the same documents."""

    label: str
    messages: int  # per configuration
    blocks: int
    cpu_ms: dict[str, float] = field(default_factory=dict)  # CPU per message over all blocks
    wall_ms: dict[str, float] = field(default_factory=dict)
    ratios: dict[str, list[float]] = field(default_factory=dict)  # each block's CPU against the first configuration's
    load_seconds: dict[str, float] = field(default_factory=dict)

    def median_ratio(self, name: str) -> float:
        values = sorted(self.ratios.get(name) or [float("nan")])
        return values[len(values) // 2]


def _turns(config_path: str, user_id: str, bodies: list[bytes], warmup: list[bytes], block: int, connection) -> None:
    from exchanger.envelope import Inbound

    pipeline, recorder, load = _load(config_path)

    def run(documents):
        for body in documents:
            inbound = Inbound(body=body, user_id=user_id)
            disposition = pipeline.process(inbound)
            if disposition.outcome != "accepted":
                raise RuntimeError(f"not accepted: {disposition.reasons}")
            recorder.settled(recorder.processed(inbound, disposition, pipeline))
        recorder.flush(120)

    run(warmup)
    connection.send(load)
    for start in range(0, len(bodies), block):
        connection.recv()  # this configuration's turn
        wall, cpu = time.perf_counter(), time.process_time()
        run(bodies[start:start + block])
        connection.send((time.process_time() - cpu, time.perf_counter() - wall))
    recorder.close()


def compare(configs: dict[str, Path], user_id: str, bodies: list[bytes], warmup: list[bytes], *, label: str,
            block: int = 50) -> Comparison:
    """Run ``bodies`` through each configuration (one process each), a block at a time in turns; the first is the base."""
    context = multiprocessing.get_context("spawn")
    names = list(configs)
    with tempfile.TemporaryDirectory(prefix="exchanger-bench-log-") as directory:
        members = {}
        for index, (name, path) in enumerate(configs.items()):
            ours, theirs = context.Pipe()
            journal = with_journal(path, Path(directory) / f"journal-{index}.db")
            process = context.Process(target=_turns, args=(str(journal), user_id, bodies, warmup, block, theirs))
            process.start()
            members[name] = (process, ours)
        result = Comparison(label, len(bodies), 0, ratios={name: [] for name in names[1:]})
        for name, (_, connection) in members.items():
            if not connection.poll(600):
                raise TimeoutError(f"{label}: {name} did not load its configuration")
            result.load_seconds[name] = connection.recv()
        cpu = {name: 0.0 for name in names}
        wall = {name: 0.0 for name in names}
        for turn in range(0, len(bodies), block):
            spent = {}
            # Rotate who goes first, so no configuration always follows the same one.
            order = names[result.blocks % len(names):] + names[:result.blocks % len(names)]
            for name in order:
                connection = members[name][1]
                connection.send(turn)
                if not connection.poll(600):
                    raise TimeoutError(f"{label}: {name} did not finish a block")
                spent[name] = connection.recv()
                cpu[name] += spent[name][0]
                wall[name] += spent[name][1]
            for name in names[1:]:
                result.ratios[name].append(spent[name][0] / spent[names[0]][0] if spent[names[0]][0] else float("nan"))
            result.blocks += 1
        for process, _ in members.values():
            process.join(60)
    result.cpu_ms = {name: 1000 * value / len(bodies) for name, value in cpu.items()}
    result.wall_ms = {name: 1000 * value / len(bodies) for name, value in wall.items()}
    return result
