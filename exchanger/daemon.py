"""The daemon: one or more worker processes sharing the inbound queue, restarted if they die."""

from __future__ import annotations

import multiprocessing
import os
import shutil
import signal
import tempfile
import threading
import time
from pathlib import Path

import structlog

from exchanger import logging as exchange_logging
from exchanger.config import Config
from exchanger.config.model import file_stamps
from exchanger.health import ConfigState, ExchangeCollector, Readiness, serve
from exchanger.transport.backoff import Backoff

log = structlog.get_logger("exchanger.daemon")


# A worker that ran this long before dying is restarted after the shortest delay again.
STABLE_SECONDS = 60.0
# A restarted worker takes one delivery at a time for this many messages: if it dies again, only the
# message in hand is charged against the delivery limit, not a whole prefetch of innocent ones.
PROBATION_MESSAGES = 50


def _worker_main(config_path: str, amqp_url: str, name: str, log_level: str, json_logs: bool | None,
                 probation: int = 0) -> None:
    """Entry point of a worker process (spawned, so it starts from a clean interpreter)."""
    from exchanger.transport.url import connection_parameters
    from exchanger.worker import Worker

    exchange_logging.configure(log_level, json=json_logs)
    worker = Worker(Path(config_path), connection_parameters(amqp_url, client_name=f"exchanger {name}"), name=name,
                    probation=probation)
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())
    signal.signal(signal.SIGHUP, lambda *_: worker.reload())
    worker.run()


def _refresh_later(state: ConfigState) -> None:
    # Loading a configuration takes a while; a signal handler must not block the I/O loop for it.
    threading.Thread(target=state.refresh, name="exchanger-config-check", daemon=True).start()


def watch_config(state: ConfigState, reload, interval: float = 2.0) -> threading.Event:
    """Call ``reload`` when a file the running configuration was read from changes; set the event to stop."""
    stop = threading.Event()

    def loop():
        stamps = file_stamps(state.config.files)
        while not stop.wait(interval):
            if not state.config.files_changed_since(stamps):
                continue
            # Editors write in several steps: wait until the files have been still for one interval.
            settled = file_stamps(state.config.files)
            if stop.wait(interval) or file_stamps(state.config.files) != settled:
                continue
            log.info("config.changed", path=str(state.config.path))
            reload()
            state.refresh()
            stamps = file_stamps(state.config.files)

    threading.Thread(target=loop, name="exchanger-config-watch", daemon=True).start()
    return stop


def _start_console(console, state: ConfigState, amqp_url: str, fast_metrics, collector, readiness):
    """The operators' console in its own threads (never the broker's I/O thread), when enabled."""
    if console is None or not console.enabled:
        return None
    from exchanger.console.server import reload_this_daemon, start_console
    from exchanger.console.services import ConsoleServices

    services = ConsoleServices(state, amqp_url, fast_metrics=fast_metrics, exchange_collector=collector,
                               readiness=readiness, reload=reload_this_daemon)
    return start_console(console, services)


def run_in_process(config: Config, amqp_url: str, *, metrics_address: tuple[str, int], log_level: str = "info",
                   json_logs: bool | None = None, watch: bool = False, console=None) -> None:
    """Run one worker in this process (``--workers 1``), with the HTTP endpoint and the console in threads."""
    from prometheus_client import REGISTRY

    from exchanger import metrics
    from exchanger.transport.url import connection_parameters
    from exchanger.worker import Worker

    exchange_logging.configure(log_level, json=json_logs)
    state = ConfigState(config)
    collector = ExchangeCollector(state, amqp_url)
    REGISTRY.register(collector)
    readiness = Readiness(REGISTRY, state, workers=1)
    server = serve(*metrics_address, REGISTRY, readiness)
    fast = (metrics.MESSAGES, metrics.ROUTED, metrics.REJECTIONS, metrics.DELIVERIES, metrics.MESSAGE_SECONDS,
            metrics.BROKER_CONNECTED)
    console_server = _start_console(console, state, amqp_url, fast, ExchangeCollector(state, amqp_url), readiness)
    worker = Worker(config.path, connection_parameters(amqp_url, client_name="exchanger worker-1"), name="worker-1")
    signal.signal(signal.SIGTERM, lambda *_: worker.stop())
    signal.signal(signal.SIGINT, lambda *_: worker.stop())

    def on_hup(*_):
        worker.reload()
        _refresh_later(state)

    signal.signal(signal.SIGHUP, on_hup)
    watcher = watch_config(state, worker.reload) if watch else None
    try:
        worker.run()
    finally:
        if watcher is not None:
            watcher.set()
        if server is not None:
            server.shutdown()
        if console_server is not None:
            console_server.stop()


class Supervisor:
    """Starts N worker processes, forwards signals to them, restarts one that dies (with backoff), serves HTTP.

    Each worker has its own restart backoff, reset once it has run for STABLE_SECONDS; a restart is
    scheduled, never slept on, so one dying worker delays neither the others' restarts nor a stop.
    """

    def __init__(self, config: Config, amqp_url: str, workers: int, *, metrics_address: tuple[str, int],
                 log_level: str, json_logs: bool | None, watch: bool = False, console=None):
        self.watch = watch
        self.console = console
        self.config = config
        self.amqp_url = amqp_url
        self.count = workers
        self.metrics_address = metrics_address
        self.log_level = log_level
        self.json_logs = json_logs
        self.context = multiprocessing.get_context("spawn")
        self.processes: dict[str, multiprocessing.Process] = {}
        self.stopping = False
        self.backoffs: dict[str, Backoff] = {}
        self.started_at: dict[str, float] = {}
        self.restart_at: dict[str, float] = {}
        self.console_server = None

    def _start(self, name: str, *, probation: int = 0) -> None:
        process = self.context.Process(
            target=_worker_main,
            args=(str(self.config.path), self.amqp_url, name, self.log_level, self.json_logs, probation),
            name=name,
            daemon=False,
        )
        process.start()
        self.processes[name] = process
        self.started_at[name] = time.monotonic()
        log.info("worker.started", worker=name, probation=probation, pid=process.pid)

    def _schedule_restart(self, name: str, process: multiprocessing.Process, directory: str) -> None:
        """Note a dead worker and when to start its replacement."""
        from prometheus_client.multiprocess import mark_process_dead

        mark_process_dead(process.pid, directory)
        backoff = self.backoffs.setdefault(name, Backoff(initial=1.0, cap=30.0))
        if time.monotonic() - self.started_at[name] >= STABLE_SECONDS:
            backoff.reset()
        delay = backoff.next_delay()
        self.restart_at[name] = time.monotonic() + delay
        log.error("worker.died", worker=name, exitcode=process.exitcode, restart_in=round(delay, 1))

    def _supervise(self, directory: str) -> None:
        """Restart dead workers when their delay is up, until stopping and every worker has exited."""
        while True:
            time.sleep(0.5)
            if self.stopping:
                # A worker not yet restarted stays down: starting one now would only have to stop it again.
                self.restart_at.clear()
                if not any(p.is_alive() for p in self.processes.values()):
                    return
                continue
            now = time.monotonic()
            for name, process in list(self.processes.items()):
                if process.is_alive() or name in self.restart_at:
                    continue
                self._schedule_restart(name, process, directory)
            for name, when in list(self.restart_at.items()):
                if now >= when:
                    del self.restart_at[name]
                    self._start(name, probation=PROBATION_MESSAGES)

    def _signal_all(self, signum: int) -> None:
        for process in self.processes.values():
            if process.is_alive():
                os.kill(process.pid, signum)

    def _serve_metrics(self, directory: str, state: ConfigState):
        from prometheus_client import CollectorRegistry
        from prometheus_client.multiprocess import MultiProcessCollector

        registry = CollectorRegistry()
        MultiProcessCollector(registry, path=directory)
        registry.register(ExchangeCollector(state, self.amqp_url))
        readiness = Readiness(registry, state, workers=self.count)
        server = serve(*self.metrics_address, registry, readiness)
        # The console reads the workers' counters from the same files, and the broker through its own collector.
        self.console_server = _start_console(self.console, state, self.amqp_url, [MultiProcessCollector(None, path=directory)],
                                             ExchangeCollector(state, self.amqp_url), readiness)
        return server

    def run(self) -> int:
        """Supervise until SIGTERM or SIGINT; return the exit status."""
        # Workers write their metrics to files here; it must be set before they start.
        directory = tempfile.mkdtemp(prefix="exchanger-metrics-")
        os.environ["PROMETHEUS_MULTIPROC_DIR"] = directory
        state = ConfigState(self.config)
        server = self._serve_metrics(directory, state)

        def on_stop(signum, _frame):
            self.stopping = True
            self._signal_all(signal.SIGTERM)

        def on_hup(*_):
            self._signal_all(signal.SIGHUP)
            _refresh_later(state)

        signal.signal(signal.SIGTERM, on_stop)
        signal.signal(signal.SIGINT, on_stop)
        signal.signal(signal.SIGHUP, on_hup)
        watcher = watch_config(state, lambda: self._signal_all(signal.SIGHUP)) if self.watch else None
        try:
            for index in range(self.count):
                self._start(f"worker-{index + 1}")
            self._supervise(directory)
            for process in self.processes.values():
                process.join()
        finally:
            if watcher is not None:
                watcher.set()
            if server is not None:
                server.shutdown()
            if self.console_server is not None:
                self.console_server.stop()
            shutil.rmtree(directory, ignore_errors=True)
        return 0
