"""Crash safety: ingest killed with SIGKILL mid-stream; shared-subscription workers on PostgreSQL."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from edge_agent.publisher import MqttPublisher
from genedge.localservices import Mosquitto
from ingest.store import Store
from tests._factories import SITE, good_reading, mqtt_settings, wait_for


def start_worker(
    broker: Mosquitto, db_url: str, client_id: str, log: Path, share_group: str | None = None
) -> subprocess.Popen[bytes]:
    cmd = [sys.executable, "-m", "genedge", "ingest", "run", "--db", db_url, "--broker", f"127.0.0.1:{broker.port}",
           "--client-id", client_id]
    if share_group:
        cmd += ["--share-group", share_group]
    env = {**os.environ, "GENEDGE_STORE__BATCH_SIZE": "200"}
    proc = subprocess.Popen(cmd, stdout=log.open("ab"), stderr=subprocess.STDOUT, env=env)
    return proc


def publish_stream(broker: Mosquitto, publisher: str, n: int, rate_hz: float, done: threading.Event) -> None:
    pub = MqttPublisher(mqtt_settings(broker), publisher)
    pub.connect()
    for seq in range(n):
        pub.publish(SITE, good_reading(publisher, seq, asset=f"pump-{seq % 6:02d}"))
        time.sleep(1.0 / rate_hz)
    assert pub.flush(60)
    pub.close()
    done.set()


def wait_subscribed(store: Store, broker: Mosquitto, probe_publisher: str) -> None:
    """Publish probes until a worker stores one: its (persistent) subscription is live."""
    pub = MqttPublisher(mqtt_settings(broker), probe_publisher)
    pub.connect()
    seq = 0
    while store.count_readings(probe_publisher) == 0 and seq < 200:
        pub.publish(SITE, good_reading(probe_publisher, seq))
        seq += 1
        time.sleep(0.1)
    pub.flush(10)
    pub.close()
    assert store.count_readings(probe_publisher) > 0, "ingest worker never came up"


def test_sigkill_mid_stream_loses_and_duplicates_nothing(broker: Mosquitto, tmp_path: Path) -> None:
    db_url = f"sqlite:///{tmp_path / 'crash.db'}"
    store = Store(db_url)
    log = tmp_path / "ingest.log"
    proc = start_worker(broker, db_url, "ingest-crash", log)
    try:
        wait_subscribed(store, broker, "probe")
        n = 4000
        done = threading.Event()
        t = threading.Thread(target=publish_stream, args=(broker, "pub-crash", n, 1500.0, done))
        t.start()
        assert wait_for(lambda: store.count_readings("pub-crash") > 500, 30)
        proc.send_signal(signal.SIGKILL)  # no chance to flush or ack
        proc.wait(10)
        stored_at_kill = store.count_readings("pub-crash")
        assert stored_at_kill < n, "the kill must land mid-stream"
        time.sleep(1.0)
        proc = start_worker(broker, db_url, "ingest-crash", log)
        t.join(120)
        assert done.is_set()
        assert wait_for(lambda: store.count_readings("pub-crash") >= n, 60), log.read_text()[-2000:]
        time.sleep(1.0)  # let any redelivery land
        assert store.count_readings("pub-crash") == n
        assert store.count_duplicate_readings() == 0
        assert sorted(s for s, _ in store.reading_sequences("pub-crash")) == list(range(n))
    finally:
        proc.terminate()
        proc.wait(20)


@pytest.mark.postgres
def test_three_shared_workers_one_killed_exactly_once(broker: Mosquitto, pg_db: str, tmp_path: Path) -> None:
    store = Store(pg_db)
    log = tmp_path / "workers.log"
    workers = {f"w{i}": start_worker(broker, pg_db, f"ingest-w{i}", log, share_group="ingest") for i in range(3)}
    try:
        wait_subscribed(store, broker, "probe")
        time.sleep(1.0)  # all three subscriptions in place
        n = 6000
        done = threading.Event()
        t = threading.Thread(target=publish_stream, args=(broker, "pub-share", n, 2000.0, done))
        t.start()
        assert wait_for(lambda: store.count_readings("pub-share") > 1000, 30)
        workers["w1"].send_signal(signal.SIGKILL)
        workers["w1"].wait(10)
        assert store.count_readings("pub-share") < n, "the kill must land mid-stream"
        time.sleep(2.0)
        # A supervisor (systemd) restarts the worker under the same client id: its session's
        # unacknowledged and queued messages are delivered to it then.
        workers["w1"] = start_worker(broker, pg_db, "ingest-w1", log, share_group="ingest")
        t.join(120)
        assert done.is_set()
        assert wait_for(lambda: store.count_readings("pub-share") >= n, 90), log.read_text()[-3000:]
        time.sleep(1.0)
        assert store.count_readings("pub-share") == n
        assert store.count_duplicate_readings() == 0
        assert sorted(s for s, _ in store.reading_sequences("pub-share")) == list(range(n))
    finally:
        for p in workers.values():
            p.terminate()
        for p in workers.values():
            p.wait(20)
