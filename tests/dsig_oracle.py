"""xmlsec1 as the judge of signatures, and the exchange's deliberate differences from it.

Tests compare the exchange's verdict with xmlsec1's: the exchange must never accept what xmlsec1
refuses, and may refuse what xmlsec1 accepts only by a rule of its signature profile listed here and
in SECURITY.md ("Deliberate differences from xmlsec1").
"""

from __future__ import annotations

import base64
import shutil
import subprocess
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from cryptography import x509
from cryptography.hazmat.primitives.serialization import Encoding
from lxml import etree

from exchanger.dsig import SignatureError, Verifier
from exchanger.xml.parser import HostileXML, parse_untrusted

DS = "http://www.w3.org/2000/09/xmldsig#"
PROJECT = Path(__file__).resolve().parents[1]
SECURITY_MD = PROJECT / "SECURITY.md"

# Every rule by which the exchange refuses a signature that xmlsec1 accepts. The refusal's policy
# (SignatureError.policy, or the parse code) names one; SECURITY.md lists each by that name.
POLICIES = {
    "parse.doctype": "a DOCTYPE or entity declaration in a message",
    "parse.malformed": "XML that is not namespace-well-formed (an unbound prefix, an xml:id that is no NCName)",
    "parse.processing-instruction": "a processing instruction outside the root element",
    "placement.enveloped": "a signature that is not a direct child of the root element (enveloping, detached, nested)",
    "placement.one-signature": "more than one ds:Signature in the document",
    "reference.whole-document": 'a reference other than the one URI="" to the whole document',
    "algorithm.accepted-list": "an algorithm outside RSA/ECDSA with SHA-256/384/512, SHA-2 digests, c14n transforms",
    "transform.enveloped-required": "a reference without the enveloped-signature transform",
    "transform.enveloped-first": "a c14n transform before the enveloped-signature transform",
    "transform.each-once": "a transform repeated",
    "c14n.namespace-uri": "a namespace URI holding &, <, >, a quotation mark, a tab or a line break",
    "c14n.xml-base-fixup": "inclusive c14n 1.1 needing xml:base joined across several ancestors",
    "key-info.x509-certificate": "KeyInfo without exactly one X509Certificate, or with another key source",
    "certificate.pinned": "a certificate not registered for the sender",
    "certificate.validity": "a certificate outside its validity period",
    "profile.layout": "signature elements out of the schema's order, missing or repeated",
    "profile.element": "an element the profile does not name (ds:Object, ds:Manifest, foreign, nested in values)",
    "profile.attribute": "an attribute the profile does not name, or an Id/PrefixList that is not a short token",
    "profile.namespace": "a namespace declaration in the signature other than XML-DSig's",
    "profile.text": "non-whitespace text between signature elements",
    "profile.whitespace": "more whitespace than layout needs, between elements or inside a base64 value",
    "profile.comment": "a comment or processing instruction inside the signature",
    "profile.key-name": "a KeyName that is not a short label",
    "profile.base64": "base64 that is not canonically padded, or with characters outside the alphabet",
}


@dataclass(frozen=True)
class Verdict:
    """The exchange's verdict on a document: accepted, or refused with a code and the policy behind it."""

    accepted: bool
    code: str | None = None
    policy: str | None = None
    message: str = ""

    def __str__(self) -> str:
        if self.accepted:
            return "accepted"
        return f"refused {self.code} (policy {self.policy}): {self.message[:160]}"


def exchange_verdict(data: bytes, certificates: Sequence[x509.Certificate], verifier: Verifier | None = None) -> Verdict:
    """Parse the bytes as the daemon does and verify against the pinned certificates."""
    try:
        root = parse_untrusted(data).getroot()
    except HostileXML as exc:
        return Verdict(False, exc.code, exc.code, str(exc))
    try:
        (verifier or Verifier()).verify(root, list(certificates))
    except SignatureError as exc:
        return Verdict(False, exc.code, exc.policy, exc.message)
    return Verdict(True)


def xmlsec1() -> str:
    """The path of xmlsec1; a test that needs it fails (not skips) without it."""
    path = shutil.which("xmlsec1")
    if path is None:
        raise AssertionError("xmlsec1 not found: install the xmlsec1 OS package (e.g. apt-get install xmlsec1)")
    return path


def _run_verify(args: list[str], data: bytes, workdir: Path) -> bool:
    document = workdir / "document.xml"
    document.write_bytes(data)
    result = subprocess.run(
        [xmlsec1(), "--verify", *args, str(document)], capture_output=True, check=False, timeout=60
    )
    return result.returncode == 0


def xmlsec1_accepts_with_ca(data: bytes, ca_certificate: Path) -> bool:
    """xmlsec1's verdict with the embedded certificate, which must chain to the CA (as the daemon requires)."""
    with tempfile.TemporaryDirectory(prefix="xmlsec1-") as workdir:
        return _run_verify(["--trusted-pem", str(ca_certificate), "--enabled-key-data", "x509"], data, Path(workdir))


def xmlsec1_accepts_with_pinned(data: bytes, certificates: Sequence[x509.Certificate]) -> bool:
    """xmlsec1's verdict with one of the certificates' keys given to it directly, KeyInfo's certificates ignored.

    This is the pinned-certificate check: whether the signature verifies with that key, whatever
    chain the certificate has, as vectors signed by keys without a CA here need.
    """
    names = _key_names(data)
    with tempfile.TemporaryDirectory(prefix="xmlsec1-") as workdir:
        for index, certificate in enumerate(certificates):
            pem = Path(workdir) / f"pinned-{index}.pem"
            pem.write_bytes(certificate.public_bytes(Encoding.PEM))
            option = f"--pubkey-cert-pem:{names[0]}" if names else "--pubkey-cert-pem"
            if _run_verify([option, str(pem), "--enabled-key-data", "key-name"], data, Path(workdir)):
                return True
    return False


def _key_names(data: bytes) -> list[str]:
    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    except etree.XMLSyntaxError:
        return []
    return [(node.text or "").strip() for node in root.iter(f"{{{DS}}}KeyName") if (node.text or "").strip()]


def embedded_certificates(data: bytes) -> list[x509.Certificate]:
    """The readable certificates in a document's X509Certificate elements, whatever their place."""
    try:
        root = etree.fromstring(data, etree.XMLParser(resolve_entities=False, no_network=True, load_dtd=False))
    except etree.XMLSyntaxError:
        return []
    found = []
    for node in root.iter(f"{{{DS}}}X509Certificate"):
        try:
            found.append(x509.load_der_x509_certificate(base64.b64decode("".join((node.text or "").split()))))
        except ValueError:
            continue
    return found


def judge(ours: Verdict, xmlsec1_accepted: bool | None) -> str | None:
    """The disagreement between the exchange and xmlsec1 that is not a listed policy, or None.

    xmlsec1_accepted is None when xmlsec1 could not be asked with the right key (no certificate to
    pin): then only a listed policy may have refused it, since nothing could have shown it valid.
    """
    if ours.accepted:
        if xmlsec1_accepted is False:
            return "the exchange accepts what xmlsec1 refuses"
        if xmlsec1_accepted is None:
            return "the exchange accepts a signature xmlsec1 was not asked about"
        return None
    if xmlsec1_accepted is False:
        return None
    if ours.policy not in POLICIES:
        return f"the exchange refuses, by no listed policy, what xmlsec1 accepts: {ours}"
    return None
