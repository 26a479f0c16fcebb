"""A load publisher of the chaos harness: one process that publishes like an edge agent.

It sends :class:`~core.wire.ReadingBatch` messages through the agent's own store-and-forward
stack (:class:`~edge_agent.publisher.ReliablePublisher` over a :class:`~edge_agent.queue.DiskQueue`),
so a SIGKILL, a broker outage or a full disk meet the same code as in the field. The rate comes
from a small file the harness rewrites (messages per second; ``0`` pauses).

Every sequence number is written to an append-only log after the queue answered: ``a <seq>``
when the queue accepted the message (it must reach the store), ``r <seq>`` when the queue's
overflow policy refused it (a full disk). After a SIGKILL only the message being queued at that
instant may be missing from the log, so a restarted publisher goes on at the last logged
sequence number + 2 and never reuses a number the broker may already have.

Run as ``python -m benchmarks._chaos_publisher --broker HOST:PORT --site S --publisher ID
--queue PATH --log PATH --rate-file PATH``.
"""

from __future__ import annotations

import argparse
import os
import random
import signal
import threading
import time
from pathlib import Path

from core.settings import MqttSettings
from core.wire import ReadingBatch, utcnow
from edge_agent.publisher import ReliablePublisher
from edge_agent.queue import DiskQueue

#: Assets each load publisher spreads its messages over.
ASSETS_PER_PUBLISHER = 4
#: Samples per message: a small vibration snippet, so the run measures messaging, not payload size.
SAMPLES = 32


def next_seq_after(log_path: Path) -> int:
    """The first sequence number a (re)started publisher may use, from its log.

    Args:
        log_path: the publisher's ``a``/``r`` log; missing means a fresh publisher.

    Returns:
        0 for a fresh publisher, else the last logged number + 2 (the number after it may sit
        unlogged in the queue or at the broker).
    """
    if not log_path.exists():
        return 0
    last = -2
    for line in log_path.read_text().splitlines():
        parts = line.split()
        if len(parts) == 2 and parts[0] in ("a", "r") and parts[1].isdigit():
            last = max(last, int(parts[1]))
    return last + 2


def read_rate(path: Path, default: float) -> float:
    """Messages per second from the rate file; ``default`` while it is missing or unreadable."""
    try:
        return max(0.0, float(path.read_text().strip() or default))
    except (OSError, ValueError):
        return default


def reading(publisher: str, seq: int, rng: random.Random) -> ReadingBatch:
    return ReadingBatch(publisher=publisher, seq=seq, asset_id=f"{publisher}-m{seq % ASSETS_PER_PUBLISHER}",
                        channel="vib_de", quantity="acceleration", unit="g", sample_rate_hz=25600.0,
                        start=utcnow(), values=[rng.gauss(0.0, 0.3) for _ in range(SAMPLES)])


def run(broker: str, site: str, publisher_id: str, queue_path: Path, log_path: Path, rate_file: Path) -> None:
    """Publish until SIGTERM/SIGINT at the rate in ``rate_file``, then drain for a few seconds and exit."""
    host, _, port = broker.rpartition(":")
    stop = threading.Event()
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    # drop_newest: a message the queue accepted is never given up for a newer one, so "accepted"
    # is a promise the run can check; a full disk refuses the newest (logged as refused).
    queue = DiskQueue(queue_path, max_messages=1_000_000, overflow="drop_newest", alarm_hold_s=1.0)
    pub = ReliablePublisher(MqttSettings(host=host, port=int(port), embedded=False), site, publisher_id, queue,
                            reconnect_s=(0.2, 1.0)).start()
    seq = next_seq_after(log_path)
    rng = random.Random(seq)
    fd = os.open(log_path, os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
    rate = read_rate(rate_file, 0.0)
    rate_checked = time.monotonic()
    due = time.monotonic()
    try:
        while not stop.is_set():
            now = time.monotonic()
            if now - rate_checked > 0.5:
                rate, rate_checked = read_rate(rate_file, rate), now
            if rate <= 0:
                stop.wait(0.1)
                due = time.monotonic()
                continue
            if due > now:
                stop.wait(due - now)
                continue
            accepted = pub.send(reading(publisher_id, seq, rng))
            # One write() per message: the kernel has it even if this process is killed next.
            os.write(fd, f"{'a' if accepted else 'r'} {seq}\n".encode())
            seq += 1
            # Falling more than a second behind (a slow full disk) skips ahead instead of bursting.
            due = max(due + 1.0 / rate, time.monotonic() - 1.0)
    finally:
        os.close(fd)
        pub.close(drain_timeout=5.0)
        queue.close()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--broker", required=True, help="site broker, host:port")
    parser.add_argument("--site", required=True)
    parser.add_argument("--publisher", required=True)
    parser.add_argument("--queue", type=Path, required=True, help="disk queue file")
    parser.add_argument("--log", type=Path, required=True, help="append-only log of accepted/refused seq numbers")
    parser.add_argument("--rate-file", type=Path, required=True, help="file holding messages per second")
    a = parser.parse_args()
    run(a.broker, a.site, a.publisher, a.queue, a.log, a.rate_file)


if __name__ == "__main__":
    main()
