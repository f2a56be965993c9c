"""How a configuration file's departures from its JSON Schema are told, and left out of what is loaded.

Each problem names its file, line and dotted key, in words an operator reads (a mistyped key gets its
likely spelling); what fails the schema is removed so the loader's cross-checks do not trip on it again.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators

from exchanger.config.problems import Problems
from exchanger.config.yaml_source import line_at

# A whole number is an int, not True and not 2.0: YAML gives each its own type, and the loader wants ints.
_TYPES = Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
)
_Validator = validators.extend(Draft202012Validator, type_checker=_TYPES)

_TYPE_WORDS = {
    "object": "a mapping (key: value)",
    "array": "a list",
    "string": "a text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "empty",
}


def validator(schema: dict):
    """A validator of one schema, integers being ints (built once per schema by its owner)."""
    return _Validator(schema)


def check(schema_validator, data: dict, path: Path, label: str, problems: Problems) -> None:
    """Report every way ``data`` fails the validator's schema, with file and line, and leave out what fails."""
    found: list[tuple[int, str, str]] = []
    doomed: list[list] = []
    errors = list(schema_validator.iter_errors(data))
    # A required key that is only mistyped is said once: as the unknown key and its suggestion.
    suggested = {
        (tuple(map(str, error.absolute_path)), name)
        for error in errors
        if error.validator == "additionalProperties"
        for key in _extra_keys(error.instance, error.schema)
        for name in _suggestions(key, list(error.schema.get("properties", {})))
    }
    for error in errors:
        at = list(error.absolute_path)
        if error.validator == "additionalProperties":
            known = list(error.schema.get("properties", {}))
            for key in _extra_keys(error.instance, error.schema):
                found.append((line_at(data, [*at, key]) or 0, _dotted(data, [*at, key]), _unknown(key, known)))
                doomed.append([*at, key])
            continue
        if "propertyNames" in error.relative_schema_path:
            at = [*at, error.instance]
        doomed.append(at)
        if error.validator == "required":
            missing = [k for k in error.validator_value if k not in error.instance]
            if all((tuple(map(str, at)), k) in suggested for k in missing):
                continue
        found.append((line_at(data, at) or 0, _dotted(data, at), _describe(error)))
    for line, dotted, message in sorted(found, key=lambda item: item[0]):
        problems.add(f"{path}:{line}" if line else str(path), f"{dotted or '(top level)'}: {message}")
    doomed = [at for at in doomed if at]  # the top level itself is never left out
    for at in _outermost(doomed):
        problems.silence(label + _dotted(data, at))
    _remove(data, doomed)


def _extra_keys(instance: Any, schema: dict) -> list:
    known = schema.get("properties", {})
    return [key for key in instance if key not in known] if isinstance(instance, dict) else []


def _suggestions(key: Any, known: list[str]) -> list[str]:
    """The known keys the operator most likely meant: those one slip away (a letter dropped, added, changed
    or swapped, which catches short keys such as `by`), else the closest one by difflib's ratio."""
    text = str(key)
    one_slip = [name for name in known if _one_slip(text, name)]
    if one_slip:
        return difflib.get_close_matches(text, one_slip, n=len(one_slip), cutoff=0.0)
    return difflib.get_close_matches(text, known, n=1, cutoff=0.6)


def _one_slip(a: str, b: str) -> bool:
    """True when b is a with one letter dropped, added, changed, or swapped with its neighbour."""
    if a == b or abs(len(a) - len(b)) > 1:
        return False
    if len(a) != len(b):
        short, long = (a, b) if len(a) < len(b) else (b, a)
        return any(long[:i] + long[i + 1:] == short for i in range(len(long)))
    diffs = [i for i in range(len(a)) if a[i] != b[i]]
    if len(diffs) == 1:
        return True
    first, second = (diffs + [None, None])[:2]
    return len(diffs) == 2 and second == first + 1 and (a[first], a[second]) == (b[second], b[first])


def _unknown(key: Any, known: list[str]) -> str:
    suggestions = _suggestions(key, known)
    if suggestions:
        return f"unknown key (did you mean {' or '.join(f'`{name}`' for name in suggestions)}?)"
    return f"unknown key (known here: {', '.join(known)})"


def _describe(error) -> str:
    """The error in the operator's words: the schema's own message where it has one, else one per kind of check."""
    value = error.instance
    custom = error.schema.get("errorMessage")
    kind = error.validator
    if kind == "required":
        missing = [key for key in error.validator_value if key not in value]
        return f"needs {', '.join(f'`{key}`' for key in missing)}"
    if kind == "pattern" and custom:
        return custom
    if kind == "enum" and not custom:
        return f"must be one of {', '.join(map(str, error.validator_value))}, not {value!r}"
    if custom:
        return f"{custom}, not {_shown(value)}"
    if kind == "type":
        wanted = error.validator_value if isinstance(error.validator_value, list) else [error.validator_value]
        return f"must be {' or '.join(_TYPE_WORDS.get(w, w) for w in wanted)}, not {_shown(value)}"
    if kind in ("minItems", "minProperties"):
        return "must not be empty"
    return error.message


def _shown(value: Any) -> str:
    if isinstance(value, dict):
        return "a mapping"
    if isinstance(value, list):
        return "a list"
    text = repr(value)
    return text if len(text) <= 60 else text[:57] + "..."


def _dotted(data: Any, at: list) -> str:
    """A location as the loader names it: keys joined by dots, a rule or item by its id (else #n)."""
    parts: list[str] = []
    node = data
    for step in at:
        if isinstance(node, list) and isinstance(step, int):
            item = node[step] if 0 <= step < len(node) else None
            label = item.get("id") if isinstance(item, dict) else None
            if isinstance(label, str) and label:
                parts.append(f".{label}")
            elif isinstance(item, dict):
                parts.append(f".#{step + 1}")
            else:
                parts.append(f"[{step}]")
        else:
            parts.append(f".{step}")
        try:
            node = node[step]
        except (KeyError, IndexError, TypeError):
            node = None
    return "".join(parts).lstrip(".")


def _outermost(paths: list[list]) -> list[list]:
    """The paths not inside another one of them."""
    unique = sorted({tuple(map(str, p)): p for p in paths}.items())
    kept: list[tuple[tuple, list]] = []
    for key, path in unique:
        if not any(key[: len(outer)] == outer for outer, _ in kept):
            kept.append((key, path))
    return [path for _, path in kept]


def _remove(data: Any, paths: list[list]) -> None:
    """Leave out every value at these paths (list items last to first, so indices stay right)."""
    targets = []
    for path in _outermost(paths):
        parent = data
        try:
            for step in path[:-1]:
                parent = parent[step]
        except (KeyError, IndexError, TypeError):
            continue
        targets.append((parent, path[-1]))
    for parent, key in sorted(targets, key=lambda t: t[1] if isinstance(t[1], int) else -1, reverse=True):
        try:
            del parent[key]
        except (KeyError, IndexError, TypeError):
            pass
