"""The layout of an evidence bundle: one zip, its file names, and how its records are written and read back."""

from __future__ import annotations

import json

from exchanger.journal.checkpoint import Checkpoint
from exchanger.journal.records import COLUMNS, Record

FORMAT = "exchanger-evidence/1"
MANIFEST = "manifest.json"
RECORDS = "records.json"  # the message's own records, every hashed column as stored
CHAIN = "chain.json"  # for each checkpoint, the other records between as content digests only
CHECKPOINTS = "checkpoints.json"
DOCUMENTS = "documents/"
CERTIFICATES = "certificates/"
PLATFORM_CERTIFICATE = f"{CERTIFICATES}platform.pem"
README = "README.txt"
# A bundle is a few documents and a chain path: anything this large is not one.
MAX_MEMBER_BYTES = 64 * 1024 * 1024
MAX_TOTAL_BYTES = 256 * 1024 * 1024
MAX_MEMBERS = 10_000

_RECORD_FIELDS = ("seq", *COLUMNS, "prev", "hash")


def record_to_json(record: Record) -> dict:
    """A record with its details as the exact stored text: its content digest is recomputed from it."""
    return {name: getattr(record, name) for name in _RECORD_FIELDS}


def record_from_json(value: dict) -> Record:
    """A record read back from a bundle (ValueError when a field is missing or of the wrong type)."""
    if not isinstance(value, dict) or set(value) != set(_RECORD_FIELDS):
        raise ValueError("a record must have exactly the fields " + ", ".join(_RECORD_FIELDS))
    if not isinstance(value["seq"], int) or not all(
        value[name] is None or isinstance(value[name], str) for name in _RECORD_FIELDS if name != "seq"
    ):
        raise ValueError("a record's seq is a number and its other fields text")
    return Record(**value)


def checkpoint_to_json(checkpoint: Checkpoint) -> dict:
    """A checkpoint as plain data."""
    return dict(vars(checkpoint))


def checkpoint_from_json(value: dict) -> Checkpoint:
    """A checkpoint read back from a bundle."""
    return Checkpoint(
        int(value["seq"]), str(value["hash"]), str(value["at"]), str(value["platform"]),
        str(value["certificate"]), str(value["signature"]),
    )


def dumps(value) -> bytes:
    """JSON as a bundle holds it: readable, UTF-8."""
    return json.dumps(value, indent=2, ensure_ascii=False, sort_keys=True).encode("utf-8")


README_TEXT = """Evidence bundle of the exchange for one message.

manifest.json     what is in the bundle, what is not and why
records.json      the message's records from the hash-chained message log, as stored
chain.json        for each signed checkpoint, the content digests of the other records between
                  the message's first record and the checkpoint (nothing else about them)
checkpoints.json  the platform's signed checkpoints that vouch for the records
documents/        the original bytes, the signed copies and the receipts the log kept
certificates/     the platform's certificate, the sender's, and the CA certificates they chain to

Check it offline:  exchanger evidence verify BUNDLE.zip [--ca CA.pem]
Check a document's XML signature with xmlsec1 (after unzipping):
  xmlsec1 --verify --trusted-pem certificates/ca-1.pem --enabled-key-data x509 documents/FILE.xml
"""
