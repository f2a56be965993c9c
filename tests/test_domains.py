"""Trust domains: a peer e-port's platform is trusted within the domain configured for it, not within this
exchange's own; a domain's shape is checked like every other part of the configuration."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest
import yaml

from exchange_fixture import ROUTES, SAMPLES, write_config
from exchanger.config import ConfigError, load_config
from exchanger.config.loader import read_identities
from exchanger.dsig.signer import Signer
from exchanger.envelope import Envelope, Inbound
from exchanger.keys.domains import MemberPattern, TrustDomain
from exchanger.keys.pki import init_demo_pki
from exchanger.outcome import Rejected
from exchanger.pipeline.runner import checking_stages


def _pki(directory: Path, data: dict) -> Path:
    """Write a configuration and make its demo PKI; return the configuration's path."""
    config_path = write_config(directory, directory / "keys", **data)
    _, platform, identities, daemon_user = read_identities(config_path)
    init_demo_pki(directory / "keys", [platform, *identities], algorithm="ec", daemon_user=daemon_user)
    return config_path


@pytest.fixture(scope="module")
def two(tmp_path_factory) -> tuple[Path, Path]:
    """Exchange A (platform "eport") and exchange B (platform "eport-b"), which registers A as the peer "eport"."""
    root = tmp_path_factory.mktemp("domains")
    (root / "a").mkdir()
    a_config = _pki(root / "a", {})
    a_keys = root / "a" / "keys"
    data = yaml.safe_load(ROUTES.read_text())
    data["platform"]["id"] = "eport-b"
    (root / "b").mkdir()
    b_config = _pki(root / "b", {"platform": data["platform"]})
    # What A's operators hand B: A's platform certificate, A's CA certificate and CRL.
    peer_dir = root / "b" / "peers" / "eport"
    peer_dir.mkdir(parents=True)
    for name, source in (("platform.pem", a_keys / "eport" / "cert.pem"), ("ca.pem", a_keys / "ca" / "cert.pem"), ("crl.pem", a_keys / "ca" / "crl.pem")):
        shutil.copy(source, peer_dir / name)
    return a_config, b_config


def _with_peer(b_config: Path, tmp_path: Path, **domain) -> Path:
    """B's configuration with A registered as the peer "eport", with the given domain (none when empty)."""
    data = yaml.safe_load(b_config.read_text())
    peer = {"kind": "peer-eport", "name": "Exchange A", "certificates": [str(b_config.parent / "peers" / "eport" / "platform.pem")]}
    if domain:
        peer["domain"] = domain
    data["participants"]["eport"] = peer
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return path


def _domain(b_config: Path, **extra) -> dict:
    peers = b_config.parent / "peers" / "eport"
    return {"anchors": [str(peers / "ca.pem")], "crls": [str(peers / "crl.pem")], **extra}


def _verdict(config_path: Path, signed: bytes, user: str) -> str:
    """What the daemon's checking stages say of a document sent by a broker user: "accepted" or the refusal."""
    config = load_config(config_path)
    envelope = Envelope(Inbound(signed, user_id=user))
    try:
        for stage in checking_stages(config):
            stage(envelope)
    except Rejected as rejected:
        reason = rejected.reasons[0]
        return f"{reason.stage}/{reason.code}"
    return "accepted"


def test_a_peer_platform_is_trusted_within_its_domain_only(two, tmp_path: Path) -> None:
    a_config, b_config = two
    a_keys = a_config.parent / "keys"
    # A document whose sender is the peer itself (a receipt A's platform relays, say): signed by A's platform key.
    document = (SAMPLES / "agency-receipt" / "valid.xml").read_bytes().replace(b">customs<", b">eport<", 1)
    signed = Signer(a_keys / "eport" / "key.pem", a_keys / "eport" / "cert.pem").sign_bytes(document)
    assert _verdict(_with_peer(b_config, tmp_path, **_domain(b_config)), signed, "eport") == "accepted"
    without = tmp_path / "without"
    without.mkdir()
    assert _verdict(_with_peer(b_config, without), signed, "eport") == "verify/certificate.untrusted"


def test_a_peer_certificate_outside_its_domain_is_a_configuration_problem(two, tmp_path: Path) -> None:
    a_config, b_config = two
    b_ca = b_config.parent / "keys" / "ca"
    path = _with_peer(b_config, tmp_path, anchors=[str(b_ca / "cert.pem")], crls=[str(b_ca / "crl.pem")])
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "participants.eport.certificates" in str(caught.value) and "its own domain" in str(caught.value)


def test_only_a_peer_has_a_domain(two, tmp_path: Path) -> None:
    _, b_config = two
    data = yaml.safe_load(b_config.read_text())
    data["participants"]["customs"]["domain"] = _domain(b_config)
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert "participants.customs.domain" in str(caught.value)


@pytest.mark.parametrize(("members", "problem"), [(["ent-*x"], "one *"), (["*"], "prefix"), ([""], "prefix")])
def test_member_patterns_are_ids_or_prefixes(two, tmp_path: Path, members, problem) -> None:
    _, b_config = two
    with pytest.raises(ConfigError) as caught:
        load_config(_with_peer(b_config, tmp_path, **_domain(b_config, members=members)))
    assert "participants.eport.domain.members" in str(caught.value) and problem in str(caught.value)


def test_a_domain_without_crls_is_refused_by_the_schema(two, tmp_path: Path) -> None:
    _, b_config = two
    domain = _domain(b_config)
    del domain["crls"]
    with pytest.raises(ConfigError) as caught:
        load_config(_with_peer(b_config, tmp_path, **domain))
    assert "crls" in str(caught.value)


def test_a_domain_loads_with_its_members(two, tmp_path: Path) -> None:
    _, b_config = two
    config = load_config(_with_peer(b_config, tmp_path, **_domain(b_config, members=["ent-*", "rail-xa"])))
    domain = config.domains["eport"]
    assert [p.text for p in domain.members] == ["ent-*", "rail-xa"]
    assert "eport: anchors" in domain.describe()


@pytest.mark.parametrize(
    ("identity", "vouched"),
    [("eport", True), ("ent-a", True), ("ent-", True), ("rail-xa", True), ("rail-xab", False), ("customs", False), ("xent-a", False)],
)
def test_whom_a_domain_vouches_for(identity: str, vouched: bool) -> None:
    domain = TrustDomain("eport", store=None, members=(MemberPattern("ent-*"), MemberPattern("rail-xa")))  # type: ignore[arg-type]
    assert domain.vouches_for(identity) is vouched
