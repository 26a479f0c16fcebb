"""The store-query benchmark at a tiny scale: both databases hold the same rows, the partitioned one is
partitioned, and every dashboard query returns what the generated data holds (the full run is
``python -m benchmarks.store_queries``; no timing is asserted)."""

from __future__ import annotations

import pytest

from benchmarks import store_queries

pytestmark = pytest.mark.postgres

SCALE = store_queries.Scale(assets=4, days=21, feature_minutes=60, raw_days=7, snapshots_per_day=2)


def test_the_harness_generates_the_same_rows_twice_and_every_query_returns_them() -> None:
    result = store_queries.run(SCALE, runs=2, warmup=1)
    dbs = result["databases"]
    assert dbs["partitioned"]["partitioned_tables"] == ["features", "predictions", "readings"]
    assert dbs["plain"]["partitioned_tables"] == []
    rows = {name: {t: v["rows"] for t, v in db["tables"].items()} for name, db in dbs.items()}
    assert rows["partitioned"] == rows["plain"]
    expected = {
        "features": 4 * 21 * 24, "predictions": 4 * 21 * 24, "features_daily": 4 * 21 * 2,
        "features_hourly": 4 * 21 * 24 * 2, "readings": 4 * 7 * (96 + 2 * 4), "alarms": 4 * 20, "work_orders": 4 * 4,
    }
    assert {t: rows["partitioned"][t] for t in expected} == expected

    windows = 21 * 24
    want = {  # (fewest, most) rows each query returns on any asset
        "plant_overview": (4, 4), "latest_readings": (2, 2), "trend": (500, 500), "latest_snapshot": (4, 4),
        "feature_series": (500, 500), "feature_channels_seen": (2, 2), "channel_baseline": (20, 20),
        "first_window": (1, 1), "predictions": (500, 500), "alarms_open": (1, 1), "alarms_asset": (20, 20),
        "work_orders_open": (3, 3), "latest_status": (50, 50), "trend_year_raw": (windows, windows),
        "trend_year_daily": (21, 21),
    }
    assert set(result["queries"]) == set(want) | {"alarm_kpis"}
    for name, row in result["queries"].items():
        for db in ("partitioned", "plain"):
            timing = row[db]
            assert 0 < timing["p50_ms"] <= timing["p95_ms"], (name, db)
            if name in want:
                assert (timing["rows_min"], timing["rows_max"]) == want[name], (name, db)
        assert row["partitioned"]["rows_min"] == row["plain"]["rows_min"], name
        assert row["ratio_p95"] > 0
    assert result["queries"]["alarm_kpis"]["partitioned"]["rows_max"] >= 1
    table = store_queries.markdown(result)
    assert table.count("\n| `") == len(result["queries"]) and "| features | 2,016 |" in table


def test_a_bad_scale_is_refused_with_the_parameter_named() -> None:
    with pytest.raises(ValueError, match="assets"):
        store_queries.Scale(assets=0)
    with pytest.raises(ValueError, match="raw_days"):
        store_queries.Scale(days=10, raw_days=30)
