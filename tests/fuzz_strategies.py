"""Hypothesis strategies for fuzzing the exchange's input: bodies, mutated signed samples, AMQP properties, predicates."""

from __future__ import annotations

import base64
import copy
import re
from dataclasses import dataclass
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path

from hypothesis import strategies as st
from lxml import etree

from exchanger.xml.parser import HostileXML, parse_untrusted

DS = "http://www.w3.org/2000/09/xmldsig#"
DS_SIGNATURE = f"{{{DS}}}Signature"
CM = "urn:eport:common:1"
XINCLUDE = "http://www.w3.org/2001/XInclude"
XML_NS = "http://www.w3.org/XML/1998/namespace"


# ---- signed samples --------------------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class SignedSample:
    """A bundled sample signed with its sender's key: the unmutated starting point of every mutation."""

    name: str
    sender: str
    body: bytes

    def __repr__(self) -> str:
        """The sample's name: failure reports list every argument, and the bytes would bury them."""
        return f"SignedSample({self.name!r}, signed by {self.sender})"


def sample_sender(path: Path) -> str:
    """The participant a bundled sample names as its sender (cm:SenderId)."""
    return etree.parse(str(path)).getroot().findtext(f"*/{{{CM}}}SenderId")


def sign_samples(samples_dir: Path, signer_for) -> list[SignedSample]:
    """Every bundled sample, signed by the participant it names as sender; ``signer_for(id)`` gives the Signer."""
    signed = []
    for path in sorted(samples_dir.glob("*/*.xml")):
        sender = sample_sender(path)
        body = signer_for(sender).sign_bytes(path.read_bytes())
        signed.append(SignedSample(path.relative_to(samples_dir).as_posix(), sender, body))
    return signed


# ---- what a signature covers -----------------------------------------------------------------------------------


def _remove_keeping_tail(element: etree._Element) -> None:
    """Remove an element but keep the text after it, as the enveloped-signature transform does."""
    parent = element.getparent()
    if element.tail:
        previous = element.getprevious()
        if previous is not None:
            previous.tail = (previous.tail or "") + element.tail
        else:
            parent.text = (parent.text or "") + element.tail
    parent.remove(element)


def signed_content(body: bytes) -> bytes | None:
    """What an enveloped URI="" signature covers: the document without its signature, in exclusive c14n.

    Per XML-DSig the node set of URI="" is the whole document, so processing instructions outside
    the root element are part of it (comments are not, in c14n without comments). None when the
    body does not parse.
    """
    try:
        tree = parse_untrusted(body)
    except HostileXML:
        return None
    enveloped = next((child for child in tree.getroot() if child.tag == DS_SIGNATURE), None)
    if enveloped is not None:
        _remove_keeping_tail(enveloped)
    return etree.tostring(tree, method="c14n", exclusive=True, with_comments=False)


def root_content(body: bytes) -> bytes | None:
    """The signed content as signxml digests it: the root element only, without what lies outside it."""
    try:
        tree = parse_untrusted(body)
    except HostileXML:
        return None
    root = copy.deepcopy(tree.getroot())
    enveloped = next((child for child in root if child.tag == DS_SIGNATURE), None)
    if enveloped is not None:
        _remove_keeping_tail(enveloped)
    return etree.tostring(root, method="c14n", exclusive=True, with_comments=False)


# ---- arbitrary bodies ------------------------------------------------------------------------------------------

# Characters XML 1.0 can carry in text (no C0 controls but tab and newlines, no surrogates, no U+FFFE/F).
xml_chars = st.one_of(
    st.characters(blacklist_categories=("Cs", "Cc"), blacklist_characters="\ufffe\uffff"),
    st.sampled_from("\t\n\r\x85\x7f"),
)
xml_text = st.text(alphabet=xml_chars, max_size=40)

NAMES = st.one_of(
    st.sampled_from(
        [
            "a", "r", "x:y", "_", "é", "a-b.c", "中文", "Invoice", "xi:include", "ds:Signature", "ds:Object",
            "dec:CustomsDeclaration", "dec:BaseTransfer", "cm:MessageId", "cm:SenderId", "cm:ReceiverId",
            "fx:ForexVerification", "ex:PlatformReceipt", "rcpt:AgencyReceipt", "xmlns", "1bad", "a:b:c",
        ]
    ),
    st.text(alphabet=st.characters(blacklist_categories=("Cs",)), min_size=1, max_size=8),
)
NAMESPACE_DECLARATIONS = st.sampled_from(
    [
        ("xmlns:dec", "urn:eport:dec:1"), ("xmlns:cm", CM), ("xmlns:ds", DS), ("xmlns", "urn:eport:fx:1"),
        ("xmlns:fx", "urn:eport:fx:1"), ("xmlns:ex", "urn:eport:exchange:1"), ("xmlns:rcpt", "urn:eport:rcpt:1"),
        ("xmlns:xi", XINCLUDE), ("xmlns:x", ""), ("xmlns", ""), ("xmlns:xml", "urn:wrong"), ("xmlns:dec", "urn:other"),
    ]
)
ENTITY_REFERENCES = st.sampled_from(
    ["&amp;", "&lt;", "&gt;", "&quot;", "&apos;", "&#65;", "&#x4E2D;", "&#0;", "&#xD800;", "&#xFFFE;", "&#1114112;",
     "&e;", "&bogus;", "&", "&#;", "%p;"]
)
ENCODINGS = st.sampled_from(["UTF-8", "utf-8", "UTF-16", "ISO-8859-1", "US-ASCII", "GB18030", "EBCDIC-bogus", ""])
DOCTYPES = st.sampled_from(
    [
        "<!DOCTYPE r>",
        '<!DOCTYPE r [<!ENTITY e "x">]>',
        '<!DOCTYPE r SYSTEM "file:///etc/passwd">',
        '<!DOCTYPE r PUBLIC "-//X//DTD Y//EN" "http://127.0.0.1:9/x.dtd">',
        '<!DOCTYPE r [<!ENTITY % p SYSTEM "file:///etc/hostname"> %p;]>',
        '<!DOCTYPE r [<!ENTITY a "&b;&b;"><!ENTITY b "&c;&c;"><!ENTITY c "xxxxxxxx">]>',
        '<!DOCTYPE r [<!ELEMENT r ANY><!ATTLIST r id ID #IMPLIED>]>',
        "<!DOCTYPE",
    ]
)


@st.composite
def attributes(draw) -> str:
    """One attribute: a namespace declaration or a name with a value that may hold entity references or bad quoting."""
    if draw(st.booleans()):
        name, value = draw(NAMESPACE_DECLARATIONS)
    else:
        name = draw(NAMES)
        value = "".join(draw(st.lists(st.one_of(xml_text, ENTITY_REFERENCES), max_size=3)))
    quote = draw(st.sampled_from(['"', "'", ""]))
    return f" {name}={quote}{value}{quote}"


LEAVES = st.one_of(
    xml_text,
    ENTITY_REFERENCES,
    xml_text.map(lambda t: f"<![CDATA[{t}]]>"),
    st.sampled_from(["<![CDATA[", "]]>", "<!-- -- -->", "<!--", "<?", "<?xml version='1.0'?>", "</", "<>"]),
    xml_text.map(lambda t: f"<!--{t}-->"),
    st.tuples(st.sampled_from(["pi", "xml-stylesheet", "php", "x"]), xml_text).map(lambda p: f"<?{p[0]} {p[1]}?>"),
)


@st.composite
def _element(draw, content) -> str:
    """An element with attributes and children; sometimes empty, sometimes closed with the wrong name."""
    name = draw(NAMES)
    attrs = "".join(draw(st.lists(attributes(), max_size=3)))
    if draw(st.integers(0, 4)) == 0:
        return f"<{name}{attrs}/>"
    inner = "".join(draw(st.lists(content, max_size=4)))
    closing = name if draw(st.integers(0, 9)) else draw(NAMES)
    return f"<{name}{attrs}>{inner}</{closing}>"


XML_CONTENT = st.recursive(LEAVES, lambda inner: _element(inner), max_leaves=12)


@st.composite
def xmlish_documents(draw) -> bytes:
    """A document from a small XML grammar: declaration, prolog, DOCTYPE, a tree, trailing matter, in some encoding."""
    parts = []
    encoding = draw(ENCODINGS)
    if draw(st.booleans()):
        declared = f' encoding="{encoding}"' if encoding else ""
        standalone = draw(st.sampled_from(["", ' standalone="yes"', ' standalone="no"']))
        version = draw(st.sampled_from(["1.0", "1.0", "1.1", "2.0"]))
        parts.append(f'<?xml version="{version}"{declared}{standalone}?>')
    if draw(st.integers(0, 5)) == 0:
        # Push what follows past the 4 KB head the parser scans for DOCTYPE markers.
        parts.append("<!--" + "x" * 4100 + "-->")
    parts.extend(draw(st.lists(LEAVES, max_size=2)))
    if draw(st.integers(0, 3)) == 0:
        parts.append(draw(DOCTYPES))
    parts.append(draw(_element(XML_CONTENT)))
    parts.extend(draw(st.lists(LEAVES, max_size=2)))
    document = "".join(parts)
    codec = draw(st.sampled_from(["utf-8", "utf-8", "utf-16", "utf-16-le", "utf-32", "latin-1", "gb18030"]))
    return document.encode(codec, errors="replace")


def arbitrary_bodies() -> st.SearchStrategy[bytes]:
    """Raw bytes, text in UTF-8 or UTF-16, and XML-ish documents."""
    return st.one_of(
        st.binary(max_size=2048),
        st.text(max_size=400).map(lambda t: t.encode("utf-8", errors="surrogatepass")),
        st.text(max_size=400).map(lambda t: t.encode("utf-16", errors="surrogatepass")),
        xmlish_documents(),
    )


# ---- mutations of a signed sample ------------------------------------------------------------------------------


@dataclass(frozen=True, repr=False)
class Mutant:
    """A mutated signed document and a short description of the mutation, for failure reports."""

    how: str
    body: bytes

    def __repr__(self) -> str:
        """The mutation and the size, not the bytes."""
        return f"Mutant({self.how!r}, {len(self.body)} bytes)"


def _serialise(tree: etree._ElementTree) -> bytes:
    """A mutated tree as document bytes, with an XML declaration like the signer's output."""
    return etree.tostring(tree, xml_declaration=True, encoding="UTF-8")


def _parse(body: bytes) -> etree._ElementTree:
    """Parse a signed sample for mutation (trusted input: the samples themselves)."""
    return etree.ElementTree(etree.fromstring(body, etree.XMLParser(resolve_entities=False)))


def _content_elements(root: etree._Element) -> list[etree._Element]:
    """Every element of the signed content: the whole tree except the signature's subtree."""
    signature = set(root.iter(DS_SIGNATURE))
    inside = {e for s in signature for e in s.iter()}
    return [e for e in root.iter() if isinstance(e.tag, str) and e not in inside]


@st.composite
def byte_mutations(draw, body: bytes) -> Mutant:
    """Byte flips, inserted and deleted bytes, and a duplicated byte range, anywhere in the document."""
    kind = draw(st.sampled_from(["flip", "insert", "delete", "splice"]))
    at = draw(st.integers(0, len(body) - 1))
    if kind == "flip":
        bit = draw(st.integers(0, 7))
        return Mutant(f"flip bit {bit} of byte {at}", body[:at] + bytes([body[at] ^ (1 << bit)]) + body[at + 1 :])
    if kind == "insert":
        notable = st.sampled_from([b" ", b"\n", b"<", b"&", b"\x00", b"\xff"])
        extra = draw(st.one_of(st.binary(min_size=1, max_size=8), notable))
        return Mutant(f"insert {extra!r} at {at}", body[:at] + extra + body[at:])
    if kind == "delete":
        length = draw(st.integers(1, 16))
        return Mutant(f"delete {length} bytes at {at}", body[:at] + body[at + length :])
    length = draw(st.integers(1, 64))
    to = draw(st.integers(0, len(body)))
    return Mutant(f"copy {length} bytes from {at} to {to}", body[:to] + body[at : at + length] + body[to:])


@st.composite
def truncations(draw, body: bytes) -> Mutant:
    """The document cut at an arbitrary point."""
    at = draw(st.integers(0, len(body) - 1))
    return Mutant(f"truncate at {at} of {len(body)}", body[:at])


@st.composite
def structural_mutations(draw, body: bytes) -> Mutant:
    """Changes to the signed content or the signature's place: duplication, reordering, text, attributes, namespaces."""
    tree = _parse(body)
    root = tree.getroot()
    content = _content_elements(root)
    kind = draw(
        st.sampled_from(
            ["duplicate", "reorder", "text", "attribute", "rename-prefix", "namespace-uri", "declare-namespace",
             "second-signature", "move-signature", "outside-root", "whitespace"]
        )
    )
    if kind == "duplicate":
        target = draw(st.sampled_from(content[1:] or content))
        count = draw(st.integers(1, 3))
        for _ in range(count):
            target.addnext(copy.deepcopy(target))
        return Mutant(f"duplicate {target.tag} x{count}", _serialise(tree))
    if kind == "reorder":
        parents = [e for e in content if len([c for c in e if isinstance(c.tag, str)]) >= 2]
        parent = draw(st.sampled_from(parents))
        children = [c for c in parent if isinstance(c.tag, str)]
        order = draw(st.permutations(range(len(children))))
        for child in children:
            parent.remove(child)
        for index in order:
            parent.append(children[index])
        return Mutant(f"reorder children of {parent.tag} as {list(order)}", _serialise(tree))
    if kind == "text":
        leaves = [e for e in content if not any(isinstance(c.tag, str) for c in e)]
        target = draw(st.sampled_from(leaves))
        near = st.sampled_from(["", " ", (target.text or "") + " ", (target.text or "").upper()])
        text = draw(st.one_of(xml_text, near))
        target.text = text
        return Mutant(f"text of {target.tag} := {text!r}", _serialise(tree))
    if kind == "attribute":
        target = draw(st.sampled_from(content))
        name = draw(st.sampled_from(["id", "Id", "ID", "lang", f"{{{CM}}}note", "{urn:x}y", f"{{{XML_NS}}}lang"]))
        value = draw(xml_text)
        target.set(name, value)
        return Mutant(f"attribute {name}={value!r} on {target.tag}", _serialise(tree))
    if kind == "rename-prefix":
        prefixes = sorted({p for e in root.iter() if isinstance(e.tag, str) for p in e.nsmap if p})
        prefix = draw(st.sampled_from(prefixes))
        new = draw(st.sampled_from(["q", "cm2", "ds", "dec", "x"]).filter(lambda p: p != prefix))
        data = _serialise(tree)
        # Rename in tags, declarations and QName-valued attributes alike; a clash makes it malformed, which is fine.
        pattern = rb"(</?|xmlns:|\s)" + re.escape(prefix.encode()) + rb"([:=])"
        renamed = re.sub(pattern, rb"\g<1>" + new.encode() + rb"\g<2>", data)
        return Mutant(f"rename prefix {prefix} -> {new}", renamed)
    if kind == "namespace-uri":
        target = draw(st.sampled_from(content))
        uri = draw(st.sampled_from(["urn:other", "", CM, "urn:eport:dec:2", DS]))
        target.tag = f"{{{uri}}}{etree.QName(target).localname}" if uri else etree.QName(target).localname
        return Mutant(f"namespace of {etree.QName(target).localname} := {uri!r}", _serialise(tree))
    if kind == "declare-namespace":
        data = _serialise(tree)
        # Unused declarations, and a redundant one: exclusive c14n leaves all of them out of the signed content.
        redundant = b' xmlns:cm="' + CM.encode() + b'"'
        declaration = draw(st.sampled_from([b' xmlns:zz="urn:zz"', b' xmlns="urn:default"', redundant]))
        end = re.search(rb"<[^?!][^>]*?(/?>)", data)
        return Mutant(f"declare {declaration!r} on the root", data[: end.start(1)] + declaration + data[end.start(1) :])
    if kind == "second-signature":
        signature = next(root.iter(DS_SIGNATURE))
        second = copy.deepcopy(signature)
        where = draw(st.sampled_from(["sibling", "first", "nested"]))
        if where == "sibling":
            signature.addnext(second)
        elif where == "first":
            root.insert(0, second)
        else:
            draw(st.sampled_from(content[1:])).append(second)
        return Mutant(f"second ds:Signature ({where})", _serialise(tree))
    if kind == "move-signature":
        signature = next(root.iter(DS_SIGNATURE))
        root.remove(signature)
        where = draw(st.sampled_from(["first", "middle", "nested", "wrap"]))
        if where == "first":
            root.insert(0, signature)
        elif where == "middle":
            root.insert(draw(st.integers(0, len(root))), signature)
        elif where == "nested":
            draw(st.sampled_from(content[1:])).append(signature)
        else:
            # The document becomes the payload of an enveloping signature's Object.
            obj = etree.SubElement(signature, f"{{{DS}}}Object")
            obj.append(root)
            return Mutant("wrap the document in its signature", _serialise(etree.ElementTree(signature)))
        return Mutant(f"move ds:Signature ({where})", _serialise(tree))
    if kind == "outside-root":
        node = draw(st.sampled_from(["comment", "pi", "stylesheet"]))
        made = {
            "comment": etree.Comment(" outside "),
            "pi": etree.PI("note", "added after signing"),
            "stylesheet": etree.PI("xml-stylesheet", 'type="text/xsl" href="http://127.0.0.1:9/x.xsl"'),
        }[node]
        if draw(st.booleans()):
            root.addprevious(made)
        else:
            root.addnext(made)
        return Mutant(f"{node} outside the root", _serialise(tree))
    # Whitespace: inside an element's text it changes the signed content; around the root it does not.
    data = _serialise(tree)
    if draw(st.booleans()):
        return Mutant("trailing whitespace", data + draw(st.sampled_from([b"\n", b"  \n\n", b"\r\n"])))
    target = draw(st.sampled_from(content))
    target.text = (target.text or "") + " "
    return Mutant(f"space inside {target.tag}", _serialise(tree))


ALGORITHMS = [
    "http://www.w3.org/2000/09/xmldsig#rsa-sha1",
    "http://www.w3.org/2000/09/xmldsig#sha1",
    "http://www.w3.org/2001/04/xmldsig-more#md5",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-md5",
    "http://www.w3.org/2000/09/xmldsig#hmac-sha1",
    "http://www.w3.org/2001/04/xmldsig-more#hmac-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha256",
    "http://www.w3.org/2001/04/xmldsig-more#rsa-sha512",
    "http://www.w3.org/2001/04/xmldsig-more#ecdsa-sha256",
    "http://www.w3.org/2001/04/xmlenc#sha256",
    "http://www.w3.org/2001/04/xmlenc#sha512",
    "http://www.w3.org/2001/10/xml-exc-c14n#",
    "http://www.w3.org/2001/10/xml-exc-c14n#WithComments",
    "http://www.w3.org/TR/2001/REC-xml-c14n-20010315",
    "http://www.w3.org/2006/12/xml-c14n11",
    "http://www.w3.org/2000/09/xmldsig#enveloped-signature",
    "http://www.w3.org/2000/09/xmldsig#base64",
    "http://www.w3.org/TR/1999/REC-xslt-19991116",
    "http://www.w3.org/TR/1999/REC-xpath-19991116",
    "urn:bogus",
    "",
]


@st.composite
def signature_mutations(draw, body: bytes) -> Mutant:
    """Changes to the signature alone: its base64 values, algorithm URIs, reference and key information."""
    tree = _parse(body)
    root = tree.getroot()
    signature = next(root.iter(DS_SIGNATURE))
    kind = draw(st.sampled_from(["value", "algorithm", "reference", "key-info", "remove", "object"]))
    if kind == "value":
        name = draw(st.sampled_from(["SignatureValue", "DigestValue", "X509Certificate"]))
        target = next(signature.iter(f"{{{DS}}}{name}"))
        raw = base64.b64decode("".join((target.text or "").split()))
        how = draw(st.sampled_from(["flip", "truncate", "extend", "random", "whitespace", "junk", "garbage", "empty"]))
        if how == "flip":
            at, bit = draw(st.integers(0, len(raw) - 1)), draw(st.integers(0, 7))
            text = base64.b64encode(raw[:at] + bytes([raw[at] ^ (1 << bit)]) + raw[at + 1 :]).decode()
        elif how == "truncate":
            text = base64.b64encode(raw[: draw(st.integers(0, len(raw) - 1))]).decode()
        elif how == "extend":
            text = base64.b64encode(raw + draw(st.binary(min_size=1, max_size=8))).decode()
        elif how == "random":
            text = base64.b64encode(draw(st.binary(max_size=len(raw) + 4))).decode()
        elif how == "whitespace":
            # Whitespace in base64 is not content: this one must still verify.
            text = target.text or ""
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.sampled_from(["\n", " ", "\r\n", "\t"])) + text[at:]
        elif how == "junk":
            # Characters outside the base64 alphabet, which a lenient decoder skips.
            text = target.text or ""
            at = draw(st.integers(0, len(text)))
            text = text[:at] + draw(st.sampled_from(["?", "!", "*", ".", "-", "_", "%", "#", "é"])) + text[at:]
        elif how == "garbage":
            text = draw(st.sampled_from(["!!!!", "====", "AAA", "%%%%" * 10, "\u00e9\u00e9\u00e9\u00e9"]))
        else:
            text = ""
        target.text = text
        return Mutant(f"{name} {how}", _serialise(tree))
    if kind == "algorithm":
        targets = [e for e in signature.iter() if isinstance(e.tag, str) and e.get("Algorithm") is not None]
        target = draw(st.sampled_from(targets))
        uri = draw(st.sampled_from(ALGORITHMS))
        target.set("Algorithm", uri)
        return Mutant(f"{etree.QName(target).localname} Algorithm := {uri!r}", _serialise(tree))
    if kind == "reference":
        reference = next(signature.iter(f"{{{DS}}}Reference"))
        uris = ["#x", "#xpointer(/)", "#xpointer(id('x'))", "http://127.0.0.1:9/", "file:///etc/passwd", None]
        uri = draw(st.sampled_from(uris))
        if uri is None:
            del reference.attrib["URI"]
        else:
            reference.set("URI", uri)
        return Mutant(f"Reference URI := {uri!r}", _serialise(tree))
    if kind == "key-info":
        key_info = next(signature.iter(f"{{{DS}}}KeyInfo"))
        what = draw(st.sampled_from(["key-name", "key-value", "second-certificate", "foreign", "second-x509data"]))
        if what == "key-name":
            etree.SubElement(key_info, f"{{{DS}}}KeyName").text = draw(st.sampled_from(["ent-a", "customs", "eport"]))
        elif what == "key-value":
            rsa = etree.SubElement(etree.SubElement(key_info, f"{{{DS}}}KeyValue"), f"{{{DS}}}RSAKeyValue")
            modulus = draw(st.binary(min_size=1, max_size=64))
            etree.SubElement(rsa, f"{{{DS}}}Modulus").text = base64.b64encode(modulus).decode()
            etree.SubElement(rsa, f"{{{DS}}}Exponent").text = "AQAB"
        elif what == "second-certificate":
            data = next(key_info.iter(f"{{{DS}}}X509Data"))
            data.append(copy.deepcopy(next(data.iter(f"{{{DS}}}X509Certificate"))))
        elif what == "second-x509data":
            key_info.append(copy.deepcopy(next(key_info.iter(f"{{{DS}}}X509Data"))))
        else:
            etree.SubElement(key_info, "{urn:x}Foreign").text = "x"
        return Mutant(f"KeyInfo + {what}", _serialise(tree))
    if kind == "remove":
        removable = [e for e in signature.iter() if isinstance(e.tag, str) and e is not signature]
        target = draw(st.sampled_from(removable))
        target.getparent().remove(target)
        return Mutant(f"remove {etree.QName(target).localname}", _serialise(tree))
    obj = etree.SubElement(signature, f"{{{DS}}}Object")
    obj.append(copy.deepcopy(root[0]))
    return Mutant("ds:Object carrying a copy of the first child", _serialise(tree))


def mutants(body: bytes) -> st.SearchStrategy[Mutant]:
    """Every kind of mutation of one signed document."""
    return st.one_of(truncations(body), byte_mutations(body), structural_mutations(body), signature_mutations(body))


# ---- AMQP properties -------------------------------------------------------------------------------------------

# Header values as pika hands them over: it decodes AMQP doubles to ints, so no float ever reaches the pipeline.
_SCALARS = st.one_of(
    st.none(),
    st.booleans(),
    st.integers(-(2**63), 2**63 - 1),
    st.text(max_size=30),
    st.binary(max_size=30),
    st.decimals(min_value=Decimal(-(10**6)), max_value=Decimal(10**6), places=2, allow_nan=False),
    st.datetimes(min_value=datetime(1971, 1, 1), max_value=datetime(2100, 1, 1), timezones=st.just(timezone.utc)),
)
HEADER_NAMES = st.one_of(
    st.sampled_from(
        [
            "x-exchanger-replay-user-id", "x-exchanger-replays", "x-exchanger-replay-of", "x-exchanger-stage",
            "x-exchanger-reason", "x-exchanger-reasons", "x-exchanger-user-id", "x-exchanger-sender",
            "x-exchanger-kind", "x-exchanger-status", "x-exchanger-digest", "x-exchanger-dead-letter-id",
            "x-exchanger-orig-message-id", "x-exchanger-approved-by", "x-death", "x-first-death-reason",
            "X-Exchanger-Replay-User-Id", "trace", "x-client-ref",
        ]
    ),
    # At most 20 characters of at most 4 bytes: always within an AMQP short string.
    st.text(alphabet=st.characters(blacklist_categories=("Cs", "Cc")), min_size=1, max_size=20),
)


def header_values() -> st.SearchStrategy:
    """Header values: scalars, and lists and tables nested a few levels deep."""
    return st.recursive(
        _SCALARS,
        lambda inner: st.one_of(
            st.lists(inner, max_size=3),
            st.dictionaries(st.text(min_size=1, max_size=10), inner, max_size=3),
        ),
        max_leaves=8,
    )


def headers(participant_users: list[str]) -> st.SearchStrategy[dict]:
    """Arbitrary header tables, often with the exchange's own names and a participant's user as the value."""
    named = st.one_of(st.sampled_from(participant_users), header_values())
    return st.dictionaries(HEADER_NAMES, named, max_size=5)


def user_ids(participant_users: list[str], daemon_user: str) -> st.SearchStrategy[str | None]:
    """The AMQP user_id: absent, empty, unknown, a participant (the sender or another), the daemon, long, non-ASCII."""
    return st.one_of(
        st.none(),
        st.just(""),
        st.sampled_from(participant_users),
        st.just(daemon_user),
        st.sampled_from(["nobody", "guest", "ENT-A", "ent-a ", " ent-a", "ent-a\x00", "ent‐a", "企业甲"]),
        st.text(min_size=1, max_size=20),
        st.text(min_size=256, max_size=600),
    )


# ---- route predicates ------------------------------------------------------------------------------------------

XPATH_ATOMS = st.sampled_from(
    [
        "$inspection_required", "$transport_mode", "$ie_flag", "$guid", "$flow_type", "$status", "$nope",
        "'1'", "'0'", "''", "'E'", "1", "0", "1.5", "-1", "true()", "false()",
        "dec:Head/dec:IEFlag", "dec:Head/dec:InspectionRequired", "//cm:SenderId", "//cm:ReceiverId", "/*", ".", "..",
        "@id", "*", "text()", "//dec:Goods", "mft:Head/mft:TransportMode", "bogus:x", "cm:MessageId",
        "node()", "comment()", "//ds:Signature",
    ]
)
XPATH_FUNCTIONS = st.sampled_from(
    [
        "not", "boolean", "number", "string", "count", "sum", "string-length", "contains", "starts-with", "concat",
        "normalize-space", "translate", "substring", "position", "last", "round", "floor", "local-name", "name",
        "lang", "id", "foo", "ex:f", "document", "unparsed-entity-uri",
    ]
)
XPATH_OPERATORS = st.sampled_from(["=", "!=", "<", ">=", "and", "or", "+", "-", "*", "div", "mod", "|"])


def _xpath_extend(inner):
    """One grammar step: operators, function calls, parentheses, predicates and negation over smaller expressions."""
    return st.one_of(
        st.tuples(inner, XPATH_OPERATORS, inner).map(lambda t: f"{t[0]} {t[1]} {t[2]}"),
        st.tuples(XPATH_FUNCTIONS, st.lists(inner, max_size=3)).map(lambda t: f"{t[0]}({', '.join(t[1])})"),
        inner.map(lambda e: f"({e})"),
        st.tuples(inner, inner).map(lambda t: f"{t[0]}[{t[1]}]"),
        inner.map(lambda e: f"-{e}"),
    )


XPATH_EXPRESSIONS = st.recursive(XPATH_ATOMS, _xpath_extend, max_leaves=6)


@st.composite
def route_predicates(draw):
    """A ``when`` value: mostly from the XPath grammar, sometimes broken on purpose or not a string at all."""
    choice = draw(st.integers(0, 9))
    expression = draw(XPATH_EXPRESSIONS)
    if choice <= 6:
        return expression
    if choice == 7:
        # Damage a grammatical expression: an unbalanced bracket or a cut.
        at = draw(st.integers(0, len(expression)))
        return expression[:at] + draw(st.sampled_from(["(", ")", "[", "]", "'", "$", "::", ""]))
    if choice == 8:
        return draw(st.sampled_from(["", "   ", "//", "$", "foo(", "1 +", "@", "a[", "'unterminated"]))
    return draw(st.one_of(st.integers(), st.lists(st.just("x"), max_size=2), st.booleans()))
