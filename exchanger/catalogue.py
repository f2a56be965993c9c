"""The message catalogue: each message type's root element, schema and where its identity fields live."""

from __future__ import annotations

from dataclasses import dataclass, field

from lxml import etree

from exchanger.errors import ExchangerError
from exchanger.field_reader import FieldValue, read_values
from exchanger.xml.schema import CompiledSchema


class FieldError(ExchangerError):
    """A catalogue XPath that compiled at load but fails on this document (e.g. a type error in its data)."""

    def __init__(self, type_name: str, field_name: str, expression: str, error: Exception):
        self.type_name = type_name
        self.field_name = field_name
        self.expression = expression
        super().__init__(
            f"the catalogue entry of {type_name} cannot read {field_name} from this document: "
            f"XPath {expression!r} failed ({error}); the entry in the message catalogue needs correcting"
        )


class FieldRefused(Exception):
    """A catalogue field's value that cannot be read one way only: refused, never guessed."""

    def __init__(self, code: str, message: str, path: str | None = None):
        self.code = code
        self.message = message
        self.path = path
        super().__init__(message)


# How a type is signed: by its own enveloped ds:Signature, or, where its schema leaves no place for
# one (GACC's customs receipts), by the signed envelope it travels in.
SIGNED_BY_ITSELF = "itself"
SIGNED_BY_ENVELOPE = "envelope"


@dataclass(frozen=True)
class MessageType:
    """A message standard, defined by configuration alone."""

    name: str
    root: str  # Clark notation: {namespace}local
    schema: CompiledSchema = field(compare=False, repr=False)
    id_path: etree.XPath = field(compare=False, repr=False)
    sender_path: etree.XPath = field(compare=False, repr=False)
    receivers_path: etree.XPath | None = field(compare=False, repr=False)
    fields: dict[str, etree.XPath] = field(default_factory=dict, compare=False, repr=False)
    description: str = ""
    # A business receipt names the message it answers here: the log correlates the two by that id.
    answers_path: etree.XPath | None = field(default=None, compare=False, repr=False)
    # The format receipt that answers a schema violation of this type, besides the envelope's own receipt.
    format_receipt: str | None = None
    signed_by: str = SIGNED_BY_ITSELF

    def _evaluate(self, field_name: str, path: etree.XPath, root: etree._Element):
        # The loader compiles every XPath and tries it on an empty document, but an expression can
        # still fail on particular data; that must refuse the message, not crash the stage.
        try:
            return path(root)
        except etree.XPathError as exc:
            raise FieldError(self.name, field_name, path.path, exc) from None

    def _single(self, field_name: str, path: etree.XPath, root: etree._Element) -> str | None:
        # XPath's string() of a node-set: the first selected node's value, as a receiver evaluating the
        # same path reads it. An empty first value is no value; a later node is never read in its place.
        return _first(read_values(self._evaluate(field_name, path, root))) or None

    def message_id(self, root: etree._Element) -> str | None:
        """The sender's message id, or None when the document has none."""
        return self._single("message_id", self.id_path, root)

    def sender(self, root: etree._Element) -> str | None:
        """The sender the document names, or None."""
        return self._single("sender", self.sender_path, root)

    def answers(self, root: etree._Element) -> str | None:
        """The id of the message this one answers (a business receipt's original), or None."""
        if self.answers_path is None:
            return None
        return self._single("answers", self.answers_path, root)

    def receivers(self, root: etree._Element) -> list[str]:
        """The receivers the document addresses, in document order, without repeats; an empty one is refused."""
        if self.receivers_path is None:
            return []
        seen: dict[str, None] = {}
        for found in read_values(self._evaluate("receivers", self.receivers_path, root)):
            if not found.value:
                # Skipping it would route the document to fewer receivers than it addresses.
                raise FieldRefused(
                    "identity.empty-receiver",
                    f"the {self.name} addresses a receiver with an empty value"
                    + (f" at {found.path}" if found.path else "")
                    + "; name each receiver, or leave the element out",
                    found.path,
                )
            seen.setdefault(found.value)
        return list(seen)

    def field_values(self, root: etree._Element) -> dict[str, str]:
        """Every named field's value for routing predicates and logs: as XPath's ``string()`` of it, stripped."""
        return {name: _first(read_values(self._evaluate(f"field {name}", path, root))) for name, path in self.fields.items()}


def _first(values: list[FieldValue]) -> str:
    # XPath's string() of a node-set is its first node's value: $field means what string(path) would.
    return values[0].value if values else ""


class Catalogue:
    """All message types, found by root element in constant time."""

    def __init__(self, types: list[MessageType], namespaces: dict[str, str]):
        self.namespaces = dict(namespaces)
        self._by_name = {t.name: t for t in types}
        self._by_root = {t.root: t for t in types}

    def __iter__(self):
        return iter(self._by_name.values())

    def __contains__(self, name: str) -> bool:
        return name in self._by_name

    def get(self, name: str) -> MessageType | None:
        """The message type of this name, or None."""
        return self._by_name.get(name)

    def for_root(self, tag: str) -> MessageType | None:
        """The message type whose root element is ``tag`` (Clark notation), or None."""
        return self._by_root.get(tag)

    def names(self) -> tuple[str, ...]:
        """Every message type name."""
        return tuple(self._by_name)
