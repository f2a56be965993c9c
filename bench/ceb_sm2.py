"""End-to-end msg/s with SM2 everywhere: GACC CEB311 orders in DXP, in and out, on the local RabbitMQ.

The platform, the enterprise and customs hold SM2 keys (`exchanger keys init --algorithm sm2`). Each
order is the official CEB311 sample (from the shared corpus, by path) with a guid of its own, signed by
the enterprise with SM2, lodged in a DxpMsg the enterprise signs with SM2; customs takes DXP. So each
message costs two SM2 verifications (the DxpMsg, the order) and two SM2 signatures (the DxpMsg copy to
customs, the DxpRep to the enterprise), besides parsing, schema validation and the message log.

A backlog is preloaded, the daemon started with two workers, and the settled messages (DxpReps in
the enterprise's mailbox) counted over a fixed window after the first is consumed.
Run with ``python -m bench.ceb_sm2 [--messages N] [--seconds S] [--workers W]``.
"""

from __future__ import annotations

import argparse
import json
import shutil
import tempfile
import time
import uuid
from contextlib import closing
from pathlib import Path

import pika
import yaml
from lxml import etree

# _Preloader: the pipelined, confirmed publisher the other drains use.
from bench.deployment import ADMIN, BASE_URL, ROOT, ROUTES, _Preloader, exchanger_cli
from bench.processes import Daemon
from exchanger.dsig.signer import Signer
from exchanger.envelopes.dxp import dxp_message
from exchanger.transport.admin import BrokerAdmin, apply_users
from exchanger.transport.names import DEAD_LETTERS, INBOUND_QUEUE, mailbox_queue
from exchanger.transport.topology import Topology
from exchanger.transport.url import with_credentials, with_vhost

CORPUS = ROOT.parent / "shared" / "corpus" / "cn-chinaport-ceb" / "2018-gacc-113"
CATALOGUE = ROOT / "tests" / "onboarding" / "ceb-2018.yaml"
ORDER = CORPUS / "samples" / "import" / "CEB311Message.xml"
ENTERPRISE = "1101180326"  # the sample order's copCode
DS = "{http://www.w3.org/2000/09/xmldsig#}"


def _catalogue(directory: Path) -> Path:
    """The GACC 2018 catalogue with absolute schema paths and without the DXP types the envelope catalogue opens."""
    data = yaml.safe_load(CATALOGUE.read_text(encoding="utf-8"))
    for name in ("DxpMsg", "DxpMsgSv"):
        data["types"].pop(name, None)
    for spec in data["types"].values():
        spec["xsd"] = str((CATALOGUE.parent / spec["xsd"]).resolve())
    path = directory / "ceb-2018.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _configuration(directory: Path, prefix: str) -> Path:
    data = yaml.safe_load(ROUTES.read_text())
    data["keys_dir"] = str(directory / "keys")
    data["messages"] = str(_catalogue(directory))
    data["envelopes"] = str(ROOT / "schemas" / "envelopes.yaml")
    data["journal"] = {"url": f"sqlite:///{directory / 'journal.db'}"}
    data.setdefault("metrics", {})["port"] = 0
    data["broker"]["daemon_user"] = f"{prefix}exchanger"
    data["participants"] = {
        ENTERPRISE: {"kind": "enterprise", "name": "Import e-commerce platform", "amqp_user": f"{prefix}{ENTERPRISE}"},
        "customs": {"kind": "customs", "name": "Customs", "envelope": "dxp", "amqp_user": f"{prefix}customs"},
    }
    data["routes"] = [{"id": "orders-to-customs", "description": "CEB311 orders to customs.", "types": ["CEB311"],
                       "from": ["kind:enterprise"], "to": ["kind:customs"], "deliver": "addressed"}]
    path = directory / "routes.yaml"
    path.write_text(yaml.safe_dump(data, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def _orders(keys_dir: Path, count: int) -> list[bytes]:
    """``count`` DxpMsgs, each carrying the sample order under a guid of its own, both layers signed with SM2."""
    signer = Signer(keys_dir / ENTERPRISE / "key.pem", keys_dir / ENTERPRISE / "cert.pem")
    template = etree.fromstring(ORDER.read_bytes())
    for signature in template.findall(f"{DS}Signature"):
        template.remove(signature)  # the sample's own signature is illustrative and never verifies
    old = template.get("guid").encode()
    text = etree.tostring(template, xml_declaration=True, encoding="UTF-8")
    bodies = []
    for _ in range(count):
        inner = signer.sign_bytes(text.replace(old, str(uuid.uuid4()).upper().encode()))
        outer = dxp_message(message_id=str(uuid.uuid4()), sender=ENTERPRISE, receivers=["customs"],
                            created="2016-03-08T11:27:01", message_type="CEB311Message", document=inner)
        bodies.append(signer.sign_bytes(etree.tostring(outer, xml_declaration=True, encoding="UTF-8")))
    return bodies


def run(messages: int, seconds: float, workers: int) -> dict:
    """Preload, drain for ``seconds`` (or until the backlog is gone), and return the figures."""
    tag = uuid.uuid4().hex[:6]
    directory = Path(tempfile.mkdtemp(prefix=f"exchanger-bench-ceb-sm2-{tag}-"))
    prefix = f"benchceb{tag}-"
    vhost = f"exchanger-bench-ceb-sm2-{tag}"
    admin = BrokerAdmin()
    users: list[str] = []
    daemon = None
    try:
        config_path = _configuration(directory, prefix)
        exchanger_cli(config_path, BASE_URL, "keys", "init", "--algorithm", "sm2")
        keys_dir = directory / "keys"
        password = lambda identity: (keys_dir / identity / "amqp-password").read_text().strip()  # noqa: E731
        url = with_vhost(BASE_URL, vhost)
        admin_url = with_credentials(url, *ADMIN)
        admin.add_vhost(vhost)
        admin.set_permissions(vhost, ADMIN[0], ".*", ".*", ".*")
        exchanger_cli(config_path, admin_url, "topology", "apply", "--no-users")
        users = list(apply_users(
            admin, vhost, Topology(participants=(ENTERPRISE,)), {f"{prefix}{ENTERPRISE}": password(ENTERPRISE)},
            daemon_user=f"{prefix}exchanger", daemon_password=password(f"{prefix}exchanger"),
            broker_users={ENTERPRISE: f"{prefix}{ENTERPRISE}"},
        ))
        started = time.perf_counter()
        bodies = _orders(keys_dir, messages)
        prepared = time.perf_counter() - started
        properties = pika.BasicProperties(delivery_mode=2, user_id=f"{prefix}{ENTERPRISE}", content_type="application/xml")
        _Preloader(pika.URLParameters(with_credentials(url, f"{prefix}{ENTERPRISE}", password(ENTERPRISE))),
                   bodies, properties).run(900)
        daemon = Daemon(config_path, url, workers, log_path=directory / "daemon.log")
        with closing(pika.BlockingConnection(pika.URLParameters(admin_url))) as connection:
            channel = connection.channel()
            depth = lambda queue: channel.queue_declare(queue, passive=True).method.message_count  # noqa: E731
            while depth(INBOUND_QUEUE) >= messages:
                if not daemon.alive():
                    raise RuntimeError(daemon.tail())
                time.sleep(0.01)
            first, done_first = time.perf_counter(), depth(mailbox_queue(ENTERPRISE))
            while time.perf_counter() - first < seconds and depth(mailbox_queue(ENTERPRISE)) < messages:
                time.sleep(0.2)
            elapsed, done = time.perf_counter() - first, depth(mailbox_queue(ENTERPRISE))
            copies, dead = depth(mailbox_queue("customs")), depth(DEAD_LETTERS)
        return {
            "workers": workers,
            "preloaded": messages,
            "seconds": round(elapsed, 1),
            "settled": done - done_first,
            "msg_per_s": round((done - done_first) / elapsed, 1),
            "copies_to_customs": copies,
            "dead_letters": dead,
            "prepare_s": round(prepared, 1),
        }
    finally:
        if daemon is not None:
            daemon.stop()
        for user in users:
            try:
                admin.delete_user(user)
            except Exception:  # noqa: BLE001 - clean up as much as possible
                pass
        try:
            admin.delete_vhost(vhost)
        except Exception:  # noqa: BLE001
            pass
        shutil.rmtree(directory, ignore_errors=True)


def main(argv: list[str] | None = None) -> int:
    """Print the figures as JSON."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=4000, help="backlog preloaded (default 4000)")
    parser.add_argument("--seconds", type=float, default=60.0, help="drain window (default 60)")
    parser.add_argument("--workers", type=int, default=2, help="daemon workers (default 2)")
    args = parser.parse_args(argv)
    print(json.dumps(run(args.messages, args.seconds, args.workers), indent=2))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
