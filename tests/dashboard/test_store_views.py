"""The store queries the dashboard reads edge data through: feature series, snapshots, freshness, quality."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime, timedelta
from pathlib import Path

import pytest

from core.errors import StoreError
from core.sim import default_plant
from core.wire import DataQuality, FeatureFrame, Message, ReadingBatch, StatusReport, utcnow
from ingest.store import Store, queries

T0 = utcnow().replace(microsecond=0) - timedelta(minutes=5)


def _frame(seq: int, at: datetime, features: dict[str, dict[str, float]],
           quality: DataQuality = DataQuality.GOOD) -> FeatureFrame:
    return FeatureFrame(publisher="edge", seq=seq, asset_id="P-101", window_start=at, window_s=1.0,
                        features=features, quality=quality)


def _batch(seq: int, channel: str, start: datetime, values: list[float]) -> ReadingBatch:
    fast = len(values) > 1
    return ReadingBatch(publisher="edge", seq=seq, asset_id="P-101", channel=channel,
                        quantity="acceleration" if fast else "temperature", unit="g" if fast else "degC",
                        sample_rate_hz=25600.0 if fast else 1.0, start=start, values=values)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 's.db'}") as s:
        s.upsert_assets(default_plant()[:1])
        yield s


def _write(store: Store, *items: tuple[Message, datetime]) -> None:
    store.write(list(items))


def test_feature_series_reads_chosen_features_oldest_first(store: Store) -> None:
    frames = [(_frame(i, T0 + timedelta(seconds=i), {"vib_de": {"rms": 0.1 * i, "env_bpfo_h1": 0.01 * i},
                                                      "health": {"alarm": float(i >= 3)}}), T0) for i in range(5)]
    frames.append((_frame(9, T0 + timedelta(seconds=9), {"temp_de": {"silent_s": 12.0}}, DataQuality.DEVICE_SILENT),
                   T0))
    _write(store, *frames)
    s = queries.feature_series(store, "P-101", ["vib_de.rms", "health.alarm", "vib_de.nope"], limit=4)
    assert len(s) == 4 and s.times[-1] == T0 + timedelta(seconds=9)
    assert s.values["vib_de.rms"] == pytest.approx((0.2, 0.3, 0.4, None))  # type: ignore[arg-type]
    assert s.values["health.alarm"] == (0.0, 1.0, 1.0, None)
    assert s.values["vib_de.nope"] == (None, None, None, None)
    assert s.quality[-1] == "device_silent"
    times, values = s.present("vib_de.rms")
    assert values == pytest.approx([0.2, 0.3, 0.4]) and times[0] == T0 + timedelta(seconds=2)
    assert queries.feature_baseline(store, "P-101", "vib_de.env_bpfo_h1", n=3) == pytest.approx(0.01)
    assert queries.feature_baseline(store, "P-101", "vib_de.nope") is None
    with pytest.raises(StoreError, match=r"feature keys look like 'channel\.name'"):
        queries.feature_series(store, "P-101", ["rms"])


def test_latest_snapshot_is_the_batches_sent_together(store: Store) -> None:
    early = [(_batch(i, "vib_de", T0 + timedelta(seconds=i), [0.1, -0.1, 0.2]), T0 + timedelta(seconds=10))
             for i in range(3)]
    # A second snapshot a minute later: the ring's newest batches, received together.
    late_rx = T0 + timedelta(seconds=70)
    late = [(_batch(10 + i, "vib_de", T0 + timedelta(seconds=60 + i), [0.3, -0.3, 0.1]), late_rx) for i in range(4)]
    _write(store, *early, *late)
    snap = queries.latest_snapshot(store, "P-101", "vib_de")
    assert snap is not None and snap.received_at == late_rx and len(snap.batches) == 4
    assert (snap.oldest_start, snap.newest_start) == (T0 + timedelta(seconds=60), T0 + timedelta(seconds=63))
    assert snap.batches[0].values.tolist() == pytest.approx([0.3, -0.3, 0.1])
    assert queries.latest_snapshot(store, "P-101", "mic") is None


def test_channels_seen_in_features_ignore_silence_reports(store: Store) -> None:
    _write(store, (_frame(1, T0, {"vib_de": {"rms": 0.1}, "temp_de": {"mean": 40.0}}), T0),
           (_frame(2, T0 + timedelta(seconds=5), {"vib_de": {"rms": 0.1}}), T0),
           (_frame(3, T0 + timedelta(seconds=6), {"temp_de": {"silent_s": 6.0}}, DataQuality.DEVICE_SILENT), T0))
    seen = queries.feature_channels_seen(store, "P-101", ["vib_de", "temp_de", "mic"], since=T0 - timedelta(minutes=1))
    assert seen == {"vib_de": T0 + timedelta(seconds=5), "temp_de": T0, "mic": None}
    assert queries.feature_channels_seen(store, "P-101", ["vib_de"], since=T0 + timedelta(minutes=1)) == {
        "vib_de": None}


def test_quality_from_frames_and_raw_batches(store: Store) -> None:
    now = T0 + timedelta(seconds=10)
    stale_after = timedelta(seconds=30)

    def quality(*items: tuple[Message, datetime]) -> str:
        _write(store, *items)
        row = next(o for o in queries.plant_overview(store, now=now, stale_after=stale_after)
                   if o.asset.asset_id == "P-101")
        return row.quality

    assert quality() == "no data"
    old_snapshot = (_batch(1, "vib_de", T0 - timedelta(minutes=3), [0.0, 0.0, 0.0]), T0 - timedelta(minutes=3))
    assert quality(old_snapshot) == "stale"
    # Fresh features: an old (even flat) snapshot does not spoil them.
    assert quality((_frame(2, T0 + timedelta(seconds=5), {"vib_de": {"rms": 0.1}}), now)) == "good"
    assert quality((_frame(3, T0 + timedelta(seconds=6), {"vib_de": {"flatline": 1.0, "value": 0.0}},
                           DataQuality.FLATLINE), now)) == "flatline"
    assert quality((_frame(4, T0 + timedelta(seconds=7), {"temp_de": {"silent_s": 11.0}},
                           DataQuality.DEVICE_SILENT), now)) == "silent"
    assert quality((_frame(5, T0 + timedelta(seconds=8), {"vib_de": {"rms": 0.1}}), now)) == "good"


def test_an_edge_agent_known_by_its_status_is_not_a_monitored_asset(store: Store) -> None:
    _write(store, (StatusReport(publisher="edge", seq=1, asset_id="edge-01", state="online", uptime_s=1.0,
                                queue_depth=0), T0),
           (_frame(2, T0, {"vib_de": {"rms": 0.1}}), T0))
    rows = {o.asset.asset_id: o for o in queries.plant_overview(store)}
    assert set(rows) == {"P-101", "edge-01"}
    assert rows["P-101"].monitored and not rows["edge-01"].monitored


def test_rul_at_the_models_cap_reads_as_at_least() -> None:
    """A median at the model's training cap means "at least this long": never show it as a point value."""
    from dashboard._status import rul_line, rul_text

    base = {"asset_id": "P-101", "model_name": "sim-bearing", "model_version": "v1", "at": T0, "rul_unit": "h",
            "rul_lower": 150.0, "rul_upper": 200.0, "coverage": 0.9, "health_index": None}
    capped = queries.PredictionView(**base, rul_median=200.0, rul_cap=200.0)
    assert capped.at_cap and rul_text(capped).value == "≥ 200"
    assert rul_line(capped) == "≥ 200 h (model cap)"  # no lower bound of 150 h beside "at least 200 h"
    below = queries.PredictionView(**{**base, "rul_lower": 60.0}, rul_median=80.0, rul_cap=200.0)
    assert not below.at_cap and rul_line(below) == "80 h [60–200 h] (90%)"
    unknown = queries.PredictionView(**base, rul_median=200.0)  # older agents don't send a cap
    assert not unknown.at_cap and rul_text(unknown).value == "200"


def test_share_of_life_reads_as_life_left() -> None:
    """A share-of-life model (wire unit "%"): 100 % is as new, not a cap; the unit says what the number is."""
    from dashboard._cards import _values_html
    from dashboard._charts import rul_figure
    from dashboard._features import vitals
    from dashboard._status import rul_line, rul_text

    p = queries.PredictionView(asset_id="B-1", model_name="femto-bearing", model_version="v1", at=T0, rul_unit="%",
                               rul_median=100.0, rul_lower=60.0, rul_upper=100.0, coverage=0.9, health_index=None,
                               rul_cap=100.0)
    assert not p.at_cap and rul_text(p).value == "100"
    assert rul_line(p) == "100 % of life left [60–100 %] (90%)"
    assert rul_figure([p]).layout.yaxis.title.text == "RUL (% of life left)"
    info = queries.AssetInfo(asset_id="B-1", site="plant1", line="", name="", kind="", criticality=2, config={},
                             last_seen=T0)
    overview = queries.AssetOverview(asset=info, features=None, readings={}, prediction=p, open_alarms=(),
                                     quality="good", last_update=T0)
    html = _values_html(overview, vitals({}, None), None)
    assert "Life left" in html and "60–100 %" in html and "model cap" not in html
