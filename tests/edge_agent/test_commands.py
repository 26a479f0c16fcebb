"""Hostile commands into a running agent over the real broker: refused with an answer, never fatal."""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import paho.mqtt.client as mqtt
from hypothesis import HealthCheck, given
from hypothesis import settings as hsettings
from hypothesis import strategies as st

from core.assets import AssetConfig
from core.mqtt import connect, make_client
from core.settings import Settings
from core.sim import default_plant
from core.wire import StatusReport, cmd_topic, decode
from edge_agent.agent import EdgeAgent
from edge_agent.publisher import ReliablePublisher
from edge_agent.sources.simulator import SimulatorSource
from edge_agent.wiring import build_agent
from genedge.localservices import Mosquitto
from tests._factories import mqtt_settings, wait_for
from tests.edge_agent.conftest import agent_settings, agent_thread

REPO = Path(__file__).resolve().parents[2]


class Console:
    """An MQTT client that sends commands and records every status on the site."""

    def __init__(self, broker: Mosquitto, site: str) -> None:
        self.site = site
        self.statuses: list[StatusReport] = []
        self.births: list[str] = []
        self._lock = threading.Lock()
        self.client = make_client(mqtt_settings(broker), client_id=f"console-{os.getpid()}-{id(self)}")
        self.client.on_message = self._on_message
        subscribed = threading.Event()
        self.client.on_subscribe = lambda *_a: subscribed.set()
        connect(self.client)
        self.client.loop_start()
        assert wait_for(self.client.is_connected, 10)
        self.client.subscribe([(f"genedge/v1/{site}/+/status", 1), (f"genedge/v1/{site}/+/birth", 1)])
        assert subscribed.wait(10)

    def _on_message(self, _c: mqtt.Client, _u: object, msg: mqtt.MQTTMessage) -> None:
        message = decode(msg.payload, msg.topic)
        with self._lock:
            if isinstance(message, StatusReport):
                self.statuses.append(message)
            else:
                self.births.append(message.asset_id)

    def refusals(self, asset_id: str) -> list[str]:
        with self._lock:
            return [s.detail for s in self.statuses
                    if s.asset_id == asset_id and s.detail.startswith("command refused: ")]

    def send(self, asset_id: str, payload: bytes, qos: int = 1) -> mqtt.MQTTMessageInfo:
        return self.client.publish(cmd_topic(self.site, asset_id), payload, qos=qos)

    def close(self) -> None:
        self.client.disconnect()
        self.client.loop_stop()


@contextmanager
def running_agent(settings: Settings, assets: list[AssetConfig]) -> Iterator[tuple[EdgeAgent, ReliablePublisher]]:
    """The agent as ``genedge agent run`` wires it, on the test's broker, in a thread."""
    agent, pub = build_agent(settings, assets, reconnect_s=(0.5, 2.0))
    pub.start()
    assert pub.wait_connected(10)
    source = SimulatorSource(assets, {}, seed=5, interval_s=0.25, snapshot_samples=2048)
    try:
        with agent_thread(lambda stop: agent.run(source, stop)):
            assert wait_for(lambda: agent.stats.windows >= 2, 30)
            yield agent, pub
    finally:
        pub.close(drain_timeout=10)


def refused_total(agent: EdgeAgent) -> int:
    return agent.commands.refused_total()


#: JSON of any shape, command-shaped objects with values of any type, and bytes
json_values = st.recursive(st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(),
                           lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(), inner, max_size=3),
                           max_leaves=8)
command_like = st.fixed_dictionaries(
    {"action": st.sampled_from(["raw", "reboot", "", 0, None])},
    optional={"last": json_values, "channel": json_values, "requester": json_values, "request_id": json_values,
              "extra": json_values},
)
payloads = st.binary(max_size=256) | json_values.map(lambda v: json.dumps(v).encode()) | command_like.map(
    lambda v: json.dumps(v).encode())


def test_fuzzed_commands_never_stop_the_agent_and_every_refusal_is_answered(broker: Mosquitto, tmp_path: Path) -> None:
    cfg = agent_settings(broker, tmp_path, "edge-fuzz", ring_capacity=2, command_burst_per_asset=1000,
                              command_burst_per_requester=1000)
    assets = default_plant()[:1]
    asset_id = assets[0].asset_id
    console = Console(broker, cfg.mqtt.site)
    outcomes = {"served": 0, "refused": 0}
    try:
        with running_agent(cfg, assets) as (agent, _pub):

            @settings_for_fuzz
            @given(payload=payloads)
            def fuzz(payload: bytes) -> None:
                served, refused = agent.commands.served, refused_total(agent)
                answered = len(console.refusals(asset_id))
                console.send(asset_id, payload).wait_for_publish(5)
                assert wait_for(lambda: agent.commands.served + refused_total(agent) > served + refused, 10), (
                    "the agent took the command")
                if refused_total(agent) > refused:
                    outcomes["refused"] += 1
                    assert wait_for(lambda: len(console.refusals(asset_id)) > answered, 10), "refusal answered"
                    if len(payload) >= 8:
                        assert payload.decode("utf-8", "replace") not in console.refusals(asset_id)[-1], "no echo"
                else:
                    outcomes["served"] += 1

            fuzz()
            windows = agent.stats.windows
            assert wait_for(lambda: agent.stats.windows > windows + 2, 20), "the agent goes on processing"
            snapshots = agent.stats.raw_snapshots_sent
            console.send(asset_id, b'{"action": "raw", "last": 1}').wait_for_publish(5)
            assert wait_for(lambda: agent.stats.raw_snapshots_sent > snapshots, 10), "and still serves commands"
    finally:
        console.close()
    assert outcomes["refused"] > 20 and outcomes["served"] > 0, outcomes
    assert sum(agent.stats.commands_refused.values()) == outcomes["refused"]


settings_for_fuzz = hsettings(max_examples=80, deadline=None, database=None,
                             suppress_health_check=[HealthCheck.too_slow])


def test_the_issue_example_no_longer_stops_genedge_agent_run(broker: Mosquitto, tmp_path: Path) -> None:
    config = tmp_path / "genedge.toml"
    config.write_text(f'[edge]\nagent_id = "edge-cli"\nqueue_path = "{tmp_path / "q.db"}"\nstatus_interval_s = 1.0\n')
    site = Settings().mqtt.site
    asset_id = default_plant()[0].asset_id
    console = Console(broker, site)
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    proc = subprocess.Popen(  # the real console script's entry, as an operator runs it
        [str(Path(sys.executable).parent / "genedge"), "agent", "run", "--config", str(config),
         "--broker", f"127.0.0.1:{broker.port}", "--duration", "8"],
        cwd=REPO, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        assert wait_for(lambda: asset_id in console.births, 30), "the agent came up"
        console.send(asset_id, b'{"action":"raw","last":"x"}').wait_for_publish(5)
        assert wait_for(lambda: bool(console.refusals(asset_id)), 10), "the bad command is answered"
        out, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
        console.close()
    assert proc.returncode == 0, err[-2000:]
    stats = json.loads(out.strip().splitlines()[-1])
    assert stats["commands_refused"] == {"invalid": 1}
    assert stats["windows"] > 0 and stats["task_restarts"] == {}
    assert console.refusals(asset_id) == ["command refused: last: Input should be a valid integer"]


def test_a_flood_is_served_at_the_configured_rate_and_bounded(broker: Mosquitto, tmp_path: Path) -> None:
    max_bytes = 256 * 1024
    cfg = agent_settings(broker, tmp_path, "edge-flood", ring_capacity=4, command_queue_max=32,
                              command_rate_per_asset=6.0, command_burst_per_asset=3, queue_max_bytes=max_bytes)
    assets = default_plant()[:1]
    asset_id = assets[0].asset_id
    console = Console(broker, cfg.mqtt.site)
    peaks = {"commands": 0, "bytes": 0}
    try:
        with running_agent(cfg, assets) as (agent, pub):
            watching = threading.Event()

            def watch() -> None:
                while not watching.is_set():
                    peaks["commands"] = max(peaks["commands"], agent.commands.queue.qsize())
                    peaks["bytes"] = max(peaks["bytes"], pub.queue.nbytes)
                    time.sleep(0.005)

            watcher = threading.Thread(target=watch, daemon=True)
            watcher.start()
            started = time.monotonic()
            infos = [console.send(asset_id, json.dumps({"action": "raw", "requester": f"op{i % 50}"}).encode())
                     for i in range(1000)]
            for info in infos:
                info.wait_for_publish(10)
            flood_s = time.monotonic() - started
            assert flood_s < 5, f"1,000 commands took {flood_s:.1f} s to publish"
            assert wait_for(lambda: agent.commands.served + refused_total(agent) == 1000, 30), agent.commands.refused
            elapsed = time.monotonic() - started
            windows = agent.stats.windows
            assert wait_for(lambda: agent.stats.windows > windows + 2, 20), "the agent is alive after the flood"
            watching.set()
            watcher.join(5)
    finally:
        console.close()
    served = agent.commands.served
    assert 3 <= served <= 3 + 6.0 / 60 * elapsed + 1, f"served {served} in {elapsed:.1f} s at 6/min, burst 3"
    refused = agent.stats.commands_refused
    assert sum(refused.values()) == 1000 - served, "every refused command is counted"
    assert set(refused) <= {"queue full", "rate limit (asset)"} and refused.get("rate limit (asset)", 0) > 0, refused
    assert peaks["commands"] <= 32, "the command queue stays within command_queue_max"
    assert peaks["bytes"] <= max_bytes, "the disk queue stays within queue_max_bytes"
    answers = console.refusals(asset_id)
    assert 0 < len(answers) < 200, "refusals are answered, one status per asset and pass, not one per command"
    counts = [re.search(r"; (\d+) commands refused \(", a) for a in answers]
    tallied = sum(int(m.group(1)) if m else 1 for m in counts)
    assert tallied == 1000 - served, "the answers account for every refused command"


