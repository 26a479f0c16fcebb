"""The order checker of the chaos harness: a subscriber at the central broker.

With two ingest workers sharing the stream, the store's row order says nothing about the order
of one publisher's messages, so order is checked where the stream enters the centre: a reader
with a persistent session takes every reading and, per publisher, records the first arrival of
each sequence number. A first arrival below a number already seen is an inversion; repeats
(QoS 1 redeliveries, a publisher's replay of messages in flight) are counted, not inversions.
Inversions of messages marked ``historical`` (a publisher's own replays) are counted apart.

It rewrites its JSON summary every two seconds and on SIGTERM. Run as ``python -m
benchmarks._chaos_reader --broker HOST:PORT --out PATH``.
"""

from __future__ import annotations

import argparse
import json
import os
import signal
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import paho.mqtt.client as mqtt

from core.mqtt import connect, make_client
from core.settings import MqttSettings
from core.wire import TOPIC_ROOT


@dataclass
class PublisherOrder:
    """First arrivals of one publisher's sequence numbers."""

    seen: bytearray = field(default_factory=bytearray)
    max_seq: int = -1
    first: int = 0
    repeats: int = 0
    inversions: int = 0
    #: the most places a first arrival came late (the highest number seen minus its own)
    max_displacement: int = 0
    historical_inversions: int = 0
    examples: list[tuple[int, int]] = field(default_factory=list)

    def add(self, seq: int, historical: bool) -> None:
        if seq >= len(self.seen):
            self.seen.extend(bytes(max(seq + 1 - len(self.seen), 4096)))
        if self.seen[seq]:
            self.repeats += 1
            return
        self.seen[seq] = 1
        self.first += 1
        if seq < self.max_seq:
            if historical:
                self.historical_inversions += 1
            else:
                self.inversions += 1
                self.max_displacement = max(self.max_displacement, self.max_seq - seq)
                if len(self.examples) < 10:
                    self.examples.append((self.max_seq, seq))
        self.max_seq = max(self.max_seq, seq)

    def summary(self) -> dict[str, Any]:
        return {"first_arrivals": self.first, "repeats": self.repeats, "max_seq": self.max_seq,
                "inversions": self.inversions, "max_displacement": self.max_displacement,
                "historical_inversions": self.historical_inversions,
                "examples": self.examples}


class OrderReader:
    """Subscribes to every site's readings at the centre and keeps a :class:`PublisherOrder` per publisher."""

    def __init__(self, host: str, port: int, out: Path) -> None:
        self.out = out
        self.orders: dict[str, PublisherOrder] = {}
        self.malformed = 0
        self.connects = 0
        self._lock = threading.Lock()
        settings = MqttSettings(host=host, port=port, embedded=False)
        self.client = make_client(settings, client_id="chaos-order-reader", protocol="5", persistent=True)
        self.client.on_connect = self._on_connect
        self.client.on_message = self._on_message
        self.client.reconnect_delay_set(1, 1)

    def _on_connect(self, c: mqtt.Client, *_a: object) -> None:
        self.connects += 1
        c.subscribe(f"{TOPIC_ROOT}/+/+/readings", qos=1)

    def _on_message(self, _c: mqtt.Client, _u: object, m: mqtt.MQTTMessage) -> None:
        try:
            body = json.loads(m.payload)
            publisher, seq, historical = str(body["publisher"]), int(body["seq"]), bool(body.get("historical"))
        except (ValueError, KeyError, TypeError):
            self.malformed += 1
            return
        if seq < 0:
            self.malformed += 1
            return
        with self._lock:
            self.orders.setdefault(publisher, PublisherOrder()).add(seq, historical)

    def write(self) -> None:
        with self._lock:
            doc = {"connects": self.connects, "malformed": self.malformed,
                   "publishers": {p: o.summary() for p, o in sorted(self.orders.items())}}
        tmp = self.out.with_suffix(".tmp")
        tmp.write_text(json.dumps(doc))
        os.replace(tmp, self.out)

    def run(self, stop: threading.Event) -> None:
        connect(self.client)
        self.client.loop_start()
        try:
            while not stop.wait(2.0):
                self.write()
        finally:
            self.client.disconnect()
            self.client.loop_stop()
            self.write()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", required=True, help="central broker, host:port")
    parser.add_argument("--out", type=Path, required=True)
    a = parser.parse_args()
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    host, _, port = a.broker.rpartition(":")
    OrderReader(host, int(port), a.out).run(stop)


if __name__ == "__main__":
    main()
