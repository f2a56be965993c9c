"""The adapters that write an envelope around an accepted message: one per envelope ``shape``, chosen by configuration."""

from __future__ import annotations

from typing import Callable

from exchanger.envelopes.dxp import dxp_envelopes
from exchanger.envelopes.exchange import exchange_envelope
from exchanger.envelopes.forwarding import Forwarding, Shaped

# shape(forwarding, envelope format, the copies to write it for) -> the unsigned envelopes, for the platform to sign
Shape = Callable[..., list[Shaped]]

SHAPES: dict[str, Shape] = {"exchange": exchange_envelope, "dxp": dxp_envelopes}

__all__ = ["SHAPES", "Forwarding", "Shape", "Shaped"]
