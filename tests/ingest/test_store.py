"""Store round-trips on SQLite and on a real PostgreSQL server, and schema/migration agreement."""

from __future__ import annotations

from datetime import datetime
from pathlib import Path

import numpy as np
import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from core.errors import StoreError
from core.sim import default_plant
from core.wire import BirthMessage, FeatureFrame, Prediction, ReadingBatch, StatusReport, utcnow
from ingest.store import DeadLetterIn, Store, queries
from ingest.store.models import Base


def _messages(n: int, now: datetime | None = None) -> list:
    now = now or utcnow()
    rng = np.random.default_rng(0)
    out: list = []
    for i in range(n):
        out.append(ReadingBatch(publisher="edge-01", seq=i, asset_id="P-101", channel="vib_de", quantity="acceleration",
                                unit="g", sample_rate_hz=25600, start=now, values=rng.normal(0, 0.5, 256).round(5).tolist()))
    out.append(FeatureFrame(publisher="edge-01", seq=n, asset_id="P-101", window_start=now, window_s=1.0,
                            features={"vib_de": {"rms": 0.5, "iso_zone": 2.0}}))
    out.append(Prediction(publisher="edge-01", seq=n + 1, asset_id="P-101", model_name="transformer",
                          model_version="3", at=now, rul_median=100, rul_lower=80, rul_upper=130, coverage=0.9,
                          rul_cap=125.0))
    out.append(StatusReport(publisher="edge-01", seq=n + 2, asset_id="P-101", state="online", uptime_s=3.0))
    out.append(BirthMessage(publisher="edge-01", seq=n + 3, asset_id="P-101", channels=["vib_de"]))
    return out


def _round_trip(url: str) -> None:
    store = Store(url)
    store.upsert_assets(default_plant())
    msgs = _messages(120)  # >= 50 readings: PostgreSQL takes the COPY path
    now = utcnow()
    res = store.write([(m, now) for m in msgs], [DeadLetterIn("genedge/v1/x", b"\x00junk", "malformed", "not JSON")])
    assert (res.inserted, res.duplicates, res.dead_lettered) == (len(msgs), 0, 1)
    again = store.write([(m, now) for m in msgs[:30]], [DeadLetterIn("genedge/v1/x", b"\x00junk", "malformed", "x")])
    assert (again.inserted, again.duplicates, again.dead_lettered) == (0, 30, 0)
    assert store.count_readings() == 120 and store.count_duplicate_readings() == 0
    latest = store.readings("P-101", "vib_de", limit=1)[0]
    original = next(m for m in msgs if m.msg_id == latest.msg_id)
    np.testing.assert_allclose(latest.values, original.values, rtol=1e-6, atol=1e-6)  # float32 storage
    assert latest.start == original.start and latest.start.tzinfo is not None
    dl = store.dead_letters()[0]
    assert (dl.payload, dl.reason) == (b"\x00junk", "malformed")
    assert {"P-101", "M-201"} <= set(store.asset_ids())
    pred = queries.predictions(store, "P-101")[0]
    assert (pred.rul_median, pred.rul_cap, pred.at_cap) == (100.0, 125.0, False)
    store.close()
    # reopening runs migrations again: idempotent
    Store(url).close()


def test_sqlite_round_trip(tmp_path: Path) -> None:
    _round_trip(f"sqlite:///{tmp_path / 'rt.db'}")


def test_the_bulk_insert_stores_exactly_what_a_sqlalchemy_insert_stores(tmp_path: Path) -> None:
    """SQLite's bulk path binds values itself: every column must come out byte for byte as SQLAlchemy's
    own INSERT writes it (datetimes as SQLAlchemy's text format, JSON, booleans, blobs)."""
    import sqlite3

    from sqlalchemy.dialects.sqlite import insert as sqlite_insert

    from ingest.store.repo import _row_for

    now = utcnow().replace(microsecond=0)  # whole seconds: where a driver's own format differs
    msgs = [(m, now) for m in _messages(3, now)]
    bulk = Store(f"sqlite:///{tmp_path / 'bulk.db'}")
    assert bulk.write(msgs).inserted == len(msgs)
    reference = Store(f"sqlite:///{tmp_path / 'reference.db'}")
    with reference._sessions.begin() as session:
        for m, at in msgs:
            table, row = _row_for(m, at)
            session.execute(sqlite_insert(table), [row])
    for store in (bulk, reference):
        store.close()
    for table in ("readings", "features", "predictions", "status_reports"):
        rows = []
        for name in ("bulk.db", "reference.db"):
            with sqlite3.connect(tmp_path / name) as conn:
                cols = [r[1] for r in conn.execute(f"PRAGMA table_info({table})") if r[1] != "id"]
                rows.append(conn.execute(f"SELECT {', '.join(cols)} FROM {table} ORDER BY msg_id").fetchall())
        assert rows[0] == rows[1] and rows[0], table


def test_sqlite_uses_wal(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'wal.db'}")
    with store.engine.connect() as c:
        assert c.exec_driver_sql("PRAGMA journal_mode").scalar() == "wal"


@pytest.mark.postgres
def test_postgres_round_trip(pg_db: str) -> None:
    _round_trip(pg_db)


def test_migrations_match_models(tmp_path: Path) -> None:
    store = Store(f"sqlite:///{tmp_path / 'm.db'}")
    with store.engine.connect() as conn:
        diff = compare_metadata(MigrationContext.configure(conn), Base.metadata)
    assert diff == [], f"models changed without a migration: {diff}"


def test_dead_letter_payload_is_capped(tmp_path: Path) -> None:
    from ingest.store.repo import MAX_DEAD_PAYLOAD

    store = Store(f"sqlite:///{tmp_path / 'cap.db'}")
    big = b"x" * (MAX_DEAD_PAYLOAD + 10)
    store.write([], [DeadLetterIn("t", big, "oversize", "too big")])
    dl = store.dead_letters()[0]
    assert len(dl.payload) == MAX_DEAD_PAYLOAD and "truncated" in dl.detail


def test_a_bad_store_url_is_a_store_error_that_never_quotes_it() -> None:
    from core.errors import StoreError

    for url in ("postgresql://genedge:TOPSECRET@db:notaport/genedge", "postgresql+nosuchdriver://u:TOPSECRET@db/x"):
        with pytest.raises(StoreError) as caught:
            Store(url)
        assert "TOPSECRET" not in str(caught.value)


def test_store_meta_records_the_time_scale_readers_use(tmp_path: Path) -> None:
    with Store(f"sqlite:///{tmp_path / 'meta.db'}") as store:
        assert store.meta("time_scale") is None and queries.time_scale(store) == 1.0
        store.set_meta(queries.TIME_SCALE_KEY, "3600.0")
        store.set_meta(queries.TIME_SCALE_KEY, "7200.0")  # replaced, not added
        assert queries.time_scale(store) == 7200.0
        assert queries.time_scale(store, 2.0) == 2.0  # a configured store.time_scale wins
        for bad in ("nan", "-1", "0", "fast"):
            store.set_meta(queries.TIME_SCALE_KEY, bad)
            assert queries.time_scale(store) == 1.0, bad
        with pytest.raises(StoreError, match="1-64 characters"):
            store.set_meta("", "x")


def test_the_fleet_wide_newest_rows_match_the_per_asset_queries_on_postgres(pg_db: str) -> None:
    """PostgreSQL answers "newest row of each asset (and channel)" in one LATERAL statement; it must
    give exactly what the one-asset queries give, ties on time broken by the newest id."""
    from datetime import timedelta

    store = Store(pg_db)
    try:
        store.upsert_assets(default_plant())
        base = utcnow() - timedelta(hours=1)
        rng = np.random.default_rng(5)
        msgs: list = []
        for k, asset in enumerate(["P-101", "M-201", "F-101"]):
            for i in range(6):
                at = base + timedelta(minutes=int(rng.integers(0, 50)))
                for ch in ("vib_de", "temp_de")[: 1 + k % 2]:
                    msgs.append(ReadingBatch(publisher="edge-01", seq=len(msgs), asset_id=asset, channel=ch,
                                             quantity="acceleration", unit="g", sample_rate_hz=100, start=at,
                                             values=[float(i), float(k)]))
                msgs.append(FeatureFrame(publisher="edge-01", seq=len(msgs), asset_id=asset, window_start=at,
                                         window_s=1.0, features={"vib_de": {"rms": float(i)}}))
                msgs.append(Prediction(publisher="edge-01", seq=len(msgs), asset_id=asset, model_name="m",
                                       model_version="1", at=base, rul_median=float(i), rul_lower=0.0,
                                       rul_upper=float(i + 1), coverage=0.9))  # all at one time: the id decides
        store.write([(m, utcnow()) for m in msgs])
        ids = store.asset_ids()
        fleet = (queries.latest_readings(store, ids), queries.latest_features(store, ids),
                 queries.latest_predictions(store, ids))
        store.dialect = "per-asset"  # any dialect but postgresql takes the one-query-per-asset path
        single = (queries.latest_readings(store, ids), queries.latest_features(store, ids),
                  queries.latest_predictions(store, ids))
        assert fleet == single
        assert {a for a, per in fleet[0].items() if per} == {"P-101", "M-201", "F-101"}
        assert fleet[2]["P-101"].rul_median == 5.0  # the last written of six at the same time
    finally:
        store.close()
