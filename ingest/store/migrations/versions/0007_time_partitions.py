"""time partitions: readings, features and predictions RANGE-partitioned by event time (PostgreSQL)

Revision ID: 0007
Revises: 0006

On PostgreSQL each table is rebuilt as a partitioned table with the same columns, moving its rows:
PRIMARY KEY (id, <time>) and UNIQUE (msg_id, <time>) (a partitioned table's unique constraints
must hold the partition key), the id sequence kept (ids stay global and ordered), a DEFAULT
partition and one partition per interval that holds rows or lies ahead
(``ingest.store._partitions``). SQLite keeps its plain tables: nothing to do there.
"""
from __future__ import annotations

from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import op

from ingest.store._partitions import PARTITIONED, Partitioning

revision = "0007"
down_revision = "0006"
branch_labels = None
depends_on = None

#: The secondary indexes of each table at 0006, rebuilt on the new table: name -> columns.
_INDEXES: dict[str, dict[str, str]] = {
    "readings": {"ix_readings_asset_channel_start": "asset_id, channel, start",
                 "ix_readings_publisher_seq": "publisher, seq"},
    "features": {"ix_features_asset_window": "asset_id, window_start"},
    "predictions": {"ix_predictions_asset_at": "asset_id, at"},
}


def _lit(t: datetime) -> str:
    return f"'{t.astimezone(UTC).isoformat(sep=' ')}'"


def _strip(conn: sa.Connection, table: str) -> None:
    """Drop the keys and indexes of ``table`` (renamed aside) so the new table can reuse their names."""
    for (name,) in conn.execute(sa.text("SELECT conname FROM pg_constraint WHERE conrelid = CAST(:t AS regclass) "
                                        "AND contype IN ('p', 'u')"), {"t": table}).all():
        conn.execute(sa.text(f'ALTER TABLE {table} DROP CONSTRAINT "{name}"'))
    for (name,) in conn.execute(sa.text("SELECT indexrelid::regclass::text FROM pg_index "
                                        "WHERE indrelid = CAST(:t AS regclass)"), {"t": table}).all():
        conn.execute(sa.text(f"DROP INDEX {name}"))


def _rebuild(conn: sa.Connection, table: str, tail: str, keys: list[str]) -> None:
    """Replace ``table`` by ``CREATE TABLE table (LIKE old) <tail>`` with ``keys`` and its indexes, moving the rows."""
    aside = f"{table}_0006" if "PARTITION" in tail else f"{table}_0007"
    seq = f"{table}_id_seq"
    conn.execute(sa.text(f"ALTER TABLE {table} RENAME TO {aside}"))
    # the id sequence outlives the old table: ids stay global, and the retention bookmarks ids
    conn.execute(sa.text(f"ALTER SEQUENCE {seq} OWNED BY NONE"))
    _strip(conn, aside)
    conn.execute(sa.text(f"CREATE TABLE {table} (LIKE {aside} INCLUDING DEFAULTS) {tail}"))
    for key in keys:
        conn.execute(sa.text(f"ALTER TABLE {table} ADD {key}"))
    for name, cols in _INDEXES[table].items():
        conn.execute(sa.text(f"CREATE INDEX {name} ON {table} ({cols})"))


def _partitions(conn: sa.Connection, spec: Partitioning, aside: str, now: datetime) -> None:
    """The DEFAULT partition, and one per interval that holds rows of ``aside`` or lies ahead of ``now``."""
    conn.execute(sa.text(f"CREATE TABLE {spec.default} PARTITION OF {spec.table} DEFAULT"))
    lowers = [spec.floor(now)]
    for _ in range(spec.ahead):
        lowers.append(spec.next(lowers[-1]))
    limit = spec.next(lowers[-1])
    rows = conn.execute(sa.text(f"SELECT DISTINCT date_trunc(:unit, {spec.column}, 'UTC') FROM {aside} "
                                f"WHERE {spec.column} < :limit"), {"unit": spec.interval, "limit": limit})
    for lower in sorted(set(lowers) | {spec.floor(r[0]) for r in rows}):
        conn.execute(sa.text(f"CREATE TABLE {spec.name(lower)} PARTITION OF {spec.table} "
                             f"FOR VALUES FROM ({_lit(lower)}) TO ({_lit(spec.next(lower))})"))


def upgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    now = datetime.now(UTC)
    for table, spec in PARTITIONED.items():
        col = spec.column
        _rebuild(conn, table, f"PARTITION BY RANGE ({col})",
                 [f"CONSTRAINT {table}_pkey PRIMARY KEY (id, {col})",
                  f"CONSTRAINT {table}_msg_id_{col}_key UNIQUE (msg_id, {col})"])
        _partitions(conn, spec, f"{table}_0006", now)
        conn.execute(sa.text(f"INSERT INTO {table} SELECT * FROM {table}_0006"))
        conn.execute(sa.text(f"DROP TABLE {table}_0006"))
        conn.execute(sa.text(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id"))


def downgrade() -> None:
    conn = op.get_bind()
    if conn.dialect.name != "postgresql":
        return
    for table in PARTITIONED:
        _rebuild(conn, table, "", [f"CONSTRAINT {table}_pkey PRIMARY KEY (id)",
                                   f"CONSTRAINT {table}_msg_id_key UNIQUE (msg_id)"])
        conn.execute(sa.text(f"INSERT INTO {table} SELECT * FROM {table}_0007"))
        conn.execute(sa.text(f"DROP TABLE {table}_0007"))  # with its partitions
        conn.execute(sa.text(f"ALTER SEQUENCE {table}_id_seq OWNED BY {table}.id"))
