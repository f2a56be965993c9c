"""The shape of routes.yaml and of a message catalogue, as JSON Schema, and the check of a file against it.

The schema decides which keys exist and what type each value has; the loader's cross-checks
(files, certificates, XPaths, references between sections) run on what the schema let through.
A value that fails the schema is reported with its file and line and then left out, so one typo
gives one problem, not a cascade, and never a traceback.
"""

from __future__ import annotations

import difflib
from pathlib import Path
from typing import Any

from jsonschema import Draft202012Validator, validators

from exchanger.config.console import CONSOLE_SCHEMA
from exchanger.config.problems import Problems
from exchanger.config.yaml_source import line_at
from exchanger.envelopes.shapes import SHAPES
from exchanger.keys.sm2 import DEFAULT_SIGNER_ID, ENCODINGS, MAX_SIGNER_ID_BYTES
from exchanger.keys.trust import IDENTITY_FIELDS
from exchanger.participants import KINDS
from exchanger.receipts.formats import FORMAT_RECEIPTS, RECEIPT_FORMATS

_POSITIVE = {"type": "integer", "minimum": 1, "errorMessage": "must be a positive whole number"}
_TEXT = {"type": "string"}
_TEXTS = {"type": ["string", "array"], "items": _TEXT, "errorMessage": "must be a text or a list of texts"}
_XPATH = {"type": "string", "errorMessage": "must be an XPath (text)"}

# The structural limits of one message (their effect is the parser's; here only their shape).
LIMIT_KEYS = (
    "max_message_bytes",
    "max_depth",
    "max_elements",
    "max_attributes_per_element",
    "max_namespace_declarations",
    "max_namespaces_in_scope",
    "max_text_bytes",
    "max_signed_info_bytes",
)


def _mapping(properties: dict, **extra) -> dict:
    """An object with exactly these optional keys."""
    return {"type": "object", "properties": properties, "additionalProperties": False, **extra}


CATALOGUE_SCHEMA: dict = _mapping(
    {
        "namespaces": {"type": "object", "additionalProperties": _TEXT, "errorMessage": "must map prefixes to namespace URIs"},
        "types": {
            "type": "object",
            "additionalProperties": _mapping(
                {
                    "description": _TEXT,
                    "root": {"type": "string", "errorMessage": "must be a prefixed name such as dec:CustomsDeclaration"},
                    "xsd": {**_TEXTS, "minItems": 1},
                    "engine": {"enum": ["libxml2", "xmlschema"]},
                    "id": _XPATH,
                    "sender": _XPATH,
                    "receivers": _XPATH,
                    "fields": {"type": "object", "additionalProperties": _XPATH, "errorMessage": "must map field names to XPaths"},
                    "answers": _XPATH,
                    "format_receipt": {"enum": list(FORMAT_RECEIPTS)},
                    "signed_by": {"enum": ["itself", "envelope"]},
                },
                required=["root", "xsd", "id", "sender"],
            ),
        },
    }
)

# An envelope format: a catalogue entry (root, xsd, identity XPaths) plus what carries, answers and writes it.
_ENVELOPE = _mapping(
    {
        "description": _TEXT,
        "root": {"type": "string", "errorMessage": "must be a prefixed name such as dxp:DxpMsg"},
        "xsd": {**_TEXTS, "minItems": 1},
        "engine": {"enum": ["libxml2", "xmlschema"]},
        "id": _XPATH,
        "sender": _XPATH,
        "receivers": _XPATH,
        "message_type": _XPATH,
        "message_type_names": {"enum": ["root", "type"]},
        "created": _XPATH,
        "relay_path": _XPATH,
        "payload": _XPATH,
        "payload_encoding": {"enum": ["base64"]},
        "receipt": {"enum": [name for name in RECEIPT_FORMATS if name not in FORMAT_RECEIPTS]},
        "shape": {"enum": list(SHAPES)},
        "inbound": {"type": "boolean", "errorMessage": "must be true or false"},
    },
    required=["root", "xsd", "id", "sender", "message_type", "payload", "receipt", "shape"],
)

ENVELOPES_SCHEMA: dict = _mapping(
    {
        "namespaces": {"type": "object", "additionalProperties": _TEXT, "errorMessage": "must map prefixes to namespace URIs"},
        "envelopes": {"type": "object", "additionalProperties": _ENVELOPE, "errorMessage": "must map envelope names to their entries"},
    },
    required=["envelopes"],
)

_PARTICIPANT = _mapping(
    {
        "kind": {"enum": sorted(KINDS - {"platform"})},
        "name": _TEXT,
        "amqp_user": _TEXT,
        "certificates": _TEXTS,
        "envelope": {"type": "string", "errorMessage": "must name an envelope of the envelope catalogue, such as dxp"},
        # A peer e-port's link: the broker and user its copies are shovelled to (exchanger.transport.links).
        "link": _mapping(
            {
                "url": {"type": "string", "pattern": "^amqps?://", "errorMessage": "must be an amqp:// or amqps:// URL"},
                "password_file": _TEXT,
                "reconnect_delay": _POSITIVE,
            },
            required=["url"],
        ),
        # A peer e-port's trust domain: the anchors its signers chain to and whom it vouches for (keys.domains).
        "domain": _mapping(
            {
                "anchors": _TEXTS,
                "crls": _TEXTS,
                "identity_field": {"enum": list(IDENTITY_FIELDS)},
                "expiry_warning_days": _POSITIVE,
                "members": _TEXTS,
            },
            required=["anchors", "crls"],
        ),
    },
    required=["kind"],
)

_ROUTE = _mapping(
    {
        "id": _TEXT,
        "description": _TEXT,
        "types": _TEXTS,
        "type": _TEXTS,
        "from": _TEXTS,
        "to": _TEXTS,
        "deliver": _TEXTS,
        "when": _XPATH,
        "approval": _mapping(
            {"by": _TEXT, "ref": {"type": ["string", "integer"]}},
            required=["by", "ref"],
            errorMessage="must name the approving authority and its reference: {by: ..., ref: ...}",
        ),
    }
)

ROUTES_SCHEMA: dict = _mapping(
    {
        "version": {"enum": [1], "errorMessage": "must be 1, the only format of this file there is"},
        "platform": _mapping(
            {
                "id": _TEXT,
                "name": _TEXT,
                "key": _TEXT,
                "certificate": _TEXT,
                "node_id": {
                    "type": "string",
                    "pattern": "^.{1,8}$",
                    "errorMessage": "must be the exchange's DXP node id, 1 to 8 characters",
                },
            }
        ),
        "messages": {
            "type": ["string", "object"],
            "errorMessage": "must name the catalogue file or hold the catalogue inline",
            "if": {"type": "object"},
            "then": CATALOGUE_SCHEMA,
        },
        "envelopes": {
            "type": ["string", "object"],
            "errorMessage": "must name the envelope catalogue file or hold it inline",
            "if": {"type": "object"},
            "then": ENVELOPES_SCHEMA,
        },
        "keys_dir": _TEXT,
        "trust": _mapping(
            {
                "anchors": _TEXTS,
                "crls": _TEXTS,
                "identity_field": {"enum": list(IDENTITY_FIELDS)},
                "expiry_warning_days": _POSITIVE,
            }
        ),
        "signatures": _mapping(
            {
                "sm2": _mapping(
                    {
                        "signer_id": {
                            "type": "string",
                            "minLength": 1,
                            "maxLength": MAX_SIGNER_ID_BYTES,
                            "errorMessage": f"must be a text of 1 to {MAX_SIGNER_ID_BYTES} bytes "
                            f"(the SM2 signer ID; the standard one is {DEFAULT_SIGNER_ID})",
                        },
                        "encoding": {"enum": list(ENCODINGS)},
                    }
                )
            }
        ),
        "limits": _mapping({key: _POSITIVE for key in LIMIT_KEYS}),
        "journal": _mapping(
            {
                "url": {"type": "string", "errorMessage": "must be sqlite:///PATH or postgresql://..."},
                "keep_originals": {"enum": ["rejected", "all", "none"]},
                "checkpoint": _mapping({"records": _POSITIVE, "seconds": _POSITIVE}),
                "retention": {"type": "string", "errorMessage": "must be a period such as 90d, 12h or 2w"},
            }
        ),
        "broker": _mapping(
            {"delivery_limit": _POSITIVE, "prefetch": _POSITIVE, "heartbeat": _POSITIVE, "daemon_user": _TEXT}
        ),
        "metrics": _mapping(
            {
                "bind": _TEXT,
                "port": {
                    "type": "integer",
                    "minimum": 0,
                    "maximum": 65535,
                    "errorMessage": "must be a TCP port number (0 picks a free one)",
                },
            }
        ),
        "console": CONSOLE_SCHEMA,
        "participants": {
            "type": "object",
            "errorMessage": "must map participant ids to their kind, name and certificates",
            "propertyNames": {
                "pattern": "^[a-z0-9][a-z0-9-]{1,31}$",
                "errorMessage": "id must be 2-32 characters of a-z, 0-9 and '-', starting with a letter or digit",
            },
            "additionalProperties": _PARTICIPANT,
        },
        "routes": {"type": "array", "errorMessage": "must be a list of at least one rule", "items": _ROUTE},
    }
)

# A whole number is an int, not True and not 2.0: YAML gives each its own type, and the loader wants ints.
_TYPES = Draft202012Validator.TYPE_CHECKER.redefine(
    "integer", lambda _checker, value: isinstance(value, int) and not isinstance(value, bool)
)
_Validator = validators.extend(Draft202012Validator, type_checker=_TYPES)
_ROUTES = _Validator(ROUTES_SCHEMA)
_CATALOGUE = _Validator(CATALOGUE_SCHEMA)
_ENVELOPES = _Validator(ENVELOPES_SCHEMA)

_TYPE_WORDS = {
    "object": "a mapping (key: value)",
    "array": "a list",
    "string": "a text",
    "integer": "a whole number",
    "number": "a number",
    "boolean": "true or false",
    "null": "empty",
}


def check_routes_file(data: dict, path: Path, problems: Problems) -> None:
    """Check a whole configuration (routes.yaml) against its schema; leave out what fails it."""
    _check(_ROUTES, data, path, "", problems)


def check_catalogue_file(data: dict, path: Path, problems: Problems) -> None:
    """Check a message catalogue file against its schema; leave out what fails it."""
    _check(_CATALOGUE, data, path, f"{path} ", problems)


def check_envelopes_file(data: dict, path: Path, problems: Problems) -> None:
    """Check an envelope catalogue file against its schema; leave out what fails it."""
    _check(_ENVELOPES, data, path, f"{path} ", problems)


def _check(validator, data: dict, path: Path, label: str, problems: Problems) -> None:
    found: list[tuple[int, str, str]] = []
    doomed: list[list] = []
    errors = list(validator.iter_errors(data))
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
