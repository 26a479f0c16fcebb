"""Helpers for the edge agent tests: ingest running against the real broker, the agent in a thread."""

from __future__ import annotations

import asyncio
import json
import sqlite3
import threading
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

from core.mqtt import connect, make_client
from core.settings import EdgeSettings, IngestSettings, Settings
from edge_agent.publisher import host_state_topic
from genedge.localservices import Mosquitto
from ingest.service import IngestService
from ingest.store import Store
from tests._factories import mqtt_settings

HOST_ID = "ingest-host"


def agent_settings(broker: Mosquitto, tmp_path: Path, agent_id: str, **edge: Any) -> Settings:
    """Settings of an agent on ``broker`` with its queue in ``tmp_path``; ``edge``: more ``[edge]`` options."""
    return Settings(mqtt=mqtt_settings(broker),
                    edge=EdgeSettings(agent_id=agent_id, queue_path=tmp_path / f"{agent_id}-queue.db", **edge))


@contextmanager
def running_ingest(broker: Mosquitto, db: Path, client_id: str) -> Iterator[tuple[IngestService, Store]]:
    store = Store(f"sqlite:///{db}")
    service = IngestService(mqtt_settings(broker), IngestSettings(client_id=client_id, flush_interval_s=0.1),
                            store, batch_size=200)
    stop = threading.Event()
    worker = threading.Thread(target=service.run, args=(stop,), kwargs={"drain_s": 0.3}, daemon=True)
    worker.start()
    try:
        assert service.connected.wait(15), "ingest did not connect to the broker"
        yield service, store
    finally:
        stop.set()
        worker.join(30)
        store.close()


def announce_host(broker: Mosquitto, online: bool = True) -> None:
    """Publish the primary host's retained STATE, as a Sparkplug host application does."""
    client = make_client(mqtt_settings(broker), client_id=f"{HOST_ID}-state")
    connect(client)
    client.loop_start()
    client.publish(host_state_topic(HOST_ID), json.dumps({"online": online}), qos=1, retain=True).wait_for_publish(5)
    client.disconnect()
    client.loop_stop()


@contextmanager
def agent_thread(run: Callable[[threading.Event], Any]) -> Iterator[threading.Event]:
    """Run ``asyncio.run(run(stop))`` in a thread; set ``stop`` and join on exit."""
    stop = threading.Event()
    errors: list[BaseException] = []

    def target() -> None:
        try:
            asyncio.run(run(stop))
        except BaseException as err:
            errors.append(err)

    t = threading.Thread(target=target, name="agent", daemon=True)
    t.start()
    try:
        yield stop
    finally:
        stop.set()
        t.join(30)
    if errors:
        raise errors[0]


def rows(db: Path, publisher: str) -> dict[str, list[tuple[int, bool, str]]]:
    """(seq, historical, sent_at) per table for one publisher, in arrival (insert) order."""
    out: dict[str, list[tuple[int, bool, str]]] = {}
    with sqlite3.connect(db) as c:
        for table in ("readings", "features", "status_reports", "predictions"):
            out[table] = [(int(s), bool(h), str(t)) for s, h, t in c.execute(
                f"SELECT seq, historical, sent_at FROM {table} WHERE publisher = ? ORDER BY id", (publisher,))]
    return out


def status_kinds(db: Path) -> list[tuple[str, str, str]]:
    with sqlite3.connect(db) as c:
        return [(str(a), str(k), str(p)) for a, k, p in
                c.execute("SELECT asset_id, kind, publisher FROM status_reports ORDER BY id")]
