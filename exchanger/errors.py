"""The one exception base of the exchange, so a command can tell its own errors from a bug."""

from __future__ import annotations

from pathlib import Path


class ExchangerError(Exception):
    """An error the exchange raises on purpose, with a message an operator can act on."""


class FileProblem(ExchangerError):
    """A file a command needs cannot be read (missing, unreadable, or not what it should hold)."""

    def __init__(self, path: Path | str, what: str, reason: str):
        self.path = Path(path)
        self.what = what
        self.reason = reason
        super().__init__(f"{what} {self.path}: {reason}")
