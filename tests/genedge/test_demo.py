"""`genedge demo --headless` end to end, as a user runs it."""

from __future__ import annotations

import json
import os
import sqlite3
import subprocess
import sys
import time
from pathlib import Path

import numpy as np

from edge_agent.publisher import MqttPublisher
from genedge.localservices import Mosquitto, free_port
from ingest.store import Store
from tests._factories import bad_message, mqtt_settings, wait_for


def _demo(args: list[str], env: dict[str, str] | None = None) -> subprocess.Popen[str]:
    return subprocess.Popen([sys.executable, "-m", "genedge", "demo", "--headless", *args],
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True,
                            env={**os.environ, **(env or {})})


def _last_json(stdout: str) -> dict[str, int]:
    return json.loads(stdout.strip().splitlines()[-1])


def _stored_readings(path: Path) -> int:
    if not path.is_file():
        return 0
    try:
        with sqlite3.connect(path) as c:
            return int(c.execute("SELECT count(*) FROM readings").fetchone()[0])
    except sqlite3.Error:  # the demo is still creating the schema
        return 0


def test_demo_30s_with_bad_messages_injected(broker: Mosquitto, tmp_path: Path) -> None:
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    proc = _demo(["--duration", "30", "--db", db, "--broker", f"127.0.0.1:{broker.port}"])
    # inject once ingest is subscribed and storing: messages sent before its first subscription are
    # lost by design (no session yet), and start-up time varies with the machine's load
    assert wait_for(lambda: _stored_readings(tmp_path / "demo.db") > 0 or proc.poll() is not None, 60)
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


def test_demo_publishes_rul_in_hours_and_p101s_falls(tmp_path: Path) -> None:
    """The demo's agent runs the shipped simulator RUL model: every asset gets RUL with an interval,
    and P-101's falls as its outer race wears out (failure at 252 simulated hours, demo seed 7)."""
    from core.sim import default_plant
    from ingest.store import queries

    port, db = free_port(), f"sqlite:///{tmp_path / 'rul.db'}"
    # ten simulated hours a wall second: P-101 reaches the end of its life within the run
    env = {"GENEDGE_MQTT__PORT": str(port), "GENEDGE_SIM__TIME_ACCELERATION": "36000", "GENEDGE_LLM__BACKEND": "rules"}
    proc = _demo(["--duration", "24", "--db", db], env=env)
    _out, err = proc.communicate(timeout=180)
    assert proc.returncode == 0, err[-3000:]
    store = Store(db)
    assets = [a.asset_id for a in default_plant()]
    latest = queries.latest_predictions(store, assets)
    assert set(latest) == set(assets), f"RUL for every asset: {sorted(latest)}"
    for p in latest.values():
        assert p.rul_unit == "h" and p.model_name == "sim-bearing"
        assert 0.0 <= p.rul_lower <= p.rul_median <= p.rul_upper and p.rul_upper > p.rul_lower
    p101 = [p.rul_median for p in queries.predictions(store, "P-101")]
    print("P-101 RUL medians (h):", [round(v) for v in p101])
    assert len(p101) >= 20, p101
    early, late = float(np.mean(p101[:5])), float(np.mean(p101[-5:]))
    assert late < 0.5 * early, f"P-101's RUL must fall as it degrades: {[round(v) for v in p101]}"
