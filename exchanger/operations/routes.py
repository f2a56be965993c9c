"""Route changes for operators: preview a new configuration, apply it atomically with the previous one kept, explain."""

from __future__ import annotations

import fcntl
import hashlib
import os
import tempfile
from collections.abc import Callable
from contextlib import contextmanager
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path

from exchanger.config import Config, ConfigError, load_config
from exchanger.errors import ExchangerError
from exchanger.journal.store import Store
from exchanger.operations.actor import Operator, record_action
from exchanger.pipeline.explain import Explanation, explain_document
from exchanger.routing.diff import RoutingDiff, diff

__all__ = [
    "MAX_CONFIG_BYTES", "AppliedChange", "ConfigRejected", "Problem", "RoutePreview",
    "apply", "current_text", "diff_lines", "explain", "preview", "previous_dir",
]

MAX_CONFIG_BYTES = 1024 * 1024  # a configuration is a few kilobytes; a megabyte is a mistake or an attack
PREVIOUS_SUFFIX = ".previous"


@dataclass(frozen=True)
class Problem:
    """One reason a configuration cannot be used, and where: ``routes.yaml:12`` or a dotted key path."""

    location: str
    message: str

    @classmethod
    def parse(cls, text: str) -> Problem:
        """Split the loader's ``where: message`` line."""
        location, sep, message = text.partition(": ")
        return cls(location, message) if sep else cls("", text)

    def __str__(self) -> str:
        return f"{self.location}: {self.message}" if self.location else self.message


class ConfigRejected(ExchangerError):
    """A new configuration was refused and nothing changed; ``problems`` holds every reason."""

    def __init__(self, problems: list[Problem]):
        self.problems = problems
        super().__init__("the new configuration was refused, nothing changed:\n" + "\n".join(f"  {p}" for p in problems))


@dataclass
class RoutePreview:
    """What a new configuration would do: every problem the loader finds, else the routing difference."""

    problems: list[Problem] = field(default_factory=list)
    diff: RoutingDiff | None = None
    version_before: str | None = None
    version_after: str | None = None
    unchanged_text: bool = False

    @property
    def ok(self) -> bool:
        """True when the new configuration loads and passes every check."""
        return not self.problems

    @property
    def lines(self) -> list[str]:
        """The routing difference in words (empty when routing would not change)."""
        return diff_lines(self.diff) if self.diff is not None else []


@dataclass(frozen=True)
class AppliedChange:
    """A configuration written in place: where the previous one is kept, the versions, the diff, the reload."""

    path: Path
    previous: Path | None
    version_before: str | None
    version_after: str
    diff_lines: list[str]
    reloaded: bool
    reload_problem: str | None = None


def current_text(config_path: Path | str) -> str:
    """The configuration file as it is now."""
    path = Path(config_path)
    try:
        return path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as exc:
        raise ExchangerError(f"cannot read the configuration {path}: {getattr(exc, 'strerror', None) or exc}") from exc


def previous_dir(config_path: Path | str) -> Path:
    """Where earlier versions are kept: ``routes.yaml.previous/`` beside the file, one ``<UTC stamp>.yaml`` each."""
    path = Path(config_path)
    return path.with_name(path.name + PREVIOUS_SUFFIX)


def preview(config_path: Path | str, new_text: str) -> RoutePreview:
    """Load ``new_text`` as the daemon and ``routes check`` would (from the same folder), and diff it with the current."""
    path = Path(config_path)
    result = RoutePreview()
    try:
        after = _load_text(path, new_text)
    except ConfigRejected as exc:
        result.problems = exc.problems
        return result
    result.version_after = after.version
    try:
        before = load_config(path)
    except ConfigError:
        before = None  # a broken current file: nothing to diff with, and nothing stops replacing it
    if before is not None:
        result.version_before = before.version
        result.diff = diff(before, after)
    try:
        result.unchanged_text = current_text(path) == new_text
    except ExchangerError:
        result.unchanged_text = False
    return result


def apply(config_path: Path | str, new_text: str, operator: Operator, store: Store,
          reload: Callable[[], None] | None = None, *, base_text: str | None = None) -> AppliedChange:
    """Write ``new_text`` as the configuration, keeping the previous file, record the change, then reload.

    Refused with every problem (ConfigRejected; the refusal is recorded, the file untouched) when the
    text fails the loader, or when ``base_text`` (what the operator edited) is no longer the current
    file because someone changed it meanwhile. ``reload`` is the running daemon's reload when the
    caller has one; a failure there is reported in the result, the new file staying in place.
    """
    path = Path(config_path)
    with _locked(path):
        checked = preview(path, new_text)
        problems = list(checked.problems)
        if base_text is not None and current_text(path) != base_text:
            problems.append(Problem(str(path), "changed by someone else since it was opened for editing: "
                                               "reload the current version and edit again"))
        if problems:
            record_action(store, operator, "route-change-refused", outcome="refused",
                          details={"file": str(path), "problems": [str(p) for p in problems]})
            raise ConfigRejected(problems)
        old = path.read_bytes() if path.exists() else None
        kept = _keep_previous(path, old) if old is not None else None
        _write_atomically(path, new_text.encode("utf-8"))
        lines = checked.lines
        record_action(
            store, operator, "route-change",
            details={
                "file": str(path),
                "previous": str(kept) if kept else None,
                "version_before": checked.version_before,
                "version_after": checked.version_after,
                "sha256_before": hashlib.sha256(old).hexdigest() if old is not None else None,
                "sha256_after": hashlib.sha256(new_text.encode("utf-8")).hexdigest(),
                "diff": lines or ["no routing difference"],
            },
            config_version=checked.version_after,
        )
    reloaded, problem = False, None
    if reload is not None:
        try:
            reload()
            reloaded = True
        except Exception as exc:  # noqa: BLE001  (the file is written and recorded; the operator must hear why the reload failed)
            problem = str(exc) or type(exc).__name__
    return AppliedChange(path, kept, checked.version_before, checked.version_after, lines, reloaded, problem)


def explain(config: Config, document: bytes) -> Explanation:
    """What the daemon would do with a document under this configuration (``routes explain``)."""
    return explain_document(config, document)


def diff_lines(change: RoutingDiff) -> list[str]:
    """A routing difference as plain lines: participants and types, envelopes, routes, destinations per type."""
    lines = []
    for label, names in (
        ("participants added", change.participants_added),
        ("participants removed", change.participants_removed),
        ("message types added", change.types_added),
        ("message types removed", change.types_removed),
    ):
        if names:
            lines.append(f"{label}: {', '.join(sorted(names))}")
    for pid, (before, after) in sorted(change.envelopes_changed.items()):
        lines.append(f"~ {pid} takes its copies in the {after} envelope (was {before})")
    for sign, routes in (("+", change.added), ("-", change.removed)):
        for route in routes:
            lines.append(f"{sign} route {route.id}: {', '.join(sorted(route.types))} from {route.senders} "
                         f"deliver {', '.join(route.deliver)}")
    for route, changes in change.changed:
        lines.append(f"~ route {route.id}: " + "; ".join(changes))
    for message_type in sorted(change.gained.keys() | change.lost.keys()):
        lines.extend(f"{message_type} gains destination: {t}" for t in sorted(change.gained.get(message_type, ())))
        lines.extend(f"{message_type} loses destination: {t}" for t in sorted(change.lost.get(message_type, ())))
    return lines


# ---- files ------------------------------------------------------------------------------------------


def _load_text(path: Path, text: str) -> Config:
    """Load the text with the real loader from a file beside ``path`` (relative paths resolve alike)."""
    size = len(text.encode("utf-8"))
    if size > MAX_CONFIG_BYTES:
        raise ConfigRejected([Problem(str(path), f"{size} bytes is more than a configuration may hold ({MAX_CONFIG_BYTES})")])
    if "\x00" in text:
        raise ConfigRejected([Problem(str(path), "the text holds a NUL character: it is not a YAML configuration")])
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".check", dir=path.parent)
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        try:
            return load_config(Path(name))
        except ConfigError as exc:
            # The problems name the file being checked; the operator knows it as the configuration itself.
            raise ConfigRejected([Problem.parse(p.replace(name, str(path))) for p in exc.problems]) from exc
    finally:
        Path(name).unlink(missing_ok=True)


@contextmanager
def _locked(path: Path):
    """One change at a time per configuration file, across processes (the CLI and the console)."""
    lock = path.with_name(f".{path.name}.lock")
    with open(lock, "a") as handle:
        fcntl.flock(handle, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(handle, fcntl.LOCK_UN)


def _keep_previous(path: Path, old: bytes) -> Path:
    folder = previous_dir(path)
    folder.mkdir(mode=0o750, exist_ok=True)
    stamp = datetime.now(timezone.utc).strftime("%Y%m%dT%H%M%S.%fZ")
    kept = folder / f"{stamp}.yaml"
    _write_atomically(kept, old, mode=path.stat().st_mode & 0o777)
    return kept


def _write_atomically(path: Path, data: bytes, mode: int | None = None) -> None:
    """Write beside the target, flush to disk, then rename over it: a reader sees the old file or the new one."""
    if mode is None:
        mode = path.stat().st_mode & 0o777 if path.exists() else 0o640
    handle, name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".new", dir=path.parent)
    try:
        with os.fdopen(handle, "wb") as out:
            out.write(data)
            out.flush()
            os.fsync(out.fileno())
        os.chmod(name, mode)
        os.replace(name, path)
    except BaseException:
        Path(name).unlink(missing_ok=True)
        raise
    directory = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(directory)
    finally:
        os.close(directory)
