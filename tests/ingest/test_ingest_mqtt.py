"""Ingest through a real Mosquitto broker into a real database."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

from core.errors import StoreError
from core.settings import IngestSettings
from core.wire import encode, topic_for
from edge_agent.publisher import MqttPublisher
from genedge.localservices import Mosquitto
from ingest.service import IngestService
from ingest.store import Store
from tests._factories import SITE, bad_message, good_reading, mqtt_settings, wait_for


@contextmanager
def running(service: IngestService) -> Iterator[IngestService]:
    stop = threading.Event()
    worker = threading.Thread(target=service.run, args=(stop,), kwargs={"drain_s": 0.3}, daemon=True)
    worker.start()
    try:
        assert service.connected.wait(15), "ingest did not connect to the broker"
        yield service
    finally:
        stop.set()
        worker.join(30)


def test_good_stored_once_bad_dead_lettered(broker: Mosquitto, tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'ingest.db'}")
    service = IngestService(mqtt_settings(broker), IngestSettings(client_id="ingest-t1"), store, batch_size=500)
    n_good, n_bad = 10_000, 1_000
    expected_reasons: Counter[str] = Counter()
    good_ids = []
    with running(service):
        pub = MqttPublisher(mqtt_settings(broker), "pub-t1")
        pub.connect()
        for seq in range(n_good):
            msg = good_reading("pub-t1", seq)
            good_ids.append(msg.msg_id)
            pub.publish(SITE, msg)
            if seq % 10 == 9:  # one bad message after every ten good ones
                topic, payload, reason = bad_message(seq // 10)
                expected_reasons[reason] += 1
                pub.publish_raw(topic, payload)
        assert pub.flush(60), "broker did not acknowledge every publish"
        pub.close()
        assert wait_for(lambda: store.count_readings() + store.count_dead_letters() >= n_good + n_bad)

    assert store.count_readings("pub-t1") == n_good
    assert store.count_duplicate_readings() == 0
    assert store.stored_msg_ids(good_ids) == set(good_ids)
    assert store.count_dead_letters() == n_bad
    dead = store.dead_letters(limit=n_bad)
    assert Counter(d.reason for d in dead) == expected_reasons
    assert all(d.detail and d.topic and d.payload for d in dead), "every dead letter keeps topic, payload and why"
    assert service.stats.stored == n_good


def test_store_outage_loses_nothing(broker: Mosquitto, tmp_path: Path) -> None:
    """While the database rejects writes nothing is acknowledged; after it recovers all is stored."""
    store = Store(f"sqlite:///{tmp_path / 'flaky.db'}")
    failing = {"on": True}
    real_write = store.write

    def flaky_write(*args, **kwargs):  # a unit-level collaborator fault: the broker stays real
        if failing["on"]:
            raise StoreError("disk full (simulated)")
        return real_write(*args, **kwargs)

    store.write = flaky_write  # type: ignore[method-assign]
    service = IngestService(mqtt_settings(broker), IngestSettings(client_id="ingest-t2", flush_interval_s=0.1),
                            store, batch_size=50)
    with running(service):
        pub = MqttPublisher(mqtt_settings(broker), "pub-t2")
        pub.connect()
        for seq in range(200):
            pub.publish(SITE, good_reading("pub-t2", seq))
        assert pub.flush(30)
        pub.close()
        assert wait_for(lambda: service.stats.store_failures >= 2, 20)
        assert store.count_readings() == 0
        failing["on"] = False
        assert wait_for(lambda: store.count_readings("pub-t2") == 200, 30)
    assert store.count_duplicate_readings() == 0


def test_topics_outside_the_scheme_are_dead_lettered(broker: Mosquitto, tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'x.db'}")
    service = IngestService(mqtt_settings(broker), IngestSettings(client_id="ingest-t3"), store)
    with running(service):
        pub = MqttPublisher(mqtt_settings(broker), "pub-t3")
        pub.connect()
        for i in range(3):
            pub.publish_raw(f"genedge/v1/{SITE}/too/many/levels/{i}", encode(good_reading("pub-t3", i)))
        pub.publish_raw(topic_for(SITE, "pump-01", "readings"), encode(good_reading("pub-t3", 99)))
        assert pub.flush(10)
        pub.close()
        assert wait_for(lambda: store.count_readings() == 1 and store.count_dead_letters() == 3, 20)
    assert {d.reason for d in store.dead_letters()} == {"unknown_topic"}
