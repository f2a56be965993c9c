"""End to end on the real broker with the daemon: every GACC 2018 and 202205 CEB type of the onboarding catalogues,
lodged in a DxpMsg, signed with SM2 and again with RSA by the test PKI.

The corpus samples' own signatures are illustrative and never verify (SOURCE.txt: rsa-sha1 values that
match nothing in 2018, an unsupported sm2-sm3 URI in 202205): each sample is stripped of its signature
and signed again, inside (where its schema has a place for a ds:Signature) and outside (the DxpMsg),
by its sender's key of the test PKI. Customs receipts have no place for a signature of their own and
are signed by the DxpMsg alone. Each sample is given guids of its own (its pair's, for an agency's
receipt and what it answers), so that samples sharing the official example guid are not duplicates.

The upstream defects are refused by name: two BaseTransfer blocks (eight 202205 export samples) and
the unsigned CEB621 app example fail their schema and get a CEB900 besides the DxpRep; CEB792's gnum
fails its schema too, but a customs receipt gets no CEB900; CEB214's root is no type (1003).
"""

from __future__ import annotations

import base64
import re
import uuid
from pathlib import Path

import pytest
import yaml
from lxml import etree

from daemon_fixture import Daemon, cli, deploy, login_url, mailbox, new_dead_letters, publish, skip_dead_letters
from dsig_oracle import xmlsec1_accepts_with_ca
from dxp_fixture import CEB, D, ceb_catalogue, dxp_message, official_schema, unsigned
from exchanger.catalogue import SIGNED_BY_ITSELF
from exchanger.config import load_catalogue
from exchanger.dsig.verifier import Verifier
from exchanger.keys.pki import init_demo_pki
from exchanger.receipts import ceb900

pytestmark = [pytest.mark.broker, pytest.mark.e2e]

RELEASES = {
    "2018": ("ceb-2018.yaml", CEB / "2018-gacc-113", "进口业务节点报文.xsd"),
    "202205": ("ceb-202205.yaml", CEB / "202205", "海关跨境进口业务节点报文定义202205.xsd"),
}
DUPLICATE_BASETRANSFER = ["CEB303", "CEB403", "CEB505", "CEB507", "CEB509", "CEB603", "CEB605", "CEB607"]
# The refusals the upstream defects must get: (response code, whether a CEB900 comes too).
BROKEN = {
    "202205": {
        **{f"export/{code}Message.xml": ("1004", True) for code in DUPLICATE_BASETRANSFER},
        "export/CEB792Message.xml": ("1004", False),
        "export/CEB214Message.xml": ("1003", False),
    },
    "2018": {},
}
APP_EXAMPLE = CEB / "app-examples" / "CEB621Message.xml"  # unsigned, where CEB621's schema requires a signature
C = "{http://www.chinaport.gov.cn/ceb}"
GUID = re.compile(rb"[0-9A-Za-z]{8}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{4}-[0-9A-Za-z]{12}")


def pair_of(code: str) -> str:
    """An agency's receipt and the message it answers share a pair: CEB312 and CEB311 are pair CEB311."""
    number = int(code[3:6])
    return f"CEB{number - 1 if number % 2 == 0 and code != 'CEB792' else number}"


def own_guids(document: bytes, code: str) -> bytes:
    """The sample with each guid replaced by one of its pair's own, upper case as the schema asks."""
    pair = pair_of(code)
    return GUID.sub(lambda m: str(uuid.uuid5(uuid.NAMESPACE_URL, f"{pair}/{m.group(0).decode()}")).upper().encode(), document)


class Lodged:
    """One sample as its sender lodges it: the DxpMsg, who sends it, to whom, and what is expected back."""

    def __init__(self, path: Path, catalogue, release: str, broken: tuple[str, bool] | None):
        self.path, self.release, self.broken = path, release, broken
        root = unsigned(path)
        self.code = etree.QName(root).localname.removesuffix("Message")
        root = etree.fromstring(own_guids(etree.tostring(root), self.code))
        self.type = catalogue.for_root(root.tag)
        for party in self._parties(root):
            if party != party.lower():
                # Participant ids are lower case: a sample's code with capitals is written lower case throughout.
                root = etree.fromstring(etree.tostring(root).replace(f">{party}<".encode(), f">{party.lower()}<".encode()))
        self.root = root
        self.guid = root.get("guid")
        if self.type is not None:
            self.sender = self.type.sender(root)
            self.receivers = self.type.receivers(root) or ["customs"]
        else:  # CEB214 (root ceb:CEB214): no type; customs' receipt to the agent it names, as CEB214Message would be
            self.sender = "customs"
            self.receivers = [root.findtext(f"{C}RefundReturn/{C}agentCode")]
        self.cop_msg_id = f"{release}-{path.parent.name}-{self.code}"

    def _parties(self, root) -> list[str]:
        if self.type is None:
            return [root.findtext(f"{C}RefundReturn/{C}agentCode") or ""]
        return [self.type.sender(root) or "", *self.type.receivers(root)]

    @property
    def signs_inside(self) -> bool:
        """Whether the message carries a signature of its own (its schema has a place for one)."""
        return self.type is not None and self.type.signed_by == SIGNED_BY_ITSELF

    def body(self, exchange) -> tuple[bytes, bytes]:
        """The carried message and the DxpMsg, each signed as it should be."""
        inner = etree.tostring(self.root, xml_declaration=True, encoding="UTF-8")
        if self.signs_inside and self.path != APP_EXAMPLE:
            inner = exchange.signer(self.sender).sign_bytes(inner)
        outer = dxp_message(inner, sender=self.sender, receivers=self.receivers, msg_type=etree.QName(self.root).localname,
                            cop_msg_id=self.cop_msg_id)
        return inner, exchange.signer(self.sender).sign_bytes(outer)


def lodgings(release: str) -> list[Lodged]:
    """Every sample of a release, and for 2018 the unsigned app example too."""
    catalogue = load_catalogue(Path(__file__).parent / "onboarding" / RELEASES[release][0])
    samples = RELEASES[release][1] / "samples"
    found = []
    for path in sorted(samples.rglob("*.xml")):
        found.append(Lodged(path, catalogue, release, BROKEN[release].get(path.relative_to(samples).as_posix())))
    if release == "2018":
        found.append(Lodged(APP_EXAMPLE, catalogue, release, ("1004", True)))
    return found


def as_ceb_exchange(release: str, algorithm: str, lodged: list[Lodged]):
    """The deployment edited into a DXP exchange of one release's CEB types, on a fresh PKI of one algorithm."""

    def edit(data: dict, exchange) -> None:
        prefix = data["broker"]["daemon_user"].removesuffix("exchanger")
        catalogue = yaml.safe_load((Path(__file__).parent / "onboarding" / RELEASES[release][0]).read_text("utf-8"))
        parties = sorted({p for item in lodged for p in (item.sender, *item.receivers)} - {"customs"})
        participants = {pid: {"kind": "enterprise", "name": f"Enterprise {pid}", "envelope": "dxp"} for pid in parties}
        participants["customs"] = {"kind": "customs", "name": "Customs", "envelope": "dxp"}
        for pid, spec in participants.items():
            spec["amqp_user"] = f"{prefix}{pid}"
        declarations = [name for name, spec in catalogue["types"].items() if spec.get("sender") != "'customs'"]
        answers = [name for name, spec in catalogue["types"].items() if spec.get("sender") == "'customs'"]
        declarations = [name for name in declarations if name not in ("DxpMsg", "DxpMsgSv")]
        data.update(
            messages=str(ceb_catalogue(exchange.config_path.parent, RELEASES[release][0])),
            envelopes=data["envelopes"],
            participants=participants,
            routes=[
                {"id": "ceb-to-customs", "description": "Enterprises lodge CEB messages with customs.",
                 "types": declarations, "from": ["kind:enterprise"], "to": ["kind:customs"], "deliver": "addressed"},
                {"id": "ceb-receipts-back", "description": "Customs' receipts go back to the enterprise they name.",
                 "types": answers, "from": ["customs"], "to": ["kind:enterprise"], "deliver": "addressed"},
            ],
        )
        identities = [(data["platform"]["id"], "Platform"), *((pid, spec["name"]) for pid, spec in participants.items())]
        init_demo_pki(exchange.keys_dir, identities, algorithm=algorithm, force=True, daemon_user=data["broker"]["daemon_user"])

    return edit


def platform_signed(exchange, body: bytes, algorithm: str) -> None:
    """The platform's signature verifies: by xmlsec1 for RSA; SM2 by the exchange (openssl judges it in test_sm2)."""
    Verifier(exchange.config.signatures).verify(etree.fromstring(body), [exchange.config.platform.certificate])
    if algorithm == "rsa":
        assert xmlsec1_accepts_with_ca(body, exchange.keys_dir / "ca" / "cert.pem")


@pytest.mark.parametrize("algorithm", ["sm2", "rsa"])
@pytest.mark.parametrize("release", list(RELEASES))
def test_every_ceb_type_runs_through_the_daemon_in_dxp(broker, tmp_path, release, algorithm):
    lodged = lodgings(release)
    senders = sorted({item.sender for item in lodged})
    exchange = deploy(broker, tmp_path, edit=as_ceb_exchange(release, algorithm, lodged), users=senders)
    valid = [item for item in lodged if item.broken is None]
    broken = [item for item in lodged if item.broken is not None]
    assert len(valid) == {"2018": 35, "202205": 29}[release] and len(broken) == {"2018": 1, "202205": 10}[release]
    sent = {}
    skip_dead_letters(broker.url)
    daemon = Daemon(exchange, exchange.url)
    try:
        daemon.wait_for("worker.consuming")
        for item in lodged:
            inner, outer = item.body(exchange)
            sent[item.cop_msg_id] = inner
            publish(login_url(exchange, item.sender), outer, exchange.config.registry.get(item.sender).amqp_user)
        daemon.wait_for("message.accepted", len(valid), timeout=180)
        daemon.wait_for("message.rejected", len(broken), timeout=60)
        assert daemon.count("message.accepted") == len(valid), [i.path.name for i in broken]

        # Every copy is a platform-signed DxpMsg carrying what its sender signed, byte for byte.
        parties = sorted({p for item in lodged for p in (item.sender, *item.receivers)})
        boxes = {pid: mailbox(exchange, pid, None, wait=3, url=broker.url) for pid in parties}
        copies = [m for box in boxes.values() for m in box if m.headers.get("x-exchanger-kind") == "forward"]
        assert len(copies) == sum(len(item.receivers) for item in valid)
        carried = set()
        for copy in copies:
            root = etree.fromstring(copy.body)
            assert root.tag == f"{D}DxpMsg"
            assert official_schema("2018").validate(etree.ElementTree(root)), official_schema("2018").error_log
            platform_signed(exchange, copy.body, algorithm)
            carried.add(base64.b64decode(root.findtext(f"{D}Data")))
        assert carried == {sent[item.cop_msg_id] for item in valid}

        # Every DxpMsg is answered by a DxpRep; each refusal by the named code, with a CEB900 where the format failed.
        reps, formats = {}, {}
        for pid, box in boxes.items():
            for message in box:
                kind = message.headers.get("x-exchanger-kind")
                if kind == "receipt":
                    response = etree.fromstring(message.body).find(f"{D}Response")
                    reps[response.findtext(f"{D}OriHead/{D}CopMsgId")] = response.findtext(f"{D}ResponseCode")
                    platform_signed(exchange, message.body, algorithm)
                elif kind == "format-receipt":
                    platform_signed(exchange, message.body, algorithm)
                    found = ceb900.carried(etree.fromstring(message.body))
                    formats[found.findtext(f"{C}MessageReturn/{C}oriCopMsgId")] = (pid, found)
        assert reps == {item.cop_msg_id: (item.broken or ("0000",))[0] for item in lodged}
        import_xsd = etree.XMLSchema(etree.parse(str(RELEASES[release][1] / "xsd" / RELEASES[release][2])))
        assert set(formats) == {item.cop_msg_id for item in broken if item.broken[1]}
        for item in broken:
            if item.broken[1]:
                pid, found = formats[item.cop_msg_id]
                assert pid == item.sender and found.findtext(f"{C}MessageReturn/{C}guid") == item.guid
                assert import_xsd.validate(etree.ElementTree(found)), import_xsd.error_log
                assert "line " in found.findtext(f"{C}MessageReturn/{C}returnInfo")
        letters = new_dead_letters(broker.url)
        assert len(letters) == len(broken)

        # An agency's receipt is correlated with what it answers: the original's trace shows it, and back.
        order = next(item for item in valid if item.code == "CEB311")
        answer = next(item for item in valid if item.code == "CEB312")
        assert answer.type.answers(answer.root) == order.guid
        trace = cli(exchange, exchange.url, "trace", order.guid).stdout
        assert f"CEB311 {order.guid} from {order.sender}" in trace
        assert f"answered by CEB312 {answer.guid} from customs" in trace
        assert f"answers message {order.guid}" in trace
    finally:
        assert daemon.stop() == 0
