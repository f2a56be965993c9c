"""Checkpoints: the platform's signature over the chain at one record, which vouches for all before it."""

from __future__ import annotations

import base64
from collections.abc import Iterable
from dataclasses import dataclass, replace

from cryptography import x509
from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric import ec, padding, rsa

from exchanger.dsig.signer import Signer
from exchanger.keys.sm2 import DEFAULT_SIGNER_ID, Sm2Error, Sm2PrivateKey, Sm2PublicKey, is_sm2_certificate
from exchanger.journal.period import stamp
from exchanger.journal.records import canonical_json

_PURPOSE = "exchanger.journal.checkpoint/1"
# Checkpoints are the exchange's own records, read back by the exchange alone: an SM2 checkpoint is always
# DER with the standard signer ID, whatever the configuration says about documents, so that changing
# `signatures.sm2` never makes the log's past checkpoints unverifiable.
_SM2_ID = DEFAULT_SIGNER_ID.encode()


def fingerprint(certificate: x509.Certificate) -> str:
    """SHA-256 of a certificate's DER: which certificate a checkpoint says signed it."""
    return certificate.fingerprint(hashes.SHA256()).hex()


@dataclass(frozen=True)
class Checkpoint:
    """The platform's signature over the record at ``seq`` and its hash."""

    seq: int
    hash: str
    at: str
    platform: str
    certificate: str
    signature: str

    def payload(self) -> bytes:
        """The bytes that are signed: what the checkpoint asserts, and for what purpose."""
        claim = {
            "purpose": _PURPOSE,
            "seq": self.seq,
            "hash": self.hash,
            "at": self.at,
            "platform": self.platform,
            "certificate": self.certificate,
        }
        return canonical_json(claim).encode("utf-8")


class Checkpointer:
    """Signs checkpoints with the platform key, every ``every_records`` records or ``every_seconds``."""

    def __init__(self, signer: Signer, platform_id: str, every_records: int = 1000, every_seconds: float = 60.0):
        self.signer = signer
        self.platform_id = platform_id
        self.every_records = every_records
        self.every_seconds = every_seconds

    def due(self, records_since: int, seconds_since: float) -> bool:
        """Whether the records written since the last checkpoint should be signed now."""
        return records_since >= self.every_records or (records_since > 0 and seconds_since >= self.every_seconds)

    def sign(self, seq: int, digest: str) -> Checkpoint:
        """A signed checkpoint at the record ``seq`` whose hash is ``digest``."""
        unsigned = Checkpoint(seq, digest, stamp(), self.platform_id, fingerprint(self.signer.certificate), "")
        key = self.signer.key
        if isinstance(key, Sm2PrivateKey):
            signature = key.sign(unsigned.payload(), _SM2_ID)
        elif isinstance(key, rsa.RSAPrivateKey):
            signature = key.sign(unsigned.payload(), padding.PKCS1v15(), hashes.SHA256())
        else:
            signature = key.sign(unsigned.payload(), ec.ECDSA(hashes.SHA256()))
        return replace(unsigned, signature=base64.b64encode(signature).decode("ascii"))


def signature_problem(checkpoint: Checkpoint, certificates: Iterable[x509.Certificate]) -> str | None:
    """None when a trusted certificate's key verifies the checkpoint, else what is wrong with it."""
    by_fingerprint = {fingerprint(c): c for c in certificates}
    certificate = by_fingerprint.get(checkpoint.certificate)
    if certificate is None:
        return (
            f"signed with certificate {checkpoint.certificate[:16]}…, which is not the platform certificate "
            "(pass an earlier platform certificate with --certificate if the key was rotated)"
        )
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
        if is_sm2_certificate(certificate):
            if Sm2PublicKey.from_certificate(certificate).verify(checkpoint.payload(), signature, _SM2_ID):
                return None
            raise InvalidSignature
        public = certificate.public_key()
        if isinstance(public, rsa.RSAPublicKey):
            public.verify(signature, checkpoint.payload(), padding.PKCS1v15(), hashes.SHA256())
        elif isinstance(public, ec.EllipticCurvePublicKey):
            public.verify(signature, checkpoint.payload(), ec.ECDSA(hashes.SHA256()))
        else:
            return f"the certificate's {type(public).__name__} cannot verify checkpoints"
    except (InvalidSignature, ValueError, Sm2Error):
        return "its signature does not verify with the platform certificate (forged or altered)"
    return None
