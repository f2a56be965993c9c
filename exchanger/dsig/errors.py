"""The refusal every signature check raises, and the codes it may carry."""

from __future__ import annotations

import functools

from exchanger.errors import ExchangerError

CODES = (
    "signature.missing",
    "signature.misplaced",
    "signature.multiple",
    "signature.algorithm",
    "signature.reference",
    "signature.key-info",
    "signature.certificate",
    "signature.invalid",
    "signature.unsigned-content",
)


class SignatureError(ExchangerError):
    """A signature the exchange refuses: a short code (one of CODES) and a message for the sender.

    ``policy`` names the deliberate rule of the exchange's profile that refused it, where the refusal
    is a choice (an algorithm, a shape, a placement) rather than a signature shown not to verify; the
    policies are listed in SECURITY.md.
    """

    def __init__(self, code: str, message: str, policy: str | None = None) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.policy = policy

    def __repr__(self) -> str:
        return f"SignatureError({self.code!r}, {self.message!r}, policy={self.policy!r})"


def refusing_the_unexpected(method):
    """Turn any exception but SignatureError into signature.invalid: hostile input gets a refusal, never a traceback."""

    @functools.wraps(method)
    def guarded(*args, **kwargs):
        try:
            return method(*args, **kwargs)
        except SignatureError:
            raise
        except Exception as exc:
            # lxml, base64, cryptography and value errors alike: the signature could not be shown valid.
            raise SignatureError("signature.invalid", f"signature does not verify: {exc}") from exc

    return guarded
