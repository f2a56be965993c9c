"""Every problem a configuration has, collected so an operator sees all of them at once."""

from __future__ import annotations

from exchanger.errors import ExchangerError


class ConfigError(ExchangerError):
    """The configuration cannot be used; ``problems`` lists every reason."""

    def __init__(self, problems: list[str]):
        self.problems = problems
        super().__init__("\n".join(problems))


class Problems:
    """Collects problems so an operator sees all of them at once."""

    def __init__(self):
        self.items: list[str] = []
        self._silenced: set[str] = set()

    def add(self, where: str, message: str) -> None:
        """Note one problem, located by a file:line or a dotted key path (unless that place is silenced)."""
        if not self._is_silenced(where):
            self.items.append(f"{where}: {message}")

    def silence(self, where: str) -> None:
        """Drop later problems at or below ``where``: the schema already reported that value and left it out."""
        self._silenced.add(_key(where))

    def _is_silenced(self, where: str) -> bool:
        key = _key(where)
        return any(key == s or key.startswith((s + ".", s + "[")) for s in self._silenced)

    def raise_if_any(self) -> None:
        """Raise ConfigError with every problem noted so far, if there is any."""
        if self.items:
            raise ConfigError(self.items)


def positive_int(section: dict, key: str, default: int, where: str, problems: Problems) -> int:
    """The value, or the default; the schema has reported (and left out) a value that is not a positive int."""
    value = section.get(key, default)
    if not isinstance(value, int) or isinstance(value, bool) or value <= 0:
        problems.add(f"{where}.{key}", f"must be a positive whole number, not {value!r}")
        return default
    return value


def _key(where: str) -> str:
    # The loader names a catalogue's places "FILE types.X" and the schema "FILE types.X" or "messages.types.X".
    return where.replace(" ", ".")
