"""Dead letters for operators: browse and find without consuming, replay and purge with a record of who did it."""

from __future__ import annotations

import hashlib
from contextlib import contextmanager
from dataclasses import dataclass

import pika.exceptions

from exchanger.errors import ExchangerError
from exchanger.journal.store import Store
from exchanger.operations.actor import Operator, record_action
from exchanger.transport.dead_letter_store import DeadLetterLog, DeadLetterStore, dead_letter_store
from exchanger.transport.dead_letters import MAX_REPLAYS, DeadLetter, Settlement
from exchanger.transport.names import DEAD_LETTERS
from exchanger.transport.url import connection_parameters

__all__ = ["DeadLetter", "DeadLetterDesk", "DeadLetterFilter", "DeadLetterStreamError", "PurgeResult", "ReplayResult"]


class DeadLetterStreamError(ExchangerError):
    """The broker would not let the dead-letter stream be read or written; ``hints`` say what to do."""

    def __init__(self, message: str, hints: list[str] | None = None):
        self.hints = hints or []
        super().__init__(message)


@dataclass(frozen=True)
class DeadLetterFilter:
    """Which dead letters to show: every filter given must match (times are epoch seconds)."""

    reason: str | None = None
    sender: str | None = None
    message_type: str | None = None
    since: float | None = None
    until: float | None = None
    limit: int | None = None

    @property
    def selects(self) -> bool:
        """Whether any filter narrows the selection (replaying everything needs at least one)."""
        return any(value is not None for value in (self.reason, self.sender, self.message_type, self.since, self.until))

    def admits(self, letter: DeadLetter) -> bool:
        """Whether the letter passes every filter."""
        return letter.matches(reason=self.reason, sender=self.sender, message_type=self.message_type,
                              since=self.since, until=self.until)


@dataclass(frozen=True)
class ReplayResult:
    """What became of one dead letter asked to be replayed: ``replayed``, or ``skipped`` and why."""

    letter: DeadLetter
    outcome: str
    why: str | None = None

    @property
    def done(self) -> bool:
        """True when the letter went through the pipeline again."""
        return self.outcome == "replayed"


@dataclass(frozen=True)
class PurgeResult:
    """One dead letter purged (settled for good; the stream keeps its bytes until retention removes them)."""

    letter: DeadLetter
    outcome: str = "purged"


class DeadLetterDesk:
    """The dead-letter stream as operators use it, over a connection of its own per call.

    ``amqp_url`` logs in as the daemon's user (only it may settle dead letters); ``store`` is the
    message log where each replay and purge is recorded (None only for reading). A connection per
    call keeps the desk safe to share between the console's request threads.
    """

    def __init__(self, config, amqp_url: str, store: Store | None, *, client_name: str = "exchanger dead letters"):
        self.config = config
        self.amqp_url = amqp_url
        self.store = store
        self.daemon_user = config.broker.daemon_user
        self.client_name = client_name

    @contextmanager
    def _session(self):
        session = dead_letter_store(connection_parameters(self.amqp_url, client_name=self.client_name), self.daemon_user)
        try:
            yield session
        except pika.exceptions.ChannelClosedByBroker as exc:
            if exc.reply_code == 404:
                raise DeadLetterStreamError(
                    f"there is no dead-letter stream {DEAD_LETTERS} on this virtual host",
                    ["declare it with `exchanger topology apply`", "then move older dead letters with `exchanger dead migrate`"],
                ) from exc
            raise DeadLetterStreamError(f"the broker refused the dead-letter stream: {exc.reply_text}") from exc
        finally:
            session.close()

    def _log(self, session: DeadLetterStore) -> DeadLetterLog:
        return session.read()

    def browse(self, filters: DeadLetterFilter = DeadLetterFilter()) -> list[DeadLetter]:
        """The pending dead letters passing the filters, oldest first; reading takes nothing from the stream."""
        with self._session() as session:
            letters = [letter for letter in self._log(session).pending() if filters.admits(letter)]
        return letters if filters.limit is None else letters[: filters.limit]

    def settled(self, filters: DeadLetterFilter = DeadLetterFilter()) -> list[tuple[DeadLetter, Settlement]]:
        """The replayed and purged dead letters passing the filters, with who settled them and when."""
        with self._session() as session:
            log = self._log(session)
        done = [(log.letters[i], s) for i, s in log.settled.items() if i in log.letters and filters.admits(log.letters[i])]
        return done if filters.limit is None else done[: filters.limit]

    def find(self, letter_id: str) -> DeadLetter | None:
        """The pending dead letter with this id, or the first whose id starts with it (as the CLI shows ids)."""
        letters = self.browse()
        exact = [letter for letter in letters if letter.id == letter_id]
        if exact:
            return exact[0]
        return next((letter for letter in letters if letter_id and letter.id.startswith(letter_id)), None)

    def select(self, letter_ids: list[str], filters: DeadLetterFilter = DeadLetterFilter()) -> list[DeadLetter]:
        """The pending letters named (by id or the start of one) that pass the filters; by filters alone if none named."""
        letters = self.browse(DeadLetterFilter(**{**vars(filters), "limit": None}))
        if letter_ids:
            letters = [letter for letter in letters if any(letter.id.startswith(i) for i in letter_ids if i)]
        return letters

    def replay(self, letter_ids: list[str], operator: Operator, *, force: bool = False,
               filters: DeadLetterFilter = DeadLetterFilter()) -> list[ReplayResult]:
        """Run the dead letters through the pipeline again as their original senders, and record each attempt.

        A letter without a broker-verified sender, or replayed ``MAX_REPLAYS`` times already (unless
        ``force``), is skipped; the skip is recorded too, as refused, with why.
        """
        self._needs_log()
        results = []
        with self._session() as session:
            session.operator = operator.name
            for letter in self._pending_among(session, letter_ids, filters):
                why = None
                if not letter.sender:
                    why = "it names no broker-verified sender, so it cannot be replayed as one"
                elif letter.replays >= MAX_REPLAYS and not force:
                    why = f"already replayed {letter.replays} times (replay with force to go on)"
                if why is None:
                    session.replay(letter)
                    results.append(ReplayResult(letter, "replayed"))
                else:
                    results.append(ReplayResult(letter, "skipped", why))
                self._record(operator, "dead-letter-replay", letter, "done" if why is None else "refused", why)
        return results

    def purge(self, letter_ids: list[str], operator: Operator, *,
              filters: DeadLetterFilter = DeadLetterFilter()) -> list[PurgeResult]:
        """Settle the named (or filtered) dead letters for good, recording each purge."""
        self._needs_log()
        results = []
        with self._session() as session:
            session.operator = operator.name
            for letter in self._pending_among(session, letter_ids, filters):
                session.purge(letter)
                results.append(PurgeResult(letter))
                self._record(operator, "dead-letter-purge", letter, "done", None)
        return results

    def _pending_among(self, session: DeadLetterStore, letter_ids: list[str], filters: DeadLetterFilter) -> list[DeadLetter]:
        if not letter_ids and not filters.selects:
            raise ExchangerError("name the dead letters, or select them with a filter: nothing is settled wholesale by default")
        letters = [letter for letter in self._log(session).pending() if filters.admits(letter)]
        if letter_ids:
            letters = [letter for letter in letters if any(letter.id.startswith(i) for i in letter_ids if i)]
        return letters

    def _needs_log(self) -> None:
        if self.store is None:
            raise ExchangerError("replaying or purging a dead letter needs the message log, to record who did it")

    def _record(self, operator: Operator, action: str, letter: DeadLetter, outcome: str, why: str | None) -> None:
        details = {"dead_letter_id": letter.id, "stage": letter.stage, "reason": letter.reason, "replays": letter.replays}
        if why:
            details["why"] = why
        record_action(
            self.store,
            operator,
            action,
            outcome=outcome,
            message_id=letter.message_id,
            sender=letter.sender,
            message_type=letter.message_type,
            details=details,
            # The letter's digest files the action under a message refused before its id was read, too.
            digest=hashlib.sha256(letter.body).hexdigest(),
        )
