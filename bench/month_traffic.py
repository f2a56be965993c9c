"""A month of traffic through the exchange's real stages into a fresh message log, then the month's report.

Every message is a real document, signed by its sender's demo key, judged by the real pipeline in
this process (parse, XSD validation, signature verification, authentication, routing, the
platform's signature on each copy, the duplicate look-up against the log), and its records are
the ones the daemon writes (journal/events.py). Only the clock is simulated: each message arrives
at a moment of the month (working hours and weekdays busier, a slow rise over the month), its
decision is stamped after the processing time it really took, and its copies are settled after a
simulated broker confirmation (a few milliseconds, now and then much longer).

The mix: declarations, inspection declarations, forex records from two enterprises (one much
busier), manifests from the rail, air and road carriers, inspection certificates, rebate data and
business receipts from the agencies; about one message in ten refused, for several reasons (an XSD
violation, no signature, a document altered after signing, a sender posing as another, bytes that
are not XML), and a few resent (answered as duplicates).

    .venv/bin/python -m bench.month_traffic [--month 2026-11] [--messages 4000] [--out DIR] [--journal URL]

Prints the traffic made, then the PDF's page count and the report's build time.
"""

from __future__ import annotations

import argparse
import calendar
import copy
import os
import random
import sys
import tempfile
import time
from dataclasses import dataclass, replace
from datetime import datetime, timezone
from pathlib import Path

from lxml import etree

from bench.journal import make_config
from exchanger import logging as exchange_logging
from exchanger.dsig.signer import Signer
from exchanger.envelope import Inbound
from exchanger.journal.events import describe, processing_events, settlement_events
from exchanger.journal.period import stamp
from exchanger.journal.recorder import stage_names
from exchanger.journal.records import RECEIVED
from exchanger.journal.store import open_store
from exchanger.pipeline import build_pipeline
from exchanger.reports import build_report, parse_report_period
from exchanger.reports.certificates import config_certificates

ROOT = Path(__file__).resolve().parents[1]
SAMPLES = ROOT / "samples"
CM = "{urn:eport:common:1}"
BATCH = 250  # records reach the log in batches, as the daemon's writer commits them

# (weight, sample, sender, receiver or None to keep the sample's, {element local name: text})
ACCEPTED_MIX = [
    (26, "customs-declaration/valid.xml", "ent-a", None, {}),
    (9, "customs-declaration/valid-with-inspection.xml", "ent-a", None, {}),
    (10, "customs-declaration/valid.xml", "ent-b", None, {}),
    (4, "customs-declaration/valid-with-inspection.xml", "ent-b", None, {}),
    (6, "inspection-declaration/valid.xml", "ent-a", None, {}),
    (3, "inspection-declaration/valid.xml", "ent-b", None, {}),
    (4, "forex-verification/valid.xml", "ent-a", None, {}),
    (2, "forex-verification/valid.xml", "ent-b", None, {}),
    (7, "cargo-manifest/valid.xml", "rail", None, {}),
    (4, "cargo-manifest/valid.xml", "road", None, {"TransportMode": "4"}),
    (3, "cargo-manifest/valid.xml", "air", None, {"TransportMode": "5"}),
    (5, "inspection-certificate/valid.xml", "ciq", None, {}),
    (4, "export-rebate-data/valid.xml", "customs", None, {}),
    (8, "agency-receipt/valid.xml", "customs", "ent-a", {}),
    (3, "agency-receipt/valid.xml", "customs", "ent-b", {}),
    (2, "agency-receipt/valid.xml", "ciq", "ent-a", {}),
]
BROKEN = ["customs-declaration/broken.xml", "inspection-declaration/broken.xml", "cargo-manifest/broken.xml",
          "forex-verification/broken.xml"]
# What goes wrong, and how often, per message: the rest is the accepted mix.
FAULTS = [("invalid", 0.045), ("unsigned", 0.02), ("tampered", 0.01), ("impostor", 0.01), ("not-xml", 0.005),
          ("resent", 0.02)]


@dataclass
class Made:
    """What was sent and how the exchange decided it."""

    messages: int = 0
    accepted: int = 0
    rejected: int = 0
    duplicates: int = 0
    records: int = 0
    seconds: float = 0.0


class Documents:
    """Documents made from the bundled samples: a message id of their own, a sender, signed by that sender."""

    def __init__(self, keys_dir: Path):
        self.keys_dir = keys_dir
        self.signers: dict[str, Signer] = {}
        self.templates = {}
        self.serial = 0

    def signer(self, participant: str) -> Signer:
        if participant not in self.signers:
            self.signers[participant] = Signer(self.keys_dir / participant / "key.pem",
                                               self.keys_dir / participant / "cert.pem")
        return self.signers[participant]

    def unsigned(self, sample: str, sender: str, receiver: str | None, fields: dict, day: datetime) -> bytes:
        if sample not in self.templates:
            self.templates[sample] = etree.parse(str(SAMPLES / sample), etree.XMLParser(remove_blank_text=True)).getroot()
        root = copy.deepcopy(self.templates[sample])
        self.serial += 1
        root.find(f".//{CM}MessageId").text = f"{sender.upper()}-{day:%Y%m%d}-{self.serial:06d}"
        root.find(f".//{CM}SenderId").text = sender
        if receiver:
            root.find(f".//{CM}ReceiverId").text = receiver
        for name, text in fields.items():
            for element in root.iter(f"{{*}}{name}"):
                element.text = text
        return etree.tostring(root, xml_declaration=True, encoding="UTF-8")

    def signed(self, sample: str, sender: str, receiver: str | None, fields: dict, day: datetime,
               signer: str | None = None) -> bytes:
        return self.signer(signer or sender).sign_bytes(self.unsigned(sample, sender, receiver, fields, day))


def arrivals(year: int, month: int, count: int, rng: random.Random) -> list[float]:
    """``count`` moments of the month, busier on weekdays and in Beijing working hours, rising slowly."""
    days = calendar.monthrange(year, month)[1]
    day_weights = [
        (0.35 if datetime(year, month, d + 1).weekday() >= 5 else 1.0) * (1 + 0.3 * d / days) for d in range(days)
    ]
    # UTC hours: 00-10 UTC is 08-18 in China.
    hour_weights = [6, 9, 10, 10, 9, 7, 9, 10, 9, 7, 4, 2, 1.2, 0.8, 0.6, 0.5, 0.5, 0.5, 0.6, 0.7, 0.8, 1, 1.5, 3]
    start = datetime(year, month, 1, tzinfo=timezone.utc).timestamp()
    moments = []
    for day in rng.choices(range(days), weights=day_weights, k=count):
        hour = rng.choices(range(24), weights=hour_weights)[0]
        moments.append(start + day * 86400 + hour * 3600 + rng.random() * 3600)
    return sorted(moments)


def confirm_seconds(rng: random.Random) -> float:
    """How long the broker takes to confirm a message's publications: milliseconds, with a long tail."""
    if rng.random() < 0.01:
        return rng.uniform(0.5, 4.0)  # a slow moment: a queue's leader moving, a disk flush
    return rng.lognormvariate(-4.6, 0.6)  # about 10 ms


def generate(config, store, year: int, month: int, count: int, seed: int = 2026) -> Made:
    """Run ``count`` messages through the real pipeline and write their records, time-stamped over the month."""
    rng = random.Random(seed)
    documents = Documents(config.keys_dir)
    pipeline = build_pipeline(config, receipts=store)
    stages = stage_names(pipeline)
    keep = config.journal.keep_originals
    made, pending = Made(), []
    sent, unwritten = [], []  # (bytes, user) of accepted messages in the log, and of those still to be written
    weights = [w for w, *_ in ACCEPTED_MIX]
    began = time.perf_counter()
    for at in arrivals(year, month, count, rng):
        day = datetime.fromtimestamp(at, timezone.utc)
        fault = next((name for name, p in FAULTS if rng.random() < p), None)
        _, sample, sender, receiver, fields = rng.choices(ACCEPTED_MIX, weights=weights)[0]
        user = sender
        if fault == "resent" and sent:
            body, user = rng.choice(sent)
        elif fault == "invalid":
            sample = rng.choice(BROKEN)
            sender = "rail" if sample.startswith("cargo") else rng.choice(["ent-a", "ent-a", "ent-b"])
            user, body = sender, documents.signed(sample, sender, None, {}, day)
        elif fault == "unsigned":
            body = documents.unsigned(sample, sender, receiver, fields, day)
        elif fault == "tampered":
            body = documents.signed(sample, sender, receiver, fields, day).replace(b"</cm:SendTime>", b"</cm:SendTime>\n", 1)
            body = body.replace(b"<cm:Version>1.0</cm:Version>", b"<cm:Version>1.1</cm:Version>", 1)
        elif fault == "impostor":
            user = "ent-b" if sender != "ent-b" else "ent-a"  # logged in as one, the document signed by another
            body = documents.signed(sample, sender, receiver, fields, day)
        elif fault == "not-xml":
            body = b"DECLARATION;" + str(documents.serial).encode() + b";see attached spreadsheet\n"
        else:
            body = documents.signed(sample, sender, receiver, fields, day, signer=sender)
        inbound = Inbound(body=body, user_id=user, received_at=at)
        t0 = time.perf_counter()
        disposition = pipeline.process(inbound)
        decided = at + (time.perf_counter() - t0)
        entry = describe(inbound, disposition, config.version)
        settled = decided + confirm_seconds(rng)
        events = [e if e.kind == RECEIVED else replace(e, at=stamp(decided))
                  for e in processing_events(inbound, disposition, entry, stages, keep)]
        events += [replace(e, at=stamp(settled)) for e in settlement_events(entry)]
        pending.extend(events)
        made.messages += 1
        if disposition.outcome == "accepted":
            made.accepted += 1
            unwritten.append((body, user))
        elif disposition.outcome == "rejected":
            made.rejected += 1
        else:
            made.duplicates += 1
        if len(pending) >= BATCH:
            made.records += len(store.append(pending))
            pending = []
            sent.extend(unwritten)  # in the log now: a resend of one of them is a duplicate
            unwritten = []
    if pending:
        made.records += len(store.append(pending))
    made.seconds = time.perf_counter() - began
    return made


def main(argv: list[str] | None = None) -> int:
    """Generate the month, build its report, print the page count and the build time."""
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--month", default="2026-11", help="the month to fill, YYYY-MM (default 2026-11)")
    parser.add_argument("--messages", type=int, default=4000, help="messages in the month (default 4000)")
    parser.add_argument("--out", type=Path, default=None, help="where to write the report (default: a temporary folder)")
    parser.add_argument("--journal", default=None,
                        help="a fresh message log to fill (default: a new SQLite file); e.g. postgresql://…")
    args = parser.parse_args(argv)
    period = parse_report_period(args.month)
    if period.is_month is False:
        parser.error("--month takes a month, YYYY-MM")
    # The pipeline logs each refusal as the daemon does; here they are counted, not read.
    exchange_logging.configure("info", json=True, stream=open(os.devnull, "w"))
    with tempfile.TemporaryDirectory(prefix="exchanger-month-") as directory:
        directory = Path(directory)
        print(f"making the demo PKI and the configuration in {directory} …", flush=True)
        config = make_config(directory)
        url = args.journal or f"sqlite:///{directory / 'journal.db'}"
        store = open_store(url)
        if store.bounds()[2]:
            print(f"error: the message log {url} is not empty: give a fresh one", file=sys.stderr)
            return 2
        made = generate(config, store, period.first.year, period.first.month, args.messages)
        print(f"{made.messages} messages of {period.title} through the pipeline in {made.seconds:.1f} s "
              f"({made.messages / made.seconds:.0f}/s): {made.accepted} accepted, {made.rejected} rejected, "
              f"{made.duplicates} duplicates; {made.records} log records")
        out = args.out or directory / "report"
        cpu = time.process_time()
        files = build_report(store, period, out, certificates=config_certificates(config), source=url.split("?")[0])
        cpu = time.process_time() - cpu
        store.close()
        figures = files.figures
        print(f"report: {figures.messages} messages, {figures.accepted} accepted, {figures.rejected} rejected, "
              f"{figures.duplicates} duplicates, {figures.copies} copies; "
              f"latency p50 {_ms(figures.latency_delivered[50])}, p95 {_ms(figures.latency_delivered[95])}, "
              f"p99 {_ms(figures.latency_delivered[99])}")
        print("top rejection reasons: " + "; ".join(f"{r.stage}/{r.code} {r.messages}" for r in figures.reasons[:5]))
        print(f"PDF: {files.pages} pages; report (HTML and PDF) built in {files.seconds:.2f} s ({cpu:.2f} s of CPU)")
        if args.out:
            print(f"written: {files.html} and {files.pdf}")
    return 0


def _ms(seconds: float | None) -> str:
    return "-" if seconds is None else f"{seconds * 1000:.0f} ms"


if __name__ == "__main__":
    sys.exit(main())
