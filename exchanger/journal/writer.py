"""The background writer: events queue in memory and reach the store in batched transactions on their own thread."""

from __future__ import annotations

import threading
import time
from collections import deque
from collections.abc import Callable, Sequence
from dataclasses import dataclass

import structlog

from exchanger.journal.checkpoint import Checkpointer
from exchanger.journal.records import Event
from exchanger.journal.store import Store
from exchanger.transport.backoff import Backoff

log = structlog.get_logger("exchanger.journal")

MAX_QUEUED = 50_000
MAX_BATCH = 2_000
# A transaction (its lock, head update and fsync) costs as much as dozens of records, and each one
# makes the writer contend for the interpreter with the compute thread and wakes the I/O thread to
# ack. Under load, commits are therefore spaced this far apart so that each takes what queued
# meanwhile; an idle writer commits at once, so a lone message is in the log as soon as before.
# Measured in alternated drains of two workers (README, Performance): 25 ms against 10 ms halved the
# workers' context switches per message and drained faster; 50 ms held acks long enough to starve
# the prefetch and drained slower.
COMMIT_INTERVAL = 0.025
CLOSING_TRIES = 3  # on shutdown a store that is down gets a few more tries, not forever


@dataclass(frozen=True)
class WriterStatus:
    """How the writer is doing: for health checks, metrics and the benchmark."""

    queued: int
    written: int
    batches: int
    checkpoints: int
    failures: int
    last_error: str | None
    last_written_at: float | None

    @property
    def healthy(self) -> bool:
        """True unless the last attempt to write failed."""
        return self.last_error is None


class Writer:
    """Appends events on a thread of its own, as many per transaction as have queued up meanwhile.

    Transactions start at most every ``commit_interval`` seconds (sooner on ``flush``, ``close`` or
    a full batch), so a busy writer commits in batches rather than once per message.

    ``submit`` never touches the store. The compute thread submits with ``wait=True`` and so waits
    only when ``max_queued`` events are already waiting (the store is down or far behind: the
    exchange must not run ahead of its log); the I/O thread submits with ``wait=False`` and never
    waits, its few events per settled message being bounded by the prefetch. ``then`` is called on
    the writer thread once the events submitted with it are committed (the worker acks there).
    """

    def __init__(
        self,
        store: Store,
        checkpointer: Checkpointer | None = None,
        *,
        max_queued: int = MAX_QUEUED,
        max_batch: int = MAX_BATCH,
        commit_interval: float = COMMIT_INTERVAL,
        name: str = "journal-writer",
    ):
        self.store = store
        self.checkpointer = checkpointer
        self.max_queued = max_queued
        self.max_batch = max_batch
        self.commit_interval = commit_interval
        self._queue: deque[Event | Callable[[], None]] = deque()  # events, and callbacks due once they are in
        self._condition = threading.Condition()
        self._writing = 0
        self._flushing = 0  # callers waiting in flush(): what is queued is written without delay
        self._committed_at = float("-inf")  # when the last transaction ended (monotonic)
        self._closing = False
        self._thread = threading.Thread(target=self._run, name=name, daemon=True)
        self._backoff = Backoff(initial=0.1, cap=5.0)
        self._written = self._batches = self._checkpoints = self._failures = 0
        self._last_error: str | None = None
        self._last_written_at: float | None = None
        self._unsigned = 0  # records written since the last checkpoint
        self._unsigned_tip: tuple[int, str] | None = None
        self._signed_at = time.monotonic()
        self.on_written = None  # called on the writer thread with each batch of records once committed

    def start(self) -> Writer:
        """Start the writer thread; returns self."""
        self._thread.start()
        return self

    def submit(self, events: Sequence[Event], *, wait: bool = True, then: Callable[[], None] | None = None) -> None:
        """Queue events to be appended in this order; with ``wait``, wait while the queue is full."""
        with self._condition:
            while wait and len(self._queue) >= self.max_queued and not self._closing:
                self._condition.wait()
            # The writer waits for an empty queue to fill, or for a time it already knows: only the
            # first event and a full batch change what it waits for.
            wake = not self._queue
            self._queue.extend(events)
            if then is not None:
                self._queue.append(then)
            if wake or len(self._queue) >= self.max_batch:
                self._condition.notify_all()

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until everything submitted so far is in the store; False if that took longer than ``timeout``."""
        deadline = None if timeout is None else time.monotonic() + timeout
        with self._condition:
            self._flushing += 1
            self._condition.notify_all()
            try:
                while self._queue or self._writing:
                    remaining = None if deadline is None else deadline - time.monotonic()
                    if remaining is not None and remaining <= 0:
                        return False
                    self._condition.wait(remaining)
            finally:
                self._flushing -= 1
        return True

    def close(self, timeout: float = 30.0) -> bool:
        """Write what is queued, sign a last checkpoint, stop the thread and close the store."""
        with self._condition:
            self._closing = True
            self._condition.notify_all()
        if self._thread.is_alive():
            self._thread.join(timeout)
        done = not self._thread.is_alive()
        if not done:
            log.error("journal.unwritten", queued=len(self._queue), error=self._last_error)
        self.store.close()
        return done

    @property
    def status(self) -> WriterStatus:
        """A snapshot of the writer's counters."""
        with self._condition:
            return WriterStatus(
                queued=len(self._queue) + self._writing,
                written=self._written,
                batches=self._batches,
                checkpoints=self._checkpoints,
                failures=self._failures,
                last_error=self._last_error,
                last_written_at=self._last_written_at,
            )

    # ---- the writer thread ---------------------------------------------------------------------

    def _run(self) -> None:
        while True:
            with self._condition:
                self._wait_for_work()
                batch = [self._queue.popleft() for _ in range(min(self.max_batch, len(self._queue)))]
                self._writing = len(batch)
                self._condition.notify_all()
            written = self._write(batch) if batch else True
            if written:
                self._checkpoint(final=self._closing and not batch)
            with self._condition:
                if batch:
                    self._committed_at = time.monotonic()
                self._writing = 0
                self._condition.notify_all()
                if not written or (self._closing and not self._queue and not batch):
                    return

    def _wait_for_work(self) -> None:
        """Wait (holding the condition) until the queue is due to be written, a checkpoint is due, or closing."""
        while not self._closing:
            due = self._until_due()
            if due == 0:
                return
            checkpoint = self._until_checkpoint()
            if checkpoint is not None and (due is None or checkpoint < due):
                if not self._condition.wait(checkpoint):
                    return  # timed out: time to sign what was written meanwhile
            else:
                self._condition.wait(due)

    def _until_due(self) -> float | None:
        """Seconds until what is queued should be written: 0 for now, None while nothing is queued."""
        if not self._queue:
            return None
        if self._flushing or len(self._queue) >= self.max_batch:
            return 0.0
        return max(0.0, self._committed_at + self.commit_interval - time.monotonic())

    def _until_checkpoint(self) -> float | None:
        if self.checkpointer is None or not self._unsigned:
            return None
        return max(0.01, self.checkpointer.every_seconds - (time.monotonic() - self._signed_at))

    def _write(self, batch: list) -> bool:
        """Append one batch, retrying until it is in, then run its callbacks; on shutdown give up after a few tries."""
        events = [item for item in batch if isinstance(item, Event)]
        tries_while_closing = 0
        while True:
            try:
                records = self.store.append(events) if events else []
            except Exception as exc:
                # Keep the batch and try again: dropping records would leave a hole no one can see.
                delay = self._backoff.next_delay()
                with self._condition:
                    self._failures += 1
                    self._last_error = str(exc) or type(exc).__name__
                log.error("journal.write_failed", error=self._last_error, records=len(events), retry_in=round(delay, 2))
                if self._closing:
                    tries_while_closing += 1
                    if tries_while_closing >= CLOSING_TRIES:
                        with self._condition:
                            self._queue.extendleft(reversed(batch))
                        return False
                time.sleep(delay)
                continue
            self._backoff.reset()
            with self._condition:
                self._written += len(records)
                self._batches += 1
                self._last_error = None
                self._last_written_at = time.time()
            if records:
                self._unsigned += len(records)
                self._unsigned_tip = (records[-1].seq, records[-1].hash)
                if self.on_written is not None:
                    self.on_written(records)
            for then in (item for item in batch if not isinstance(item, Event)):
                try:
                    then()
                except Exception:  # the caller's callback must not stop the log
                    log.exception("journal.callback_failed")
            return True

    def _checkpoint(self, final: bool) -> None:
        if self.checkpointer is None or self._unsigned_tip is None:
            return
        elapsed = time.monotonic() - self._signed_at
        if not (final and self._unsigned) and not self.checkpointer.due(self._unsigned, elapsed):
            return
        seq, digest = self._unsigned_tip
        try:
            self.store.add_checkpoint(self.checkpointer.sign(seq, digest))
        except Exception as exc:
            log.error("journal.checkpoint_failed", seq=seq, error=str(exc) or type(exc).__name__)
            return
        with self._condition:
            self._checkpoints += 1
        self._unsigned = 0
        self._signed_at = time.monotonic()
