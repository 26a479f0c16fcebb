"""`genedge demo --headless` end to end, as a user runs it."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

from edge_agent.publisher import MqttPublisher
from genedge.localservices import Mosquitto, free_port
from ingest.store import Store
from tests._factories import bad_message, mqtt_settings


def _demo(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "genedge", "demo", "--headless", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def _last_json(stdout: str) -> dict[str, int]:
    return json.loads(stdout.strip().splitlines()[-1])


def test_demo_30s_with_bad_messages_injected(broker: Mosquitto, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    proc = _demo(["--duration", "30", "--db", db, "--broker", f"127.0.0.1:{broker.port}"])
    time.sleep(8)  # the demo is running and publishing
    assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
    pub = MqttPublisher(mqtt_settings(broker), "intruder")
    pub.connect()
    sent = [bad_message(i) for i in range(18)]  # two of each kind of bad message
    for topic, payload, _reason in sent:
        pub.publish_raw(topic, payload)
    assert pub.flush(10)
    pub.close()
    out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-3000:]
    result = _last_json(out)
    assert result["stored"] == result["published"] > 1000, result
    assert result["duplicates"] == 0
    assert result["dead_lettered"] == len(sent)
    reasons = sorted(d.reason for d in Store(db).dead_letters())
    assert reasons == sorted(r for _t, _p, r in sent)


def test_demo_with_embedded_broker(tmp_path: Path) -> None:
    port = free_port()
    proc = _demo(["--duration", "8", "--db", f"sqlite:///{tmp_path / 'emb.db'}"], env={"GENEDGE_MQTT__PORT": str(port)})
    out, err = proc.communicate(timeout=120)
    assert proc.returncode == 0, err[-3000:]
    result = _last_json(out)
    assert result["stored"] == result["published"] > 100 and result["duplicates"] == 0


def test_sim_run_publishes_to_a_broker(broker: Mosquitto, tmp_path: Path) -> None:
    import threading

    from core.settings import IngestSettings
    from ingest.service import IngestService

    store = Store(f"sqlite:///{tmp_path / 'sim.db'}")
    service = IngestService(mqtt_settings(broker), IngestSettings(client_id="sim-run-ingest"), store)
    stop = threading.Event()
    worker = threading.Thread(target=service.run, args=(stop,), daemon=True)
    worker.start()
    try:
        assert service.connected.wait(10)
        out = subprocess.run([sys.executable, "-m", "genedge", "sim", "run", "--duration", "3", "--broker",
                              f"127.0.0.1:{broker.port}", "--publisher-id", "sim-cli"],
                             capture_output=True, text=True, timeout=120, check=True).stdout
        published = _last_json(out)["published"]
        assert published > 50
        end = time.monotonic() + 30
        while store.count_readings("sim-cli") < published and time.monotonic() < end:
            time.sleep(0.1)
        assert store.count_readings("sim-cli") == published
        assets = {r.asset_id for r in store.readings("P-101", limit=5)} | set(store.asset_ids())
        assert len(set(store.asset_ids())) >= 6 and "P-101" in assets
    finally:
        stop.set()
        worker.join(30)
