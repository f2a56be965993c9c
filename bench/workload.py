"""Signed documents for the benchmark: N documents of a target size, each with its own MessageId.

Sizes are of the document before its signature (the enveloped signature adds about 1.9 KB with an
RSA-2048 certificate, 1.1 KB with ECDSA P-256). Up to the largest declaration the customs
declaration XSD allows (50 goods items, which is about 230 KB with long Chinese goods names,
specifications and remarks), the document is a customs declaration from ent-a to customs that is
not subject to inspection: the exchange makes one copy (customs) and one receipt (ent-a). Above that
it is a road cargo manifest from the road carrier to customs (one copy, one receipt), grown by
consignments, since a manifest may list 9,999 waybills of 999 consignments each.
"""

from __future__ import annotations

import copy
import math
import multiprocessing
import os
from dataclasses import dataclass, field
from pathlib import Path

from lxml import etree

ROOT = Path(__file__).resolve().parents[1]
DECLARATION = ROOT / "samples/customs-declaration/valid.xml"
MANIFEST = ROOT / "samples/cargo-manifest/valid.xml"

CM = "{urn:eport:common:1}"
DEC = "{urn:eport:dec:1}"
MFT = "{urn:eport:mft:1}"

KB = 1024
SIZES = {"2KB": 2 * KB, "20KB": 20 * KB, "200KB": 200 * KB, "5MB": 5 * KB * KB}
# The declaration XSD caps the goods list at 50 items; bigger documents are manifests.
MAX_DECLARATION = 230 * KB

# Realistic text to fill goods names, specifications and remarks (CJK characters are 3 bytes in UTF-8
# and XSD length facets count characters, so Chinese text is what makes a declaration large).
_CJK = (
    "笔记本电脑键盘鼠标显示器打印机服务器交换机路由器硬盘内存条电源适配器数据线充电器耳机音箱摄像头"
    "不锈钢螺栓螺母垫圈轴承齿轮阀门管件法兰密封圈弹簧链条皮带滤芯喷嘴电机减速机泵体叶轮壳体端盖"
)
_HS = ("8471300000", "8471607100", "8471602000", "8528521200", "8443321000", "8517623700", "7318159090")
_OPTIONAL_HEAD = ("ConveyanceName", "VoyageNo", "BillNo", "ContractNo")
_OPTIONAL_GOODS = ("Specification", "DestinationCountry", "DutyMode")


def _cjk(length: int, seed: int) -> str:
    text = (_CJK * (length // len(_CJK) + 2))[seed % len(_CJK):]
    return text[:length]


def _size(root: etree._Element) -> int:
    return len(etree.tostring(root, xml_declaration=True, encoding="UTF-8"))


def _parse(path: Path) -> etree._Element:
    return etree.parse(str(path), etree.XMLParser(remove_blank_text=True)).getroot()


def _goods(template: etree._Element, index: int, *, spec: str | None = None, note: str | None = None,
           name: str | None = None) -> etree._Element:
    item = copy.deepcopy(template)
    item.find(DEC + "ItemNo").text = str(index)
    item.find(DEC + "HSCode").text = _HS[index % len(_HS)]
    item.find(DEC + "GoodsName").text = name or f"{_cjk(6, index)} goods item {index}"
    if spec is not None:
        element = item.find(DEC + "Specification")
        if element is None:
            element = etree.Element(DEC + "Specification")
            item.find(DEC + "GoodsName").addnext(element)
        element.text = spec
    if note is not None:
        etree.SubElement(item, DEC + "Note").text = note
    return item


def declaration(target: int) -> etree._Element:
    """A valid customs declaration (ent-a to customs, no inspection) of about ``target`` bytes unsigned."""
    root = _parse(DECLARATION)
    head = root.find(DEC + "Head")
    goods_list = root.find(DEC + "GoodsList")
    template = copy.deepcopy(goods_list[0])
    for child in list(goods_list):
        goods_list.remove(child)
    if target <= 2600:
        # The smallest realistic declaration: one goods item, no optional fields.
        for name in _OPTIONAL_HEAD:
            head.remove(head.find(DEC + name))
        for name in _OPTIONAL_GOODS:
            template.remove(template.find(DEC + name))
        goods_list.append(_goods(template, 1))
        return root
    goods_list.append(_goods(template, 1))
    base = _size(root)
    goods_list.append(_goods(template, 2))
    item_bytes = _size(root) - base
    count = max(2, min(50, round((target - base) / item_bytes) + 1))
    for index in range(3, count + 1):
        goods_list.append(_goods(template, index))
    missing = target - _size(root)
    if missing > 0:
        # 50 items and still too small: long remarks, then long names and specifications, all in Chinese.
        note_chars = min(1000, math.ceil(missing / 50 / 3))
        spec_chars = min(255, max(0, math.ceil((missing - 50 * 3 * note_chars) / 50 / 3)))
        for index, item in enumerate(goods_list, start=1):
            goods_list.replace(item, _goods(
                template, index, note=_cjk(note_chars, index), spec=_cjk(spec_chars, index) if spec_chars else None))
    return root


def manifest(target: int) -> etree._Element:
    """A valid road cargo manifest (road carrier to customs) of about ``target`` bytes unsigned."""
    root = _parse(MANIFEST)
    transfer = root.find(MFT + "BaseTransfer")
    transfer.find(CM + "SenderId").text = "road"
    head = root.find(MFT + "Head")
    head.find(MFT + "TransportMode").text = "4"
    head.find(MFT + "ConveyanceId").text = "陕A·D2871"
    head.remove(head.find(MFT + "RailDetail"))
    waybills = root.findall(MFT + "Waybill")
    waybill_template = copy.deepcopy(waybills[0])
    consignment_template = copy.deepcopy(waybill_template.find(MFT + "Consignment"))
    for waybill in waybills:
        root.remove(waybill)
    for consignment in waybill_template.findall(MFT + "Consignment"):
        waybill_template.remove(consignment)
    per_waybill = 50

    def make_waybill(number: int) -> etree._Element:
        waybill = copy.deepcopy(waybill_template)
        waybill.find(MFT + "WaybillNo").text = f"CMR24XA{number:08d}"
        for item in range(1, per_waybill + 1):
            consignment = copy.deepcopy(consignment_template)
            consignment.find(MFT + "ItemNo").text = str(item)
            consignment.find(MFT + "GoodsDescription").text = f"{_cjk(12, number + item)} consignment {item}"
            waybill.append(consignment)
        return waybill

    root.append(make_waybill(1))
    base = _size(root)
    root.append(make_waybill(2))
    one = _size(root) - base
    count = max(2, min(9999, round((target - base) / one) + 1))
    for number in range(3, count + 1):
        root.append(make_waybill(number))
    head.find(MFT + "WaybillCount").text = str(count)
    return root


def document(target: int) -> tuple[str, etree._Element]:
    """The sender and the unsigned document for a target size."""
    if target <= MAX_DECLARATION:
        return "ent-a", declaration(target)
    return "road", manifest(target)


def _id_element(root: etree._Element) -> etree._Element:
    return root[0].find(CM + "MessageId")


@dataclass
class Batch:
    """Signed documents ready to publish, with the MessageId of each."""

    label: str
    sender: str
    message_type: str
    document_bytes: int
    message_ids: list[str]
    bodies: list[bytes] = field(repr=False)

    def __len__(self) -> int:
        return len(self.bodies)

    @property
    def signed_bytes(self) -> int:
        """Mean size on the wire (the signed document)."""
        return sum(len(b) for b in self.bodies) // max(1, len(self.bodies))


# ---- signing in a pool: one RSA signature per document is most of the generation cost ---------------------------

_pool_signer = None
_pool_template = None


def _pool_init(key_path: str, cert_path: str, template: bytes) -> None:
    global _pool_signer, _pool_template
    from exchanger.dsig.signer import Signer

    _pool_signer = Signer(Path(key_path), Path(cert_path))
    _pool_template = etree.fromstring(template, etree.XMLParser(huge_tree=True))


def _pool_sign(message_ids: list[str]) -> list[bytes]:
    out = []
    id_element = _id_element(_pool_template)
    for message_id in message_ids:
        id_element.text = message_id
        out.append(etree.tostring(_pool_signer.sign(_pool_template), xml_declaration=True, encoding="UTF-8"))
    return out


def sign_all(key_path: Path, cert_path: Path, template: etree._Element, message_ids: list[str],
             processes: int | None = None) -> list[bytes]:
    """Sign one copy of the template per message id, on all cores."""
    data = etree.tostring(template, xml_declaration=True, encoding="UTF-8")
    processes = processes or min(len(message_ids), os.cpu_count() or 1)
    if processes <= 1 or len(message_ids) < 50:
        _pool_init(str(key_path), str(cert_path), data)
        return _pool_sign(message_ids)
    chunk = math.ceil(len(message_ids) / (processes * 4))
    chunks = [message_ids[i:i + chunk] for i in range(0, len(message_ids), chunk)]
    with multiprocessing.get_context("spawn").Pool(processes, _pool_init, (str(key_path), str(cert_path), data)) as pool:
        return [body for part in pool.map(_pool_sign, chunks) for body in part]


class Generator:
    """Makes batches for one deployment's keys; every MessageId it hands out is new."""

    def __init__(self, keys_dir: Path, run_tag: str):
        self.keys_dir = Path(keys_dir)
        self.run_tag = run_tag
        self._serial = 0
        self._templates: dict[int, tuple[str, etree._Element]] = {}

    def batch(self, size: int, count: int, label: str | None = None) -> Batch:
        """``count`` signed documents of about ``size`` bytes (before signing)."""
        if size not in self._templates:
            self._templates[size] = document(size)
        sender, template = self._templates[size]
        self._serial += 1
        prefix = f"B{self.run_tag}-{self._serial:03d}"
        ids = [f"{prefix}-{index:07d}" for index in range(count)]
        bodies = sign_all(self.keys_dir / sender / "key.pem", self.keys_dir / sender / "cert.pem", template, ids)
        message_type = "CustomsDeclaration" if sender == "ent-a" else "CargoManifest"
        return Batch(label or f"{size // KB}KB", sender, message_type, _size(template), ids, bodies)
