"""The daemon's side of the message log: what the worker tells it, and the duplicate look-up the pipeline asks it."""

from __future__ import annotations

import threading
from collections import OrderedDict
from collections.abc import Callable

import structlog

from exchanger.config import Config
from exchanger.dsig.signer import Signer
from exchanger.envelope import Inbound
from exchanger.journal.checkpoint import Checkpointer
from exchanger.journal.events import Entry, describe, handed_back_event, processing_events, settlement_events
from exchanger.journal.store import Store, open_store
from exchanger.journal.writer import Writer, WriterStatus
from exchanger.pipeline.disposition import ACCEPTED, Disposition

log = structlog.get_logger("exchanger.journal")

PENDING_RECEIPTS = 10_000  # accepted receipts settled but not yet written; more means the store is down


class Recorder:
    """Turns what the worker sees into log records and hands them to the background writer.

    ``processed`` runs on the compute thread, ``settled`` on the I/O thread; neither touches the
    store. ``accepted_receipt`` (the Deduplicate stage's look-up) answers from the store, which
    every instance sharing it sees, and, for a receipt this process settled that is still queued
    for writing, from memory.
    """

    def __init__(self, store: Store, writer: Writer, *, keep_originals: str = "rejected"):
        self.store = store
        self.writer = writer
        self.keep_originals = keep_originals
        self._pending: OrderedDict[tuple[str, str], bytes] = OrderedDict()
        self._lock = threading.Lock()
        writer.on_written = self._written

    def processed(self, inbound: Inbound, disposition: Disposition, pipeline) -> Entry | None:
        """Record how the pipeline decided a message; keep the returned Entry for ``settled``."""
        try:
            entry = describe(inbound, disposition, pipeline.config.version)
            events = processing_events(inbound, disposition, entry, stage_names(pipeline), self.keep_originals)
        except Exception:
            # A record that cannot be built must not stop the message: say so loudly instead.
            log.exception("journal.record_failed", when="processed", **disposition.context)
            return None
        self.writer.submit(events)
        return entry

    def settled(self, entry: Entry | None, then: Callable[[], None] | None = None) -> None:
        """Record that the broker confirmed every publication of a message (copies, dead letter, receipt).

        ``then`` is called on the writer thread once these records are committed: acking the inbound
        there means an acked message always has its settlement, and its accepted receipt, in the log.
        """
        if entry is None:
            if then is not None:
                then()
            return
        if entry.outcome == ACCEPTED and entry.sender and entry.message_id and entry.receipt is not None:
            with self._lock:
                self._pending.setdefault((entry.sender, entry.message_id), entry.receipt)
                while len(self._pending) > PENDING_RECEIPTS:
                    self._pending.popitem(last=False)
        try:
            events = settlement_events(entry, self.keep_originals)
        except Exception:
            log.exception("journal.record_failed", when="settled", message_id=entry.message_id, digest=entry.digest)
            events = []
        self.writer.submit(events, wait=False, then=then)

    def _written(self, records) -> None:
        # Once written, the store's answer is the one every instance gives (the first accepted receipt).
        with self._lock:
            for record in records:
                if record.receipt is not None:
                    self._pending.pop((record.sender, record.message_id), None)

    def handed_back(self, subject: Entry | Inbound | None, why: str, config_version: str | None = None) -> None:
        """Record a message handed back to the broker unsettled (a stage crashed, or a copy was never confirmed)."""
        if subject is not None:
            self.writer.submit([handed_back_event(subject, why, config_version)], wait=False)

    def accepted_receipt(self, sender: str, message_id: str) -> bytes | None:
        """The original receipt if this sender's message id was accepted before, else None."""
        receipt = self.store.accepted_receipt(sender, message_id)
        if receipt is None:
            with self._lock:
                receipt = self._pending.get((sender, message_id))
        return receipt

    def reconfigure(self, config: Config, signer: Signer | None = None) -> None:
        """Take up a reloaded configuration's archiving and checkpoint settings (the store stays as it was opened)."""
        self.keep_originals = config.journal.keep_originals
        checkpointer = self.writer.checkpointer
        if checkpointer is not None:
            checkpointer.every_records = config.journal.checkpoint_records
            checkpointer.every_seconds = config.journal.checkpoint_seconds
            if signer is not None:
                checkpointer.signer = signer

    @property
    def status(self) -> WriterStatus:
        """The writer's counters: queued, written, failures and the last error."""
        return self.writer.status

    def problem(self) -> str | None:
        """None when the log is being written, else why not (for readiness checks)."""
        status = self.writer.status
        if status.last_error is not None:
            return f"the message log cannot be written: {status.last_error}"
        if status.queued >= self.writer.max_queued:
            return f"the message log is {status.queued} records behind"
        return None

    def flush(self, timeout: float | None = None) -> bool:
        """Wait until every record so far is in the store."""
        return self.writer.flush(timeout)

    def close(self, timeout: float = 30.0) -> bool:
        """Write what is queued, sign a last checkpoint and close the store."""
        return self.writer.close(timeout)


def stage_names(pipeline) -> list[str]:
    """The names of a pipeline's stages, in order (a stage may be held with its timing histogram)."""
    return [(item[0] if isinstance(item, tuple) else item).name for item in pipeline.stages]


def open_recorder(config: Config, signer: Signer | None = None) -> Recorder:
    """Open the configured store and start its writer, which signs checkpoints with the platform key."""
    signer = signer or Signer(config.platform.key_path, config.platform.certificate_path, config.signatures)
    settings = config.journal
    checkpointer = Checkpointer(signer, config.platform.id, settings.checkpoint_records, settings.checkpoint_seconds)
    store = open_store(settings.url)
    writer = Writer(store, checkpointer).start()
    return Recorder(store, writer, keep_originals=settings.keep_originals)
