"""Ingest through a real Mosquitto broker into a real database."""

from __future__ import annotations

import threading
from collections import Counter
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import pytest

from core.errors import StoreError
from core.settings import IngestSettings
from core.wire import BirthMessage, encode, topic_for
from edge_agent.publisher import MqttPublisher, ReliablePublisher
from edge_agent.queue import DiskQueue
from genedge.localservices import Mosquitto
from ingest.service import PACKET_HEADROOM_BYTES, IngestService, max_packet_size
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


@pytest.mark.parametrize("protocol", ["5", "3.1.1"])
def test_store_outage_loses_nothing(broker: Mosquitto, tmp_path: Path, protocol: str) -> None:
    """While the database rejects writes nothing is acknowledged and at most
    ``max_buffered_messages`` wait in memory (MQTT 5 asks the broker for that receive maximum;
    both protocols stop reading at the cap); after it recovers all is stored, once."""
    store = Store(f"sqlite:///{tmp_path / 'flaky.db'}")
    failing = {"on": True}
    real_write = store.write

    def flaky_write(*args, **kwargs):  # a unit-level collaborator fault: the broker stays real
        if failing["on"]:
            raise StoreError("disk full (simulated)")
        return real_write(*args, **kwargs)

    store.write = flaky_write  # type: ignore[method-assign]
    cap = 60
    service = IngestService(mqtt_settings(broker), IngestSettings(client_id=f"ingest-t2-{protocol}", flush_interval_s=0.1,
                                                                  max_buffered_messages=cap),
                            store, batch_size=50, protocol=protocol)
    with running(service):
        pub = MqttPublisher(mqtt_settings(broker), "pub-t2")
        pub.connect()
        for seq in range(200):
            pub.publish(SITE, good_reading("pub-t2", seq))
        assert pub.flush(30)
        pub.close()
        assert wait_for(lambda: service.stats.store_failures >= 2 and service.stats.read_pauses >= 1, 20)
        assert store.count_readings() == 0
        assert service.stats.received == cap, "ingest read past its buffer cap while the store was down"
        failing["on"] = False
        assert wait_for(lambda: store.count_readings("pub-t2") == 200, 30)
    assert store.count_duplicate_readings() == 0
    assert service.stats.buffered_high_water == cap


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


def test_data_for_an_asset_of_another_gateway_is_dead_lettered(broker: Mosquitto, tmp_path: Path) -> None:
    """Owners come from the configuration (pump-01 is edge-01's) and from births (the real agent
    publisher edge-03 announces pump-03); anyone else's data for those assets is refused."""
    store = Store(f"sqlite:///{tmp_path / 'own.db'}")
    service = IngestService(mqtt_settings(broker), IngestSettings(client_id="ingest-own"), store,
                            owners={"pump-01": (SITE, "edge-01"), "edge-01": (SITE, "edge-01")})
    queue = DiskQueue(tmp_path / "edge-03.db")
    agent = ReliablePublisher(mqtt_settings(broker), SITE, "edge-03", queue, assets=[("pump-03", ["vib_de"])])
    with running(service):
        agent.start()
        assert wait_for(lambda: (o := service.owners.owner("pump-03")) is not None and o.gateway == "edge-03", 15)
        intruder = MqttPublisher(mqtt_settings(broker), "edge-02")
        intruder.connect()
        intruder.publish(SITE, good_reading("edge-02", 0, asset="pump-01"))  # configured: edge-01's
        intruder.publish(SITE, good_reading("edge-02", 1, asset="pump-03"))  # announced by edge-03
        intruder.publish(SITE, BirthMessage(publisher="edge-02-state", seq=0, asset_id="pump-03"))
        owner = MqttPublisher(mqtt_settings(broker), "edge-01")
        owner.connect()
        owner.publish(SITE, good_reading("edge-01", 0, asset="pump-01"))
        agent.send(good_reading("edge-03", agent.next_seq(), asset="pump-03"))
        assert intruder.flush(10) and owner.flush(10) and agent.drain(10)
        intruder.close()
        owner.close()
        assert wait_for(lambda: store.count_readings() == 2 and store.count_dead_letters() == 3, 20)
        agent.close()
    assert store.count_readings("edge-01") == 1 and store.count_readings("edge-03") == 1
    dead = store.dead_letters()
    assert {d.reason for d in dead} == {"not_owner"}
    assert {d.topic for d in dead} == {topic_for(SITE, "pump-01", "readings"), topic_for(SITE, "pump-03", "readings"),
                                       topic_for(SITE, "pump-03", "birth")}
    assert all("belongs to gateway" in d.detail for d in dead)
    assert service.stats.by_reason == {"not_owner": 3}


def test_mqtt5_maximum_packet_size_keeps_far_oversize_messages_out_of_ingest(broker: Mosquitto, tmp_path: Path) -> None:
    """Ingest asks for packets up to twice max_payload_bytes (+ headroom): a payload beyond the limit
    but within that still arrives and is dead-lettered as oversize; the broker drops larger ones
    before they reach ingest's memory, and ingest goes on."""
    limit = 10_000
    assert max_packet_size(limit) == 2 * limit + PACKET_HEADROOM_BYTES
    store = Store(f"sqlite:///{tmp_path / 'big.db'}")
    service = IngestService(mqtt_settings(broker), IngestSettings(client_id="ingest-big", max_payload_bytes=limit),
                            store, protocol="5")
    topic = topic_for(SITE, "pump-01", "readings")
    with running(service):
        pub = MqttPublisher(mqtt_settings(broker), "pub-big")
        pub.connect()
        pub.publish_raw(topic, b'{"pad": "' + b"x" * (limit + 5_000) + b'"}')  # oversize, still delivered
        pub.publish_raw(topic, b'{"pad": "' + b"x" * (limit * 5) + b'"}')  # beyond the packet size: dropped
        pub.publish(SITE, good_reading("pub-big", 0))
        assert pub.flush(10)
        pub.close()
        assert wait_for(lambda: store.count_readings() == 1 and store.count_dead_letters() == 1, 20)
    assert [d.reason for d in store.dead_letters()] == ["oversize"]
    assert service.stats.received == 2, "the broker delivered a packet larger than ingest asked for"


def test_what_ingest_holds_when_the_broker_dies_is_stored_even_if_the_store_fails_first(broker: Mosquitto,
                                                                                       tmp_path: Path) -> None:
    """The broker is killed while ingest holds messages it has not committed, and the first write after
    the disconnect fails: the broker can never redeliver them (it kept nothing), so ingest must keep
    them and write them once the store takes them."""
    store = Store(f"sqlite:///{tmp_path / 'held.db'}")
    failing = {"writes": 0}
    real_write = store.write

    def failing_once(*args, **kwargs):  # a unit-level collaborator fault: the broker stays real
        if failing["writes"] == 0 and args[0]:
            failing["writes"] += 1
            raise StoreError("deadlock detected (simulated)")
        return real_write(*args, **kwargs)

    store.write = failing_once  # type: ignore[method-assign]
    service = IngestService(mqtt_settings(broker), IngestSettings(client_id="ingest-held", flush_interval_s=60.0),
                            store, batch_size=500)
    with running(service):
        pub = MqttPublisher(mqtt_settings(broker), "pub-held")
        pub.connect()
        for seq in range(40):
            pub.publish(SITE, good_reading("pub-held", seq))
        assert pub.flush(30)
        pub.close()
        assert wait_for(lambda: service.stats.received == 40, 15), "ingest did not receive the messages"
        assert store.count_readings() == 0  # held: the flush interval has not passed
        service.settings = service.settings.model_copy(update={"flush_interval_s": 0.2})
        broker.kill()  # no persistence: the broker forgets everything it had
        assert wait_for(lambda: store.count_readings("pub-held") == 40, 30), store.count_readings("pub-held")
    assert failing["writes"] == 1 and service.stats.store_failures >= 1
    assert store.count_duplicate_readings() == 0
