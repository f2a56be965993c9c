"""The log store: one chain of records in SQL, shared by every writer; SQLite and PostgreSQL differ only in dialect."""

from __future__ import annotations

import threading
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass, replace
from operator import attrgetter
from urllib.parse import urlsplit

from exchanger.errors import ExchangerError
from exchanger.journal.chain import GENESIS, content_digest, extend
from exchanger.journal.checkpoint import Checkpoint
from exchanger.journal.records import COLUMNS, Event, Record, canonical_json, kept_document
from exchanger.transport.url import redact

SCHEMA_VERSION = "1"
_RECORD_COLUMNS = ("seq", *COLUMNS, "prev", "hash")
_row = attrgetter(*_RECORD_COLUMNS)  # a record's values in column order
_SELECT = f"SELECT {', '.join(_RECORD_COLUMNS)} FROM journal_records"
# Bound parameters in one INSERT: SQLite before 3.32 allows 999 (PostgreSQL 65,535).
MAX_PARAMETERS = 999


class StoreError(ExchangerError):
    """The log store cannot be used: unreachable, unwritable, or not a message log."""


@dataclass(frozen=True)
class Query:
    """Which records to find: the filters of ``trace`` and ``log search``."""

    message_id: str | None = None
    digest_prefix: str | None = None
    sender: str | None = None
    receiver: str | None = None
    message_type: str | None = None
    kinds: tuple[str, ...] = ()
    since: str | None = None
    until: str | None = None
    operator: str | None = None  # operator-action records naming this operator
    limit: int | None = None
    newest_first: bool = False


@dataclass(frozen=True)
class Pruned:
    """What a prune removed, and the checkpoint the remaining chain now starts from."""

    records: int
    originals: int
    receipts: int
    through_seq: int | None


def _schema(integer: str, blob: str) -> list[str]:
    return [
        "CREATE TABLE IF NOT EXISTS journal_meta (key TEXT PRIMARY KEY, value TEXT NOT NULL)",
        # The chain's head: read and updated under the append lock, so every writer extends the same chain.
        f"CREATE TABLE IF NOT EXISTS journal_head (id INTEGER PRIMARY KEY CHECK (id = 1), seq {integer} NOT NULL, "
        "hash TEXT NOT NULL)",
        f"""CREATE TABLE IF NOT EXISTS journal_records (
            seq {integer} PRIMARY KEY, at TEXT NOT NULL, kind TEXT NOT NULL, config_version TEXT,
            digest TEXT, sender TEXT, message_id TEXT, message_type TEXT, receivers TEXT,
            data TEXT NOT NULL, prev TEXT NOT NULL, hash TEXT NOT NULL)""",
        "CREATE INDEX IF NOT EXISTS journal_records_message_id ON journal_records (message_id)",
        "CREATE INDEX IF NOT EXISTS journal_records_digest ON journal_records (digest)",
        "CREATE INDEX IF NOT EXISTS journal_records_at ON journal_records (at)",
        "CREATE INDEX IF NOT EXISTS journal_records_kind ON journal_records (kind, seq)",
        f"""CREATE TABLE IF NOT EXISTS journal_checkpoints (
            seq {integer} PRIMARY KEY, hash TEXT NOT NULL, at TEXT NOT NULL, platform TEXT NOT NULL,
            certificate TEXT NOT NULL, signature TEXT NOT NULL)""",
        f"CREATE TABLE IF NOT EXISTS journal_originals (seq {integer} PRIMARY KEY, body {blob} NOT NULL)",
        # One accepted receipt per sender and message id, whichever instance wrote it first: the idempotency key.
        f"""CREATE TABLE IF NOT EXISTS journal_accepted (
            sender TEXT NOT NULL, message_id TEXT NOT NULL, seq {integer} NOT NULL, receipt {blob} NOT NULL,
            PRIMARY KEY (sender, message_id))""",
        "CREATE INDEX IF NOT EXISTS journal_accepted_seq ON journal_accepted (seq)",
    ]


class Store:
    """Records, checkpoints, archived originals and accepted receipts in one SQL database.

    Each thread gets its own connection (the writer's, the compute thread's duplicate look-ups,
    a command's), so no connection is ever used by two threads at once.
    """

    integer = "INTEGER"
    blob = "BLOB"
    lock_head = "SELECT seq, hash FROM journal_head WHERE id = 1"

    def __init__(self, url: str):
        self.url = url
        self._local = threading.local()
        self._connections: list = []
        self._guard = threading.Lock()
        with self._write() as connection:
            self._create_schema(connection)

    # ---- dialect ----------------------------------------------------------------------------

    def _connect(self):
        raise NotImplementedError

    def _transaction(self, connection):
        """A context manager: one write transaction, committed at its end, rolled back on error."""
        raise NotImplementedError

    def _prepare_schema(self, connection) -> None:
        """Serialise schema creation among instances starting at once (inside the transaction)."""

    def _sql(self, text: str) -> str:
        return text

    def _is_disconnect(self, connection, error: Exception) -> bool:
        """Whether the connection is unusable after this error (it is then reopened on next use)."""
        return False

    # ---- connections --------------------------------------------------------------------------

    def _connection(self):
        connection = getattr(self._local, "connection", None)
        if connection is None:
            try:
                connection = self._connect()
            except Exception as exc:
                raise StoreError(f"cannot open the message log {redact(self.url)}: {exc}") from exc
            self._local.connection = connection
            with self._guard:
                self._connections.append(connection)
        return connection

    def _forget(self, connection) -> None:
        self._local.connection = None
        with self._guard:
            if connection in self._connections:
                self._connections.remove(connection)
        try:
            connection.close()
        except Exception:  # already broken; nothing more to release
            pass

    @contextmanager
    def _write(self):
        connection = self._connection()
        try:
            with self._transaction(connection):
                yield connection
        except Exception as exc:
            if self._is_disconnect(connection, exc):
                self._forget(connection)
            raise

    def _query(self, text: str, params: Sequence = ()) -> list[tuple]:
        connection = self._connection()
        try:
            return list(connection.execute(self._sql(text), tuple(params)).fetchall())
        except Exception as exc:
            if self._is_disconnect(connection, exc):
                self._forget(connection)
            raise

    def close(self) -> None:
        """Close every connection this store opened."""
        with self._guard:
            connections, self._connections = self._connections, []
        for connection in connections:
            try:
                connection.close()
            except Exception:  # closing a connection another thread broke; it is gone either way
                pass
        self._local = threading.local()

    def _create_schema(self, connection) -> None:
        self._prepare_schema(connection)
        for statement in _schema(self.integer, self.blob):
            connection.execute(statement)
        connection.execute(
            self._sql("INSERT INTO journal_meta (key, value) VALUES ('schema', ?) ON CONFLICT (key) DO NOTHING"),
            (SCHEMA_VERSION,),
        )
        connection.execute(
            self._sql("INSERT INTO journal_head (id, seq, hash) VALUES (1, 0, ?) ON CONFLICT (id) DO NOTHING"),
            (GENESIS,),
        )
        (version,) = connection.execute("SELECT value FROM journal_meta WHERE key = 'schema'").fetchone()
        if version != SCHEMA_VERSION:
            raise StoreError(f"{redact(self.url)} holds a message log of schema {version}, not {SCHEMA_VERSION}")

    # ---- appending ------------------------------------------------------------------------------

    def append(self, events: Sequence[Event]) -> list[Record]:
        """Chain the events after the head and store them, their originals and accepted receipts, in one transaction."""
        prepared = [(event, content_digest(event)) for event in events]  # the costly part, outside the lock
        with self._write() as connection:
            return self._append_locked(connection, prepared)

    def _append_locked(self, connection, prepared: Sequence[tuple[Event, bytes]]) -> list[Record]:
        head_seq, head_hash = connection.execute(self.lock_head).fetchone()
        records = extend(int(head_seq), head_hash, prepared)
        if not records:
            return records
        self._insert(connection, "journal_records", _RECORD_COLUMNS, [_row(r) for r in records])
        originals = [(r.seq, r.original) for r in records if r.original is not None]
        self._insert(connection, "journal_originals", ("seq", "body"), originals)
        accepted = [
            (r.sender, r.message_id, r.seq, r.receipt)
            for r in records
            if r.receipt is not None and r.sender and r.message_id
        ]
        # The first accepted receipt stays the original; a later one (another instance that forwarded
        # the same message meanwhile) is in the chain but does not replace it.
        self._insert(connection, "journal_accepted", ("sender", "message_id", "seq", "receipt"), accepted,
                     "ON CONFLICT (sender, message_id) DO NOTHING")
        last = records[-1]
        connection.execute(self._sql("UPDATE journal_head SET seq = ?, hash = ? WHERE id = 1"), (last.seq, last.hash))
        return records

    def _insert(self, connection, table: str, columns: Sequence[str], rows: Sequence[tuple], suffix: str = "") -> None:
        """Insert rows with one statement per chunk of rows, not one execution per row.

        Each execution lets go of the interpreter and must take it back (``executemany`` executes once
        per row): on a worker whose compute thread is busy, every row inserted on its own meant
        another wait for the GIL and another context switch for both threads.
        """
        per_statement = max(1, MAX_PARAMETERS // len(columns))
        row_text = f"({', '.join('?' for _ in columns)})"
        for start in range(0, len(rows), per_statement):
            chunk = rows[start:start + per_statement]
            values = ", ".join(row_text for _ in chunk)
            connection.execute(
                self._sql(f"INSERT INTO {table} ({', '.join(columns)}) VALUES {values} {suffix}".rstrip()),
                [value for row in chunk for value in row],
            )

    def add_checkpoint(self, checkpoint: Checkpoint) -> None:
        """Store a signed checkpoint."""
        with self._write() as connection:
            connection.execute(
                self._sql(
                    "INSERT INTO journal_checkpoints (seq, hash, at, platform, certificate, signature) "
                    "VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (seq) DO NOTHING"
                ),
                (checkpoint.seq, checkpoint.hash, checkpoint.at, checkpoint.platform, checkpoint.certificate,
                 checkpoint.signature),
            )

    # ---- reading --------------------------------------------------------------------------------

    def head(self) -> tuple[int, str]:
        """The sequence number and hash of the last record ever appended (0 and the genesis hash at first)."""
        seq, digest = self._query("SELECT seq, hash FROM journal_head WHERE id = 1")[0]
        return int(seq), digest

    def bounds(self) -> tuple[int | None, int | None, int]:
        """The first and last sequence numbers present, and how many records there are."""
        first, last, count = self._query("SELECT MIN(seq), MAX(seq), COUNT(*) FROM journal_records")[0]
        return (int(first) if first is not None else None, int(last) if last is not None else None, int(count))

    def checkpoints(self) -> list[Checkpoint]:
        """Every stored checkpoint, oldest first."""
        rows = self._query(
            "SELECT seq, hash, at, platform, certificate, signature FROM journal_checkpoints ORDER BY seq"
        )
        return [Checkpoint(int(row[0]), *row[1:]) for row in rows]

    def records(self, after_seq: int = 0, page: int = 5000) -> Iterator[Record]:
        """Every record after ``after_seq`` in sequence order, read a page at a time."""
        while True:
            rows = self._query(f"{_SELECT} WHERE seq > ? ORDER BY seq LIMIT {int(page)}", (after_seq,))
            for row in rows:
                yield _record(row)
            if len(rows) < page:
                return
            after_seq = int(rows[-1][0])

    def find(self, query: Query) -> list[Record]:
        """The records that match every filter given, in sequence order (newest first if asked)."""
        where, params = [], []
        for column, value in (
            ("message_id", query.message_id),
            ("sender", query.sender),
            ("message_type", query.message_type),
        ):
            if value is not None:
                where.append(f"{column} = ?")
                params.append(value)
        if query.digest_prefix:
            # A range rather than LIKE, so the digest index serves it; digests are lower-case hex.
            where.append("digest >= ? AND digest < ?")
            params.extend([query.digest_prefix.lower(), f"{query.digest_prefix.lower()}g"])
        if query.receiver:
            where.append("receivers LIKE ?")
            params.append(f"%,{query.receiver},%")
        if query.kinds:
            where.append(f"kind IN ({', '.join('?' for _ in query.kinds)})")
            params.extend(query.kinds)
        if query.operator:
            # Details are canonical JSON, so the operator's name is always written the same way.
            where.append("data LIKE ? ESCAPE '!'")
            params.append(f"%{_like_literal(canonical_json({'operator': query.operator})[1:-1])}%")
        if query.since:
            where.append("at >= ?")
            params.append(query.since)
        if query.until:
            where.append("at < ?")
            params.append(query.until)
        sql = _SELECT + (f" WHERE {' AND '.join(where)}" if where else "")
        sql += " ORDER BY seq DESC" if query.newest_first else " ORDER BY seq"
        if query.limit:
            sql += f" LIMIT {int(query.limit)}"
        return [_record(row) for row in self._query(sql, params)]

    def select(self, text: str, params: Sequence = ()) -> list[tuple]:
        """The rows of a read-only query written with ``?`` placeholders, in either store's dialect (for reports)."""
        return self._query(text, params)

    def accepted_receipt(self, sender: str, message_id: str) -> bytes | None:
        """The receipt the sender got when this message id was first accepted, or None if it never was."""
        rows = self._query(
            "SELECT receipt FROM journal_accepted WHERE sender = ? AND message_id = ?", (sender, message_id)
        )
        return bytes(rows[0][0]) if rows else None

    def original(self, seq: int) -> bytes | None:
        """The archived original bytes kept with the ``received`` record at ``seq``."""
        rows = self._query("SELECT body FROM journal_originals WHERE seq = ?", (seq,))
        return bytes(rows[0][0]) if rows else None

    def archived(self, page: int = 500) -> Iterator[tuple[str, int, str | None, bytes]]:
        """Every kept document: (original, copy or receipt; seq; the SHA-256 its record names; bytes)."""
        for table, column, what in (("journal_originals", "body", "original"), ("journal_accepted", "receipt", "receipt")):
            after = 0
            while True:
                rows = self._query(
                    f"SELECT a.seq, a.{column}, r.digest, r.data FROM {table} a "
                    f"LEFT JOIN journal_records r ON r.seq = a.seq WHERE a.seq > ? ORDER BY a.seq LIMIT {int(page)}",
                    (after,),
                )
                for seq, body, digest, data in rows:
                    # A kept copy or receipt is named in its record's details; an original by the digest column.
                    kind, named = kept_document(data, what, digest)
                    yield kind, int(seq), named, bytes(body)
                if len(rows) < page:
                    break
                after = int(rows[-1][0])

    # ---- retention ------------------------------------------------------------------------------

    def prune(self, cutoff: str, pruned_event: Event | None = None) -> Pruned:
        """Remove the records older than ``cutoff`` up to the newest checkpoint before the first newer one.

        The remaining chain starts right after a checkpoint, which verification starts from; the
        ``pruned`` event appended in the same transaction records what was removed and why.
        """
        with self._write() as connection:
            row = connection.execute(
                self._sql("SELECT MIN(seq) FROM journal_records WHERE at >= ?"), (cutoff,)
            ).fetchone()
            first_kept = row[0] if row[0] is not None else int(connection.execute(self.lock_head).fetchone()[0]) + 1
            row = connection.execute(
                self._sql("SELECT MAX(seq) FROM journal_checkpoints WHERE seq < ?"), (first_kept,)
            ).fetchone()
            through = row[0]
            (first,) = connection.execute("SELECT MIN(seq) FROM journal_records").fetchone()
            if through is None or first is None or int(through) < int(first):
                return Pruned(0, 0, 0, None)
            through = int(through)
            counts = []
            for table in ("journal_records", "journal_originals", "journal_accepted"):
                cursor = connection.execute(self._sql(f"DELETE FROM {table} WHERE seq <= ?"), (through,))
                counts.append(cursor.rowcount)
            connection.execute(self._sql("DELETE FROM journal_checkpoints WHERE seq < ?"), (through,))
            if pruned_event is not None:
                details = {**pruned_event.details, "through_seq": through, "records": counts[0]}
                event = replace(pruned_event, data=canonical_json(details))
                self._append_locked(connection, [(event, content_digest(event))])
            return Pruned(counts[0], counts[1], counts[2], through)


def _record(row: tuple) -> Record:
    values = dict(zip(_RECORD_COLUMNS, row))
    values["seq"] = int(values["seq"])
    return Record(**values)


def _like_literal(text: str) -> str:
    """Text matched as itself by LIKE … ESCAPE '!'."""
    return text.replace("!", "!!").replace("%", "!%").replace("_", "!_")


def open_store(url: str) -> Store:
    """Open (and create if need be) the store a ``journal.url`` names: ``sqlite:///…`` or ``postgresql://…``."""
    scheme = urlsplit(url).scheme.lower()
    if scheme == "sqlite":
        from exchanger.journal.sqlite import SqliteStore

        return SqliteStore(url)
    if scheme in ("postgresql", "postgres"):
        from exchanger.journal.postgres import PostgresStore

        return PostgresStore(url)
    raise StoreError(f"{redact(url)}: the message log is kept in sqlite:///PATH or postgresql://… only")

