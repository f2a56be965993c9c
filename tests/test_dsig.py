"""Enveloped XML-DSig: signing, pinned verification, refusals, interop with xmlsec1, public vectors."""

from __future__ import annotations

import copy
import shutil
import subprocess
from base64 import b64decode, b64encode
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import padding, rsa
from cryptography.hazmat.primitives.asymmetric.utils import encode_dss_signature
from cryptography.x509.oid import NameOID
from lxml import etree
from signxml import (
    CanonicalizationMethod,
    DigestAlgorithm,
    SignatureConfiguration,
    SignatureMethod,
    XMLSigner,
    XMLVerifier,
)

from exchanger.dsig import SignatureError, Signer, Verified, Verifier
from exchanger.xml.parser import HostileXML
from exchanger.xml.parser import parse_untrusted as parse_tree


def parse_untrusted(data: bytes):
    """The root element of a safely parsed document."""
    return parse_tree(data).getroot()
from exchanger.dsig.verifier import (
    ACCEPTED_DIGESTS,
    ACCEPTED_SIGNATURE_METHODS,
    C14N_METHODS,
    CODES,
    W3C_DIGESTS,
    W3C_SIGNATURE_METHODS,
)
from exchanger.keys import fingerprint, load_certificate, load_private_key

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
DS = "http://www.w3.org/2000/09/xmldsig#"
NS = {"ds": DS, "d": "urn:eport:test:declaration"}
EXC_C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
EXC_WITH_COMMENTS = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0_WITH_COMMENTS
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
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


def _crafter(
    cls: type[XMLSigner] = XMLSigner, c14n: CanonicalizationMethod = EXC_C14N, **options
) -> XMLSigner:
    """A raw signxml signer for crafting the signatures other systems might send, URI="" by default."""
    signer = cls(c14n_algorithm=c14n, **options)
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


def _transforms(root: etree._Element) -> etree._Element:
    return root.find("ds:Signature/ds:SignedInfo/ds:Reference/ds:Transforms", NS)


def _resign(root: etree._Element, key: rsa.RSAPrivateKey) -> None:
    """Sign SignedInfo again after editing it, as a signer that wrote it that way would have."""
    signed_info = root.find("ds:Signature/ds:SignedInfo", NS)
    data = etree.tostring(signed_info, method="c14n", exclusive=True)
    value = key.sign(data, padding.PKCS1v15(), hashes.SHA256())
    root.find("ds:Signature/ds:SignatureValue", NS).text = b64encode(value).decode()


@pytest.mark.parametrize(
    "algorithms",
    [None, [], [EXC_C14N.value]],
    ids=["no-transforms-element", "no-transforms", "c14n-only"],
)
def test_reference_without_the_enveloped_transform(signer_for, verifier, cert_of, algorithms):
    # Its digest would cover the signature itself: refused for that, not as a digest that happens not to match.
    signer = signer_for("ent-a")
    signed = signer.sign(_document())
    transforms = _transforms(signed)
    for transform in list(transforms):
        transforms.remove(transform)
    if algorithms is None:
        transforms.getparent().remove(transforms)
    for algorithm in algorithms or ():
        etree.SubElement(transforms, f"{{{DS}}}Transform", Algorithm=algorithm)
    _resign(signed, signer.key)
    error = _refusal(verifier, signed, [cert_of("ent-a")])
    assert error.code == "signature.algorithm"
    assert "no enveloped-signature transform" in error.message


def _raw_to_der(raw: bytes) -> bytes:
    half = len(raw) // 2
    return encode_dss_signature(int.from_bytes(raw[:half], "big"), int.from_bytes(raw[half:], "big"))


@pytest.mark.parametrize(
    "change",
    [lambda raw: raw[1:], lambda raw: b"\0" + raw, lambda raw: raw + b"\0", _raw_to_der],
    ids=["short", "leading-zero", "trailing-zero", "der"],
)
def test_ecdsa_signature_value_must_be_r_and_s_of_the_curve_size(signer_for, verifier, cert_of, change):
    # XML-DSig's ECDSA value is r || s, each exactly as long as the curve order: P-256 gives 64 bytes.
    signed = signer_for("ent-ec").sign(_document())
    value = signed.find("ds:Signature/ds:SignatureValue", NS)
    raw = b64decode(value.text)
    assert len(raw) == 64
    value.text = b64encode(change(raw)).decode()
    error = _refusal(verifier, signed, [cert_of("ent-ec")])
    assert error.code == "signature.invalid"
    assert "64 bytes" in error.message


@pytest.mark.parametrize(
    ("participant_id", "method", "named"), [("ent-ec", RSA_SHA256, "an EC key"), ("ent-a", ECDSA_SHA256, "an RSA key")]
)
def test_signature_method_for_another_kind_of_key(signer_for, verifier, cert_of, participant_id, method, named):
    signed = signer_for(participant_id).sign(_document())
    signed.find("ds:Signature/ds:SignedInfo/ds:SignatureMethod", NS).set("Algorithm", method)
    error = _refusal(verifier, signed, [cert_of(participant_id)])
    assert error.code == "signature.invalid"
    assert named in error.message


def test_an_element_inside_another_document_is_not_a_whole_document(signer_for, verifier, cert_of):
    # URI="" covers the whole document; an element handed in from a larger one is not that.
    wrapper = etree.Element("wrapper")
    wrapper.append(signer_for("ent-a").sign(_document()))
    assert _refusal(verifier, wrapper[0], [cert_of("ent-a")]).code == "signature.misplaced"


def _comment_inside(path: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        node = root.find(path, NS)
        half = len(node.text) // 2
        comment = etree.Comment("split")
        comment.tail = node.text[half:]
        node.text = node.text[:half]
        node.append(comment)

    return change


def _twice(path: str) -> Callable[[etree._Element], None]:
    def change(root: etree._Element) -> None:
        node = root.find(path, NS)
        node.addnext(copy.deepcopy(node))

    return change


def _short_digest(root: etree._Element) -> None:
    node = root.find("ds:Signature/ds:SignedInfo/ds:Reference/ds:DigestValue", NS)
    node.text = b64encode(b64decode(node.text)[:-1]).decode()


def _two_prefix_lists(root: etree._Element) -> None:
    transform = _transforms(root)[1]
    for prefixes in ("x", ""):
        etree.SubElement(transform, "{http://www.w3.org/2001/10/xml-exc-c14n#}InclusiveNamespaces", PrefixList=prefixes)


@pytest.mark.parametrize(
    ("change", "code"),
    [
        (_comment_inside("ds:Signature/ds:SignatureValue"), "signature.unsigned-content"),
        (_comment_inside("ds:Signature/ds:SignedInfo/ds:Reference/ds:DigestValue"), "signature.unsigned-content"),
        (_twice("ds:Signature/ds:SignatureValue"), "signature.invalid"),
        (_twice("ds:Signature/ds:SignedInfo/ds:Reference/ds:DigestValue"), "signature.invalid"),
        (_short_digest, "signature.invalid"),
        (_two_prefix_lists, "signature.invalid"),
    ],
    ids=[
        "comment-in-signature-value",
        "comment-in-digest-value",
        "two-signature-values",
        "two-digest-values",
        "short-digest",
        "two-prefix-lists",
    ],
)
def test_ambiguous_or_malformed_values(signer_for, verifier, cert_of, change, code):
    signed = signer_for("ent-a").sign(_document())
    change(signed)
    assert _refusal(verifier, signed, [cert_of("ent-a")]).code == code


def _comment_in_signed_info(sig_root, signing_settings) -> None:
    sig_root.find("ds:SignedInfo", NS).insert(0, etree.Comment(" signed "))


@pytest.mark.parametrize("c14n", [EXC_WITH_COMMENTS, EXC_C14N], ids=["with-comments", "without-comments"])
def test_comments_in_signed_info_are_refused(demo_pki, verifier, cert_of, c14n):
    # Signed (with comments) or not, a comment inside the signature is refused: the profile takes none,
    # so no receiver has to know which c14n variant made it part of what was signed.
    crafter = _crafter(c14n=c14n)
    crafter.signature_annotators.append(_comment_in_signed_info)
    root = crafter.sign(_document(), key=load_private_key(demo_pki.key("ent-a")), cert=[cert_of("ent-a")])
    refused = _refusal(verifier, root, [cert_of("ent-a")])
    assert (refused.code, refused.policy) == ("signature.unsigned-content", "profile.comment")
    assert "a comment" in refused.message


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


def _c14n_parameters(algorithm: str, prefixes: str | None) -> str:
    if prefixes is None or not algorithm.startswith(EXC_C14N.value):
        return ""
    return f'<InclusiveNamespaces xmlns="http://www.w3.org/2001/10/xml-exc-c14n#" PrefixList="{prefixes}"/>'


def _signature_template(
    method: str,
    transforms: tuple[str, ...] = (ENVELOPED,),
    prefixes: str | None = None,
    signed_info_prefixes: str | None = None,
) -> bytes:
    """A signature for xmlsec1 to fill in; with only the enveloped transform, inclusive c14n 1.0 applies."""
    listed = "".join(
        f'<Transform Algorithm="{algorithm}">{_c14n_parameters(algorithm, prefixes)}</Transform>'
        for algorithm in transforms
    )
    return (
        f'<Signature xmlns="{DS}"><SignedInfo>'
        f'<CanonicalizationMethod Algorithm="{EXC_C14N.value}">'
        f"{_c14n_parameters(EXC_C14N.value, signed_info_prefixes)}</CanonicalizationMethod>"
        f'<SignatureMethod Algorithm="{method}"/>'
        f'<Reference URI=""><Transforms>{listed}</Transforms>'
        f'<DigestMethod Algorithm="{DigestAlgorithm.SHA256.value}"/><DigestValue/></Reference>'
        "</SignedInfo><SignatureValue/><KeyInfo><X509Data/></KeyInfo></Signature>"
    ).encode()


def _template(method: str) -> bytes:
    return DOCUMENT.replace(b"</Declaration>", _signature_template(method) + b"</Declaration>")


def _xmlsec1_signed(xmlsec1: str, demo_pki, participant_id: str, template: bytes, tmp_path: Path) -> bytes:
    """The template signed by xmlsec1 with a participant's key, its certificate in KeyInfo."""
    source, out = tmp_path / "template.xml", tmp_path / "out.xml"
    source.write_bytes(template)
    keys = f"{demo_pki.key(participant_id)},{demo_pki.cert(participant_id)}"
    result = _run(xmlsec1, "--sign", "--privkey-pem", keys, "--output", str(out), str(source))
    assert result.returncode == 0, result.stdout + result.stderr
    return out.read_bytes()


@pytest.mark.parametrize(("participant_id", "method"), [("ent-a", RSA_SHA256), ("ent-ec", ECDSA_SHA256)])
def test_we_verify_what_xmlsec1_signs(demo_pki, verifier, cert_of, xmlsec1, tmp_path, participant_id, method):
    signed = _xmlsec1_signed(xmlsec1, demo_pki, participant_id, _template(method), tmp_path)
    verified = verifier.verify(parse_untrusted(signed), [cert_of(participant_id)])
    assert verified.signature_method == method
    assert verified.certificate == cert_of(participant_id)
    assert verified.signed_root.findtext("d:Header/d:Sender", namespaces=NS) == "ent-a"

    tampered = parse_untrusted(signed.replace(b"<Receiver>customs<", b"<Receiver>nobody<"))
    assert _refusal(verifier, tampered, [cert_of(participant_id)]).code == "signature.invalid"
    other = "ent-b" if participant_id == "ent-a" else "ent-a"
    assert _refusal(verifier, parse_untrusted(signed), [cert_of(other)]).code == "signature.certificate"


def test_text_after_the_signature_belongs_to_the_document(demo_pki, verifier, cert_of, xmlsec1, tmp_path):
    # The enveloped-signature transform removes the Signature element, not the text that follows it.
    note = b" a note after the signature "
    template = DOCUMENT.replace(b"\n  <Header>", b"\n  " + _signature_template(RSA_SHA256) + note + b"<Header>")
    signed = _xmlsec1_signed(xmlsec1, demo_pki, "ent-a", template, tmp_path)
    root = parse_untrusted(signed)
    assert root[0].tag == f"{{{DS}}}Signature" and root[0].tail == note.decode()
    verified = verifier.verify(root, [cert_of("ent-a")])
    assert verified.signed_root.text == "\n  " + note.decode()

    root[0].tail = " another note "
    assert _refusal(verifier, root, [cert_of("ent-a")]).code == "signature.invalid"


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


# --- the verifier against signxml's, an independent implementation ------------------------------

# signxml as strict as the exchange's policy, shown only what that policy lets through: any difference
# between the two verdicts is then in the cryptography (canonicalization, digest, signature value).
SIGNXML_STRICT = SignatureConfiguration(
    require_x509=True,
    location="./",
    expect_references=1,
    signature_methods=frozenset(SignatureMethod(uri) for uri in W3C_SIGNATURE_METHODS),
    digest_algorithms=frozenset(DigestAlgorithm(uri) for uri in W3C_DIGESTS),
    default_reference_c14n_method=CanonicalizationMethod.CANONICAL_XML_1_0,
)
SAMPLES = Path(__file__).resolve().parents[1] / "samples"
DS_SIGNATURE = f"{{{DS}}}Signature"


def _signxml_verdict(verifier: Verifier, root: etree._Element, certificates) -> bytes | None:
    """signxml's verdict: the signed content it returns, or None if it or the exchange's policy refuses."""
    try:
        pinned = verifier.inspect(root, certificates).certificate
        signed = XMLVerifier().verify(root, x509_cert=pinned, expect_config=SIGNXML_STRICT).signed_xml
    except Exception:
        # signxml's own errors, and lxml, base64 and value errors on hostile input: all refusals.
        return None
    return etree.tostring(signed)


def _lean_verdict(verifier: Verifier, root: etree._Element, certificates) -> bytes | None:
    """The exchange verifier's verdict: the signed content it returns, or None if it refuses."""
    try:
        return etree.tostring(verifier.verify(root, certificates).signed_root)
    except SignatureError:
        return None


@dataclass
class Tally:
    """Both verdicts on many documents: how many each way, and every disagreement."""

    accepted: int = 0
    refused: int = 0
    disagreements: list[str] = field(default_factory=list)

    def compare(self, verifier: Verifier, name: str, root: etree._Element, certificates) -> None:
        """Record both verifiers' verdicts on one document."""
        lean = _lean_verdict(verifier, root, certificates)
        oracle = _signxml_verdict(verifier, root, certificates)
        if (lean is None) != (oracle is None):
            exchange, signxml = ("refuses", "accepts") if lean is None else ("accepts", "refuses")
            self.disagreements.append(f"{name}: the exchange {exchange}, signxml {signxml}")
        elif lean != oracle:
            self.disagreements.append(f"{name}: both accept, but the signed content differs")
        elif lean is None:
            self.refused += 1
        else:
            self.accepted += 1


def _flip_base64(node: etree._Element) -> None:
    raw = bytearray(b64decode(node.text))
    raw[len(raw) // 2] ^= 0x01
    node.text = b64encode(bytes(raw)).decode()


def _tampered_content(root: etree._Element) -> None:
    """Change the document's first text outside the signature, or add an attribute if it has none."""
    signature = root.find(DS_SIGNATURE)
    texts = (
        e
        for e in root.iter()
        if isinstance(e.tag, str) and (e.text or "").strip() and signature not in (e, *e.iterancestors())
    )
    element = next(texts, None)
    if element is None:
        root.set("tampered", "1")
    else:
        element.text += "1"


def _text_after_signature(root: etree._Element) -> None:
    signature = root.find(DS_SIGNATURE)
    signature.tail = (signature.tail or "") + "unsigned"


MUTATIONS: dict[str, Callable[[etree._Element], None]] = {
    "content changed": _tampered_content,
    "text after the signature": _text_after_signature,
    "SignatureValue changed": lambda root: _flip_base64(root.find("ds:Signature/ds:SignatureValue", NS)),
    "DigestValue changed": lambda root: _flip_base64(
        root.find("ds:Signature/ds:SignedInfo/ds:Reference/ds:DigestValue", NS)
    ),
}


def _compare_with_mutants(
    tally: Tally, verifier: Verifier, name: str, signed: etree._Element, certificates, mutations=MUTATIONS
) -> None:
    """Compare the verdicts on a signed document and on each mutant of it, which no valid signature survives."""
    tally.compare(verifier, name, signed, certificates)
    for how, mutate in mutations.items():
        mutant = copy.deepcopy(signed)
        mutate(mutant)
        tally.compare(verifier, f"{name}, {how}", mutant, certificates)


# How the tests sign besides the exchange's signer: signxml with other algorithms and options.
# (name, participant, signer options, sign options)
SIGNXML_SIGNATURES = [
    ("exclusive c14n, rsa-sha256", "ent-a", {}, {}),
    (
        "inclusive c14n 1.0, rsa-sha384",
        "ent-a",
        {
            "c14n": CanonicalizationMethod.CANONICAL_XML_1_0,
            "signature_algorithm": SignatureMethod.RSA_SHA384,
            "digest_algorithm": DigestAlgorithm.SHA384,
        },
        {},
    ),
    (
        "c14n 1.1, rsa-sha512",
        "ent-a",
        {
            "c14n": CanonicalizationMethod.CANONICAL_XML_1_1,
            "signature_algorithm": SignatureMethod.RSA_SHA512,
            "digest_algorithm": DigestAlgorithm.SHA512,
        },
        {},
    ),
    (
        "no c14n transform, so inclusive c14n 1.0",
        "ent-a",
        {"c14n": CanonicalizationMethod.CANONICAL_XML_1_0},
        {"exclude_c14n_transform_element": True},
    ),
    ("rsa-sha256 with a matching KeyValue", "ent-a", {}, {"always_add_key_value": True}),
    (
        "exclusive c14n with comments, ecdsa-sha256",
        "ent-ec",
        {
            "c14n": EXC_WITH_COMMENTS,
            "signature_algorithm": SignatureMethod.ECDSA_SHA256,
        },
        {},
    ),
    (
        "ecdsa-sha384, sha512 digest",
        "ent-ec",
        {"signature_algorithm": SignatureMethod.ECDSA_SHA384, "digest_algorithm": DigestAlgorithm.SHA512},
        {},
    ),
    (
        "ecdsa-sha512 with a matching KeyValue",
        "ent-ec",
        {"signature_algorithm": SignatureMethod.ECDSA_SHA512},
        {"always_add_key_value": True},
    ),
]


# And xmlsec1's: (name, participant, signature method, template options).
XMLSEC1_SIGNATURES = [
    ("inclusive c14n 1.0 by default", "ent-a", RSA_SHA256, {}),
    (
        "exclusive c14n with a PrefixList",
        "ent-ec",
        ECDSA_SHA256,
        {"transforms": (ENVELOPED, EXC_C14N.value), "prefixes": "cm"},
    ),
]


def _xmlsec1_signed_sample(xmlsec1, demo_pki, path: Path, participant_id, method, options, tmp_path):
    """A bundled sample with xmlsec1's signature appended to its root element."""
    root = parse_untrusted(path.read_bytes())
    root.append(etree.fromstring(_signature_template(method, **options)))
    return parse_untrusted(_xmlsec1_signed(xmlsec1, demo_pki, participant_id, etree.tostring(root), tmp_path))


def test_agrees_with_signxml_on_the_samples_however_signed(demo_pki, signer_for, cert_of, xmlsec1, tmp_path):
    """Every bundled sample (broken ones too: they fail the XSD, not XML), signed each way the tests sign."""
    verifier = Verifier()
    samples = sorted(SAMPLES.glob("*/*.xml"))
    assert len(samples) == 15
    tally = Tally()
    for path in samples:
        name = path.relative_to(SAMPLES).as_posix()
        for participant_id in ("ent-a", "ent-ec"):
            signed = signer_for(participant_id).sign(parse_untrusted(path.read_bytes()))
            pinned = [cert_of(participant_id)]
            how = f"{name} by the exchange's signer ({participant_id})"
            _compare_with_mutants(tally, verifier, how, signed, pinned)
        for how, participant_id, options, sign_options in SIGNXML_SIGNATURES:
            key = load_private_key(demo_pki.key(participant_id))
            pinned = [cert_of(participant_id)]
            signed = _crafter(**options).sign(parse_untrusted(path.read_bytes()), key=key, cert=pinned, **sign_options)
            _compare_with_mutants(tally, verifier, f"{name}, signxml {how}", signed, pinned)
        for how, participant_id, method, options in XMLSEC1_SIGNATURES:
            signed = _xmlsec1_signed_sample(xmlsec1, demo_pki, path, participant_id, method, options, tmp_path)
            _compare_with_mutants(tally, verifier, f"{name}, xmlsec1 {how}", signed, [cert_of(participant_id)])
    assert not tally.disagreements, "\n".join(tally.disagreements)
    signatures = len(samples) * (2 + len(SIGNXML_SIGNATURES) + len(XMLSEC1_SIGNATURES))
    assert (tally.accepted, tally.refused) == (signatures, signatures * len(MUTATIONS))


# The corpus documents signed here, less those SOURCE.txt says cannot be: not well-formed, a namespace
# name that is not an absolute URI (which c14n refuses), or a detached signature rather than a document.
CORPUS_DOCUMENTS = {
    "cn-chinaport-ceb": "cn-chinaport-ceb",
    "wco-dms-hmrc-cds": "wco-dms-hmrc-cds/examples",
    "oasis-ubl-2.1": "oasis-ubl-2.1/xml",
    "oasis-ubl-2.3": "oasis-ubl-2.3/xml",
    "uncefact-cii-d16b-en16931": "uncefact-cii-d16b-en16931",
}
UNSIGNABLE = {
    "wco-dms-hmrc-cds/examples/annotated_XML_samples/TT_EX002a/TT_EX002a.xml",
    "wco-dms-hmrc-cds/examples/annotated_XML_samples/TT_EX022a/TT_EX022a_Declaration1_(Step1).xml",
    "wco-dms-hmrc-cds/examples/annotated_XML_samples/TT_IM084a/TT_IM084a.xml",
    "wco-dms-hmrc-cds/examples/annotated_XML_samples/TT_IM222a/Step1_TT_IM222a.xml",
    "oasis-ubl-2.1/xml/UBL-Invoice-2.0-Detached-Signature.xml",
    "oasis-ubl-2.3/xml/UBL-Invoice-2.0-Detached-Signature.xml",
}


def _unsigned(path: Path) -> etree._Element:
    """A corpus document without the signatures it came with, ready to be signed here."""
    root = parse_untrusted(path.read_bytes())
    for signature in list(root.iter(DS_SIGNATURE)):
        if signature is not root:
            signature.getparent().remove(signature)
    return root


@pytest.mark.parametrize("corpus_set", sorted(CORPUS_DOCUMENTS))
def test_agrees_with_signxml_on_corpus_documents_signed_here(signer_for, cert_of, corpus_set):
    """Real-world documents (namespaces, comments, byte order marks, deep trees) signed by RSA and EC keys in turn."""
    verifier = Verifier()
    directory = CORPUS / CORPUS_DOCUMENTS[corpus_set]
    paths = sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() == ".xml")
    assert paths, f"no documents under {directory}: the shared corpus must sit beside the repository"
    tally, mutations = Tally(), {k: MUTATIONS[k] for k in ("content changed", "text after the signature")}
    for index, path in enumerate(paths):
        name = path.relative_to(CORPUS).as_posix()
        participant_id = ("ent-a", "ent-ec")[index % 2]
        if name in UNSIGNABLE:
            with pytest.raises((HostileXML, etree.C14NError, ValueError)):
                signer_for(participant_id).sign(_unsigned(path))
            continue
        signed = signer_for(participant_id).sign(_unsigned(path))
        _compare_with_mutants(tally, verifier, name, signed, [cert_of(participant_id)], mutations)
    assert not tally.disagreements, "\n".join(tally.disagreements)
    signed_here = len([p for p in paths if p.relative_to(CORPUS).as_posix() not in UNSIGNABLE])
    assert (tally.accepted, tally.refused) == (signed_here, signed_here * len(mutations))


def _embedded_certificates(root: etree._Element) -> list[x509.Certificate]:
    found = []
    for node in root.iter(f"{{{DS}}}X509Certificate"):
        try:
            found.append(x509.load_der_x509_certificate(b64decode("".join((node.text or "").split()))))
        except ValueError:
            pass  # some vectors carry corrupted certificates on purpose
    return found


@pytest.mark.filterwarnings("ignore::cryptography.utils.CryptographyDeprecationWarning")
def test_agrees_with_signxml_on_the_public_vectors_as_they_are():
    """Every corpus file that carries an XML signature, each checked against the certificates it embeds."""
    verifier = Verifier()
    vectors = sorted(
        p for p in CORPUS.rglob("*") if p.is_file() and p.suffix.lower() == ".xml" and DS.encode() in p.read_bytes()
    )
    assert len(vectors) >= 400, f"only {len(vectors)} signed vectors: the shared corpus must sit beside the repository"
    saml = [load_certificate(p) for p in sorted((CORPUS / "xml-attacks-saml-xsw" / "certs").glob("*.pem"))]
    tally = Tally()
    for path in vectors:
        root = _parse_corpus(path)
        tally.compare(verifier, path.relative_to(CORPUS).as_posix(), root, _embedded_certificates(root) + saml)
    assert not tally.disagreements, "\n".join(tally.disagreements)
    # None verifies: all but one fail the exchange's policy (algorithms, references, placement, KeyInfo),
    # and that one, ECDSA in xmlsec1's "Java bug" form, is signed with an expired certificate.
    assert (tally.accepted, tally.refused) == (0, len(vectors))


# --- where the verifier and signxml differ, with xmlsec1 as the referee ----------------------------


def _xmlsec1_verifies(xmlsec1: str, demo_pki, root: etree._Element, tmp_path: Path) -> bool:
    path = tmp_path / "to-verify.xml"
    path.write_bytes(etree.tostring(root))
    return _run(xmlsec1, "--verify", "--trusted-pem", str(demo_pki.ca_cert), str(path)).returncode == 0


def _signxml_alone_accepts(root: etree._Element, certificate: x509.Certificate) -> bool:
    try:
        XMLVerifier().verify(root, x509_cert=certificate, expect_config=SIGNXML_STRICT)
    except Exception:
        return False
    return True


COMMENTED = DOCUMENT.replace(b"<Contact>ops@", b"<Contact>ops<!-- c -->@")


def test_difference_with_comments_signed_by_xmlsec1(demo_pki, verifier, cert_of, xmlsec1, tmp_path):
    # URI="" selects the document without comments, so a #WithComments transform keeps none (XML-DSig
    # 4.4.3.3): xmlsec1 signs so and this verifier agrees; signxml digests the comments and refuses.
    template = COMMENTED.replace(
        b"</Declaration>", _signature_template(RSA_SHA256, (ENVELOPED, EXC_WITH_COMMENTS.value)) + b"</Declaration>"
    )
    root = parse_untrusted(_xmlsec1_signed(xmlsec1, demo_pki, "ent-a", template, tmp_path))
    verified = verifier.verify(root, [cert_of("ent-a")])
    assert verified.signed_root.findtext("d:Header/d:Contact", namespaces=NS) == "ops@ent-a.example"
    assert not verified.signed_root.xpath("//comment()")
    # The comment is not signed: changing it leaves the signature valid, for xmlsec1 too.
    changed = parse_untrusted(etree.tostring(root).replace(b"<!-- c -->", b"<!-- changed -->"))
    verifier.verify(changed, [cert_of("ent-a")])
    assert _xmlsec1_verifies(xmlsec1, demo_pki, changed, tmp_path)
    assert _signxml_verdict(verifier, root, [cert_of("ent-a")]) is None


def test_difference_with_comments_signed_by_signxml(demo_pki, verifier, cert_of, xmlsec1, tmp_path):
    # The other way round: signxml's own signature over the comments verifies with signxml only.
    root = _crafter(c14n=EXC_WITH_COMMENTS).sign(
        parse_untrusted(COMMENTED), key=load_private_key(demo_pki.key("ent-a")), cert=[cert_of("ent-a")]
    )
    assert _signxml_verdict(verifier, root, [cert_of("ent-a")]) is not None
    assert _refusal(verifier, root, [cert_of("ent-a")]).code == "signature.invalid"
    assert not _xmlsec1_verifies(xmlsec1, demo_pki, root, tmp_path)


def test_difference_inclusive_namespaces_for_signed_info(demo_pki, verifier, cert_of, xmlsec1, tmp_path):
    # An InclusiveNamespaces PrefixList on CanonicalizationMethod is valid XML-DSig; signxml's schema of
    # the signature has no declaration for it and refuses every such signature, its own included.
    signature = _signature_template(
        RSA_SHA256, (ENVELOPED, EXC_C14N.value), prefixes="x", signed_info_prefixes="x #default"
    )
    template = DOCUMENT.replace(b"</Declaration>", signature + b"</Declaration>")
    root = parse_untrusted(_xmlsec1_signed(xmlsec1, demo_pki, "ent-a", template, tmp_path))
    assert _lean_verdict(verifier, root, [cert_of("ent-a")]) is not None
    assert _xmlsec1_verifies(xmlsec1, demo_pki, root, tmp_path)
    assert not _signxml_alone_accepts(root, cert_of("ent-a"))


def test_difference_canonicalization_before_the_enveloped_transform(
    signer_for, verifier, cert_of, xmlsec1, demo_pki, tmp_path
):
    # c14n first yields octets, not a document to remove the signature from. signxml applies the
    # enveloped-signature transform first whatever the order; this verifier refuses, and so does xmlsec1.
    signer = signer_for("ent-a")
    root = signer.sign(_document())
    transforms = _transforms(root)
    transforms.insert(0, transforms[1])
    _resign(root, signer.key)
    assert _signxml_alone_accepts(root, cert_of("ent-a"))
    error = _refusal(verifier, root, [cert_of("ent-a")])
    assert error.code == "signature.algorithm"
    assert "before the enveloped-signature transform" in error.message
    assert not _xmlsec1_verifies(xmlsec1, demo_pki, root, tmp_path)
    # The control: the same signature with the transforms in order verifies, so the order alone is refused.
    transforms.append(transforms[0])
    _resign(root, signer.key)
    verifier.verify(root, [cert_of("ent-a")])
    assert _xmlsec1_verifies(xmlsec1, demo_pki, root, tmp_path)


def test_algorithm_identifiers_are_the_ones_signxml_knows():
    """The identifiers the verifier accepts are spelled as the standards (and signxml) spell them.

    The national ones (GACC's sm2-sm3 and sm3), which signxml does not know, are the only others.
    """
    assert C14N_METHODS == {method.value for method in CanonicalizationMethod}
    assert ACCEPTED_SIGNATURE_METHODS - W3C_SIGNATURE_METHODS == {"http://www.chinaport.gov.cn/2022/04/xmldsig#sm2-sm3"}
    assert ACCEPTED_DIGESTS - W3C_DIGESTS == {"http://www.chinaport.gov.cn/2022/04/xmldsig#sm3"}
    assert {SignatureMethod(uri) for uri in W3C_SIGNATURE_METHODS} == {
        SignatureMethod.RSA_SHA256,
        SignatureMethod.RSA_SHA384,
        SignatureMethod.RSA_SHA512,
        SignatureMethod.ECDSA_SHA256,
        SignatureMethod.ECDSA_SHA384,
        SignatureMethod.ECDSA_SHA512,
    }
    assert {DigestAlgorithm(uri) for uri in W3C_DIGESTS} == {
        DigestAlgorithm.SHA256,
        DigestAlgorithm.SHA384,
        DigestAlgorithm.SHA512,
    }


@pytest.mark.parametrize(
    "parent, move",
    [
        ("SignedInfo", "SignatureMethod"),  # SignatureMethod moved after Reference
        ("Reference", "DigestMethod"),  # DigestMethod moved after DigestValue
        ("Signature", "SignatureValue"),  # SignatureValue moved after KeyInfo
    ],
)
def test_children_out_of_the_schema_order_are_refused(signer_for, verifier, cert_of, demo_pki, parent, move):
    # Moving an element inside SignedInfo changes what is signed, so the signature is made again
    # over the reordered SignedInfo: only the order is wrong, and the order alone must refuse it.
    root = signer_for("ent-a").sign(_document())
    ds = f"{{{DS}}}"
    container = root.find(f"{ds}Signature") if parent == "Signature" else root.find(f".//{ds}{parent}")
    element = container.find(f"{ds}{move}")
    container.remove(element)
    container.append(element)
    if parent != "Signature":
        info = root.find(f".//{ds}SignedInfo")
        key = load_private_key(demo_pki.key("ent-a"))
        value = key.sign(etree.tostring(info, method="c14n", exclusive=True), padding.PKCS1v15(), hashes.SHA256())
        root.find(f".//{ds}SignatureValue").text = b64encode(value).decode()
    refused = _refusal(verifier, root, [cert_of("ent-a")])
    assert refused.code == "signature.invalid" and f"ds:{parent} must hold" in refused.message
