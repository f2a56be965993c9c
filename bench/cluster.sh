#!/usr/bin/env bash
# Where one machine is not enough: a local three-node RabbitMQ cluster with quorum queues (three
# replicas each), two exchanger daemons sharing the work, and the node leading exchanger.inbound
# killed with SIGKILL under load, then started again. Prints, like tests/test_faults.py, what was
# sent, delivered, lost, duplicated and dead-lettered, and exits 1 if anything was lost.
#
#   bench/cluster.sh [MESSAGES]        # default 600; run as root (or the rabbitmq user), by hand
#
# It starts three nodes of its own (free ports, data in /tmp, removed at the end) from the installed
# RabbitMQ, so the machine's own node is not touched. The daemons connect to the two nodes that
# survive; the leader of every queue is on the first node, the one killed. Needs the test extras
# (`bin/test` installs them) and about 1 GB of memory; takes one to two minutes. Not run in CI.
set -euo pipefail
cd "$(dirname "$0")/.."
exec .venv/bin/python - "$@" <<'PYTHON'
"""Kill the quorum leader node under load, with two exchanger daemons; count per message id."""

import json
import shutil
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, "tests")

from broker import Broker  # noqa: E402
from daemon_fixture import Daemon, deploy  # noqa: E402
from rabbit_node import RabbitNode  # noqa: E402
from test_faults import (  # noqa: E402
    DEAD_QUEUE, INBOUND_QUEUE, SENDER, Ledger, Publisher, _answered, _declarations, _depths, _environment,
    _scenario_exchange, mailbox_queue,
)
from exchanger.transport.url import with_vhost  # noqa: E402

MESSAGES = int(sys.argv[1]) if len(sys.argv) > 1 else 600


def wait(condition, timeout: float, what: str) -> float:
    """Poll until the condition holds; return the seconds it took."""
    began = time.monotonic()
    while not condition():
        if time.monotonic() - began > timeout:
            raise SystemExit(f"gave up waiting for {what} after {timeout:.0f}s")
        time.sleep(0.25)
    return time.monotonic() - began


def leaders(node: RabbitNode, vhost: str) -> dict[str, str]:
    """Each queue's leader node, as the cluster reports it."""
    listed = node.ctl("list_queues", "-p", vhost, "name", "leader", "--formatter", "json").stdout
    return {row["name"]: row["leader"] for row in json.loads(listed[listed.index("["):])}


def main() -> int:
    """Build the cluster, run the load, kill the leader, heal, drain and count."""
    nodes = []
    daemons = []
    work = Path(tempfile.mkdtemp(prefix="exchanger-cluster-"))
    try:
        for _ in range(3):
            nodes.append(RabbitNode("exchanger-cluster").start())
        first, second, third = nodes
        second.join(first)
        third.join(first)
        print(f"cluster: {', '.join(n.name for n in nodes)}")
        sandbox = Broker(first.admin(), first.url)
        # Queues are declared through the first node, so it leads every one of them (client-local placement).
        with _environment(RABBITMQ_NODENAME=first.name):
            deployment = deploy(sandbox, work, users=[SENDER])
        deployment.admin_url = with_vhost(second.url, sandbox.vhost)
        print("leaders:", sorted(set(leaders(first, sandbox.vhost).values())))
        exchanges = []
        for index, node in enumerate((second, third)):
            (work / f"daemon-{index}").mkdir()
            exchange = _scenario_exchange(deployment, work / f"daemon-{index}")
            # Both daemons share one message log, as instances on one machine do.
            exchange.config_path.write_text(
                exchange.config_path.read_text().replace("sqlite:///var/journal.db", f"sqlite:///{work}/journal.db")
            )
            exchange.url = with_vhost(f"amqp://127.0.0.1:{node.port}/", sandbox.vhost)
            exchanges.append(exchange)
            daemons.append(Daemon(exchange, exchange.url, workers=2))
        wait(lambda: all("".join(d.raw).count('"event": "worker.consuming"') >= 2 for d in daemons), 90, "both daemons consuming")

        messages = _declarations(exchanges[0], "cluster", MESSAGES)
        publisher = Publisher(exchanges[0], messages, rate=100, timeout=300)
        publisher.start()
        wait(lambda: _answered(deployment) >= MESSAGES // 4, 120, "a quarter answered")
        at_kill = _answered(deployment)
        print(f"killing {first.name} (leader) with {at_kill} answered")
        first.kill()
        took = wait(lambda: _answered(deployment) >= at_kill + 20, 120, "answers without the old leader")
        print(f"answers resumed {took:.1f}s after the kill; new leaders: {sorted(set(leaders(second, sandbox.vhost).values()))}")
        time.sleep(max(0.0, 10 - took))  # the old leader stays down ten seconds, under load
        first.restart()
        print(f"{first.name} restarted")
        publisher.finish(300)

        def settled() -> bool:
            """Every message answered and nothing waiting."""
            depths = _depths(deployment, INBOUND_QUEUE, mailbox_queue(SENDER), DEAD_QUEUE)
            return depths is not None and depths[INBOUND_QUEUE] == 0 and depths[mailbox_queue(SENDER)] + depths[DEAD_QUEUE] >= MESSAGES

        wait(settled, 300, "every message answered")
        for daemon in daemons:
            code = daemon.stop()
            print(f"daemon exited {code}")
        ledger = Ledger([mid for mid, _ in messages], bodies=dict(messages))
        ledger.drain(deployment)
        tally = ledger.tally()
        print(f"sent {tally['sent']}, delivered {tally['delivered']}, lost {len(tally['lost'])}, "
              f"duplicated {tally['duplicated']} ({tally['extra_copies']} extra copies, {tally['answered_as_duplicate']} answered from the log), "
              f"dead-lettered {len(tally['dead_lettered'])} {tally['dead_letter_reasons']}, unexpected {len(tally['unexpected'])}, "
              f"republished by the sender {publisher.republished}")
        ok = not tally["lost"] and not tally["unexpected"] and not tally["conflicting"]
        print("PASS: nothing lost" if ok else f"FAIL: lost {tally['lost'][:10]}, unexpected {tally['unexpected'][:10]}, conflicting {tally['conflicting'][:10]}")
        return 0 if ok else 1
    finally:
        for daemon in daemons:
            if daemon.process.poll() is None:
                daemon.process.kill()
        for node in reversed(nodes):
            node.stop()
        shutil.rmtree(work, ignore_errors=True)


sys.exit(main())
PYTHON
