"""The envelope catalogue: each envelope's root, schema, where its transport fields are, and what answers it."""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from exchanger.catalogue import MessageType

EXCHANGE = "exchange"  # the exchange's own envelope, and every receiver's unless routes.yaml says otherwise
NAMES_BY_ROOT = "root"  # the envelope names the carried type by its root element's local name
NAMES_BY_TYPE = "type"  # the envelope names the carried type by the catalogue's type name


@dataclass(frozen=True)
class EnvelopeFormat:
    """One envelope format, defined by configuration: its fields are read through the catalogue's one reader."""

    name: str
    root: str  # Clark notation
    reader: MessageType | None = field(default=None, compare=False, repr=False)  # id, sender, receivers, fields
    message_type_names: str = NAMES_BY_TYPE
    payload_encoding: str = "base64"
    receipt: str = "PlatformReceipt"
    shape: str = EXCHANGE
    inbound: bool = False
    description: str = ""

    def type_name(self, message_type: MessageType) -> str:
        """How this envelope names a carried message of this catalogue type."""
        if self.message_type_names == NAMES_BY_ROOT:
            return etree.QName(message_type.root).localname
        return message_type.name


# When routes.yaml names no envelope catalogue: the exchange's own envelope out, business messages only in.
DEFAULT_EXCHANGE = EnvelopeFormat(EXCHANGE, "{urn:eport:exchange:1}ExchangeMessage")


class EnvelopeCatalogue:
    """Every envelope format, by name and, for those participants may send in, by root element."""

    def __init__(self, formats: list[EnvelopeFormat]):
        self._by_name = {f.name: f for f in formats}
        self._by_name.setdefault(EXCHANGE, DEFAULT_EXCHANGE)
        self._inbound = {f.root: f for f in formats if f.inbound}

    def __iter__(self):
        return iter(self._by_name.values())

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def get(self, name: str) -> EnvelopeFormat | None:
        """The envelope format of this name, or None."""
        return self._by_name.get(name)

    def inbound_for_root(self, tag: str) -> EnvelopeFormat | None:
        """The envelope participants may send whose root element is ``tag`` (Clark notation), or None."""
        return self._inbound.get(tag)

    def names(self) -> tuple[str, ...]:
        """Every envelope format's name."""
        return tuple(self._by_name)


@dataclass
class Carrier:
    """What the envelope a message came in says, once read: nothing here is trusted before ``signer`` is set."""

    format: EnvelopeFormat
    tree: etree._ElementTree | None = None
    signed_root: etree._Element | None = None
    signer: object = None  # the Participant whose signature over the envelope verified
    message_id: str | None = None
    sender: str | None = None
    receivers: list[str] = field(default_factory=list)
    message_type: str | None = None
    fields: dict[str, str] = field(default_factory=dict)
    payload: bytes | None = None  # the carried message, decoded

    @property
    def opened(self) -> bool:
        """True once the carried message has been taken out: later reasons are about it, not the envelope."""
        return self.payload is not None
