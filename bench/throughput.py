"""Drain throughput of `exchanger run`: a backlog of signed declarations through the full pipeline.

Preloads N signed 2-4 KB customs declarations (each with its own message id) into the inbound
queue of a dedicated virtual host, starts the daemon, and measures from the first delivery the
daemon takes until every copy and every receipt has been confirmed into the mailboxes.
Uses the bundled routes.yaml and keys/ (run `exchanger keys init` first, or bin/exchanger-up).
"""

from __future__ import annotations

import argparse
import os
import platform
import signal
import subprocess
import sys
import time
from pathlib import Path

import pika
from lxml import etree

from exchanger.config import load_config
from exchanger.dsig.signer import Signer
from exchanger.transport.names import INBOUND_EXCHANGE, INBOUND_ROUTING_KEY, mailbox_queue
from exchanger.transport.url import with_credentials, with_vhost

ROOT = Path(__file__).resolve().parents[1]
SAMPLE = ROOT / "samples/customs-declaration/valid.xml"
COMMON = "{urn:eport:common:1}"


def exchanger(*args: str, url: str) -> None:
    """Run one exchanger command against the bench virtual host."""
    subprocess.run([sys.executable, "-m", "exchanger", "--amqp-url", url, *args], cwd=ROOT, check=True, stdout=subprocess.DEVNULL)


def declarations(count: int, signer: Signer) -> list[bytes]:
    """Signed declarations that differ in their message id."""
    template = etree.parse(str(SAMPLE)).getroot()
    out = []
    for index in range(count):
        template.find(f"*/{COMMON}MessageId").text = f"BENCH-{os.getpid()}-{index:07d}"
        out.append(etree.tostring(signer.sign(template), xml_declaration=True, encoding="UTF-8"))
    return out


def depth(channel, queue: str) -> int:
    """Messages ready in a queue."""
    return channel.queue_declare(queue, passive=True).method.message_count


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--messages", type=int, default=5000)
    parser.add_argument("--workers", type=int, default=2)
    parser.add_argument("--vhost", default="exchanger-bench")
    args = parser.parse_args()

    config = load_config(ROOT / "routes.yaml")
    base = with_vhost("amqp://127.0.0.1:5672/", args.vhost)
    admin = with_credentials(base, "guest", "guest")
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", args.vhost], stderr=subprocess.DEVNULL, check=False)
    subprocess.run(["rabbitmqctl", "-q", "add_vhost", args.vhost], check=True)
    subprocess.run(["rabbitmqctl", "-q", "set_permissions", "-p", args.vhost, "guest", ".*", ".*", ".*"], check=True)
    exchanger("topology", "apply", url=admin)

    ent_a = config.registry.get("ent-a")
    signer = Signer(config.keys_dir / "ent-a/key.pem", config.keys_dir / "ent-a/cert.pem")
    started = time.perf_counter()
    bodies = declarations(args.messages, signer)
    print(f"signed {len(bodies)} declarations of {len(bodies[0])} bytes in {time.perf_counter() - started:.1f}s")

    password = (config.keys_dir / "ent-a/amqp-password").read_text().strip()
    connection = pika.BlockingConnection(pika.URLParameters(with_credentials(base, ent_a.amqp_user, password)))
    channel = connection.channel()
    properties = pika.BasicProperties(delivery_mode=2, user_id=ent_a.amqp_user, content_type="application/xml")
    for body in bodies:
        channel.basic_publish(INBOUND_EXCHANGE, INBOUND_ROUTING_KEY, body, properties)
    connection.close()

    watch = pika.BlockingConnection(pika.URLParameters(admin)).channel()
    while depth(watch, "exchanger.inbound") < args.messages:
        time.sleep(0.2)
    daemon = subprocess.Popen(
        [sys.executable, "-m", "exchanger", "--amqp-url", base, "--log-level", "warning", "run", "--workers", str(args.workers)],
        cwd=ROOT,
    )
    try:
        while depth(watch, "exchanger.inbound") == args.messages:
            time.sleep(0.005)
        first = time.perf_counter()
        target = args.messages
        while depth(watch, mailbox_queue("customs")) < target or depth(watch, mailbox_queue("ent-a")) < target:
            time.sleep(0.05)
            if daemon.poll() is not None:
                sys.exit("the daemon exited")
        elapsed = time.perf_counter() - first
    finally:
        daemon.send_signal(signal.SIGTERM)
        daemon.wait(60)
    print(
        f"{args.messages} declarations, {args.workers} worker(s): {elapsed:.2f}s, "
        f"{args.messages / elapsed:.0f} messages/s end to end (each: XSD, verify, authenticate, route, "
        f"sign forward + receipt, 2 confirmed publications)"
    )
    print(f"machine: {platform.processor() or platform.machine()}, {os.cpu_count()} cores, Python {platform.python_version()}")
    subprocess.run(["rabbitmqctl", "-q", "delete_vhost", args.vhost], check=False)


if __name__ == "__main__":
    main()
