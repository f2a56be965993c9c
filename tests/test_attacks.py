"""Hostile XML is refused by the pipeline: quickly, dead-lettered intact, receipted, touching no file or network."""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import subprocess
import sys
import textwrap
import time
from dataclasses import dataclass
from pathlib import Path

import pytest

from exchange_fixture import make_exchange
from exchanger.envelope import Inbound
from exchanger.pipeline import build_pipeline
from exchanger.pipeline.disposition import REJECTED, Disposition
from exchanger.pipeline.runner import HEADER
from exchanger.transport.names import DEAD_EXCHANGE, MAILBOX_EXCHANGE
from exchanger.xml.parser import parse_untrusted

PROJECT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
DEFUSED = CORPUS / "xml-attacks-defusedxml" / "xmltestdata"
SAML = CORPUS / "xml-attacks-saml-xsw" / "responses"
DEFUSED_COPY = CORPUS / "xmldsig-signxml-testdata" / "defusedxml-test-data"

# The denial-of-service bound for refusing one message, not a benchmark.
REFUSAL_BOUND_SECONDS = 1.0
MIB = 1024 * 1024
# Enough to push a DOCTYPE past the 4 KB head that parser.py scans for markers.
LONG_PROLOG = "<!--" + "x" * 5000 + "-->"

# Which stage refuses each defusedxml file: the DOCTYPE-bearing attacks at parse, the rest (benign
# baselines, stylesheets, a schema) at identify, since none is a message type of the exchange.
DEFUSED_REFUSALS = {
    "cyclic.xml": ("parse", "parse.doctype"),
    "dtd.xml": ("parse", "parse.doctype"),
    "dtd_element.xml": ("parse", "parse.doctype"),
    "external.xml": ("parse", "parse.doctype"),
    "external_file.xml": ("parse", "parse.doctype"),
    "quadratic.xml": ("parse", "parse.doctype"),
    "xmlbomb.xml": ("parse", "parse.doctype"),
    "xmlbomb2.xml": ("parse", "parse.doctype"),
    "schema-include.xsd": ("identify", "unknown-type"),
    # Its <?pi data?> before the root is outside what a signature over the root covers.
    "simple-ns.xml": ("parse", "parse.processing-instruction"),
    "simple.xml": ("identify", "unknown-type"),
    "xalan_exec.xsl": ("identify", "unknown-type"),
    "xalan_write.xsl": ("identify", "unknown-type"),
}


def _files(directory: Path) -> list[Path]:
    """Every file under a corpus directory, in a stable order."""
    return sorted(p for p in directory.rglob("*") if p.is_file())


ATTACK_FILES = [
    *[("defusedxml/" + p.name, p) for p in _files(DEFUSED)],
    *[("saml-xsw/" + p.relative_to(SAML).as_posix(), p) for p in _files(SAML)],
    *[("signxml-defusedxml/" + p.name, p) for p in _files(DEFUSED_COPY)],
]


def expected_refusal(path: Path) -> tuple[str, str]:
    """The stage and code that must refuse a corpus file."""
    if path.is_relative_to(SAML):
        if path.name == "response_node_text_attack.xml":
            # Comment injection inside NameID and AttributeValue: refused before the root is even looked up.
            return ("parse", "parse.markup-in-text")
        # Signature-wrapping responses are well-formed XML; they are not a message type here.
        return ("identify", "unknown-type")
    return DEFUSED_REFUSALS[path.name]


@pytest.fixture(scope="module")
def exchange(tmp_path_factory):
    """The bundled exchange on a fresh demo PKI."""
    return make_exchange(tmp_path_factory.mktemp("exchange"))


@pytest.fixture(scope="module")
def pipeline(exchange):
    """The daemon's pipeline for that exchange."""
    return build_pipeline(exchange.config)


def refuse(pipeline, body: bytes) -> Disposition:
    """Process a body as ent-a would send it; assert it is refused in bounded time, dead-lettered and receipted."""
    inbound = Inbound(body, user_id="ent-a", message_id="probe-1", headers={"x-client-ref": "probe"})
    started = time.perf_counter()
    disposition = pipeline.process(inbound)
    elapsed = time.perf_counter() - started
    assert elapsed < REFUSAL_BOUND_SECONDS, f"refusal took {elapsed:.3f} s"
    assert disposition.outcome == REJECTED
    reason = disposition.reasons[0]

    (dead,) = [p for p in disposition.publications if p.exchange == DEAD_EXCHANGE]
    assert dead.body is body or dead.body == body
    assert dead.content_type == "application/octet-stream"
    assert dead.headers[f"{HEADER}stage"] == reason.stage
    assert dead.headers[f"{HEADER}reason"].startswith(f"[{reason.stage}/{reason.code}]")
    assert json.loads(dead.headers[f"{HEADER}reasons"])[0]["code"] == reason.code
    assert dead.headers[f"{HEADER}digest"] == hashlib.sha256(body).hexdigest()
    assert dead.headers[f"{HEADER}user-id"] == "ent-a"
    # The client's own headers travel with the dead letter so the sender can find it.
    assert dead.headers["x-client-ref"] == "probe"

    (receipt,) = [p for p in disposition.publications if p.exchange == MAILBOX_EXCHANGE]
    assert receipt.routing_key == "ent-a"
    assert receipt.headers[f"{HEADER}kind"] == "receipt"
    assert receipt.headers[f"{HEADER}status"] == REJECTED
    document = parse_untrusted(receipt.body).getroot()
    assert document.findtext("{*}ReceiverId") == "ent-a"
    assert document.findtext("{*}Status") == REJECTED
    first = document.find("{*}Reason")
    assert (first.get("stage"), first.get("code")) == (reason.stage, reason.code)
    return disposition


@pytest.mark.parametrize("path", [p for _, p in ATTACK_FILES], ids=[name for name, _ in ATTACK_FILES])
def test_corpus_attack_file_is_refused(pipeline, path):
    """Every defusedxml and SAML-XSW file is rejected at the expected stage, within the bound."""
    disposition = refuse(pipeline, path.read_bytes())
    reason = disposition.reasons[0]
    assert (reason.stage, reason.code) == expected_refusal(path)


def test_attack_corpus_is_complete():
    """The parametrized files are all there: an empty directory would silently test nothing."""
    assert len(_files(DEFUSED)) == 13
    assert len(_files(SAML)) == 11
    assert len(_files(DEFUSED_COPY)) == 9


def test_benign_baseline_parses_but_is_not_a_message_type(pipeline):
    """The hardened parser is not merely refusing everything: the baseline parses, then identify refuses it."""
    body = (DEFUSED / "simple.xml").read_bytes()
    root = parse_untrusted(body).getroot()
    assert root.tag == "root"
    assert [child.get("key") for child in root] == ["value", None, None]
    reason = refuse(pipeline, body).reasons[0]
    assert (reason.stage, reason.code) == ("identify", "unknown-type")
    assert reason.line == 2


def test_processing_instruction_outside_the_root_is_refused_with_its_line(pipeline):
    """simple-ns.xml opens with <?pi data?>: refused at parse, located, before anything reads the document."""
    reason = refuse(pipeline, (DEFUSED / "simple-ns.xml").read_bytes()).reasons[0]
    assert (reason.stage, reason.code, reason.line) == ("parse", "parse.processing-instruction", 1)
    assert "<?pi?>" in reason.message


# ---- what the byte scan in parser.py cannot see ----------------------------------------------------------------

BILLION_LAUGHS = (
    '<!DOCTYPE r [<!ENTITY a "1234567890">'
    + "".join(f'<!ENTITY {n} "{("&" + p + ";") * 10}">' for p, n in zip("abcdefgh", "bcdefghi"))
    + "]>"
)


def _utf16(document: str) -> bytes:
    """A document declared and encoded as UTF-16 (with BOM), where no ASCII marker appears in the bytes."""
    return ('<?xml version="1.0" encoding="UTF-16"?>' + document).encode("utf-16")


def test_utf16_doctype_is_refused(pipeline):
    """'<!DOCTYPE' in UTF-16 is not the ASCII bytes the scan looks for; the parsed docinfo still catches it."""
    body = _utf16('<!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>')
    assert b"<!DOCTYPE" not in body
    reason = refuse(pipeline, body).reasons[0]
    assert (reason.stage, reason.code) == ("parse", "parse.doctype")


def test_doctype_after_a_long_prolog_is_refused(pipeline):
    """A DOCTYPE after a 5 KB comment is past the scanned head; the parsed docinfo still catches it."""
    body = (LONG_PROLOG + '<!DOCTYPE r [<!ENTITY e "x">]><r>&e;</r>').encode()
    assert b"<!DOCTYPE" not in body[:4096]
    reason = refuse(pipeline, body).reasons[0]
    assert (reason.stage, reason.code) == ("parse", "parse.doctype")


@pytest.mark.parametrize(
    "body",
    [
        _utf16(BILLION_LAUGHS + "<r>&i;</r>"),
        _utf16(BILLION_LAUGHS + '<r a="&i;"/>'),
        (LONG_PROLOG + BILLION_LAUGHS + "<r>&i;</r>").encode(),
        (LONG_PROLOG + BILLION_LAUGHS + '<r a="&i;"/>').encode(),
    ],
    ids=["utf16-content", "utf16-attribute", "prolog-content", "prolog-attribute"],
)
def test_hidden_billion_laughs_is_refused_without_expansion(pipeline, body):
    """Ten-to-the-ninth expansion behind the scan: refused at parse (libxml2's amplification limit), quickly."""
    disposition = refuse(pipeline, body)
    assert disposition.reasons[0].stage == "parse"
    assert disposition.reasons[0].code in {"parse.doctype", "parse.malformed"}


@pytest.mark.parametrize("depth", [257, 10_000, 1_000_000])
def test_document_deeper_than_libxml2_allows_is_refused(pipeline, depth):
    """Nesting past libxml2's limit (256 without huge_tree) is a parse error, not a crash or a stack overflow."""
    body = b"<a>" * depth + b"</a>" * depth
    reason = refuse(pipeline, body).reasons[0]
    assert (reason.stage, reason.code) == ("parse", "parse.malformed")
    assert "depth" in reason.message.lower()
    assert reason.line == 1


def test_nesting_at_the_limit_still_parses():
    """The depth limit sits where the test above assumes: 256 levels parse."""
    assert parse_untrusted(b"<a>" * 256 + b"</a>" * 256).getroot().tag == "a"


def test_oversize_document_is_refused_before_parsing(pipeline, exchange):
    """11 MiB over a 10 MiB limit: refused by size alone, although it also starts with a DOCTYPE."""
    assert exchange.config.limits.max_message_bytes == 10 * MIB
    body = b'<!DOCTYPE r [<!ENTITY e "x">]><r>' + b"x" * (11 * MIB) + b"</r>"
    reason = refuse(pipeline, body).reasons[0]
    assert (reason.stage, reason.code) == ("parse", "size.exceeded")
    assert str(len(body)) in reason.message


@pytest.mark.parametrize("body", [b"", b" \r\n\t "], ids=["empty", "whitespace"])
def test_empty_body_is_refused(pipeline, body):
    """Nothing to parse is its own reason, not a parser error."""
    reason = refuse(pipeline, body).reasons[0]
    assert (reason.stage, reason.code) == ("parse", "parse.empty")


@pytest.mark.parametrize(
    "body",
    [
        b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n1 0 obj\n",
        b'{"CustomsDeclaration": {"id": 1}}',
        bytes(range(256)),
        b"\x89PNG\r\n\x1a\n",
    ],
    ids=["pdf", "json", "binary", "png"],
)
def test_body_that_is_not_xml_is_refused(pipeline, body):
    """Non-XML bodies are malformed at line 1."""
    reason = refuse(pipeline, body).reasons[0]
    assert (reason.stage, reason.code) == ("parse", "parse.malformed")
    assert reason.line == 1


def test_xinclude_is_never_processed(pipeline, tmp_path):
    """An xi:include stays an element: nothing is read in (the message is then refused as an unknown type)."""
    secret = tmp_path / "secret.txt"
    secret.write_text("TOP-SECRET")
    body = (
        f'<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="{secret.as_uri()}" parse="text"/></r>'
    ).encode()
    root = parse_untrusted(body).getroot()
    assert root[0].tag == "{http://www.w3.org/2001/XInclude}include"
    assert "TOP-SECRET" not in (root.xpath("string()") or "")
    reason = refuse(pipeline, body).reasons[0]
    assert (reason.stage, reason.code) == ("identify", "unknown-type")


# ---- no file or network access, observed with strace ------------------------------------------------------------

MARKER = "/exchanger-strace-marker"
NETWORK_TARGET = "http://127.0.0.1:9/probe"

# Found while writing these tests: parser.py builds its parser with collect_ids=False, and lxml
# (6.1 on libxml2 < 2.15) implements that by setting XML_SKIP_IDS in ctxt->loadsubset; libxml2 loads
# the external DTD subset and external parameter entities whenever loadsubset is non-zero. A DOCTYPE
# the byte scan misses therefore makes the parser open the local file it names before the docinfo
# check refuses the message.


@dataclass(frozen=True)
class TraceCase:
    """One document parsed under strace, and the local file it must not make the parser open."""

    name: str
    body: bytes
    forbidden: str | None
    refused: bool = True


def _trace_cases(secret: Path) -> list[TraceCase]:
    """The corpus XXE/external-DTD files, and the same attacks hidden from the byte scan."""
    cases = [
        TraceCase(f"{label}/{name}", (directory / name).read_bytes(), forbidden)
        for label, directory in (("defusedxml", DEFUSED), ("signxml-defusedxml", DEFUSED_COPY))
        for name, forbidden in (
            # external_file.xml names the placeholder file:///PATH/TO/xmltestdata/simple.xml.
            ("external_file.xml", "/PATH/TO/xmltestdata/simple.xml"),
            ("external.xml", None),
            ("dtd.xml", None),
        )
    ]
    uri = secret.as_uri()
    hidden = {
        "general-entity": f'<!DOCTYPE r [<!ENTITY e SYSTEM "{uri}">]><r>&e;</r>',
        "general-entity-in-attribute": f'<!DOCTYPE r [<!ENTITY e SYSTEM "{uri}">]><r a="&e;"/>',
        "external-subset": f'<!DOCTYPE r SYSTEM "{uri}"><r/>',
        "external-subset-public": f'<!DOCTYPE r PUBLIC "-//X//DTD Y//EN" "{uri}"><r/>',
        "external-parameter-entity": f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{uri}"> %p;]><r/>',
        "network-subset": f'<!DOCTYPE r SYSTEM "{NETWORK_TARGET}"><r/>',
        "network-entity": f'<!DOCTYPE r [<!ENTITY e SYSTEM "{NETWORK_TARGET}">]><r>&e;</r>',
        "network-parameter-entity": f'<!DOCTYPE r [<!ENTITY % p SYSTEM "{NETWORK_TARGET}"> %p;]><r/>',
    }
    for name, document in hidden.items():
        cases.append(TraceCase(f"prolog/{name}", (LONG_PROLOG + document).encode(), str(secret)))
        cases.append(TraceCase(f"utf16/{name}", _utf16(document), str(secret)))
    cases.append(
        TraceCase(
            "xinclude",
            f'<r xmlns:xi="http://www.w3.org/2001/XInclude"><xi:include href="{uri}"/></r>'.encode(),
            str(secret),
            refused=False,
        )
    )
    return cases


_CHILD = textwrap.dedent(
    f"""
    import json, os, socket, sys
    from exchanger.xml.parser import HostileXML, parse_untrusted

    secret, paths = sys.argv[1], sys.argv[2:]
    bodies = [open(path, "rb").read() for path in paths]
    outcomes = []
    for index, body in enumerate(bodies):
        # A failing open of a marker path splits the trace into one segment per document.
        try:
            os.open("{MARKER}/" + str(index), os.O_RDONLY)
        except OSError:
            pass
        try:
            parse_untrusted(body)
            outcomes.append("parsed")
        except HostileXML as exc:
            outcomes.append(exc.code)
    # A positive control: what the checks must catch, done on purpose in a segment of its own.
    try:
        os.open("{MARKER}/control", os.O_RDONLY)
    except OSError:
        pass
    open(secret, "rb").close()
    socket.socket(socket.AF_INET, socket.SOCK_STREAM).close()
    try:
        os.open("{MARKER}/end", os.O_RDONLY)
    except OSError:
        pass
    print(json.dumps(outcomes))
    """
)


def _child_env() -> dict[str, str]:
    """The environment for a child interpreter that must import this checkout's exchanger."""
    path = os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path}


def _strace() -> str:
    """The strace binary, or a failed test that says which OS package to install."""
    strace = shutil.which("strace")
    if strace is None:
        pytest.fail(
            "strace is not installed: install the `strace` OS package (e.g. apt-get install strace) "
            "so the no-file/no-network tests can observe the parser's system calls"
        )
    probe = subprocess.run([strace, "-f", "-qq", "-e", "trace=none", "true"], capture_output=True, text=True)
    if probe.returncode != 0:
        pytest.fail(f"strace cannot trace here (ptrace refused?): {probe.stderr.strip()}")
    return strace


@dataclass
class Traced:
    """What the child did for one document: how the parser answered, and the traced calls meanwhile."""

    outcome: str
    marked: bool
    calls: list[str]


@pytest.fixture(scope="module")
def traced(tmp_path_factory) -> dict[str, tuple[TraceCase, Traced]]:
    """Parse every trace case in one child under strace, and split the trace per document."""
    try:
        strace = _strace()
    except pytest.fail.Exception:
        # Each test then fails on its own, saying what to install, instead of erroring in setup.
        return {}
    directory = tmp_path_factory.mktemp("strace")
    secret = directory / "secret.txt"
    secret.write_text("TOP-SECRET\n")
    cases = _trace_cases(secret)
    paths = []
    for index, case in enumerate(cases):
        path = directory / f"case-{index}.xml"
        path.write_bytes(case.body)
        paths.append(str(path))
    log = directory / "trace.log"
    command = [strace, "-f", "-qq", "-e", "trace=open,openat,connect,socket", "-o", str(log)]
    result = subprocess.run(
        [*command, sys.executable, "-c", _CHILD, str(secret), *paths],
        capture_output=True,
        text=True,
        env=_child_env(),
        timeout=60,
    )
    assert result.returncode == 0, result.stderr
    outcomes = json.loads(result.stdout.strip().splitlines()[-1])
    segments: dict[str, list[str]] = {}
    current = None
    for line in log.read_text().splitlines():
        marker = re.search(re.escape(MARKER) + r"/(\w+)", line)
        if marker:
            current = None if marker.group(1) == "end" else marker.group(1)
            if current is not None:
                segments.setdefault(current, [])
        elif current is not None:
            segments[current].append(line)
    found = {
        case.name: (case, Traced(outcomes[i], str(i) in segments, segments.get(str(i), [])))
        for i, case in enumerate(cases)
    }
    control = TraceCase("control", b"", str(secret), refused=False)
    found["control"] = (control, Traced("", "control" in segments, segments.get("control", [])))
    return found


def _trace_params() -> list:
    """The trace case names, one test each."""
    return [pytest.param(case.name, id=case.name) for case in _trace_cases(Path("/nonexistent/secret.txt"))]


@pytest.mark.parametrize("name", _trace_params())
def test_parser_opens_no_referenced_file_and_no_socket(traced, name):
    """Under strace: parsing opens none of the files the document references, and opens no socket at all."""
    _strace()
    case, seen = traced[name]
    if case.refused:
        assert seen.outcome != "parsed", f"{name} was not refused"
    network = _network_calls(seen)
    assert not network, f"{name}: network calls while parsing: {network}"
    if case.forbidden:
        opened = _opens_of(seen, case.forbidden)
        assert not opened, f"{name}: the parser opened {case.forbidden}: {opened}"


def _network_calls(seen: Traced) -> list[str]:
    """The socket and connect calls of a segment."""
    return [call for call in seen.calls if call.split("(", 1)[0].split()[-1] in {"socket", "connect"}]


def _opens_of(seen: Traced, path: str) -> list[str]:
    """The open calls of a segment that name ``path``."""
    return [call for call in seen.calls if path in call and call.split("(", 1)[0].split()[-1] in {"open", "openat"}]


def test_trace_segments_are_real(traced):
    """Every case got a segment, and the checks do catch an open and a socket when they happen (the control)."""
    _strace()
    assert all(seen.marked for _, seen in traced.values())
    assert traced["xinclude"][1].outcome == "parsed"
    control, seen = traced["control"]
    assert _opens_of(seen, control.forbidden)
    assert any("AF_INET" in call for call in _network_calls(seen))


# ---- a DOCTYPE naming an external file: no probing, no hang ---------------------------------------------------


def test_refusal_does_not_reveal_whether_a_local_file_exists(pipeline, tmp_path):
    """The receipt to the sender must read the same whether or not a file it names exists on the exchange."""
    existing = tmp_path / "exists.txt"
    existing.write_text("not a DTD\n")
    answers = []
    for target in (existing, tmp_path / "missing.txt", tmp_path):
        body = (LONG_PROLOG + f'<!DOCTYPE r SYSTEM "{target.as_uri()}"><r/>').encode()
        reason = refuse(pipeline, body).reasons[0]
        answers.append((reason.stage, reason.code, reason.message))
    assert answers[0] == answers[1] == answers[2], answers


def test_doctype_naming_a_fifo_does_not_block_the_parser(tmp_path):
    """A DOCTYPE naming a FIFO nobody writes to must be refused, not hang the worker that parses it."""
    fifo = tmp_path / "fifo"
    os.mkfifo(fifo)
    document = tmp_path / "doc.xml"
    document.write_bytes((LONG_PROLOG + f'<!DOCTYPE r SYSTEM "{fifo.as_uri()}"><r/>').encode())
    child = "import sys; from exchanger.xml.parser import HostileXML, parse_untrusted\n" + (
        "try:\n    parse_untrusted(open(sys.argv[1], 'rb').read())\nexcept HostileXML as exc:\n    print(exc.code)\n"
    )
    try:
        # Interpreter start-up is part of the budget; the refusal itself must stay under a second.
        result = subprocess.run(
            [sys.executable, "-c", child, str(document)], capture_output=True, text=True, env=_child_env(), timeout=3
        )
    except subprocess.TimeoutExpired:
        pytest.fail("parsing blocked on the FIFO named by the DOCTYPE")
    assert result.stdout.strip() == "parse.doctype", result.stderr

