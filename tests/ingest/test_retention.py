"""Feature aggregates and retention (``ingest.store.retention``) on SQLite and a real PostgreSQL."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest
import sqlalchemy as sa
from alembic import command
from pydantic import ValidationError
from typer.testing import CliRunner

from core.errors import StoreError
from core.settings import RetentionSettings
from core.wire import FeatureFrame, Message, Prediction, ReadingBatch, StatusReport, utcnow
from genedge.cli import app
from ingest.store import DeadLetterIn, Store
from ingest.store._engine import alembic_config, migrate
from ingest.store.models import Alarm, DeadLetter, FeatureRow, PredictionRow, Reading, StatusRow, WorkOrder
from ingest.store.retention import count_buckets, downsample, feature_aggregates, maintain

NOW = datetime(2026, 6, 10, 12, 30, tzinfo=UTC)
TODAY = datetime(2026, 6, 10, tzinfo=UTC)
KEEP_FOREVER = RetentionSettings(readings_days=None, features_days=None, predictions_days=None,
                                 status_reports_days=None, dead_letters_days=None)


class _Frames:
    """Feature frames with known values, and what the buckets of each key must hold."""

    def __init__(self) -> None:
        self.seq = 0
        self.values: dict[tuple[str, str], list[tuple[datetime, float]]] = {}

    def frame(self, asset: str, at: datetime, features: dict[str, dict[str, float]]) -> FeatureFrame:
        self.seq += 1
        for channel, named in features.items():
            for name, value in named.items():
                self.values.setdefault((asset, f"{channel}.{name}"), []).append((at, value))
        return FeatureFrame(publisher="edge-01", seq=self.seq, asset_id=asset, window_start=at, window_s=1.0,
                            features=features)

    def expected(self, asset: str, key: str, start: datetime, width: timedelta) -> tuple[int, float, float, float, float]:
        """(n, mean, min, max, last) by numpy over the frames of one bucket."""
        inside = sorted((t, v) for t, v in self.values[(asset, key)] if start <= t < start + width)
        arr = np.array([v for _, v in inside])
        return len(arr), float(arr.mean()), float(arr.min()), float(arr.max()), inside[-1][1]


def _store(store: Store, messages: list[Message]) -> None:
    result = store.write([(m, utcnow()) for m in messages])
    assert result.inserted == len(messages)


def _a_plant_day(frames: _Frames) -> list[Message]:
    """Two assets, a frame every 7 minutes from two days ago to past now, random values."""
    rng = np.random.default_rng(36)
    out: list[Message] = []
    t = TODAY - 2 * timedelta(days=1)
    while t < NOW + timedelta(minutes=20):
        for asset in ("P-101", "M-201"):
            out.append(frames.frame(asset, t, {"vib_de": {"rms": float(rng.gamma(2.0, 0.3)),
                                                          "kurtosis": float(rng.normal(3, 0.5))},
                                               "temp": {"celsius": float(rng.normal(60, 4))}}))
        t += timedelta(minutes=7)
    return out


def _assert_bucket(store: Store, frames: _Frames, asset: str, key: str, start: datetime, resolution: str) -> None:
    width = timedelta(hours=1) if resolution == "hour" else timedelta(days=1)
    points = feature_aggregates(store, asset, key, resolution=resolution,  # type: ignore[arg-type]
                                since=start, until=start + width)
    assert len(points) == 1, f"{asset}/{key} {resolution} {start}: {points}"
    p = points[0]
    n, mean, lo, hi, last = frames.expected(asset, key, start, width)
    assert p.bucket_start == start and p.n == n
    np.testing.assert_allclose([p.mean, p.min, p.max, p.last], [mean, lo, hi, last], rtol=1e-12)


def _check_aggregates(url: str) -> None:
    frames = _Frames()
    with Store(url) as store:
        _store(store, _a_plant_day(frames))
        first = downsample(store, now=NOW, batch_size=97)
        assert first["rows_scanned"] == len(frames.values[("P-101", "vib_de.rms")]) * 2
        for asset, key in (("P-101", "vib_de.rms"), ("M-201", "temp.celsius"), ("P-101", "vib_de.kurtosis")):
            for hour in (TODAY - timedelta(days=2), TODAY - timedelta(hours=7), TODAY + timedelta(hours=11)):
                _assert_bucket(store, frames, asset, key, hour, "hour")
            for day in (TODAY - timedelta(days=2), TODAY - timedelta(days=1)):
                _assert_bucket(store, frames, asset, key, day, "day")
        # only complete buckets: not the current hour (12:00), not today
        assert feature_aggregates(store, "P-101", "vib_de.rms", since=TODAY + timedelta(hours=12)) == []
        assert feature_aggregates(store, "P-101", "vib_de.rms", resolution="day", since=TODAY) == []
        hours_so_far = 2 * 24 + 12
        assert count_buckets(store) == {"features_hourly": 2 * 3 * hours_so_far, "features_daily": 2 * 3 * 2}

        # repeating the run rewrites the same buckets: nothing counted twice
        before = feature_aggregates(store, "P-101", "vib_de.rms")
        downsample(store, now=NOW)
        downsample(store, now=NOW, batch_size=1)
        assert feature_aggregates(store, "P-101", "vib_de.rms") == before
        assert count_buckets(store) == {"features_hourly": 2 * 3 * hours_so_far, "features_daily": 2 * 3 * 2}

        # a window arriving late for a past hour is added to its buckets once
        late = TODAY - timedelta(hours=5) + timedelta(minutes=59)
        _store(store, [frames.frame("P-101", late, {"vib_de": {"rms": 9.5}})])
        # rebuilt: the late window's day, and today of both assets (looked at again until the day is complete)
        assert downsample(store, now=NOW)["days_rebuilt"] == 3
        downsample(store, now=NOW)
        _assert_bucket(store, frames, "P-101", "vib_de.rms", TODAY - timedelta(hours=5), "hour")
        _assert_bucket(store, frames, "P-101", "vib_de.rms", TODAY - timedelta(days=1), "day")

        # an hour later the hour that was current is complete and written
        downsample(store, now=NOW + timedelta(hours=1))
        _assert_bucket(store, frames, "M-201", "temp.celsius", TODAY + timedelta(hours=12), "hour")


def test_aggregates_match_numpy_and_repeat_without_double_counting(tmp_path: Path) -> None:
    _check_aggregates(f"sqlite:///{tmp_path / 'agg.db'}")


@pytest.mark.postgres
def test_aggregates_on_postgres(pg_db: str) -> None:
    _check_aggregates(pg_db)


def _old_and_new(frames: _Frames) -> list[Message]:
    """One message of each retained kind 400, 100, 40 and 1 days before NOW."""
    out: list[Message] = []
    for i, age in enumerate((400, 100, 40, 1)):
        at = NOW - timedelta(days=age)
        out.append(ReadingBatch(publisher="edge-01", seq=1000 + i, asset_id="P-101", channel="vib_de",
                                quantity="acceleration", unit="g", sample_rate_hz=1000, start=at, values=[0.1, -0.2]))
        out.append(Prediction(publisher="edge-01", seq=2000 + i, asset_id="P-101", model_name="m", model_version="1",
                              at=at, rul_median=100, rul_lower=80, rul_upper=120, coverage=0.9))
        out.append(StatusReport(publisher="edge-01", seq=3000 + i, asset_id="P-101", state="online", uptime_s=1.0,
                                sent_at=at))
        out.append(frames.frame("P-101", at, {"vib_de": {"rms": float(age)}}))
    return out


def _count(store: Store, model: type) -> int:
    with store.engine.connect() as c:
        return int(c.scalar(sa.select(sa.func.count()).select_from(model)) or 0)


def _check_retention(url: str) -> None:
    frames = _Frames()
    with Store(url) as store:
        _store(store, _old_and_new(frames))
        store.write([], [DeadLetterIn("genedge/v1/x", f"junk{age}".encode(), "malformed", "not JSON",
                                      received_at=NOW - timedelta(days=age)) for age in (400, 100, 40, 1)])
        with store._sessions.begin() as s:  # rows retention must never touch, all older than any limit
            s.add(Alarm(asset_id="P-101", kind="rul", severity="high", message="old", raised_at=NOW - timedelta(days=900)))
            s.add(WorkOrder(asset_id="P-101", title="old", created_at=NOW - timedelta(days=900),
                            updated_at=NOW - timedelta(days=900)))
        result = maintain(store, RetentionSettings(status_reports_days=0, batch_size=1), now=NOW)
        assert result["deleted"] == {"readings": 3, "predictions": 1, "dead_letters": 2, "features": 1}
        assert {(m.__tablename__, _count(store, m)) for m in (Reading, PredictionRow, StatusRow, DeadLetter, FeatureRow,
                                                              Alarm, WorkOrder)} == {
            ("readings", 1), ("predictions", 3), ("status_reports", 4), ("dead_letters", 2), ("features", 3),
            ("alarms", 1), ("work_orders", 1)}
        assert store.asset_ids() == ["P-101"]
        # the pruned feature window lives on in its buckets
        old = feature_aggregates(store, "P-101", "vib_de.rms", resolution="day", until=NOW - timedelta(days=365))
        assert [(p.n, p.mean) for p in old] == [(1, 400.0)]
        again = maintain(store, RetentionSettings(status_reports_days=0), now=NOW)
        assert again["deleted"] == {"readings": 0, "predictions": 0, "dead_letters": 0, "features": 0}


def test_retention_deletes_only_old_rows_of_the_listed_tables(tmp_path: Path) -> None:
    _check_retention(f"sqlite:///{tmp_path / 'ret.db'}")


@pytest.mark.postgres
def test_retention_on_postgres(pg_db: str) -> None:
    _check_retention(pg_db)


def test_no_feature_bucket_is_lost_when_raw_rows_are_deleted(tmp_path: Path) -> None:
    """A year and a month of windows, pruned to 30 days: every day's buckets stay as computed from the raw rows."""
    frames = _Frames()
    rng = np.random.default_rng(7)
    t, messages = NOW - timedelta(days=400), []
    while t < NOW:
        messages.append(frames.frame("P-101", t, {"vib_de": {"rms": float(rng.normal(1, 0.2))}}))
        t += timedelta(hours=5, minutes=13)
    with Store(f"sqlite:///{tmp_path / 'keep.db'}") as store:
        _store(store, messages)
        result = maintain(store, RetentionSettings(features_days=30, batch_size=50), now=NOW)
        cutoff = TODAY - timedelta(days=30)
        times = [at for at, _ in frames.values[("P-101", "vib_de.rms")]]
        assert result["deleted"]["features"] == sum(at < cutoff for at in times) > 1000
        with store.engine.connect() as c:
            oldest = c.scalar(sa.select(sa.func.min(FeatureRow.window_start)))
        assert oldest is not None and oldest.replace(tzinfo=UTC) >= cutoff
        days = sorted({at.replace(hour=0, minute=0, second=0, microsecond=0) for at in times if at < TODAY})
        stored = feature_aggregates(store, "P-101", "vib_de.rms", resolution="day")
        assert [p.bucket_start for p in stored] == days
        assert sum(p.n for p in stored) == sum(at < TODAY for at in times)
        for day in (days[0], days[len(days) // 2], days[-1]):
            _assert_bucket(store, frames, "P-101", "vib_de.rms", day, "day")
        hours = {at.replace(minute=0, second=0, microsecond=0) for at in times if at < NOW.replace(minute=0)}
        assert len(feature_aggregates(store, "P-101", "vib_de.rms")) == len(hours)

        # a window arriving late for a pruned day is merged into its buckets, then its raw row goes too
        late_at = days[3] + timedelta(hours=23, minutes=59, seconds=59)  # the newest of its day: the new "last"
        _store(store, [frames.frame("P-101", late_at, {"vib_de": {"rms": 5.0}})])
        merged = maintain(store, RetentionSettings(features_days=30), now=NOW)
        assert merged["aggregated"]["late_rows_merged"] == 1
        _assert_bucket(store, frames, "P-101", "vib_de.rms", days[3], "day")
        _assert_bucket(store, frames, "P-101", "vib_de.rms", late_at.replace(minute=0, second=0), "hour")
        assert [p.last for p in feature_aggregates(store, "P-101", "vib_de.rms", resolution="day",
                                                   since=days[3], until=days[4])] == [5.0]
        maintain(store, RetentionSettings(features_days=30), now=NOW)  # nothing merged twice
        _assert_bucket(store, frames, "P-101", "vib_de.rms", days[3], "day")
        assert _count(store, FeatureRow) == sum(at >= cutoff for at in times)


def test_an_interrupted_prune_neither_loses_nor_doubles_a_bucket(tmp_path: Path) -> None:
    """Rows a crashed prune left behind in a pruned day are dropped, not merged again, when the day gets a late row."""
    frames = _Frames()
    day = TODAY - timedelta(days=60)
    messages = [frames.frame("P-101", day + timedelta(hours=h), {"vib_de": {"rms": float(h)}}) for h in range(24)]
    with Store(f"sqlite:///{tmp_path / 'crash.db'}") as store:
        _store(store, messages)
        maintain(store, KEEP_FOREVER, now=NOW)
        # what a prune interrupted after its first batch leaves: the horizon recorded, half of the day deleted
        with store._sessions.begin() as s:
            from ingest.store.models import StoreMeta
            from ingest.store.retention import DELETED_BEFORE_KEY

            s.merge(StoreMeta(key=DELETED_BEFORE_KEY, value=(day + timedelta(days=1)).isoformat()))
            s.execute(sa.delete(FeatureRow).where(FeatureRow.window_start < day + timedelta(hours=12)))
        _store(store, [frames.frame("P-101", day + timedelta(hours=20, minutes=30), {"vib_de": {"rms": 100.0}})])
        maintain(store, KEEP_FOREVER, now=NOW)
        _assert_bucket(store, frames, "P-101", "vib_de.rms", day, "day")
        _assert_bucket(store, frames, "P-101", "vib_de.rms", day + timedelta(hours=20), "hour")
        assert _count(store, FeatureRow) == 0


def _check_migration(url: str) -> None:
    with Store(url) as store:
        def tables() -> set[str]:
            return set(sa.inspect(store.engine).get_table_names())

        assert {"features_hourly", "features_daily"} <= tables()
        indexes = {i["name"]: i["column_names"] for i in sa.inspect(store.engine).get_indexes("features_hourly")}
        assert indexes["ix_features_hourly_asset_key_bucket"] == ["asset_id", "key", "bucket_start"]
        assert sa.inspect(store.engine).get_pk_constraint("features_daily")["constrained_columns"] == [
            "asset_id", "bucket_start", "key"]
        cfg = alembic_config()
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0005")
        assert not {"features_hourly", "features_daily"} & tables() and "features" in tables()
        store.engine.dispose()
        migrate(store.engine)
        assert {"features_hourly", "features_daily"} <= tables()


def test_migration_0006_upgrades_and_downgrades(tmp_path: Path) -> None:
    _check_migration(f"sqlite:///{tmp_path / 'mig.db'}")


@pytest.mark.postgres
def test_migration_0006_on_postgres(pg_db: str) -> None:
    _check_migration(pg_db)


def test_the_cli_maintains_a_sqlite_store_and_refuses_bad_settings(tmp_path: Path) -> None:
    url = f"sqlite:///{tmp_path / 'cli.db'}"
    frames = _Frames()
    now = utcnow()
    with Store(url) as store:
        _store(store, [frames.frame("P-101", now - timedelta(days=d), {"vib_de": {"rms": float(d)}})
                       for d in (500, 3, 2)])
    result = CliRunner().invoke(app, ["ingest", "maintain", "--db", url])
    assert result.exit_code == 0, result.output
    report = json.loads(result.output)
    assert report["aggregated"]["rows_scanned"] == 3 and report["deleted"]["features"] == 1
    with Store(url) as store:
        assert [p.n for p in feature_aggregates(store, "P-101", "vib_de.rms", resolution="day")] == [1, 1, 1]

    bad = CliRunner().invoke(app, ["ingest", "maintain", "--db", url],
                             env={"GENEDGE_STORE__RETENTION__FEATURES_DAYS": "-3"})
    assert bad.exit_code != 0 and "features_days" in bad.output


def test_bad_input_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="features_days"):
        RetentionSettings(features_days=-1)
    with pytest.raises(ValidationError, match="keep"):
        RetentionSettings.model_validate({"keep_days": 3})
    with Store(f"sqlite:///{tmp_path / 'bad.db'}") as store:
        with pytest.raises(StoreError, match="timezone-aware"):
            maintain(store, RetentionSettings(), now=datetime(2026, 1, 1))  # a naive time
        with pytest.raises(StoreError, match="RetentionSettings"):
            maintain(store, {"features_days": 3}, now=NOW)  # type: ignore[arg-type]
        with pytest.raises(StoreError, match="resolution"):
            feature_aggregates(store, "P-101", "vib_de.rms", resolution="week")  # type: ignore[arg-type]
        with pytest.raises(StoreError, match="batch_size"):
            downsample(store, batch_size=0)
