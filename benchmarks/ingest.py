"""Ingest throughput: readings/s from MQTT into SQLite and PostgreSQL through the ingest service,
as a ratio to the raw broker throughput (a bare subscriber) measured in the same run.

    .venv/bin/python -m benchmarks.ingest [--n 20000] [--samples 256]

Writes benchmarks/results/ingest.json.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import threading
import time
from pathlib import Path

import numpy as np

from core.mqtt import connect, make_client
from core.settings import IngestSettings, MqttSettings
from core.wire import ReadingBatch, encode, topic_for, utcnow
from edge_agent.publisher import MqttPublisher
from genedge.localservices import mosquitto, postgres
from ingest.service import IngestService
from ingest.store import Store

RESULTS = Path(__file__).with_name("results") / "ingest.json"


def payloads(n: int, samples: int) -> list[tuple[str, bytes]]:
    rng = np.random.default_rng(0)
    now = utcnow()
    out = []
    for i in range(n):
        m = ReadingBatch(publisher="bench", seq=i, asset_id=f"P-{i % 8}", channel="vib_de", quantity="acceleration",
                         unit="g", sample_rate_hz=25600, start=now, values=rng.normal(0, 0.5, samples).round(5).tolist())
        out.append((topic_for("plant1", m.asset_id, "readings"), encode(m)))
    return out


def publish_all(settings: MqttSettings, msgs: list[tuple[str, bytes]]) -> None:
    pub = MqttPublisher(settings, f"bench-pub-{time.monotonic_ns()}", max_inflight=1000)
    pub.connect()
    for topic, payload in msgs:
        pub.publish_raw(topic, payload)
    pub.flush(300)
    pub.close()


def raw_rate(settings: MqttSettings, msgs: list[tuple[str, bytes]]) -> float:
    """Messages/s a bare QoS 1 subscriber receives: the broker + client ceiling."""
    got = {"n": 0}
    done = threading.Event()

    def on_message(*_a: object) -> None:
        got["n"] += 1
        if got["n"] >= len(msgs):
            done.set()

    sub = make_client(settings, client_id="bench-raw")
    sub.on_message = on_message
    connect(sub)
    sub.subscribe("genedge/v1/#", qos=1)
    sub.loop_start()
    time.sleep(0.5)
    t0 = time.perf_counter()
    publish_all(settings, msgs)
    done.wait(600)
    dt = time.perf_counter() - t0
    sub.loop_stop()
    sub.disconnect()
    return len(msgs) / dt


def ingest_rate(settings: MqttSettings, url: str, msgs: list[tuple[str, bytes]], batch: int) -> float:
    store = Store(url)
    service = IngestService(settings, IngestSettings(client_id=f"bench-ingest-{time.monotonic_ns()}"), store,
                            batch_size=batch)
    stop = threading.Event()
    worker = threading.Thread(target=service.run, args=(stop,))
    worker.start()
    service.connected.wait(10)
    time.sleep(0.5)
    t0 = time.perf_counter()
    publish_all(settings, msgs)
    while store.count_readings("bench") < len(msgs):
        time.sleep(0.01)
    dt = time.perf_counter() - t0
    stop.set()
    worker.join()
    store.close()
    return len(msgs) / dt


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--n", type=int, default=20_000)
    ap.add_argument("--samples", type=int, default=256)
    ap.add_argument("--batch", type=int, default=500)
    args = ap.parse_args()
    msgs = payloads(args.n, args.samples)
    results: dict[str, object] = {
        "what": "readings (batches of samples) per second, MQTT QoS 1 -> ingest (validate + store) vs bare subscriber",
        "n_messages": args.n, "samples_per_message": args.samples, "batch_size": args.batch,
        "payload_bytes": len(msgs[0][1]), "machine": f"{platform.machine()}, {os.cpu_count()} cores",
        "broker": "mosquitto (Debian)",
    }
    with mosquitto() as broker, tempfile.TemporaryDirectory() as tmp:
        settings = MqttSettings(port=broker.port, embedded=False)
        raw = raw_rate(settings, msgs)
        sqlite = ingest_rate(settings, f"sqlite:///{tmp}/bench.db", msgs, args.batch)
        with postgres() as pg:
            pg_rate = ingest_rate(settings, pg, msgs, args.batch)
    results |= {
        "raw_broker_msgs_per_s": round(raw, 1),
        "sqlite_msgs_per_s": round(sqlite, 1),
        "postgres_msgs_per_s": round(pg_rate, 1),
        "sqlite_ratio_to_raw": round(sqlite / raw, 3),
        "postgres_ratio_to_raw": round(pg_rate / raw, 3),
        "sqlite_samples_per_s": round(sqlite * args.samples),
        "postgres_samples_per_s": round(pg_rate * args.samples),
    }
    RESULTS.parent.mkdir(parents=True, exist_ok=True)
    RESULTS.write_text(json.dumps(results, indent=2) + "\n")
    print(json.dumps(results, indent=2))


if __name__ == "__main__":
    main()
