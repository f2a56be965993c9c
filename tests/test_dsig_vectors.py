"""Public XML-DSig vectors and xmlsec1-made signatures, each judged against xmlsec1's own verdict.

No verdict here is written down by hand: for each document xmlsec1 is asked (with the document's
own certificate as the pinned key), the exchange is asked, and any disagreement that is not a
deliberate policy listed in tests/dsig_oracle.py and SECURITY.md fails.
"""

from __future__ import annotations

import subprocess
from pathlib import Path

import pytest
from cryptography import x509
from lxml import etree

from dsig_oracle import (
    DS,
    embedded_certificates,
    exchange_verdict,
    judge,
    xmlsec1,
    xmlsec1_accepts_with_ca,
    xmlsec1_accepts_with_pinned,
)
from exchanger.keys import load_certificate

CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
VECTOR_SETS = (
    "xmldsig-xmlsec1-vectors",
    "xmldsig-signxml-testdata/interop/merlin-xmldsig-twenty-three",
    "xmldsig-signxml-testdata/interop/phaos-xmldsig-three",
    "xmldsig-signxml-testdata/interop/TR2012",
    "xmldsig-signxml-testdata/interop/aleksey-xmldsig-01",
    "xmldsig-signxml-testdata/interop/aleksey-xmldsig-01-enveloped",
)
_PARSER = etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False)


def _signed_vectors() -> list[str]:
    """Every vector file of the sets that carries a ds:Signature, as a path relative to the corpus."""
    found = []
    for name in VECTOR_SETS:
        for path in sorted((CORPUS / name).rglob("*.xml")):
            try:
                root = etree.parse(str(path), _PARSER).getroot()
            except etree.XMLSyntaxError:
                continue
            if next(root.iter(f"{{{DS}}}Signature"), None) is not None:
                found.append(str(path.relative_to(CORPUS)))
    return found


VECTORS = _signed_vectors() if CORPUS.is_dir() else []


def test_the_vector_sets_are_there():
    missing = [name for name in VECTOR_SETS if not (CORPUS / name).is_dir()]
    assert not missing, f"corpus sets missing beside the repository: {missing}"
    assert len(VECTORS) > 200


@pytest.mark.parametrize("relative", VECTORS)
def test_public_vector_verdict_agrees_with_xmlsec1(relative):
    data = (CORPUS / relative).read_bytes()
    certificates = embedded_certificates(data)
    ours = exchange_verdict(data, certificates)
    # Without a certificate in the document there is nothing to pin, and the profile requires one.
    theirs = xmlsec1_accepts_with_pinned(data, certificates) if certificates else None
    problem = judge(ours, theirs)
    assert problem is None, f"{relative}: {problem}"


# --- signatures xmlsec1 makes with the test PKI, in every c14n and namespace form ------------------

RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
C14N_1_0 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
C14N_1_1 = "http://www.w3.org/2006/12/xml-c14n11"
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
C14N_FOR_SIGNED_INFO = (
    C14N_1_0,
    C14N_1_0 + "#WithComments",
    C14N_1_1,
    C14N_1_1 + "#WithComments",
    EXC_C14N,
    EXC_C14N + "WithComments",
)
REFERENCE_C14N = (None, C14N_1_0, C14N_1_1, EXC_C14N)
ROOT_ATTRIBUTES = (
    "",
    'xml:lang="en" xml:space="preserve"',
    'xml:base="http://example.org/declarations/"',
    'xml:id="declaration-1"',
    'xmlns="urn:eport:test:default" xmlns:unused="urn:eport:test:unused"',
)


def signature_template(signed_info_c14n: str, reference_c14n: str | None, method: str, prefixed: bool) -> str:
    """A ds:Signature for xmlsec1 to fill in, in the default-namespace or the ds: prefixed form."""
    p = "ds:" if prefixed else ""
    declaration = f'xmlns:ds="{DS}"' if prefixed else f'xmlns="{DS}"'
    transform = f'<{p}Transform Algorithm="{reference_c14n}"/>' if reference_c14n else ""
    return (
        f"<{p}Signature {declaration}><{p}SignedInfo>"
        f'<{p}CanonicalizationMethod Algorithm="{signed_info_c14n}"/><{p}SignatureMethod Algorithm="{method}"/>'
        f'<{p}Reference URI=""><{p}Transforms><{p}Transform Algorithm="{ENVELOPED}"/>{transform}</{p}Transforms>'
        f'<{p}DigestMethod Algorithm="http://www.w3.org/2001/04/xmlenc#sha256"/><{p}DigestValue/></{p}Reference>'
        f"</{p}SignedInfo><{p}SignatureValue/><{p}KeyInfo><{p}X509Data/></{p}KeyInfo></{p}Signature>"
    )


def document_template(signature: str, root_attributes: str = "") -> bytes:
    """A small declaration with prefixed and default namespaces, the signature as the root's last child."""
    return (
        f'<dec:Declaration xmlns:dec="urn:eport:test:declaration" xmlns:x="urn:eport:test:extra" '
        f"{root_attributes}>\n"
        '  <dec:Header><dec:Sender>ent-a</dec:Sender><dec:Receiver x:role="authority">customs</dec:Receiver>'
        "</dec:Header>\n  <dec:Items><dec:Item seq=\"1\">Laptop computer</dec:Item></dec:Items>\n"
        f"{signature}</dec:Declaration>\n"
    ).encode()


def xmlsec1_sign(template: bytes, key: Path, certificate: Path, workdir: Path) -> bytes:
    """The template signed by xmlsec1 with the key, the certificate in KeyInfo."""
    source, out = workdir / "template.xml", workdir / "signed.xml"
    source.write_bytes(template)
    result = subprocess.run(
        [xmlsec1(), "--sign", "--privkey-pem", f"{key},{certificate}", "--output", str(out), str(source)],
        capture_output=True,
        text=True,
        check=False,
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    return out.read_bytes()


MATRIX = [
    (c14n, prefixed, participant, REFERENCE_C14N[i % len(REFERENCE_C14N)], ROOT_ATTRIBUTES[i % len(ROOT_ATTRIBUTES)])
    for i, (c14n, prefixed, participant) in enumerate(
        (c14n, prefixed, participant)
        for c14n in C14N_FOR_SIGNED_INFO
        for prefixed in (False, True)
        for participant in ("ent-a", "ent-ec")
    )
]


@pytest.mark.parametrize(
    ("signed_info_c14n", "prefixed", "participant", "reference_c14n", "root_attributes"),
    MATRIX,
    ids=[
        f"{c14n.rsplit('/', 1)[-1]}-{'ds' if prefixed else 'default'}-{who}-{(ref or 'none').rsplit('/', 1)[-1]}-{i % 5}"
        for i, (c14n, prefixed, who, ref, _) in enumerate(MATRIX)
    ],
)
def test_xmlsec1_signatures_in_every_c14n_and_namespace_form(
    demo_pki, tmp_path, signed_info_c14n, prefixed, participant, reference_c14n, root_attributes
):
    method = ECDSA_SHA256 if participant == "ent-ec" else RSA_SHA256
    template = document_template(
        signature_template(signed_info_c14n, reference_c14n, method, prefixed), root_attributes
    )
    signed = xmlsec1_sign(template, demo_pki.key(participant), demo_pki.cert(participant), tmp_path)
    certificate = load_certificate(demo_pki.cert(participant))
    theirs = xmlsec1_accepts_with_ca(signed, demo_pki.ca_cert)
    assert theirs, "xmlsec1 refuses its own signature"
    ours = exchange_verdict(signed, [certificate])
    assert judge(ours, theirs) is None
    # Inside the profile: accepted outright, with no policy to hide behind.
    assert ours.accepted, str(ours)


@pytest.mark.parametrize("value", ['a/b/', "../up/", "http://example.org/a/../b/c"])
def test_xml_base_under_inclusive_c14n_1_1(demo_pki, tmp_path, value):
    # C14N 1.1 fixes xml:base up instead of copying it; with one ancestor carrying it the value stands.
    template = document_template(signature_template(C14N_1_1, None, RSA_SHA256, False), f'xml:base="{value}"')
    signed = xmlsec1_sign(template, demo_pki.key("ent-a"), demo_pki.cert("ent-a"), tmp_path)
    ours = exchange_verdict(signed, [load_certificate(demo_pki.cert("ent-a"))])
    theirs = xmlsec1_accepts_with_ca(signed, demo_pki.ca_cert)
    assert judge(ours, theirs) is None
    assert ours.accepted == theirs


@pytest.mark.parametrize("default", ["urn:eport:test:default", DS])
@pytest.mark.parametrize("prefix_list", ["#default x", "#default", "x dec"])
def test_exclusive_c14n_with_a_prefix_list_as_xmlsec1_signs_it(demo_pki, tmp_path, default, prefix_list):
    parameters = f'<ec:InclusiveNamespaces xmlns:ec="{EXC_C14N}" PrefixList="{prefix_list}"/>'
    signature = signature_template(EXC_C14N, None, RSA_SHA256, True).replace(
        f'Algorithm="{EXC_C14N}"/>', f'Algorithm="{EXC_C14N}">{parameters}</ds:CanonicalizationMethod>', 1
    )
    template = document_template(signature, f'xmlns="{default}"')
    signed = xmlsec1_sign(template, demo_pki.key("ent-a"), demo_pki.cert("ent-a"), tmp_path)
    theirs = xmlsec1_accepts_with_ca(signed, demo_pki.ca_cert)
    ours = exchange_verdict(signed, [load_certificate(demo_pki.cert("ent-a"))])
    assert theirs and ours.accepted, str(ours)
