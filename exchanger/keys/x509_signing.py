"""Sign certificates and CRLs with any key the exchange holds, and check who signed them; SM2 included.

``cryptography`` builds and encodes every certificate and CRL the exchange issues. It cannot sign with
SM2, so for an SM2 issuer the builder signs with a throw-away P-256 key, and the result is taken apart
with ``pyasn1-modules`` (RFC 5280): the subject's SM2 SubjectPublicKeyInfo and the SM2-with-SM3
algorithm (OID 1.2.156.10197.1.501, no parameters, as OpenSSL and GM/T 0015 write it) go in, and the
TBS part is signed with GmSSL, giving the DER ECDSA-Sig-Value GM/T 0015 prescribes. The result is
parsed again by ``cryptography``, so everything else about it is checked as for RSA.
"""

from __future__ import annotations

import hashlib
from functools import lru_cache

from cryptography import x509
from cryptography.exceptions import InvalidSignature, UnsupportedAlgorithm
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec
from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pyasn1_modules import rfc5280

from exchanger.keys.sm2 import (
    DEFAULT_SIGNER_ID,
    SM2_WITH_SM3,
    Sm2Error,
    Sm2PrivateKey,
    Sm2PublicKey,
    is_sm2_certificate,
)

SM2_WITH_SM3_OID = x509.ObjectIdentifier(SM2_WITH_SM3)
# Certificates and CRLs are signed with GM/T 0009's default identity, whatever ID documents use.
CERTIFICATE_SIGNER_ID = DEFAULT_SIGNER_ID.encode()


@lru_cache(maxsize=1)
def _placeholder() -> ec.EllipticCurvePrivateKey:
    # Only its signature slot is used, and that is replaced: the key never signs anything that is kept.
    return ec.generate_private_key(ec.SECP256R1())


def subject_key_identifier(public_key) -> x509.SubjectKeyIdentifier:
    """RFC 5280 §4.2.1.2 method 1: SHA-1 of the subjectPublicKey bits, for SM2 keys as for the others."""
    if isinstance(public_key, Sm2PublicKey):
        return x509.SubjectKeyIdentifier(hashlib.sha1(b"\x04" + public_key.point).digest())
    return x509.SubjectKeyIdentifier.from_public_key(public_key)


def sign_certificate(builder: x509.CertificateBuilder, public_key, issuer_key) -> x509.Certificate:
    """Finish builder with the subject's public key and sign it with the issuer's key."""
    if not isinstance(issuer_key, Sm2PrivateKey) and not isinstance(public_key, Sm2PublicKey):
        return builder.public_key(public_key).sign(issuer_key, hashes.SHA256())
    if not isinstance(issuer_key, Sm2PrivateKey) or not isinstance(public_key, Sm2PublicKey):
        raise Sm2Error("an SM2 certificate needs an SM2 CA, and an SM2 CA issues SM2 certificates only")
    draft = builder.public_key(_placeholder().public_key()).sign(_placeholder(), hashes.SHA256())
    tbs, _ = decoder.decode(draft.tbs_certificate_bytes, asn1Spec=rfc5280.TBSCertificate())
    tbs["signature"] = _sm2_with_sm3()
    tbs["subjectPublicKeyInfo"] = public_key.spki()
    certificate = rfc5280.Certificate()
    certificate["tbsCertificate"] = tbs
    certificate["signatureAlgorithm"] = _sm2_with_sm3()
    signature = issuer_key.sign(encoder.encode(tbs), CERTIFICATE_SIGNER_ID)
    certificate["signature"] = univ.BitString.fromOctetString(signature)
    return x509.load_der_x509_certificate(encoder.encode(certificate))


def sign_crl(builder: x509.CertificateRevocationListBuilder, issuer_key) -> x509.CertificateRevocationList:
    """Sign a revocation list with the issuer's key."""
    if not isinstance(issuer_key, Sm2PrivateKey):
        return builder.sign(issuer_key, hashes.SHA256())
    draft = builder.sign(_placeholder(), hashes.SHA256())
    tbs, _ = decoder.decode(draft.tbs_certlist_bytes, asn1Spec=rfc5280.TBSCertList())
    tbs["signature"] = _sm2_with_sm3()
    crl = rfc5280.CertificateList()
    crl["tbsCertList"] = tbs
    crl["signatureAlgorithm"] = _sm2_with_sm3()
    signature = issuer_key.sign(encoder.encode(tbs), CERTIFICATE_SIGNER_ID)
    crl["signature"] = univ.BitString.fromOctetString(signature)
    return x509.load_der_x509_crl(encoder.encode(crl))


def issued_by(
    certificate: x509.Certificate, issuer: x509.Certificate, signer_id: bytes = CERTIFICATE_SIGNER_ID
) -> bool:
    """Tell whether issuer's key signed the certificate (names and signature; nothing else)."""
    if certificate.issuer != issuer.subject:
        return False
    if certificate.signature_algorithm_oid == SM2_WITH_SM3_OID:
        return _sm2_signed(certificate.tbs_certificate_bytes, certificate.signature, issuer, signer_id)
    try:
        certificate.verify_directly_issued_by(issuer)
    except (InvalidSignature, ValueError, TypeError, UnsupportedAlgorithm):
        return False
    return True


def crl_signed_by(
    crl: x509.CertificateRevocationList, issuer: x509.Certificate, signer_id: bytes = CERTIFICATE_SIGNER_ID
) -> bool:
    """Tell whether issuer's key signed the revocation list."""
    if crl.issuer != issuer.subject:
        return False
    if crl.signature_algorithm_oid == SM2_WITH_SM3_OID:
        return _sm2_signed(crl.tbs_certlist_bytes, crl.signature, issuer, signer_id)
    if is_sm2_certificate(issuer):
        return False
    try:
        return crl.is_signature_valid(issuer.public_key())
    except (TypeError, ValueError, UnsupportedAlgorithm):
        return False


def certifies_sm2(certificate: x509.Certificate) -> bool:
    """Tell whether a certificate needs the SM2 path: an SM2 key, or an SM2-with-SM3 signature on it."""
    return certificate.signature_algorithm_oid == SM2_WITH_SM3_OID or is_sm2_certificate(certificate)


def _sm2_signed(tbs: bytes, signature: bytes, issuer: x509.Certificate, signer_id: bytes) -> bool:
    try:
        return Sm2PublicKey.from_certificate(issuer).verify(tbs, signature, signer_id)
    except (Sm2Error, PyAsn1Error):
        return False


def _sm2_with_sm3() -> rfc5280.AlgorithmIdentifier:
    algorithm = rfc5280.AlgorithmIdentifier()
    algorithm["algorithm"] = univ.ObjectIdentifier(SM2_WITH_SM3)
    return algorithm
