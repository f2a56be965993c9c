"""The message catalogue: each type's root, XSD and identity XPaths, compiled and checked."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from lxml import etree

from exchanger.catalogue import SIGNED_BY_ITSELF, Catalogue, MessageType
from exchanger.config.digest import Digest
from exchanger.config.problems import Problems
from exchanger.config.schema import check_catalogue_file
from exchanger.config.yaml_source import read_yaml
from exchanger.xml.schema import CompiledSchema, SchemaLoadError


def as_list(value: Any) -> list:
    """A scalar as a one-item list, a list as it is, nothing as []."""
    if value is None:
        return []
    return list(value) if isinstance(value, (list, tuple)) else [value]


def compile_xpath(expr: Any, namespaces: dict[str, str], where: str, problems: Problems) -> etree.XPath | None:
    """Compile an XPath with the catalogue's prefixes, or note why it does not compile."""
    if not isinstance(expr, str) or not expr.strip():
        problems.add(where, "must be a non-empty XPath string")
        return None
    try:
        return etree.XPath(expr, namespaces=namespaces, smart_strings=False)
    except (etree.XPathSyntaxError, ValueError) as exc:
        # ValueError: a control character, which lxml refuses before compiling.
        problems.add(where, f"XPath {expr!r} does not compile: {exc}")
        return None


def _clark(qname: str, namespaces: dict[str, str], where: str, problems: Problems) -> str | None:
    if not isinstance(qname, str) or not qname:
        problems.add(where, "root must be a prefixed name such as dec:CustomsDeclaration")
        return None
    if qname.startswith("{"):
        return qname
    prefix, _, local = qname.rpartition(":")
    if not prefix:
        return local
    if prefix not in namespaces:
        problems.add(where, f"prefix {prefix!r} is not declared under namespaces")
        return None
    return f"{{{namespaces[prefix]}}}{local}"


def compile_type(
    name: str,
    spec: dict,
    namespaces: dict[str, str],
    base: Path,
    at: str,
    problems: Problems,
    digest: Digest,
    schemas: dict[tuple, CompiledSchema],
    field_at=None,
) -> MessageType | None:
    """One catalogue entry (root, xsd, id, sender, receivers, fields) compiled, or None after noting its problems.

    ``field_at`` names where a field is written (default: under ``fields``); envelopes keep theirs at the top.
    """
    field_at = field_at or (lambda field_name: f"{at}.fields.{field_name}")
    root = _clark(spec.get("root"), namespaces, f"{at}.root", problems)
    xsd_paths = [base / p for p in as_list(spec.get("xsd"))]
    schema = None
    if not xsd_paths:
        problems.add(f"{at}.xsd", "names no schema: every message type needs an XSD")
    else:
        for p in xsd_paths:
            digest.add_schema(p)
        missing = [str(p) for p in xsd_paths if not p.is_file()]
        if missing:
            problems.add(f"{at}.xsd", f"schema file not found: {', '.join(missing)}")
        else:
            key = (tuple(p.resolve() for p in xsd_paths), spec.get("engine", "libxml2"))
            try:
                schema = schemas.get(key) or schemas.setdefault(key, CompiledSchema(xsd_paths, engine=key[1]))
            except SchemaLoadError as exc:
                problems.add(f"{at}.xsd", f"does not compile: {exc}")
    id_path = compile_xpath(spec.get("id"), namespaces, f"{at}.id", problems)
    sender_path = compile_xpath(spec.get("sender"), namespaces, f"{at}.sender", problems)
    receivers_path = (
        compile_xpath(spec["receivers"], namespaces, f"{at}.receivers", problems) if spec.get("receivers") else None
    )
    answers_path = compile_xpath(spec["answers"], namespaces, f"{at}.answers", problems) if spec.get("answers") else None
    fields = {}
    for field_name, expr in (spec.get("fields") or {}).items():
        compiled = compile_xpath(expr, namespaces, field_at(field_name), problems)
        if compiled is not None:
            fields[field_name] = compiled
    if None in (root, schema, id_path, sender_path):
        return None
    return MessageType(
        name=name,
        root=root,
        schema=schema,
        id_path=id_path,
        sender_path=sender_path,
        receivers_path=receivers_path,
        fields=fields,
        description=str(spec.get("description", "")),
        answers_path=answers_path,
        format_receipt=spec.get("format_receipt"),
        signed_by=spec.get("signed_by", SIGNED_BY_ITSELF),
    )


def catalogue_from(data: dict, base: Path, where: str, problems: Problems, digest: Digest) -> Catalogue:
    """Compile a catalogue read from YAML (its paths relative to ``base``), noting every problem."""
    namespaces = data.get("namespaces") or {}
    if not isinstance(namespaces, dict):
        problems.add(f"{where} namespaces", "must map prefixes to namespace URIs")
        namespaces = {}
    types_data = data.get("types") or {}
    if not isinstance(types_data, dict) or not types_data:
        problems.add(f"{where} types", "must define at least one message type")
        types_data = {}
    types: list[MessageType] = []
    roots: dict[str, str] = {}
    schemas: dict[tuple, CompiledSchema] = {}  # several types often share one XSD: compile it once
    for name, spec in types_data.items():
        at = f"{where} types.{name}"
        if not isinstance(spec, dict):
            problems.add(at, "must be a mapping")
            continue
        message_type = compile_type(name, spec, namespaces, base, at, problems, digest, schemas)
        if message_type is None:
            continue
        if message_type.root in roots:
            problems.add(f"{at}.root", f"root {spec.get('root')} is already used by {roots[message_type.root]}")
            continue
        roots[message_type.root] = name
        types.append(message_type)
    return Catalogue(types, namespaces)


def load_catalogue(path: Path | str) -> Catalogue:
    """Load a message catalogue file alone (for ``validate`` and onboarding new standards)."""
    path = Path(path)
    problems = Problems()
    data = read_yaml(path, problems)
    check_catalogue_file(data, path, problems)
    catalogue = catalogue_from(data, path.parent, str(path), problems, Digest())
    problems.raise_if_any()
    return catalogue
