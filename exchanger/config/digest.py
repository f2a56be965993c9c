"""The configuration's version: a digest over every file it is read from."""

from __future__ import annotations

import hashlib
from pathlib import Path

from lxml import etree

from exchanger.xml.parser import trusted_schema_parser


class Digest:
    """The config version: a digest over every file the configuration reads."""

    def __init__(self):
        self._hash = hashlib.sha256()
        self.files: list[Path] = []

    def add_file(self, path: Path) -> None:
        """Add one file's name and bytes (a missing file adds nothing, but is still watched)."""
        self.files.append(path)
        try:
            data = path.read_bytes()
        except OSError:
            return
        self._hash.update(str(path.name).encode() + b"\0" + data + b"\0")

    def add_schema(self, path: Path, seen: set[Path] | None = None) -> None:
        """Add an XSD and every local schema it includes or imports, so an edit to any of them is a new version."""
        seen = set() if seen is None else seen
        path = path.resolve()
        if path in seen:
            return
        seen.add(path)
        self.add_file(path)
        try:
            root = etree.parse(str(path), trusted_schema_parser()).getroot()
        except (OSError, etree.XMLSyntaxError):
            return
        for location in root.xpath("xs:include/@schemaLocation | xs:import/@schemaLocation | xs:redefine/@schemaLocation",
                                   namespaces={"xs": "http://www.w3.org/2001/XMLSchema"}):
            if "://" not in location:
                self.add_schema(path.parent / location, seen)

    def hexdigest(self) -> str:
        """The first 16 hex digits of the digest: the version shown in logs, headers and receipts."""
        return self._hash.hexdigest()[:16]
