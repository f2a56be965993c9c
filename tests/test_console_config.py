"""The console's section of routes.yaml, its accounts on the command line, and serving it over TLS."""

from __future__ import annotations

import datetime
import json
import ssl
import urllib.request
from pathlib import Path

import pytest
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives import hashes, serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.x509.oid import NameOID

from console_fixture import NO_BROKER, State
from exchange_fixture import write_config
from exchanger.cli.main import main
from exchanger.config import ConfigError, load_config
from exchanger.config.console import ConsoleSettings
from exchanger.console.server import start_console
from exchanger.console.services import ConsoleServices
from exchanger.console.users import UserStore


def test_the_console_section_defaults_and_its_settings(exchange, tmp_path):
    assert exchange.config.console.port == 8470 and exchange.config.console.bind == "127.0.0.1"
    assert exchange.config.console.address == "http://127.0.0.1:8470/"
    assert exchange.config.console.users_file == exchange.config_path.parent / "var" / "console-users.yaml"
    (tmp_path / "c.pem").write_text("x")
    (tmp_path / "k.pem").write_text("x")
    path = write_config(tmp_path, exchange.keys_dir, console={
        "enabled": True, "bind": "0.0.0.0", "port": 9443, "session_minutes": 5, "users": "accounts.yaml",
        "max_upload_kb": 100, "tls": {"cert": "c.pem", "key": "k.pem"}})
    console = load_config(path).console
    assert console.tls and console.address == "https://127.0.0.1:9443/"
    assert (console.session_minutes, console.max_upload_bytes) == (5, 100 * 1024)
    assert console.users_file == tmp_path / "accounts.yaml"


def test_every_problem_of_the_console_section_is_told(exchange, tmp_path):
    path = write_config(tmp_path, exchange.keys_dir, console={
        "port": 70000, "session_minutes": 0, "tls": {"cert": "missing.pem", "key": "missing-key.pem"}, "colour": "blue"})
    with pytest.raises(ConfigError) as raised:
        load_config(path)
    text = "\n".join(raised.value.problems)
    assert "console.port: must be a TCP port number" in text
    assert "console.session_minutes: must be a whole number of minutes from 1 to 1440" in text
    assert "console.colour: unknown key" in text
    assert "console.tls.cert: no such file" in text and "console.tls.key: no such file" in text


def _cli(config_path: Path, *args: str, stdin: str | None = None):
    return CliRunner().invoke(main, ["--config", str(config_path), "console", "users", *args], input=stdin)


def test_accounts_on_the_command_line(exchange, tmp_path):
    path = write_config(tmp_path, exchange.keys_dir)
    assert "no accounts yet" in _cli(path, "list").output
    added = _cli(path, "add", "alice", "--role", "operator", stdin="a long password\na long password\n")
    assert added.exit_code == 0, added.output
    assert "added alice (operator)" in added.output
    short = _cli(path, "add", "bob", "--role", "viewer", "--password-stdin", stdin="short\n")
    assert short.exit_code == 1 and "at least 10 characters" in short.output
    bad = _cli(path, "add", "Bob Smith", "--role", "viewer", "--password-stdin", stdin="a long password\n")
    assert bad.exit_code == 1 and "is not an account name" in bad.output
    role = _cli(path, "add", "carol", "--role", "root", "--password-stdin", stdin="a long password\n")
    assert role.exit_code == 2
    assert _cli(path, "add", "admin", "--role", "admin", "--password-stdin", stdin="the admin password\n").exit_code == 0
    listed = _cli(path, "list").output
    assert "alice" in listed and "operator" in listed and "admin" in listed
    assert _cli(path, "passwd", "alice", "--password-stdin", "--temporary", stdin="another long one\n").exit_code == 0
    store = UserStore(tmp_path / "var" / "console-users.yaml")
    assert store.verify("alice", "another long one").must_change
    last = _cli(path, "remove", "admin")
    assert last.exit_code == 1 and "last admin" in last.output
    assert _cli(path, "remove", "alice").exit_code == 0
    gone = _cli(path, "remove", "alice")
    assert gone.exit_code == 1 and "there is no account 'alice'" in gone.output


def _self_signed(directory: Path) -> tuple[Path, Path]:
    key = ec.generate_private_key(ec.SECP256R1())
    name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "127.0.0.1")])
    now = datetime.datetime.now(datetime.timezone.utc)
    cert = (x509.CertificateBuilder().subject_name(name).issuer_name(name).public_key(key.public_key())
            .serial_number(1).not_valid_before(now).not_valid_after(now + datetime.timedelta(days=1))
            .sign(key, hashes.SHA256()))
    cert_path, key_path = directory / "console-cert.pem", directory / "console-key.pem"
    cert_path.write_bytes(cert.public_bytes(serialization.Encoding.PEM))
    key_path.write_bytes(key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                           serialization.NoEncryption()))
    return cert_path, key_path


def test_the_console_serves_https_when_tls_is_configured(exchange, tmp_path, capsys):
    cert, key = _self_signed(tmp_path)
    settings = ConsoleSettings(port=0, tls_cert=cert, tls_key=key, users_file=tmp_path / "users.yaml",
                               secret_file=tmp_path / "secret")
    server = start_console(settings, ConsoleServices(State(exchange.config, []), NO_BROKER))
    try:
        assert server.address.startswith("https://127.0.0.1:")
        context = ssl.create_default_context(cafile=str(cert))
        context.check_hostname = False
        with urllib.request.urlopen(server.address + "healthz", context=context, timeout=10) as response:
            assert json.loads(response.read()) == {"alive": True}
            assert "max-age" in response.headers["Strict-Transport-Security"]
        with urllib.request.urlopen(server.address + "login", context=context, timeout=10) as response:
            assert 'data-test="login-form"' in response.read().decode()
    finally:
        server.stop()
    printed = capsys.readouterr().err
    assert f"the operators' console: {server.address}" in printed
    assert "first sign-in: account admin, one-time password " in printed
    one_time = printed.split("one-time password ")[1].split()[0]
    assert UserStore(settings.users_file).verify("admin", one_time).must_change


def test_the_command_line_overrides_the_console_section():
    from exchanger.cli.console import console_settings

    configured = ConsoleSettings()
    assert console_settings(configured, None, None, off=True) is None
    assert console_settings(ConsoleSettings(enabled=False), None, 9000, off=False) is None
    chosen = console_settings(configured, "0.0.0.0", 0, off=False)
    assert (chosen.bind, chosen.port, chosen.session_minutes) == ("0.0.0.0", 0, 30)
