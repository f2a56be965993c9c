"""The shape of routes.yaml and of a message catalogue, as JSON Schema (how a departure is told: schema_check).

The schema decides which keys exist and what type each value has; the loader's cross-checks
(files, certificates, XPaths, references between sections) run on what the schema let through.
A value that fails the schema is reported with its file and line and then left out, so one typo
gives one problem, not a cascade, and never a traceback.
"""

from __future__ import annotations

from pathlib import Path

from exchanger.config.console import CONSOLE_SCHEMA
from exchanger.config.problems import Problems
from exchanger.config.schema_check import check, validator
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

_ROUTES = validator(ROUTES_SCHEMA)
_CATALOGUE = validator(CATALOGUE_SCHEMA)
_ENVELOPES = validator(ENVELOPES_SCHEMA)


def check_routes_file(data: dict, path: Path, problems: Problems) -> None:
    """Check a whole configuration (routes.yaml) against its schema; leave out what fails it."""
    check(_ROUTES, data, path, "", problems)


def check_catalogue_file(data: dict, path: Path, problems: Problems) -> None:
    """Check a message catalogue file against its schema; leave out what fails it."""
    check(_CATALOGUE, data, path, f"{path} ", problems)


def check_envelopes_file(data: dict, path: Path, problems: Problems) -> None:
    """Check an envelope catalogue file against its schema; leave out what fails it."""
    check(_ENVELOPES, data, path, f"{path} ", problems)
