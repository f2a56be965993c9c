"""The daemon: one or more worker processes sharing the inbound queue, restarted if they die."""

from __future__ import annotations

import multiprocessing
import os
import signal
import time
from pathlib import Path

import structlog

from exchanger import logging as exchange_logging
from exchanger.transport.backoff import Backoff

log = structlog.get_logger("exchanger.daemon")


def _worker_main(config_path: str, amqp_url: str, name: str, log_level: str, json_logs: bool | None) -> None:
    """Entry point of a worker process (spawned, so it imports nothing from its parent's state)."""
    from exchanger.transport.url import connection_parameters
    from exchanger.worker import Worker

    exchange_logging.configure(log_level, json=json_logs)
    worker = Worker(Path(config_path), connection_parameters(amqp_url, client_name=f"exchanger {name}"), name=name)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    signal.signal(signal.SIGHUP, lambda *_: worker.reload())
    worker.run()


def run_in_process(config_path: Path, amqp_url: str, *, log_level: str = "info", json_logs: bool | None = None) -> None:
    """Run one worker in this process (``--workers 1``): the simplest thing to debug."""
    _worker_main(str(config_path), amqp_url, "worker-1", log_level, json_logs)


class Supervisor:
    """Starts N worker processes, forwards signals to them, and restarts one that dies (with backoff)."""

    def __init__(self, config_path: Path, amqp_url: str, workers: int, *, log_level: str, json_logs: bool | None):
        self.args = (str(config_path), amqp_url)
        self.count = workers
        self.log_level = log_level
        self.json_logs = json_logs
        self.context = multiprocessing.get_context("spawn")
        self.processes: dict[str, multiprocessing.Process] = {}
        self.stopping = False
        self.backoff = Backoff(initial=1.0, cap=30.0)

    def _start(self, name: str) -> None:
        process = self.context.Process(
            target=_worker_main, args=(*self.args, name, self.log_level, self.json_logs), name=name, daemon=False
        )
        process.start()
        self.processes[name] = process
        log.info("worker.started", worker=name, pid=process.pid)

    def _signal_all(self, signum: int) -> None:
        for process in self.processes.values():
            if process.is_alive():
                os.kill(process.pid, signum)

    def run(self) -> int:
        """Supervise until SIGTERM or SIGINT; return the exit status."""

        def on_stop(signum, _frame):
            self.stopping = True
            self._signal_all(signal.SIGTERM)

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, lambda *_: self._signal_all(signal.SIGHUP))
        for index in range(self.count):
            self._start(f"worker-{index + 1}")
        while True:
            time.sleep(0.5)
            for name, process in list(self.processes.items()):
                if process.is_alive():
                    continue
                if self.stopping:
                    continue
                delay = self.backoff.next_delay()
                log.error("worker.died", worker=name, exitcode=process.exitcode, restart_in=round(delay, 1))
                time.sleep(delay)
                self._start(name)
            if self.stopping and not any(p.is_alive() for p in self.processes.values()):
                break
        for process in self.processes.values():
            process.join()
        return 0
