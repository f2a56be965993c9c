"""Compiled XSD schemas: built once at config load, validated against at libxml2 speed."""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from exchanger.errors import ExchangerError
from exchanger.xml.parser import trusted_schema_parser


@dataclass(frozen=True)
class SchemaViolation:
    """One XSD error, located in the instance."""

    line: int | None
    path: str | None
    message: str


class SchemaLoadError(ExchangerError, ValueError):
    """An XSD (or the set of them) does not compile."""


def _wrapper_schema(paths: list[Path]) -> bytes:
    """An XSD that imports several independent schemas so they validate together."""
    imports = []
    for path in paths:
        target = etree.parse(str(path), trusted_schema_parser()).getroot().get("targetNamespace")
        ns = f' namespace="{target}"' if target else ""
        imports.append(f'  <xs:import{ns} schemaLocation="{path.resolve().as_uri()}"/>')
    return (
        '<xs:schema xmlns:xs="http://www.w3.org/2001/XMLSchema">\n' + "\n".join(imports) + "\n</xs:schema>"
    ).encode()


class CompiledSchema:
    """One message type's schema: libxml2 by default, ``xmlschema`` for XSDs libxml2 cannot compile."""

    def __init__(self, paths: list[Path], engine: str = "libxml2"):
        self.paths = paths
        self.engine = engine
        self._local = threading.local()
        # Compile once now so a broken schema fails the config load, not the first message.
        self._compile()

    def _compile(self):
        if self.engine == "xmlschema":
            import xmlschema

            try:
                return xmlschema.XMLSchema([str(p) for p in self.paths] if len(self.paths) > 1 else str(self.paths[0]))
            except (xmlschema.XMLSchemaException, OSError) as exc:
                raise SchemaLoadError(f"{', '.join(map(str, self.paths))}: {exc}") from None
        try:
            if len(self.paths) == 1:
                doc = etree.parse(str(self.paths[0]), trusted_schema_parser())
            else:
                doc = etree.ElementTree(etree.fromstring(_wrapper_schema(self.paths), trusted_schema_parser()))
            return etree.XMLSchema(doc)
        except (etree.XMLSchemaParseError, etree.XMLSyntaxError, OSError) as exc:
            raise SchemaLoadError(f"{', '.join(map(str, self.paths))}: {exc}") from None

    def _validator(self):
        # libxml2 schema validation contexts are not thread-safe: one compiled copy per thread.
        validator = getattr(self._local, "validator", None)
        if validator is None:
            validator = self._local.validator = self._compile()
        return validator

    def violations(self, tree: etree._ElementTree) -> list[SchemaViolation]:
        """Validate a parsed document; return every violation (empty when valid)."""
        validator = self._validator()
        if self.engine == "xmlschema":
            return [
                SchemaViolation(getattr(err, "sourceline", None), err.path, err.reason or str(err))
                for err in validator.iter_errors(tree)
            ]
        if validator.validate(tree):
            return []
        return [SchemaViolation(err.line or None, err.path or None, err.message) for err in validator.error_log]
