"""Transport envelopes: the formats a business message travels in, read on the way in and written on the way out."""

from exchanger.envelopes.formats import Carrier, EnvelopeCatalogue, EnvelopeFormat

__all__ = ["Carrier", "EnvelopeCatalogue", "EnvelopeFormat"]
