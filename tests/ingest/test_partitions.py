"""PostgreSQL native time partitions (migration 0007, ``ingest.store._partitions``) on a real PostgreSQL."""

from __future__ import annotations

import re
import threading
from datetime import UTC, datetime, timedelta

import pytest
import sqlalchemy as sa
from alembic import command

from core.settings import RetentionSettings
from core.wire import FeatureFrame, Message, Prediction, ReadingBatch, utcnow
from ingest.store import Store
from ingest.store._engine import alembic_config, migrate
from ingest.store._partitions import PARTITIONED, drop_partitions_before, ensure_partitions, partition_bounds
from ingest.store.retention import feature_aggregates, maintain

pytestmark = pytest.mark.postgres

NOW = datetime(2026, 6, 10, 12, 30, tzinfo=UTC)
FEATURES = PARTITIONED["features"]


class _Messages:
    """Wire messages with increasing sequence numbers."""

    def __init__(self, publisher: str = "edge-01") -> None:
        self.publisher, self.seq = publisher, 0

    def _next(self) -> int:
        self.seq += 1
        return self.seq

    def frame(self, at: datetime, value: float = 1.0, asset: str = "P-101") -> FeatureFrame:
        return FeatureFrame(publisher=self.publisher, seq=self._next(), asset_id=asset, window_start=at, window_s=1.0,
                            features={"vib_de": {"rms": value}})

    def reading(self, at: datetime) -> ReadingBatch:
        return ReadingBatch(publisher=self.publisher, seq=self._next(), asset_id="P-101", channel="vib_de",
                            quantity="acceleration", unit="g", sample_rate_hz=1000, start=at, values=[0.1, -0.2, 0.3])

    def prediction(self, at: datetime) -> Prediction:
        return Prediction(publisher=self.publisher, seq=self._next(), asset_id="P-101", model_name="m",
                          model_version="1", at=at, rul_median=100, rul_lower=80, rul_upper=120, coverage=0.9)

    def mixed(self, times: list[datetime]) -> list[Message]:
        out: list[Message] = []
        for at in times:
            out += [self.frame(at), self.reading(at), self.prediction(at)]
        return out


def _relkind(engine: sa.Engine, table: str) -> str:
    with engine.connect() as c:
        return str(c.scalar(sa.text("SELECT relkind FROM pg_class WHERE relname = :t"), {"t": table}))


def _rows(engine: sa.Engine, table: str) -> list[tuple[int, str]]:
    with engine.connect() as c:
        return [(int(r[0]), str(r[1])) for r in c.execute(sa.text(f"SELECT id, msg_id FROM {table} ORDER BY id"))]


def _count(engine: sa.Engine, table: str) -> int:
    with engine.connect() as c:
        return int(c.scalar(sa.text(f"SELECT count(*) FROM {table}")) or 0)


def _write(store: Store, messages: list[Message]) -> int:
    return store.write([(m, utcnow()) for m in messages]).inserted


def _months_back(n: int) -> list[datetime]:
    """One time in each of the ``n`` months before NOW's month, plus one in NOW's month."""
    return [NOW - timedelta(days=30 * k) for k in range(n, -1, -1)]


def test_migration_0007_moves_the_rows_and_downgrades(pg_db: str) -> None:
    msgs = _Messages()
    with Store(pg_db, migrate_schema=False) as store:
        migrate(store.engine, "0006")
        with Store(pg_db, migrate_schema=False) as plain:
            assert plain.partitioned == frozenset()
            assert _write(plain, msgs.mixed(_months_back(14))) == 45
        before = {t: _rows(store.engine, t) for t in PARTITIONED}
        migrate(store.engine)
    with Store(pg_db) as store:
        assert store.partitioned == frozenset(PARTITIONED)
        for table, spec in PARTITIONED.items():
            assert _relkind(store.engine, table) == "p"
            assert _rows(store.engine, table) == before[table], f"{table} lost or renumbered rows"
            assert _count(store.engine, spec.default) == 0  # every row found a partition of its own
            with store.engine.connect() as c:
                bounds = partition_bounds(c, spec)
                keys = {tuple(k["column_names"]) for k in sa.inspect(c).get_unique_constraints(table)}
            assert keys == {("msg_id", spec.column)}
            assert sa.inspect(store.engine).get_pk_constraint(table)["constrained_columns"] == ["id", spec.column]
            assert spec.name(spec.floor(utcnow())) in bounds  # the current interval is ready
        # the id sequence carries on past the moved rows
        assert _write(store, [msgs.frame(NOW)]) == 1
        assert _rows(store.engine, "features")[-1][0] > before["features"][-1][0]
        after = {t: _rows(store.engine, t) for t in PARTITIONED}
        cfg = alembic_config()
        with store.engine.begin() as conn:
            cfg.attributes["connection"] = conn
            command.downgrade(cfg, "0006")
        store.engine.dispose()
        for table in PARTITIONED:
            assert _relkind(store.engine, table) == "r"
            assert _rows(store.engine, table) == after[table]
            left = [n for n in sa.inspect(store.engine).get_table_names()
                    if re.fullmatch(rf"{table}_(p\d{{8}}|default|000\d)", n)]
            assert not left, f"partitions or copies of {table} left: {left}"
    with Store(pg_db, migrate_schema=False) as plain:
        assert plain.partitioned == frozenset()
        assert _write(plain, [msgs.frame(NOW + timedelta(minutes=1))]) == 1  # ON CONFLICT (msg_id) again
        migrate(plain.engine)
        assert _relkind(plain.engine, "features") == "p"


def test_a_redelivery_is_skipped_on_every_path(pg_db: str) -> None:
    msgs = _Messages()
    times = [NOW - timedelta(minutes=i) for i in range(60)]
    batch: list[Message] = [msgs.reading(t) for t in times]  # 60 readings: the COPY path
    batch += [msgs.frame(t) for t in times[:5]] + [msgs.prediction(t) for t in times[:5]]
    with Store(pg_db) as store:
        first = store.write([(m, utcnow()) for m in batch])
        again = store.write([(m, utcnow()) for m in batch])  # the broker redelivers after a crash
        few = store.write([(m, utcnow()) for m in batch[:3]])  # below the COPY threshold
        assert (first.inserted, first.duplicates) == (70, 0)
        assert (again.inserted, again.duplicates) == (0, 70)
        assert (few.inserted, few.duplicates) == (0, 3)
        assert store.count_readings() == 60 and store.count_duplicate_readings() == 0


def test_a_row_without_a_partition_waits_in_default_and_moves_when_its_partition_is_made(pg_db: str) -> None:
    msgs = _Messages()
    old = datetime(2023, 3, 14, 9, tzinfo=UTC)  # years before any partition made
    with Store(pg_db) as store:
        first = msgs.frame(old, 7.0)
        assert _write(store, [first, msgs.frame(old + timedelta(days=1), 8.0)]) == 2
        ids = _rows(store.engine, "features")
        assert _count(store.engine, FEATURES.default) == 2
        result = ensure_partitions(store.engine, FEATURES, NOW)
        assert result["moved"] == 2 and result["created"] >= 1
        assert _count(store.engine, FEATURES.default) == 0
        assert _count(store.engine, FEATURES.name(FEATURES.floor(old))) == 2
        assert _rows(store.engine, "features") == ids
        # re-running finds everything in place; a redelivery still meets the moved row's key
        assert ensure_partitions(store.engine, FEATURES, NOW) == {"created": 0, "moved": 0}
        assert _write(store, [first]) == 0


def test_retention_drops_old_partitions_and_keeps_features_not_yet_aggregated(pg_db: str) -> None:
    msgs = _Messages()
    times = [NOW - timedelta(days=d, hours=h) for d in range(0, 420, 3) for h in (1, 7)]
    with Store(pg_db) as store:
        assert _write(store, [msgs.frame(t, float(i)) for i, t in enumerate(times)]) == len(times)
        assert _write(store, [msgs.reading(NOW - timedelta(days=d)) for d in range(0, 60, 2)]) == 30
        result = maintain(store, RetentionSettings(readings_days=30, features_days=365), now=NOW)
        parts = result["partitions"]
        # the store made its partitions around the real clock, after NOW: every window waited in DEFAULT
        assert utcnow() > NOW + timedelta(days=31 * (FEATURES.ahead + 1))
        assert parts["features"]["moved"] == len(times)
        assert parts["features"]["dropped"] >= 1 and parts["readings"]["dropped"] >= 3
        feature_cutoff = datetime(2025, 6, 10, tzinfo=UTC)
        assert result["deleted"]["features"] == sum(t < feature_cutoff for t in times)
        assert result["deleted"]["readings"] == sum(d > 30 for d in range(0, 60, 2))
        with store.engine.connect() as c:
            lowers = [lo for lo, _ in partition_bounds(c, FEATURES).values()]
            assert min(lowers) == FEATURES.floor(feature_cutoff)  # the straddling month, pruned row by row
            assert min(lo for lo, _ in partition_bounds(c, PARTITIONED["readings"]).values()) == \
                PARTITIONED["readings"].floor(NOW - timedelta(days=30))
        # the dropped months live on in their daily buckets
        days = feature_aggregates(store, "P-101", "vib_de.rms", resolution="day", until=feature_cutoff)
        assert sum(p.n for p in days) == sum(t < feature_cutoff for t in times)
        # a late window in an old month, not yet aggregated, keeps its partition from being dropped
        late = datetime(2025, 9, 2, tzinfo=UTC)
        assert _write(store, [msgs.frame(late, 99.0)]) == 1
        with store.engine.connect() as c:
            aggregated = int(c.scalar(sa.text("SELECT value FROM store_meta WHERE key = 'aggregates.features_ceiling'")))
        cutoff = datetime(2025, 11, 1, tzinfo=UTC)
        kept = drop_partitions_before(store.engine, FEATURES, cutoff, max_id=aggregated)
        with store.engine.connect() as c:
            assert FEATURES.name(FEATURES.floor(late)) in partition_bounds(c, FEATURES)
        assert kept["rows"] == sum(1 for t in times if feature_cutoff <= t < cutoff and FEATURES.floor(t) != FEATURES.floor(late))


def test_a_concurrent_writer_loses_nothing_while_partitions_are_made_and_dropped(pg_db: str) -> None:
    msgs = _Messages("edge-writer")
    start = datetime(2022, 1, 3, tzinfo=UTC)  # no partitions there: every write lands in DEFAULT first
    frames = [msgs.frame(start + timedelta(hours=13 * i), float(i)) for i in range(600)]
    errors: list[BaseException] = []
    with Store(pg_db) as writer, Store(pg_db) as maintainer:
        def write() -> None:
            try:
                for i in range(0, len(frames), 20):
                    assert _write(writer, frames[i:i + 20]) == 20
            except BaseException as err:  # reported to the main thread
                errors.append(err)

        thread = threading.Thread(target=write)
        thread.start()
        made = 0
        while thread.is_alive():
            made += ensure_partitions(maintainer.engine, FEATURES, NOW)["created"]
            # nothing is older than this, so nothing may be lost to it
            drop_partitions_before(maintainer.engine, FEATURES, start)
        thread.join()
        made += ensure_partitions(maintainer.engine, FEATURES, NOW)["created"]
        assert not errors, errors
        assert made >= 2
        assert _count(writer.engine, FEATURES.default) == 0
        stored = {m for _, m in _rows(writer.engine, "features")}
        assert stored == {f.msg_id for f in frames}
        assert _write(writer, frames) == 0  # every message still known after its move
