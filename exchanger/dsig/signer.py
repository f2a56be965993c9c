"""Sign XML documents with an enveloped XML-DSig signature over the whole document."""

from __future__ import annotations

import base64
import copy
from pathlib import Path
from typing import Union

from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa
from lxml import etree

from exchanger.dsig.methods import DIGEST_METHODS, SIGNATURE_METHODS, SIGNING_CHOICES, SignatureSettings, family_of
from exchanger.keys.material import PrivateKey, load_certificate, load_private_key, same_public_key
from exchanger.keys.sm2 import Sm2PrivateKey
from exchanger.xml.parser import parse_untrusted

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
DS_SIGNATURE = f"{{{DS_NS}}}Signature"
_DS = f"{{{DS_NS}}}"

# Exclusive c14n: signxml and xmlsec1 both implement it, and unlike inclusive c14n it does not
# drag ancestor namespace declarations into the digest, so documents survive re-wrapping.
EXC_C14N = "http://www.w3.org/2001/10/xml-exc-c14n#"
# Inclusive c14n 1.0 for SM2: GACC's 202205 samples name it, and E-port signers canonicalize that way.
C14N_1_0 = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"
ENVELOPED = "http://www.w3.org/2000/09/xmldsig#enveloped-signature"
SHA256 = "http://www.w3.org/2001/04/xmlenc#sha256"
RSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256"
ECDSA_SHA256 = "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256"

_KEY_TYPES = (rsa.RSAPrivateKey, ec.EllipticCurvePrivateKey, Sm2PrivateKey)
KeySource = Union[PrivateKey, Path, str]
CertSource = Union[x509.Certificate, Path, str]


class Signer:
    """Holds one private key and its certificate and signs many documents with them.

    The signature is built directly with lxml's canonicaliser and ``cryptography``: the platform
    signs every forward and every receipt, and a general-purpose signer re-serialises and
    re-parses the document several times per signature. Every signature it makes is checked by
    the tests with the exchange's verifier, with signxml's and with xmlsec1, the reference implementation;
    SM2 signatures, which those two do not know, with the openssl command line.

    With an SM2 key it signs as GACC's 202205 specification writes: the chinaport sm2-sm3 and sm3
    identifiers and inclusive c14n 1.0, with the signer ID and SignatureValue layout of ``settings.sm2``.
    """

    def __init__(self, key: KeySource, certificate: CertSource, settings: SignatureSettings | None = None) -> None:
        self.key: PrivateKey = key if isinstance(key, _KEY_TYPES) else load_private_key(key)
        self.certificate: x509.Certificate = (
            certificate if isinstance(certificate, x509.Certificate) else load_certificate(certificate)
        )
        self.settings = settings or SignatureSettings()
        if not same_public_key(self.certificate, self.key):
            raise ValueError("the certificate does not belong to the private key")
        family = family_of(self.certificate)
        if family is None:
            raise TypeError(f"unsupported signing key type {type(self.key).__name__}")
        self.signature_method, self.digest_method = SIGNING_CHOICES[family.name]
        self._method = SIGNATURE_METHODS[self.signature_method]
        self._digest = DIGEST_METHODS[self.digest_method].digest
        self.c14n_method = C14N_1_0 if family.name == "SM2" else EXC_C14N
        self._certificate_b64 = base64.b64encode(self.certificate.public_bytes(serialization.Encoding.DER)).decode()
        self._template = self._signature_template()

    def _signature_value(self, data: bytes) -> bytes:
        return self._method.family.sign(self.key, data, self._method.hash_name, self.settings)

    def _c14n(self, element: etree._Element) -> bytes:
        return etree.tostring(element, method="c14n", exclusive=self.c14n_method == EXC_C14N, with_comments=False)

    def _signature_template(self) -> etree._Element:
        """The ds:Signature this signer appends, complete but for its DigestValue and SignatureValue."""
        signature = etree.Element(DS_SIGNATURE, nsmap={"ds": DS_NS})
        info = etree.SubElement(signature, _DS + "SignedInfo")
        etree.SubElement(info, _DS + "CanonicalizationMethod", Algorithm=self.c14n_method)
        etree.SubElement(info, _DS + "SignatureMethod", Algorithm=self.signature_method)
        reference = etree.SubElement(info, _DS + "Reference", URI="")
        transforms = etree.SubElement(reference, _DS + "Transforms")
        etree.SubElement(transforms, _DS + "Transform", Algorithm=ENVELOPED)
        if self.c14n_method == EXC_C14N:
            etree.SubElement(transforms, _DS + "Transform", Algorithm=EXC_C14N)
        # Without a c14n transform the reference is canonicalized with inclusive c14n 1.0, as GACC's samples have it.
        etree.SubElement(reference, _DS + "DigestMethod", Algorithm=self.digest_method)
        etree.SubElement(reference, _DS + "DigestValue")
        etree.SubElement(signature, _DS + "SignatureValue")
        key_info = etree.SubElement(signature, _DS + "KeyInfo")
        x509_data = etree.SubElement(key_info, _DS + "X509Data")
        etree.SubElement(x509_data, _DS + "X509Certificate").text = self._certificate_b64
        return signature

    def sign(self, root: etree._Element, *, in_place: bool = False) -> etree._Element:
        """Return the root of a new tree: a copy of root with ds:Signature appended as its last child.

        With ``in_place``, root itself is signed and returned: for a document the caller has just
        built, which must then be the root of a tree of its own.
        """
        # Any other signature left in the document makes it unverifiable under the one-signature rule.
        if next(root.iter(DS_SIGNATURE), None) is not None:
            raise ValueError("the document already carries a ds:Signature; remove it before signing")
        if in_place:
            if root.getparent() is not None or root.getprevious() is not None or root.getnext() is not None:
                raise ValueError("only an element that is a whole document of its own can be signed in place")
            signed = root
        else:
            # A copy in a tree of its own: URI="" then covers exactly this element, for signxml and xmlsec1 alike.
            signed = copy.deepcopy(root)
        digest = base64.b64encode(self._digest(self._c14n(signed))).decode()
        # Copying the prepared element is several times cheaper than building its twelve elements anew.
        signature = copy.deepcopy(self._template)
        signed.append(signature)
        info, value = signature[0], signature[1]
        reference = info[2]
        reference[2].text = digest  # Reference: Transforms, DigestMethod, DigestValue
        value.text = base64.b64encode(self._signature_value(self._c14n(info))).decode()
        return signed

    def sign_bytes(self, data: bytes) -> bytes:
        """Parse an XML document safely, sign it, and return the signed document as UTF-8 bytes."""
        signed = self.sign(parse_untrusted(data).getroot())
        return etree.tostring(signed, xml_declaration=True, encoding="UTF-8")
