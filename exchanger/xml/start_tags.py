"""Long start tags read from the bytes, so that one holding too many attributes or declarations is refused
before libxml2 spends its time on it.

libxml2 reads a start tag whole before it reports anything, and a single tag may be the whole 10 MiB of a
message: a million declarations or attributes cost it about a second before any limit can be checked on the
tree. A start tag holds no "<", so only a run of bytes between two "<" longer than a slice can hold such a tag;
those few runs are walked item by item, and the walk stops at the first item over a limit. Every search moves
forward only, so the walk is linear in the bytes and bounded in the items it looks at.
"""

from __future__ import annotations

from typing import NamedTuple

# Shorter tags are left to libxml2: at this size one costs it well under a millisecond.
LONG_RUN = 64 * 1024
_NOT_START = frozenset(b"/!?")


class OverlongTag(NamedTuple):
    """A start tag over a limit: the limit's code, what is wrong, and the line the tag starts on."""

    code: str
    message: str
    line: int


def overlong_start_tag(data: bytes, max_attributes: int, max_declarations: int) -> OverlongTag | None:
    """The first start tag with more attributes or namespace declarations than allowed, read from the bytes.

    Only for ASCII-compatible encodings; a tag that is not well formed is left to libxml2 to refuse.
    """
    for start in _long_runs(data, LONG_RUN):
        if start < len(data) and data[start] not in _NOT_START:
            found = _walk(data, start, max_attributes, max_declarations)
            if found:
                return found
    return None


def _long_runs(data: bytes, threshold: int):
    """The offsets just after each "<" whose run to the next "<" (or the end) is longer than threshold.

    With threshold at least a slice, a long run crosses a slice's edge, so two searches per slice find them all.
    """
    run_start = None  # just after the last "<" seen
    for slice_start in range(0, len(data), threshold):
        first = data.find(b"<", slice_start, slice_start + threshold)
        if first < 0:
            continue
        if run_start is not None and first - run_start > threshold:
            yield run_start
        run_start = data.rfind(b"<", first, slice_start + threshold) + 1
    if run_start is not None and len(data) - run_start > threshold:
        yield run_start


class _Cursor:
    """Forward-only searches over one run: each byte's next position is remembered until the walk passes it."""

    def __init__(self, data: bytes, end: int):
        self.data = data
        self.end = end
        self._next: dict[bytes, int] = {}

    def find(self, byte: bytes, position: int) -> int:
        """The position of byte at or after position within the run, or -1."""
        known = self._next.get(byte)
        if known is None or (0 <= known < position):
            known = self.data.find(byte, position, self.end)
            self._next[byte] = known
        return known


def _walk(data: bytes, start: int, max_attributes: int, max_declarations: int) -> OverlongTag | None:
    """Count the tag's declarations and attributes, item by item, stopping at the first over its limit."""
    end = data.find(b"<", start)
    cursor = _Cursor(data, len(data) if end < 0 else end)
    position = start
    declarations = attributes = 0
    while True:
        equals, closing = cursor.find(b"=", position), cursor.find(b">", position)
        if equals < 0 or 0 <= closing < equals:
            return None  # the tag ends (or is malformed) before another attribute
        name = data[position:equals].split()[-1:]
        if not name:
            return None
        value_start = _next_quote(cursor, equals + 1)
        if value_start < 0 or data[equals + 1 : value_start].strip():
            return None
        value_end = cursor.find(data[value_start : value_start + 1], value_start + 1)
        if value_end < 0:
            return None
        position = value_end + 1
        if name[0] == b"xmlns" or name[0].startswith(b"xmlns:"):
            declarations += 1
            if declarations > max_declarations:
                message = f"an element declares more than {max_declarations} namespaces"
                return OverlongTag("limits.namespaces-in-scope", message, _line(data, start))
        else:
            attributes += 1
            if attributes > max_attributes:
                message = f"an element has more than {max_attributes} attributes"
                return OverlongTag("limits.attributes", message, _line(data, start))


def _next_quote(cursor: _Cursor, position: int) -> int:
    """The first quote of either kind at or after position, or -1."""
    found = [at for at in (cursor.find(b'"', position), cursor.find(b"'", position)) if at >= 0]
    return min(found, default=-1)


def _line(data: bytes, offset: int) -> int:
    return data.count(b"\n", 0, offset) + 1
