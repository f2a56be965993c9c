"""SM2 certificates and CRLs: the demo PKI's, judged by openssl, and trust in them beside RSA ones.

OpenSSL 3.0 checks SM2 certificate chains (`openssl verify -vfyopt distid:...`) but checks SM2 CRL
signatures with an empty signer ID whatever it is told, so CRL signatures are judged here with
`openssl pkeyutl -verify` over the CRL's TBS bytes instead.
"""

from __future__ import annotations

import base64
import shutil
import subprocess
from dataclasses import dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.x509.oid import ExtensionOID
from lxml import etree

from exchange_fixture import ROUTED_SAMPLES, SAMPLES, make_exchange, write_config
from exchanger.cli.main import main
from exchanger.config import load_config
from exchanger.dsig.methods import SM2_SM3
from exchanger.dsig.signer import Signer
from exchanger.dsig.verifier import Verifier
from exchanger.envelope import Inbound
from exchanger.keys import init_demo_pki, load_certificate
from exchanger.keys.builders import (
    build_ca_certificate,
    build_crl,
    build_participant_certificate,
    generate_key,
    key_pem,
)
from exchanger.keys.material import load_crl, serial_hex
from exchanger.keys.sm2 import Sm2Error
from exchanger.keys.trust import CertificateRefused, TrustStore
from exchanger.keys.x509_signing import crl_signed_by, issued_by
from exchanger.pipeline import build_pipeline

SM2_WITH_SM3 = "1.2.156.10197.1.501"
STANDARD_ID = "1234567812345678"
NOW = datetime.now(timezone.utc)
DOCUMENT = b"<dec:Declaration xmlns:dec='urn:example:declaration'><dec:Id>D-1</dec:Id></dec:Declaration>"


def openssl(*args: str, cwd: Path | None = None, check: bool = True) -> subprocess.CompletedProcess[str]:
    path = shutil.which("openssl")
    if path is None:
        pytest.fail("openssl not found: install the openssl OS package")
    result = subprocess.run([path, *args], capture_output=True, text=True, check=False, cwd=cwd)
    if check and result.returncode != 0:
        pytest.fail(f"openssl {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result


@dataclass
class Authority:
    """A CA made with the exchange's builders, issuing certificates and CRLs on demand."""

    key: object
    certificate: x509.Certificate

    @classmethod
    def create(cls, name: str, algorithm: str = "sm2") -> Authority:
        key = generate_key(algorithm)
        return cls(key, build_ca_certificate(key, name))

    def issue(self, participant: str, **validity) -> tuple[object, x509.Certificate]:
        key = generate_key("sm2" if self.is_sm2 else "rsa")
        return key, build_participant_certificate(key, participant, participant, self.certificate, self.key, **validity)

    def crl(self, revoked: list[int] = ()) -> x509.CertificateRevocationList:
        entries = [
            x509.RevokedCertificateBuilder().serial_number(serial).revocation_date(NOW).build() for serial in revoked
        ]
        return build_crl(self.certificate, self.key, entries, 1)

    @property
    def is_sm2(self) -> bool:
        return self.certificate.signature_algorithm_oid.dotted_string == SM2_WITH_SM3


@pytest.fixture(scope="module")
def sm2_keys(tmp_path_factory) -> Path:
    keys_dir = tmp_path_factory.mktemp("sm2-pki") / "keys"
    init_demo_pki(keys_dir, [("eport", "Electronic Port"), ("ent-a", "Enterprise A")], algorithm="sm2")
    return keys_dir


@pytest.fixture(scope="module")
def sm2_ca() -> Authority:
    return Authority.create("SM2 root CA")


@pytest.fixture(scope="module")
def rsa_ca() -> Authority:
    return Authority.create("RSA root CA", "rsa")


def refusal(store: TrustStore, certificate, identity: str | None = "ent-a", at: datetime | None = None) -> CertificateRefused:
    with pytest.raises(CertificateRefused) as caught:
        store.check(certificate, identity, at=at)
    return caught.value


# ---- what the demo PKI writes, as openssl reads it ----------------------------------------------------------------


def test_the_sm2_ca_and_its_certificates_verify_in_openssl(sm2_keys):
    ca = str(sm2_keys / "ca" / "cert.pem")
    text = openssl("x509", "-in", ca, "-noout", "-text").stdout
    assert "Signature Algorithm: SM2-with-SM3" in text and "ASN1 OID: SM2" in text
    for path in (ca, str(sm2_keys / "ent-a" / "cert.pem"), str(sm2_keys / "eport" / "cert.pem")):
        result = openssl("verify", "-vfyopt", f"distid:{STANDARD_ID}", "-CAfile", ca, path, check=False)
        assert result.returncode == 0 and f"{path}: OK" in result.stdout, result.stdout + result.stderr
    # The control: with OpenSSL 3.0's empty default ID the signature of the certificate does not verify.
    assert openssl("verify", "-CAfile", ca, str(sm2_keys / "ent-a" / "cert.pem"), check=False).returncode != 0


def test_the_sm2_crl_signature_verifies_in_openssl_over_its_tbs(sm2_keys, tmp_path):
    crl = load_crl(sm2_keys / "ca" / "crl.pem")
    assert crl.signature_algorithm_oid.dotted_string == SM2_WITH_SM3
    (tmp_path / "tbs.der").write_bytes(crl.tbs_certlist_bytes)
    (tmp_path / "sig.der").write_bytes(crl.signature)
    pub = tmp_path / "ca-pub.pem"
    pub.write_text(openssl("x509", "-in", str(sm2_keys / "ca" / "cert.pem"), "-pubkey", "-noout").stdout)
    result = openssl(
        "pkeyutl", "-verify", "-pubin", "-inkey", str(pub), "-rawin", "-digest", "sm3", "-pkeyopt",
        f"distid:{STANDARD_ID}", "-in", str(tmp_path / "tbs.der"), "-sigfile", str(tmp_path / "sig.der"), check=False,
    )
    assert "Signature Verified Successfully" in result.stdout, result.stdout + result.stderr
    assert openssl("crl", "-in", str(sm2_keys / "ca" / "crl.pem"), "-noout", "-text").returncode == 0


def test_sm2_certificates_carry_the_same_extensions_as_rsa_ones(sm2_keys, demo_pki):
    sm2_cert = load_certificate(sm2_keys / "ent-a" / "cert.pem")
    rsa_cert = load_certificate(demo_pki.cert("ent-a"))
    assert [e.oid for e in sm2_cert.extensions] == [e.oid for e in rsa_cert.extensions]
    for oid in (ExtensionOID.BASIC_CONSTRAINTS, ExtensionOID.EXTENDED_KEY_USAGE, ExtensionOID.SUBJECT_ALTERNATIVE_NAME):
        assert sm2_cert.extensions.get_extension_for_oid(oid) == rsa_cert.extensions.get_extension_for_oid(oid)
    usage = sm2_cert.extensions.get_extension_for_class(x509.KeyUsage).value
    # keyEncipherment is RSA's alone; SM2 keys sign.
    assert usage.digital_signature and usage.content_commitment and not usage.key_encipherment
    # The key identifiers are the SHA-1 of each key's own bits, so they match across the chain.
    ca = load_certificate(sm2_keys / "ca" / "cert.pem")
    ca_ski = ca.extensions.get_extension_for_class(x509.SubjectKeyIdentifier).value.digest
    assert sm2_cert.extensions.get_extension_for_class(x509.AuthorityKeyIdentifier).value.key_identifier == ca_ski


def test_an_sm2_ca_issues_sm2_certificates_only(sm2_ca, rsa_ca):
    with pytest.raises(Sm2Error, match="needs an SM2 CA"):
        build_participant_certificate(generate_key("rsa"), "ent-a", "A", sm2_ca.certificate, sm2_ca.key)
    with pytest.raises(Sm2Error, match="needs an SM2 CA"):
        build_participant_certificate(generate_key("sm2"), "ent-a", "A", rsa_ca.certificate, rsa_ca.key)


# ---- trust --------------------------------------------------------------------------------------------------------


def test_an_sm2_certificate_of_the_trusted_sm2_ca_may_sign(sm2_ca):
    _, certificate = sm2_ca.issue("ent-a")
    store = TrustStore([sm2_ca.certificate], [sm2_ca.crl()])
    assert store.problems == []
    store.check(certificate, "ent-a")


def test_a_revoked_sm2_certificate_is_refused(sm2_ca):
    _, certificate = sm2_ca.issue("ent-a")
    refused = refusal(TrustStore([sm2_ca.certificate], [sm2_ca.crl([certificate.serial_number])]), certificate)
    assert refused.code == "certificate.revoked" and serial_hex(certificate) in refused.message


def test_a_stale_sm2_crl_refuses_its_certificates(sm2_ca):
    _, certificate = sm2_ca.issue("ent-a")
    crl = sm2_ca.crl()
    store = TrustStore([sm2_ca.certificate], [crl])
    assert refusal(store, certificate, at=crl.next_update_utc + timedelta(seconds=1)).code == "certificate.crl-stale"


def test_an_expired_sm2_certificate_is_refused(sm2_ca):
    _, certificate = sm2_ca.issue("ent-a", not_before=NOW - timedelta(days=30), not_after=NOW - timedelta(days=1))
    assert refusal(TrustStore([sm2_ca.certificate], [sm2_ca.crl()]), certificate).code == "certificate.expired"


def test_an_sm2_certificate_of_an_impostor_ca_with_the_same_name_is_refused(sm2_ca):
    impostor = Authority.create("SM2 root CA")
    _, certificate = impostor.issue("ent-a")
    assert not issued_by(certificate, sm2_ca.certificate)
    refused = refusal(TrustStore([sm2_ca.certificate], [sm2_ca.crl()]), certificate)
    assert refused.code == "certificate.untrusted" and "does not verify with the key of the SM2 CA" in refused.message


def test_an_sm2_crl_of_an_impostor_is_not_taken(sm2_ca):
    impostor = Authority.create("SM2 root CA")
    assert not crl_signed_by(impostor.crl(), sm2_ca.certificate)
    store = TrustStore([sm2_ca.certificate], [impostor.crl()])
    assert any("not signed by any trust anchor" in p for p in store.problems)
    _, certificate = sm2_ca.issue("ent-a")
    assert refusal(store, certificate).code == "certificate.crl-missing"


def test_an_sm2_certificate_without_an_sm2_anchor_is_untrusted(sm2_ca, rsa_ca):
    _, certificate = sm2_ca.issue("ent-a")
    refused = refusal(TrustStore([rsa_ca.certificate], [rsa_ca.crl()]), certificate)
    assert refused.code == "certificate.untrusted" and "no trusted SM2 CA" in refused.message


def test_rsa_and_sm2_anchors_are_trusted_at_once(sm2_ca, rsa_ca):
    """One participant rotating from RSA to SM2 holds a certificate of each CA; both sign meanwhile."""
    rsa_key, rsa_cert = rsa_ca.issue("ent-a")
    sm2_key, sm2_cert = sm2_ca.issue("ent-a")
    store = TrustStore([rsa_ca.certificate, sm2_ca.certificate], [rsa_ca.crl(), sm2_ca.crl()])
    assert store.problems == []
    store.check(rsa_cert, "ent-a")
    store.check(sm2_cert, "ent-a")
    registered = [rsa_cert, sm2_cert]
    for key, cert, method in ((rsa_key, rsa_cert, "rsa-sha256"), (sm2_key, sm2_cert, "sm2-sm3")):
        signed = Signer(key, cert).sign(etree.fromstring(DOCUMENT))
        verified = Verifier().verify(signed, registered)
        assert verified.certificate == cert and verified.signature_method.endswith(method)
    # Revoking the RSA certificate at the end of the rotation leaves the SM2 one trusted.
    store = TrustStore([rsa_ca.certificate, sm2_ca.certificate], [rsa_ca.crl([rsa_cert.serial_number]), sm2_ca.crl()])
    assert refusal(store, rsa_cert).code == "certificate.revoked"
    store.check(sm2_cert, "ent-a")


# ---- a PKI made by the openssl command line -----------------------------------------------------------------------

CA_CONFIG = """
[ ca ]
default_ca = demo
[ demo ]
dir = .
database = $dir/index.txt
new_certs_dir = $dir
certificate = $dir/ca.pem
private_key = $dir/ca.key
serial = $dir/serial
crlnumber = $dir/crlnumber
default_md = sm3
default_crl_days = 30
policy = any
[ any ]
commonName = supplied
"""
LEAF_EXTENSIONS = "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature,nonRepudiation\n"


@pytest.fixture(scope="module")
def openssl_pki(tmp_path_factory) -> Path:
    """An SM2 CA, two leaves (one revoked) and CRLs made by openssl, every signature with the standard ID."""
    d = tmp_path_factory.mktemp("openssl-sm2")
    distid = f"distid:{STANDARD_ID}"
    openssl("genpkey", "-algorithm", "SM2", "-out", "ca.key", cwd=d)
    openssl(
        "req", "-new", "-x509", "-key", "ca.key", "-sm3", "-sigopt", distid, "-days", "3650",
        "-subj", "/C=CN/O=Test SM2 CA/CN=Test SM2 Root", "-addext", "basicConstraints=critical,CA:TRUE",
        "-addext", "keyUsage=critical,keyCertSign,cRLSign", "-out", "ca.pem", cwd=d,
    )
    (d / "leaf.ext").write_text(LEAF_EXTENSIONS)
    for name in ("ent-a", "ent-b"):
        openssl("genpkey", "-algorithm", "SM2", "-out", f"{name}.key", cwd=d)
        openssl(
            "req", "-new", "-key", f"{name}.key", "-sm3", "-sigopt", distid,
            "-subj", f"/C=CN/O=Test Declarant/CN={name}", "-out", f"{name}.csr", cwd=d,
        )
        openssl(
            "x509", "-req", "-in", f"{name}.csr", "-CA", "ca.pem", "-CAkey", "ca.key", "-CAcreateserial", "-sm3",
            "-sigopt", distid, "-vfyopt", distid, "-days", "365", "-extfile", "leaf.ext", "-out", f"{name}.pem", cwd=d,
        )
    (d / "ca.cnf").write_text(CA_CONFIG)
    (d / "index.txt").write_text("")
    (d / "crlnumber").write_text("01\n")
    openssl("ca", "-batch", "-config", "ca.cnf", "-revoke", "ent-b.pem", "-crl_reason", "keyCompromise", cwd=d)
    openssl("ca", "-batch", "-config", "ca.cnf", "-gencrl", "-sigopt", distid, "-out", "crl.pem", cwd=d)
    # The same list signed with OpenSSL 3.0's empty default ID, as a CA that forgot `distid:` would.
    openssl("ca", "-batch", "-config", "ca.cnf", "-gencrl", "-out", "crl-empty-id.pem", cwd=d)
    return d


def test_an_openssl_made_sm2_pki_is_trusted_and_its_revocation_applied(openssl_pki):
    store = TrustStore([load_certificate(openssl_pki / "ca.pem")], [load_crl(openssl_pki / "crl.pem")])
    assert store.problems == []
    store.check(load_certificate(openssl_pki / "ent-a.pem"), "ent-a")
    refused = refusal(store, load_certificate(openssl_pki / "ent-b.pem"), "ent-b")
    assert refused.code == "certificate.revoked" and "keyCompromise" in refused.message


def test_an_openssl_crl_signed_with_the_empty_id_is_not_taken(openssl_pki):
    store = TrustStore([load_certificate(openssl_pki / "ca.pem")], [load_crl(openssl_pki / "crl-empty-id.pem")])
    assert any("not signed by any trust anchor" in p for p in store.problems)
    assert refusal(store, load_certificate(openssl_pki / "ent-a.pem")).code == "certificate.crl-missing"


def test_an_sm2_key_certified_by_an_rsa_ca_is_untrusted_with_the_reason(openssl_pki, rsa_ca, tmp_path):
    """openssl lets an RSA CA certify an SM2 key; the exchange does not chain such a certificate anywhere."""
    (tmp_path / "rsa.key").write_bytes(key_pem(rsa_ca.key))
    (tmp_path / "rsa.pem").write_bytes(rsa_ca.certificate.public_bytes(Encoding.PEM))
    openssl(
        "x509", "-req", "-in", str(openssl_pki / "ent-a.csr"), "-CA", str(tmp_path / "rsa.pem"), "-CAkey",
        str(tmp_path / "rsa.key"), "-CAcreateserial", "-sha256", "-vfyopt", f"distid:{STANDARD_ID}", "-days", "30",
        "-extfile", str(openssl_pki / "leaf.ext"), "-out", str(tmp_path / "mixed.pem"), cwd=tmp_path,
    )
    mixed = load_certificate(tmp_path / "mixed.pem")
    refused = refusal(TrustStore([rsa_ca.certificate], [rsa_ca.crl()]), mixed)
    assert refused.code == "certificate.untrusted"
    assert "holds an SM2 key but is signed with sha256WithRSAEncryption" in refused.message, refused.message


def test_an_openssl_made_sm2_key_and_certificate_sign_in_the_exchange(openssl_pki):
    signed = Signer(openssl_pki / "ent-a.key", openssl_pki / "ent-a.pem").sign(etree.fromstring(DOCUMENT))
    assert Verifier().verify(signed, [load_certificate(openssl_pki / "ent-a.pem")]).signature_method == SM2_SM3


# ---- the `keys` commands ------------------------------------------------------------------------------------------


def test_the_keys_commands_with_sm2(tmp_path):
    keys_dir = tmp_path / "keys"
    config_path = write_config(tmp_path, keys_dir)

    def cli(*args: str):
        return CliRunner().invoke(main, ["--config", str(config_path), "keys", *args])

    assert cli("init", "--algorithm", "sm2").exit_code == 0
    ca = load_certificate(keys_dir / "ca" / "cert.pem")
    assert ca.signature_algorithm_oid.dotted_string == SM2_WITH_SM3
    checked = cli("check")
    assert checked.exit_code == 0, checked.output
    # The platform signs with SM2 when its key is SM2.
    config = load_config(config_path)
    signer = Signer(config.platform.key_path, config.platform.certificate_path, config.signatures)
    assert signer.signature_method == SM2_SM3

    revoked = cli("revoke", "ent-b", "--reason", "keyCompromise")
    assert revoked.exit_code == 0, revoked.output
    checked = cli("check")
    assert checked.exit_code != 0 and "certificate.revoked" in checked.output and "ent-b" in checked.output

    old = load_certificate(keys_dir / "ent-a" / "cert.pem")
    issued = cli("issue", "ent-a")
    assert issued.exit_code == 0 and "a new SM2 key" in issued.output, issued.output
    new = load_certificate(keys_dir / "ent-a" / "cert.pem")
    assert new.serial_number != old.serial_number and issued_by(new, ca)
    assert (keys_dir / "ent-a" / f"cert-{serial_hex(old)}.pem").exists()
    listed = cli("list")
    rows = {line.split()[0]: line for line in listed.output.splitlines() if line.strip()}
    assert rows["ent-a"].rstrip().endswith("valid") and rows["ent-b"].rstrip().endswith("revoked"), listed.output


def test_keys_issue_refuses_an_rsa_key_from_an_sm2_ca_with_a_clear_error(tmp_path):
    keys_dir = tmp_path / "keys"
    config_path = write_config(tmp_path, keys_dir)
    runner = CliRunner()
    assert runner.invoke(main, ["--config", str(config_path), "keys", "init", "--algorithm", "sm2"]).exit_code == 0
    before = {p: p.read_bytes() for p in (keys_dir / "ent-a").iterdir()}
    result = runner.invoke(main, ["--config", str(config_path), "keys", "issue", "ent-a", "--algorithm", "rsa"])
    assert result.exit_code != 0 and "needs an SM2 CA" in result.output, result.output
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    # Nothing of ent-a's was replaced: its SM2 key and certificate still belong together.
    assert {p: p.read_bytes() for p in (keys_dir / "ent-a").iterdir() if not p.name.startswith("cert-")} == before


def test_a_configuration_with_an_rsa_and_an_sm2_ca_loads(tmp_path):
    """trust.anchors lists both CAs; a participant lists a certificate of each while it rotates."""
    rsa_dir, sm2_dir = tmp_path / "rsa", tmp_path / "sm2"
    config_path = write_config(tmp_path, rsa_dir)
    CliRunner().invoke(main, ["--config", str(config_path), "keys", "init"])
    init_demo_pki(sm2_dir, [("ent-a", "Enterprise A")], algorithm="sm2")
    data = yaml.safe_load(config_path.read_text())
    data["trust"]["anchors"] = [str(rsa_dir / "ca/cert.pem"), str(sm2_dir / "ca/cert.pem")]
    data["trust"]["crls"] = [str(rsa_dir / "ca/crl.pem"), str(sm2_dir / "ca/crl.pem")]
    data["participants"]["ent-a"]["certificates"] = [str(rsa_dir / "ent-a/cert.pem"), str(sm2_dir / "ent-a/cert.pem")]
    config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    config = load_config(config_path)
    assert config.trust.problems == []
    ent_a = config.registry.get("ent-a")
    assert {c.public_bytes(Encoding.DER) for c in ent_a.certificates} == {
        load_certificate(p).public_bytes(Encoding.DER) for p in (rsa_dir / "ent-a/cert.pem", sm2_dir / "ent-a/cert.pem")
    }
    for certificate in ent_a.certificates:
        config.trust.check(certificate, "ent-a")


# ---- an SM2 exchange, end to end in process -------------------------------------------------------------------------


def test_an_sm2_exchange_accepts_routes_and_signs_with_sm2(tmp_path):
    """Every bundled route, SM2 keys all round: accepted, forwarded and receipted under the platform's SM2 key."""
    exchange = make_exchange(tmp_path, algorithm="sm2")
    pipeline = build_pipeline(exchange.config)
    platform = load_certificate(exchange.keys_dir / "eport" / "cert.pem")
    for sample, sender, destinations in ROUTED_SAMPLES:
        disposition = pipeline.process(Inbound(exchange.signed(sender, SAMPLES / sample), user_id=sender))
        assert disposition.outcome == "accepted", (sample, disposition.reasons)
        assert {p.routing_key for p in disposition.publications} >= {*destinations, sender}
        for publication in disposition.publications:
            root = etree.fromstring(publication.body)
            assert Verifier().verify(root, [platform]).signature_method == SM2_SM3, publication.routing_key


def test_exchanger_sign_and_verify_follow_the_configured_sm2_settings(tmp_path):
    """`exchanger sign` writes what the configuration says (here DER and another signer ID); `verify` accepts it."""
    keys_dir = tmp_path / "keys"
    config_path = write_config(
        tmp_path, keys_dir, signatures={"sm2": {"signer_id": "ALICE123@YAHOO.COM", "encoding": "der"}}
    )
    runner = CliRunner()
    assert runner.invoke(main, ["--config", str(config_path), "keys", "init", "--algorithm", "sm2"]).exit_code == 0
    signed_path = tmp_path / "signed.xml"
    sample = SAMPLES / "customs-declaration" / "valid.xml"
    result = runner.invoke(main, ["--config", str(config_path), "sign", str(sample), "--as", "ent-a", "--out", str(signed_path)])
    assert result.exit_code == 0, result.output
    root = etree.fromstring(signed_path.read_bytes())
    value = root.findtext("{http://www.w3.org/2000/09/xmldsig#}Signature/{http://www.w3.org/2000/09/xmldsig#}SignatureValue")
    assert base64.b64decode(value)[0] == 0x30  # DER, as configured
    verified = runner.invoke(main, ["--config", str(config_path), "verify", str(signed_path)])
    assert verified.exit_code == 0, verified.output
    # The same document under the default settings (raw, standard ID) is refused.
    data = yaml.safe_load(config_path.read_text())
    del data["signatures"]
    config_path.write_text(yaml.safe_dump(data, sort_keys=False))
    refused = runner.invoke(main, ["--config", str(config_path), "verify", str(signed_path)])
    assert refused.exit_code == 1 and "sm2-sm3 (raw r || s) needs 64 bytes" in refused.output, refused.output
