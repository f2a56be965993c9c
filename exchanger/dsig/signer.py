"""Sign XML documents with an enveloped XML-DSig signature over the whole document."""

from __future__ import annotations

from pathlib import Path
from typing import Union

from cryptography import x509
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree
from signxml import CanonicalizationMethod, DigestAlgorithm, SignatureMethod, XMLSigner
from signxml.algorithms import SignatureConstructionMethod

from exchanger.keys.material import PrivateKey, load_certificate, load_private_key
from exchanger.xml.parser import parse_untrusted

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
DS_SIGNATURE = f"{{{DS_NS}}}Signature"

# Exclusive c14n: both signxml and xmlsec1 implement it, and unlike inclusive c14n it does not
# drag ancestor namespace declarations into the digest, so documents survive re-wrapping.
C14N = CanonicalizationMethod.EXCLUSIVE_XML_CANONICALIZATION_1_0
DIGEST = DigestAlgorithm.SHA256

_KEY_TYPES = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey)
KeySource = Union[PrivateKey, Path, str]
CertSource = Union[x509.Certificate, Path, str]

# lxml serialises concurrent use of one parser internally, so a single instance serves every caller.


class Signer:
    """Holds one private key and its certificate and signs many documents with them."""

    def __init__(self, key: KeySource, certificate: CertSource) -> None:
        self.key: PrivateKey = key if isinstance(key, _KEY_TYPES) else load_private_key(key)
        self.certificate: x509.Certificate = (
            certificate if isinstance(certificate, x509.Certificate) else load_certificate(certificate)
        )
        if self.certificate.public_key() != self.key.public_key():
            raise ValueError("the certificate does not belong to the private key")
        self.signature_method = _signature_method_for(self.key)
        # XMLSigner keeps no per-document state when id_attribute is not passed, so one instance is reused.
        self._signer = XMLSigner(
            method=SignatureConstructionMethod.enveloped,
            signature_algorithm=self.signature_method,
            digest_algorithm=DIGEST,
            c14n_algorithm=C14N,
        )
        # signxml points the reference at "#<Id>" when the root element has an Id/ID attribute, and
        # cannot be asked for URI="" directly; the annotator runs before SignedInfo is signed.
        self._signer.signature_annotators.append(_reference_whole_document)
        self._cert_chain = [self.certificate]

    def sign(self, root: etree._Element) -> etree._Element:
        """Return the root of a new tree: a copy of root with ds:Signature appended as its last child."""
        # signxml would use an existing <ds:Signature Id="placeholder"> wherever it is, and any other
        # signature left in the document makes it unverifiable under the exchange's one-signature rule.
        if next(root.iter(DS_SIGNATURE), None) is not None:
            raise ValueError("the document already carries a ds:Signature; remove it before signing")
        # signxml serialises and re-parses root before signing, so the caller's tree is left untouched.
        return self._signer.sign(root, key=self.key, cert=self._cert_chain)

    def sign_bytes(self, data: bytes) -> bytes:
        """Parse an XML document safely, sign it, and return the signed document as UTF-8 bytes."""
        signed = self.sign(parse_untrusted(data).getroot())
        return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")


def _reference_whole_document(sig_root: etree._Element, signing_settings: object) -> None:
    """Make the (single) reference cover the whole document: URI=""."""
    # The digest is over the root element either way; only the URI differs.
    for reference in sig_root.iterfind(f"{{{DS_NS}}}SignedInfo/{{{DS_NS}}}Reference"):
        reference.set("URI", "")


def _signature_method_for(key: PrivateKey) -> SignatureMethod:
    if isinstance(key, rsa.RSAPrivateKey):
        return SignatureMethod.RSA_SHA256
    if isinstance(key, ec.EllipticCurvePrivateKey):
        return SignatureMethod.ECDSA_SHA256
    raise TypeError(f"unsupported signing key type {type(key).__name__}")
