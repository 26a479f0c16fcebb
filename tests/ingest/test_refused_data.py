"""One bad message never stops ingest: control characters are refused on the wire, and whatever the
database still refuses is split out of its batch and dead-lettered with the database's reason."""

from __future__ import annotations

import json
import unicodedata
from datetime import datetime

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import StoreRejectedError, WireError
from core.settings import IngestSettings, MqttSettings
from core.wire import StatusReport, decode, encode, printable, topic_for, utcnow
from edge_agent.publisher import MqttPublisher
from genedge.localservices import Mosquitto
from ingest.service import IngestService
from ingest.store import Store
from tests._factories import SITE, good_reading, mqtt_settings, wait_for
from tests.ingest.test_ingest_mqtt import running

CONTROL = st.characters(categories=["Cc"])
PRINTABLE = st.text(st.characters(categories=["L", "M", "N", "P", "S", "Zs"]), max_size=20)


def _status(detail: str, seq: int = 1, publisher: str = "agent-1") -> dict[str, object]:
    return {"type": "status", "publisher": publisher, "seq": seq, "asset_id": "pump-01", "state": "online",
            "uptime_s": 1.0, "detail": detail}


@settings(max_examples=60, deadline=None)
@given(before=PRINTABLE, ch=CONTROL.filter(lambda c: c not in "\t\n\r"), after=PRINTABLE)
def test_a_control_character_in_free_text_is_refused_on_the_wire(before: str, ch: str, after: str) -> None:
    with pytest.raises(WireError) as caught:
        decode(json.dumps(_status(before + ch + after)))
    assert caught.value.reason == "invalid"
    assert f"U+{ord(ch):04X}" in caught.value.detail


@settings(max_examples=60, deadline=None)
@given(name=st.text(min_size=1, max_size=40))
def test_names_take_printable_text_only(name: str) -> None:
    frame = {"type": "prediction", "publisher": "agent-1", "seq": 1, "asset_id": "pump-01", "model_name": name,
             "model_version": "v1", "at": "2026-01-01T00:00:00+00:00", "rul_median": 5.0, "rul_lower": 1.0,
             "rul_upper": 9.0, "coverage": 0.9}
    clean = not any(unicodedata.category(c) in ("Cc", "Cs") for c in name)
    try:
        decoded = decode(json.dumps(frame))
    except WireError:
        assert not clean
    else:
        assert clean and decoded.model_name == name  # type: ignore[union-attr]


def test_line_breaks_stay_allowed_in_status_details() -> None:
    assert decode(json.dumps(_status("line one\n\tline two\r\n"))).detail == "line one\n\tline two\r\n"  # type: ignore[union-attr]


def _unchecked_status(detail: str, seq: int) -> StatusReport:
    """A status the wire would refuse, built without validation: stands for any data the store refuses."""
    return StatusReport.model_construct(publisher="agent-1", seq=seq, asset_id="pump-01", state="online", uptime_s=1.0,
                                        detail=detail, msg_id=f"unchecked{seq:08d}", sent_at=utcnow(), v=1,
                                        type="status", historical=False, queue_depth=0)


@pytest.mark.postgres
def test_postgres_refusing_a_nul_is_a_data_error_not_an_outage(pg_db: str) -> None:
    store = Store(pg_db)
    with pytest.raises(StoreRejectedError, match="refused by the database"):
        store.write([(_unchecked_status("a\x00b", 1), utcnow())])
    assert store.write([(_unchecked_status("fine", 2), utcnow())]).inserted == 1


@pytest.mark.postgres
def test_a_refused_message_is_split_out_of_its_batch_and_dead_lettered(pg_db: str) -> None:
    store = Store(pg_db)
    # no broker needed: the batch is queued as _on_message queues it, then flushed
    service = IngestService(MqttSettings(port=1), IngestSettings(client_id="ingest-refused"), store, evaluate_alarms=False)
    now: datetime = utcnow()
    batch = [(good_reading("pub-r", seq), now) for seq in range(20)]
    batch.insert(7, (_unchecked_status("bad\x00one", 100), now))
    batch.insert(15, (_unchecked_status("bad\x00two", 101), now))
    for message, received_at in batch:  # as _on_message queues them, with their raw topic and payload
        service._pending.messages.append((message, received_at))
        service._pending.raw.append((topic_for(SITE, message.asset_id, message.type), encode(message)))
    service._flush()
    assert store.count_readings("pub-r") == 20, "every good message of the batch is stored"
    dead = store.dead_letters()
    assert sorted(d.reason for d in dead) == ["store_refused", "store_refused"]
    assert all("refused by the database" in d.detail and b"\\u0000" in d.payload for d in dead)
    assert service.stats.by_reason == {"store_refused": 2}
    assert not service._pending, "the batch is done: nothing is retried forever"
    service._flush()  # and a second flush finds nothing to do
    assert store.count_dead_letters() == 2


@pytest.mark.postgres
def test_a_nul_through_the_broker_is_dead_lettered_and_ingest_goes_on(broker: Mosquitto, pg_db: str) -> None:
    store = Store(pg_db)
    service = IngestService(mqtt_settings(broker), IngestSettings(client_id="ingest-nul", flush_interval_s=0.1), store,
                            batch_size=50)
    with running(service):
        pub = MqttPublisher(mqtt_settings(broker), "pub-nul")
        pub.connect()
        for seq in range(30):
            pub.publish(SITE, good_reading("pub-nul", seq))
        pub.publish_raw(topic_for(SITE, "pump-01", "status"), json.dumps(_status("x\u0000y", 1, "pub-nul")).encode())
        for seq in range(30, 60):
            pub.publish(SITE, good_reading("pub-nul", seq))
        assert pub.flush(30)
        pub.close()
        assert wait_for(lambda: store.count_readings("pub-nul") == 60 and store.count_dead_letters() == 1, 30)
    (dead,) = store.dead_letters()
    assert dead.reason == "invalid" and "U+0000" in dead.detail
    assert json.loads(dead.payload)["detail"] == "x\u0000y", "the raw payload is kept byte for byte"


@settings(max_examples=60, deadline=None)
@given(text=st.text(max_size=60))
def test_printable_makes_any_text_a_valid_status_detail(text: str) -> None:
    """What an agent reports from foreign text (a device's error) always goes on the wire."""
    detail = printable(text)
    assert len(detail) == len(text)
    assert decode(json.dumps(_status(detail))).detail == detail  # type: ignore[union-attr]
