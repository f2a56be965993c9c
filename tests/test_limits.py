"""Every costly shape of input is refused at the parse stage with a named reason, before any costly step.

Each class is generated at many sizes around its limit (just under, at, just over, far over), in several
encodings (UTF-16 and Latin-1 documents are counted exactly, UTF-8 ones first from their bytes), and the
tests assert the refusal's stage and code, never a time: the cost is measured by `bin/bench --hostile`.
"""

from __future__ import annotations

import dataclasses
from pathlib import Path

import pytest
import yaml
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from lxml import etree

from exchange_fixture import CORPUS, SAMPLES, write_config
from exchanger.config import ConfigError, load_config
from exchanger.config.model import Limits
from exchanger.envelope import Envelope, Inbound
from exchanger.outcome import Rejected
from exchanger.pipeline import build_pipeline
from exchanger.pipeline.stages.identify import Identify
from exchanger.pipeline.stages.parse import Parse
from exchanger.pipeline.stages.validate import MAX_REPORTED, Validate
from exchanger.xml.limits import CODES, StructuralLimits
from exchanger.xml.shape import measure
from exchanger.xml.parser import HostileXML, parse_untrusted
from exchanger.xml.schema import TREE_VALIDATION_BYTES
from exchanger.xml.start_tags import LONG_RUN, _long_runs

DS_NS = "http://www.w3.org/2000/09/xmldsig#"
INCLUSIVE_C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"

# Small limits keep the generated documents small; the same code paths run at the defaults (tested below too).
SMALL = StructuralLimits(
    max_depth=12,
    max_elements=300,
    max_attributes_per_element=8,
    max_namespace_declarations=40,
    max_namespaces_in_scope=10,
    max_text_bytes=2000,
    max_signed_info_bytes=1500,
)
ENCODINGS = ("UTF-8", "UTF-16", "ISO-8859-1")
FUZZ = settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])


def encoded(text: str, encoding: str) -> bytes:
    """A document in the given encoding, declared; UTF-16 with its byte order mark."""
    return f'<?xml version="1.0" encoding="{encoding}"?>\n{text}'.encode(encoding.lower())


def refusal(data: bytes, limits: StructuralLimits = SMALL) -> str | None:
    """The parse stage's code for a document, or None when it passes."""
    try:
        parse_untrusted(data, limits=limits)
    except HostileXML as exc:
        return exc.code
    return None


def counts_around(limit: int):
    """Counts just under, at and just over a limit, and far over it."""
    return st.one_of(st.integers(max(1, limit - 3), limit + 3), st.integers(limit + 4, 4 * limit))


# ---- one generator per class: (document text, how many of the limited thing it holds) ---------------------------


def nested(depth: int, padding: int) -> str:
    """Elements nested depth deep (the root counts as 1), the innermost with padding empty siblings."""
    if depth == 1:
        return "<d/>"
    return "<d>" * (depth - 1) + "<p/>" * padding + "<d/>" + "</d>" * (depth - 1)


def siblings(count: int) -> str:
    """A root with count - 1 children: count elements in all."""
    return "<r>" + "<e/>" * (count - 1) + "</r>"


def attributes(count: int, on_child: bool) -> str:
    attrs = "".join(f' a{i}="{i}"' for i in range(count))
    return f"<r><x{attrs}/></r>" if on_child else f"<r{attrs}/>"


def declarations_in_scope(count: int, split: int) -> str:
    """count namespaces in scope at the innermost element, declared across two nested elements."""
    outer = "".join(f' xmlns:o{i}="urn:o:{i}"' for i in range(split))
    inner = "".join(f' xmlns:i{i}="urn:i:{i}"' for i in range(count - split))
    return f"<r{outer}><x{inner}/></r>"


def declarations_in_total(count: int) -> str:
    """count declarations, each on its own sibling, so that at most one is in scope anywhere."""
    return "<r>" + "".join(f'<q:x xmlns:q="urn:q:{i}"/>' for i in range(count)) + "</r>"


CHARACTERS = {"x": 1, "é": 2, "中": 3, "𝄞": 4}  # one character, its UTF-8 bytes


def text_in(place: str, text: str) -> str:
    """text as a text node, a tail, an attribute value, a comment, a PI, a CDATA section."""
    return {
        "text": f"<r>{text}</r>",
        "tail": f"<r><a/>{text}</r>",
        "attribute": f'<r a="{text}"/>',
        "comment": f"<r><!--{text}--></r>",
        "pi": f"<r><?p {text}?></r>",
        "cdata": f"<r><![CDATA[{text}]]></r>",
        "outside": f"<r/><!--{text}-->",
    }[place]


def signed_info(content_bytes: int) -> tuple[str, int]:
    """A SignedInfo declaring its own namespace, padded with small comments; returns the text and its size in bytes."""
    padding = ("<!--" + "s" * 40 + "-->") * (content_bytes // 47) + "s" * (content_bytes % 47)
    element = f'<ds:SignedInfo xmlns:ds="{DS_NS}">{padding}</ds:SignedInfo>'
    return f"<r><s>{element}</s></r>", len(element.encode())


# ---- the classes, against the small limits -------------------------------------------------------------------------


@FUZZ
@given(depth=counts_around(SMALL.max_depth), padding=st.integers(0, 5), encoding=st.sampled_from(ENCODINGS))
def test_depth(depth, padding, encoding):
    expected = "limits.depth" if depth > SMALL.max_depth else None
    assert refusal(encoded(nested(depth, padding), encoding)) == expected


@FUZZ
@given(count=counts_around(SMALL.max_elements), encoding=st.sampled_from(ENCODINGS))
def test_element_count(count, encoding):
    expected = "limits.elements" if count > SMALL.max_elements else None
    assert refusal(encoded(siblings(count), encoding)) == expected


@FUZZ
@given(count=counts_around(SMALL.max_elements), pis=st.booleans(), encoding=st.sampled_from(ENCODINGS))
def test_comments_and_processing_instructions_count(count, pis, encoding):
    """A flood of tiny comments or PIs inside text costs more to build than elements: held to max_elements."""
    node = "<?p?>" if pis else "<!---->"
    expected = "limits.elements" if count > SMALL.max_elements else "parse.markup-in-text"
    body = encoded("<r>" + ("1" + node) * count + "</r>", encoding)
    with pytest.raises(Rejected) as refused:
        Parse(None, SMALL)(Envelope(Inbound(body)))
    assert refused.value.reasons[0].code == expected


def test_element_count_read_from_comments_is_an_upper_bound_only():
    # Hundreds of "<" in comments make the byte count exceed the limit; the exact count then decides.
    text = "<r>" + "<!--<<<<<<<<<<-->" * 100 + "<e/>" * 10 + "</r>"
    assert refusal(encoded(text, "UTF-8")) is None


@FUZZ
@given(
    count=counts_around(SMALL.max_attributes_per_element),
    on_child=st.booleans(),
    encoding=st.sampled_from(ENCODINGS),
)
def test_attributes_per_element(count, on_child, encoding):
    expected = "limits.attributes" if count > SMALL.max_attributes_per_element else None
    assert refusal(encoded(attributes(count, on_child), encoding)) == expected


@FUZZ
@given(data=st.data(), encoding=st.sampled_from(ENCODINGS))
def test_namespaces_in_scope(data, encoding):
    count = data.draw(counts_around(SMALL.max_namespaces_in_scope))
    count = min(count, SMALL.max_namespace_declarations)  # stay within the total: this is the in-scope class
    split = data.draw(st.integers(0, count))
    expected = "limits.namespaces-in-scope" if count > SMALL.max_namespaces_in_scope else None
    assert refusal(encoded(declarations_in_scope(count, split), encoding)) == expected


@FUZZ
@given(count=counts_around(SMALL.max_namespace_declarations), encoding=st.sampled_from(ENCODINGS))
def test_namespace_declarations_in_total(count, encoding):
    expected = "limits.namespaces" if count > SMALL.max_namespace_declarations else None
    assert refusal(encoded(declarations_in_total(count), encoding)) == expected


@FUZZ
@given(
    data=st.data(),
    place=st.sampled_from(["text", "tail", "attribute", "comment", "pi", "cdata", "outside"]),
    character=st.sampled_from(sorted(CHARACTERS)),
    encoding=st.sampled_from(["UTF-8", "UTF-16"]),
)
def test_text_size(data, place, character, encoding):
    width = CHARACTERS[character]
    size = data.draw(counts_around(SMALL.max_text_bytes // width)) * width  # UTF-8 bytes of the text
    text = character * (size // width)
    expected = "limits.text" if size > SMALL.max_text_bytes else None
    assert refusal(encoded(text_in(place, text), encoding)) == expected


@FUZZ
@given(content=counts_around(SMALL.max_signed_info_bytes - 100), encoding=st.sampled_from(ENCODINGS))
def test_signed_info_size(content, encoding):
    text, size = signed_info(content)
    expected = "limits.signed-info" if size > SMALL.max_signed_info_bytes else None
    assert refusal(encoded(text, encoding)) == expected


# A start tag longer than a slice is read from the bytes (exchanger/xml/start_tags.py) before libxml2 reads it.

def long_tag(items: list[str], padding: int, quote: str, spaced: bool) -> str:
    """A root whose start tag holds items (each "d" a declaration, "a" an attribute), padded past LONG_RUN.

    Attribute values hold ">", "=" and the other quote, and "=" may be spaced out: what a byte scan must not be
    fooled by (a namespace name must be a URI, so declarations are padded with letters)."""
    other = "'" if quote == '"' else '"'
    pad = f">{other}=" * (padding // 3)
    equals = " = " if spaced else "="
    parts = []
    for number, kind in enumerate(items):
        name = f"xmlns:p{number}" if kind == "d" else f"a{number}"
        value = f"urn:{number}:" + "n" * padding if kind == "d" else pad
        parts.append(f"\n {name}{equals}{quote}{value}{quote}")
    return "<r" + "".join(parts) + ">\n<x>text with = and > and quotes ' \"</x>\n</r>"


@FUZZ
@given(
    declarations=counts_around(SMALL.max_namespaces_in_scope),
    attributes_=counts_around(SMALL.max_attributes_per_element),
    order=st.randoms(use_true_random=False),
    quote=st.sampled_from(['"', "'"]),
    spaced=st.booleans(),
    encoding=st.sampled_from(ENCODINGS),
)
def test_a_long_start_tag_is_judged_like_any_other(declarations, attributes_, order, quote, spaced, encoding):
    declarations = min(declarations, SMALL.max_namespace_declarations)
    items = ["d"] * declarations + ["a"] * attributes_
    order.shuffle(items)
    padding = LONG_RUN // max(1, len(items)) + 3
    data = encoded(long_tag(items, padding, quote, spaced), encoding)
    limits = dataclasses.replace(SMALL, max_text_bytes=2 * LONG_RUN)  # values long enough to make the tag long
    over = set()
    if declarations > SMALL.max_namespaces_in_scope:
        over.add("limits.namespaces-in-scope")
    if attributes_ > SMALL.max_attributes_per_element:
        over.add("limits.attributes")
    try:
        parse_untrusted(data, limits=limits)
    except HostileXML as exc:
        assert exc.code in over, (exc.code, str(exc))
        if encoding != "UTF-16":
            # Refused from the bytes, at the line the tag starts on (libxml2 names the line where it ends).
            assert (exc.line, exc.path) == (2, None), "refused from the tree, after libxml2 read the whole tag"
    else:
        assert not over


@FUZZ
@given(
    pieces=st.lists(st.sampled_from([b"<", b"x" * 7, b"y" * 500, b"z" * 3000]), max_size=60),
    threshold=st.sampled_from([8, 600, 4096]),
)
def test_long_runs_are_found_exactly(pieces, threshold):
    data = b"".join(pieces)
    expected, offset = [], 0
    for index, run in enumerate(data.split(b"<")):
        if index and len(run) > threshold:
            expected.append(offset)
        offset += len(run) + 1
    assert list(_long_runs(data, threshold)) == expected


def test_a_long_start_tag_is_refused_before_libxml2_reads_it():
    """A 10 MB tag of declarations: refused on the count of the bytes, with the tag's line and no path."""
    data = encoded("<r>\n" + "<x" + "".join(f' xmlns:n{i}="urn:n:{i}"' for i in range(500_000)) + "/></r>", "UTF-8")
    with pytest.raises(HostileXML) as caught:
        parse_untrusted(data, limits=DEFAULTS)
    assert (caught.value.code, caught.value.line, caught.value.path) == ("limits.namespaces-in-scope", 3, None)


def test_a_refusal_names_the_line_and_element():
    data = encoded("<r>\n<a>\n" + attributes(SMALL.max_attributes_per_element + 1, True) + "\n</a>\n</r>", "UTF-8")
    with pytest.raises(HostileXML) as caught:
        parse_untrusted(data, limits=SMALL)
    assert (caught.value.code, caught.value.line, caught.value.path) == ("limits.attributes", 4, "/r/a/r/x")


def test_the_parse_stage_says_stage_code_line_and_path():
    envelope = Envelope(Inbound(encoded("<r>\n" + nested(SMALL.max_depth, 0) + "\n</r>", "UTF-8")))
    with pytest.raises(Rejected) as caught:
        Parse(None, SMALL)(envelope)
    reason = caught.value.reasons[0]
    assert (reason.stage, reason.code, reason.line) == ("parse", "limits.depth", 3)
    assert reason.path == "/r" + "/d" * SMALL.max_depth


# ---- the defaults ----------------------------------------------------------------------------------------------------

DEFAULTS = Limits()


@pytest.mark.parametrize(
    ("code", "under", "over"),
    [
        ("limits.depth", nested(DEFAULTS.max_depth, 0), nested(DEFAULTS.max_depth + 1, 0)),
        ("limits.elements", siblings(DEFAULTS.max_elements), siblings(DEFAULTS.max_elements + 1)),
        (
            "limits.attributes",
            attributes(DEFAULTS.max_attributes_per_element, True),
            attributes(DEFAULTS.max_attributes_per_element + 1, True),
        ),
        (
            "limits.namespaces-in-scope",
            declarations_in_scope(DEFAULTS.max_namespaces_in_scope, 1),
            declarations_in_scope(DEFAULTS.max_namespaces_in_scope + 1, 1),
        ),
        (
            "limits.namespaces",
            declarations_in_total(DEFAULTS.max_namespace_declarations),
            declarations_in_total(DEFAULTS.max_namespace_declarations + 1),
        ),
        ("limits.text", text_in("text", "x" * DEFAULTS.max_text_bytes), text_in("text", "x" * (DEFAULTS.max_text_bytes + 1))),
    ],
    ids=lambda value: value if isinstance(value, str) and value.startswith("limits.") else "",
)
def test_default_limits_just_under_and_just_over(code, under, over):
    assert refusal(encoded(under, "UTF-8"), DEFAULTS) is None
    assert refusal(encoded(over, "UTF-8"), DEFAULTS) == code


def test_default_signed_info_limit():
    markup = signed_info(7)[1] - 7  # the start and end tags around the content
    under, size = signed_info(DEFAULTS.max_signed_info_bytes - markup)
    assert size == DEFAULTS.max_signed_info_bytes and refusal(encoded(under, "UTF-8"), DEFAULTS) is None
    over, size = signed_info(DEFAULTS.max_signed_info_bytes - markup + 1)
    assert size == DEFAULTS.max_signed_info_bytes + 1
    assert refusal(encoded(over, "UTF-8"), DEFAULTS) == "limits.signed-info"


def test_every_code_is_named():
    assert set(CODES) == {
        "limits.depth", "limits.elements", "limits.attributes", "limits.namespaces", "limits.namespaces-in-scope",
        "limits.text", "limits.signed-info",
    }


# ---- real documents pass ---------------------------------------------------------------------------------------------


def _all_xml(directory: Path) -> list[Path]:
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() == ".xml")


REAL = _all_xml(SAMPLES) + _all_xml(CORPUS)


def test_the_corpus_is_there():
    assert len(_all_xml(CORPUS)) > 500 and len(_all_xml(SAMPLES)) >= 14


@pytest.mark.parametrize("path", REAL, ids=lambda p: str(p.relative_to(p.parents[2])))
def test_every_bundled_and_corpus_sample_passes_the_default_limits(path):
    data = path.read_bytes()
    code = refusal(data, DEFAULTS)
    # Some corpus samples are known broken (not well-formed, DTDs): refused, but never for their shape.
    assert code is None or not code.startswith("limits."), code
    if code is None:
        shape = measure(parse_untrusted(data).getroot())
        for field in dataclasses.fields(shape):
            assert getattr(shape, field.name) <= getattr(DEFAULTS, "max_" + field.name), field.name


# ---- through the daemon's pipeline, signed by a registered participant --------------------------------------------


def _process(pipeline, exchange, body: bytes, sender: str = "ent-a"):
    return pipeline.process(Inbound(body, user_id=exchange.config.registry.get(sender).amqp_user))


def _hostile(signed: bytes, payload: bytes, *, in_root_tag: bool = False) -> bytes:
    if in_root_tag:
        end = signed.index(b">", signed.index(b"<dec:CustomsDeclaration"))
        return signed[:end] + payload + signed[end:]
    at = signed.rindex(b"<ds:Signature")
    return signed[:at] + payload + signed[at:]


@pytest.fixture(scope="module")
def signed_declaration(exchange) -> bytes:
    return exchange.signed("ent-a", SAMPLES / "customs-declaration" / "valid.xml")


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(extra=st.integers(63, 400), inclusive=st.booleans())
def test_namespaces_in_scope_of_signed_info_are_refused_before_canonicalization(
    pipeline, exchange, signed_declaration, extra, inclusive
):
    """The review's case: many declarations in scope at SignedInfo, with inclusive c14n, by a registered sender."""
    body = signed_declaration
    if inclusive:
        body = body.replace(b"http://www.w3.org/2001/10/xml-exc-c14n#", INCLUSIVE_C14N.encode(), 1)
    body = _hostile(body, b"".join(b' xmlns:n%d="urn:n:%d"' % (i, i) for i in range(extra)), in_root_tag=True)
    disposition = _process(pipeline, exchange, body)
    reason = disposition.reasons[0]
    # The root's two declarations and ds make 65 or more in scope at SignedInfo.
    assert (disposition.outcome, reason.stage, reason.code) == ("rejected", "parse", "limits.namespaces-in-scope")


@pytest.mark.parametrize(
    ("payload", "code", "in_root_tag"),
    [
        (b"<e/>" * (DEFAULTS.max_elements + 1), "limits.elements", False),
        (b"<d>" * DEFAULTS.max_depth + b"</d>" * DEFAULTS.max_depth, "limits.depth", False),
        (b"".join(b' a%d=""' % i for i in range(800_000)), "limits.attributes", True),
        (b"".join(b'<q:x xmlns:q="urn:q:%d"/>' % i for i in range(DEFAULTS.max_namespace_declarations + 1)),
         "limits.namespaces", False),
        (b"<t>" + b"x" * (DEFAULTS.max_text_bytes + 1) + b"</t>", "limits.text", False),
    ],
    ids=["elements", "depth", "800,000 attributes", "declarations", "text"],
)
def test_hostile_shapes_are_refused_at_the_parse_stage(pipeline, exchange, signed_declaration, payload, code, in_root_tag):
    disposition = _process(pipeline, exchange, _hostile(signed_declaration, payload, in_root_tag=in_root_tag))
    reason = disposition.reasons[0]
    assert (disposition.outcome, reason.stage, reason.code) == ("rejected", "parse", code)


@pytest.mark.parametrize(
    ("name", "blanks"),
    [
        *((name, blanks) for name in ("SignatureValue", "DigestValue") for blanks in (1, 100, 4000, 60_000, 1_000_000, DEFAULTS.max_text_bytes + 1)),
        ("DigestValue", DEFAULTS.max_signed_info_bytes + 1),
    ],
)
def test_bad_base64_after_white_space_is_refused(pipeline, exchange, signed_declaration, name, blanks):
    """White space, then a character that is not base64: refused whatever its length, for one reason or the other."""
    start = signed_declaration.index(b">", signed_declaration.index(b"<ds:" + name.encode())) + 1
    end = signed_declaration.index(b"</ds:" + name.encode())
    body = signed_declaration[:start] + b"A" + b" " * blanks + b"!" + signed_declaration[end:]
    reason = _process(pipeline, exchange, body).reasons[0]
    if blanks > DEFAULTS.max_text_bytes:
        expected = ("parse", "limits.text")
    elif name == "DigestValue" and blanks > DEFAULTS.max_signed_info_bytes:
        expected = ("parse", "limits.signed-info")
    else:
        expected = ("verify", "signature.invalid")
    assert (reason.stage, reason.code) == expected


# ---- validation builds a bounded number of errors ---------------------------------------------------------------


def _manifest_with_bad_counts(count: int) -> bytes:
    root = etree.parse(str(SAMPLES / "cargo-manifest" / "valid.xml")).getroot()
    waybill = root.find("{urn:eport:mft:1}Waybill")
    for _ in range(count - 1):
        waybill.addnext(etree.fromstring(etree.tostring(waybill)))
    for element in root.iter("{urn:eport:mft:1}PackageCount"):
        element.text = "x"
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _validated(catalogue, body: bytes) -> list:
    envelope = Envelope(Inbound(body))
    Parse(None)(envelope)
    Identify(catalogue)(envelope)
    try:
        Validate()(envelope)
    except Rejected as rejected:
        return rejected.reasons
    return []


@settings(max_examples=20, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(waybills=st.integers(1, 400))
def test_validation_reports_at_most_the_cap(exchange, waybills):
    catalogue = exchange.config.catalogue
    body = _manifest_with_bad_counts(waybills)
    reasons = _validated(catalogue, body)
    tree = etree.ElementTree(etree.fromstring(body))
    everything = catalogue.get("CargoManifest").schema.violations(tree)
    full = [(v.line, v.path, v.message) for v in everything]
    if len(everything) <= MAX_REPORTED or len(body) <= TREE_VALIDATION_BYTES:
        # Few errors, or a small document: the first ones of a full validation, lines and paths included.
        assert [(r.line, r.path, r.message) for r in reasons[:MAX_REPORTED]] == full[:MAX_REPORTED]
    else:
        # A flood in a large document: the messages of the first ones, found without building the others.
        assert [r.message for r in reasons[:MAX_REPORTED]] == [message for _, _, message in full[:MAX_REPORTED]]
    if len(everything) > MAX_REPORTED:
        assert len(reasons) == MAX_REPORTED + 1 and "more violations" in reasons[-1].message
    else:
        assert len(reasons) == len(everything)
    assert all((r.stage, r.code) == ("validate", "xsd") for r in reasons)


MUTATIONS = st.sampled_from(["drop", "attribute", "value", "duplicate", "unknown"])


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(data=st.data(), sample=st.sampled_from(sorted(SAMPLES.glob("*/valid*.xml"))), mutation=MUTATIONS)
def test_capped_validation_agrees_with_full_validation(exchange, data, sample, mutation):
    """Validating while re-reading the bytes gives the same verdict as validating the tree, on many mutants."""
    root = etree.parse(str(sample)).getroot()
    elements = list(root.iter(etree.Element))
    target = data.draw(st.sampled_from(elements[1:]))
    if mutation == "drop":
        target.getparent().remove(target)
    elif mutation == "attribute":
        target.set(data.draw(st.sampled_from(["a", "id", "{urn:x}b"])), "1")
    elif mutation == "value":
        target.text = data.draw(st.text(alphabet="abcXYZ 019-.:中", max_size=12))
    elif mutation == "duplicate":
        target.addnext(etree.fromstring(etree.tostring(target)))
    else:
        target.addnext(etree.Element(target.tag + "Unknown"))
    body = etree.tostring(root, xml_declaration=True, encoding="UTF-8")
    schema = exchange.config.catalogue.for_root(root.tag).schema
    tree = parse_untrusted(body)
    capped = schema.capped_violations(tree, body, MAX_REPORTED)
    assert bool(capped.violations) == bool(schema.violations(tree))


# ---- configuration ----------------------------------------------------------------------------------------------


def test_a_limit_set_in_routes_yaml_takes_effect(exchange, tmp_path):
    path = write_config(tmp_path, exchange.keys_dir, limits={"max_message_bytes": 1_000_000, "max_depth": 5})
    config = load_config(path)
    assert (config.limits.max_depth, config.limits.max_message_bytes) == (5, 1_000_000)
    assert config.limits.max_elements == Limits().max_elements
    disposition = build_pipeline(config).process(Inbound(encoded(nested(6, 0), "UTF-8")))
    assert (disposition.reasons[0].stage, disposition.reasons[0].code) == ("parse", "limits.depth")
    assert build_pipeline(config).process(Inbound(encoded(nested(5, 0), "UTF-8"))).reasons[0].stage != "parse"


@pytest.mark.parametrize("key", Limits.keys())
@pytest.mark.parametrize("value", [0, -1, "10", True])
def test_a_limit_that_is_not_a_positive_whole_number_is_a_config_problem(exchange, tmp_path, key, value):
    path = write_config(tmp_path, exchange.keys_dir, limits={key: value})
    with pytest.raises(ConfigError) as caught:
        load_config(path)
    assert any(f"limits.{key}" in problem for problem in caught.value.problems)


def test_the_limits_keys_are_documented_in_the_bundled_routes_yaml():
    bundled = yaml.safe_load((SAMPLES.parent / "routes.yaml").read_text())["limits"]
    assert set(bundled) <= set(Limits.keys())
    text = (SAMPLES.parent / "routes.yaml").read_text()
    assert all(key in text for key in Limits.keys())
