"""SM2/SM3 XML signatures as GACC's 202205 specification writes them, judged by the openssl command line both ways.

openssl (3.0) is the independent implementation: it verifies every SM2 signature the exchange makes,
over the canonical SignedInfo, and makes signatures the exchange must accept. The signer ID is passed
to it explicitly (`distid:`), because without it OpenSSL 3.0 hashes an empty ID into Z_A.
"""

from __future__ import annotations

import base64
import copy
import os
import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import gmssl_pyx
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from cryptography.hazmat.primitives.asymmetric.utils import decode_dss_signature, encode_dss_signature
from lxml import etree

from exchanger.dsig.methods import SM2_SM3, SM3, SignatureSettings, Sm2Settings
from exchanger.dsig.signer import Signer
from exchanger.dsig.verifier import SignatureError, Verifier
from exchanger.journal.checkpoint import Checkpointer, signature_problem
from exchanger.keys import init_demo_pki, load_certificate
from exchanger.keys.material import load_private_key
from exchanger.keys.sm2 import ORDER, Sm2Error, Sm2PrivateKey, der_from_raw, parse_der_signature, raw_from_der
from exchanger.xml.parser import parse_untrusted

DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"ds": DS}
STANDARD_ID = "1234567812345678"
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
SAMPLES_202205 = CORPUS / "cn-chinaport-ceb" / "202205" / "samples"
DOCUMENT = (
    b'<ceb:CEB311Message xmlns:ceb="http://www.chinaport.gov.cn/ceb" '
    b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance" guid="4CDE1CFD-EDED-46B1-946C-B8022E42FC94" version="1.0">'
    b"<ceb:Order><ceb:OrderHead><ceb:orderNo>order-0001</ceb:orderNo>"
    b"<ceb:goodsValue>199.00</ceb:goodsValue></ceb:OrderHead></ceb:Order></ceb:CEB311Message>"
)


def openssl(*args: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    """Run the openssl command line; fail the test (not error it) when it is missing."""
    path = shutil.which("openssl")
    if path is None:
        pytest.fail("openssl not found: install the openssl OS package")
    result = subprocess.run([path, *args], capture_output=True, text=True, check=False)
    if check and result.returncode != 0:
        pytest.fail(f"openssl {' '.join(args)} failed: {result.stdout}{result.stderr}")
    return result


@pytest.fixture(scope="module")
def sm2_keys(tmp_path_factory) -> Path:
    """An SM2 demo PKI: SM2 CA, the platform's and one enterprise's SM2 keys and certificates."""
    keys_dir = tmp_path_factory.mktemp("sm2") / "keys"
    init_demo_pki(keys_dir, [("eport", "Electronic Port"), ("ent-a", "Enterprise A")], algorithm="sm2")
    return keys_dir


@pytest.fixture(scope="module")
def public_pem(sm2_keys) -> Path:
    """ent-a's public key as openssl reads it from the certificate."""
    path = sm2_keys / "ent-a" / "pub.pem"
    path.write_text(openssl("x509", "-in", str(sm2_keys / "ent-a" / "cert.pem"), "-pubkey", "-noout").stdout)
    return path


def sm2(**settings) -> SignatureSettings:
    """Signature settings with these SM2 settings."""
    return SignatureSettings(sm2=Sm2Settings(**settings))


def signer(keys_dir: Path, settings: SignatureSettings | None = None) -> Signer:
    return Signer(keys_dir / "ent-a" / "key.pem", keys_dir / "ent-a" / "cert.pem", settings)


def signed_document(keys_dir: Path, settings: SignatureSettings | None = None) -> etree._Element:
    return signer(keys_dir, settings).sign(etree.fromstring(DOCUMENT))


def signed_info_c14n(root: etree._Element) -> bytes:
    """Canonical XML 1.0 of SignedInfo in its document context, as lxml (libxml2) makes it."""
    return etree.tostring(root.find("ds:Signature/ds:SignedInfo", NS), method="c14n")


def signature_value(root: etree._Element) -> bytes:
    return base64.b64decode(root.findtext("ds:Signature/ds:SignatureValue", namespaces=NS))


def set_signature_value(root: etree._Element, value: bytes) -> None:
    root.find("ds:Signature/ds:SignatureValue", NS).text = base64.b64encode(value).decode()


def der_of_raw(raw: bytes) -> bytes:
    """The test's own r || s to DER, through cryptography rather than the exchange's converter."""
    assert len(raw) == 64
    return encode_dss_signature(int.from_bytes(raw[:32], "big"), int.from_bytes(raw[32:], "big"))


def raw_of_der(der: bytes) -> bytes:
    r, s = decode_dss_signature(der)
    return r.to_bytes(32, "big") + s.to_bytes(32, "big")


def openssl_verifies(tmp_path: Path, public_pem: Path, data: bytes, der: bytes, signer_id: str | None) -> bool:
    (tmp_path / "data").write_bytes(data)
    (tmp_path / "sig.der").write_bytes(der)
    distid = ["-pkeyopt", f"distid:{signer_id}"] if signer_id is not None else []
    result = openssl(
        "pkeyutl", "-verify", "-pubin", "-inkey", str(public_pem), "-rawin", "-digest", "sm3", *distid,
        "-in", str(tmp_path / "data"), "-sigfile", str(tmp_path / "sig.der"), check=False,
    )
    return result.returncode == 0 and "Signature Verified Successfully" in result.stdout


def refusal(verifier: Verifier, root: etree._Element, certificates) -> SignatureError:
    with pytest.raises(SignatureError) as caught:
        verifier.verify(root, certificates)
    return caught.value


# ---- what the exchange writes -------------------------------------------------------------------------------------


def test_the_platform_signs_with_gacc_s_identifiers_and_inclusive_c14n(sm2_keys):
    signed = signed_document(sm2_keys)
    info = signed.find("ds:Signature/ds:SignedInfo", NS)
    assert info.find("ds:CanonicalizationMethod", NS).get("Algorithm") == "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
    assert info.find("ds:SignatureMethod", NS).get("Algorithm") == SM2_SM3
    assert info.find("ds:Reference/ds:DigestMethod", NS).get("Algorithm") == SM3
    transforms = [t.get("Algorithm") for t in info.iterfind("ds:Reference/ds:Transforms/ds:Transform", NS)]
    assert transforms == ["http://www.w3.org/2000/09/xmldsig#enveloped-signature"]
    assert len(signature_value(signed)) == 64


def test_sm2_signatures_the_exchange_makes_verify_with_openssl(sm2_keys, public_pem, tmp_path):
    for _ in range(3):  # a fresh nonce each time: r and s vary, and every one must verify
        signed = signed_document(sm2_keys)
        der = der_of_raw(signature_value(signed))
        assert openssl_verifies(tmp_path, public_pem, signed_info_c14n(signed), der, STANDARD_ID)
    # The control: with OpenSSL 3.0's empty default ID in Z_A, the same signature does not verify.
    assert not openssl_verifies(tmp_path, public_pem, signed_info_c14n(signed), der, None)


def test_signed_info_is_signed_in_its_document_context(sm2_keys):
    """The canonical SignedInfo carries the namespaces it inherits, as the E-port UKey signs it."""
    canonical = signed_info_c14n(signed_document(sm2_keys))
    assert canonical.startswith(
        b'<ds:SignedInfo xmlns:ceb="http://www.chinaport.gov.cn/ceb" xmlns:ds="http://www.w3.org/2000/09/xmldsig#" '
        b'xmlns:xsi="http://www.w3.org/2001/XMLSchema-instance">'
    )


def test_the_digest_value_is_openssl_s_sm3_of_the_canonical_document(sm2_keys, tmp_path):
    signed = signed_document(sm2_keys)
    unsigned = copy.deepcopy(signed)
    unsigned.remove(unsigned.find("ds:Signature", NS))
    (tmp_path / "document").write_bytes(etree.tostring(unsigned, method="c14n"))
    hexed = openssl("dgst", "-sm3", "-r", str(tmp_path / "document")).stdout.split()[0]
    assert signed.findtext("ds:Signature/ds:SignedInfo/ds:Reference/ds:DigestValue", namespaces=NS) == (
        base64.b64encode(bytes.fromhex(hexed)).decode()
    )


def test_the_exchange_verifies_its_own_sm2_signature(sm2_keys):
    signed = signed_document(sm2_keys)
    verified = Verifier().verify(signed, [load_certificate(sm2_keys / "ent-a" / "cert.pem")])
    assert verified.signature_method == SM2_SM3


# ---- what openssl writes ------------------------------------------------------------------------------------------


def test_signatures_openssl_makes_verify_in_the_exchange(sm2_keys, tmp_path):
    """openssl signs the canonical SignedInfo with ent-a's key; the exchange accepts its signature (DER made raw)."""
    certificate = load_certificate(sm2_keys / "ent-a" / "cert.pem")
    for _ in range(3):
        signed = signed_document(sm2_keys)
        (tmp_path / "signed-info").write_bytes(signed_info_c14n(signed))
        openssl(
            "pkeyutl", "-sign", "-inkey", str(sm2_keys / "ent-a" / "key.pem"), "-rawin", "-digest", "sm3",
            "-pkeyopt", f"distid:{STANDARD_ID}", "-in", str(tmp_path / "signed-info"), "-out", str(tmp_path / "sig.der"),
        )
        ours = signature_value(signed)
        theirs = raw_of_der((tmp_path / "sig.der").read_bytes())
        assert theirs != ours
        set_signature_value(signed, theirs)
        assert Verifier().verify(signed, [certificate]).signature_method == SM2_SM3


def test_a_key_openssl_generates_signs_in_the_exchange_and_verifies_in_openssl(tmp_path):
    key_path = tmp_path / "key.pem"
    openssl("genpkey", "-algorithm", "SM2", "-out", str(key_path))
    key = load_private_key(key_path)
    assert isinstance(key, Sm2PrivateKey)
    # What the exchange would write back is what openssl wrote: the same PKCS#8.
    assert key.pem() == key_path.read_bytes()
    openssl("pkey", "-in", str(key_path), "-pubout", "-out", str(tmp_path / "pub.pem"))
    assert (tmp_path / "pub.pem").read_bytes() == key.public_key().pem()
    der = key.sign(DOCUMENT, STANDARD_ID.encode())
    assert openssl_verifies(tmp_path, tmp_path / "pub.pem", DOCUMENT, der, STANDARD_ID)


@pytest.mark.parametrize(
    "convert",
    [
        ["ec", "-in", "{key}", "-out", "{out}"],  # SEC1 under OpenSSL's "SM2 PRIVATE KEY" label
        ["pkey", "-in", "{key}", "-out", "{out}"],  # PKCS#8 again
    ],
    ids=["sec1", "pkcs8"],
)
def test_sm2_keys_in_the_forms_openssl_writes_load(tmp_path, convert):
    key_path, out = tmp_path / "key.pem", tmp_path / "converted.pem"
    openssl("genpkey", "-algorithm", "SM2", "-out", str(key_path))
    openssl(*(part.format(key=key_path, out=out) for part in convert))
    assert load_private_key(out).scalar == load_private_key(key_path).scalar


def test_a_key_generated_by_ecparam_loads(tmp_path):
    """`openssl ecparam -genkey` writes the curve's parameters before the key."""
    openssl("ecparam", "-name", "SM2", "-genkey", "-out", str(tmp_path / "key.pem"))
    assert isinstance(load_private_key(tmp_path / "key.pem"), Sm2PrivateKey)


def test_a_key_of_another_curve_or_a_mismatched_pair_is_refused(tmp_path):
    openssl("ecparam", "-name", "prime256v1", "-genkey", "-noout", "-out", str(tmp_path / "p256.pem"))
    with pytest.raises(Sm2Error, match="not on the SM2 curve"):
        Sm2PrivateKey.from_pem((tmp_path / "p256.pem").read_bytes())
    one, other = Sm2PrivateKey.generate(), Sm2PrivateKey.generate()
    mismatched = Sm2PrivateKey(one.scalar, other.public_key())
    with pytest.raises(Sm2Error, match="does not belong to its scalar"):
        Sm2PrivateKey.from_pem(mismatched.pem())


def test_a_key_the_exchange_writes_is_read_by_openssl(sm2_keys):
    text = openssl("pkey", "-in", str(sm2_keys / "ent-a" / "key.pem"), "-text", "-noout").stdout
    assert "SM2" in text and "Private-Key: (256 bit)" in text


# ---- configuration: signer ID and encoding ------------------------------------------------------------------------


def test_a_configured_signer_id_round_trips(sm2_keys, public_pem, tmp_path):
    settings = sm2(signer_id="ALICE123@YAHOO.COM")
    signed = signed_document(sm2_keys, settings)
    data, der = signed_info_c14n(signed), der_of_raw(signature_value(signed))
    assert openssl_verifies(tmp_path, public_pem, data, der, "ALICE123@YAHOO.COM")
    assert not openssl_verifies(tmp_path, public_pem, data, der, STANDARD_ID)
    certificate = load_certificate(sm2_keys / "ent-a" / "cert.pem")
    Verifier(settings).verify(signed, [certificate])
    assert refusal(Verifier(), signed, [certificate]).code == "signature.invalid"


def test_der_encoding_when_configured(sm2_keys, public_pem, tmp_path):
    der_settings = sm2(encoding="der")
    signed = signed_document(sm2_keys, der_settings)
    value = signature_value(signed)
    assert value[0] == 0x30 and 70 <= len(value) <= 72
    assert openssl_verifies(tmp_path, public_pem, signed_info_c14n(signed), value, STANDARD_ID)
    certificate = load_certificate(sm2_keys / "ent-a" / "cert.pem")
    Verifier(der_settings).verify(signed, [certificate])
    error = refusal(Verifier(), signed, [certificate])
    assert f"SignatureValue is {len(value)} bytes; sm2-sm3 (raw r || s) needs 64 bytes" in error.message


@pytest.mark.parametrize(
    "change, why",
    [
        (lambda der: der + b"\x00", "nothing after it"),
        # r with a needless leading zero: the length grows by one, the value stays the same.
        (lambda der: b"\x30" + bytes([der[1] + 1]) + b"\x02" + bytes([der[3] + 1]) + b"\x00" + der[4:], "not minimally"),
        (lambda der: der[:2] + b"\x03" + der[3:], "two INTEGERs"),
    ],
    ids=["trailing-byte", "non-minimal-integer", "not-an-integer"],
)
def test_der_is_parsed_strictly_when_configured(sm2_keys, change, why):
    settings = sm2(encoding="der")
    signed = signed_document(sm2_keys, settings)
    while signature_value(signed)[3] != 32:  # r without a sign byte: room for one needless zero within 72 bytes
        signed = signed_document(sm2_keys, settings)
    set_signature_value(signed, change(signature_value(signed)))
    error = refusal(Verifier(settings), signed, [load_certificate(sm2_keys / "ent-a" / "cert.pem")])
    assert error.code == "signature.invalid" and why in error.message, error


VALID_DER = st.builds(der_of_raw, st.binary(min_size=64, max_size=64))


def _nearby(der: bytes):
    """DER one edit away: a byte inserted, dropped or changed."""
    at = st.integers(0, len(der))
    byte = st.integers(0, 255)
    return st.one_of(
        st.tuples(at, byte).map(lambda ab: der[: ab[0]] + bytes([ab[1]]) + der[ab[0]:]),
        at.map(lambda a: der[:a] + der[a + 1:]),
        st.tuples(at, byte).map(lambda ab: der[: ab[0]] + bytes([ab[1]]) + der[ab[0] + 1:]),
    )


@settings(max_examples=500, deadline=None)
@given(data=st.one_of(st.binary(max_size=80), VALID_DER, VALID_DER.flatmap(_nearby)))
def test_a_der_signature_is_accepted_only_in_its_one_canonical_encoding(data):
    """Whatever the bytes, the strict reader returns r and s whose DER is those very bytes, or says why not."""
    try:
        r, s = parse_der_signature(data)
    except Sm2Error:
        return
    assert 0 < r < ORDER and 0 < s < ORDER
    assert encode_dss_signature(r, s) == data
    assert der_from_raw(raw_from_der(data)) == data


@settings(max_examples=300, deadline=None)
@given(raw=st.binary(min_size=0, max_size=96))
def test_a_raw_signature_is_64_bytes_with_both_halves_in_range(raw):
    try:
        der = der_from_raw(raw)
    except Sm2Error:
        assert len(raw) != 64 or not 0 < int.from_bytes(raw[:32], "big") < ORDER or not 0 < int.from_bytes(raw[32:], "big") < ORDER
        return
    assert len(raw) == 64 and raw_from_der(der) == raw


# ---- refusals -----------------------------------------------------------------------------------------------------


def test_tampered_content_is_refused(sm2_keys):
    signed = signed_document(sm2_keys)
    signed.find(".//{http://www.chinaport.gov.cn/ceb}goodsValue").text = "1.00"
    error = refusal(Verifier(), signed, [load_certificate(sm2_keys / "ent-a" / "cert.pem")])
    assert error.code == "signature.invalid" and "changed after it was signed" in error.message


def test_a_tampered_signature_is_refused(sm2_keys):
    signed = signed_document(sm2_keys)
    value = bytearray(signature_value(signed))
    value[40] ^= 0x01
    set_signature_value(signed, bytes(value))
    error = refusal(Verifier(), signed, [load_certificate(sm2_keys / "ent-a" / "cert.pem")])
    assert error.code == "signature.invalid" and "was not made over SignedInfo" in error.message


def test_refused_sm2_signatures_leave_no_trace_on_stderr(sm2_keys, capfd):
    """GmSSL writes a trace line to descriptor 2 for each signature it refuses; none reaches the exchange's stderr."""
    signed = signed_document(sm2_keys)
    value = bytearray(signature_value(signed))
    value[10] ^= 0x01
    set_signature_value(signed, bytes(value))
    certificate = load_certificate(sm2_keys / "ent-a" / "cert.pem")
    for _ in range(5):
        assert refusal(Verifier(), signed, [certificate]).code == "signature.invalid"
    assert capfd.readouterr().err == ""
    # The control: the library called directly does write to descriptor 2.
    key = load_private_key(sm2_keys / "ent-a" / "key.pem")
    gmssl_pyx.sm2_verify(key.public_key().point, b"data", der_of_raw(bytes(value)), signer_id=STANDARD_ID.encode())
    assert "sm2_verify" in capfd.readouterr().err


def test_a_signature_of_another_sm2_key_is_refused(sm2_keys, tmp_path):
    other = tmp_path / "keys"
    init_demo_pki(other, [("ent-a", "Enterprise A")], algorithm="sm2")
    signed = signed_document(sm2_keys)
    # The other key's certificate pinned and embedded: the signature was made with ent-a's first key.
    certificate = load_certificate(other / "ent-a" / "cert.pem")
    signed.find("ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate", NS).text = base64.b64encode(
        certificate.public_bytes(Encoding.DER)
    ).decode()
    assert refusal(Verifier(), signed, [certificate]).code == "signature.invalid"


def test_sm2_method_with_an_rsa_certificate_is_refused_by_name(demo_pki):
    """The key/algorithm mismatch is named before any signature operation."""
    root = Signer(demo_pki.key("ent-a"), demo_pki.cert("ent-a")).sign(etree.fromstring(DOCUMENT))
    root.find("ds:Signature/ds:SignedInfo/ds:SignatureMethod", NS).set("Algorithm", SM2_SM3)
    set_signature_value(root, bytes(range(1, 65)))
    error = refusal(Verifier(), root, [load_certificate(demo_pki.cert("ent-a"))])
    assert "needs an SM2 key, but the certificate holds an RSA key" in error.message, error


def test_rsa_method_with_an_sm2_certificate_is_refused_by_name(sm2_keys):
    signed = signed_document(sm2_keys)
    signed.find("ds:Signature/ds:SignedInfo/ds:SignatureMethod", NS).set(
        "Algorithm", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
    )
    error = refusal(Verifier(), signed, [load_certificate(sm2_keys / "ent-a" / "cert.pem")])
    assert "needs an RSA key, but the certificate holds an SM2 key" in error.message, error


def _samples_202205() -> list[Path]:
    # The samples that carry a signature under GACC's sm2-sm3 identifier (the others are unsigned).
    found = sorted(p for p in SAMPLES_202205.glob("*/*.xml") if b"xmldsig#sm2-sm3" in p.read_bytes())
    # Named explicitly too, so a missing corpus fails the test instead of collecting none.
    return found or [SAMPLES_202205 / "export" / "CEB213Message.xml"]


@pytest.mark.parametrize("path", _samples_202205(), ids=lambda p: f"{p.parent.name}/{p.name}")
def test_gacc_202205_samples_are_refused_for_their_signature_length(path):
    """GACC's 202205 samples name sm2-sm3 and sm3 but carry 128-byte RSA-1024-sized values and an RSA certificate.

    Their signatures are illustrative, copied from the 2018 samples, and never verify: the exchange
    refuses them for the length of SignatureValue, a check that costs nothing, before any key is used.
    """
    root = parse_untrusted(path.read_bytes()).getroot()
    assert root.find("ds:Signature/ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm") == SM2_SM3
    embedded = root.findtext("ds:Signature/ds:KeyInfo/ds:X509Data/ds:X509Certificate", namespaces=NS)
    certificate = x509.load_der_x509_certificate(base64.b64decode("".join(embedded.split())))
    error = refusal(Verifier(), root, [certificate])
    assert error.code == "signature.invalid"
    assert "SignatureValue is 128 bytes; sm2-sm3 (raw r || s) needs 64 bytes" in error.message, error


# ---- the message log's checkpoints ----------------------------------------------------------------------------------


def test_checkpoints_signed_with_an_sm2_platform_key_verify_and_alterations_do_not(sm2_keys):
    platform = Signer(sm2_keys / "eport" / "key.pem", sm2_keys / "eport" / "cert.pem")
    certificate = load_certificate(sm2_keys / "eport" / "cert.pem")
    checkpoint = Checkpointer(platform, "eport").sign(42, "ab" * 32)
    assert signature_problem(checkpoint, [certificate]) is None
    # Another configured document encoding does not change how checkpoints are made or read.
    der_platform = Signer(sm2_keys / "eport" / "key.pem", sm2_keys / "eport" / "cert.pem", sm2(encoding="der"))
    assert signature_problem(Checkpointer(der_platform, "eport").sign(43, "cd" * 32), [certificate]) is None
    assert "does not verify" in signature_problem(replace(checkpoint, seq=41), [certificate])


def test_sm2_verification_works_in_a_process_without_stderr(sm2_keys, tmp_path):
    """A daemon started with descriptor 2 closed still verifies SM2 signatures (nothing to silence then)."""
    document = tmp_path / "signed.xml"
    document.write_bytes(etree.tostring(signed_document(sm2_keys)))
    script = (
        "import sys\n"
        "from lxml import etree\n"
        "from exchanger.dsig.verifier import Verifier\n"
        "from exchanger.keys import load_certificate\n"
        f"root = etree.parse({str(document)!r}).getroot()\n"
        f"Verifier().verify(root, [load_certificate({str(sm2_keys / 'ent-a' / 'cert.pem')!r})])\n"
        "print('verified')\n"
    )
    result = subprocess.run(
        [sys.executable, "-c", script], stdout=subprocess.PIPE, stderr=subprocess.DEVNULL, text=True, check=False,
        preexec_fn=lambda: os.close(2),
    )
    assert result.stdout.strip() == "verified", result
