"""The transport ceiling: a bare consume-then-publish bridge on the exchange's own queues.

It does what exchanger/worker.py does on the wire and nothing else: consumes exchanger.inbound with
the same prefetch, publishes persistent messages with publisher confirms and ``mandatory`` to the
mailbox exchange (the inbound bytes, unchanged, to the customs mailbox, and a receipt-sized message
to the sender's mailbox: two publications, as the exchange makes for these workloads), and acks the
inbound delivery once both are confirmed. No XML is parsed, validated, verified or signed.
Run as ``python -m bench.ceiling URL PREFETCH USER=PARTICIPANT...`` (one process per worker).
"""

from __future__ import annotations

import signal
import sys

import pika

from bench.processes import ModuleProcesses
from exchanger.transport.names import INBOUND_QUEUE, MAILBOX_EXCHANGE

RECEIPT = b"<receipt/>" + b" " * 2600  # the size of a signed platform receipt


class Bridge:
    def __init__(self, url: str, prefetch: int, senders: dict[str, str]):
        self.parameters = pika.URLParameters(url)
        self.prefetch = prefetch
        self.senders = senders  # broker user -> participant id (the sender's mailbox)
        self.connection = None
        self.channel = None
        self.consumer_tag = None
        self.seq = 0
        self.pending: dict[int, int] = {}  # publish sequence number -> inbound delivery tag
        self.outstanding: dict[int, int] = {}  # inbound delivery tag -> publications not yet confirmed
        self.stopping = False

    def run(self) -> None:
        self.connection = pika.SelectConnection(
            self.parameters, on_open_callback=self._on_open,
            on_open_error_callback=lambda connection, _error: connection.ioloop.stop(),
            on_close_callback=lambda connection, _reason: connection.ioloop.stop(),
        )
        signal.signal(signal.SIGTERM, lambda *_: self.connection.ioloop.add_callback_threadsafe(self._stop))
        self.connection.ioloop.start()

    def _on_open(self, connection) -> None:
        connection.channel(on_open_callback=self._on_channel)

    def _on_channel(self, channel) -> None:
        self.channel = channel
        channel.add_on_return_callback(lambda *_: print("returned", file=sys.stderr))
        channel.confirm_delivery(ack_nack_callback=self._on_confirm, callback=self._on_confirm_mode)

    def _on_confirm_mode(self, _frame) -> None:
        self.channel.basic_qos(prefetch_count=self.prefetch, callback=self._on_qos)

    def _on_qos(self, _frame) -> None:
        self.consumer_tag = self.channel.basic_consume(INBOUND_QUEUE, self._on_message)

    def _on_message(self, _channel, method, properties, body: bytes) -> None:
        sender = self.senders.get(properties.user_id or "", "")
        headers = {"x-exchanger-kind": "forward", "x-exchanger-orig-message-id": properties.message_id or ""}
        copies = (("customs", body, headers), (sender, RECEIPT, {"x-exchanger-kind": "receipt"}))
        self.outstanding[method.delivery_tag] = len(copies)
        for routing_key, payload, copy_headers in copies:
            self.seq += 1
            self.pending[self.seq] = method.delivery_tag
            self.channel.basic_publish(
                MAILBOX_EXCHANGE, routing_key, payload,
                pika.BasicProperties(delivery_mode=2, content_type="application/xml", headers=copy_headers),
                mandatory=True,
            )

    def _on_confirm(self, frame) -> None:
        method = frame.method
        if method.multiple:
            tags = []
            for seq in self.pending:  # in publish order
                if seq > method.delivery_tag:
                    break
                tags.append(seq)
        else:
            tags = [method.delivery_tag]
        for seq in tags:
            inbound = self.pending.pop(seq, None)
            if inbound is None:
                continue
            self.outstanding[inbound] -= 1
            if self.outstanding[inbound] == 0:
                del self.outstanding[inbound]
                self.channel.basic_ack(inbound)
        if self.stopping and not self.outstanding:
            self.connection.close()

    def _stop(self) -> None:
        self.stopping = True
        if self.consumer_tag:
            self.channel.basic_cancel(self.consumer_tag)
        if not self.outstanding:
            self.connection.close()


class Bridges(ModuleProcesses):
    """W bridge processes, run like the daemon's W workers."""

    def __init__(self, url: str, prefetch: int, senders: dict[str, str], processes: int):
        super().__init__("bench.ceiling", [url, str(prefetch), *(f"{user}={pid}" for user, pid in senders.items())], processes)


def main() -> None:
    url, prefetch, *pairs = sys.argv[1:]
    Bridge(url, int(prefetch), dict(pair.split("=", 1) for pair in pairs)).run()


if __name__ == "__main__":
    main()
