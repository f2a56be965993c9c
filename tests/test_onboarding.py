"""New message standards are onboarded by configuration alone: real GACC and UK CDS schemas and samples."""

from __future__ import annotations

import base64
import contextlib
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest
import yaml
from click.testing import CliRunner
from lxml import etree

from exchanger.catalogue import Catalogue
from exchanger.cli.main import main
from exchanger.config import ConfigError, load_catalogue
from exchanger.config.model import Limits
from exchanger.envelope import Envelope, Inbound
from exchanger.outcome import Reason, Rejected
from exchanger.pipeline.stages.identify import Identify
from exchanger.pipeline.stages.parse import Parse
from exchanger.pipeline.stages.validate import Validate
from exchanger.xml.schema import CompiledSchema, SchemaLoadError

PROJECT = Path(__file__).resolve().parents[1]
CORPUS = Path(__file__).resolve().parents[1].parent / "shared" / "corpus"
ONBOARDING = Path(__file__).resolve().parent / "onboarding"

CEB = CORPUS / "cn-chinaport-ceb"
CEB_2018 = CEB / "2018-gacc-113"
CEB_202205 = CEB / "202205"
WCO = CORPUS / "wco-dms-hmrc-cds"
WCO_EXAMPLES = WCO / "examples"

CEB_NS = "http://www.chinaport.gov.cn/ceb"
BOM = b"\xef\xbb\xbf"

# Known-broken samples, as listed in each set's SOURCE.txt.
CEB_DUPLICATE_BASETRANSFER = ["CEB303", "CEB403", "CEB505", "CEB507", "CEB509", "CEB603", "CEB605", "CEB607"]
CEB_202205_BROKEN = {f"export/{code}Message.xml" for code in CEB_DUPLICATE_BASETRANSFER} | {
    "export/CEB792Message.xml",
    "export/CEB214Message.xml",
}
CEB_UNSIGNED_APP_EXAMPLE = CEB / "app-examples" / "CEB621Message.xml"
CEB_SIGNED_APP_EXAMPLE = CEB / "app-examples" / "CEB621Message_signed.xml"

WCO_NOT_WELL_FORMED = [
    "annotated_XML_samples/TT_EX002a/TT_EX002a.xml",
    "annotated_XML_samples/TT_EX022a/TT_EX022a_Declaration1_(Step1).xml",
    "annotated_XML_samples/TT_IM084a/TT_IM084a.xml",
]
WCO_NAMESPACELESS_NOTIFICATIONS = [
    f"annotated_XML_samples/Example_DMS_notifications/{name}.xml"
    for name in (
        "01_DMSACC", "02_DMSRCV", "03_DMSREJ", "05_DMSCTL", "06_DMSDOC", "07_DMSRES", "08_DMSROG", "09_DMSCLE",
        "10_DMSINV", "11_DMSREQ", "13_DMSTAX", "14_DMSCPI", "15_DMSCPR", "16_DMSEOG", "17_DMSGER",
    )
]
WCO_BROKEN_ROOT = [
    "annotated_XML_samples/TT_IM117a/01_DMSACC.xml",
    "annotated_XML_samples/TT_IM222a/Step1_TT_IM222a.xml",
]
WCO_INVALID_DECLARATION = "example_submission_declaration_400.xml"
WCO_BROKEN = set(WCO_NOT_WELL_FORMED + WCO_NAMESPACELESS_NOTIFICATIONS + WCO_BROKEN_ROOT + [WCO_INVALID_DECLARATION])


def _xml_files(directory: Path) -> list[Path]:
    """Every XML file under a directory (the WCO set also has upper-case .XML), in a stable order."""
    return sorted(p for p in directory.rglob("*") if p.is_file() and p.suffix.lower() == ".xml")


def _rel(path: Path, base: Path) -> str:
    """A path relative to its set, as SOURCE.txt names it."""
    return path.relative_to(base).as_posix()


CEB_2018_SAMPLES = _xml_files(CEB_2018 / "samples")
CEB_202205_SAMPLES = _xml_files(CEB_202205 / "samples")
CEB_202205_VALID = [p for p in CEB_202205_SAMPLES if _rel(p, CEB_202205 / "samples") not in CEB_202205_BROKEN]
WCO_FILES = _xml_files(WCO_EXAMPLES)
WCO_VALID = [p for p in WCO_FILES if _rel(p, WCO_EXAMPLES) not in WCO_BROKEN]


def _ids(paths: list[Path], base: Path) -> list[str]:
    """Readable test ids: the sample's path inside its set."""
    return [_rel(p, base) for p in paths]


@pytest.fixture(scope="module")
def ceb2018() -> Catalogue:
    """The GACC 2018 catalogue, compiled once for the module."""
    return load_catalogue(ONBOARDING / "ceb-2018.yaml")


@pytest.fixture(scope="module")
def ceb202205() -> Catalogue:
    """The GACC 202205 catalogue, compiled once for the module."""
    return load_catalogue(ONBOARDING / "ceb-202205.yaml")


@pytest.fixture(scope="module")
def wco() -> Catalogue:
    """The UK CDS (WCO DMS) catalogue, compiled once for the module."""
    return load_catalogue(ONBOARDING / "wco-dms.yaml")


def run_stages(catalogue: Catalogue, body: bytes) -> Envelope:
    """Run the daemon's first three stages (with its default size limit) on one document."""
    envelope = Envelope(Inbound(body))
    for stage in (Parse(Limits().max_message_bytes), Identify(catalogue), Validate()):
        stage(envelope)
    return envelope


def rejection(catalogue: Catalogue, path: Path) -> list[Reason]:
    """The reasons the stages give for refusing a document; fails the test if it is accepted."""
    with pytest.raises(Rejected) as caught:
        run_stages(catalogue, path.read_bytes())
    return caught.value.reasons


def lines_containing(path: Path, needle: str) -> list[int]:
    """The 1-based numbers of the lines of a file that contain ``needle``."""
    text = path.read_bytes().decode("utf-8-sig")
    # split("\n"), not splitlines(): libxml2 counts only line feeds.
    return [number for number, line in enumerate(text.split("\n"), start=1) if needle in line]


def root_tag_line(path: Path) -> int:
    """The line where the root's start tag closes: libxml2 numbers an element by its start tag's '>'."""
    text = path.read_bytes().decode("utf-8-sig")
    text = re.sub(r"<!--.*?-->", lambda m: "\n" * m.group(0).count("\n"), text, flags=re.S)
    start = re.search(r"<[A-Za-z_]", text).start()
    return text.count("\n", 0, text.index(">", start)) + 1


def test_corpus_sets_are_where_the_tests_expect_them():
    """An empty glob would make every parametrized test vanish silently, so the counts are pinned."""
    assert len(CEB_2018_SAMPLES) == 35
    assert len(CEB_202205_SAMPLES) == 39 and len(CEB_202205_VALID) == 29
    assert len(WCO_FILES) == 336 and len(WCO_VALID) == 315
    listed = {_rel(p, WCO_EXAMPLES) for p in WCO_FILES}
    assert WCO_BROKEN <= listed, "a known-broken WCO sample named in SOURCE.txt is missing"
    assert {_rel(p, CEB_202205 / "samples") for p in CEB_202205_SAMPLES} >= CEB_202205_BROKEN


# ---- GACC cross-border e-commerce, 2018 release ------------------------------------------------------------------


@pytest.mark.parametrize("path", CEB_2018_SAMPLES, ids=_ids(CEB_2018_SAMPLES, CEB_2018 / "samples"))
def test_ceb2018_official_sample_validates_and_names_its_identity(ceb2018, path):
    """Each of the 35 official samples is valid, found by its root, and yields its id, sender and fields."""
    envelope = run_stages(ceb2018, path.read_bytes())
    root = envelope.tree.getroot()
    message_type = envelope.message_type
    assert message_type.name == path.stem.removesuffix("Message")
    assert message_type.message_id(root) == root.get("guid")
    transfer = root.find(f"{{{CEB_NS}}}BaseTransfer")
    if transfer is not None:
        assert message_type.sender(root) == transfer.findtext(f"{{{CEB_NS}}}copCode")
        assert message_type.receivers(root) == []
    else:
        # A customs receipt names no sender; it is addressed to the enterprise it concerns.
        assert message_type.sender(root) == "customs"
        assert message_type.receivers(root)
    empty = [name for name, value in message_type.field_values(root).items() if not value]
    assert not empty, f"fields {empty} point at nothing in {path.name}"


def test_ceb2018_bom_samples_are_among_those_accepted():
    """19 of the 35 samples start with a UTF-8 byte order mark; the parser must take them as they are."""
    assert sum(p.read_bytes().startswith(BOM) for p in CEB_2018_SAMPLES) == 19


def test_ceb2018_import_order_and_inventory_point_at_real_fields(ceb2018):
    """CEB311 and CEB621: the values a route or a log would use are the documents' own."""
    order = run_stages(ceb2018, (CEB_2018 / "samples/import/CEB311Message.xml").read_bytes())
    root = order.tree.getroot()
    assert order.message_type.message_id(root) == "4CDE1CFD-EDED-46B1-946C-B8022E42FC94"
    assert order.message_type.sender(root) == "1101180326"
    fields = order.message_type.field_values(root)
    assert fields["order_no"] == "order20160321116421002"
    assert fields["ebp_code"] == "1105910159"
    assert fields["dxp_id"] == "EXP2016522002580001"

    inventory = run_stages(ceb2018, (CEB_2018 / "samples/import/CEB621Message.xml").read_bytes())
    root = inventory.tree.getroot()
    assert inventory.message_type.name == "CEB621"
    assert inventory.message_type.sender(root) == "1101180326"
    fields = inventory.message_type.field_values(root)
    assert fields["cop_no"] == "NBBH20160308005"
    assert fields["customs_code"] == "3700"
    assert fields["dxp_id"] == "DXPLGS0000000001"


def _dxp_envelopes(inner: bytes, sender: str = "DXPENT0000000001", end_node: str = "A0000002") -> tuple[bytes, bytes]:
    """A DXP terminal-node message carrying ``inner``, and the same message as relayed between transfer nodes."""
    message = f"""<dxp:DxpMsg ver="1.0" xmlns:dxp="http://www.chinaport.gov.cn/dxp">
  <dxp:TransInfo>
    <dxp:CopMsgId>CEB311-20160308-0001</dxp:CopMsgId>
    <dxp:SenderId>{sender}</dxp:SenderId>
    <dxp:ReceiverIds>
      <dxp:ReceiverId>DXPEDCCEB0000002</dxp:ReceiverId>
    </dxp:ReceiverIds>
    <dxp:CreatTime>2016-03-08T11:27:01</dxp:CreatTime>
    <dxp:MsgType>CEB311Message</dxp:MsgType>
  </dxp:TransInfo>
  <dxp:Data>{base64.b64encode(inner).decode()}</dxp:Data>
</dxp:DxpMsg>"""
    relayed = f"""<?xml version="1.0" encoding="UTF-8"?>
<dxp:DxpMsgSv ver="1.0" xmlns:dxp="http://www.chinaport.gov.cn/dxp">
  <dxp:SvNo Ver="1.0">
    <dxp:MsgId>A00000012016030811270100000001</dxp:MsgId>
    <dxp:SendTime>2016-03-08T11:27:02</dxp:SendTime>
    <dxp:EndNode>{end_node}</dxp:EndNode>
    <dxp:StaNode>A0000001</dxp:StaNode>
  </dxp:SvNo>
  {message}
</dxp:DxpMsgSv>"""
    return message.encode(), relayed.encode()


def test_ceb2018_dxp_envelopes_carry_a_business_message(ceb2018):
    """The transport envelopes validate too, and their TransInfo gives id, sender and receivers."""
    inner = (CEB_2018 / "samples/import/CEB311Message.xml").read_bytes()
    message, relayed = _dxp_envelopes(inner)

    envelope = run_stages(ceb2018, message)
    root = envelope.tree.getroot()
    assert envelope.message_type.name == "DxpMsg"
    assert envelope.message_type.message_id(root) == "CEB311-20160308-0001"
    assert envelope.message_type.sender(root) == "DXPENT0000000001"
    assert envelope.message_type.receivers(root) == ["DXPEDCCEB0000002"]
    carried = base64.b64decode(root.findtext("{http://www.chinaport.gov.cn/dxp}Data"))
    assert run_stages(ceb2018, carried).message_type.name == "CEB311"

    envelope = run_stages(ceb2018, relayed)
    root = envelope.tree.getroot()
    assert envelope.message_type.name == "DxpMsgSv"
    assert envelope.message_type.schema.engine == "xmlschema"
    assert envelope.message_type.message_id(root) == "A00000012016030811270100000001"
    assert envelope.message_type.sender(root) == "DXPENT0000000001"
    assert envelope.message_type.field_values(root)["end_node"] == "A0000002"


def test_ceb2018_dxp_violations_are_located_by_either_engine(ceb2018):
    """libxml2 (DxpMsg) and the pure-Python validator (DxpMsgSv) both report line and element path."""
    inner = (CEB_2018 / "samples/import/CEB311Message.xml").read_bytes()
    message, relayed = _dxp_envelopes(inner, sender="X" * 17, end_node="NODE-TOO-LONG")

    with pytest.raises(Rejected) as caught:
        run_stages(ceb2018, message)
    (reason,) = caught.value.reasons
    assert (reason.stage, reason.code, reason.line) == ("validate", "xsd", 4)
    assert reason.path == "/dxp:DxpMsg/dxp:TransInfo/dxp:SenderId"
    assert "16" in reason.message

    with pytest.raises(Rejected) as caught:
        run_stages(ceb2018, relayed)
    located = {(r.line, r.path) for r in caught.value.reasons}
    assert (6, "/dxp:DxpMsgSv/dxp:SvNo/dxp:EndNode") in located
    assert (12, "/dxp:DxpMsgSv/dxp:DxpMsg/dxp:TransInfo/dxp:SenderId") in located
    assert all(r.stage == "validate" and r.code == "xsd" for r in caught.value.reasons)


def test_libxml2_cannot_compile_the_transfer_node_schema_that_xmlschema_can():
    """Why DxpMsgSv says engine: xmlschema: libxml2 cannot resolve the include of a non-ASCII file name."""
    transfer_node = CEB_2018 / "xsd" / "传输节点报文.xsd"
    with pytest.raises(SchemaLoadError, match="could not build an URI from the schemaLocation"):
        CompiledSchema([transfer_node], engine="libxml2")
    CompiledSchema([transfer_node], engine="xmlschema")


# ---- GACC cross-border e-commerce, 202205 revision and its known-broken samples ---------------------------------


@pytest.mark.parametrize("path", CEB_202205_VALID, ids=_ids(CEB_202205_VALID, CEB_202205 / "samples"))
def test_ceb202205_official_sample_validates(ceb202205, path):
    """Every 202205 sample that SOURCE.txt does not list as broken is valid and yields id and sender."""
    envelope = run_stages(ceb202205, path.read_bytes())
    root = envelope.tree.getroot()
    assert envelope.message_type.name == path.stem.removesuffix("Message")
    assert envelope.message_type.message_id(root) == root.get("guid")
    assert envelope.message_type.sender(root)


@pytest.mark.parametrize("catalogue_name", ["ceb2018", "ceb202205"])
def test_ceb_signed_app_example_validates(request, catalogue_name):
    """A CEB621 from a real signing application validates under both releases."""
    catalogue = request.getfixturevalue(catalogue_name)
    assert run_stages(catalogue, CEB_SIGNED_APP_EXAMPLE.read_bytes()).message_type.name == "CEB621"


@pytest.mark.parametrize("code", CEB_DUPLICATE_BASETRANSFER)
def test_ceb202205_duplicate_basetransfer_is_rejected_at_the_second_one(ceb202205, code):
    """Eight export samples carry ceb:BaseTransfer twice: the XSD refuses the second, by line and path."""
    path = CEB_202205 / "samples" / "export" / f"{code}Message.xml"
    reasons = rejection(ceb202205, path)
    second = lines_containing(path, "<ceb:BaseTransfer>")[1]
    reason = reasons[0]
    assert (reason.stage, reason.code) == ("validate", "xsd")
    assert reason.line == second
    assert reason.path == f"/ceb:{code}Message/ceb:BaseTransfer[2]"
    assert "BaseTransfer" in reason.message and "not expected" in reason.message


def test_ceb202205_summary_result_with_gnum_is_rejected_at_each_gnum(ceb202205):
    """CEB792 uses gnum where the XSD expects gseqno: one located violation per list item."""
    path = CEB_202205 / "samples" / "export" / "CEB792Message.xml"
    reasons = rejection(ceb202205, path)
    assert {(r.stage, r.code) for r in reasons} == {("validate", "xsd")}
    assert [r.line for r in reasons] == lines_containing(path, "<ceb:gnum>")
    item = re.compile(r"/ceb:CEB792Message/ceb:SummaryResult\[\d+\]/ceb:SummaryResultList\[\d+\]/ceb:gnum")
    for reason in reasons:
        assert item.fullmatch(reason.path), reason.path
        assert "gnum" in reason.message and "gseqno" in reason.message


def test_ceb202205_root_ceb214_is_an_unknown_type(ceb202205):
    """The CEB214 sample's root is ceb:CEB214, which no schema declares: refused before validation."""
    path = CEB_202205 / "samples" / "export" / "CEB214Message.xml"
    (reason,) = rejection(ceb202205, path)
    assert (reason.stage, reason.code) == ("identify", "unknown-type")
    assert reason.line == root_tag_line(path)
    assert f"{{{CEB_NS}}}CEB214 is not a message type" in reason.message


@pytest.mark.parametrize("catalogue_name", ["ceb2018", "ceb202205"])
def test_ceb_unsigned_inventory_is_rejected_for_its_missing_signature(request, catalogue_name):
    """In the import schemas ds:Signature is required on CEB621: the unsigned app example fails, located."""
    catalogue = request.getfixturevalue(catalogue_name)
    (reason,) = rejection(catalogue, CEB_UNSIGNED_APP_EXAMPLE)
    assert (reason.stage, reason.code) == ("validate", "xsd")
    assert reason.line == root_tag_line(CEB_UNSIGNED_APP_EXAMPLE)
    assert reason.path == "/ceb:CEB621Message"
    assert "Missing child element" in reason.message and "Signature" in reason.message


# ---- UK customs declarations on the WCO data model --------------------------------------------------------------


def _party_id(root: etree._Element, party: str) -> str | None:
    """The ID of a party of a declaration, read without the catalogue's XPaths."""
    ns = "urn:wco:datamodel:WCO:DEC-DMS:2"
    return root.findtext(f"{{{ns}}}Declaration/{{{ns}}}{party}/{{{ns}}}ID")


@pytest.mark.parametrize("path", WCO_VALID, ids=_ids(WCO_VALID, WCO_EXAMPLES))
def test_wco_official_example_validates(wco, path):
    """Every example SOURCE.txt calls valid (313 DEC/RES, 2 file-upload) passes, with its LRN as id."""
    envelope = run_stages(wco, path.read_bytes())
    root = envelope.tree.getroot()
    message_type = envelope.message_type
    assert message_type.message_id(root)
    if message_type.name == "WcoDmsMessage":
        expected_sender = _party_id(root, "Submitter") or _party_id(root, "Declarant")
        assert message_type.sender(root) == expected_sender
        assert message_type.field_values(root)["wco_type"] in {"DEC", "DEC-DMS", "RES"}
    else:
        assert message_type.name in {"FileUploadRequest", "FileUploadResponse"}


def test_wco_catalogue_covers_declarations_and_notifications(wco):
    """The one md:MetaData type really carries both inner documents, and most declarations name a sender."""
    kinds, with_sender = set(), 0
    for path in WCO_VALID:
        envelope = run_stages(wco, path.read_bytes())
        if envelope.message_type.name != "WcoDmsMessage":
            continue
        root = envelope.tree.getroot()
        kinds.add(etree.QName(root[-1]).localname if len(root) else None)
        with_sender += bool(envelope.message_type.sender(root))
    assert {"Declaration", "Response"} <= kinds
    # Amendments, cancellations and notifications name no sender: 21 of the 313.
    assert with_sender == 292


def _bad_comment_lines(path: Path) -> range:
    """The lines spanned by the first comment that contains a double hyphen."""
    text = path.read_bytes().decode("utf-8-sig")
    start = 0
    while (start := text.find("<!--", start)) >= 0:
        end = text.find("-->", start + 4)
        if "--" in text[start + 4 : end]:
            return range(text.count("\n", 0, start) + 1, text.count("\n", 0, end) + 2)
        start = end + 3
    raise AssertionError(f"{path} has no comment with a double hyphen")


@pytest.mark.parametrize("name", WCO_NOT_WELL_FORMED)
def test_wco_not_well_formed_example_is_rejected_at_the_bad_comment(wco, name):
    """'--' inside a comment is not XML: refused by the parser, at a line of the offending comment."""
    path = WCO_EXAMPLES / name
    (reason,) = rejection(wco, path)
    assert (reason.stage, reason.code) == ("parse", "parse.malformed")
    assert reason.line in _bad_comment_lines(path)
    assert "not well-formed" in reason.message and "comment" in reason.message.lower()


@pytest.mark.parametrize("name", WCO_NAMESPACELESS_NOTIFICATIONS + WCO_BROKEN_ROOT)
def test_wco_example_with_a_wrong_root_is_an_unknown_type(wco, name):
    """Namespace-less, misnamed or mangled-namespace roots are not the catalogue's md:MetaData."""
    path = WCO_EXAMPLES / name
    (reason,) = rejection(wco, path)
    assert (reason.stage, reason.code) == ("identify", "unknown-type")
    assert reason.line == root_tag_line(path)
    assert "is not a message type of this exchange" in reason.message
    assert "{urn:wco:datamodel:WCO:DocumentMetaData-DMS:2}MetaData " not in reason.message


def test_wco_intentionally_invalid_declaration_is_rejected_by_the_xsd(wco):
    """example_submission_declaration_400 puts an <unknown/> in the Declaration: located by line and path."""
    path = WCO_EXAMPLES / WCO_INVALID_DECLARATION
    (reason,) = rejection(wco, path)
    assert (reason.stage, reason.code) == ("validate", "xsd")
    assert reason.line == lines_containing(path, "<unknown/>")[0]
    assert reason.path.startswith("/md:MetaData/")
    assert "unknown" in reason.message and "not expected" in reason.message


# ---- the validate command ---------------------------------------------------------------------------------------


def test_validate_command_accepts_every_2018_sample():
    """`exchanger validate FILE... --catalogue` reads the onboarded catalogue; no configuration needed."""
    catalogue = ONBOARDING / "ceb-2018.yaml"
    result = CliRunner().invoke(main, ["validate", *map(str, CEB_2018_SAMPLES), "--catalogue", str(catalogue)])
    assert result.exit_code == 0, result.output
    for path in CEB_2018_SAMPLES:
        assert f"{path}: valid {path.stem.removesuffix('Message')}" in result.output


def test_validate_command_reports_each_broken_202205_sample_with_its_location():
    """Broken samples exit 1 and each INVALID line is followed by a located reason."""
    catalogue = ONBOARDING / "ceb-202205.yaml"
    files = [*CEB_202205_SAMPLES, CEB_UNSIGNED_APP_EXAMPLE, CEB_SIGNED_APP_EXAMPLE]
    result = CliRunner().invoke(main, ["validate", *map(str, files), "--catalogue", str(catalogue)])
    assert result.exit_code == 1
    lines = result.output.splitlines()
    invalid = [i for i, line in enumerate(lines) if line.endswith(": INVALID")]
    assert len(invalid) == len(CEB_202205_BROKEN) + 1
    assert sum(": valid " in line for line in lines) == len(CEB_202205_VALID) + 1
    for index in invalid:
        assert re.match(r"\s+\[(validate/xsd|identify/unknown-type)\] \(line \d+", lines[index + 1]), lines[index + 1]


def test_validate_command_in_a_subprocess_over_the_whole_wco_set(tmp_path):
    """The real command line over all 336 WCO examples: 315 valid, 21 invalid, exit 1."""
    catalogue = ONBOARDING / "wco-dms.yaml"
    result = subprocess.run(
        [sys.executable, "-m", "exchanger", "validate", *map(str, WCO_FILES), "--catalogue", str(catalogue)],
        cwd=tmp_path,
        env={**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(PROJECT), os.environ.get("PYTHONPATH")]))},
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert result.returncode == 1, result.stderr
    lines = result.stdout.splitlines()
    assert sum(line.endswith(": INVALID") for line in lines) == len(WCO_BROKEN)
    assert sum(": valid " in line for line in lines) == len(WCO_VALID)
    invalid = {line.removesuffix(": INVALID") for line in lines if line.endswith(": INVALID")}
    assert invalid == {str(WCO_EXAMPLES / name) for name in WCO_BROKEN}


# ---- a schema that does not compile ----------------------------------------------------------------------------

BROKEN_TRANSFER_NODE = CEB_202205 / "xsd" / "海关跨境传输节点报文定义202205.xsd"


def _catalogue_with_broken_include(directory: Path, engine: str) -> Path:
    """A catalogue that onboards the 202205 transfer node, whose xs:include names a file the package lacks."""
    spec = {
        "namespaces": {"dxp": "http://www.chinaport.gov.cn/dxp"},
        "types": {
            "DxpMsgSv": {
                "root": "dxp:DxpMsgSv",
                "xsd": str(BROKEN_TRANSFER_NODE),
                "engine": engine,
                "id": "dxp:SvNo/dxp:MsgId",
                "sender": "dxp:DxpMsg/dxp:TransInfo/dxp:SenderId",
            }
        },
    }
    path = directory / f"broken-{engine}.yaml"
    path.write_text(yaml.safe_dump(spec, allow_unicode=True), encoding="utf-8")
    return path


@pytest.mark.parametrize("engine", ["libxml2", "xmlschema"])
def test_loader_refuses_a_catalogue_whose_xsd_does_not_compile(tmp_path, engine):
    """The refusal names the catalogue, the type, and the XSD file, whichever engine compiles it."""
    catalogue = _catalogue_with_broken_include(tmp_path, engine)
    with warnings_of_missing_include(engine):
        with pytest.raises(ConfigError) as caught:
            load_catalogue(catalogue)
    (problem,) = caught.value.problems
    assert problem.startswith(f"{catalogue} types.DxpMsgSv.xsd: does not compile: ")
    assert BROKEN_TRANSFER_NODE.name in problem


def warnings_of_missing_include(engine: str):
    """The pure-Python validator warns about the include it cannot find (libxml2 stays silent)."""
    if engine == "xmlschema":
        from xmlschema import XMLSchemaIncludeWarning

        return pytest.warns(XMLSchemaIncludeWarning, match="终端节点报文.xsd")
    return contextlib.nullcontext()


def test_validate_command_refuses_a_catalogue_whose_xsd_does_not_compile(tmp_path):
    """The command exits 1 before reading any document, naming the XSD that failed."""
    catalogue = _catalogue_with_broken_include(tmp_path, "libxml2")
    sample = CEB_2018 / "samples" / "import" / "CEB311Message.xml"
    result = CliRunner().invoke(main, ["validate", str(sample), "--catalogue", str(catalogue)])
    assert result.exit_code == 1
    assert "the message catalogue cannot be used:" in result.stderr
    assert BROKEN_TRANSFER_NODE.name in result.stderr
    assert "valid" not in result.stdout
