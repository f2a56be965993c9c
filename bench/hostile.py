"""Hostile-input cost: the worst case of each class of costly input, through the real in-process pipeline.

Each class is generated at several sizes up to the configured max_message_bytes, as a participant with a
broker login would send it: a genuine signed document of its own, with its own registered certificate in
KeyInfo, then made hostile. Each case runs in a forked process (the pipeline built once, before the fork)
that measures the CPU seconds of `pipeline.process()` and reports the outcome; a case still running after
CPU_CAP seconds is stopped and reported as over the cap. Also measured: validly signed documents, accepted,
at three sizes, to show that what the exchange accepts costs time linear in its size.
"""

from __future__ import annotations

import copy
import json
import multiprocessing
import os
import resource
import signal
import tempfile
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import yaml
from lxml import etree

from bench import deployment
from bench.workload import CM, MFT, declaration, manifest

HERE = Path(__file__).resolve().parent
# The same classes measured on the pipeline before the structural limits and the capped validation.
BEFORE = json.loads((HERE / "hostile-before.json").read_text()) if (HERE / "hostile-before.json").exists() else None
CPU_CAP = 20.0  # seconds of CPU a single case may use before it is stopped
GOAL = 1.0  # seconds of CPU: every refusal should cost less
DS = "{http://www.w3.org/2000/09/xmldsig#}"
INCLUSIVE_C14N = "http://www.w3.org/TR/2001/REC-xml-c14n-20010315"


@dataclass
class Case:
    """One generated document and what the pipeline made of it."""

    cls: str
    size: int  # bytes on the wire
    cpu_seconds: float | None  # None: stopped at the cap
    outcome: str  # accepted | rejected | over the cap
    reason: str  # stage/code of the first reason


@dataclass
class _Setup:
    config_path: Path
    key: Path
    cert: Path
    user: str
    road_key: Path
    road_cert: Path
    road_user: str
    max_bytes: int


def _setup(directory: Path) -> _Setup:
    """Keys and a configuration made for the run (no broker is needed in-process)."""
    from exchanger.config import load_config

    config_path = directory / "routes.yaml"
    data = deployment._config_data(directory / "keys", "benchhostile-")
    config_path.write_text(yaml.safe_dump(data, sort_keys=False, allow_unicode=True))
    deployment.exchanger_cli(config_path, deployment.BASE_URL, "keys", "init", "--algorithm", "rsa")
    config = load_config(config_path)
    keys = config.keys_dir
    return _Setup(config_path, keys / "ent-a" / "key.pem", keys / "ent-a" / "cert.pem",
                  config.registry.get("ent-a").amqp_user, keys / "road" / "key.pem", keys / "road" / "cert.pem",
                  config.registry.get("road").amqp_user, config.limits.max_message_bytes)


# ---- generators: each returns the bytes of one hostile document of about `size` bytes ---------------------------

def _signed(setup: _Setup, root: etree._Element, *, road: bool = False) -> etree._Element:
    from exchanger.dsig.signer import Signer

    signer = Signer(setup.road_key, setup.road_cert) if road else Signer(setup.key, setup.cert)
    return signer.sign(root)


def _bytes(root: etree._Element) -> bytes:
    return etree.tostring(root, xml_declaration=True, encoding="UTF-8")


def _insert_before_signature(signed: bytes, payload: bytes) -> bytes:
    at = signed.rindex(b"<ds:Signature")
    return signed[:at] + payload + signed[at:]


def _fit(make: Callable[[int], bytes], size: int) -> bytes:
    """make(count) with about the largest count whose result is at most size bytes (sizes grow linearly in count)."""
    empty, thousand = len(make(0)), len(make(1000))
    count = max(1, int((size - empty) * 1000 / (thousand - empty)))
    while True:
        body = make(count)
        if len(body) <= size or count == 1:
            return body
        count = max(1, int(count * 0.99))


def _namespaces_in_scope(setup, base: bytes, size: int) -> bytes:
    """Many namespace declarations on the root, SignedInfo naming inclusive c14n: all of them are canonicalized
    with it, before its SignatureValue (here no longer valid) can be checked."""
    base = base.replace(b'Algorithm="http://www.w3.org/2001/10/xml-exc-c14n#"', f'Algorithm="{INCLUSIVE_C14N}"'.encode(), 1)
    end = base.index(b">", base.index(b"<dec:CustomsDeclaration"))
    return _fit(lambda n: base[:end] + b"".join(b' xmlns:n%d="urn:n:%d"' % (i, i) for i in range(n)) + base[end:],
                size)


def _namespaces_total(setup, base: bytes, size: int) -> bytes:
    """Many elements, each declaring its own namespace: few in scope at any one, many in all."""
    return _fit(lambda n: _insert_before_signature(base, b"".join(b'<q:x xmlns:q="urn:q:%d"/>' % i for i in range(n))),
                size)


def _attributes(setup, base: bytes, size: int) -> bytes:
    """One element with as many attributes as fit."""
    end = base.index(b">", base.index(b"<dec:CustomsDeclaration"))
    return _fit(lambda n: base[:end] + b"".join(b' a%d=""' % i for i in range(n)) + base[end:], size)


def _depth(setup, base: bytes, size: int) -> bytes:
    """Elements nested 200 deep (libxml2 itself stops at 256), the rest of the size in empty elements inside."""
    return _fit(lambda n: _insert_before_signature(base, b"<d>" * 200 + b"<f/>" * n + b"</d>" * 200), size)


def _elements(setup, base: bytes, size: int) -> bytes:
    """As many empty elements as fit."""
    return _fit(lambda n: _insert_before_signature(base, b"<e/>" * n), size)


def _text(setup, base: bytes, size: int) -> bytes:
    """One text node as long as fits (libxml2 itself refuses one over 10,000,000 bytes)."""
    return _fit(lambda n: _insert_before_signature(base, b"<t>" + b"x" * min(n, 9_000_000) + b"</t>"), size)


def _signed_info(setup, base: bytes, size: int) -> bytes:
    """A SignedInfo swollen with comments (each small: no text limit applies)."""
    at = base.index(b"</ds:SignedInfo>")
    return _fit(lambda n: base[:at] + (b"<!--" + b"s" * 40 + b"-->") * n + base[at:], size)


def _base64(name: str) -> Callable:
    def generate(setup, base: bytes, size: int) -> bytes:
        start = base.index(b">", base.index(b"<ds:" + name.encode())) + 1
        end = base.index(b"</ds:" + name.encode())
        return _fit(lambda n: base[:start] + b"A" + b" " * n + b"!" + base[end:], size)

    generate.__doc__ = f"White space, then a character that is not base64, in {name}."
    return generate


def _markup_in_texts(setup, base: bytes, size: int) -> bytes:
    """As many small elements as fit, each a text with a processing instruction inside it."""
    return _fit(lambda n: _insert_before_signature(base, b"<m>1<?p?>2</m>" * n), size)


def _comments_in_one_text(setup, base: bytes, size: int) -> bytes:
    """One element whose text is split by as many comments as fit."""
    return _fit(lambda n: _insert_before_signature(base, b"<m>" + b"1<!---->" * n + b"</m>"), size)


def _key_name(setup, base: bytes, size: int) -> bytes:
    """A whole document's worth of text in ds:KeyName, beside the signer's certificate: unsigned content."""
    at = base.index(b"<ds:X509Data")
    return _fit(lambda n: base[:at] + b"<ds:KeyName>" + b"k" * n + b"</ds:KeyName>" + base[at:], size)


def _unexpected_attributes(setup, base: bytes, size: int) -> bytes:
    """Every element of a manifest (repeated waybills) carrying as many unexpected attributes as allowed."""
    return _manifest_with(setup, size, lambda waybill: [
        element.attrib.update({f"a{i}": "" for i in range(64)}) for element in waybill.iter(etree.Element)])


def _xsd_errors(setup, base: bytes, size: int) -> bytes:
    """A wrong value in every consignment of a large manifest: one XSD error each."""
    return _manifest_with(setup, size, lambda waybill: [
        setattr(count, "text", "x") for count in waybill.iter(MFT + "PackageCount")])


def _manifest_with(setup, size: int, spoil) -> bytes:
    root = _signed(setup, manifest(min(size, 64 * 1024)), road=True)
    waybill = copy.deepcopy(root.find(MFT + "Waybill"))
    spoil(waybill)
    one = len(etree.tostring(waybill))
    signature = root.find(DS + "Signature")
    for _ in range(max(1, (size - len(_bytes(root))) // one)):
        signature.addprevious(copy.deepcopy(waybill))
    return _bytes(root)


CLASSES: dict[str, Callable] = {
    "namespace declarations in scope": _namespaces_in_scope,
    "namespace declarations in total": _namespaces_total,
    "attributes on one element": _attributes,
    "depth": _depth,
    "elements": _elements,
    "text node size": _text,
    "SignedInfo size": _signed_info,
    "bad base64 after white space (SignatureValue)": _base64("SignatureValue"),
    "bad base64 after white space (DigestValue)": _base64("DigestValue"),
    "markup inside many texts": _markup_in_texts,
    "comments splitting one text": _comments_in_one_text,
    "unsigned text in ds:KeyName": _key_name,
    "unexpected attributes (validation)": _unexpected_attributes,
    "many XSD errors (validation)": _xsd_errors,
}


def _accepted(setup, size: int, inclusive: bool) -> bytes:
    """A valid manifest of about size bytes, correctly signed by its sender; inclusive c14n of a SignedInfo with
    64 namespaces in scope at SignedInfo when asked (the most the default limits allow: the root's 2, 61 more and
    ds), exclusive c14n as the bundled signer makes it otherwise."""
    from exchanger.dsig.signer import Signer

    root = manifest(size)
    if inclusive:
        extra = etree.Element(root.tag, nsmap={**root.nsmap, **{f"n{i}": f"urn:n:{i}" for i in range(61)}})
        extra.extend(list(root))
        root = extra
    signer = Signer(setup.road_key, setup.road_cert)
    signed = signer.sign(root)
    if inclusive:
        info = signed.find(f"{DS}Signature/{DS}SignedInfo")
        info.find(DS + "CanonicalizationMethod").set("Algorithm", INCLUSIVE_C14N)
        import base64

        value = signer._signature_value(etree.tostring(info, method="c14n", exclusive=False, with_comments=False))
        signed.find(f"{DS}Signature/{DS}SignatureValue").text = base64.b64encode(value).decode()
    return _bytes(signed)


# ---- measuring ---------------------------------------------------------------------------------------------------

_PIPELINE = None


def _run_one(body: bytes, user: str, conn) -> None:
    """In a forked child: process one document, send back (CPU seconds, outcome, reason)."""
    from exchanger.envelope import Inbound

    resource.setrlimit(resource.RLIMIT_CPU, (int(CPU_CAP) + 1, int(CPU_CAP) + 2))
    inbound = Inbound(body, user_id=user)
    began = time.process_time()
    disposition = _PIPELINE.process(inbound)
    spent = time.process_time() - began
    reason = disposition.reasons[0] if disposition.reasons else None
    conn.send((spent, disposition.outcome, f"{reason.stage}/{reason.code}" if reason else ""))
    conn.close()


def _measure(cls: str, body: bytes, user: str) -> Case:
    parent, child = multiprocessing.Pipe(duplex=False)
    process = multiprocessing.get_context("fork").Process(target=_run_one, args=(body, user, child))
    process.start()
    child.close()
    process.join(CPU_CAP * 10)
    if process.is_alive():
        os.kill(process.pid, signal.SIGKILL)
        process.join()
    try:
        spent, outcome, reason = parent.recv()
        return Case(cls, len(body), spent, outcome, reason)
    except EOFError:  # the child was stopped at the CPU cap
        pass
    return Case(cls, len(body), None, "over the cap", f"stopped after {CPU_CAP:.0f} s of CPU")


def sizes(max_bytes: int) -> list[int]:
    """The sizes each class is generated at: up to max_message_bytes, and just under it."""
    return [16 * 1024, 60 * 1024, 1024 * 1024, max_bytes // 2, max_bytes - 4096]


def run(say=print, *, quick: bool = False) -> dict:
    """Generate and measure every class; return the results as plain data."""
    global _PIPELINE
    from exchanger import logging as exchange_logging
    from exchanger.config import load_config
    from exchanger.pipeline import build_pipeline

    with tempfile.TemporaryDirectory(prefix="exchanger-bench-hostile-") as tmp:
        setup = _setup(Path(tmp))
        exchange_logging.configure("error", json=True, stream=open(os.devnull, "w"))
        config = load_config(setup.config_path)
        _PIPELINE = build_pipeline(config)
        base = _bytes(_signed(setup, declaration(2600)))
        cases = []
        for cls, generate in CLASSES.items():
            user = setup.road_user if "validation" in cls else setup.user
            for size in sizes(setup.max_bytes)[: 2 if quick else None]:
                case = _measure(cls, generate(setup, base, size), user)
                cases.append(case)
                spent = "over the cap" if case.cpu_seconds is None else f"{case.cpu_seconds:.3f} s"
                say(f"hostile: {cls}, {case.size:,} B: {spent}, {case.outcome} {case.reason}")
        accepted = []
        for inclusive in (False, True):
            for size in (1024 * 1024, 4 * 1024 * 1024, setup.max_bytes - 64 * 1024)[: 2 if quick else None]:
                label = "accepted, inclusive c14n, 64 namespaces in scope" if inclusive else "accepted, exclusive c14n"
                case = _measure(label, _accepted(setup, size, inclusive), setup.road_user)
                accepted.append(case)
                say(f"hostile: {label}, {case.size:,} B: {case.cpu_seconds} s, {case.outcome} {case.reason}")
        _PIPELINE = None
    return {"cases": [asdict(c) for c in cases], "accepted": [asdict(c) for c in accepted], "cpu_cap": CPU_CAP,
            "goal": GOAL, "max_message_bytes": setup.max_bytes}


def slowest(results: dict) -> list[dict]:
    """The slowest case of each class (a case over the cap counts as the slowest)."""
    worst: dict[str, dict] = {}
    for case in results["cases"]:
        known = worst.get(case["cls"])
        cost = float("inf") if case["cpu_seconds"] is None else case["cpu_seconds"]
        if known is None or cost > (float("inf") if known["cpu_seconds"] is None else known["cpu_seconds"]):
            worst[case["cls"]] = case
    return list(worst.values())


def _seconds(case: dict) -> str:
    return f"> {CPU_CAP:.0f} (stopped)" if case["cpu_seconds"] is None else f"{case['cpu_seconds']:.3f}"


def markdown(results: dict) -> str:
    """The RESULTS.md section."""
    lines = [
        "## Hostile-input cost",
        "",
        "Produced by `bin/bench --hostile` (also part of the default run). Each class of costly input is generated "
        f"at {', '.join(f'{s:,}' for s in sizes(results['max_message_bytes']))} bytes (max_message_bytes is "
        f"{results['max_message_bytes']:,}) by a sender with its own registered certificate in KeyInfo, and run "
        "through the in-process pipeline (parse to sign) in a forked process; CPU seconds of `process()`. "
        f"Goal: every refusal under {GOAL:.0f} s of CPU.",
        "",
        "| class | slowest refusal (CPU s) | at size (B) | refused by | under the goal | before the limits |",
        "|---|---|---|---|---|---|",
    ]
    before = {case["cls"]: case for case in slowest(results["before"])} if results.get("before") else {}
    for case in slowest(results):
        ok = case["cpu_seconds"] is not None and case["cpu_seconds"] < GOAL and case["outcome"] == "rejected"
        old = before.get(case["cls"])
        then = ""
        if old:
            spent = f"{_seconds(old)} s" if old["cpu_seconds"] is not None else f"over {CPU_CAP:.0f} s (stopped)"
            then = f"{spent} at {old['size']:,} B" + (f", {old['reason'] or old['outcome']}" if old["cpu_seconds"] else "")
        lines.append(f"| {case['cls']} | {_seconds(case)} | {case['size']:,} | {case['reason'] or case['outcome']} | "
                     f"{'yes' if ok else '**no**'} | {then} |")
    if before:
        lines += ["", f"Before the limits: {results['before'].get('note', '')}"]
    lines += ["", "Accepted, validly signed documents at the limits (cost should grow linearly with size):", "",
              "| document | size (B) | CPU s | outcome | µs per KB |", "|---|---|---|---|---|"]
    for case in results["accepted"]:
        per_kb = "" if case["cpu_seconds"] is None else f"{case['cpu_seconds'] * 1e6 / (case['size'] / 1024):.0f}"
        lines.append(f"| {case['cls']} | {case['size']:,} | {_seconds(case)} | {case['outcome']} {case['reason']} | "
                     f"{per_kb} |")
    return "\n".join(lines) + "\n"
