"""Alarms from feature frames: raised once per condition, cleared on return to normal."""

from __future__ import annotations

from pathlib import Path

from core.sim import default_plant
from core.wire import FeatureFrame, utcnow
from ingest.alarms import AlarmEvaluator
from ingest.store import Store, queries


def _frame(seq: int, *, alarm: float, zone: int, learning: float = 0.0) -> FeatureFrame:
    return FeatureFrame(
        publisher="edge-01", seq=seq, asset_id="P-101", window_start=utcnow(), window_s=1.0,
        features={"vib_de": {"rms": 0.3, "iso_zone": float(zone), "vel_rms_mm_s": 2.0 + zone},
                  "health": {"hi": 0.9 if alarm else 0.1, "threshold": 0.5, "alarm": alarm, "learning": learning}},
    )


def _open(store: Store) -> dict[str, str]:
    return {a.kind: a.state for a in queries.alarms(store, states=queries.OPEN_ALARM_STATES)}


def test_alarm_lifecycle_from_frames(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'a.db'}")
    store.upsert_assets(default_plant())
    ev = AlarmEvaluator(store)
    ev.evaluate([_frame(0, alarm=1.0, zone=1, learning=1.0)])
    assert _open(store) == {}, "no alarm while the threshold is still being learned"
    ev.evaluate([_frame(1, alarm=0.0, zone=1), _frame(2, alarm=1.0, zone=2)])
    assert _open(store) == {"health_anomaly": "active", "iso_zone_C": "active"}
    ev.evaluate([_frame(3, alarm=1.0, zone=2)])
    assert ev.raised == 2, "an open alarm is not raised again"
    ev.evaluate([_frame(4, alarm=1.0, zone=3)])
    assert _open(store) == {"health_anomaly": "active", "iso_zone_D": "active"}
    assert next(a for a in queries.alarms(store) if a.kind == "iso_zone_D").severity == "critical"
    ev.evaluate([_frame(5, alarm=0.0, zone=0)])
    assert _open(store) == {}
    assert {a.state for a in queries.alarms(store)} == {"cleared"}
