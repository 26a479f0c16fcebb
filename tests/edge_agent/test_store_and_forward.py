"""Store-and-forward through a real Mosquitto outage, into the real ingest service and store."""

from __future__ import annotations

import threading
import time
from datetime import datetime
from pathlib import Path

from core.sim import default_faults, default_plant
from edge_agent.agent import EdgeAgent
from edge_agent.publisher import ReliablePublisher
from edge_agent.queue import DiskQueue
from edge_agent.sources.simulator import SimulatorSource
from genedge.localservices import Mosquitto
from tests._factories import wait_for
from tests.edge_agent.conftest import (
    HOST_ID,
    agent_settings,
    agent_thread,
    announce_host,
    rows,
    running_ingest,
    status_kinds,
)

OUTAGE_S = 60.0


def test_queue_bounds_and_overflow_policies(tmp_path: Path) -> None:
    oldest = DiskQueue(tmp_path / "a.db", max_messages=3, overflow="drop_oldest")
    for i in range(5):
        oldest.put("t", str(i).encode())
    assert [m.payload for m in oldest.peek()] == [b"2", b"3", b"4"] and oldest.dropped == 2
    newest = DiskQueue(tmp_path / "b.db", max_messages=3, overflow="drop_newest")
    assert [newest.put("t", str(i).encode()) is not None for i in range(5)] == [True, True, True, False, False]
    assert [m.payload for m in newest.peek()] == [b"0", b"1", b"2"]
    newest.close()
    reopened = DiskQueue(tmp_path / "b.db", max_messages=3)
    assert len(reopened) == 3, "the queue is durable across restarts"


def test_broker_outage_every_message_once_in_order(broker: Mosquitto, tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    settings = agent_settings(broker, tmp_path, "edge-sf", status_interval_s=5.0)
    assets = default_plant()[:2]
    with running_ingest(broker, db, "ingest-sf") as (service, _store):
        announce_host(broker)
        queue = DiskQueue(settings.edge.queue_path, settings.edge.queue_max_messages, settings.edge.overflow)
        pub = ReliablePublisher(settings.mqtt, settings.mqtt.site, settings.edge.agent_id, queue,
                                assets=[(a.asset_id, [c.name for c in a.channels]) for a in assets],
                                primary_host=HOST_ID, reconnect_s=(0.5, 2.0)).start()
        assert pub.wait_connected(10)
        agent = EdgeAgent(settings, assets, pub)
        source = SimulatorSource(assets, default_faults(assets, 3), seed=3, interval_s=0.5, snapshot_samples=2048)

        with agent_thread(lambda stop: agent.run(source, stop)):
            time.sleep(4.0)
            outage_from = datetime.now().astimezone()
            broker.stop()
            time.sleep(OUTAGE_S)
            broker.start()
            outage_to = datetime.now().astimezone()
            assert service.connected.wait(20), "ingest did not come back"
            time.sleep(0.5)  # its SUBSCRIBE is through; now the host says it is online
            announce_host(broker)
            assert wait_for(lambda: pub.connected and len(queue) < 50, 30), "backlog was not replayed"
            time.sleep(3.0)
        pub.close(drain_timeout=20)
        total = pub.stats.queued
        assert queue.dropped == 0
        assert wait_for(lambda: sum(len(v) for v in rows(db, "edge-sf").values()) >= total, 30), (
            f"stored {sum(len(v) for v in rows(db, 'edge-sf').values())} of {total}: {pub.stats} {service.stats}")

    stored = rows(db, "edge-sf")
    seqs = sorted(s for table in stored.values() for s, _, _ in table)
    assert seqs == list(range(total)), "every message exactly once, none missing"
    for table, items in stored.items():
        in_arrival = [s for s, _, _ in items]
        assert in_arrival == sorted(in_arrival), f"{table} arrived out of order"
    during = [(h, t) for items in stored.values() for _, h, t in items
              if outage_from.timestamp() + 1 < datetime.fromisoformat(t).timestamp() < outage_to.timestamp() - 1]
    before = [h for items in stored.values() for _, h, t in items
              if datetime.fromisoformat(t).timestamp() < outage_from.timestamp() - 1]
    assert len(during) > 50 and all(h for h, _ in during), "messages of the gap must be flagged historical"
    assert before and not any(before), "live messages before the outage are not historical"
    kinds = status_kinds(db)
    agent_births = [k for k in kinds if k[0] == "edge-sf" and k[1] == "birth"]
    assert len(agent_births) >= 2, "the agent is born again after reconnecting"
    assert {a.asset_id for a in assets} <= {k[0] for k in kinds if k[1] == "birth"}
    assert ("edge-sf", "death", "edge-sf-state") in kinds, "clean shutdown publishes the agent's death"
    print(f"outage test: {total} messages, {len(during)} during the {OUTAGE_S:.0f} s outage, "
          f"replayed {pub.stats.replayed}, reconnects {pub.stats.connects - 1}")
    assert threading.active_count() < 50
