"""Cost of the message log per message, on SQLite and on PostgreSQL.

Measures, for each store:
  * what logging adds on the daemon's threads: ``Recorder.processed`` and the Deduplicate look-up on
    the compute thread, ``Recorder.settled`` on the I/O thread (microseconds per message);
  * how long a message's records take to be committed when the writer is idle (the window in
    which a duplicate can still be forwarded again);
  * the records per second one writer sustains (a backlog of accepted two-copy declarations:
    received, routed, two delivered, receipt with its bytes = 5 records per message);
  * the same with several writer processes appending to the one chain at once.
Builds its own demo PKI in a temporary folder; needs no broker. PostgreSQL is used at --postgres
(default postgresql://postgres@127.0.0.1:5432/postgres), in a database made for the run and dropped.
"""

from __future__ import annotations

import argparse
import multiprocessing
import platform
import secrets
import statistics
import sys
import tempfile
import time
from dataclasses import replace
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

import yaml

from exchanger import logging as exchange_logging
from exchanger.config import load_config
from exchanger.config.loader import read_identities
from exchanger.dsig.signer import Signer
from exchanger.envelope import Envelope, Inbound
from exchanger.journal.recorder import open_recorder
from exchanger.journal.store import open_store
from exchanger.keys.pki import init_demo_pki
from exchanger.pipeline import build_pipeline
from exchanger.pipeline.stages.deduplicate import Deduplicate

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples/customs-declaration/valid-with-inspection.xml"


def make_config(directory: Path):
    """The bundled configuration on a demo PKI made in ``directory``."""
    data = yaml.safe_load((ROOT / "routes.yaml").read_text())
    data["keys_dir"] = str(directory / "keys")
    data["messages"] = str(ROOT / data["messages"])
    data["envelopes"] = str(ROOT / data["envelopes"])
    path = directory / "routes.yaml"
    path.write_text(yaml.safe_dump(data, sort_keys=False))
    keys_dir, platform_identity, participants, daemon_user = read_identities(path)
    init_demo_pki(keys_dir, [platform_identity, *participants], daemon_user=daemon_user)
    return load_config(path)


class Messages:
    """One real accepted declaration through the real pipeline, varied by message id and bytes."""

    def __init__(self, config):
        self.config = config
        self.pipeline = build_pipeline(config)
        signer = Signer(config.keys_dir / "ent-a/key.pem", config.keys_dir / "ent-a/cert.pem")
        self.body = signer.sign_bytes(SAMPLE.read_bytes())
        self.disposition = self.pipeline.process(Inbound(self.body, user_id="ent-a"))
        assert self.disposition.outcome == "accepted", self.disposition.reasons
        self.envelope = Envelope(Inbound(self.body, user_id="ent-a"))
        for item in self.pipeline.stages:
            stage = item[0] if isinstance(item, tuple) else item
            stage(self.envelope)
            if stage.name == "authenticate":
                break

    def one(self, tag: str):
        """A distinct message: its own bytes (so its own digest) and message id, the same shape."""
        inbound = Inbound(self.body + f"<!-- {tag} -->".encode(), user_id="ent-a")
        context = dict(self.disposition.context, message_id=f"BENCH-{tag}")
        return inbound, replace(self.disposition, context=context)


def with_database(url: str, name: str) -> str:
    """The same server, another database."""
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


def per_message_cost(messages: Messages, url: str, count: int) -> dict:
    """Microseconds the daemon's threads spend on the log per message, and time until committed."""
    recorder = open_recorder(replace(messages.config, journal=replace(messages.config.journal, url=url)))
    deduplicate = Deduplicate(recorder)
    # Wall time includes waiting for the GIL while the writer thread runs; thread CPU time is the call's own cost.
    wall = {"lookup": [], "processed": [], "settled": []}
    cpu = {"lookup": [], "processed": [], "settled": []}
    durable = []

    def timed(name, call, *args):
        wall_began, cpu_began = time.perf_counter(), time.thread_time()
        result = call(*args)
        wall[name].append(time.perf_counter() - wall_began)
        cpu[name].append(time.thread_time() - cpu_began)
        return result

    for index in range(count):
        inbound, disposition = messages.one(f"cost-{secrets.token_hex(4)}-{index}")
        messages.envelope.message_id = disposition.context["message_id"]
        timed("lookup", deduplicate, messages.envelope)
        entry = timed("processed", recorder.processed, inbound, disposition, messages.pipeline)
        began = time.perf_counter()
        timed("settled", recorder.settled, entry)
        recorder.flush()
        durable.append(time.perf_counter() - began)
    recorder.close()

    def us(samples):
        return round(statistics.median(samples) * 1e6)

    return {
        "dedupe look-up (compute thread) us, CPU/wall": f"{us(cpu['lookup'])} / {us(wall['lookup'])}",
        "processed() (compute thread) us, CPU/wall": f"{us(cpu['processed'])} / {us(wall['processed'])}",
        "settled() (I/O thread) us, CPU/wall": f"{us(cpu['settled'])} / {us(wall['settled'])}",
        "settled to committed, idle writer ms": round(statistics.median(durable) * 1e3, 2),
    }


def sustained(messages: Messages, url: str, count: int) -> dict:
    """Records per second one writer commits for a backlog of messages submitted as fast as possible."""
    recorder = open_recorder(replace(messages.config, journal=replace(messages.config.journal, url=url)))
    prepared = [messages.one(f"load-{secrets.token_hex(4)}-{index}") for index in range(count)]
    began, cpu_began = time.perf_counter(), time.process_time()
    for inbound, disposition in prepared:
        recorder.settled(recorder.processed(inbound, disposition, messages.pipeline))
    recorder.flush()
    elapsed, cpu = time.perf_counter() - began, time.process_time() - cpu_began
    status = recorder.status
    recorder.close()
    return {
        "records": status.written,
        "records/s": round(status.written / elapsed),
        "messages/s": round(count / elapsed),
        "mean batch": round(status.written / max(status.batches, 1)),
        "exchanger CPU per message us": round(cpu / count * 1e6),
    }


def _writer_process(config_path: str, url: str, count: int, tag: str, queue, start) -> None:
    exchange_logging.configure("warning")
    config = load_config(config_path)
    messages = Messages(config)
    recorder = open_recorder(replace(config, journal=replace(config.journal, url=url)))
    prepared = [messages.one(f"{tag}-{index}") for index in range(count)]
    queue.put("ready")
    start.wait()
    began = time.perf_counter()
    for inbound, disposition in prepared:
        recorder.settled(recorder.processed(inbound, disposition, messages.pipeline))
    recorder.flush()
    queue.put((recorder.status.written, time.perf_counter() - began))
    recorder.close()


def several_writers(config, url: str, count: int, writers: int) -> dict:
    """Records per second when several processes append to one chain at once."""
    context = multiprocessing.get_context("spawn")
    to_parent, start = context.Queue(), context.Event()
    processes = [
        context.Process(
            target=_writer_process,
            args=(str(config.path), url, count, f"w{index}-{secrets.token_hex(3)}", to_parent, start),
        )
        for index in range(writers)
    ]
    for process in processes:
        process.start()
    for _ in processes:
        assert to_parent.get(timeout=300) == "ready"
    began = time.perf_counter()
    start.set()
    results = [to_parent.get(timeout=600) for _ in processes]
    elapsed = time.perf_counter() - began
    for process in processes:
        process.join()
    written = sum(r[0] for r in results)
    return {"writers": writers, "records": written, "records/s": round(written / elapsed)}


def report(name: str, results: dict) -> None:
    """Print one store's results."""
    print(f"\n{name}")
    for key, value in results.items():
        print(f"  {key:<48} {value}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000, help="messages in the sustained backlog")
    parser.add_argument("--samples", type=int, default=300, help="messages timed one by one")
    parser.add_argument("--writers", type=int, default=2, help="writer processes sharing one store")
    parser.add_argument("--postgres", default="postgresql://postgres@127.0.0.1:5432/postgres")
    parser.add_argument("--no-postgres", action="store_true")
    args = parser.parse_args()
    exchange_logging.configure("warning")

    print(f"python {platform.python_version()} on {platform.machine()}, {multiprocessing.cpu_count()} cores")
    with tempfile.TemporaryDirectory() as temporary:
        directory = Path(temporary)
        config = make_config(directory)
        messages = Messages(config)
        stores = [("SQLite (WAL, synchronous=FULL)", lambda tag: f"sqlite:///{directory / tag}.db", None)]
        if not args.no_postgres:
            import psycopg

            name = f"exchanger_bench_{secrets.token_hex(4)}"
            admin = psycopg.connect(args.postgres, autocommit=True)
            admin.execute(f'CREATE DATABASE "{name}"')
            stores.append(("PostgreSQL", lambda tag: _schema_url(with_database(args.postgres, name), tag), admin))
        try:
            for label, url_for, _ in stores:
                results = per_message_cost(messages, url_for("cost"), args.samples)
                results.update({f"one writer, {k}": v for k, v in sustained(messages, url_for("load"), args.messages).items()})
                shared = url_for("shared")
                open_store(shared).close()
                several = several_writers(config, shared, args.messages // args.writers, args.writers)
                results[f"{several['writers']} writer processes, records/s"] = several["records/s"]
                report(label, results)
        finally:
            for _, _, admin in stores:
                if admin is not None:
                    admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
                    admin.close()


def _schema_url(database_url: str, schema: str) -> str:
    import psycopg

    with psycopg.connect(database_url, autocommit=True) as connection:
        connection.execute(f"CREATE SCHEMA IF NOT EXISTS {schema}")
    return f"{database_url}?options=-csearch_path%3D{schema}"


if __name__ == "__main__":
    sys.exit(main())
