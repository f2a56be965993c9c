"""Compiled XSD schemas: built once at config load, validated against at libxml2 speed."""

from __future__ import annotations

import itertools
import threading
from dataclasses import dataclass
from pathlib import Path

from lxml import etree

from exchanger.errors import ExchangerError
from exchanger.xml.parser import HARDENED_OPTIONS, trusted_schema_parser

# Re-read in slices so that a flood of errors is abandoned after at most one slice's worth of them.
_SLICE = 16 * 1024
# Up to this size a document is validated as a tree directly, errors with lines and paths: few enough elements
# that building every error's path (each costs time in proportion to the element's siblings) stays cheap.
TREE_VALIDATION_BYTES = 16 * 1024


@dataclass(frozen=True)
class SchemaViolation:
    """One XSD error, located in the instance."""

    line: int | None
    path: str | None
    message: str


@dataclass(frozen=True)
class CappedViolations:
    """At most ``limit`` violations of a document; ``more`` says whether others were left uncounted."""

    violations: list[SchemaViolation]
    more: bool


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

    def capped_violations(self, tree: etree._ElementTree, source: bytes, limit: int) -> CappedViolations:
        """Validate a document, building at most about ``limit`` error objects however many errors it holds.

        libxml2 records every error of a tree validation, each with its element path, which costs time
        proportional to the element's siblings: a document with many wrong elements costs quadratic time.
        So a larger document is first validated by libxml2 while it re-reads ``source`` (the bytes ``tree`` was
        parsed from), an error costing its message only, stopping after the slice in which the count passes
        ``limit``; only if it has few errors is it validated as a tree, for their lines and paths. A large
        document with many errors gets its first errors' messages, without line or path.
        """
        if self.engine == "xmlschema":
            found = list(itertools.islice(self._validator().iter_errors(tree), limit + 1))
            return CappedViolations(
                [SchemaViolation(getattr(e, "sourceline", None), e.path, e.reason or str(e)) for e in found[:limit]],
                len(found) > limit,
            )
        if len(source) > TREE_VALIDATION_BYTES:
            streamed, more = self._streamed(source, limit)
            if not streamed or more:
                return CappedViolations(streamed, more)
        found = self.violations(tree)
        return CappedViolations(found[:limit], len(found) > limit)

    def _streamed(self, source: bytes, limit: int) -> tuple[list[SchemaViolation], bool]:
        parser = etree.XMLParser(schema=self._validator(), **HARDENED_OPTIONS)
        for start in range(0, len(source), _SLICE):
            parser.feed(source[start : start + _SLICE])
            # feed_error_log is a copy: read once per slice, it stays short because the loop ends past the limit.
            log = parser.feed_error_log
            if len(log) > limit:
                return _located(log, limit), True
        try:
            parser.close()
        except etree.XMLSyntaxError:
            pass  # the errors are in the log
        return _located(parser.feed_error_log, limit), False


def _located(log, limit: int) -> list[SchemaViolation]:
    errors = (e for e in log if e.level >= etree.ErrorLevels.ERROR)
    return [SchemaViolation(e.line or None, None, e.message) for e in itertools.islice(errors, limit)]
