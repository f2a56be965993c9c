"""The message log in an embedded SQLite file: nothing to install, several worker processes on one file."""

from __future__ import annotations

import sqlite3
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import unquote, urlsplit

from exchanger.journal.store import Store, StoreError

BUSY_TIMEOUT_SECONDS = 30


def sqlite_path(url: str) -> Path:
    """The file a ``sqlite:///relative`` or ``sqlite:////absolute`` URL names."""
    parts = urlsplit(url)
    if parts.scheme.lower() != "sqlite" or parts.netloc or not parts.path.startswith("/") or len(parts.path) < 2:
        raise StoreError(f"{url}: expected sqlite:///relative/path or sqlite:////absolute/path")
    return Path(unquote(parts.path[1:]))


class SqliteStore(Store):
    """SQLite in WAL mode: readers never wait for the writer; writers take turns with BEGIN IMMEDIATE."""

    def __init__(self, url: str):
        self.path = sqlite_path(url)
        try:
            self.path.parent.mkdir(parents=True, exist_ok=True)
        except OSError as exc:
            raise StoreError(f"cannot create the directory of the message log {self.path}: {exc.strerror}") from exc
        super().__init__(url)

    def _connect(self):
        connection = sqlite3.connect(
            self.path, timeout=BUSY_TIMEOUT_SECONDS, isolation_level=None, check_same_thread=False
        )
        connection.execute("PRAGMA journal_mode=WAL")
        # FULL: a committed record survives a power cut too; batching keeps the fsyncs few.
        connection.execute("PRAGMA synchronous=FULL")
        connection.execute(f"PRAGMA busy_timeout={BUSY_TIMEOUT_SECONDS * 1000}")
        return connection

    @contextmanager
    def _transaction(self, connection):
        # IMMEDIATE takes the file's write lock up front, so reading the head and appending after it
        # cannot interleave with another process doing the same.
        connection.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            connection.execute("ROLLBACK")
            raise
        connection.execute("COMMIT")
