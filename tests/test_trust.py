"""Trust in signing certificates: chains, validity, usage, revocation, identity, rotation, `keys` commands, TLS."""

from __future__ import annotations

import shutil
import socket
import ssl
import subprocess
import sys
import textwrap
import threading
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from ipaddress import IPv4Address
from pathlib import Path

import pika
import pika.exceptions
import pytest
import structlog
import yaml
from click.testing import CliRunner
from cryptography import x509
from cryptography.x509.oid import ExtendedKeyUsageOID, NameOID
from lxml import etree

from daemon_fixture import Authority, self_signed, signing_extensions, write_pem
from exchange_fixture import SAMPLES, Exchange, make_exchange
from exchanger.cli.main import main
from exchanger.config import ConfigError, load_config
from exchanger.dsig import SignatureError, Signer, Verifier
from exchanger.envelope import Envelope, Inbound
from exchanger.keys import trust as trust_module
from exchanger.keys.material import load_certificate, load_crl, load_private_key, serial_hex
from exchanger.keys.pki import issue_certificate, participant_uri, renew_crl, revoke_certificate
from exchanger.keys.trust import CertificateRefused, TrustStore
from exchanger.outcome import Rejected
from exchanger.participants import Participant, Registry
from exchanger.pipeline import build_pipeline
from exchanger.pipeline.stages.verify import Verify
from exchanger.transport.url import connection_parameters
from exchanger.xml.parser import parse_untrusted

DECLARATION = SAMPLES / "customs-declaration/valid.xml"
NOW = datetime.now(timezone.utc)


@pytest.fixture(scope="module")
def template(tmp_path_factory) -> Exchange:
    """The bundled configuration on a demo PKI, copied (cheaply) by every test that changes it."""
    return make_exchange(tmp_path_factory.mktemp("trust-template"))


@dataclass
class Copy:
    """A private copy of the template's configuration and keys."""

    config_path: Path
    keys_dir: Path

    def edit(self, change) -> None:
        data = yaml.safe_load(self.config_path.read_text())
        change(data)
        self.config_path.write_text(yaml.safe_dump(data, sort_keys=False))

    def register(self, participant: str, *paths: Path) -> None:
        """List exactly these certificate files for a participant."""
        self.edit(lambda data: data["participants"][participant].update(certificates=[str(p) for p in paths]))

    def problems(self) -> str:
        with pytest.raises(ConfigError) as caught:
            load_config(self.config_path)
        return "\n".join(caught.value.problems)

    def cli(self, *args: str):
        return CliRunner().invoke(main, ["--config", str(self.config_path), *args])

    def exchange(self) -> Exchange:
        return Exchange(self.config_path, self.keys_dir, load_config(self.config_path))

    def cert(self, participant: str) -> Path:
        return self.keys_dir / participant / "cert.pem"


@pytest.fixture
def copy(template, tmp_path) -> Copy:
    keys = tmp_path / "keys"
    shutil.copytree(template.keys_dir, keys)
    data = yaml.safe_load(template.config_path.read_text())
    data["keys_dir"] = str(keys)
    path = tmp_path / "routes.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    return Copy(path, keys)


@pytest.fixture(scope="module")
def ca(template) -> Authority:
    return Authority.of(template.keys_dir)


@pytest.fixture(scope="module")
def store(template, ca) -> TrustStore:
    return TrustStore([ca.certificate], [load_crl(template.keys_dir / "ca" / "crl.pem")])


def refusal(store: TrustStore, cert, identity: str | None = "ent-a", at: datetime | None = None) -> CertificateRefused:
    with pytest.raises(CertificateRefused) as caught:
        store.check(cert, identity, at=at)
    return caught.value


def add_signer(copy: Copy, participant: str, name: str, key, cert) -> tuple[Path, Path]:
    """Write an extra key and certificate into a participant's directory."""
    directory = copy.keys_dir / participant
    return write_pem(directory / f"{name}-key.pem", key), write_pem(directory / f"{name}-cert.pem", cert)


def run(exchange: Exchange, body: bytes, user: str):
    return build_pipeline(exchange.config).process(Inbound(body, user_id=user))


def signed_with(key, cert, path: Path = DECLARATION) -> bytes:
    return Signer(key, cert).sign_bytes(path.read_bytes())


# ---- the trust store --------------------------------------------------------------------------------------------


def test_a_certificate_of_the_trusted_ca_may_sign(store, template):
    store.check(load_certificate(template.keys_dir / "ent-a" / "cert.pem"), "ent-a")
    store.check(load_certificate(template.keys_dir / "eport" / "cert.pem"), "eport")


def test_a_certificate_that_is_not_pinned_is_judged_afresh_and_never_remembered(template, ca):
    """What a relayed message carries in KeyInfo is parsed anew each time: remembering it would let senders grow
    the store without bound. The verdict is the same as for a pinned certificate."""
    store = TrustStore([ca.certificate], [load_crl(template.keys_dir / "ca" / "crl.pem")])
    pem = (template.keys_dir / "ent-a" / "cert.pem").read_bytes()
    for _ in range(50):
        store.check(x509.load_pem_x509_certificate(pem), "ent-a", pinned=False)
    _, expired = ca.issue("ent-a", not_before=NOW - timedelta(days=30), not_after=NOW - timedelta(days=1))
    with pytest.raises(CertificateRefused) as caught:
        store.check(expired, "ent-a", pinned=False)
    assert caught.value.code == "certificate.expired"
    assert not store._cache, "a certificate that is not pinned was remembered"
    store.check(load_certificate(template.keys_dir / "ent-a" / "cert.pem"), "ent-a")
    assert len(store._cache) == 1, "a pinned certificate's answer is remembered"


def test_expired_certificate(store, ca):
    _, cert = ca.issue("ent-a", not_before=NOW - timedelta(days=30), not_after=NOW - timedelta(days=1))
    refused = refusal(store, cert)
    assert refused.code == "certificate.expired" and "expired on" in refused.message


def test_not_yet_valid_certificate(store, ca):
    _, cert = ca.issue("ent-a", not_before=NOW + timedelta(days=1), not_after=NOW + timedelta(days=30))
    refused = refusal(store, cert)
    assert refused.code == "certificate.not-yet-valid" and "not valid before" in refused.message


def test_revoked_certificate(template, ca, tmp_path):
    _, cert = ca.issue("ent-a")
    crl = ca.crl([cert.serial_number])
    refused = refusal(TrustStore([ca.certificate], [crl]), cert)
    assert refused.code == "certificate.revoked" and serial_hex(cert) in refused.message
    # Another CRL of the same CA that does not list it: trusted again (a new store per reload).
    TrustStore([ca.certificate], [ca.crl()]).check(cert, "ent-a")


def test_stale_crl_fails_closed_and_alerts_once(ca, monkeypatch):
    _, cert = ca.issue("ent-a")
    store = TrustStore([ca.certificate], [ca.crl(next_update=NOW - timedelta(hours=2))])
    with structlog.testing.capture_logs() as events:
        # A fresh logger proxy binds to the capturing configuration, whatever was cached before.
        monkeypatch.setattr(trust_module, "log", structlog.get_logger("exchanger.trust"))
        first = refusal(store, cert)
        second = refusal(store, cert)
    assert first.code == second.code == "certificate.crl-stale"
    assert "was due for renewal" in first.message
    stale = [e for e in events if e["event"] == "trust.crl_stale"]
    assert len(stale) == 1, events  # an alert, not one line per refused message
    assert stale[0]["log_level"] == "error" and "exchanger demo root CA" in stale[0]["issuer"]


def test_certificate_of_another_ca(store):
    other = Authority.create("another CA")
    _, cert = other.issue("ent-a")
    refused = refusal(store, cert)
    assert refused.code == "certificate.untrusted" and "does not chain to a trusted CA" in refused.message


def test_self_signed_certificate(store):
    _, cert = self_signed("ent-a")
    assert refusal(store, cert).code == "certificate.untrusted"


def test_certificate_naming_someone_else(store, template):
    refused = refusal(store, load_certificate(template.keys_dir / "ent-b" / "cert.pem"), "ent-a")
    assert refused.code == "certificate.identity"
    assert "names ent-b in CN, not ent-a" in refused.message


@pytest.mark.parametrize(
    ("extension", "why"),
    [
        (signing_extensions("ent-a", digital_signature=False), "does not allow digital signatures"),
        (signing_extensions("ent-a", purposes=[ExtendedKeyUsageOID.SERVER_AUTH]), "restricted to other purposes (serverAuth)"),
        (signing_extensions("ent-a")[2:], "no keyUsage extension"),
        ([(x509.BasicConstraints(ca=True, path_length=None), True), *signing_extensions("ent-a")[1:]], "is a CA certificate"),
    ],
    ids=["no-digital-signature", "server-only", "no-key-usage", "ca"],
)
def test_certificate_that_may_not_sign(store, ca, extension, why):
    _, cert = ca.issue_with("ent-a", extension)
    refused = refusal(store, cert)
    assert refused.code == "certificate.usage" and why in refused.message


def test_email_protection_certificates_may_sign(store, ca):
    _, cert = ca.issue_with("ent-a", signing_extensions("ent-a", purposes=[ExtendedKeyUsageOID.EMAIL_PROTECTION]))
    store.check(cert, "ent-a")


@pytest.mark.parametrize(
    ("field", "attribute", "value"),
    [
        ("organizationIdentifier", NameOID.ORGANIZATION_IDENTIFIER, "ent-a"),
        ("serialNumber", NameOID.SERIAL_NUMBER, "ent-a"),
        ("CN", NameOID.COMMON_NAME, "ent-a"),
    ],
)
def test_identity_field(ca, store, field, attribute, value):
    key, cert = ca.issue("someone-else")
    builder = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "Shown Name"), x509.NameAttribute(attribute, value)]))
        .issuer_name(ca.certificate.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(cert.not_valid_before_utc)
        .not_valid_after(cert.not_valid_after_utc)
    )
    for extension in cert.extensions:
        builder = builder.add_extension(extension.value, extension.critical)
    named = builder.sign(ca.key, cert.signature_hash_algorithm)
    by_field = TrustStore(store.anchors, [ca.crl()], identity_field=field)
    by_field.check(named, "ent-a")
    assert refusal(by_field, named, "ent-b").code == "certificate.identity"


def test_identity_by_san_uri(store, ca):
    by_uri = TrustStore(store.anchors, [ca.crl()], identity_field="SAN-URI")
    _, cert = ca.issue("ent-a")
    assert participant_uri("ent-a") in str(cert.extensions.get_extension_for_class(x509.SubjectAlternativeName).value)
    by_uri.check(cert, "ent-a")
    assert refusal(by_uri, cert, "ent-b").code == "certificate.identity"


def test_several_anchors_each_with_its_own_crl(ca):
    regional = Authority.create("regional exchange CA")
    _, national_cert = ca.issue("ent-a")
    _, regional_cert = regional.issue("ent-a")
    store = TrustStore([ca.certificate, regional.certificate], [ca.crl(), regional.crl([regional_cert.serial_number])])
    assert store.problems == []
    store.check(national_cert, "ent-a")
    assert refusal(store, regional_cert).code == "certificate.revoked"


def test_an_anchor_without_crl_refuses_its_certificates(ca):
    other = Authority.create("CA without CRL")
    store = TrustStore([ca.certificate, other.certificate], [ca.crl()])
    assert any("no CRL for trust anchor" in p and "CA without CRL" in p for p in store.problems)
    _, cert = other.issue("ent-a")
    assert refusal(store, cert).code == "certificate.crl-missing"


def test_a_crl_signed_by_no_anchor_is_a_problem(ca):
    store = TrustStore([ca.certificate], [ca.crl(), Authority.create("stranger").crl()])
    assert any("CN=stranger" in p and "not signed by any trust anchor" in p for p in store.problems)


def test_an_answer_is_cached_until_the_crl_or_the_certificate_runs_out(ca):
    _, cert = ca.issue("ent-a", not_after=NOW + timedelta(days=30))
    crl = ca.crl()
    store = TrustStore([ca.certificate], [crl])
    store.check(cert, "ent-a")
    ((cached, outcome),) = store._cache.values()
    assert cached is cert
    assert outcome.refused is None and outcome.until == min(crl.next_update_utc, cert.not_valid_after_utc)
    # The same question at a later time is answered afresh: by then the CRL is stale.
    assert refusal(store, cert, at=crl.next_update_utc + timedelta(seconds=1)).code == "certificate.crl-stale"


# ---- the loader: identity, the platform's own certificate, the trust section -------------------------------------


def test_the_loader_refuses_a_certificate_that_names_someone_else(copy):
    copy.register("ent-a", copy.cert("ent-a"), copy.cert("ent-b"))
    assert "participants.ent-a.certificates: the certificate" in copy.problems()
    assert "names ent-b in CN, not ent-a" in copy.problems()


def test_the_trust_section_is_checked(copy):
    copy.edit(lambda data: data["trust"].update(identity_field="email", expiry_warning_days=0, crls=[str(copy.keys_dir / "nope.pem")]))
    problems = copy.problems()
    assert "trust.identity_field: must be one of CN, organizationIdentifier, serialNumber, SAN-URI" in problems
    assert "trust.expiry_warning_days: must be a positive whole number" in problems
    assert "nope.pem not found" in problems and "no CRL for trust anchor" in problems


@pytest.mark.parametrize("broken", ["revoked", "expired", "untrusted"])
def test_routes_check_refuses_a_platform_certificate_that_is_not_valid(copy, ca, broken):
    if broken == "revoked":
        revoke_certificate(copy.keys_dir, load_certificate(copy.cert("eport")).serial_number)
    else:
        if broken == "expired":
            key, cert = ca.issue("eport", not_before=NOW - timedelta(days=60), not_after=NOW - timedelta(days=1))
        else:
            key, cert = self_signed("eport")
        write_pem(copy.keys_dir / "eport" / "key.pem", key)
        write_pem(copy.cert("eport"), cert)
    result = copy.cli("routes", "check")
    assert result.exit_code == 1, result.output
    assert f"platform.certificate: certificate.{broken}" in result.output
    assert "keys issue eport" in result.output


def test_the_daemon_does_not_start_on_a_revoked_platform_certificate(copy):
    """The same loader as `routes check`: refused before the broker is even contacted."""
    revoke_certificate(copy.keys_dir, load_certificate(copy.cert("eport")).serial_number)
    result = subprocess.run(
        [sys.executable, "-m", "exchanger", "--config", str(copy.config_path), "--amqp-url", "amqp://127.0.0.1:9/%2F", "run"],
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1, result.stdout + result.stderr
    assert "platform.certificate: certificate.revoked" in result.stderr


def test_a_participant_certificate_that_expired_does_not_stop_the_exchange(copy, ca):
    """Only the messages signed with it are refused (see the verify stage tests); `keys check` reports it."""
    key, cert = ca.issue("ent-a", not_before=NOW - timedelta(days=60), not_after=NOW - timedelta(days=1))
    write_pem(copy.cert("ent-a"), cert)
    load_config(copy.config_path)


# ---- the verify stage ---------------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "make", "code"),
    [
        ("self-signed", lambda ca: self_signed("ent-a"), "certificate.untrusted"),
        ("expired", lambda ca: ca.issue("ent-a", not_before=NOW - timedelta(days=9), not_after=NOW - timedelta(days=1)), "certificate.expired"),
        ("future", lambda ca: ca.issue("ent-a", not_before=NOW + timedelta(days=1), not_after=NOW + timedelta(days=9)), "certificate.not-yet-valid"),
        ("no-signing", lambda ca: ca.issue_with("ent-a", signing_extensions("ent-a", digital_signature=False)), "certificate.usage"),
    ],
)
def test_a_registered_certificate_is_still_checked_at_every_message(copy, ca, name, make, code):
    """Registering a certificate pins it; it must still chain to a trusted CA, be valid now and allow signing."""
    key, cert = make(ca)
    _, cert_path = add_signer(copy, "ent-a", name, key, cert)
    copy.register("ent-a", copy.cert("ent-a"), cert_path)
    exchange = copy.exchange()
    disposition = run(exchange, signed_with(key, cert), "ent-a")
    assert disposition.outcome == "rejected"
    assert (disposition.reasons[0].stage, disposition.reasons[0].code) == ("verify", code)
    assert any(p.routing_key == "ent-a" for p in disposition.publications)  # the receipt says why
    assert run(exchange, exchange.signed("ent-a", DECLARATION), "ent-a").outcome == "accepted"


def test_revocation_applies_from_the_next_load(copy):
    exchange = copy.exchange()
    body = exchange.signed("ent-a", DECLARATION)
    assert run(exchange, body, "ent-a").outcome == "accepted"
    revoke_certificate(copy.keys_dir, load_certificate(copy.cert("ent-a")).serial_number, reason=x509.ReasonFlags.key_compromise)
    reason = run(copy.exchange(), body, "ent-a").reasons[0]
    assert reason.code == "certificate.revoked" and "(keyCompromise)" in reason.message


def test_a_stale_crl_refuses_its_ca_only(copy, monkeypatch):
    """A second trusted CA whose CRL is stale: its participant is refused, the platform and others go on."""
    regional = Authority.create("regional CA")
    anchor = write_pem(copy.keys_dir / "regional" / "cert.pem", regional.certificate)
    stale = write_pem(copy.keys_dir / "regional" / "crl.pem", regional.crl(next_update=NOW - timedelta(hours=1)))
    key, cert = regional.issue("ent-b")
    _, cert_path = add_signer(copy, "ent-b", "regional", key, cert)
    copy.register("ent-b", cert_path)
    copy.edit(
        lambda data: data["trust"].update(
            anchors=[str(copy.keys_dir / "ca" / "cert.pem"), str(anchor)],
            crls=[str(copy.keys_dir / "ca" / "crl.pem"), str(stale)],
        )
    )
    exchange = copy.exchange()
    body = signed_with(key, cert, _with_sender(SAMPLES / "forex-verification/valid.xml", "ent-b", copy.keys_dir))
    with structlog.testing.capture_logs() as events:
        monkeypatch.setattr(trust_module, "log", structlog.get_logger("exchanger.trust"))
        reason = run(exchange, body, "ent-b").reasons[0]
    assert (reason.stage, reason.code) == ("verify", "certificate.crl-stale")
    assert [e["event"] for e in events if e["event"].startswith("trust.")] == ["trust.crl_stale"]
    assert run(exchange, exchange.signed("ent-a", DECLARATION), "ent-a").outcome == "accepted"


def _with_sender(path: Path, sender: str, directory: Path) -> Path:
    document = path.read_bytes().replace(b"<cm:SenderId>ent-a</cm:SenderId>", f"<cm:SenderId>{sender}</cm:SenderId>".encode())
    out = directory / f"{sender}-{path.name}"
    out.write_bytes(document)
    return out


def test_the_verify_stage_refuses_a_certificate_naming_someone_else(template, store):
    """Even in a registry the loader did not check, the signer's certificate must name the participant."""
    ent_b = load_certificate(template.keys_dir / "ent-b" / "cert.pem")
    registry = Registry([Participant("ent-a", "enterprise", "A", "ent-a", (ent_b,))])
    envelope = Envelope(Inbound(template.signed("ent-b", DECLARATION)))
    envelope.tree = parse_untrusted(envelope.inbound.body)
    with pytest.raises(Rejected) as caught:
        Verify(registry, trust=store)(envelope)
    assert caught.value.reasons[0].code == "certificate.identity"


def test_without_a_trust_store_nothing_is_accepted(template):
    """A verify stage given no trust store refuses every signature rather than skip the chain check."""
    registry = Registry([Participant("ent-a", "enterprise", "A", "ent-a", (load_certificate(template.keys_dir / "ent-a" / "cert.pem"),))])
    envelope = Envelope(Inbound(template.signed("ent-a", DECLARATION)))
    envelope.tree = parse_untrusted(envelope.inbound.body)
    with pytest.raises(Rejected) as caught:
        Verify(registry, None)(envelope)
    assert caught.value.reasons[0].code == "certificate.untrusted"


# ---- rotation -------------------------------------------------------------------------------------------------------


def test_rotation_overlap_both_certificates_verify_until_the_old_one_goes(copy):
    old_key, old_cert = load_private_key(copy.keys_dir / "ent-a" / "key.pem"), load_certificate(copy.cert("ent-a"))
    result = copy.cli("keys", "issue", "ent-a")
    assert result.exit_code == 0, result.output
    kept = copy.keys_dir / "ent-a" / f"cert-{serial_hex(old_cert)}.pem"
    assert load_certificate(kept) == old_cert
    assert kept.name in result.output and "participants.ent-a.certificates" in result.output
    new = copy.exchange()  # the default: only keys/ent-a/cert.pem, the new one
    new_body = new.signed("ent-a", DECLARATION)
    old_body = signed_with(old_key, old_cert)
    assert run(new, new_body, "ent-a").outcome == "accepted"
    assert run(new, old_body, "ent-a").reasons[0].code == "signature.certificate"

    copy.register("ent-a", copy.cert("ent-a"), kept)
    overlap = copy.exchange()
    assert run(overlap, new_body, "ent-a").outcome == "accepted"
    assert run(overlap, old_body, "ent-a").outcome == "accepted"

    revoke_certificate(copy.keys_dir, old_cert.serial_number, reason=x509.ReasonFlags.superseded)
    ended = copy.exchange()
    assert run(ended, old_body, "ent-a").reasons[0].code == "certificate.revoked"
    assert run(ended, new_body, "ent-a").outcome == "accepted"


def test_an_expired_old_certificate_stops_verifying_while_the_new_one_goes_on(copy, ca):
    old_key, old_cert = ca.issue("ent-a", not_before=NOW - timedelta(days=400), not_after=NOW - timedelta(seconds=1))
    _, old_path = add_signer(copy, "ent-a", "old", old_key, old_cert)
    copy.register("ent-a", copy.cert("ent-a"), old_path)
    exchange = copy.exchange()
    assert run(exchange, signed_with(old_key, old_cert), "ent-a").reasons[0].code == "certificate.expired"
    assert run(exchange, exchange.signed("ent-a", DECLARATION), "ent-a").outcome == "accepted"


def test_platform_key_rotation_signs_with_the_new_key_from_the_next_pipeline(copy, ca):
    exchange = copy.exchange()
    body = exchange.signed("ent-a", DECLARATION)
    old_cert = load_certificate(copy.cert("eport"))
    key, cert = ca.issue("eport")
    key_path, cert_path = add_signer(copy, "eport", "2026", key, cert)
    copy.edit(lambda data: data["platform"].update(key=str(key_path), certificate=str(cert_path)))
    rotated = build_pipeline(load_config(copy.config_path))  # what SIGHUP does in each worker
    (forward,) = [p for p in rotated.process(Inbound(body, user_id="ent-a")).publications if p.routing_key == "customs"]
    root = etree.fromstring(forward.body)
    assert Verifier().verify(root, [cert]).certificate == cert
    with pytest.raises(SignatureError) as caught:
        Verifier().verify(root, [old_cert])
    assert caught.value.code == "signature.certificate"


# ---- keys list / check / issue / revoke ---------------------------------------------------------------------------


def test_keys_check_passes_on_the_good_configuration(copy):
    result = copy.cli("keys", "check")
    assert result.exit_code == 0, result.output
    assert "OK: 12 certificate(s) and 1 CRL(s) checked" in result.output


def _expired(copy, ca, participant="ent-a"):
    key, cert = ca.issue(participant, not_before=NOW - timedelta(days=60), not_after=NOW - timedelta(days=1))
    write_pem(copy.keys_dir / participant / "key.pem", key)
    write_pem(copy.cert(participant), cert)


def _stale_crl(copy, ca):
    write_pem(copy.keys_dir / "ca" / "crl.pem", ca.crl(next_update=NOW - timedelta(days=1)))


def _untrusted(copy, ca):
    key, cert = self_signed("ent-a")
    write_pem(copy.keys_dir / "ent-a" / "key.pem", key)
    write_pem(copy.cert("ent-a"), cert)


BROKEN_KEYS = {
    "expired": (_expired, [], "ent-a: ", "certificate.expired"),
    "platform-expired": (lambda copy, ca: _expired(copy, ca, "eport"), [], "eport (platform): ", "certificate.expired"),
    "revoked": (lambda copy, ca: revoke_certificate(copy.keys_dir, load_certificate(copy.cert("ent-b")).serial_number), [], "ent-b: ", "certificate.revoked"),
    "expiring": (lambda copy, ca: None, ["--warn-days", "800"], "ent-a: ", "expires in 729 day(s)"),
    "key-mismatch": (lambda copy, ca: write_pem(copy.keys_dir / "tax" / "key.pem", ca.issue("tax")[0]), [], "tax: ", "does not belong to the private key"),
    "crl-stale": (_stale_crl, [], "the CRL of ", "is stale since"),
    "untrusted": (_untrusted, [], "ent-a: ", "certificate.untrusted"),
    "no-crl": (lambda copy, ca: (copy.keys_dir / "ca" / "crl.pem").unlink(), [], "crl.pem not found", "certificate.crl-missing"),
}


@pytest.mark.parametrize("broken", list(BROKEN_KEYS))
def test_keys_check_fails_on_each_broken_configuration(copy, ca, broken):
    breaks, options, where, what = BROKEN_KEYS[broken]
    breaks(copy, ca)
    result = copy.cli("keys", "check", *options)
    assert result.exit_code == 1, result.output
    assert "problem(s) with the exchange's keys and certificates" in result.output
    assert where in result.output and what in result.output, result.output


def test_keys_list_shows_every_certificate_with_its_state(copy):
    revoke_certificate(copy.keys_dir, load_certificate(copy.cert("ent-b")).serial_number)
    result = copy.cli("keys", "list")
    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert lines[0].split() == ["OWNER", "SUBJECT", "ISSUER", "SERIAL", "NOT", "AFTER", "DAYS", "STATUS"]
    rows = {line.split()[0]: line for line in lines[1:13]}
    assert set(rows) == {"(trust", "eport", *(p for p in load_config(copy.config_path).registry.ids())}
    ent_a = load_certificate(copy.cert("ent-a"))
    assert serial_hex(ent_a) in rows["ent-a"] and rows["ent-a"].endswith("729   valid")
    assert rows["ent-b"].endswith("revoked")
    assert "CN=exchanger demo root CA" in rows["ent-a"]
    assert any(line.startswith("CRL OF") for line in lines) and "current" in result.output


def test_keys_revoke_by_serial_and_its_refusals(copy):
    cert = load_certificate(copy.cert("ciq"))
    as_openssl_shows_it = ":".join(textwrap.wrap(serial_hex(cert), 2))
    result = copy.cli("keys", "revoke", as_openssl_shows_it, "--reason", "cessationOfOperation")
    assert result.exit_code == 0, result.output
    crl = load_crl(copy.keys_dir / "ca" / "crl.pem")
    entry = crl.get_revoked_certificate_by_serial_number(cert.serial_number)
    assert entry.extensions.get_extension_for_class(x509.CRLReason).value.reason == x509.ReasonFlags.cessation_of_operation
    assert "CRL number 2" in result.output
    again = copy.cli("keys", "revoke", "ciq")  # already revoked: the list is only renewed
    assert again.exit_code == 0 and len(list(load_crl(copy.keys_dir / "ca" / "crl.pem"))) == 1
    assert copy.cli("keys", "revoke", "not-a-serial!").exit_code == 2
    assert copy.cli("keys", "issue", "nobody").exit_code == 2


def test_keys_init_renews_a_crl_about_to_go_stale_keeping_its_entries(copy, ca):
    revoke_certificate(copy.keys_dir, 12345)
    soon = ca.crl([12345], next_update=NOW + timedelta(days=2))
    write_pem(copy.keys_dir / "ca" / "crl.pem", soon)
    assert copy.cli("keys", "init").exit_code == 0
    renewed = load_crl(copy.keys_dir / "ca" / "crl.pem")
    assert renewed.next_update_utc > NOW + timedelta(days=29)
    assert renewed.get_revoked_certificate_by_serial_number(12345) is not None
    assert renew_crl(copy.keys_dir).extensions.get_extension_for_class(x509.CRLNumber).value.crl_number == 3


def test_issue_with_the_same_key_renews_the_certificate_only(copy):
    key_before = (copy.keys_dir / "ent-b" / "key.pem").read_bytes()
    result = copy.cli("keys", "issue", "ent-b", "--same-key")
    assert result.exit_code == 0, result.output
    assert (copy.keys_dir / "ent-b" / "key.pem").read_bytes() == key_before
    assert len(list((copy.keys_dir / "ent-b").glob("cert-*.pem"))) == 1
    assert issue_certificate(copy.keys_dir, "ent-b", "B", keep_previous=True)[0].name.startswith("cert-")


# ---- TLS: one certificate to connect and to sign ------------------------------------------------------------------


def test_amqps_url_builds_a_verifying_tls_context_with_the_client_certificate(template):
    keys = template.keys_dir
    url = (
        f"amqps://broker.example:5671/%2F?cacertfile={keys}/ca/cert.pem&certfile={keys}/ent-a/cert.pem"
        f"&keyfile={keys}/ent-a/key.pem&auth_mechanism=external&heartbeat=7"
    )
    params = connection_parameters(url)
    context = params.ssl_options.context
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    assert params.ssl_options.server_hostname == "broker.example"
    assert params.credentials.TYPE == "EXTERNAL"
    assert params.heartbeat == 7 and params.port == 5671
    assert "exchanger demo root CA" in str(context.get_ca_certs())


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("amqp://h/%2F?cacertfile=/x", "need an amqps:// URL"),
        ("amqps://h/%2F?auth_mechanism=external", "needs a client certificate"),
        ("amqps://h/%2F?certfile=/c&auth_mechanism=amqplain", "must be plain or external"),
        ("amqps://h/%2F?certfile=/c&ssl_options={}", "not both"),
    ],
)
def test_tls_parameters_that_cannot_work_are_refused(url, message):
    with pytest.raises(ValueError, match=message):
        connection_parameters(url)


def test_the_participant_certificate_is_presented_to_a_tls_broker(template):
    """A TLS server that requires client certificates, as RabbitMQ with verify_peer does, sees ent-a's certificate."""
    keys = template.keys_dir
    ca = Authority.of(keys)
    server_key, server_cert = ca.issue_with(
        "localhost",
        [
            (x509.BasicConstraints(ca=False, path_length=None), True),
            (x509.KeyUsage(True, False, True, False, False, False, False, False, False), True),
            (x509.ExtendedKeyUsage([ExtendedKeyUsageOID.SERVER_AUTH]), False),
            (x509.SubjectAlternativeName([x509.IPAddress(IPv4Address("127.0.0.1"))]), False),
        ],
    )
    directory = keys.parent / "tls"
    key_path, cert_path = write_pem(directory / "server-key.pem", server_key), write_pem(directory / "server.pem", server_cert)
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.load_cert_chain(cert_path, key_path)
    context.verify_mode = ssl.CERT_REQUIRED
    context.load_verify_locations(keys / "ca" / "cert.pem")
    listener = socket.create_server(("127.0.0.1", 0))
    port = listener.getsockname()[1]
    seen: list = []

    def serve():
        connection, _ = listener.accept()
        with context.wrap_socket(connection, server_side=True) as tls:
            seen.append(tls.getpeercert())
        # Closing here, before any AMQP is spoken, ends the client's connection attempt.

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    url = (
        f"amqps://127.0.0.1:{port}/%2F?cacertfile={keys}/ca/cert.pem&certfile={keys}/ent-a/cert.pem"
        f"&keyfile={keys}/ent-a/key.pem&auth_mechanism=external&connection_attempts=1&socket_timeout=5"
    )
    with pytest.raises(pika.exceptions.AMQPConnectionError):
        pika.BlockingConnection(connection_parameters(url))
    thread.join(timeout=10)
    listener.close()
    (peer,) = seen
    assert (("commonName", "ent-a"),) in peer["subject"]
