"""How a stage says a message cannot go on: a located reason, and the permanent rejection that carries them."""

from __future__ import annotations

from dataclasses import dataclass

from exchanger.errors import ExchangerError


@dataclass(frozen=True)
class Reason:
    """One thing a person can act on: what failed, where, and why."""

    stage: str
    code: str
    message: str
    line: int | None = None
    path: str | None = None

    def describe(self) -> str:
        """Return the reason as one readable line."""
        where = []
        if self.line is not None:
            where.append(f"line {self.line}")
        if self.path:
            where.append(self.path)
        located = f" ({', '.join(where)})" if where else ""
        return f"[{self.stage}/{self.code}]{located} {self.message}"

    def as_dict(self) -> dict:
        """Return the reason as plain data for logs and headers."""
        data = {"stage": self.stage, "code": self.code, "message": self.message}
        if self.line is not None:
            data["line"] = self.line
        if self.path:
            data["path"] = self.path
        return data


class Rejected(ExchangerError):
    """A permanent failure: the message is wrong and retrying cannot help."""

    def __init__(self, reasons: list[Reason] | Reason):
        self.reasons = [reasons] if isinstance(reasons, Reason) else list(reasons)
        super().__init__("; ".join(r.describe() for r in self.reasons))

    @property
    def stage(self) -> str:
        """The stage that rejected the message."""
        return self.reasons[0].stage
