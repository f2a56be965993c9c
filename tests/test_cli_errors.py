"""Every subcommand, against every way an operator's setup can be wrong: a message and a documented exit code, never a traceback.

The subcommands are enumerated from the click group, so a new one is run here without being listed.
A command that does not use the broker must not be affected by a broken broker URL; one that does
must say what is wrong with it, with the exit code the README documents.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import click
import pytest
import yaml
from click.testing import CliRunner

from exchange_fixture import PROJECT, SAMPLES, Exchange, make_exchange
from exchanger.cli.common import EXIT_BROKER, EXIT_FAILED, EXIT_FILE, EXIT_INCOMPLETE, EXIT_OK, EXIT_USAGE
from exchanger.cli.main import main
from exchanger.transport.url import with_vhost

DOCUMENTED = {EXIT_OK, EXIT_FAILED, EXIT_USAGE, EXIT_BROKER, EXIT_INCOMPLETE, EXIT_FILE}
UNREACHABLE = "amqp://x:y@127.0.0.1:1/zz"  # nothing listens on port 1
BAD_URL = "amqp://127.0.0.1:notaport/%2F"
MISSING_CA = "/nonexistent/exchanger-tests/ca.pem"
NO_CA_FILE = f"amqps://127.0.0.1:5671/%2F?cacertfile={MISSING_CA}"
# Commands known to need the broker; any other command is judged by what it does (see _used_the_broker).
BROKER_COMMANDS = {("run",), ("topology", "apply"), ("send",), ("receive",)}
# `status` asks the daemon's HTTP endpoint, not the broker: the test configuration points it at port 1.
HTTP_COMMANDS = {("status",)}
# Options a command gets so that it runs here without side effects beyond its private copy.
EXTRA = {
    ("topology", "apply"): ["--no-users"],  # users are global to the broker node: never make them here
    ("dead", "replay"): ["--reason", "nothing-matches"],
    ("dead", "purge"): ["--older-than", "3650d"],
    ("receive",): ["--wait", "0.2"],
}


def leaf_commands(group: click.Group, path: tuple[str, ...] = ()):
    """Every runnable subcommand of the group, as (path, command), recursively."""
    for name, command in sorted(group.commands.items()):
        if isinstance(command, click.Group):
            yield from leaf_commands(command, (*path, name))
        else:
            yield (*path, name), command


COMMANDS = dict(leaf_commands(main))


@dataclass
class Setup:
    """A private copy of the exchange for one invocation, and the files commands are given."""

    config_path: Path
    document: Path


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Exchange:
    """The bundled configuration on a demo PKI, with its metrics endpoint where nothing answers."""
    exchange = make_exchange(tmp_path_factory.mktemp("cli-errors"))
    data = yaml.safe_load(exchange.config_path.read_text())
    data["metrics"] = {"bind": "127.0.0.1", "port": 1}
    exchange.config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    signed = exchange.config_path.parent / "signed.xml"
    signed.write_bytes(exchange.signed("ent-a", SAMPLES / "customs-declaration/valid.xml"))
    return exchange


def private_copy(template: Exchange, directory: Path) -> Setup:
    """The template's configuration and keys in a directory of their own (keys issue/revoke change them)."""
    shutil.copytree(template.keys_dir, directory / "keys")
    data = yaml.safe_load(template.config_path.read_text())
    data["keys_dir"] = str(directory / "keys")
    config_path = directory / "routes.yaml"
    config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    return Setup(config_path, template.config_path.parent / "signed.xml")


def _value(path: tuple[str, ...], param: click.Parameter, setup: Setup, config_path: Path) -> str:
    """A valid-looking value for a required parameter, chosen by its name and type."""
    if path == ("sign",) and param.name == "file":
        return str(SAMPLES / "customs-declaration/valid.xml")  # an unsigned document
    by_name = {
        "participant": "ent-a",
        "target": "ent-a",
        "older_than": "30d",
        "letter_id": "0000",
        "message_id": "NO-SUCH-MESSAGE",
        "old": str(config_path),
        "new": str(config_path),
    }
    if param.name in by_name:
        return by_name[param.name]
    if isinstance(param.type, click.Path):
        return str(setup.document)
    if isinstance(param.type, click.Choice):
        return str(param.type.choices[0])
    if isinstance(param.type, (click.IntRange, click.types.IntParamType)):
        return "1"
    return "x"


def arguments(path: tuple[str, ...], command: click.Command, setup: Setup, config_path: Path) -> list[str]:
    """The command line for a subcommand: its path, the extra options it needs here, and its required values."""
    args = [*path, *EXTRA.get(path, [])]
    for param in command.params:
        if not param.required:
            continue
        if isinstance(param, click.Option):
            args += [param.opts[0], _value(path, param, setup, config_path)]
        else:
            args.append(_value(path, param, setup, config_path))
    return args


def invoke(args: list[str], config_path: Path, amqp_url: str):
    """Run the command line in-process, as the console script does."""
    env = {"EXCHANGER_AMQP_URL": None, "EXCHANGER_CONFIG": None}
    return CliRunner().invoke(main, ["--config", str(config_path), "--amqp-url", amqp_url, *args], env=env)


def assert_clean(result, what: str) -> None:
    """No traceback, no exception escaping, and a documented exit code."""
    output = result.output
    assert "Traceback" not in output, f"{what}:\n{output}"
    assert result.exception is None or isinstance(result.exception, SystemExit), f"{what}: {result.exception!r}\n{output}"
    assert result.exit_code in DOCUMENTED, f"{what}: exit {result.exit_code}\n{output}"


def _used_the_broker(path: tuple[str, ...], result) -> bool:
    """A known broker command, or one that ended on a broker error against an unreachable broker."""
    return path in BROKER_COMMANDS or (result.exit_code == EXIT_BROKER and path not in HTTP_COMMANDS)


def _run(template, tmp_path, path, amqp_url, config_path=None):
    directory = tmp_path / ("-".join(path) + "-" + str(abs(hash(amqp_url)) % 10**6))
    directory.mkdir()
    setup = private_copy(template, directory)
    config = config_path or setup.config_path
    args = arguments(path, COMMANDS[path], setup, config)
    return invoke(args, config, amqp_url), args


@pytest.fixture(scope="module")
def unreachable(template, tmp_path_factory):
    """Every subcommand run once against an unreachable broker: the reference the other broker cases compare with."""
    tmp_path = tmp_path_factory.mktemp("unreachable")
    return {path: _run(template, tmp_path, path, UNREACHABLE)[0] for path in COMMANDS}


@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_command_against_an_unreachable_broker(unreachable, path):
    result = unreachable[path]
    assert_clean(result, f"{' '.join(path)} with the broker unreachable")
    if path in BROKER_COMMANDS:
        assert result.exit_code == EXIT_BROKER, result.output
    if path in HTTP_COMMANDS:
        assert result.exit_code == EXIT_BROKER and "no exchange answers" in result.output, result.output
    elif result.exit_code == EXIT_BROKER:
        assert "cannot connect to the broker" in result.output and "127.0.0.1:1" in result.output, result.output


def _broker_cases(broker):
    return {
        "bad-url": (BAD_URL, EXIT_USAGE, ["AMQP URL", "notaport"]),
        "missing-ca-file": (NO_CA_FILE, EXIT_FILE, [MISSING_CA, "No such file or directory"]),
        "wrong-password": (broker.url_for(broker.unique("nobody"), "wrong-password"), EXIT_BROKER, ["refused the login"]),
        "no-such-vhost": (with_vhost(broker.base_url, broker.unique("vhost")), EXIT_BROKER, ["refused"]),
    }


@pytest.mark.broker
@pytest.mark.parametrize("case", ["bad-url", "missing-ca-file", "wrong-password", "no-such-vhost"])
@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_command_against_a_broken_broker_setting(template, unreachable, broker, tmp_path, path, case):
    """A broker command names the problem; any other command does exactly what it did without a broker."""
    url, code, words = _broker_cases(broker)[case]
    result, args = _run(template, tmp_path, path, url)
    what = f"{' '.join(args)} with {case}"
    assert_clean(result, what)
    if _used_the_broker(path, unreachable[path]):
        assert result.exit_code == code, f"{what}:\n{result.output}"
        for word in words:
            assert word in result.output, f"{what}:\n{result.output}"
    else:
        assert result.exit_code == unreachable[path].exit_code, f"{what}:\n{result.output}"


def _broken_configs(directory: Path, good: Path) -> dict[str, tuple[Path, list[str]]]:
    """A missing file, one that is not YAML, one with a wrong type and one with a typo, and what each must say."""
    text = good.read_text()
    malformed = directory / "malformed.yaml"
    malformed.write_text(text + "limits: {max_message_bytes: [1, 2\n")
    data = yaml.safe_load(text)
    data["broker"]["prefetch"] = "many"
    wrong_type = directory / "wrong-type.yaml"
    wrong_type.write_text(yaml.safe_dump(data, sort_keys=False))
    line = wrong_type.read_text().splitlines().index("  prefetch: many") + 1
    typo = directory / "typo.yaml"
    typo.write_text(text.replace("\nbroker:", "\nbrokr:"))
    typo_line = typo.read_text().splitlines().index("brokr:") + 1
    return {
        "missing": (directory / "missing.yaml", ["missing.yaml", "No such file or directory"]),
        "malformed": (malformed, ["not valid YAML", f"{malformed}:"]),
        "wrong-type": (wrong_type, [f"{wrong_type}:{line}: broker.prefetch: must be a positive whole number, not 'many'"]),
        "typo": (typo, [f"{typo}:{typo_line}: brokr: unknown key (did you mean `broker`?)"]),
    }


@pytest.mark.parametrize("case", ["missing", "malformed", "wrong-type", "typo"])
@pytest.mark.parametrize("path", sorted(COMMANDS), ids=" ".join)
def test_every_command_with_a_broken_configuration(template, tmp_path, path, case):
    """Every command reads the configuration here; each says what is wrong with it, where, and exits 1."""
    directory = tmp_path / "setup"
    directory.mkdir()
    setup = private_copy(template, directory)
    config_path, words = _broken_configs(tmp_path, setup.config_path)[case]
    args = arguments(path, COMMANDS[path], setup, config_path)
    result = invoke(args, config_path, UNREACHABLE)
    what = f"{' '.join(args)} with a {case} configuration"
    assert_clean(result, what)
    # A missing file given as an argument that must exist is click's usage error, naming it.
    as_argument = case == "missing" and str(config_path) in args
    assert result.exit_code == (EXIT_USAGE if as_argument else EXIT_FAILED), f"{what}:\n{result.output}"
    if as_argument:
        words = [f"File '{config_path}' does not exist"]
    for word in words:
        assert word in result.output, f"{what}:\n{result.output}"


@pytest.mark.parametrize("command", [["dead", "list"], ["run"], ["topology", "apply", "--no-users"]], ids=" ".join)
def test_the_console_script_prints_no_traceback(template, tmp_path, command):
    """The issue's own command line, through the real entry point (logging set up as in production): one message, exit 3."""
    setup = private_copy(template, tmp_path)
    result = subprocess.run(
        [sys.executable, "-m", "exchanger", "--config", str(setup.config_path), "--amqp-url", UNREACHABLE, *command],
        capture_output=True,
        text=True,
        timeout=60,
        env={**os.environ, "PYTHONPATH": str(PROJECT)},
    )
    assert result.returncode == EXIT_BROKER, result.stderr
    assert "Traceback" not in result.stderr + result.stdout
    assert result.stderr.startswith(
        "error: cannot connect to the broker at 127.0.0.1:1 (virtual host zz): Connection refused\n"
    ), result.stderr


def test_an_unexpected_error_is_a_message_and_exit_70(template, tmp_path, monkeypatch):
    """A bug still ends on one line saying it is one, with exit 70, not a traceback (unless asked for)."""
    setup = private_copy(template, tmp_path)

    def broken(*_args, **_kwargs):
        raise ZeroDivisionError("a bug")

    monkeypatch.setattr("exchanger.cli.routes.Settings.load", broken)
    result = CliRunner().invoke(main, ["--config", str(setup.config_path), "routes", "check"])
    assert result.exit_code == 70 and "Traceback" not in result.output
    assert "internal error: ZeroDivisionError: a bug" in result.output and "--log-level debug" in result.output
    debug = CliRunner().invoke(main, ["--config", str(setup.config_path), "--log-level", "debug", "routes", "check"])
    assert debug.exit_code == 70 and "Traceback" in debug.output


@pytest.mark.parametrize(
    "args, code, words",
    [
        (["status", "--url", "notaurl"], EXIT_USAGE, ["--url notaurl is not an HTTP URL"]),
        (["sign", "--as", "ent-a", str(SAMPLES / "customs-declaration/valid.xml"), "--out", "/nonexistent/out.xml"],
         EXIT_FILE, ["cannot use /nonexistent/out.xml: No such file or directory"]),
        (["--amqp-url", f"amqps://127.0.0.1:5671/%2F?cacertfile={SAMPLES / 'customs-declaration/valid.xml'}", "dead", "list"],
         EXIT_FILE, ["cannot read the CA certificates (cacertfile in the AMQP URL)", "no certificate or crl found"]),
        (["--amqp-url", "amqp://x:y@nohost.invalid:5672/%2F", "dead", "list"], EXIT_BROKER, ["cannot find the broker's host nohost.invalid"]),
    ],
    ids=["status-url-not-http", "output-unwritable", "ca-file-not-a-certificate", "unknown-host"],
)
def test_more_ways_to_get_it_wrong(template, tmp_path, args, code, words):
    setup = private_copy(template, tmp_path)
    result = CliRunner().invoke(main, ["--config", str(setup.config_path), *args], env={"EXCHANGER_AMQP_URL": None})
    assert_clean(result, " ".join(args))
    assert result.exit_code == code, result.output
    for word in words:
        assert word in result.output, result.output
