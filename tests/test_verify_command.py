"""`exchanger verify` judges the sender's signature as the daemon does: the signer must be the sender the document names."""

from __future__ import annotations

import shutil
import subprocess

import pytest
from click.testing import CliRunner

from exchange_fixture import ROUTED_SAMPLES, SAMPLES
from exchanger.cli.main import main
from exchanger.envelope import Inbound

SIGNERS = ["ent-a", "ent-b", "customs", "ciq", "rail", "tax"]


def _verify(exchange, path):
    return CliRunner().invoke(main, ["--config", str(exchange.config_path), "verify", str(path)])


def _xmlsec1_verifies(exchange, path) -> bool:
    xmlsec1 = shutil.which("xmlsec1")
    if xmlsec1 is None:
        pytest.fail("xmlsec1 not found: install the xmlsec1 OS package (bin/test does)")
    result = subprocess.run(
        [xmlsec1, "--verify", "--trusted-pem", str(exchange.keys_dir / "ca" / "cert.pem"), str(path)],
        capture_output=True,
        text=True,
    )
    return result.returncode == 0


@pytest.mark.parametrize("sample, sender", [(s, who) for s, who, _ in ROUTED_SAMPLES], ids=[s for s, _, _ in ROUTED_SAMPLES])
def test_a_document_signed_by_another_participant_fails_with_the_daemons_words(exchange, tmp_path, sample, sender):
    """Every bundled message type, signed by every participant but its sender: valid signature, refused identity."""
    for signer in (s for s in SIGNERS if s != sender):
        path = tmp_path / f"{signer}.xml"
        path.write_bytes(exchange.signed(signer, SAMPLES / sample))
        assert _xmlsec1_verifies(exchange, path), "the signature itself must be good: only the identity is wrong"
        result = _verify(exchange, path)
        assert result.exit_code == 1, result.output
        assert "Traceback" not in result.output
        assert (
            f"FAIL sender: [authenticate/identity.mismatch] the signature is {signer}'s but the connection is {sender}'s "
            f"(as if {sender}, the sender it names, had sent it)" in result.output
        ), result.output


@pytest.mark.parametrize("sample, sender", [(s, who) for s, who, _ in ROUTED_SAMPLES], ids=[s for s, _, _ in ROUTED_SAMPLES])
def test_a_document_signed_by_its_sender_verifies(exchange, tmp_path, sample, sender):
    path = tmp_path / "signed.xml"
    path.write_bytes(exchange.signed(sender, SAMPLES / sample))
    result = _verify(exchange, path)
    assert result.exit_code == 0, result.output
    assert f"OK   sender: signed by {sender}, the sender it names" in result.output


def test_a_sender_that_is_no_participant_is_named(exchange, tmp_path):
    document = (SAMPLES / "customs-declaration/valid.xml").read_bytes().replace(b">ent-a<", b">ent-zz<")
    assert b">ent-zz<" in document
    path = tmp_path / "stranger.xml"
    path.write_bytes(exchange.signed("ent-a", document))
    result = _verify(exchange, path)
    assert result.exit_code == 1
    assert "[authenticate/identity.unknown-sender] the document's sender 'ent-zz' is not a participant" in result.output


def test_a_forward_from_the_exchange_verifies_both_layers(exchange, pipeline, tmp_path):
    """What a receiver gets: the platform's signature, and inside it the sender's, judged by identity too."""
    body = exchange.signed("ent-a", SAMPLES / "customs-declaration/valid.xml")
    disposition = pipeline.process(Inbound(body, user_id="ent-a"))
    (forward,) = [p for p in disposition.publications if p.headers.get("x-exchanger-kind") == "forward"]
    path = tmp_path / "forward.xml"
    path.write_bytes(forward.body)
    result = _verify(exchange, path)
    assert result.exit_code == 0, result.output
    assert "OK   platform: signed by the exchange (eport)" in result.output
    assert "OK   sender: signed by ent-a, the sender it names" in result.output
