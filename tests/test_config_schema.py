"""The schema of routes.yaml and of message catalogues: an operator's typo is an error with its file, line and a suggestion."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from exchange_fixture import PROJECT, ROUTES, write_config
from exchanger.cli.main import main
from exchanger.config import ConfigError, load_catalogue, load_config
from exchanger.config.problems import Problems
from exchanger.config.schema import CATALOGUE_SCHEMA, LIMIT_KEYS, ROUTES_SCHEMA, check_catalogue_file, check_routes_file
from exchanger.config.yaml_source import read_yaml

CATALOGUES = [PROJECT / "schemas" / "messages.yaml", *sorted((PROJECT / "tests" / "onboarding").glob("*.yaml"))]
# Mappings whose keys are names the operator chooses (ids, type names, prefixes), not keys of the schema.
FREE_FORM = {"participants", "types", "namespaces", "fields"}
SYNONYMS = {"types": ["type"], "type": ["types"]}  # a rule's message types, under either name


def _problems(path: Path, check) -> list[str]:
    problems = Problems()
    data = read_yaml(path, problems)
    check(data, path, problems)
    return problems.items


def _load_problems(path: Path) -> list[str]:
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


# ---- what ships passes --------------------------------------------------------------------------------------------


def test_the_bundled_configuration_passes_its_schema():
    assert _problems(ROUTES, check_routes_file) == []


@pytest.mark.parametrize("catalogue", CATALOGUES, ids=lambda p: p.name)
def test_every_bundled_and_onboarding_catalogue_passes_its_schema(catalogue):
    assert _problems(catalogue, check_catalogue_file) == []


def test_a_test_configuration_with_every_section_loads(exchange, tmp_path):
    """Every key the loader reads, all the limits included, is known to the schema."""
    data = yaml.safe_load(exchange.config_path.read_text())
    data["limits"] = {key: 1000 + index for index, key in enumerate(LIMIT_KEYS)}
    data["platform"].update(key=str(exchange.keys_dir / "eport/key.pem"), certificate=str(exchange.keys_dir / "eport/cert.pem"))
    data["trust"].update(anchors=[str(exchange.keys_dir / "ca/cert.pem")], crls=str(exchange.keys_dir / "ca/crl.pem"))
    data["participants"]["ent-a"].update(amqp_user="ent-a", certificates=[str(exchange.keys_dir / "ent-a/cert.pem")])
    data["routes"][0]["type"] = data["routes"][0].pop("types")
    path = write_config(tmp_path, exchange.keys_dir, **{k: v for k, v in data.items() if k not in ("keys_dir", "messages")})
    config = load_config(path)
    assert config.limits.max_message_bytes == 1000


def test_the_sm2_settings_are_loaded_and_default_to_gacc_s(exchange, tmp_path):
    """signatures.sm2 reaches the configuration; left out, the standard signer ID and raw r || s apply."""
    (tmp_path / "plain").mkdir()
    (tmp_path / "given").mkdir()
    plain_path = write_config(tmp_path / "plain", exchange.keys_dir)
    data = yaml.safe_load(plain_path.read_text())
    del data["signatures"]
    plain_path.write_text(yaml.safe_dump(data, sort_keys=False))
    plain = load_config(plain_path)
    assert (plain.signatures.sm2.signer_id, plain.signatures.sm2.encoding) == ("1234567812345678", "raw")
    given = {"sm2": {"signer_id": "ALICE123@YAHOO.COM", "encoding": "der"}}
    config = load_config(write_config(tmp_path / "given", exchange.keys_dir, signatures=given))
    assert (config.signatures.sm2.signer_id, config.signatures.sm2.encoding) == ("ALICE123@YAHOO.COM", "der")
    assert config.signatures.sm2.signer_id_bytes == b"ALICE123@YAHOO.COM"


def test_an_sm2_signer_id_too_long_in_utf8_is_refused(exchange, tmp_path):
    """The schema counts characters; the loader refuses an ID whose UTF-8 bytes ENTL cannot carry."""
    given = {"sm2": {"signer_id": "口" * 3000}}  # 3,000 characters, 9,000 bytes
    problems = _load_problems(write_config(tmp_path, exchange.keys_dir, signatures=given))
    assert len(problems) == 1 and "signatures.sm2" in problems[0] and "8191 bytes" in problems[0], problems


# ---- unknown keys: every key of the bundled files, mistyped ---------------------------------------------------------


def _keys(data, at=()):
    """(path, line) of every key the schema names in the data, at every depth."""
    for key, value in data.items():
        if not (at and at[-1] in FREE_FORM):
            yield (*at, key), data.line_of(key)
        if isinstance(value, dict):
            yield from _keys(value, (*at, key))
        elif isinstance(value, list):
            for index, item in enumerate(value):
                if isinstance(item, dict):
                    yield from _keys(item, (*at, key, index))


ROUTE_KEYS = list(_keys(read_yaml(ROUTES, Problems())))
CATALOGUE_KEYS = list(_keys(read_yaml(CATALOGUES[0], Problems())))


@st.composite
def typos(draw, key: str, known: set[str]) -> str:
    """A mistyped key: a letter dropped, doubled, swapped with the next or replaced; never another known key."""
    index = draw(st.integers(0, len(key) - 1))
    kind = draw(st.sampled_from(["drop", "double", "swap", "replace"] if len(key) > 2 else ["double", "replace"]))
    if kind == "drop":
        typo = key[:index] + key[index + 1:]
    elif kind == "double":
        typo = key[:index] + key[index] + key[index:]
    elif kind == "swap" and index < len(key) - 1:
        typo = key[:index] + key[index + 1] + key[index] + key[index + 2:]
    else:
        typo = key[:index] + draw(st.sampled_from("aeioursty")) + key[index + 1:]
    if typo in known or typo == key or not typo:
        typo = key + "x"
    return typo


def _schema_keys(schema) -> set[str]:
    """Every key either schema names anywhere: a typo must not land on one of them."""
    if isinstance(schema, dict):
        return set(schema.get("properties", {})) | {k for v in schema.values() for k in _schema_keys(v)}
    if isinstance(schema, list):
        return {k for v in schema for k in _schema_keys(v)}
    return set()


SCHEMA_KEYS = _schema_keys(ROUTES_SCHEMA) | _schema_keys(CATALOGUE_SCHEMA)


def _sibling_keys(data, at) -> set[str]:
    node = data
    for step in at[:-1]:
        node = node[step]
    return set(node) | SCHEMA_KEYS


def _mistype(source: Path, target: Path, key: str, line: int, typo: str) -> None:
    lines = source.read_text(encoding="utf-8").split("\n")
    lines[line - 1] = re.sub(rf"(?<![\w-]){re.escape(key)}(?=\s*:)", typo, lines[line - 1], count=1)
    target.write_text("\n".join(lines), encoding="utf-8")


def _check_typo(source: Path, check, entries, data, tmp_path_factory, choice, draw_typo):
    (at, line) = entries[choice]
    key = at[-1]
    typo = draw_typo(key, _sibling_keys(data, at))
    target = tmp_path_factory.mktemp("typo") / source.name
    _mistype(source, target, key, line, typo)
    problems = _problems(target, check)
    located = [p for p in problems if p.startswith(f"{target}:{line}: ") and f"{typo}: unknown key" in p]
    assert located, f"{key} -> {typo} on line {line}: {problems}"
    # The operator is pointed at the right key (or its synonym): suggested, or listed among the keys known there.
    meant = {key, *SYNONYMS.get(key, ())}
    assert any(re.search(rf"did you mean [^?]*`{re.escape(k)}`", located[0]) for k in meant) or re.search(
        rf"known here: .*\b{re.escape(key)}\b", located[0]
    ), located[0]
    assert len(problems) == 1, problems


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mistyped_key_of_routes_yaml_is_refused_with_its_line_and_the_right_key(tmp_path_factory, data):
    choice = data.draw(st.integers(0, len(ROUTE_KEYS) - 1), label="key")
    parsed = read_yaml(ROUTES, Problems())
    _check_typo(ROUTES, check_routes_file, ROUTE_KEYS, parsed, tmp_path_factory, choice,
                lambda key, known: data.draw(typos(key, known), label="typo"))


@settings(max_examples=80, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data())
def test_any_mistyped_key_of_the_catalogue_is_refused_with_its_line_and_the_right_key(tmp_path_factory, data):
    choice = data.draw(st.integers(0, len(CATALOGUE_KEYS) - 1), label="key")
    parsed = read_yaml(CATALOGUES[0], Problems())
    source = tmp_path_factory.mktemp("catalogue") / "messages.yaml"
    source.write_text(CATALOGUES[0].read_text(encoding="utf-8"), encoding="utf-8")
    _check_typo(source, check_catalogue_file, CATALOGUE_KEYS, parsed, tmp_path_factory, choice,
                lambda key, known: data.draw(typos(key, known), label="typo"))


def test_the_issues_brokr_is_refused_by_routes_check(exchange, tmp_path):
    """`brokr:` for `broker:` passed `routes check` with the defaults silently applied; now it names the line."""
    path = write_config(tmp_path, exchange.keys_dir)
    text = path.read_text().replace("\nbroker:", "\nbrokr:")
    path.write_text(text)
    line = text.split("\n").index("brokr:") + 1
    result = CliRunner().invoke(main, ["--config", str(path), "routes", "check"])
    assert result.exit_code == 1, result.output
    assert f"{path}:{line}: brokr: unknown key (did you mean `broker`?)" in result.output
    assert "OK" not in result.output


def test_a_typo_in_an_inline_catalogue_and_in_a_catalogue_file(exchange, tmp_path):
    catalogue = yaml.safe_load(CATALOGUES[0].read_text())
    for spec in catalogue["types"].values():
        spec["xsd"] = str(CATALOGUES[0].parent / spec["xsd"])
    catalogue["types"]["CustomsDeclaration"]["sendr"] = catalogue["types"]["CustomsDeclaration"].pop("sender")
    inline = _load_problems(write_config(tmp_path, exchange.keys_dir, messages=catalogue))
    assert any(": messages.types.CustomsDeclaration.sendr: unknown key (did you mean `sender`?)" in p for p in inline), inline
    # Said once: the missing `sender` is the mistyped one, so no second problem says it is missing.
    assert not any("needs `sender`" in p for p in inline), inline
    file = tmp_path / "catalogue.yaml"
    file.write_text(yaml.safe_dump(catalogue, sort_keys=False))
    with pytest.raises(ConfigError) as caught:
        load_catalogue(file)
    line = file.read_text().split("\n").index("    sendr: dec:BaseTransfer/cm:SenderId") + 1
    assert f"{file}:{line}: types.CustomsDeclaration.sendr: unknown key (did you mean `sender`?)" in caught.value.problems


def test_a_key_given_twice_is_refused_with_both_lines(tmp_path):
    path = tmp_path / "routes.yaml"
    path.write_text(ROUTES.read_text() + "\nbroker:\n  prefetch: 10\n")
    (problem,) = [p for p in _problems(path, check_routes_file)]
    first = ROUTES.read_text().split("\n").index("broker:") + 1
    assert re.fullmatch(rf"{re.escape(str(path))}:\d+: `broker` is given twice \(first on line {first}\).*", problem)


# ---- wrong types: reported with their line, never raised ---------------------------------------------------------------


def _set(data: dict, at: tuple, value) -> None:
    node = data
    for step in at[:-1]:
        node = node[step]
    node[at[-1]] = value


WRONG = [
    (("broker", "prefetch"), "many", "broker.prefetch: must be a positive whole number, not 'many'"),
    (("broker", "heartbeat"), 0, "broker.heartbeat: must be a positive whole number, not 0"),
    (("broker", "delivery_limit"), True, "broker.delivery_limit: must be a positive whole number, not True"),
    (("limits", "max_depth"), 2.5, "limits.max_depth: must be a positive whole number, not 2.5"),
    (("metrics", "port"), 70000, "metrics.port: must be a TCP port number (0 picks a free one), not 70000"),
    (("journal", "keep_originals"), "some", "journal.keep_originals: must be one of rejected, all, none, not 'some'"),
    (("journal", "checkpoint"), 5, "journal.checkpoint: must be a mapping (key: value), not 5"),
    (("trust", "anchors"), 5, "trust.anchors: must be a text or a list of texts, not 5"),
    (("trust", "identity_field"), "email", "trust.identity_field: must be one of CN, organizationIdentifier, serialNumber, SAN-URI, not 'email'"),
    (("platform",), "eport", "platform: must be a mapping (key: value), not 'eport'"),
    (("participants", "ent-a"), "enterprise", "participants.ent-a: must be a mapping (key: value), not 'enterprise'"),
    (("participants", "ent-a", "kind"), "smuggler", "participants.ent-a.kind: must be one of "),
    (("routes",), {"id": "x"}, "routes: must be a list of at least one rule, not a mapping"),
    (("routes", 0, "when"), 5, "routes.declaration-to-customs.when: must be an XPath (text), not 5"),
    (("routes", 1, "approval"), "GACC", "routes.declaration-copy-to-inspection.approval: must name the approving authority"),
    (("version",), 2, "version: must be 1, the only format of this file there is, not 2"),
    (("signatures", "sm2", "encoding"), "base64", "signatures.sm2.encoding: must be one of raw, der, not 'base64'"),
    (("signatures", "sm2", "signer_id"), "", "signatures.sm2.signer_id: must be a text of 1 to 8191 bytes"),
    (("signatures", "sm2"), "raw", "signatures.sm2: must be a mapping (key: value), not 'raw'"),
]


@pytest.mark.parametrize("at, value, expected", WRONG, ids=[".".join(map(str, w[0])) for w in WRONG])
def test_a_wrong_type_is_one_problem_with_its_line(exchange, tmp_path, at, value, expected):
    path = write_config(tmp_path, exchange.keys_dir)
    data = yaml.safe_load(path.read_text())
    _set(data, at, value)
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    problems = _load_problems(path)
    assert len(problems) == 1, problems
    assert re.match(rf"{re.escape(str(path))}:\d+: ", problems[0]) and expected in problems[0], problems


LEAVES = [at for at, _ in ROUTE_KEYS if at[0] not in ("messages", "keys_dir")]
VALUES = st.one_of(
    st.none(), st.booleans(), st.integers(-3, 70000), st.floats(allow_nan=False), st.text(max_size=8),
    st.lists(st.integers(), max_size=2), st.dictionaries(st.sampled_from(["a", "id", "kind"]), st.integers(), max_size=2),
)


@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(at=st.sampled_from(LEAVES), value=VALUES)
def test_any_value_anywhere_is_loaded_or_refused_never_raised(exchange, tmp_path_factory, at, value):
    """Whatever an operator writes in place of any value, the loader answers with a Config or a ConfigError."""
    data = yaml.safe_load(ROUTES.read_text())
    _set(data, at, value)
    directory = tmp_path_factory.mktemp("value")
    path = write_config(directory, exchange.keys_dir, **{k: v for k, v in data.items() if k not in ("keys_dir", "messages")})
    try:
        load_config(path)
    except ConfigError as exc:
        assert exc.problems and all(isinstance(p, str) and p for p in exc.problems)
