"""Enveloped XML-DSig: signing, pinned verification, refusals, interop with xmlsec1, public vectors."""

from __future__ import annotations

import copy
import shutil
import subprocess
from base64 import b64decode, b64encode
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import rsa
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner

from exchanger.dsig import SignatureError, Signer, Verified, Verifier
from exchanger.xml.parser import parse_untrusted as parse_tree


def parse_untrusted(data: bytes):
    """The root element of a safely parsed document."""
    return parse_tree(data).getroot()
from exchanger.dsig.verifier import CODES
from exchanger.keys import fingerprint, load_certificate, load_private_key

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"ds": DS, "d": "urn:eport:test:declaration"}
EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"

# About 2 KB, shaped like a declaration that enterprises send through the exchange.
DOCUMENT = (
    b'<?xml version="1.0" encoding="UTF-8"?>\n'
    b'<Declaration xmlns="urn:eport:test:declaration" xmlns:x="urn:eport:test:extra" Id="D1">\n'
    b"  <Header><Sender>ent-a</Sender><Receiver>customs</Receiver><Reference>2026-000123</Reference>"
    b"<Contact>ops@ent-a.example</Contact></Header>\n"
    b"  <Items>\n"
    + b"".join(
        f'    <Item seq="{i}" x:origin="CN"><HS>84713000</HS><Description>Laptop computer, model {i}'
        f'</Description><Quantity unit="PCE">{i * 3}</Quantity><Value currency="USD">{i * 123.45:.2f}'
        f"</Value></Item>\n".encode()
        for i in range(1, 12)
    )
    + b"  </Items>\n</Declaration>\n"
)


class LegacySigner(XMLSigner):
    """signxml's signer with its SHA-1 refusal switched off, to produce what old systems still send."""

    def check_deprecated_methods(self) -> None:
        """Allow SHA-1 algorithms."""


def _whole_document(sig_root, signing_settings) -> None:
    # signxml would reference the root's Id="D1"; other signers say URI="" for the same bytes.
    sig_root.find("ds:SignedInfo/ds:Reference", NS).set("URI", "")


def _crafter(cls: type[XMLSigner] = XMLSigner, **options) -> XMLSigner:
    """A raw signxml signer for crafting the signatures other systems might send, URI="" by default."""
    signer = cls(c14n_algorithm=EXC_C14N, **options)
    signer.signature_annotators.append(_whole_document)
    return signer


@pytest.fixture(scope="session")
def verifier() -> Verifier:
    return Verifier()


@pytest.fixture(scope="session")
def signer_for(demo_pki):
    signers: dict[str, Signer] = {}

    def get(participant_id: str) -> Signer:
        if participant_id not in signers:
            signers[participant_id] = Signer(demo_pki.key(participant_id), demo_pki.cert(participant_id))
        return signers[participant_id]

    return get


@pytest.fixture(scope="session")
def cert_of(demo_pki):
    def get(participant_id: str) -> x509.Certificate:
        return load_certificate(demo_pki.cert(participant_id))

    return get


@pytest.fixture(scope="session")
def xmlsec1() -> str:
    path = shutil.which("xmlsec1")
    if path is None:
        pytest.fail(
            "xmlsec1 not found: install the xmlsec1 OS package (e.g. apt-get install xmlsec1)", pytrace=False
        )
    return path


def _document() -> etree._Element:
    return parse_untrusted(DOCUMENT)


def _refusal(verifier: Verifier, root: etree._Element, certificates: list[x509.Certificate]) -> SignatureError:
    with pytest.raises(SignatureError) as info:
        verifier.verify(root, certificates)
    assert info.value.code in CODES
    return info.value


def _corpus_file(relative: str) -> Path:
    path = CORPUS / relative
    if not path.is_file():
        pytest.fail(f"corpus file {path} is missing: the shared corpus must sit beside the repository")
    return path


def _parse_corpus(path: Path) -> etree._Element:
    # Public vectors may carry a DOCTYPE (for ID attributes); entities and network stay off.
    parser = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)
    return etree.parse(str(path), parser).getroot()


def _run(*args: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run(list(args), capture_output=True, text=True, check=False, timeout=60)


# --- signing -----------------------------------------------------------------------------------


@pytest.mark.parametrize(("participant_id", "method"), [("ent-a", RSA_SHA256), ("ent-ec", ECDSA_SHA256)])
def test_signature_shape(signer_for, participant_id, method):
    signed = signer_for(participant_id).sign(_document())
    signature = signed[-1]
    assert signature.tag == f"{{{DS}}}Signature"
    assert len(signed.findall("ds:Signature", NS)) == 1
    assert signature.find("ds:SignedInfo/ds:SignatureMethod", NS).get("Algorithm") == method
    assert signature.find("ds:SignedInfo/ds:CanonicalizationMethod", NS).get("Algorithm") == EXC_C14N.value
    (reference,) = signature.findall("ds:SignedInfo/ds:Reference", NS)
    assert reference.get("URI") == ""
    assert [t.get("Algorithm") for t in reference.findall("ds:Transforms/ds:Transform", NS)] == [
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
        EXC_C14N.value,
    ]
    assert reference.find("ds:DigestMethod", NS).get("Algorithm") == DigestAlgorithm.SHA256.value
    (key_info,) = signature.findall("ds:KeyInfo", NS)
    assert [child.tag for child in key_info] == [f"{{{DS}}}X509Data"]
    assert [child.tag for child in key_info[0]] == [f"{{{DS}}}X509Certificate"]


def test_sign_leaves_the_input_alone(signer_for):
    root = _document()
    before = etree.tostring(root)
    signed = signer_for("ent-a").sign(root)
    assert signed is not root
    assert etree.tostring(root) == before


def test_sign_refuses_an_already_signed_document(signer_for):
    signed = signer_for("ent-a").sign(_document())
    with pytest.raises(ValueError, match="already carries a ds:Signature"):
        signer_for("eport").sign(signed)


def test_signer_refuses_a_certificate_of_another_key(demo_pki):
    with pytest.raises(ValueError, match="does not belong"):
        Signer(demo_pki.key("ent-a"), demo_pki.cert("ent-b"))


def test_signer_accepts_loaded_objects(demo_pki, verifier, cert_of):
    signer = Signer(load_private_key(demo_pki.key("ent-b")), cert_of("ent-b"))
    assert verifier.verify(signer.sign(_document()), [cert_of("ent-b")]).certificate == cert_of("ent-b")


def test_sign_bytes_round_trip(signer_for, verifier, cert_of):
    data = signer_for("ent-a").sign_bytes(DOCUMENT)
    assert data.startswith(b"<?xml version='1.0' encoding='UTF-8'?>")
    verified = verifier.verify(parse_untrusted(data), [cert_of("ent-a")])
    assert verified.signed_root.findtext("d:Header/d:Sender", namespaces=NS) == "ent-a"


@pytest.mark.parametrize(
    "hostile",
    [
        b'<!DOCTYPE d [<!ENTITY e SYSTEM "file:///etc/passwd">]><d>&e;</d>',
        b'<!DOCTYPE d [<!ENTITY e "expanded">]><d>&e;</d>',
        b'<!DOCTYPE d SYSTEM "http://example.invalid/d.dtd"><d/>',
    ],
)
def test_sign_bytes_refuses_doctypes(signer_for, hostile):
    with pytest.raises((ValueError, etree.XMLSyntaxError)):
        signer_for("ent-a").sign_bytes(hostile)


# --- verifying: the good cases -----------------------------------------------------------------


@pytest.mark.parametrize(("participant_id", "method"), [("ent-a", RSA_SHA256), ("ent-ec", ECDSA_SHA256)])
def test_round_trip(signer_for, verifier, cert_of, participant_id, method):
    signed = signer_for(participant_id).sign(_document())
    verified = verifier.verify(signed, [cert_of(participant_id)])
    assert isinstance(verified, Verified)
    assert verified.signature_method == method
    assert verified.certificate == cert_of(participant_id)
    assert verified.signed_root.tag == "{urn:eport:test:declaration}Declaration"
    assert verified.signed_root.find("ds:Signature", NS) is None
    assert etree.tostring(verified.signed_root, method="c14n", exclusive=True) == etree.tostring(
        _document(), method="c14n", exclusive=True
    )


def test_verify_leaves_the_input_alone(signer_for, verifier, cert_of):
    signed = signer_for("ent-a").sign(_document())
    before = etree.tostring(signed)
    verified = verifier.verify(signed, [cert_of("ent-a")])
    assert verified.signed_root is not signed
    assert etree.tostring(signed) == before


def test_any_of_several_pinned_certificates_verifies(signer_for, verifier, cert_of):
    signed = signer_for("ent-b").sign(_document())
    verified = verifier.verify(signed, [cert_of("ent-a"), cert_of("ent-b")])
    assert verified.certificate == cert_of("ent-b")


@pytest.mark.parametrize(
    ("participant_id", "method", "digest"),
    [
        ("ent-a", SignatureMethod.RSA_SHA384, DigestAlgorithm.SHA384),
        ("ent-a", SignatureMethod.RSA_SHA512, DigestAlgorithm.SHA512),
        ("ent-ec", SignatureMethod.ECDSA_SHA384, DigestAlgorithm.SHA256),
        ("ent-ec", SignatureMethod.ECDSA_SHA512, DigestAlgorithm.SHA512),
    ],
)
def test_stronger_sha2_algorithms_are_accepted(demo_pki, verifier, cert_of, participant_id, method, digest):
    signed = _crafter(signature_algorithm=method, digest_algorithm=digest).sign(
        _document(), key=load_private_key(demo_pki.key(participant_id)), cert=[cert_of(participant_id)]
    )
    assert verifier.verify(signed, [cert_of(participant_id)]).signature_method == method.value


def test_matching_key_value_next_to_the_certificate_is_accepted(demo_pki, verifier, cert_of):
    signed = _crafter().sign(
        _document(), key=load_private_key(demo_pki.key("ent-a")), cert=[cert_of("ent-a")], always_add_key_value=True
    )
    assert signed.find("ds:Signature/ds:KeyInfo/ds:KeyValue", NS) is not None
    verifier.verify(signed, [cert_of("ent-a")])


def test_injected_comment_does_not_change_what_is_signed(signer_for, verifier, cert_of):
    # Comment injection (CVE-2017-11427 class): the comment is outside c14n, so the signature
    # still verifies, and the signed tree handed back must read the whole, signed, value.
    signed = signer_for("ent-a").sign(_document())
    contact = signed.find("d:Header/d:Contact", NS)
    contact.text = "ops@ent-a"
    comment = etree.Comment("x")
    comment.tail = ".example"
    contact.append(comment)
    verified = verifier.verify(signed, [cert_of("ent-a")])
    assert verified.signed_root.findtext("d:Header/d:Contact", namespaces=NS) == "ops@ent-a.example"


# --- verifying: tampering ----------------------------------------------------------------------


def _change_text(root):
    root.find("d:Items/d:Item/d:Quantity", NS).text = "3000"


def _change_attribute(root):
    root.find("d:Items/d:Item/d:Value", NS).set("currency", "EUR")


def _add_element(root):
    etree.SubElement(root.find("d:Items", NS), "{urn:eport:test:declaration}Item").text = "extra"


def _remove_element(root):
    items = root.find("d:Items", NS)
    items.remove(items[-1])


def _change_signature_value(root):
    value = root.find("ds:Signature/ds:SignatureValue", NS)
    raw = bytearray(b64decode(value.text))
    raw[10] ^= 0x01
    value.text = b64encode(bytes(raw)).decode()


def _change_signed_info(root):
    root.find("ds:Signature/ds:SignedInfo/ds:Reference/ds:DigestValue", NS).text = b64encode(b"\0" * 32).decode()


@pytest.mark.parametrize(
    "tamper",
    [_change_text, _change_attribute, _add_element, _remove_element, _change_signature_value, _change_signed_info],
)
@pytest.mark.parametrize("participant_id", ["ent-a", "ent-ec"])
def test_tampered_documents_fail(signer_for, verifier, cert_of, participant_id, tamper):
    signed = signer_for(participant_id).sign(_document())
    tamper(signed)
    error = _refusal(verifier, signed, [cert_of(participant_id)])
    assert error.code == "signature.invalid"


# --- verifying: refusals -----------------------------------------------------------------------


def test_no_signature(verifier, cert_of):
    error = _refusal(verifier, _document(), [cert_of("ent-a")])
    assert error.code == "signature.missing"


def test_signature_not_a_child_of_the_root(signer_for, verifier, cert_of):
    signed = signer_for("ent-a").sign(_document())
    signed.find("d:Header", NS).append(signed.find("ds:Signature", NS))
    error = _refusal(verifier, signed, [cert_of("ent-a")])
    assert error.code == "signature.misplaced"
    assert "direct child of the root" in error.message


def test_enveloping_signature_is_misplaced(demo_pki, verifier, cert_of):
    from signxml.algorithms import SignatureConstructionMethod

    enveloping = XMLSigner(method=SignatureConstructionMethod.enveloping, c14n_algorithm=EXC_C14N).sign(
        _document(), key=load_private_key(demo_pki.key("ent-a")), cert=[cert_of("ent-a")]
    )
    assert _refusal(verifier, enveloping, [cert_of("ent-a")]).code == "signature.misplaced"


def test_two_signatures(signer_for, verifier, cert_of):
    signed = signer_for("ent-a").sign(_document())
    signed.append(copy.deepcopy(signed.find("ds:Signature", NS)))
    error = _refusal(verifier, signed, [cert_of("ent-a")])
    assert error.code == "signature.multiple"
    assert "2 ds:Signature" in error.message


def test_a_second_signature_deeper_in_the_document(signer_for, verifier, cert_of):
    inner = signer_for("ent-b").sign(_document())
    outer = _document()
    outer.find("d:Header", NS).append(inner)
    with pytest.raises(ValueError, match="already carries"):
        signer_for("ent-a").sign(outer)
    # signxml itself signs it regardless, leaving two signatures in one document.
    signed = _crafter().sign(outer, key=signer_for("ent-a").key, cert=[cert_of("ent-a")])
    assert _refusal(verifier, signed, [cert_of("ent-a")]).code == "signature.multiple"


def test_reference_to_an_id(demo_pki, verifier, cert_of):
    # signxml's own default for a root element with an Id: a valid signature, refused all the same.
    signed = XMLSigner(c14n_algorithm=EXC_C14N).sign(
        _document(), key=load_private_key(demo_pki.key("ent-a")), cert=[cert_of("ent-a")]
    )
    assert signed.find("ds:Signature/ds:SignedInfo/ds:Reference", NS).get("URI") == "#D1"
    error = _refusal(verifier, signed, [cert_of("ent-a")])
    assert error.code == "signature.reference"
    assert "#D1" in error.message and 'URI=""' in error.message


@pytest.mark.parametrize("uri", ["#xpointer(/)", "http://example.invalid/doc.xml", None])
def test_other_reference_uris(signer_for, verifier, cert_of, uri):
    signed = signer_for("ent-a").sign(_document())
    reference = signed.find("ds:Signature/ds:SignedInfo/ds:Reference", NS)
    if uri is None:
        del reference.attrib["URI"]
    else:
        reference.set("URI", uri)
    assert _refusal(verifier, signed, [cert_of("ent-a")]).code == "signature.reference"


def test_two_references(signer_for, verifier, cert_of):
    signed = signer_for("ent-a").sign(_document())
    signed_info = signed.find("ds:Signature/ds:SignedInfo", NS)
    signed_info.append(copy.deepcopy(signed_info.find("ds:Reference", NS)))
    error = _refusal(verifier, signed, [cert_of("ent-a")])
    assert error.code == "signature.reference"
    assert "2 references" in error.message


@pytest.mark.parametrize(
    ("method", "digest", "named"),
    [
        (SignatureMethod.RSA_SHA1, DigestAlgorithm.SHA1, "rsa-sha1"),
        (SignatureMethod.RSA_SHA256, DigestAlgorithm.SHA1, "sha1"),
        (SignatureMethod.RSA_SHA224, DigestAlgorithm.SHA256, "rsa-sha224"),
    ],
)
def test_weak_or_unexpected_algorithms(demo_pki, verifier, cert_of, method, digest, named):
    signed = _crafter(LegacySigner, signature_algorithm=method, digest_algorithm=digest).sign(
        _document(), key=load_private_key(demo_pki.key("ent-a")), cert=[cert_of("ent-a")]
    )
    error = _refusal(verifier, signed, [cert_of("ent-a")])
    assert error.code == "signature.algorithm"
    assert f"{named} (" in error.message


def test_hmac(verifier, cert_of):
    signed = _crafter(signature_algorithm=SignatureMethod.HMAC_SHA256).sign(
        _document(), key=b"a secret shared with nobody"
    )
    error = _refusal(verifier, signed, [cert_of("ent-a")])
    assert error.code == "signature.algorithm"
    assert "hmac-sha256" in error.message and "HMAC" in error.message


@pytest.mark.parametrize(
    "algorithm",
    ["http://www.w3.org/TR/1999/REC-xpath-19991116", "http://www.w3.org/TR/1999/REC-xslt-19991116"],
)
def test_xpath_and_xslt_transforms(signer_for, verifier, cert_of, algorithm):
    signed = signer_for("ent-a").sign(_document())
    transforms = signed.find("ds:Signature/ds:SignedInfo/ds:Reference/ds:Transforms", NS)
    etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=algorithm)
    error = _refusal(verifier, signed, [cert_of("ent-a")])
    assert error.code == "signature.algorithm"
    assert algorithm in error.message


def test_bare_key_value(demo_pki, verifier, cert_of):
    signed = _crafter().sign(_document(), key=load_private_key(demo_pki.key("ent-a")))
    assert signed.find("ds:Signature/ds:KeyInfo/ds:KeyValue", NS) is not None
    error = _refusal(verifier, signed, [cert_of("ent-a")])
    assert error.code == "signature.key-info"
    assert "bare KeyValue" in error.message


def test_key_value_not_matching_the_certificate(demo_pki, verifier, cert_of):
    signed = _crafter().sign(
        _document(), key=load_private_key(demo_pki.key("ent-a")), cert=[cert_of("ent-a")], always_add_key_value=True
    )
    modulus = signed.find("ds:Signature/ds:KeyInfo/ds:KeyValue/ds:RSAKeyValue/ds:Modulus", NS)
    other = cert_of("ent-b").public_key()
    assert isinstance(other, rsa.RSAPublicKey)
    n = other.public_numbers().n
    modulus.text = b64encode(n.to_bytes((n.bit_length() + 7) // 8, "big")).decode()
    error = _refusal(verifier, signed, [cert_of("ent-a")])
    assert error.code == "signature.key-info"
    assert "does not match" in error.message


def test_certificate_chain_in_key_info(demo_pki, verifier, cert_of):
    signed = _crafter().sign(
        _document(),
        key=load_private_key(demo_pki.key("ent-a")),
        cert=[cert_of("ent-a"), load_certificate(demo_pki.ca_cert)],
    )
    error = _refusal(verifier, signed, [cert_of("ent-a")])
    assert error.code == "signature.key-info"
    assert "2 X509Certificate" in error.message


def test_retrieval_method_in_key_info(signer_for, verifier, cert_of):
    signed = signer_for("ent-a").sign(_document())
    key_info = signed.find("ds:Signature/ds:KeyInfo", NS)
    etree.SubElement(key_info, f"{{{DS}}}RetrievalMethod", URI="http://example.invalid/cert")
    assert _refusal(verifier, signed, [cert_of("ent-a")]).code == "signature.key-info"


def test_another_participants_valid_signature(signer_for, verifier, cert_of):
    signed = signer_for("ent-b").sign(_document())
    error = _refusal(verifier, signed, [cert_of("ent-a")])
    assert error.code == "signature.certificate"
    assert "not registered for this sender" in error.message
    assert "CN=ent-b" in error.message
    assert fingerprint(cert_of("ent-b")) in error.message


def test_no_pinned_certificate_at_all(signer_for, verifier):
    signed = signer_for("ent-a").sign(_document())
    assert _refusal(verifier, signed, []).code == "signature.certificate"


def test_pinned_certificate_with_another_key_behind_it(demo_pki, verifier, cert_of):
    # ent-b signs but presents ent-a's certificate: the embedded certificate is pinned, the key is not.
    signed = _crafter().sign(
        _document(), key=load_private_key(demo_pki.key("ent-b")), cert=[cert_of("ent-a")]
    )
    assert _refusal(verifier, signed, [cert_of("ent-a")]).code == "signature.invalid"


def test_expired_pinned_certificate(demo_pki, verifier):
    ca_cert = load_certificate(demo_pki.ca_cert)
    ca_key = load_private_key(demo_pki.keys_dir / "ca" / "key.pem")
    key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    now = datetime.now(timezone.utc)
    expired = (
        x509.CertificateBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, "ent-old")]))
        .issuer_name(ca_cert.subject)
        .public_key(key.public_key())
        .serial_number(x509.random_serial_number())
        .not_valid_before(now - timedelta(days=30))
        .not_valid_after(now - timedelta(days=1))
        .sign(ca_key, hashes.SHA256())
    )
    signed = Signer(key, expired).sign(_document())
    error = _refusal(verifier, signed, [expired])
    assert error.code == "signature.certificate"
    assert "expired" in error.message


# --- interop with xmlsec1, the reference C implementation ---------------------------------------


@pytest.mark.parametrize("participant_id", ["ent-a", "ent-ec"])
def test_xmlsec1_verifies_what_we_sign(demo_pki, signer_for, xmlsec1, tmp_path, participant_id):
    signed = signer_for(participant_id).sign_bytes(DOCUMENT)
    good = tmp_path / "signed.xml"
    good.write_bytes(signed)
    result = _run(xmlsec1, "--verify", "--trusted-pem", str(demo_pki.ca_cert), str(good))
    assert result.returncode == 0, result.stdout + result.stderr

    tampered = tmp_path / "tampered.xml"
    tampered.write_bytes(signed.replace(b"model 7<", b"model 8<"))
    assert tampered.read_bytes() != signed
    result = _run(xmlsec1, "--verify", "--trusted-pem", str(demo_pki.ca_cert), str(tampered))
    assert result.returncode != 0, result.stdout + result.stderr


def _template(method: str) -> bytes:
    signature = (
        f'<Signature xmlns="{DS}"><SignedInfo>'
        f'<CanonicalizationMethod Algorithm="{EXC_C14N.value}"/>'
        f'<SignatureMethod Algorithm="{method}"/>'
        '<Reference URI=""><Transforms>'
        '<Transform Algorithm="http://www.w3.org/2000/09/xmldsig#enveloped-signature"/>'
        f'</Transforms><DigestMethod Algorithm="{DigestAlgorithm.SHA256.value}"/><DigestValue/></Reference>'
        "</SignedInfo><SignatureValue/><KeyInfo><X509Data/></KeyInfo></Signature>"
    )
    return DOCUMENT.replace(b"</Declaration>", signature.encode() + b"</Declaration>")


@pytest.mark.parametrize(("participant_id", "method"), [("ent-a", RSA_SHA256), ("ent-ec", ECDSA_SHA256)])
def test_we_verify_what_xmlsec1_signs(demo_pki, verifier, cert_of, xmlsec1, tmp_path, participant_id, method):
    template = tmp_path / "template.xml"
    template.write_bytes(_template(method))
    out = tmp_path / "out.xml"
    keys = f"{demo_pki.key(participant_id)},{demo_pki.cert(participant_id)}"
    result = _run(xmlsec1, "--sign", "--privkey-pem", keys, "--output", str(out), str(template))
    assert result.returncode == 0, result.stdout + result.stderr

    signed = out.read_bytes()
    verified = verifier.verify(parse_untrusted(signed), [cert_of(participant_id)])
    assert verified.signature_method == method
    assert verified.certificate == cert_of(participant_id)
    assert verified.signed_root.findtext("d:Header/d:Sender", namespaces=NS) == "ent-a"

    tampered = parse_untrusted(signed.replace(b"<Receiver>customs<", b"<Receiver>nobody<"))
    assert _refusal(verifier, tampered, [cert_of(participant_id)]).code == "signature.invalid"
    other = "ent-b" if participant_id == "ent-a" else "ent-a"
    assert _refusal(verifier, parse_untrusted(signed), [cert_of(other)]).code == "signature.certificate"


# --- public vectors (read in place from the shared corpus) -------------------------------------

ALGORITHM_VECTORS = [
    ("xmldsig-xmlsec1-vectors/aleksey-xmldsig-01/enveloped-sha1-rsa-sha1.xml", "rsa-sha1"),
    ("xmldsig-xmlsec1-vectors/aleksey-xmldsig-01/enveloped-x509-digest-sha1.xml", "rsa-sha1"),
    ("xmldsig-xmlsec1-vectors/aleksey-xmldsig-01/xpointer-hmac.xml", "hmac-sha1"),
    (
        "xmldsig-signxml-testdata/interop/phaos-xmldsig-three/signature-hmac-sha1-exclusive-c14n-enveloped.xml",
        "hmac-sha1",
    ),
]


@pytest.mark.parametrize(("relative", "named"), ALGORITHM_VECTORS)
def test_public_sha1_and_hmac_vectors_are_refused_for_their_algorithm(verifier, cert_of, relative, named):
    error = _refusal(verifier, _parse_corpus(_corpus_file(relative)), [cert_of("ent-a")])
    assert error.code == "signature.algorithm"
    assert f"{named} (" in error.message


def _wrapping_samples() -> list[str]:
    invalids = "xml-attacks-saml-xsw/responses/invalids"
    found = sorted(f"{invalids}/{p.name}" for p in (CORPUS / invalids).glob("signature_wrapping_attack*.xml"))
    # Named explicitly too, so a missing corpus fails these tests instead of collecting none.
    found = found or [f"{invalids}/signature_wrapping_attack.xml", f"{invalids}/signature_wrapping_attack2.xml"]
    return [*found, "xmldsig-xml-crypto/static/valid_saml_signature_wrapping.xml"]


@pytest.mark.parametrize("relative", _wrapping_samples())
def test_saml_signature_wrapping_samples_are_refused(verifier, relative):
    path = _corpus_file(relative)
    pinned = [load_certificate(p) for p in sorted((CORPUS / "xml-attacks-saml-xsw" / "certs").glob("*.pem"))]
    error = _refusal(verifier, _parse_corpus(path), pinned)
    assert error.code in {"signature.algorithm", "signature.misplaced", "signature.multiple"}, error
