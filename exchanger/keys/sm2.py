"""SM2 keys and SM2-with-SM3 signatures (GM/T 0003): PEM and certificate glue around GmSSL, which does the curve work.

``cryptography`` cannot load SM2 keys or check SM2 signatures, so the exchange keeps its key material as
the same PKCS#8 PEM that ``openssl genpkey -algorithm SM2`` writes, reads public points from a
certificate's SubjectPublicKeyInfo, and hands raw scalars and points to ``gmssl_pyx`` (GmSSL).
Every signature length and encoding is checked here, in bounded linear steps, before GmSSL is called.
"""

from __future__ import annotations

import base64
from functools import lru_cache
from dataclasses import dataclass

import gmssl_pyx
from cryptography import x509
from pyasn1.codec.der import decoder, encoder
from pyasn1.error import PyAsn1Error
from pyasn1.type import univ
from pyasn1_modules import rfc5208, rfc5280, rfc5480, rfc5915

from exchanger.errors import ExchangerError
from exchanger.stderr_guard import silenced

EC_PUBLIC_KEY = "1.2.840.10045.2.1"
SM2_CURVE = "1.2.156.10197.1.301"
SM2_WITH_SM3 = "1.2.156.10197.1.501"
# GM/T 0009's default signer identity; GACC's E-port keys and OpenSSL's `distid:` option agree on it.
DEFAULT_SIGNER_ID = "1234567812345678"
ENCODINGS = ("raw", "der")
DEFAULT_ENCODING = "raw"
# SEC1 ECPrivateKey PEM labels: OpenSSL 3.0 writes SM2 keys in that form under its own label.
SEC1_LABELS = ("EC PRIVATE KEY", "SM2 PRIVATE KEY")
# ENTL, the identity's length in bits, is two bytes in Z_A (GM/T 0003.2 §5.5).
MAX_SIGNER_ID_BYTES = 8191

SCALAR_BYTES = 32
RAW_SIGNATURE_BYTES = 2 * SCALAR_BYTES
# The order n of the SM2 curve (GM/T 0003.5): signature halves must lie in [1, n-1].
ORDER = int("FFFFFFFEFFFFFFFFFFFFFFFFFFFFFFFF7203DF6B21C6052B53BBF40939D54123", 16)
# SEQUENCE { INTEGER r, INTEGER s } with 32-byte halves is at most 2 + 2 * (2 + 33) bytes.
MAX_DER_SIGNATURE_BYTES = 72


class Sm2Error(ExchangerError):
    """An SM2 key or signature the exchange cannot use, and why."""


@dataclass(frozen=True)
class Sm2PublicKey:
    """An SM2 public point, as the 64 bytes X || Y that GmSSL takes."""

    point: bytes

    def __post_init__(self) -> None:
        if len(self.point) != 2 * SCALAR_BYTES:
            raise Sm2Error(f"an SM2 public point is {2 * SCALAR_BYTES} bytes X || Y, not {len(self.point)}")

    @classmethod
    def from_spki_der(cls, der: bytes) -> Sm2PublicKey:
        """Read the point from a DER SubjectPublicKeyInfo; refuse anything but an uncompressed point on SM2."""
        try:
            spki, rest = decoder.decode(der, asn1Spec=rfc5280.SubjectPublicKeyInfo())
        except PyAsn1Error as exc:
            raise Sm2Error(f"the SubjectPublicKeyInfo cannot be read: {exc}") from None
        if rest:
            raise Sm2Error("the SubjectPublicKeyInfo has bytes after its end")
        return cls.from_spki(spki)

    @classmethod
    def from_spki(cls, spki: rfc5280.SubjectPublicKeyInfo) -> Sm2PublicKey:
        """Read the point from a decoded SubjectPublicKeyInfo (both OIDs checked)."""
        algorithm = spki["algorithm"]
        if str(algorithm["algorithm"]) != EC_PUBLIC_KEY:
            raise Sm2Error(f"the key is not an elliptic-curve key (algorithm {algorithm['algorithm']})")
        curve = _named_curve(algorithm["parameters"])
        if curve != SM2_CURVE:
            raise Sm2Error(f"the key is on curve {curve}, not SM2 ({SM2_CURVE})")
        point = spki["subjectPublicKey"].asOctets()
        if len(point) != 1 + 2 * SCALAR_BYTES or point[0] != 4:
            raise Sm2Error("the SM2 public key is not an uncompressed point (04 || X || Y, 65 bytes)")
        return cls(point[1:])

    @classmethod
    def from_certificate(cls, certificate: x509.Certificate) -> Sm2PublicKey:
        """The SM2 point a certificate certifies."""
        point = _certified_point(certificate)
        if isinstance(point, Sm2Error):
            raise point
        return point

    def spki(self) -> rfc5280.SubjectPublicKeyInfo:
        """This key as a SubjectPublicKeyInfo (id-ecPublicKey on the SM2 curve)."""
        spki = rfc5280.SubjectPublicKeyInfo()
        spki["algorithm"] = _sm2_algorithm()
        spki["subjectPublicKey"] = univ.BitString.fromOctetString(b"\x04" + self.point)
        return spki

    def spki_der(self) -> bytes:
        """This key as DER SubjectPublicKeyInfo."""
        return encoder.encode(self.spki())

    def pem(self) -> bytes:
        """This key as a PEM PUBLIC KEY, as `openssl pkey -pubout` writes it."""
        return _pem("PUBLIC KEY", self.spki_der())

    def verify(self, data: bytes, der_signature: bytes, signer_id: bytes) -> bool:
        """Tell whether a strictly-encoded DER signature was made over data with this key and signer ID."""
        parse_der_signature(der_signature)
        check_signer_id(signer_id)
        with silenced():
            return bool(gmssl_pyx.sm2_verify(self.point, data, der_signature, signer_id=signer_id))


@dataclass(frozen=True, repr=False)
class Sm2PrivateKey:
    """An SM2 private scalar d with its public point."""

    scalar: bytes
    public: Sm2PublicKey

    @classmethod
    def generate(cls) -> Sm2PrivateKey:
        """A new key from GmSSL's generator."""
        point, scalar = gmssl_pyx.sm2_key_generate()
        return cls(scalar, Sm2PublicKey(point))

    @classmethod
    def from_pem(cls, data: bytes) -> Sm2PrivateKey:
        """Read an unencrypted PKCS#8 (`openssl genpkey`) or SEC1 (`openssl ec`, `openssl ecparam`) SM2 private key."""
        label, der = _unpem(data)
        if label == "PRIVATE KEY":
            info, rest = _decode(der, rfc5208.PrivateKeyInfo(), "PKCS#8 private key")
            algorithm = info["privateKeyAlgorithm"]
            if str(algorithm["algorithm"]) != EC_PUBLIC_KEY or _named_curve(algorithm["parameters"]) != SM2_CURVE:
                raise Sm2Error("the PKCS#8 private key is not an SM2 key")
            der = info["privateKey"].asOctets()
        elif label not in SEC1_LABELS:
            raise Sm2Error(f"a {label or 'non-PEM'} block is not an SM2 private key")
        key, _ = _decode(der, rfc5915.ECPrivateKey(), "SM2 private key")
        parameters = key["parameters"]
        if parameters.isValue and (parameters.getName() != "namedCurve" or str(parameters["namedCurve"]) != SM2_CURVE):
            raise Sm2Error("the EC private key is not on the SM2 curve")
        scalar = key["privateKey"].asOctets().rjust(SCALAR_BYTES, b"\x00")
        if len(scalar) != SCALAR_BYTES or not 0 < int.from_bytes(scalar, "big") < ORDER - 1:
            raise Sm2Error("the SM2 private scalar is out of range")
        if not key["publicKey"].isValue:
            raise Sm2Error("the SM2 private key does not carry its public point")
        point = key["publicKey"].asOctets()
        if len(point) != 1 + 2 * SCALAR_BYTES or point[0] != 4:
            raise Sm2Error("the SM2 private key's public point is not uncompressed")
        private = cls(scalar, Sm2PublicKey(point[1:]))
        private._check_pair()
        return private

    def _check_pair(self) -> None:
        # A key file whose public point is not d·G would sign with one key and be matched to another.
        probe = b"exchanger sm2 key pair check"
        if not self.public.verify(probe, self.sign(probe, DEFAULT_SIGNER_ID.encode()), DEFAULT_SIGNER_ID.encode()):
            raise Sm2Error("the SM2 private key's public point does not belong to its scalar")

    def public_key(self) -> Sm2PublicKey:
        """The public half."""
        return self.public

    def sign(self, data: bytes, signer_id: bytes) -> bytes:
        """Sign data with SM2-with-SM3 (Z_A from signer_id); return the DER ECDSA-Sig-Value GmSSL makes."""
        check_signer_id(signer_id)
        return gmssl_pyx.sm2_sign(self.scalar, self.public.point, data, signer_id=signer_id)

    def pkcs8_der(self) -> bytes:
        """This key as unencrypted PKCS#8 DER, the form `openssl genpkey -algorithm SM2` writes."""
        key = rfc5915.ECPrivateKey()
        key["version"] = 1
        key["privateKey"] = self.scalar
        key["publicKey"] = _tagged_public_key(b"\x04" + self.public.point)
        info = rfc5208.PrivateKeyInfo()
        info["version"] = 0
        info["privateKeyAlgorithm"] = _sm2_algorithm(rfc5208.AlgorithmIdentifier())
        info["privateKey"] = encoder.encode(key)
        return encoder.encode(info)

    def pem(self) -> bytes:
        """This key as a PEM PRIVATE KEY (PKCS#8)."""
        return _pem("PRIVATE KEY", self.pkcs8_der())


def is_sm2_certificate(certificate: x509.Certificate) -> bool:
    """Tell whether a certificate certifies an SM2 key (without ``cryptography`` loading the key, which it cannot)."""
    return isinstance(_certified_point(certificate), Sm2PublicKey)


@lru_cache(maxsize=4096)
def _certified_point(certificate: x509.Certificate) -> Sm2PublicKey | Sm2Error:
    """The certificate's SM2 point, or why it has none; kept, since pinned certificates are asked on every message.

    Decoding a certificate with pyasn1 costs about as much as the SM2 verification itself.
    """
    try:
        tbs, _ = decoder.decode(certificate.tbs_certificate_bytes, asn1Spec=rfc5280.TBSCertificate())
        return Sm2PublicKey.from_spki(tbs["subjectPublicKeyInfo"])
    except Sm2Error as exc:
        return exc
    except PyAsn1Error as exc:
        return Sm2Error(f"the certificate cannot be read: {exc}")


def check_signer_id(signer_id: bytes) -> None:
    """Refuse a signer ID GM/T 0003 cannot carry: empty, or longer than ENTL's 16 bits of bit length."""
    if not signer_id or len(signer_id) > MAX_SIGNER_ID_BYTES:
        raise Sm2Error(f"an SM2 signer ID is 1 to {MAX_SIGNER_ID_BYTES} bytes, not {len(signer_id)}")


def raw_from_der(der: bytes) -> bytes:
    """Convert a DER ECDSA-Sig-Value to r || s, 64 bytes."""
    r, s = parse_der_signature(der)
    return r.to_bytes(SCALAR_BYTES, "big") + s.to_bytes(SCALAR_BYTES, "big")


def der_from_raw(raw: bytes) -> bytes:
    """Convert r || s (exactly 64 bytes, both halves in [1, n-1]) to a DER ECDSA-Sig-Value."""
    if len(raw) != RAW_SIGNATURE_BYTES:
        raise Sm2Error(f"a raw SM2 signature is {RAW_SIGNATURE_BYTES} bytes r || s, this one is {len(raw)}")
    r, s = int.from_bytes(raw[:SCALAR_BYTES], "big"), int.from_bytes(raw[SCALAR_BYTES:], "big")
    _check_halves(r, s)
    body = _der_integer(r) + _der_integer(s)
    return b"\x30" + bytes([len(body)]) + body


def parse_der_signature(der: bytes) -> tuple[int, int]:
    """Return (r, s) from a strict DER SEQUENCE of two minimal INTEGERs in [1, n-1], nothing after it."""
    if not 8 <= len(der) <= MAX_DER_SIGNATURE_BYTES:
        raise Sm2Error(f"a DER SM2 signature is 8 to {MAX_DER_SIGNATURE_BYTES} bytes, this one is {len(der)}")
    # Short-form lengths only: every valid SM2 signature is under 128 bytes.
    if der[0] != 0x30 or der[1] != len(der) - 2:
        raise Sm2Error("a DER SM2 signature must be one SEQUENCE with nothing after it")
    r, at = _read_der_integer(der, 2)
    s, at = _read_der_integer(der, at)
    if at != len(der):
        raise Sm2Error("a DER SM2 signature holds something after its two INTEGERs")
    _check_halves(r, s)
    return r, s


def _read_der_integer(der: bytes, at: int) -> tuple[int, int]:
    if at + 2 > len(der) or der[at] != 0x02:
        raise Sm2Error("a DER SM2 signature must hold two INTEGERs")
    size = der[at + 1]
    body = der[at + 2 : at + 2 + size]
    if size == 0 or size > SCALAR_BYTES + 1 or len(body) != size:
        raise Sm2Error("a DER SM2 signature holds an INTEGER of the wrong length")
    if body[0] & 0x80:
        raise Sm2Error("a DER SM2 signature holds a negative INTEGER")
    if size > 1 and body[0] == 0 and not body[1] & 0x80:
        raise Sm2Error("a DER SM2 signature holds an INTEGER that is not minimally encoded")
    return int.from_bytes(body, "big"), at + 2 + size


def _check_halves(r: int, s: int) -> None:
    if not (0 < r < ORDER and 0 < s < ORDER):
        raise Sm2Error("an SM2 signature's r and s must each lie between 1 and the curve order minus 1")


def _der_integer(value: int) -> bytes:
    body = value.to_bytes(value.bit_length() // 8 + 1, "big")  # the extra byte keeps the sign bit clear
    if len(body) > 1 and body[0] == 0 and not body[1] & 0x80:
        body = body[1:]
    return b"\x02" + bytes([len(body)]) + body


def _named_curve(parameters) -> str:
    try:
        der = encoder.encode(parameters) if not isinstance(parameters, bytes) else parameters
        curve, rest = decoder.decode(der, asn1Spec=rfc5480.ECParameters())
    except PyAsn1Error:
        return "(unreadable parameters)"
    if rest or curve.getName() != "namedCurve":
        return "(not a named curve)"
    return str(curve["namedCurve"])


def _sm2_algorithm(algorithm=None):
    algorithm = algorithm if algorithm is not None else rfc5280.AlgorithmIdentifier()
    algorithm["algorithm"] = univ.ObjectIdentifier(EC_PUBLIC_KEY)
    algorithm["parameters"] = encoder.encode(univ.ObjectIdentifier(SM2_CURVE))
    return algorithm


def _tagged_public_key(octets: bytes) -> univ.BitString:
    spec = rfc5915.ECPrivateKey.componentType["publicKey"].getType()
    return spec.clone(univ.BitString.fromOctetString(octets))


def _decode(der: bytes, spec, what: str):
    try:
        value, rest = decoder.decode(der, asn1Spec=spec)
    except PyAsn1Error as exc:
        raise Sm2Error(f"the {what} cannot be read: {exc}") from None
    if rest:
        raise Sm2Error(f"the {what} has bytes after its end")
    return value, rest


def _pem(label: str, der: bytes) -> bytes:
    body = base64.encodebytes(der).replace(b"\n", b"")
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return b"\n".join([f"-----BEGIN {label}-----".encode(), *lines, f"-----END {label}-----".encode(), b""])


def _unpem(data: bytes) -> tuple[str, bytes]:
    """The label and DER bytes of the first PEM block in data (parameter blocks before it skipped)."""
    text = data.decode("ascii", "replace")
    start = 0
    while True:
        begin = text.find("-----BEGIN ", start)
        if begin < 0:
            return "", b""
        label_end = text.find("-----", begin + 11)
        label = text[begin + 11 : label_end]
        end = text.find(f"-----END {label}-----", label_end)
        if label_end < 0 or end < 0:
            raise Sm2Error("the PEM block has no end line")
        if label not in ("EC PARAMETERS", "SM2 PARAMETERS"):
            try:
                return label, base64.b64decode("".join(text[label_end + 5 : end].split()), validate=True)
            except ValueError:
                raise Sm2Error(f"the PEM {label} block is not base64") from None
        start = end

