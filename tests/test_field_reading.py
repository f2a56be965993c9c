"""Catalogue fields are read one way: what routing reads is what was signed, validated and forwarded.

Every catalogue field (id, sender, receivers, fields) of every bundled message type and of the onboarded
GACC and WCO types is disguised with random mixtures of comments, processing instructions, CDATA
sections, character references and whitespace, signed for real and run through the daemon's own stages.
The routing decision, message id, sender, receivers and fields stay exactly as on the plain document,
or the message is refused with the reason the disguise predicts.
"""

from __future__ import annotations

import copy
import os
from dataclasses import dataclass
from pathlib import Path

import pytest
from click.testing import CliRunner
from hypothesis import HealthCheck, event, given, settings
from hypothesis import strategies as st
from lxml import etree

from exchange_fixture import ROUTED_SAMPLES, SAMPLES
from exchanger.catalogue import Catalogue, FieldRefused, MessageType
from exchanger.cli.main import main
from exchanger.config import load_catalogue
from exchanger.config.model import Limits
from exchanger.dsig.signer import Signer
from exchanger.dsig.verifier import Verifier
from exchanger.envelope import Envelope, Inbound
from exchanger.field_reader import read_values, string_value
from exchanger.keys.material import load_certificate
from exchanger.outcome import Rejected
from exchanger.pipeline.explain import explain_document
from exchanger.pipeline.runner import checking_stages
from exchanger.pipeline.stages.identify import Identify
from exchanger.pipeline.stages.parse import Parse
from exchanger.pipeline.stages.route import Route
from exchanger.pipeline.stages.validate import Validate
from exchanger.xml.markup import element_path
from exchanger.xml.parser import parse_untrusted

PROJECT = Path(__file__).resolve().parents[1]
CORPUS = PROJECT.parent / "shared" / "corpus"
ONBOARDING = Path(__file__).resolve().parent / "onboarding"
CEB_2018_SAMPLES = sorted((CORPUS / "cn-chinaport-ceb" / "2018-gacc-113" / "samples").rglob("*.xml"))
WCO_EXAMPLES = CORPUS / "wco-dms-hmrc-cds" / "examples"
# The well-formed DEC/RES examples whose namespaces are right (SOURCE.txt lists the broken ones).
WCO_SAMPLES = sorted(
    p
    for p in WCO_EXAMPLES.rglob("*")
    if p.suffix.lower() == ".xml"
    and "Example_DMS_notifications" not in p.as_posix()
    and p.name not in {"TT_EX002a.xml", "TT_EX022a_Declaration1_(Step1).xml", "TT_IM084a.xml", "01_DMSACC.xml",
                       "Step1_TT_IM222a.xml", "example_submission_declaration_400.xml"}
)

CI = bool(os.environ.get("CI"))
PROPERTY = settings(
    deadline=None,
    derandomize=CI,
    **({"database": None} if CI else {}),
    suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large],
)
DS_SIGNATURE = "{http://www.w3.org/2000/09/xmldsig#}Signature"
MARK = "\ue000{}\ue001"  # private-use characters: no sample holds them, and they serialise as they are
XML_WS = " \t\r\n"


# ---- disguising a value -------------------------------------------------------------------------------------------


@dataclass(frozen=True)
class Disguise:
    """How one field's value is written: the raw XML that replaces it, and what that raw XML holds."""

    raw: str
    markup: bool  # a comment or PI inside the value
    whitespace: bool  # whitespace added around the value


def _escape(text: str) -> str:
    return text.replace("&", "&amp;").replace("<", "&lt;").replace(">", "&gt;").replace('"', "&quot;")


def _char_refs(text: str, draw) -> str:
    return "".join(draw(st.sampled_from([f"&#{ord(c)};", f"&#x{ord(c):x};", f"&#x{ord(c):X};", f"&#0{ord(c)};"])) for c in text)


@st.composite
def _chunk(draw, text: str, in_attribute: bool) -> str:
    forms = ["plain", "refs"] if in_attribute or "]]>" in text else ["plain", "refs", "cdata"]
    form = draw(st.sampled_from(forms))
    if form == "plain":
        return _escape(text)
    if form == "refs":
        return _char_refs(text, draw)
    return f"<![CDATA[{text}]]>"


# Tokens that cannot make "--" or end in "-", which XML does not allow in a comment.
_comment_text = st.lists(st.sampled_from(["a", "b", "x", " ", "0", "1", "-a", "route"]), max_size=6).map("".join)
_markup = st.one_of(
    _comment_text.map(lambda t: f"<!--{t}-->"),
    st.tuples(st.sampled_from(["x", "pi", "inspection", "route-hint"]), st.text(alphabet="abc 01=", max_size=10)).map(
        lambda p: f"<?{p[0]} {p[1]}?>"
    ),
)
_whitespace = st.lists(st.sampled_from([" ", "\t", "\n", "\r\n", "&#32;", "&#9;", "&#10;", "&#13;", "&#x20;"]), max_size=4)


@st.composite
def disguises(draw, value: str, in_attribute: bool, markup_allowed: bool, whitespace_allowed: bool) -> Disguise:
    """The value split into chunks, each plain, as character references or CDATA, with markup between and whitespace around."""
    cuts = sorted(draw(st.sets(st.integers(0, len(value)), max_size=3)) | {0, len(value)})
    parts, markup = [], False
    for start, end in zip(cuts, cuts[1:]):
        if markup_allowed and not in_attribute and draw(st.integers(0, 2)) == 0:
            parts.append(draw(_markup))
            markup = True
        if end > start:
            parts.append(draw(_chunk(value[start:end], in_attribute)))
    if markup_allowed and not in_attribute and draw(st.integers(0, 3)) == 0:
        parts.append(draw(_markup))
        markup = True
    before, after = (draw(_whitespace), draw(_whitespace)) if whitespace_allowed else ([], [])
    return Disguise("".join(before) + "".join(parts) + "".join(after), markup, bool(before or after))


# ---- which nodes the catalogue reads ------------------------------------------------------------------------------


@dataclass(frozen=True)
class FieldNode:
    """A node some catalogue field reads: an element's text, or an attribute."""

    element: etree._Element
    attribute: str | None
    value: str


def catalogue_nodes(message_type: MessageType, root: etree._Element) -> list[FieldNode]:
    """Every leaf element or attribute that a catalogue XPath of this type selects in the document, in document order."""
    paths = [message_type.id_path, message_type.sender_path, *message_type.fields.values()]
    if message_type.receivers_path is not None:
        paths.append(message_type.receivers_path)
    found: dict[tuple, FieldNode] = {}
    for path in paths:
        result = path(root)
        for item in result if isinstance(result, list) else ():
            if isinstance(item, etree._Element) and len(item) == 0 and (item.text or "").strip(XML_WS):
                found.setdefault((item, None), FieldNode(item, None, item.text))
            elif getattr(item, "is_attribute", False) and str(item).strip(XML_WS):
                found.setdefault((item.getparent(), item.attrname), FieldNode(item.getparent(), item.attrname, str(item)))
    order = {element: index for index, element in enumerate(root.iter())}
    return sorted(found.values(), key=lambda node: (order[node.element], node.attribute or ""))


@dataclass(frozen=True)
class Disguised:
    """A document with its catalogue fields disguised, and what the disguises predict."""

    body: bytes
    disguises: tuple[tuple[FieldNode, Disguise], ...]

    def __repr__(self) -> str:
        """The disguised values alone: the whole body would bury them in a failure report."""
        written = [
            f"{element_path(node.element)}{'/@' + node.attribute if node.attribute else ''}={disguise.raw!r}"
            for node, disguise in self.disguises
        ]
        return f"Disguised({', '.join(written)})"

    @property
    def first_markup_path(self) -> str | None:
        """The element the parse stage must name: the first, in document order, with markup inside its value."""
        marked = [element_path(node.element) for node, d in self.disguises if d.markup and node.attribute is None]
        return marked[0] if marked else None

    @property
    def whitespace(self) -> bool:
        """True when some value gained whitespace, which a schema facet may refuse."""
        return any(d.whitespace for _, d in self.disguises)


def _serialise(root: etree._Element) -> bytes:
    return etree.tostring(root.getroottree(), xml_declaration=True, encoding="UTF-8")


def plain_document(body: bytes) -> bytes:
    """The document as lxml writes it: the normalised form every disguise is compared with."""
    return _serialise(parse_untrusted(body).getroot())


@st.composite
def disguised_documents(draw, plain: bytes, message_type: MessageType) -> Disguised:
    """Some of the document's catalogue fields (at least one) disguised; the rest written as they are."""
    root = parse_untrusted(plain).getroot()
    nodes = catalogue_nodes(message_type, root)
    assert nodes, f"the catalogue reads no leaf value in {message_type.name}"
    chosen = draw(st.sets(st.sampled_from(range(len(nodes))), min_size=1, max_size=len(nodes)))
    # Half the documents carry no comment or PI at all, so the accepted path is exercised as much as the refusal.
    markup_allowed = draw(st.booleans())
    # Whitespace in a third of them: most schemas' patterns refuse it, which says nothing of the reader.
    whitespace_allowed = draw(st.integers(0, 2)) == 0
    made, marked = [], copy.deepcopy(root)
    marked_nodes = catalogue_nodes(message_type, marked)
    for index in sorted(chosen):
        node = nodes[index]
        disguise = draw(disguises(node.value, node.attribute is not None, markup_allowed, whitespace_allowed))
        target = marked_nodes[index]
        if target.attribute is None:
            target.element.text = MARK.format(index)
        else:
            target.element.set(target.attribute, MARK.format(index))
        made.append((node, disguise))
    text = _serialise(marked).decode("utf-8")
    for index, (_, disguise) in zip(sorted(chosen), made):
        text = text.replace(MARK.format(index), disguise.raw)
    return Disguised(text.encode("utf-8"), tuple(made))


def spliced_signature(signer: Signer, body: bytes) -> bytes:
    """The document signed with its bytes kept as they are: the signature is inserted before the root's end tag.

    Signing the parsed tree and serialising it would turn CDATA and character references into plain
    text; receivers get the bytes the sender wrote, so the test must too.
    """
    signature = signer.sign(parse_untrusted(body).getroot())[-1]
    end = body.rindex(b"</")
    return body[:end] + etree.tostring(signature) + body[end:]


# ---- the bundled types, through the daemon's own stages ----------------------------------------------------------


@dataclass(frozen=True)
class Outcome:
    """What the daemon's stages made of a document: identity and routing, or the refusal."""

    message_id: str | None = None
    sender: str | None = None
    receivers: tuple[str, ...] = ()
    fields: tuple[tuple[str, str], ...] = ()
    deliveries: tuple = ()
    refusal: tuple[str, str, str | None] | None = None  # stage, code, path


def run_daemon_stages(config, body: bytes, user: str) -> Outcome:
    """Parse, identify, validate, verify, authenticate and route, as the daemon's pipeline runs them."""
    envelope = Envelope(Inbound(body, user_id=user))
    try:
        for stage in [*checking_stages(config), Route(config.table)]:
            stage(envelope)
    except Rejected as exc:
        reason = exc.reasons[0]
        return Outcome(refusal=(reason.stage, reason.code, reason.path))
    return Outcome(
        envelope.message_id,
        envelope.sender.id,
        tuple(envelope.receivers),
        tuple(sorted(envelope.fields.items())),
        envelope.decision.deliveries,
    )


@dataclass(frozen=True)
class BundledCase:
    """A bundled valid sample, its sender, and what the daemon does with its plain, signed form."""

    name: str
    sender: str
    plain: bytes
    message_type: MessageType
    expected: Outcome

    def __repr__(self) -> str:
        """The sample's name alone."""
        return f"BundledCase({self.name})"


@pytest.fixture(scope="module")
def bundled(exchange) -> list[BundledCase]:
    """Every routed bundled sample with its expected outcome, computed once from the plain signed document."""
    cases = []
    for sample, sender, destinations in ROUTED_SAMPLES:
        plain = plain_document((SAMPLES / sample).read_bytes())
        message_type = exchange.config.catalogue.for_root(parse_untrusted(plain).getroot().tag)
        expected = run_daemon_stages(exchange.config, spliced_signature(exchange.signer(sender), plain), sender)
        assert expected.refusal is None, expected
        assert [d.to for d in expected.deliveries] == destinations
        cases.append(BundledCase(sample, sender, plain, message_type, expected))
    return cases


def test_every_bundled_message_type_has_a_routed_sample(exchange, bundled):
    """The property below covers every type a participant sends (PlatformReceipt is the exchange's own)."""
    sent = {case.message_type.name for case in bundled}
    assert sent == set(exchange.config.catalogue.names()) - {"PlatformReceipt"}


@settings(PROPERTY, max_examples=100)
@given(data=st.data())
def test_disguised_catalogue_fields_route_as_the_plain_document_or_are_refused(exchange, bundled, data):
    """Comments, PIs, CDATA, character references and whitespace in any catalogue field: same decision, or refused."""
    case = data.draw(st.sampled_from(bundled))
    disguised = data.draw(disguised_documents(case.plain, case.message_type))
    body = spliced_signature(exchange.signer(case.sender), disguised.body)
    outcome = run_daemon_stages(exchange.config, body, case.sender)
    _check_disguised(case.expected, disguised, outcome)


@settings(PROPERTY, max_examples=150)
@given(data=st.data())
def test_markup_anywhere_is_refused_exactly_where_it_sits_inside_text(bundled, data):
    """Any element, catalogue field or not: a comment or PI among its child nodes is refused iff it has text."""
    case = data.draw(st.sampled_from(bundled))
    root = parse_untrusted(case.plain).getroot()
    elements = list(root.iter(etree.Element))
    target = elements[data.draw(st.integers(0, len(elements) - 1))]
    markup = data.draw(st.sampled_from([etree.Comment("x"), etree.Comment(""), etree.PI("x"), etree.PI("pi", "1")]))
    slots = len(target) + 1  # before the first child node, or after any of them
    at = data.draw(st.integers(0, slots - 1))
    text = (target.text or "") if at == 0 else (target[at - 1].tail or "")
    cut = data.draw(st.integers(0, len(text)))
    if at == 0:
        target.text, markup.tail = text[:cut], text[cut:]
    else:
        target[at - 1].tail, markup.tail = text[:cut], text[cut:]
    target.insert(at, markup)
    has_text = bool((target.text or "").strip(XML_WS)) or any((c.tail or "").strip(XML_WS) for c in target)
    envelope = Envelope(Inbound(_serialise(root)))
    if has_text:
        with pytest.raises(Rejected) as refused:
            Parse(Limits().max_message_bytes)(envelope)
        (reason,) = refused.value.reasons
        assert (reason.stage, reason.code, reason.path) == ("parse", "parse.markup-in-text", element_path(target))
    else:
        Parse(Limits().max_message_bytes)(envelope)
    event("refused" if has_text else "allowed")


# ---- the onboarded GACC and WCO types ----------------------------------------------------------------------------


@dataclass(frozen=True)
class CorpusCase:
    """An onboarded corpus sample, its catalogue, and the identity read from its plain, signed form."""

    name: str
    catalogue: Catalogue
    plain: bytes
    message_type: MessageType
    schema_admits_signature: bool
    expected: Outcome

    def __repr__(self) -> str:
        """The sample's name alone."""
        return f"CorpusCase({self.name})"


def _front_stages(catalogue: Catalogue, body: bytes, validate: bool = True) -> Envelope:
    envelope = Envelope(Inbound(body))
    for stage in (Parse(Limits().max_message_bytes), Identify(catalogue), *([Validate()] if validate else [])):
        stage(envelope)
    return envelope


def run_corpus_stages(case_catalogue: Catalogue, signer: Signer, body: bytes, validate_signed: bool) -> Outcome:
    """Parse, identify and validate, then verify the real signature and read every field from the signed tree.

    These catalogues have no participants of this exchange (their senders are customs codes and EORI
    numbers), so authentication and routing are the bundled test's part; this one checks the reading.
    The WCO wrapper's schema has no place for an enveloped signature, so its unsigned form is validated.
    """
    signed = spliced_signature(signer, body)
    try:
        if validate_signed:
            envelope = _front_stages(case_catalogue, signed)
        else:
            _front_stages(case_catalogue, body)
            envelope = _front_stages(case_catalogue, signed, validate=False)
    except Rejected as exc:
        reason = exc.reasons[0]
        return Outcome(refusal=(reason.stage, reason.code, reason.path))
    verified = Verifier().verify(envelope.tree.getroot(), [signer.certificate])
    message_type, root = envelope.message_type, verified.signed_root
    try:
        return Outcome(
            message_type.message_id(root),
            message_type.sender(root),
            tuple(message_type.receivers(root)),
            tuple(sorted(message_type.field_values(root).items())),
        )
    except FieldRefused as exc:
        return Outcome(refusal=("authenticate", exc.code, exc.path))


@pytest.fixture(scope="module")
def corpus_signer(demo_pki) -> Signer:
    """A demo participant's key: the verifier checks the signature against its certificate."""
    return Signer(demo_pki.key("ent-a"), load_certificate(demo_pki.cert("ent-a")))


def unsigned_document(body: bytes) -> bytes:
    """The plain document without the signature an official sample may carry (made with a key this test lacks)."""
    root = parse_untrusted(body).getroot()
    for signature in list(root.iter(DS_SIGNATURE)):
        previous, parent = signature.getprevious(), signature.getparent()
        if signature.tail and previous is not None:
            previous.tail = (previous.tail or "") + signature.tail
        parent.remove(signature)
    return _serialise(root)


def _corpus_cases(catalogue: Catalogue, paths: list[Path], signer: Signer) -> list[CorpusCase]:
    cases = []
    for path in paths:
        plain = unsigned_document(path.read_bytes())
        message_type = catalogue.for_root(parse_untrusted(plain).getroot().tag)
        admits = run_corpus_stages(catalogue, signer, plain, True).refusal is None
        expected = run_corpus_stages(catalogue, signer, plain, admits)
        assert expected.refusal is None, (path, expected)
        cases.append(CorpusCase(path.name, catalogue, plain, message_type, admits, expected))
    return cases


@pytest.fixture(scope="module")
def ceb_cases(corpus_signer) -> list[CorpusCase]:
    """The 35 GACC 2018 samples (import and export), each under the 2018 catalogue."""
    return _corpus_cases(load_catalogue(ONBOARDING / "ceb-2018.yaml"), CEB_2018_SAMPLES, corpus_signer)


@pytest.fixture(scope="module")
def wco_cases(corpus_signer) -> list[CorpusCase]:
    """Every 8th valid WCO example (declarations and notifications alike), under the WCO catalogue."""
    return _corpus_cases(load_catalogue(ONBOARDING / "wco-dms.yaml"), WCO_SAMPLES[::8], corpus_signer)


def test_corpus_sets_are_where_the_property_expects_them(ceb_cases, wco_cases):
    """An empty glob would make the corpus properties vacuous.

    The declarations' schemas place an enveloped ds:Signature; customs' receipts have none.
    """
    assert len(ceb_cases) == 35
    assert sum(case.schema_admits_signature for case in ceb_cases) == 17
    assert len(wco_cases) >= 30


def _check_disguised(expected: Outcome, disguised: Disguised, outcome: Outcome) -> None:
    """A disguised document is refused where its first markup sits, or read exactly as the plain one."""
    event(f"refused at {outcome.refusal[0]}/{outcome.refusal[1]}" if outcome.refusal else "read as the plain document")
    if disguised.first_markup_path is not None:
        assert outcome.refusal == ("parse", "parse.markup-in-text", disguised.first_markup_path)
    elif outcome.refusal is not None:
        # Whitespace around a value is the one disguise a schema may refuse (a pattern facet on xs:string).
        assert disguised.whitespace and outcome.refusal[:2] == ("validate", "xsd"), outcome
    else:
        assert outcome == expected


@settings(PROPERTY, max_examples=50)
@given(data=st.data())
def test_disguised_fields_of_gacc_messages_read_as_the_plain_document_or_are_refused(ceb_cases, corpus_signer, data):
    """GACC CEB 2018: every catalogue field (the guid attribute, copCode, receivers, fields) read as signed."""
    case = data.draw(st.sampled_from(ceb_cases))
    disguised = data.draw(disguised_documents(case.plain, case.message_type))
    _check_disguised(case.expected, disguised, run_corpus_stages(case.catalogue, corpus_signer, disguised.body, case.schema_admits_signature))


@settings(PROPERTY, max_examples=40)
@given(data=st.data())
def test_disguised_fields_of_wco_messages_read_as_the_plain_document_or_are_refused(wco_cases, corpus_signer, data):
    """UK CDS on the WCO data model: LRN, submitter or declarant, and the fields read as signed."""
    case = data.draw(st.sampled_from(wco_cases))
    disguised = data.draw(disguised_documents(case.plain, case.message_type))
    _check_disguised(case.expected, disguised, run_corpus_stages(case.catalogue, corpus_signer, disguised.body, False))


# ---- the reader itself, and the cases the issue names ------------------------------------------------------------


def test_string_value_is_xpaths():
    """The reader's value of an element is XPath's string(): all descendant text, comments and PIs left out."""
    root = etree.fromstring(b"<r><a>1<!--x-->2<?p q?>3<b>4</b>5<![CDATA[6]]>&#55;</a></r>")
    assert string_value(root[0]) == root.xpath("string(a)") == "1234567"
    assert [v.value for v in read_values(root.xpath("a"))] == ["1234567"]
    assert [v.value for v in read_values(etree.XPath("count(a)")(root))] == ["1"]
    assert [v.value for v in read_values(etree.XPath("1 = 1")(root))] == ["true"]


INSPECTION = "/dec:CustomsDeclaration/dec:Head/dec:InspectionRequired"


def _declaration(change: bytes, into: bytes, sample: str = "customs-declaration/valid-with-inspection.xml") -> bytes:
    data = (SAMPLES / sample).read_bytes()
    assert change in data
    return data.replace(change, into, 1)


@pytest.mark.parametrize(
    "change, into, path",
    [
        (b"<dec:InspectionRequired>1", b"<dec:InspectionRequired><?x?>1", INSPECTION),
        (b"<dec:InspectionRequired>1", b"<dec:InspectionRequired><!---->1", INSPECTION),
        (b"<cm:ReceiverId>customs</cm:ReceiverId>",
         b"<cm:ReceiverId>customs</cm:ReceiverId><cm:ReceiverId><?x?>ent-b</cm:ReceiverId>",
         "/dec:CustomsDeclaration/dec:BaseTransfer/cm:ReceiverId[2]"),
        (b"<cm:MessageId>ENTA-DEC", b"<cm:MessageId>ENTA<!-- -->-DEC", "/dec:CustomsDeclaration/dec:BaseTransfer/cm:MessageId"),
    ],
    ids=["pi-hides-inspection", "comment-hides-inspection", "pi-hides-second-receiver", "comment-truncates-message-id"],
)
def test_the_issues_examples_are_refused_at_parse_by_the_daemon_and_by_explain(exchange, pipeline, tmp_path, change, into, path):
    """Each example the review found is refused at parse, with its line and path, and explain prints that refusal."""
    body = spliced_signature(exchange.signer("ent-a"), _declaration(change, into))
    disposition = pipeline.process(Inbound(body, user_id="ent-a"))
    assert disposition.outcome == "rejected"
    (reason,) = disposition.reasons
    assert (reason.stage, reason.code, reason.path) == ("parse", "parse.markup-in-text", path)
    assert reason.line
    document = tmp_path / "declaration.xml"
    document.write_bytes(body)
    result = CliRunner().invoke(main, ["--config", str(exchange.config_path), "routes", "explain", str(document)])
    assert result.exit_code == 1, result.output
    assert reason.describe() in result.output


def test_an_empty_receiver_is_refused_not_skipped(exchange):
    """A receiver value of whitespace alone is named, with its path, instead of being dropped from the addressees."""
    catalogue = exchange.config.catalogue
    message_type = catalogue.get("CustomsDeclaration")
    root = etree.fromstring(_declaration(b"<cm:ReceiverId>customs</cm:ReceiverId>",
                                         b"<cm:ReceiverId>customs</cm:ReceiverId><cm:ReceiverId> &#10;</cm:ReceiverId>"))
    with pytest.raises(FieldRefused) as refused:
        message_type.receivers(root)
    assert refused.value.code == "identity.empty-receiver"
    assert refused.value.path == "/dec:CustomsDeclaration/dec:BaseTransfer/cm:ReceiverId[2]"


def test_a_later_node_is_never_read_in_place_of_an_empty_first_one(exchange):
    """As XPath's string(): the first selected node is the value, even when empty (and then there is none)."""
    message_type = exchange.config.catalogue.get("CustomsDeclaration")
    root = etree.fromstring(_declaration(b"<cm:SenderId>ent-a</cm:SenderId>",
                                         b"<cm:SenderId> </cm:SenderId><cm:SenderId>ent-a</cm:SenderId>"))
    assert message_type.sender(root) is None


# ---- routes explain predicts the daemon ---------------------------------------------------------------------------


@pytest.mark.parametrize("sample, sender, destinations", ROUTED_SAMPLES)
def test_explain_of_a_signed_sample_predicts_the_daemons_destinations(exchange, pipeline, tmp_path, sample, sender, destinations):
    """For every bundled sample, signed: explain's deliveries are the pipeline's forwards, rule for rule."""
    body = exchange.signed(sender, SAMPLES / sample)
    disposition = pipeline.process(Inbound(body, user_id=sender))
    forwards = [(p.routing_key, p.headers["x-exchanger-route"]) for p in disposition.publications
                if p.headers.get("x-exchanger-kind") == "forward"]
    explanation = explain_document(exchange.config, body)
    assert explanation.signed and explanation.rejected is None
    assert [(d.to, d.route) for d in explanation.decision.deliveries] == forwards
    assert [to for to, _ in forwards] == destinations
    document = tmp_path / "signed.xml"
    document.write_bytes(body)
    result = CliRunner().invoke(main, ["--config", str(exchange.config_path), "routes", "explain", str(document)])
    assert result.exit_code == 0, result.output
    assert f"signature: verified, signed by {sender}" in result.output
    for to, route in forwards:
        assert f"-> {to} by {route}" in result.output


def test_explain_of_an_unsigned_file_says_the_daemon_would_refuse_it(exchange, pipeline):
    """Unsigned: the signature is not verified, the daemon's refusal is shown, and routing as if it were signed."""
    path = SAMPLES / "customs-declaration/valid-with-inspection.xml"
    body = path.read_bytes()
    result = CliRunner().invoke(main, ["--config", str(exchange.config_path), "routes", "explain", str(path)])
    assert result.exit_code == 0, result.output
    assert "signature: NOT VERIFIED (the file is unsigned); the daemon would refuse it as it is:" in result.output
    daemon = pipeline.process(Inbound(body, user_id="ent-a"))
    assert daemon.reasons[0].describe() in result.output
    assert "-> ciq by declaration-copy-to-inspection" in result.output


@pytest.mark.parametrize(
    "change, into, code",
    [
        (b"<cm:SenderId>ent-a</cm:SenderId>", b"<cm:SenderId>ent-b</cm:SenderId>", "identity.mismatch"),
        (b"<cm:ReceiverId>customs</cm:ReceiverId>",
         b"<cm:ReceiverId>customs</cm:ReceiverId><cm:ReceiverId>ent-b</cm:ReceiverId>", "no-route"),
    ],
    ids=["signed-by-another", "second-receiver-no-route"],
)
def test_explain_gives_the_daemons_refusal_of_a_signed_file(exchange, pipeline, tmp_path, change, into, code):
    """A signed file the daemon refuses after verification: explain prints the very same reason."""
    body = exchange.signed("ent-a", _declaration(change, into))
    daemon = pipeline.process(Inbound(body, user_id="ent-a"))
    assert daemon.outcome == "rejected" and daemon.reasons[0].code == code
    document = tmp_path / "refused.xml"
    document.write_bytes(body)
    result = CliRunner().invoke(main, ["--config", str(exchange.config_path), "routes", "explain", str(document)])
    assert result.exit_code == 1, result.output
    assert daemon.reasons[0].describe() in result.output
