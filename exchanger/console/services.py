"""What the console reads and acts on: the running configuration, the daemon's metrics, the message log."""

from __future__ import annotations

import threading
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path

import structlog

from exchanger.config import Config
from exchanger.journal.store import Store, open_store

log = structlog.get_logger("exchanger.console")


@dataclass
class ConsoleServices:
    """The daemon's own state, handed to the console when the daemon starts it (or built by a test).

    ``config_state`` is the daemon's ConfigState (``.config``, ``.problems``); ``fast_metrics`` are collectors
    cheap enough to sample every few seconds (the workers' counters); ``exchange_collector`` and ``readiness``
    are the daemon's own (they reach the broker, so the console reads them at most every few seconds).
    """

    config_state: object
    amqp_url: str
    fast_metrics: Sequence = ()
    exchange_collector: object | None = None
    readiness: object | None = None
    reload: Callable[[], None] | None = None
    reports_dir: Path | None = None
    _store: Store | None = field(default=None, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, repr=False)

    @property
    def config(self) -> Config:
        """The configuration the daemon runs now (reloads included)."""
        return self.config_state.config

    @property
    def config_path(self) -> Path:
        """routes.yaml, as the daemon was started with it."""
        return self.config.path

    def store(self) -> Store:
        """The message log, opened once (each thread gets its own connection from it)."""
        with self._lock:
            if self._store is None:
                self._store = open_store(self.config.journal.url)
            return self._store

    def reports_folder(self) -> Path:
        """Where rendered reports are kept."""
        return self.reports_dir or self.config_path.parent / "var" / "reports"

    def close(self) -> None:
        """Close the message log."""
        with self._lock:
            if self._store is not None:
                self._store.close()
                self._store = None
