"""An exchange that speaks China E-Port's DXP: GACC CEB message types, an enterprise named by its customs code,
customs taking DXP envelopes, and helpers that build DxpMsg envelopes signed by the test PKI.

The official samples' own signatures are illustrative (SOURCE.txt: none verifies), so every inner CEB
message here is the official sample with its signature removed and signed again with the test PKI (RSA).
"""

from __future__ import annotations

import base64
from dataclasses import dataclass
from pathlib import Path

import yaml
from lxml import etree

from exchange_fixture import CORPUS, PROJECT, ROUTES
from exchanger.config import Config, load_config
from exchanger.config.loader import read_identities
from exchanger.dsig.signer import Signer
from exchanger.keys.pki import init_demo_pki

CEB = CORPUS / "cn-chinaport-ceb"
ONBOARDING = PROJECT / "tests" / "onboarding"
CEB311 = CEB / "2018-gacc-113" / "samples" / "import" / "CEB311Message.xml"
DXP_NS = "http://www.chinaport.gov.cn/dxp"
D = f"{{{DXP_NS}}}"
DS = "{http://www.w3.org/2000/09/xmldsig#}"
OFFICIAL_TERMINAL_NODE = {
    "2018": CEB / "2018-gacc-113" / "xsd" / "终端节点报文.xsd",
    "202205": CEB / "202205" / "xsd" / "海关跨境终端节点报文定义202205.xsd",
}
PROJECT_DXP_XSD = PROJECT / "schemas" / "xsd" / "dxp.xsd"

ENTERPRISE = "1101180326"  # the copCode of the official CEB311 sample: the enterprise's participant id here
OTHER = "3301960001"


def ceb_catalogue(directory: Path, catalogue: str = "ceb-2018.yaml") -> Path:
    """An onboarded GACC catalogue without its DXP types (the envelope catalogue opens DxpMsg itself)."""
    data = yaml.safe_load((ONBOARDING / catalogue).read_text(encoding="utf-8"))
    for name in ("DxpMsg", "DxpMsgSv"):
        data["types"].pop(name, None)
    for spec in data["types"].values():
        spec["xsd"] = str((ONBOARDING / spec["xsd"]).resolve())
    path = directory / catalogue
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def dxp_config_data(directory: Path, keys_dir: Path, catalogue: str = "ceb-2018.yaml") -> dict:
    """routes.yaml for the DXP exchange: CEB types in, customs (and the national hub) taking DXP, enterprises not."""
    data = yaml.safe_load(ROUTES.read_text())
    data["messages"] = str(ceb_catalogue(directory, catalogue))
    data["envelopes"] = str(PROJECT / "schemas" / "envelopes.yaml")
    data["keys_dir"] = str(keys_dir)
    data["participants"] = {
        ENTERPRISE: {"kind": "enterprise", "name": "Import e-commerce platform (CEB311 sample)"},
        OTHER: {"kind": "enterprise", "name": "Another enterprise"},
        "customs": {"kind": "customs", "name": "Xi'an Customs District", "envelope": "dxp"},
        "ciq": {"kind": "inspection", "name": "Shaanxi CIQ"},
    }
    data["routes"] = [
        {
            "id": "ceb-orders-to-customs",
            "description": "Enterprises lodge cross-border e-commerce orders and inventories with customs.",
            "types": ["CEB311", "CEB621"],
            "from": ["kind:enterprise"],
            "to": ["kind:customs"],
            "deliver": "addressed",
        },
        {
            "id": "ceb-orders-copy-to-inspection",
            "description": "Inspection sees the orders customs receives, in the exchange's own envelope.",
            "types": ["CEB311"],
            "from": ["kind:enterprise"],
            "to": ["kind:customs"],
            "deliver": ["ciq"],
            "approval": {"by": "GACC", "ref": "Announcement 2018-113"},
        },
    ]
    return data


@dataclass
class DxpExchange:
    """The DXP exchange's configuration, loaded, with its keys."""

    config_path: Path
    keys_dir: Path
    config: Config

    def signer(self, participant: str) -> Signer:
        """The signer with a participant's (or the platform's) demo key."""
        return Signer(self.keys_dir / participant / "key.pem", self.keys_dir / participant / "cert.pem")


def make_dxp_exchange(directory: Path, data: dict | None = None, user_prefix: str = "", algorithm: str = "rsa") -> DxpExchange:
    """Write and load the DXP exchange's configuration on a fresh demo PKI (RSA unless told ``ec``)."""
    keys_dir = directory / "keys"
    data = data or dxp_config_data(directory, keys_dir)
    if user_prefix:
        for pid, spec in data["participants"].items():
            spec["amqp_user"] = f"{user_prefix}{pid}"
        data["broker"]["daemon_user"] = f"{user_prefix}exchanger"
    path = directory / "routes.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    _, platform, participants, daemon_user = read_identities(path)
    init_demo_pki(keys_dir, [platform, *participants], algorithm=algorithm, daemon_user=daemon_user)
    return DxpExchange(path, keys_dir, load_config(path))


def unsigned(path_or_bytes) -> etree._Element:
    """An official sample's root without the illustrative signature it came with."""
    data = path_or_bytes if isinstance(path_or_bytes, bytes) else Path(path_or_bytes).read_bytes()
    root = etree.fromstring(data)
    for signature in root.findall(f"{DS}Signature"):
        root.remove(signature)
    return root


def signed_ceb(exchange, participant: str = ENTERPRISE, root: etree._Element | None = None) -> bytes:
    """The official CEB311 sample (or root), signed by a participant with the test PKI."""
    root = root if root is not None else unsigned(CEB311)
    return exchange.signer(participant).sign_bytes(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def dxp_message(inner: bytes, *, sender: str = ENTERPRISE, receivers=("customs",), msg_type: str = "CEB311Message",
                cop_msg_id: str = "CEB311-20160308-0001", created: str = "2016-03-08T11:27:01",
                data: str | None = None) -> bytes:
    """An unsigned DxpMsg carrying inner, as an enterprise's terminal node writes it."""
    ids = "".join(f"<dxp:ReceiverId>{r}</dxp:ReceiverId>" for r in receivers)
    payload = data if data is not None else base64.b64encode(inner).decode()
    return f"""<?xml version="1.0" encoding="UTF-8"?>
<dxp:DxpMsg ver="1.0" xmlns:dxp="{DXP_NS}">
  <dxp:TransInfo>
    <dxp:CopMsgId>{cop_msg_id}</dxp:CopMsgId>
    <dxp:SenderId>{sender}</dxp:SenderId>
    <dxp:ReceiverIds>{ids}</dxp:ReceiverIds>
    <dxp:CreatTime>{created}</dxp:CreatTime>
    <dxp:MsgType>{msg_type}</dxp:MsgType>
  </dxp:TransInfo>
  <dxp:Data>{payload}</dxp:Data>
</dxp:DxpMsg>""".encode()


def official_schema(release: str) -> etree.XMLSchema:
    """GACC's terminal-node schema of a release, compiled from the corpus by path."""
    return etree.XMLSchema(etree.parse(str(OFFICIAL_TERMINAL_NODE[release])))


def project_schema() -> etree.XMLSchema:
    """The exchange's own DXP schema."""
    return etree.XMLSchema(etree.parse(str(PROJECT_DXP_XSD)))
