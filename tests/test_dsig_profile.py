"""The strict signature profile: every class of content that could ride unsigned inside ds:Signature is refused.

Each test generates many members of its class with hypothesis and places them anywhere in a validly
signed document's signature; the exchange's verdict must be the class's refusal, before any
canonicalization or cryptography (the tampering happens in parts no digest covers, so only the
profile can see it).
"""

from __future__ import annotations

import base64
import copy

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st
from lxml import etree

from dsig_oracle import exchange_verdict, xmlsec1_accepts_with_ca
from exchanger.dsig import SignatureError, Signer, Verifier
from exchanger.dsig.layers import verify_layers
from exchanger.dsig.profile import MAX_KEY_NAME, SHAPES
from exchanger.keys import load_certificate
from test_dsig_vectors import document_template

DS = "http://www.w3.org/2000/09/xmldsig#"
DSIG11 = "http://www.w3.org/2009/xmldsig11#"
FOREIGN = "urn:example:smuggled"
PROFILE = settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow]
)
FORGED = (
    '<dec:Declaration xmlns:dec="urn:eport:customs:declaration"><dec:InspectionRequired>0'
    "</dec:InspectionRequired><dec:Consignee>Front Company Ltd</dec:Consignee></dec:Declaration>"
)


@pytest.fixture(scope="module")
def rich(demo_pki):
    """A validly signed document whose KeyInfo also carries a matching KeyValue and a KeyName."""
    signer = Signer(demo_pki.key("ent-a"), demo_pki.cert("ent-a"))
    root = signer.sign(etree.fromstring(document_template("")))
    key_info = root.find(f"{{{DS}}}Signature/{{{DS}}}KeyInfo")
    key = signer.certificate.public_key()
    assert isinstance(key, rsa.RSAPublicKey)
    numbers = key.public_numbers()
    value = etree.SubElement(etree.SubElement(key_info, f"{{{DS}}}KeyValue"), f"{{{DS}}}RSAKeyValue")
    for name, number in (("Modulus", numbers.n), ("Exponent", numbers.e)):
        octets = number.to_bytes((number.bit_length() + 7) // 8, "big")
        etree.SubElement(value, f"{{{DS}}}{name}").text = base64.b64encode(octets).decode()
    etree.SubElement(key_info, f"{{{DS}}}KeyName").text = "ent-a signing key 2026"
    return root, signer.certificate


def _verdict(root, certificate):
    return exchange_verdict(etree.tostring(root), [certificate])


def test_the_rich_signature_is_accepted_by_both(rich, demo_pki):
    root, certificate = rich
    assert _verdict(root, certificate).accepted
    assert xmlsec1_accepts_with_ca(etree.tostring(root), demo_pki.ca_cert)


def _elements(root) -> list[etree._Element]:
    return [node for node in root.find(f"{{{DS}}}Signature").iter() if isinstance(node.tag, str)]


def _markup_only(root) -> list[etree._Element]:
    """The signature's elements that hold elements, not a value."""
    return [node for node in _elements(root) if SHAPES[node.tag].text == "none"]


NCNAME = st.from_regex(r"\A[A-Za-z_][A-Za-z0-9_.-]{0,20}\Z")
UNKNOWN_DS_NAMES = st.sampled_from(
    ["Object", "Manifest", "SignatureProperties", "SignatureProperty", "X509IssuerSerial", "X509SubjectName",
     "X509SKI", "X509CRL", "HMACOutputLength", "XPath", "Reference", "Signature", "SignedInfo", "KeyInfo"]
)


@PROFILE
@given(data=st.data())
def test_elements_the_profile_does_not_name_are_refused(rich, data):
    root, certificate = copy.deepcopy(rich[0]), rich[1]
    parent = data.draw(st.sampled_from(_elements(root)))
    namespace = data.draw(st.sampled_from([DS, DSIG11, FOREIGN, None]))
    local = data.draw(UNKNOWN_DS_NAMES if namespace == DS else NCNAME)
    tag = f"{{{namespace}}}{local}" if namespace else local
    allowed_here = {tag for tag, _, _ in SHAPES[parent.tag].children}
    if tag in allowed_here:
        return  # a second one of a named child is a layout problem, tested elsewhere
    child = etree.Element(tag)
    child.text = data.draw(st.sampled_from([None, FORGED, base64.b64encode(FORGED.encode()).decode()]))
    parent.insert(data.draw(st.integers(0, len(parent))), child)
    verdict = _verdict(root, certificate)
    assert (verdict.code, verdict.policy) in {
        ("signature.unsigned-content", "profile.element"),
        ("signature.multiple", "placement.one-signature"),  # a nested ds:Signature is a second signature
    }, str(verdict)


@PROFILE
@given(data=st.data())
def test_attributes_the_profile_does_not_name_are_refused(rich, data):
    root, certificate = copy.deepcopy(rich[0]), rich[1]
    element = data.draw(st.sampled_from(_elements(root)))
    namespace = data.draw(st.sampled_from([None, FOREIGN, "http://www.w3.org/XML/1998/namespace", DS]))
    name = data.draw(NCNAME)
    key = f"{{{namespace}}}{name}" if namespace else name
    if key in SHAPES[element.tag].attributes or key in element.attrib:
        return
    element.set(key, data.draw(st.sampled_from(["", "1", FORGED])))
    verdict = _verdict(root, certificate)
    assert (verdict.code, verdict.policy) == ("signature.unsigned-content", "profile.attribute"), str(verdict)


@PROFILE
@given(data=st.data(), length=st.integers(65, 5000))
def test_long_ids_are_refused(rich, data, length):
    root, certificate = copy.deepcopy(rich[0]), rich[1]
    element = data.draw(st.sampled_from([e for e in _elements(root) if "Id" in SHAPES[e.tag].attributes]))
    element.set("Id", "a" * length)
    verdict = _verdict(root, certificate)
    assert (verdict.code, verdict.policy) == ("signature.unsigned-content", "profile.attribute"), str(verdict)


@PROFILE
@given(data=st.data())
def test_text_between_signature_elements_is_refused(rich, data):
    root, certificate = copy.deepcopy(rich[0]), rich[1]
    element = data.draw(st.sampled_from(_markup_only(root)))
    text = data.draw(st.sampled_from([FORGED, "x", "\u00a0", "&", base64.b64encode(FORGED.encode()).decode()]))
    children = list(element)
    if children and data.draw(st.booleans()):
        child = data.draw(st.sampled_from(children))
        child.tail = (child.tail or "") + text
    else:
        element.text = (element.text or "") + text
    verdict = _verdict(root, certificate)
    assert (verdict.code, verdict.policy) == ("signature.unsigned-content", "profile.text"), str(verdict)


@PROFILE
@given(data=st.data())
def test_comments_and_processing_instructions_in_the_signature_are_refused(rich, data):
    root, certificate = copy.deepcopy(rich[0]), rich[1]
    parent = data.draw(st.sampled_from(_elements(root)))
    body = data.draw(st.sampled_from([" c ", FORGED.replace("--", "")]))
    node = etree.Comment(body) if data.draw(st.booleans()) else etree.ProcessingInstruction("forged", body)
    parent.insert(data.draw(st.integers(0, len(parent))), node)
    verdict = _verdict(root, certificate)
    assert (verdict.code, verdict.policy) == ("signature.unsigned-content", "profile.comment"), str(verdict)


def _declare_foreign(element, prefix: str) -> None:
    """Put in the element's place an otherwise identical one that binds ``prefix`` to a foreign namespace."""
    replacement = etree.Element(element.tag, nsmap={prefix: FOREIGN + ":" + prefix})
    replacement.attrib.update(element.attrib)
    replacement.text, replacement.tail = element.text, element.tail
    replacement.extend(list(element))
    element.getparent().replace(element, replacement)


@PROFILE
@given(data=st.data(), prefix=st.from_regex(r"\A[a-z][a-z0-9]{0,8}\Z"))
def test_foreign_namespace_declarations_in_the_signature_are_refused(rich, data, prefix):
    root, certificate = copy.deepcopy(rich[0]), rich[1]
    # Declare the namespace on a new, otherwise identical element put in the old one's place.
    element = data.draw(st.sampled_from(_elements(root)))
    # A new declaration: re-binding a prefix already in scope (ds) moves the element itself out of XML-DSig,
    # which is refused too, but as a broken layout (a test of its own), not as a foreign declaration.
    assume(prefix not in element.nsmap)
    _declare_foreign(element, prefix)
    verdict = _verdict(root, certificate)
    assert (verdict.code, verdict.policy) == ("signature.unsigned-content", "profile.namespace"), str(verdict)


def test_rebinding_the_signature_prefix_inside_the_signature_is_refused(rich):
    root, certificate = copy.deepcopy(rich[0]), rich[1]
    signed_info = root.find(".//{http://www.w3.org/2000/09/xmldsig#}SignedInfo")
    _declare_foreign(signed_info, "ds")
    verdict = _verdict(root, certificate)
    assert (verdict.code, verdict.policy) == ("signature.invalid", "profile.layout"), str(verdict)


KEY_NAME_CHARACTERS = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789 ._:@/+=,()-"


@PROFILE
@given(name=st.text(alphabet=KEY_NAME_CHARACTERS, max_size=MAX_KEY_NAME))
def test_a_short_key_name_is_accepted(rich, name):
    root, certificate = copy.deepcopy(rich[0]), rich[1]
    root.find(f".//{{{DS}}}KeyName").text = name
    assert _verdict(root, certificate).accepted


@PROFILE
@given(
    forged=st.sampled_from(
        [FORGED, base64.b64encode(FORGED.encode()).decode(), FORGED.replace("<", "&lt;")]
    ),
    wrapper=st.sampled_from(["{}", " {} ", "\n{}\n", "ent-a {}"]),
)
def test_a_declaration_in_key_name_is_refused(rich, forged, wrapper):
    root, certificate = copy.deepcopy(rich[0]), rich[1]
    root.find(f".//{{{DS}}}KeyName").text = wrapper.format(forged)
    verdict = _verdict(root, certificate)
    assert (verdict.code, verdict.policy) == ("signature.unsigned-content", "profile.key-name"), str(verdict)


def test_a_declaration_as_key_name_markup_is_refused(rich):
    root, certificate = copy.deepcopy(rich[0]), rich[1]
    key_name = root.find(f".//{{{DS}}}KeyName")
    key_name.append(etree.fromstring(FORGED))
    verdict = _verdict(root, certificate)
    assert (verdict.code, verdict.policy) == ("signature.unsigned-content", "profile.element"), str(verdict)


# --- base64, checked in linear time ---------------------------------------------------------------------------

VALUES = {
    "SignatureValue": ("signature.invalid", f".//{{{DS}}}SignatureValue"),
    "DigestValue": ("signature.invalid", f".//{{{DS}}}DigestValue"),
    "X509Certificate": ("signature.key-info", f".//{{{DS}}}X509Certificate"),
    "Modulus": ("signature.key-info", f".//{{{DS}}}Modulus"),
}


@pytest.mark.parametrize("name", sorted(VALUES))
@pytest.mark.parametrize("size", [85_000, 1_000_000, 9_000_000])
def test_base64_values_are_checked_in_linear_time(rich, name, size):
    # The old pattern ^[A-Za-z0-9+/\s]*={0,2}\s*$ backtracked quadratically on this shape (85 KB: 33 s).
    root, certificate = copy.deepcopy(rich[0]), rich[1]
    code, path = VALUES[name]
    root.find(path).text = "QUJD" + " \n" * (size // 2) + "QU!D"
    with pytest.raises(SignatureError) as refused:
        Verifier().verify(root, [certificate])
    assert (refused.value.code, refused.value.policy) == (code, "profile.base64")


@pytest.mark.parametrize("name", sorted(VALUES))
@pytest.mark.parametrize("padding", ["=", "==", "===", "A=", "====", "=QUJD"])
def test_extra_or_misplaced_padding_is_refused(rich, name, padding):
    root, certificate = copy.deepcopy(rich[0]), rich[1]
    code, path = VALUES[name]
    node = root.find(path)
    node.text = node.text.strip() + padding
    verdict = _verdict(root, certificate)
    assert (verdict.code, verdict.policy) == (code, "profile.base64"), str(verdict)


@pytest.mark.parametrize("name", ["SignatureValue", "X509Certificate", "Modulus"])
def test_wrapped_base64_is_accepted(rich, name):
    # (DigestValue is inside SignedInfo: wrapping it changes what was signed.)
    root, certificate = copy.deepcopy(rich[0]), rich[1]
    node = root.find(VALUES[name][1])
    text = "".join(node.text.split())
    node.text = "\n" + "\r\n\t".join(text[i : i + 76] for i in range(0, len(text), 76)) + "\n  "
    assert _verdict(root, certificate).accepted


def test_whitespace_padding_a_value_is_refused(rich):
    root, certificate = copy.deepcopy(rich[0]), rich[1]
    node = root.find(f".//{{{DS}}}X509Certificate")
    node.text = node.text + " " * (3 * len(node.text))
    verdict = _verdict(root, certificate)
    assert (verdict.code, verdict.policy) == ("signature.unsigned-content", "profile.whitespace"), str(verdict)


# --- a receiver's `exchanger verify` says what the daemon says ---------------------------------------------------


@pytest.mark.parametrize(
    "smuggle",
    ["object", "key-name", "x509-data"],
)
def test_exchanger_verify_refuses_unsigned_content(exchange, smuggle):
    from exchange_fixture import SAMPLES

    signed = etree.fromstring(exchange.signed("ent-a", SAMPLES / "customs-declaration/valid-with-inspection.xml"))
    signature = signed.find(f"{{{DS}}}Signature")
    if smuggle == "object":
        etree.SubElement(signature, f"{{{DS}}}Object").append(etree.fromstring(FORGED))
    elif smuggle == "key-name":
        etree.SubElement(signature.find(f"{{{DS}}}KeyInfo"), f"{{{DS}}}KeyName").text = FORGED
    else:
        signature.find(f".//{{{DS}}}X509Data").append(etree.fromstring(FORGED))
    layers, _ = verify_layers(etree.tostring(signed), exchange.config)
    assert [(layer.layer, layer.ok) for layer in layers] == [("sender", False)]
    assert "signature.unsigned-content" in layers[0].detail
    # The control: the same document without the smuggled content verifies.
    clean = exchange.signed("ent-a", SAMPLES / "customs-declaration/valid-with-inspection.xml")
    assert [(layer.layer, layer.ok) for layer in verify_layers(clean, exchange.config)[0]] == [("sender", True)]


def test_the_verify_stage_names_markup_inside_the_certificate(exchange):
    from exchange_fixture import SAMPLES

    signed = etree.fromstring(exchange.signed("ent-a", SAMPLES / "customs-declaration/valid-with-inspection.xml"))
    certificate = signed.find(f".//{{{DS}}}X509Certificate")
    forged = etree.fromstring(FORGED)
    forged.tail = certificate.text[40:]
    certificate.text = certificate.text[:40]
    certificate.append(forged)
    layers, _ = verify_layers(etree.tostring(signed), exchange.config)
    assert not layers[0].ok and "signature.unsigned-content" in layers[0].detail, layers[0].detail
