"""XML-DSig of the exchange: sign with the platform key, verify senders against pinned certificates."""

from __future__ import annotations

from exchanger.dsig.signer import Signer
from exchanger.dsig.verifier import SignatureError, Verified, Verifier

__all__ = ["SignatureError", "Signer", "Verified", "Verifier"]
