"""PostgreSQL native time partitions of the time-series tables (migration 0007).

``readings`` (by ``start``), ``features`` (by ``window_start``) and ``predictions`` (by ``at``)
are RANGE-partitioned on the message's own event time, never on ``received_at``: a redelivered
message carries the same bytes, so the same time, and lands in the same partition, where the
``UNIQUE (msg_id, <time>)`` constraint skips it.

Intervals: ``readings`` (raw snapshots, the bulkiest rows, kept 30 days by default) by ISO week
(Monday 00:00 UTC), so about six partitions are live and retention frees space a week at a time;
``features`` and ``predictions`` (kept a year) by calendar month, so about thirteen are live. Few
partitions keep the dashboard's "newest row of one asset" reads cheap: with a DEFAULT partition
PostgreSQL probes each partition's index once per such read.

Each table has a ``<table>_default`` partition, so an insert never fails for want of a partition.
:func:`ensure_partitions` creates the partitions ahead of time and moves rows that landed in the
DEFAULT partition into a new partition of their own: it builds the partition as a plain table,
moves the rows and ATTACHes it in one transaction that holds off writers of that table (they wait
and then route to the new partition). :func:`drop_partitions_before` drops whole partitions older
than a retention cutoff. Both are safe to re-run and to run beside ingest writers.

SQLite keeps plain tables; every function here is a no-op on it.
"""

from __future__ import annotations

import logging
import re
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Literal

from sqlalchemy import Connection, Engine, text

__all__ = [
    "PARTITIONED",
    "Partitioning",
    "drop_partitions_before",
    "ensure_all",
    "ensure_partitions",
    "partition_bounds",
    "partitioned_tables",
]

log = logging.getLogger(__name__)

#: Longest wait for a table lock before a maintenance step gives up (it is retried on the next run).
LOCK_TIMEOUT = "10s"


@dataclass(frozen=True)
class Partitioning:
    """How one table is partitioned.

    Attributes:
        table: the partitioned (parent) table.
        column: the event-time column it is partitioned by.
        interval: ``week`` (ISO weeks, Monday 00:00 UTC) or ``month`` (calendar months, UTC).
        ahead: partitions kept ready after the current one.
    """

    table: str
    column: str
    interval: Literal["week", "month"]
    ahead: int = 2

    @property
    def default(self) -> str:
        """Name of the DEFAULT partition."""
        return f"{self.table}_default"

    def floor(self, t: datetime) -> datetime:
        """Start of the interval holding ``t`` (UTC)."""
        t = t.astimezone(UTC).replace(hour=0, minute=0, second=0, microsecond=0)
        if self.interval == "week":
            return t - timedelta(days=t.weekday())
        return t.replace(day=1)

    def next(self, lower: datetime) -> datetime:
        """Start of the interval after the one starting at ``lower``."""
        if self.interval == "week":
            return lower + timedelta(days=7)
        return lower.replace(year=lower.year + 1, month=1) if lower.month == 12 else lower.replace(month=lower.month + 1)

    def name(self, lower: datetime) -> str:
        """Name of the partition starting at ``lower``: ``<table>_pYYYYMMDD``."""
        return f"{self.table}_p{lower:%Y%m%d}"


PARTITIONED: dict[str, Partitioning] = {
    "readings": Partitioning("readings", "start", "week"),
    "features": Partitioning("features", "window_start", "month"),
    "predictions": Partitioning("predictions", "at", "month"),
}


def _literal(t: datetime) -> str:
    """A timestamptz literal for DDL (partition bounds take no bind parameters); ``t`` is ours, never user text."""
    return f"'{t.astimezone(UTC).isoformat(sep=' ')}'"


def partitioned_tables(conn: Connection) -> frozenset[str]:
    """Which of :data:`PARTITIONED` are partitioned tables in this database (none on SQLite)."""
    if conn.dialect.name != "postgresql":
        return frozenset()
    rows = conn.execute(text("SELECT relname FROM pg_class WHERE relkind = 'p' AND relname = ANY(:names) "
                             "AND relnamespace = current_schema()::regnamespace"), {"names": list(PARTITIONED)})
    return frozenset(str(r[0]) for r in rows)


def partition_bounds(conn: Connection, spec: Partitioning) -> dict[str, tuple[datetime, datetime]]:
    """The range partitions of ``spec.table`` this module made: name -> (lower, upper); DEFAULT excluded."""
    pattern = re.compile(rf"^{re.escape(spec.table)}_p(\d{{8}})$")
    rows = conn.execute(text("SELECT c.relname FROM pg_inherits i JOIN pg_class c ON c.oid = i.inhrelid "
                             "WHERE i.inhparent = CAST(:t AS regclass)"), {"t": spec.table})
    out: dict[str, tuple[datetime, datetime]] = {}
    for (relname,) in rows:
        m = pattern.match(str(relname))
        if m is not None:
            lower = datetime.strptime(m.group(1), "%Y%m%d").replace(tzinfo=UTC)
            out[str(relname)] = (lower, spec.next(lower))
    return out


def _default_intervals(conn: Connection, spec: Partitioning, until: datetime) -> set[datetime]:
    """Interval starts of the rows waiting in the DEFAULT partition, up to ``until``.

    Rows beyond ``until`` (a clock far ahead) stay in DEFAULT rather than making partitions for them.
    """
    rows = conn.execute(text(f"SELECT DISTINCT date_trunc(:unit, {spec.column}, 'UTC') FROM {spec.default} "
                             f"WHERE {spec.column} < :until"), {"unit": spec.interval, "until": until})
    return {spec.floor(r[0]) for r in rows}


def _create_partition(engine: Engine, spec: Partitioning, lower: datetime) -> int | None:
    """Create and attach the partition starting at ``lower``, moving its rows out of DEFAULT.

    Returns:
        The rows moved, or ``None`` when the partition already existed (another run made it).
    """
    upper, name = spec.next(lower), spec.name(lower)
    lo, hi, col = _literal(lower), _literal(upper), spec.column
    with engine.begin() as conn:
        conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
        # SHARE ROW EXCLUSIVE conflicts with the writers' ROW EXCLUSIVE: an insert in flight commits
        # first (its rows are moved), a later one waits and then routes to the attached partition.
        conn.execute(text(f"LOCK TABLE {spec.table} IN SHARE ROW EXCLUSIVE MODE"))
        if conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is not None:
            return None
        conn.execute(text(f"CREATE TABLE {name} (LIKE {spec.table} INCLUDING DEFAULTS)"))
        # the CHECK proves the partition constraint, so ATTACH does not scan the new table again
        conn.execute(text(f"ALTER TABLE {name} ADD CONSTRAINT {name}_range CHECK ({col} >= {lo} AND {col} < {hi})"))
        moved = conn.execute(text(f"INSERT INTO {name} SELECT * FROM {spec.default} "
                                  f"WHERE {col} >= {lo} AND {col} < {hi}")).rowcount
        conn.execute(text(f"DELETE FROM {spec.default} WHERE {col} >= {lo} AND {col} < {hi}"))
        conn.execute(text(f"ALTER TABLE {spec.table} ATTACH PARTITION {name} FOR VALUES FROM ({lo}) TO ({hi})"))
        conn.execute(text(f"ALTER TABLE {name} DROP CONSTRAINT {name}_range"))
    return int(moved)


def ensure_partitions(engine: Engine, spec: Partitioning, now: datetime) -> dict[str, int]:
    """Create the partitions of ``spec`` from the current interval to ``spec.ahead`` intervals after it,
    and one for every interval that has rows waiting in the DEFAULT partition (moving them there).

    Returns:
        ``{"created": partitions made, "moved": rows moved out of DEFAULT}``; zeros when the table is
        not partitioned (SQLite, or a schema before migration 0007).
    """
    with engine.connect() as conn:
        if spec.table not in partitioned_tables(conn):
            return {"created": 0, "moved": 0}
        existing = {lower for lower, _ in partition_bounds(conn, spec).values()}
        wanted = [spec.floor(now)]
        for _ in range(spec.ahead):
            wanted.append(spec.next(wanted[-1]))
        wanted_set = set(wanted) | _default_intervals(conn, spec, spec.next(wanted[-1]))
    created = moved = 0
    for lower in sorted(wanted_set - existing):
        n = _create_partition(engine, spec, lower)
        if n is not None:
            created, moved = created + 1, moved + n
    if created:
        log.info("%s: created %d partitions, moved %d rows out of %s", spec.table, created, moved, spec.default)
    return {"created": created, "moved": moved}


def ensure_all(engine: Engine, now: datetime) -> dict[str, dict[str, int]]:
    """:func:`ensure_partitions` for every table of :data:`PARTITIONED`."""
    return {table: ensure_partitions(engine, spec, now) for table, spec in PARTITIONED.items()}


def drop_partitions_before(engine: Engine, spec: Partitioning, cutoff: datetime, *,
                           max_id: int | None = None) -> dict[str, int]:
    """Drop the partitions of ``spec`` whose whole range lies before ``cutoff``.

    Args:
        engine: the store's engine.
        spec: the table.
        cutoff: rows before this time are past retention.
        max_id: when given, a partition holding a row with a larger id is kept (its rows are not in
            the aggregates yet; the row-wise retention deletes what may go).

    Returns:
        ``{"partitions": dropped, "rows": rows they held}``; zeros when the table is not partitioned.
    """
    with engine.connect() as conn:
        if spec.table not in partitioned_tables(conn):
            return {"partitions": 0, "rows": 0}
        old = sorted((lower, name) for name, (lower, upper) in partition_bounds(conn, spec).items()
                     if upper <= cutoff)
    dropped = rows = 0
    for _, name in old:
        with engine.begin() as conn:
            conn.execute(text(f"SET LOCAL lock_timeout = '{LOCK_TIMEOUT}'"))
            # writers wait while the guard is checked and the partition goes, so no row slips in between
            conn.execute(text(f"LOCK TABLE {spec.table} IN SHARE ROW EXCLUSIVE MODE"))
            if conn.execute(text("SELECT to_regclass(:n)"), {"n": name}).scalar() is None:
                continue
            if max_id is not None and conn.execute(
                    text(f"SELECT EXISTS (SELECT 1 FROM {name} WHERE id > :max_id)"), {"max_id": max_id}).scalar():
                continue
            rows += int(conn.execute(text(f"SELECT count(*) FROM {name}")).scalar() or 0)
            conn.execute(text(f"DROP TABLE {name}"))
            dropped += 1
    if dropped:
        log.info("%s: dropped %d partitions before %s (%d rows)", spec.table, dropped, cutoff.isoformat(), rows)
    return {"partitions": dropped, "rows": rows}
