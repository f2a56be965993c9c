"""Differential fuzz of the signature verifier against xmlsec1, the reference implementation.

Validly signed documents (signed here and by xmlsec1, RSA and ECDSA, exclusive and inclusive c14n,
the default-namespace and the ds: prefixed forms) are mutated as bytes and as trees, and every mutant
is verified by the exchange and by ``xmlsec1 --verify`` with the test CA. The exchange must never
accept what xmlsec1 refuses, and every refusal of what xmlsec1 accepts must name a deliberate
policy listed in tests/dsig_oracle.py and SECURITY.md. The budget is bounded for CI (a few hundred
xmlsec1 runs); EXCHANGER_FUZZ_SCALE multiplies it.
"""

from __future__ import annotations

import copy
import os
import re
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest
from cryptography import x509
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from dsig_oracle import POLICIES, SECURITY_MD, Verdict, exchange_verdict, judge, xmlsec1_accepts_with_ca
from exchanger.dsig import Signer
from exchanger.keys import load_certificate
from test_dsig_vectors import (
    C14N_1_0,
    C14N_1_1,
    ECDSA_SHA256,
    EXC_C14N,
    RSA_SHA256,
    document_template,
    signature_template,
    xmlsec1_sign,
)

DS = "http://www.w3.org/2000/09/xmldsig#"
EC = "http://www.w3.org/2001/10/xml-exc-c14n#"
CI = os.environ.get("CI", "").strip().lower() not in ("", "0", "false", "no")
SCALE = max(1, int(os.environ.get("EXCHANGER_FUZZ_SCALE", "1") or 1))
DIFFERENTIAL = settings(
    deadline=None,
    derandomize=CI,
    database=None if CI else settings.default.database,
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large, HealthCheck.function_scoped_fixture],
    print_blob=True,
)

# What the runs found, for the summary test at the end of the module.
FOUND: Counter = Counter()


@dataclass(frozen=True, repr=False)
class Seed:
    """A validly signed document and the certificate pinned for its signer."""

    name: str
    data: bytes
    certificate: x509.Certificate

    def __repr__(self) -> str:
        return f"Seed({self.name})"


@pytest.fixture(scope="module")
def seeds(demo_pki, tmp_path_factory) -> list[Seed]:
    """Documents signed here and by xmlsec1 in the forms the profile accepts, each checked by both."""
    workdir = tmp_path_factory.mktemp("seeds")
    made: list[Seed] = []
    plain = document_template("")
    for participant in ("ent-a", "ent-ec"):
        signer = Signer(demo_pki.key(participant), demo_pki.cert(participant))
        made.append(Seed(f"exchange-{participant}", signer.sign_bytes(plain), signer.certificate))
    forms = [
        ("xmlsec1-inclusive-default-rsa", C14N_1_0, None, RSA_SHA256, False, "ent-a", 'xml:lang="en"'),
        ("xmlsec1-inclusive11-ds-ec", C14N_1_1, C14N_1_1, ECDSA_SHA256, True, "ent-ec", 'xmlns="urn:eport:test:d"'),
        ("xmlsec1-exclusive-default-ec", EXC_C14N, EXC_C14N, ECDSA_SHA256, False, "ent-ec", ""),
        ("xmlsec1-inclusive-ds-rsa", C14N_1_0, EXC_C14N, RSA_SHA256, True, "ent-a", 'xml:space="preserve"'),
    ]
    for name, c14n, reference_c14n, method, prefixed, participant, attributes in forms:
        template = document_template(signature_template(c14n, reference_c14n, method, prefixed), attributes)
        data = xmlsec1_sign(template, demo_pki.key(participant), demo_pki.cert(participant), workdir)
        made.append(Seed(name, data, load_certificate(demo_pki.cert(participant))))
    for seed in made:
        assert xmlsec1_accepts_with_ca(seed.data, demo_pki.ca_cert), seed.name
        assert exchange_verdict(seed.data, [seed.certificate]).accepted, seed.name
    return made


# --- tree mutations: each takes the parsed document and hypothesis's draw -----------------------------------


def _signature(root: etree._Element) -> etree._Element:
    signature = root.find(f".//{{{DS}}}Signature")
    if signature is None:
        raise _Nothing
    return signature


class _Nothing(Exception):
    """The mutation has nothing to work on in this document (an earlier one removed it)."""


def _pick(draw, elements: list[etree._Element]) -> etree._Element:
    if not elements:
        raise _Nothing
    return elements[draw(st.integers(0, len(elements) - 1))]


def _signature_elements(root: etree._Element) -> list[etree._Element]:
    return [node for node in _signature(root).iter() if isinstance(node.tag, str)]


FOREIGN = "urn:example:smuggled"
FORGED = "<dec:Declaration><dec:InspectionRequired>0</dec:InspectionRequired></dec:Declaration>"
TEXTS = st.sampled_from(["x", FORGED, " \n\t ", "PHhtbD4=", "&lt;forged/&gt;", " " * 2000, "ds:Object"])
NAMES = st.sampled_from(
    [
        f"{{{DS}}}Object",
        f"{{{DS}}}Manifest",
        f"{{{DS}}}KeyName",
        f"{{{DS}}}X509IssuerSerial",
        f"{{{DS}}}X509Certificate",
        f"{{{DS}}}SignatureProperties",
        f"{{{DS}}}Transform",
        f"{{{FOREIGN}}}Extra",
        "Unqualified",
        f"{{{EC}}}InclusiveNamespaces",
    ]
)
ATTRIBUTES = st.sampled_from(
    ["Id", "URI", "Algorithm", "Type", "MimeType", f"{{{FOREIGN}}}note", "{http://www.w3.org/XML/1998/namespace}lang",
     "{http://www.w3.org/XML/1998/namespace}id", "PrefixList"]
)
ALGORITHMS = st.sampled_from(
    [
        C14N_1_0, C14N_1_1, EXC_C14N, C14N_1_0 + "#WithComments", EXC_C14N + "WithComments",
        "http://www.w3.org/2000/09/xmldsig#enveloped-signature", RSA_SHA256, ECDSA_SHA256,
        "http://www.w3.org/2000/09/xmldsig#rsa-sha1", "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
        "http://www.w3.org/2000/09/xmldsig#sha1", "http://www.w3.org/2001/04/xmlenc#sha512",
        "http://www.w3.org/2001/04/xmlenc#sha256", "http://www.w3.org/TR/1999/REC-xpath-19991116", "",
    ]
)


def add_element(root, draw):
    parent = _pick(draw, _signature_elements(root))
    child = etree.Element(draw(NAMES))
    if draw(st.booleans()):
        child.text = draw(TEXTS)
    parent.insert(draw(st.integers(0, len(parent))), child)


def add_attribute(root, draw):
    _pick(draw, _signature_elements(root)).set(draw(ATTRIBUTES), draw(st.sampled_from(["", "a1", FORGED[:60], "x" * 70])))


def add_text(root, draw):
    element = _pick(draw, _signature_elements(root))
    text = draw(TEXTS)
    if draw(st.booleans()) or element is _signature(root):
        element.text = (element.text or "") + text
    else:
        element.tail = (element.tail or "") + text


def add_comment_or_pi(root, draw):
    parent = _pick(draw, _signature_elements(root))
    node = etree.Comment(" note ") if draw(st.booleans()) else etree.ProcessingInstruction("x", "y")
    parent.insert(draw(st.integers(0, len(parent))), node)


def add_namespace(root, draw):
    element = _pick(draw, _signature_elements(root))
    # lxml declares a namespace where an attribute in it first appears; drop the attribute, keep the declaration.
    replacement = etree.Element(element.tag, nsmap={"smuggled": FOREIGN, **{k: v for k, v in element.nsmap.items() if k}})
    replacement.attrib.update(element.attrib)
    replacement.text, replacement.tail = element.text, element.tail
    replacement.extend(list(element))
    parent = element.getparent()
    parent.replace(element, replacement)


def duplicate(root, draw):
    element = _pick(draw, _signature_elements(root)[1:])
    element.addnext(copy.deepcopy(element))


def remove(root, draw):
    element = _pick(draw, _signature_elements(root)[1:])
    element.getparent().remove(element)


def move(root, draw):
    element = _pick(draw, _signature_elements(root))
    targets = [node for node in root.iter() if isinstance(node.tag, str) and node is not element
               and element not in node.iterancestors() and node not in element.iter()]
    target = _pick(draw, targets)
    element.getparent().remove(element)
    target.insert(draw(st.integers(0, len(target))), element)


def change_algorithm(root, draw):
    with_algorithm = [node for node in _signature_elements(root) if node.get("Algorithm") is not None]
    _pick(draw, with_algorithm).set("Algorithm", draw(ALGORITHMS))


def change_base64(root, draw):
    values = [node for node in _signature_elements(root) if node.tag in (
        f"{{{DS}}}SignatureValue", f"{{{DS}}}DigestValue", f"{{{DS}}}X509Certificate")]
    node = _pick(draw, values)
    text = node.text or ""
    kind = draw(st.sampled_from(["pad", "wrap", "space-then-bad", "flip", "unicode-space"]))
    if kind == "pad":
        node.text = text.rstrip() + "=" * draw(st.integers(1, 3))
    elif kind == "wrap":
        node.text = "\n".join(text[i : i + 64] for i in range(0, len(text), 64)) + "\n"
    elif kind == "space-then-bad":
        node.text = text + " " * draw(st.integers(1, 500)) + draw(st.sampled_from(["!", "-", "\u00a0", "A"]))
    elif kind == "flip" and text:
        at = draw(st.integers(0, len(text) - 1))
        node.text = text[:at] + ("A" if text[at] != "A" else "B") + text[at + 1 :]
    else:
        node.text = text[:8] + "\u2003" + text[8:]


def change_document(root, draw):
    sender = _pick(draw, root.findall(".//{urn:eport:test:declaration}Sender"))
    sender.text = draw(st.sampled_from(["ent-a", "ent-b", "ent-a ", ""]))


def change_reference_uri(root, draw):
    reference = _pick(draw, root.findall(f".//{{{DS}}}Reference"))
    reference.set("URI", draw(st.sampled_from(["", "#", "#xpointer(/)", "#D1", "http://example.org/"])))


TREE_MUTATIONS = [
    add_element, add_attribute, add_text, add_comment_or_pi, add_namespace, duplicate, remove, move,
    change_algorithm, change_base64, change_document, change_reference_uri,
]


def mutate_tree(seed: Seed, draw) -> bytes:
    root = etree.fromstring(seed.data)
    for _ in range(draw(st.integers(1, 2))):
        try:
            draw(st.sampled_from(TREE_MUTATIONS))(root, draw)
        except _Nothing:
            continue
    return etree.tostring(root, xml_declaration=draw(st.booleans()), encoding="UTF-8")


def mutate_bytes(seed: Seed, draw) -> bytes:
    data = bytearray(seed.data)
    # Aim inside the signature most of the time: that is where the profile and c14n live.
    start = seed.data.find(b"Signature")
    low = start if start > 0 and draw(st.integers(0, 3)) else 0
    at = draw(st.integers(low, len(data) - 1))
    kind = draw(st.sampled_from(["flip", "insert", "delete", "duplicate", "prefix"]))
    if kind == "flip":
        data[at] = draw(st.sampled_from(b' \t\n<>"=/:aZ09+!'))
    elif kind == "insert":
        data[at:at] = draw(st.sampled_from([b" ", b"\n", b"<!--c-->", b"<?p?>", b"x", b' a="1"', b"&#x20;", b"<![CDATA[x]]>"]))
    elif kind == "delete":
        del data[at : at + draw(st.integers(1, 8))]
    elif kind == "duplicate":
        end = min(len(data), at + draw(st.integers(1, 40)))
        data[at:at] = data[at:end]
    else:
        # Rename the ds prefix everywhere (a different but equivalent namespace form, or a broken one).
        return re.sub(rb"\bds:", draw(st.sampled_from([b"dsig:", b"", b"ds:"])), bytes(data)).replace(
            b"xmlns:ds=", draw(st.sampled_from([b"xmlns:dsig=", b"xmlns=", b"xmlns:ds="]))
        )
    return bytes(data)


def _check(seed: Seed, mutant: bytes, ca_cert: Path, kind: str) -> None:
    ours = exchange_verdict(mutant, [seed.certificate])
    theirs = xmlsec1_accepts_with_ca(mutant, ca_cert)
    FOUND[(kind, _outcome(ours, theirs))] += 1
    problem = judge(ours, theirs)
    assert problem is None, f"{seed.name}, {kind} mutant:\n{mutant.decode('utf-8', 'replace')}\n{problem}"


def _outcome(ours: Verdict, theirs: bool) -> str:
    if ours.accepted:
        return "both accept" if theirs else "ONLY THE EXCHANGE ACCEPTS"
    if not theirs:
        return "both refuse"
    return f"policy {ours.policy}"


@settings(DIFFERENTIAL, max_examples=300 * SCALE)
@given(data=st.data())
def test_tree_mutants_agree_with_xmlsec1(demo_pki, seeds, data):
    seed = data.draw(st.sampled_from(seeds))
    _check(seed, mutate_tree(seed, data.draw), demo_pki.ca_cert, "tree")


@settings(DIFFERENTIAL, max_examples=200 * SCALE)
@given(data=st.data())
def test_byte_mutants_agree_with_xmlsec1(demo_pki, seeds, data):
    seed = data.draw(st.sampled_from(seeds))
    _check(seed, mutate_bytes(seed, data.draw), demo_pki.ca_cert, "bytes")


NAMESPACE_URIS = st.sampled_from([DS, "urn:a", "urn:b", "http://example.org/ns?x=1&y=2", EC])


@settings(DIFFERENTIAL, max_examples=40 * SCALE)
@given(
    declarations=st.dictionaries(st.sampled_from([None, "ds", "a", "b", "ec", "x"]), NAMESPACE_URIS, max_size=4),
    xml_attributes=st.dictionaries(
        st.sampled_from(["xml:lang", "xml:space", "xml:base", "xml:id"]),
        st.sampled_from(["en", "preserve", "http://example.org/a/b/", "../c/", "d1"]),
        max_size=3,
    ),
    signed_info_c14n=st.sampled_from([C14N_1_0, C14N_1_1, EXC_C14N, C14N_1_1 + "#WithComments"]),
    reference_c14n=st.sampled_from([None, C14N_1_0, C14N_1_1, EXC_C14N]),
    prefixed=st.booleans(),
    participant=st.sampled_from(["ent-a", "ent-ec"]),
)
def test_xmlsec1_signatures_in_random_namespace_contexts_verify(
    demo_pki, tmp_path, declarations, xml_attributes, signed_info_c14n, reference_c14n, prefixed, participant
):
    """Whatever namespaces and xml:* attributes SignedInfo inherits, what xmlsec1 signs and accepts is accepted."""
    if xml_attributes.get("xml:id") not in (None, "d1"):
        return
    declared = " ".join(f'xmlns{":" + prefix if prefix else ""}="{uri.replace("&", "&amp;")}"'
                        for prefix, uri in declarations.items() if prefix not in ("dec", "x"))
    attributes = " ".join(f'{name}="{value}"' for name, value in xml_attributes.items())
    method = ECDSA_SHA256 if participant == "ent-ec" else RSA_SHA256
    template = document_template(
        signature_template(signed_info_c14n, reference_c14n, method, prefixed), f"{declared} {attributes}"
    )
    try:
        etree.fromstring(template)
    except etree.XMLSyntaxError:
        return  # e.g. the ds prefix bound twice on the signature
    signed = xmlsec1_sign(template, demo_pki.key(participant), demo_pki.cert(participant), tmp_path)
    theirs = xmlsec1_accepts_with_ca(signed, demo_pki.ca_cert)
    ours = exchange_verdict(signed, [load_certificate(demo_pki.cert(participant))])
    FOUND[("signed in context", _outcome(ours, theirs))] += 1
    assert judge(ours, theirs) is None, f"{signed.decode()}\n{ours}"
    assert ours.accepted or ours.policy == "c14n.namespace-uri", str(ours)


def test_every_policy_is_documented():
    text = SECURITY_MD.read_text(encoding="utf-8")
    section = text.split("### Deliberate differences from xmlsec1", 1)
    assert len(section) == 2, "SECURITY.md has no 'Deliberate differences from xmlsec1' section"
    missing = [name for name in POLICIES if f"`{name}`" not in section[1]]
    assert not missing, f"policies not listed in SECURITY.md: {missing}"


def test_the_fuzz_reached_both_verdicts(request):
    """Runs after the fuzz in this module: the mutants must include accepted and refused ones for both judges."""
    if not FOUND:
        pytest.skip("run with the fuzz tests of this module")
    outcomes = Counter()
    for (_, outcome), count in FOUND.items():
        outcomes[outcome] += count
    reporter = request.config.pluginmanager.get_plugin("terminalreporter")
    if reporter is not None:
        reporter.write_line("\ndifferential fuzz: " + ", ".join(f"{k}: {v}" for k, v in sorted(outcomes.items())))
    assert outcomes["both accept"] > 0 and outcomes["both refuse"] > 0
    assert any(outcome.startswith("policy ") for outcome in outcomes)
