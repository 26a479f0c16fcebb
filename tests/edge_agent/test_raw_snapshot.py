"""Raw data on request: a command on the asset's command topic makes the agent send its ring buffer."""

from __future__ import annotations

import json
import sqlite3
import time
from pathlib import Path

from core.mqtt import connect, make_client
from core.settings import EdgeSettings
from core.sim import default_plant
from core.wire import cmd_topic
from edge_agent.agent import EdgeAgent
from edge_agent.publisher import ReliablePublisher
from edge_agent.queue import DiskQueue
from edge_agent.sources.simulator import SimulatorSource
from genedge.localservices import Mosquitto
from tests._factories import mqtt_settings, wait_for
from tests.edge_agent.conftest import HOST_ID, agent_settings, agent_thread, announce_host, running_ingest


def stored_readings(db: Path) -> list[tuple[str, str, float, int]]:
    """(asset, channel, sample rate, number of values) of every stored reading batch of the agent."""
    with sqlite3.connect(db) as c:
        rows = c.execute(
            "SELECT asset_id, channel, sample_rate_hz, n_samples FROM readings WHERE publisher = 'edge-cmd' ORDER BY id"
        )
        return [(str(a), str(ch), float(fs), int(n)) for a, ch, fs, n in rows]


def send_command(broker: Mosquitto, site: str, asset_id: str, command: dict[str, object]) -> None:
    client = make_client(mqtt_settings(broker), client_id="operator-console")
    connect(client)
    client.loop_start()
    client.publish(cmd_topic(site, asset_id), json.dumps(command), qos=1).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


def test_raw_snapshot_on_request_through_the_broker(broker: Mosquitto, tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    settings = agent_settings(broker, tmp_path, "edge-cmd", ring_capacity=4)
    assets = default_plant()[:1]
    asset = assets[0]
    vib = next(c for c in asset.channels if c.sample_rate_hz > 1000 and c.quantity.value == "acceleration")
    with running_ingest(broker, db, "ingest-cmd"):
        announce_host(broker)
        queue = DiskQueue(settings.edge.queue_path)
        pub = ReliablePublisher(
            settings.mqtt,
            settings.mqtt.site,
            settings.edge.agent_id,
            queue,
            assets=[(a.asset_id, [c.name for c in a.channels]) for a in assets],
            primary_host=HOST_ID,
            reconnect_s=(0.5, 2.0),
        )
        agent = EdgeAgent(settings, assets, pub)
        pub.on_command = agent.command
        pub.start()
        assert pub.wait_connected(10)
        source = SimulatorSource(assets, {}, seed=5, interval_s=0.25, snapshot_samples=2048)  # healthy: no alarm
        with agent_thread(lambda stop: agent.run(source, stop)):
            assert wait_for(lambda: agent.stats.windows >= 8, 30)
            assert wait_for(lambda: agent.stats.features_sent >= 8 and len(stored_readings(db)) > 0, 30)
            before = stored_readings(db)
            assert all(fs < EdgeSettings().raw_below_hz for _, _, fs, _ in before), "only slow channels go upstream raw"
            send_command(broker, settings.mqtt.site, asset.asset_id, {"action": "raw", "channel": vib.name, "last": 3})
            send_command(broker, settings.mqtt.site, asset.asset_id, {"action": "reboot"})  # unknown: ignored
            send_command(broker, settings.mqtt.site, "not-my-asset", {"action": "raw"})  # not ours: ignored
            assert wait_for(lambda: agent.stats.raw_snapshots_sent >= 3, 20), agent.stats
            time.sleep(1.0)
        pub.close(drain_timeout=20)
        assert wait_for(lambda: any(ch == vib.name for _, ch, _, _ in stored_readings(db)), 20)
    snapshot = [r for r in stored_readings(db) if r[1] == vib.name]
    assert agent.stats.raw_snapshots_sent == 3, "the last 3 batches of the one channel asked for"
    assert snapshot == [(asset.asset_id, vib.name, vib.sample_rate_hz, 2048)] * 3
