"""The envelope catalogue: each envelope format compiled with the message catalogue's own rules, then cross-checked."""

from __future__ import annotations

from pathlib import Path

from exchanger.catalogue import Catalogue
from exchanger.config.digest import Digest
from exchanger.config.messages import compile_type
from exchanger.config.problems import Problems
from exchanger.config.schema import check_envelopes_file
from exchanger.config.yaml_source import read_yaml
from exchanger.envelopes.formats import NAMES_BY_TYPE, EnvelopeCatalogue, EnvelopeFormat
from exchanger.participants import Registry

# Envelope keys read as catalogue fields: XPaths over the envelope, read through the one reader.
FIELD_KEYS = ("message_type", "created", "relay_path", "payload")
DXP_PARTY_ID_LENGTH = 16  # the most characters DXP gives a SenderId, ReceiverId or RecId


def envelopes_from(data: dict, base: Path, where: str, problems: Problems, digest: Digest) -> EnvelopeCatalogue:
    """Compile an envelope catalogue read from YAML (its paths relative to ``base``), noting every problem."""
    namespaces = data.get("namespaces") or {}
    formats: list[EnvelopeFormat] = []
    roots: dict[str, str] = {}
    schemas: dict = {}
    for name, spec in (data.get("envelopes") or {}).items():
        at = f"{where} envelopes.{name}"
        fields = {key: spec[key] for key in FIELD_KEYS if spec.get(key)}
        type_spec = {**spec, "fields": fields}
        reader = compile_type(
            str(name), type_spec, namespaces, base, at, problems, digest, schemas, field_at=lambda key: f"{at}.{key}"
        )
        if reader is None:
            continue
        if reader.root in roots:
            problems.add(f"{at}.root", f"root {spec.get('root')} is already the root of envelope {roots[reader.root]}")
            continue
        roots[reader.root] = str(name)
        formats.append(
            EnvelopeFormat(
                name=str(name),
                root=reader.root,
                reader=reader,
                message_type_names=spec.get("message_type_names", NAMES_BY_TYPE),
                payload_encoding=spec.get("payload_encoding", "base64"),
                receipt=spec["receipt"],
                shape=spec["shape"],
                inbound=bool(spec.get("inbound", False)),
                description=str(spec.get("description", "")),
            )
        )
    return EnvelopeCatalogue(formats)


def load_envelopes(value, base: Path, problems: Problems, digest: Digest) -> EnvelopeCatalogue:
    """The envelope catalogue routes.yaml names (a file, or inline); without one, the exchange's own envelope only."""
    if value is None:
        return EnvelopeCatalogue([])
    if isinstance(value, str):
        path = base / value
        digest.add_file(path)
        data = read_yaml(path, problems)
        check_envelopes_file(data, path, problems)
        return envelopes_from(data, path.parent, str(path), problems, digest)
    return envelopes_from(value, base, "envelopes", problems, digest)


def check_envelopes(
    envelopes: EnvelopeCatalogue, catalogue: Catalogue, registry: Registry, platform_id: str, problems: Problems
) -> None:
    """Envelopes against the rest: no message type shares an inbound envelope's root, every receiver's envelope
    exists, and DXP can name every party the exchange would write into it."""
    for message_type in catalogue:
        carrier = envelopes.inbound_for_root(message_type.root)
        if carrier is not None:
            problems.add(
                f"messages types.{message_type.name}.root",
                f"{message_type.root} is the root of the {carrier.name} envelope, which the exchange opens itself; "
                "leave the type out of the message catalogue",
            )
    dxp_receivers = []
    for participant in registry:
        chosen = envelopes.get(participant.envelope)
        if chosen is None:
            problems.add(
                f"participants.{participant.id}.envelope",
                f"{participant.envelope!r} is not an envelope of the envelope catalogue "
                f"(known: {', '.join(sorted(envelopes.names()))})",
            )
        elif chosen.shape == "dxp":
            dxp_receivers.append(participant.id)
    if not dxp_receivers:
        return
    # A DXP envelope names its sender and receiver in at most 16 characters: every party must fit.
    for pid in [platform_id, *registry.ids()]:
        if len(pid) > DXP_PARTY_ID_LENGTH:
            problems.add(
                f"participants.{pid}" if pid != platform_id else "platform.id",
                f"id {pid!r} is {len(pid)} characters; {', '.join(dxp_receivers)} take DXP envelopes, "
                f"which name a party in at most {DXP_PARTY_ID_LENGTH}",
            )
