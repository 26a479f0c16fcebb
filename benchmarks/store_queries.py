"""The dashboard's store queries on a year of data for a fleet, on a throwaway PostgreSQL.

    .venv/bin/python -m benchmarks.store_queries [--assets 500] [--days 365] [--feature-minutes 30]

Generates, in SQL (``generate_series``, not through MQTT), the same rows into two databases of one
PostgreSQL cluster: ``partitioned`` (the schema at head: readings, features and predictions
partitioned by event time, migration 0007) and ``plain`` (the 0006 schema, unpartitioned, with the
same dashboard indexes of migration 0008). Per asset: a feature window every ``--feature-minutes``
(two numeric features), an hourly RUL prediction, ``--raw-days`` of raw readings (a temperature
batch every 15 min and ``--snapshots-per-day`` vibration snapshots of 4 batches), alarms and work
orders (a few open), and status reports of the edge publishers; the hourly and daily feature
aggregates are built in SQL from the features as ``genedge ingest maintain`` would build them.

Then it times each query the dashboard runs (``ingest.store.queries`` as ``dashboard/`` calls it),
each on random assets, ``--runs`` times after a warm-up, in the same process on both databases:
the ratio is partitioned over plain on the same rows. A second comparison reads a year-long
trend from the raw feature windows and from the daily aggregates (``retention.feature_aggregates``).

Writes ``benchmarks/results/store_queries.json`` and ``store_queries.md``.
"""

from __future__ import annotations

import argparse
import json
import platform
import random
import statistics
import time
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from genedge.localservices import postgres
from ingest.store import Store, migrate
from ingest.store import queries as q
from ingest.store.models import Base
from ingest.store.retention import feature_aggregates

RESULTS = Path(__file__).parent / "results"
#: The end of the generated year: every time is before it (a fixed date keeps the runs comparable).
END = datetime(2026, 6, 1, tzinfo=UTC)
PUBLISHERS = 50



@dataclass(frozen=True)
class Scale:
    """What is generated."""

    assets: int = 500
    days: int = 365
    feature_minutes: int = 30
    raw_days: int = 30
    snapshots_per_day: int = 2

    def __post_init__(self) -> None:
        for name in ("assets", "days", "feature_minutes", "raw_days", "snapshots_per_day"):
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.raw_days > self.days:
            raise ValueError(f"raw_days ({self.raw_days}) must not exceed days ({self.days})")


def _asset(a: str) -> str:
    """SQL for the asset id of the integer expression ``a``."""
    return f"'A-' || lpad(({a})::text, 4, '0')"


def _generate(engine: sa.Engine, scale: Scale) -> None:
    """Fill a migrated, empty store with ``scale``'s rows, in time order (ids grow with time, as on arrival)."""
    start = END - timedelta(days=scale.days)
    raw_start = END - timedelta(days=scale.raw_days)
    p = {"start": start, "raw_start": raw_start, "n": scale.assets, "fmin": scale.feature_minutes,
         "nf": scale.days * 24 * 60 // scale.feature_minutes, "nh": scale.days * 24, "nr": scale.raw_days * 96,
         "ns": scale.raw_days * scale.snapshots_per_day, "spd": scale.snapshots_per_day, "days": scale.days}
    received = ("msg_id, publisher, seq, historical, sent_at, received_at")
    pub = f"'edge-' || lpad((a % {PUBLISHERS})::text, 2, '0')"
    steps = [
        ("assets", f"""INSERT INTO assets (asset_id, site, line, name, kind, criticality, config, last_seen)
            SELECT {_asset('a')}, 'site-' || (a % 5), 'line-' || (a % 20), {_asset('a')}, 'pump', 1 + a % 3,
                   '{{"channels": [{{"name": "vib_de", "quantity": "acceleration"}},
                                   {{"name": "temp_de", "quantity": "temperature"}}]}}', :start
            FROM generate_series(0, :n - 1) a"""),
        ("features", f"""INSERT INTO features ({received}, asset_id, window_start, window_s, features, quality)
            SELECT md5('f' || a || ':' || k), {pub}, k, false, t, t, {_asset('a')}, t, 1.0,
                   json_build_object('vib_de', json_build_object('rms', round((1 + 0.2 * sin(k / 97.0 + a))::numeric, 4)),
                                     'temp_de', json_build_object('mean', round((45 + 5 * sin(k / 48.0 + a))::numeric, 2))),
                   'good'
            FROM generate_series(0, :nf - 1) k CROSS JOIN generate_series(0, :n - 1) a
            CROSS JOIN LATERAL (SELECT :start + k * make_interval(mins => :fmin) + make_interval(secs => a % 60) t) x"""),
        ("predictions", f"""INSERT INTO predictions ({received}, asset_id, model_name, model_version, at, rul_unit,
                                             rul_median, rul_lower, rul_upper, coverage, health_index, rul_cap)
            SELECT md5('p' || a || ':' || k), {pub}, k, false, t, t, {_asset('a')}, 'rul-transformer', '1', t, 'h',
                   m, m * 0.7, m * 1.4, 0.9, 1 - k::float / :nh / 2, 200
            FROM generate_series(0, :nh - 1) k CROSS JOIN generate_series(0, :n - 1) a
            CROSS JOIN LATERAL (SELECT :start + k * interval '1 hour' + make_interval(secs => a % 60) t,
                                       greatest(0, 200 - (k % 2000) / 10.0) m) x"""),
        ("readings", f"""INSERT INTO readings ({received}, asset_id, channel, quantity, unit, sample_rate_hz, start,
                                          n_samples, samples, v_min, v_max, v_mean, v_rms, quality)
            SELECT md5('r' || a || ':' || k || ':' || ch), {pub}, k, false, t, t, {_asset('a')}, ch,
                   CASE ch WHEN 'vib_de' THEN 'acceleration' ELSE 'temperature' END,
                   CASE ch WHEN 'vib_de' THEN 'g' ELSE 'degC' END,
                   CASE ch WHEN 'vib_de' THEN 25600 ELSE 1 END, t, ns,
                   decode(repeat('0000803f', ns), 'hex'), v - 0.5, v + 0.5, v, v, 'good'
            FROM (SELECT a, k, 'temp_de' ch, 10 ns, :raw_start + k * interval '15 minutes' + make_interval(secs => a % 60) t,
                         45 + 5 * sin(k / 48.0 + a) v
                  FROM generate_series(0, :nr - 1) k CROSS JOIN generate_series(0, :n - 1) a
                  UNION ALL
                  SELECT a, s * 4 + b, 'vib_de', 256,
                         :raw_start + s * make_interval(mins => 1440 / :spd) + make_interval(secs => a % 60 + b),
                         0.7 + 0.1 * sin(s + a)
                  FROM generate_series(0, :ns - 1) s CROSS JOIN generate_series(0, 3) b
                  CROSS JOIN generate_series(0, :n - 1) a) r ORDER BY t"""),
        ("alarms", f"""INSERT INTO alarms (asset_id, kind, severity, state, message, raised_at, cleared_at)
            SELECT {_asset('a')}, (ARRAY['vib_high', 'temp_high', 'rul_low'])[1 + k % 3],
                   (ARRAY['low', 'medium', 'high', 'critical'])[1 + (a + k) % 4],
                   CASE WHEN k = 19 AND a % 4 = 0 THEN (ARRAY['active', 'acknowledged', 'shelved'])[1 + a % 3]
                        ELSE 'cleared' END, 'generated', t,
                   CASE WHEN k = 19 AND a % 4 = 0 THEN NULL ELSE t + interval '2 hours' END
            FROM generate_series(0, 19) k CROSS JOIN generate_series(0, :n - 1) a
            CROSS JOIN LATERAL (SELECT :start + make_interval(days => (k * :days / 20 + a % 17) % :days,
                                                              hours => a % 24) t) x
            ORDER BY t"""),
        ("work_orders", f"""INSERT INTO work_orders (asset_id, status, title, priority, due_by, body, created_at, updated_at)
            SELECT {_asset('a')}, CASE WHEN k = 3 THEN (ARRAY['draft', 'approved', 'draft', 'done'])[1 + a % 4]
                                       ELSE 'done' END,
                   'Replace bearing', (ARRAY['low', 'medium', 'high', 'urgent'])[1 + (a + k) % 4], t + interval '7 days',
                   '{{}}', t, t
            FROM generate_series(0, 3) k CROSS JOIN generate_series(0, :n - 1) a
            CROSS JOIN LATERAL (SELECT :start + make_interval(days => (k * :days / 4 + a % 60) % :days) t) x ORDER BY t"""),
        ("status_reports", f"""INSERT INTO status_reports ({received}, asset_id, kind, state, detail, body)
            SELECT md5('s' || a || ':' || k), 'edge-' || lpad(a::text, 2, '0'), k, false, t, t,
                   'edge-' || lpad(a::text, 2, '0'), 'status', 'online', '', '{{}}'
            FROM generate_series(0, :nr / 4 - 1) k CROSS JOIN generate_series(0, {PUBLISHERS} - 1) a
            CROSS JOIN LATERAL (SELECT :raw_start + k * interval '1 hour' t) x"""),
    ]
    with engine.begin() as conn:
        for _, sql in steps:
            conn.execute(sa.text(sql), p)


def _aggregate(engine: sa.Engine) -> None:
    """Hourly and daily buckets of every numeric feature, as ``retention.downsample`` writes them."""
    pairs = """SELECT f.asset_id, f.window_start, c.key || '.' || v.key AS key, (v.value::text)::float AS value
               FROM features f, json_each(f.features) c, json_each(c.value) v"""
    sql = """INSERT INTO {table} (asset_id, bucket_start, key, n, mean, min, max, last, last_at)
             SELECT asset_id, date_trunc('{unit}', window_start, 'UTC') b, key, count(*), avg(value), min(value),
                    max(value), (array_agg(value ORDER BY window_start DESC))[1], max(window_start)
             FROM ({pairs}) p GROUP BY asset_id, b, key"""
    daily = """INSERT INTO features_daily (asset_id, bucket_start, key, n, mean, min, max, last, last_at)
               SELECT asset_id, date_trunc('day', bucket_start, 'UTC') b, key, sum(n), sum(mean * n) / sum(n),
                      min(min), max(max), (array_agg(last ORDER BY last_at DESC))[1], max(last_at)
               FROM features_hourly GROUP BY asset_id, b, key"""
    with engine.begin() as conn:
        conn.execute(sa.text(sql.format(table="features_hourly", unit="hour", pairs=pairs)))
        conn.execute(sa.text(daily))  # the day's buckets merged from its hours, as the windows' would be
        conn.execute(sa.text("INSERT INTO store_meta (key, value) SELECT 'aggregates.features_ceiling', max(id)::text "
                             "FROM features"))


def _sizes(engine: sa.Engine) -> dict[str, dict[str, int]]:
    tables = ("readings", "features", "predictions", "features_hourly", "features_daily", "alarms", "work_orders",
              "status_reports")
    out: dict[str, dict[str, int]] = {}
    with engine.connect() as conn:
        for t in tables:
            rows = int(conn.scalar(sa.text(f"SELECT count(*) FROM {t}")) or 0)
            size = conn.scalar(sa.text("SELECT coalesce(sum(pg_total_relation_size(c.oid)), 0) FROM pg_class c "
                                       "WHERE c.oid = CAST(:t AS regclass) OR c.oid IN (SELECT inhrelid FROM pg_inherits "
                                       "WHERE inhparent = CAST(:t AS regclass))"), {"t": t})
            out[t] = {"rows": rows, "bytes": int(size or 0)}
    return out


def _add_missing_indexes(conn: sa.Connection) -> None:
    """Create every index the models declare that the database at an older revision lacks."""
    have = sa.inspect(conn)
    for table in Base.metadata.sorted_tables:
        if not have.has_table(table.name):
            continue
        present = {ix["name"] for ix in have.get_indexes(table.name)}
        for index in table.indexes:
            if index.name not in present:
                index.create(conn)


def _build(url: str, scale: Scale, revision: str) -> float:
    """A migrated store at ``revision`` filled with ``scale``'s rows; seconds it took."""
    t0 = time.perf_counter()
    with Store(url, migrate_schema=False) as store:
        migrate(store.engine, revision)
        if revision != "head":  # the plain baseline gets the models' dashboard indexes too: only partitioning differs
            with store.engine.begin() as conn:
                _add_missing_indexes(conn)
        _generate(store.engine, scale)
        _aggregate(store.engine)
        with store.engine.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(sa.text("VACUUM ANALYZE"))
    return time.perf_counter() - t0


#: One dashboard query: its name, what the dashboard shows with it, and the call on a random asset.
Query = tuple[str, str, Callable[[Store, str, random.Random], int]]


def _queries(scale: Scale) -> list[Query]:
    week = timedelta(days=7)
    year_windows = scale.days * 24 * 60 // scale.feature_minutes
    return [
        ("plant_overview", "overview: every asset's newest features, readings, prediction, open alarms",
         lambda s, a, r: len(q.plant_overview(s, now=END))),
        ("latest_readings", "asset page: newest batch per channel",
         lambda s, a, r: len(q.latest_readings(s, [a])[a])),
        ("trend", "asset page: 500 newest temperature batches",
         lambda s, a, r: len(q.trend(s, a, "temp_de", limit=500))),
        ("latest_snapshot", "asset page: newest vibration snapshot",
         lambda s, a, r: len((q.latest_snapshot(s, a, "vib_de") or _NO_SNAPSHOT).batches)),
        ("feature_series", "asset page: 500 newest feature windows, two keys",
         lambda s, a, r: len(q.feature_series(s, a, ["vib_de.rms", "temp_de.mean"], limit=500))),
        ("feature_channels_seen", "asset page: channels seen in the last week",
         lambda s, a, r: sum(v is not None for v in q.feature_channels_seen(
             s, a, ["vib_de", "temp_de"], since=END - week).values())),
        ("channel_baseline", "asset page: limit lines (first 20 windows)",
         lambda s, a, r: (q.channel_baseline(s, a, "vib_de", "acceleration") or _NO_BASELINE).samples),
        ("first_window", "asset page: watched since",
         lambda s, a, r: int(q.first_window(s, a) is not None)),
        ("predictions", "RUL page: 500 newest predictions",
         lambda s, a, r: len(q.predictions(s, a, limit=500))),
        ("alarms_open", "alarm page: open alarms of the fleet",
         lambda s, a, r: len(q.alarms(s, states=q.OPEN_ALARM_STATES, limit=500))),
        ("alarms_asset", "asset page: the asset's alarms",
         lambda s, a, r: len(q.alarms(s, asset_id=a, limit=100))),
        ("alarm_kpis", "alarm page: ISA-18.2 KPIs of the last week",
         lambda s, a, r: q.alarm_kpis(s, since=END - week - timedelta(days=r.randrange(300)), until=END).raised),
        ("work_orders_open", "work-order page: open orders",
         lambda s, a, r: len(q.work_orders(s, statuses=("draft", "approved"), limit=500))),
        ("latest_status", "system page: newest status per publisher",
         lambda s, a, r: len(q.latest_status(s))),
        ("trend_year_raw", "year-long trend from the raw windows",
         lambda s, a, r: len(q.feature_series(s, a, ["vib_de.rms"], limit=year_windows))),
        ("trend_year_daily", "year-long trend from the daily aggregates",
         lambda s, a, r: len(feature_aggregates(s, a, "vib_de.rms", resolution="day"))),
    ]


@dataclass(frozen=True)
class _Empty:
    batches: tuple[()] = ()
    samples: int = 0


_NO_SNAPSHOT = _Empty()
_NO_BASELINE = _Empty()


def _time(store: Store, query: Query, assets: list[str], runs: int, warmup: int, seed: int) -> dict[str, Any]:
    rng = random.Random(seed)
    _, _, call = query
    for _ in range(warmup):
        call(store, rng.choice(assets), rng)
    rng = random.Random(seed)
    times, counts = [], []
    for _ in range(runs):
        asset = rng.choice(assets)
        t0 = time.perf_counter()
        counts.append(call(store, asset, rng))
        times.append((time.perf_counter() - t0) * 1000)
    times.sort()
    return {"p50_ms": statistics.median(times), "p95_ms": times[min(len(times) - 1, round(0.95 * len(times)) - 1)],
            "rows_min": min(counts), "rows_max": max(counts)}


def run(scale: Scale, *, runs: int = 50, warmup: int = 5, seed: int = 36,
        overview_runs: int | None = None) -> dict[str, Any]:
    """Generate both databases, time every query on each; the result as a JSON-ready dict.

    Args:
        scale: what is generated.
        runs: timed runs per query and database.
        warmup: untimed runs first.
        seed: the random assets (the same on both databases).
        overview_runs: timed runs of ``plant_overview`` (every asset in one call); default ``runs``.
    """
    if runs < 1 or warmup < 0:
        raise ValueError(f"runs must be at least 1 and warmup at least 0, got {runs} and {warmup}")
    assets = [f"A-{a:04d}" for a in range(scale.assets)]
    out: dict[str, Any] = {"scale": scale.__dict__, "runs": runs, "warmup": warmup, "seed": seed,
                           "machine": {"platform": platform.platform(), "python": platform.python_version()},
                           "databases": {}, "queries": {}}
    with postgres() as url:
        admin = sa.create_engine(url, isolation_level="AUTOCOMMIT")
        with admin.connect() as conn:
            for name in ("partitioned", "plain"):
                conn.execute(sa.text(f"CREATE DATABASE {name}"))
        admin.dispose()
        base = url.rsplit("/", 1)[0]
        urls = {"partitioned": f"{base}/partitioned", "plain": f"{base}/plain"}
        for name, revision in (("partitioned", "head"), ("plain", "0006")):
            seconds = _build(urls[name], scale, revision)
            with Store(urls[name], migrate_schema=False) as store:
                out["databases"][name] = {"revision": revision, "build_s": round(seconds, 1),
                                          "partitioned_tables": sorted(store.partitioned),
                                          "tables": _sizes(store.engine)}
        for name in ("partitioned", "plain"):
            with Store(urls[name], migrate_schema=False) as store:
                for query in _queries(scale):
                    n = overview_runs if query[0] == "plant_overview" and overview_runs else runs
                    result = _time(store, query, assets, n, warmup, seed)
                    out["queries"].setdefault(query[0], {"shows": query[1]})[name] = result
    for name, row in out["queries"].items():
        row["ratio_p95"] = round(row["partitioned"]["p95_ms"] / row["plain"]["p95_ms"], 2)
        if name == "trend_year_daily":
            raw = out["queries"]["trend_year_raw"]["partitioned"]["p95_ms"]
            row["raw_over_daily_p95"] = round(raw / row["partitioned"]["p95_ms"], 1)
    return out


def markdown(result: dict[str, Any]) -> str:
    """The results table (README's results section)."""
    s = result["scale"]
    tables = result["databases"]["partitioned"]["tables"]
    lines = [
        f"Store queries, {s['assets']} assets, {s['days']} days (features every {s['feature_minutes']} min, "
        f"hourly predictions, {s['raw_days']} days of raw readings), PostgreSQL 15, {result['runs']} runs "
        "per query on random assets. Ratio: partitioned (0007) over plain tables (0006), same rows, same process.",
        "",
        "| table | rows | size (MiB) |",
        "| --- | ---: | ---: |",
        *(f"| {t} | {v['rows']:,} | {v['bytes'] / 2**20:,.0f} |" for t, v in tables.items()),
        "",
        "| query | shows | rows | partitioned p50 / p95 (ms) | plain p50 / p95 (ms) | p95 ratio |",
        "| --- | --- | ---: | ---: | ---: | ---: |",
    ]
    for name, row in result["queries"].items():
        p, b = row["partitioned"], row["plain"]
        rows = f"{p['rows_min']}" if p["rows_min"] == p["rows_max"] else f"{p['rows_min']}-{p['rows_max']}"
        lines.append(f"| `{name}` | {row['shows']} | {rows} | {p['p50_ms']:.1f} / {p['p95_ms']:.1f} | "
                     f"{b['p50_ms']:.1f} / {b['p95_ms']:.1f} | {row['ratio_p95']:.2f} |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--assets", type=int, default=500)
    ap.add_argument("--days", type=int, default=365)
    ap.add_argument("--feature-minutes", type=int, default=30, help="edge feature cadence per asset")
    ap.add_argument("--raw-days", type=int, default=30)
    ap.add_argument("--snapshots-per-day", type=int, default=2)
    ap.add_argument("--runs", type=int, default=50)
    ap.add_argument("--overview-runs", type=int, default=None, help="timed runs of plant_overview (default --runs)")
    ap.add_argument("--out", type=Path, default=RESULTS)
    args = ap.parse_args()
    scale = Scale(assets=args.assets, days=args.days, feature_minutes=args.feature_minutes, raw_days=args.raw_days,
                  snapshots_per_day=args.snapshots_per_day)
    t0 = time.perf_counter()
    result = run(scale, runs=args.runs, overview_runs=args.overview_runs)
    result["total_s"] = round(time.perf_counter() - t0, 1)
    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / "store_queries.json").write_text(json.dumps(result, indent=2) + "\n")
    (args.out / "store_queries.md").write_text(markdown(result))
    print(markdown(result))


if __name__ == "__main__":
    main()
