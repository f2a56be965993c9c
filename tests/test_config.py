"""The one configuration loader: what `routes check`, the daemon and reload all refuse."""

from __future__ import annotations

import shutil

import pytest
import yaml
from click.testing import CliRunner

from exchange_fixture import ROUTES, write_config
from exchanger.cli.main import main
from exchanger.config import ConfigError, load_config


def _broken(exchange, tmp_path, edit) -> list[str]:
    data = yaml.safe_load(ROUTES.read_text())
    edit(data)
    path = write_config(tmp_path, exchange.keys_dir, **{k: v for k, v in data.items() if k not in ("keys_dir", "messages")})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    return caught.value.problems


def test_bundled_configuration_loads(exchange):
    config = exchange.config
    assert len(config.registry) == 10
    assert "CustomsDeclaration" in config.catalogue
    assert len(config.version) == 16


def test_sharing_without_approval_is_refused(exchange, tmp_path):
    def edit(data):
        del next(r for r in data["routes"] if r["id"] == "declaration-copy-to-inspection")["approval"]

    problems = _broken(exchange, tmp_path, edit)
    assert any("declaration-copy-to-inspection.approval" in p and "data sharing" in p for p in problems)


def test_every_problem_is_reported_at_once(exchange, tmp_path):
    def edit(data):
        data["routes"].append({"id": "bad-1", "types": ["NoSuchType"], "from": ["nobody"], "deliver": ["ghost"]})
        data["routes"].append({"id": "bad-2", "types": ["CustomsDeclaration"], "when": "dec:Head[", "deliver": "addressed"})
        data["routes"].append({"id": "bad-3", "types": ["CustomsDeclaration"], "when": "$no_such_field = '1'"})
        data["participants"]["Bad Id!"] = {"kind": "enterprise"}
        data["participants"]["ent-c"] = {"kind": "smuggler"}

    problems = "\n".join(_broken(exchange, tmp_path, edit))
    for expected in (
        "message type 'NoSuchType' is not in the catalogue",
        "'nobody' is not a participant",
        "destination 'ghost' is not a participant",
        "routes.bad-2.when: XPath",
        "$no_such_field is not a field of CustomsDeclaration",
        "participants.Bad Id!",
        "participants.ent-c.kind",
    ):
        assert expected in problems


def test_a_schema_that_does_not_compile_is_refused(exchange, tmp_path):
    messages = yaml.safe_load((ROUTES.parent / "schemas/messages.yaml").read_text())
    shutil.copytree(ROUTES.parent / "schemas/xsd", tmp_path / "xsd")
    (tmp_path / "xsd/forex-verification.xsd").write_text("<xs:schema xmlns:xs='http://www.w3.org/2001/XMLSchema'><xs:element/></xs:schema>")
    (tmp_path / "messages.yaml").write_text(yaml.safe_dump(messages))
    data = yaml.safe_load(ROUTES.read_text())
    path = write_config(tmp_path, exchange.keys_dir)
    data = yaml.safe_load(path.read_text())
    data["messages"] = str(tmp_path / "messages.yaml")
    path.write_text(yaml.safe_dump(data))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any("ForexVerification.xsd" in p and "does not compile" in p for p in caught.value.problems)


def test_platform_key_must_match_its_certificate(exchange, tmp_path):
    def edit(data):
        data["platform"]["key"] = str(exchange.keys_dir / "ent-a" / "key.pem")

    problems = _broken(exchange, tmp_path, edit)
    assert any(p.startswith("platform.key") and "does not match" in p for p in problems)


def test_missing_keys_say_how_to_make_them(tmp_path):
    path = write_config(tmp_path, tmp_path / "no-keys")
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any("exchanger keys init" in p for p in caught.value.problems)


def test_routes_check_command(exchange, tmp_path):
    runner = CliRunner()
    ok = runner.invoke(main, ["--config", str(exchange.config_path), "routes", "check"])
    assert ok.exit_code == 0, ok.output
    assert "OK" in ok.output
    bad = write_config(tmp_path, exchange.keys_dir, routes=[{"id": "x", "types": ["Nope"]}])
    failed = runner.invoke(main, ["--config", str(exchange.config_path), "routes", "check", str(bad)])
    assert failed.exit_code == 1
    assert "Nope" in failed.output


def test_routes_explain_says_why(exchange):
    from exchange_fixture import SAMPLES

    runner = CliRunner()
    result = runner.invoke(
        main,
        ["--config", str(exchange.config_path), "routes", "explain", str(SAMPLES / "customs-declaration/valid-with-inspection.xml")],
    )
    assert result.exit_code == 0, result.output
    assert "match declaration-to-customs" in result.output
    assert "match declaration-copy-to-inspection" in result.output
    assert "skip  manifest-to-customs: type CustomsDeclaration is not one of ['CargoManifest']" in result.output
    assert "-> ciq by declaration-copy-to-inspection (shared under GACC" in result.output
    plain = runner.invoke(
        main, ["--config", str(exchange.config_path), "routes", "explain", str(SAMPLES / "customs-declaration/valid.xml")]
    )
    assert "condition is false: $inspection_required = '1'" in plain.output


def test_routes_diff_shows_what_a_change_would_do(exchange, tmp_path):
    data = yaml.safe_load(ROUTES.read_text())
    routes = {r["id"]: r for r in data["routes"]}
    del routes["declaration-copy-to-inspection"]
    routes["rebate-data-to-tax"]["from"] = ["customs"]
    routes["forex-copy-to-customs"] = {
        "id": "forex-copy-to-customs", "types": ["ForexVerification"], "from": ["kind:enterprise"],
        "deliver": ["customs"], "approval": {"by": "SAFE", "ref": "2026-3"},
    }
    new = write_config(tmp_path, exchange.keys_dir, routes=list(routes.values()))
    runner = CliRunner()
    result = runner.invoke(main, ["routes", "diff", str(exchange.config_path), str(new)])
    assert result.exit_code == 1, result.output
    assert "+ route forex-copy-to-customs" in result.output
    assert "- route declaration-copy-to-inspection" in result.output
    assert "~ route rebate-data-to-tax: from: kind:customs -> customs" in result.output
    assert "CustomsDeclaration loses destination: ciq" in result.output
    assert "ForexVerification gains destination: customs" in result.output
    same = runner.invoke(main, ["routes", "diff", str(exchange.config_path), str(exchange.config_path)])
    assert same.exit_code == 0 and "no routing difference" in same.output


def test_a_peer_eport_is_external_and_always_needs_an_approval(exchange, tmp_path):
    """Even addressed delivery to another region's exchange is data sharing: refused without an approval."""

    def edit(data):
        data["participants"]["eport-chongqing"] = {
            "kind": "peer-eport", "name": "Chongqing e-port", "certificates": [str(exchange.keys_dir / "customs" / "cert.pem")],
        }
        data["routes"].append({"id": "to-peers", "types": ["CargoManifest"], "from": ["kind:transport"],
                               "to": ["kind:peer-eport"], "deliver": "addressed"})

    problems = _broken(exchange, tmp_path, edit)
    assert any("routes.to-peers.approval" in p and "external exchange(s) eport-chongqing" in p for p in problems)
