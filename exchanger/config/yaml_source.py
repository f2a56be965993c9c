"""Read a YAML configuration file keeping the line of every key and item, so a problem can name where it is."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path
from typing import Any

import yaml

from exchanger.config.problems import Problems

_BASE_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)  # libyaml's parser when PyYAML was built with it


class MarkedDict(dict):
    """A YAML mapping that remembers the line of each of its keys."""

    line: int = 0
    lines: dict

    def line_of(self, key: Any) -> int:
        """The line of ``key`` (of the mapping itself when the key is absent)."""
        return self.lines.get(key, self.line)


class MarkedList(list):
    """A YAML sequence that remembers the line of each of its items."""

    line: int = 0
    lines: list

    def line_of(self, index: Any) -> int:
        """The line of item ``index`` (of the sequence itself when there is no such item)."""
        return self.lines[index] if isinstance(index, int) and 0 <= index < len(self.lines) else self.line


class _MarkedLoader(_BASE_LOADER):
    """A safe loader whose mappings and sequences keep their node's lines; it also notes duplicate keys."""

    def __init__(self, stream):
        super().__init__(stream)
        self.duplicates: list[tuple[Any, int, int]] = []  # (key, first line, repeated line)

    def construct_marked_map(self, node):
        data = MarkedDict()
        data.line = node.start_mark.line + 1
        data.lines = {}
        yield data
        self.flatten_mapping(node)
        for key_node, value_node in node.value:
            key = self.construct_object(key_node, deep=True)
            try:
                hash(key)
            except TypeError:
                raise yaml.constructor.ConstructorError(
                    "while constructing a mapping", node.start_mark, "found an unhashable key", key_node.start_mark
                ) from None
            line = key_node.start_mark.line + 1
            if key in data.lines:
                self.duplicates.append((key, data.lines[key], line))
            data.lines[key] = line
            data[key] = self.construct_object(value_node, deep=True)

    def construct_marked_seq(self, node):
        data = MarkedList()
        data.line = node.start_mark.line + 1
        data.lines = [item.start_mark.line + 1 for item in node.value]
        yield data
        data.extend(self.construct_object(item, deep=True) for item in node.value)


_MarkedLoader.add_constructor("tag:yaml.org,2002:map", _MarkedLoader.construct_marked_map)
_MarkedLoader.add_constructor("tag:yaml.org,2002:seq", _MarkedLoader.construct_marked_seq)


def read_yaml(path: Path, problems: Problems) -> dict[str, Any]:
    """The file's top-level mapping with its lines kept, or {} after adding why it cannot be read."""
    try:
        with path.open("rb") as stream:
            loader = _MarkedLoader(stream)
            try:
                data = loader.get_single_data()
            finally:
                loader.dispose()
    except OSError as exc:
        problems.add(str(path), f"cannot read: {exc.strerror or exc}")
        return {}
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"{path}:{mark.line + 1}" if mark else str(path)
        problems.add(where, f"not valid YAML: {getattr(exc, 'problem', None) or exc}")
        return {}
    for key, first, repeated in loader.duplicates:
        problems.add(f"{path}:{repeated}", f"`{key}` is given twice (first on line {first}): YAML would silently keep the last; say it once")
    if not isinstance(data, dict):
        problems.add(str(path), "must be a mapping at the top level (key: value lines)")
        return {}
    return data


def line_at(data: Any, path: Iterable[Any]) -> int | None:
    """The line of the key or item at ``path`` inside data read by read_yaml (the deepest one known)."""
    line = getattr(data, "line", None)
    node = data
    for step in path:
        line_of = getattr(node, "line_of", None)
        if line_of is None:
            break
        line = line_of(step)
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            break
    return line
