"""The message log in PostgreSQL, for several daemon instances sharing the work (psycopg 3)."""

from __future__ import annotations

from contextlib import contextmanager

from exchanger.journal.store import Store, StoreError

try:
    import psycopg
except ImportError:  # the extra is optional: SQLite needs nothing
    psycopg = None

CONNECT_TIMEOUT_SECONDS = 10


class PostgresStore(Store):
    """PostgreSQL: appends are serialised by a row lock on the chain's head, so one linear chain spans all instances."""

    integer = "BIGINT"
    blob = "BYTEA"
    lock_head = "SELECT seq, hash FROM journal_head WHERE id = 1 FOR UPDATE"

    def __init__(self, url: str):
        if psycopg is None:
            raise StoreError("a PostgreSQL message log needs psycopg: pip install 'exchanger[postgres]'")
        super().__init__(url)

    def _connect(self):
        return psycopg.connect(self.url, autocommit=True, connect_timeout=CONNECT_TIMEOUT_SECONDS)

    @contextmanager
    def _transaction(self, connection):
        with connection.transaction():
            yield

    def _prepare_schema(self, connection) -> None:
        # CREATE TABLE IF NOT EXISTS is not safe when two instances start at the same moment.
        connection.execute("SELECT pg_advisory_xact_lock(hashtext('exchanger.journal.schema'))")

    def _sql(self, text: str) -> str:
        return text.replace("?", "%s")

    def _is_disconnect(self, connection, error: Exception) -> bool:
        return connection.broken or connection.closed or isinstance(error, psycopg.OperationalError)
