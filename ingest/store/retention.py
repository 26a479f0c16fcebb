"""Downsampled feature aggregates and retention of the time-series tables.

:func:`maintain` first folds the feature windows into hourly and daily aggregates
(``features_hourly``, ``features_daily``: count, mean, min, max and last of every numeric
``channel.name`` value, kept for good), then deletes rows older than each table's retention, in
batches. Only complete buckets (before the current hour or day, by window start) are written, and
re-running rebuilds the same buckets from the raw rows, so nothing is counted twice.

Three ``store_meta`` facts make a run safe to repeat and to interrupt:

* ``aggregates.features_scanned``: feature rows up to this id need no new look;
* ``aggregates.features_ceiling``: every feature row up to this id in a complete day is in the aggregates;
* ``retention.features_before``: days before this have lost raw rows to retention, so a late row
  for such a day is merged into its buckets (and then deleted with them) instead of rebuilding
  the buckets from what is left.

On PostgreSQL, where ``readings``, ``features`` and ``predictions`` are partitioned by event time
(``ingest.store._partitions``), ``maintain`` first creates the partitions due (moving rows out of
the DEFAULT partition), and the retention drops each partition whose whole range is past the
table's cutoff instead of deleting its rows; a feature partition only when every row in it is
aggregated. The rows of a partition that straddles the cutoff are deleted row by row.

Run one ``maintain`` at a time (a cron job or a systemd timer).
"""

from __future__ import annotations

import math
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, Literal

from sqlalchemy import delete, func, select, text
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.errors import StoreError
from core.settings import RetentionSettings
from core.wire import utcnow
from ingest.store._partitions import PARTITIONED, drop_partitions_before, ensure_all
from ingest.store.models import (
    DeadLetter,
    FeatureDaily,
    FeatureHourly,
    FeatureRow,
    PredictionRow,
    Reading,
    StatusRow,
    StoreMeta,
)
from ingest.store.repo import Store

__all__ = ["AggregatePoint", "count_buckets", "downsample", "feature_aggregates", "maintain"]

HOUR = timedelta(hours=1)
DAY = timedelta(days=1)
SCANNED_KEY = "aggregates.features_scanned"
CEILING_KEY = "aggregates.features_ceiling"
DELETED_BEFORE_KEY = "retention.features_before"

_Model = type[FeatureHourly] | type[FeatureDaily]
#: The tables retention prunes besides features: setting, model, the data time it prunes by.
_PRUNED: tuple[tuple[str, Any, Any], ...] = (
    ("readings_days", Reading, Reading.start),
    ("predictions_days", PredictionRow, PredictionRow.at),
    ("status_reports_days", StatusRow, StatusRow.sent_at),
    ("dead_letters_days", DeadLetter, DeadLetter.received_at),
)


@dataclass(frozen=True)
class AggregatePoint:
    """One bucket of one feature of one asset."""

    bucket_start: datetime
    n: int
    mean: float
    min: float
    max: float
    last: float


@dataclass
class _Acc:
    """Running count, sum, min, max and newest value of one bucket of one key."""

    n: int = 0
    total: float = 0.0
    lo: float = math.inf
    hi: float = -math.inf
    last: float = math.nan
    last_at: datetime | None = None

    def add(self, value: float, at: datetime, n: int = 1, total: float | None = None,
            lo: float | None = None, hi: float | None = None) -> None:
        self.n += n
        self.total += value * n if total is None else total
        self.lo = min(self.lo, value if lo is None else lo)
        self.hi = max(self.hi, value if hi is None else hi)
        if self.last_at is None or at >= self.last_at:
            self.last, self.last_at = value, at


def _floor(t: datetime, width: timedelta) -> datetime:
    t = t.astimezone(UTC)
    return t.replace(minute=0, second=0, microsecond=0) if width == HOUR else t.replace(
        hour=0, minute=0, second=0, microsecond=0)


def _numeric(features: Any) -> Iterable[tuple[str, float]]:
    """``(channel.name, value)`` of the finite numbers in a window's ``{channel: {name: value}}``."""
    if not isinstance(features, dict):
        return
    for channel, values in features.items():
        if not isinstance(values, dict):
            continue
        for name, value in values.items():
            if isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value):
                yield f"{channel}.{name}", float(value)


def _now(now: datetime | None) -> datetime:
    if now is None:
        return utcnow()
    if now.tzinfo is None:
        raise StoreError(f"now must be a timezone-aware time, got the naive {now!r}")
    return now.astimezone(UTC)


def _meta(s: Session, key: str) -> str | None:
    row = s.get(StoreMeta, key)
    return None if row is None else row.value


def _meta_int(s: Session, key: str) -> int:
    raw = _meta(s, key)
    try:
        return int(raw) if raw is not None else 0
    except ValueError:
        raise StoreError(f"store meta {key!r} must be a row id, got {raw!r}") from None


def _meta_time(s: Session, key: str) -> datetime | None:
    raw = _meta(s, key)
    try:
        return None if raw is None else datetime.fromisoformat(raw).astimezone(UTC)
    except ValueError:
        raise StoreError(f"store meta {key!r} must be an ISO time, got {raw!r}") from None


def _write_buckets(s: Session, model: _Model, asset_id: str, accs: dict[tuple[datetime, str], _Acc]) -> None:
    s.add_all(model(asset_id=asset_id, bucket_start=b, key=k, n=a.n, mean=a.total / a.n, min=a.lo, max=a.hi,
                    last=a.last, last_at=a.last_at) for (b, k), a in accs.items())


def _accumulate(rows: Iterable[Any], hour_end: datetime) -> tuple[dict[tuple[datetime, str], _Acc], ...]:
    hourly: dict[tuple[datetime, str], _Acc] = {}
    daily: dict[tuple[datetime, str], _Acc] = {}
    for start, features in rows:
        if start >= hour_end:
            continue
        hour, day = _floor(start, HOUR), _floor(start, DAY)
        for key, value in _numeric(features):
            hourly.setdefault((hour, key), _Acc()).add(value, start)
            daily.setdefault((day, key), _Acc()).add(value, start)
    return hourly, daily


def _rebuild_day(s: Session, asset_id: str, day: datetime, ceiling: int, hour_end: datetime, day_end: datetime) -> int:
    """Rebuild the complete hours (and the day, once complete) of one asset from its raw rows; buckets written."""
    until = min(day + DAY, hour_end)
    rows = s.execute(select(FeatureRow.window_start, FeatureRow.features).where(
        FeatureRow.asset_id == asset_id, FeatureRow.window_start >= day, FeatureRow.window_start < until,
        FeatureRow.id <= ceiling))
    hourly, daily = _accumulate(rows, hour_end)
    s.execute(delete(FeatureHourly).where(FeatureHourly.asset_id == asset_id, FeatureHourly.bucket_start >= day,
                                          FeatureHourly.bucket_start < until))
    _write_buckets(s, FeatureHourly, asset_id, hourly)
    if day + DAY > day_end:
        return len(hourly)
    s.execute(delete(FeatureDaily).where(FeatureDaily.asset_id == asset_id, FeatureDaily.bucket_start == day))
    _write_buckets(s, FeatureDaily, asset_id, daily)
    return len(hourly) + len(daily)


def _merge_late(s: Session, asset_id: str, day: datetime, aggregated: int, ceiling: int) -> int:
    """Merge the rows of a pruned day that are not yet aggregated into its buckets, then delete the day's rows."""
    in_day = (FeatureRow.asset_id == asset_id, FeatureRow.window_start >= day, FeatureRow.window_start < day + DAY,
              FeatureRow.id <= ceiling)
    rows = list(s.execute(select(FeatureRow.window_start, FeatureRow.features).where(
        *in_day, FeatureRow.id > aggregated)))
    hourly, daily = _accumulate(rows, day + DAY)
    for model, accs in ((FeatureHourly, hourly), (FeatureDaily, daily)):
        for (bucket, key), acc in accs.items():
            old: Any = s.get(model, (asset_id, bucket, key))
            if old is not None:
                acc.add(old.last, old.last_at, n=old.n, total=old.mean * old.n, lo=old.min, hi=old.max)
                s.delete(old)
                s.flush()
        _write_buckets(s, model, asset_id, accs)
    s.execute(delete(FeatureRow).where(*in_day))  # the merged rows and those an interrupted prune left
    return len(rows)


def downsample(store: Store, *, now: datetime | None = None, batch_size: int = 5000) -> dict[str, int]:
    """Fold the feature rows stored since the last run into the hourly and daily aggregates.

    Each (asset, day) that received rows is rebuilt from its raw rows, so a repeated or
    interrupted run never counts a window twice; windows arriving late for a past day are
    included when they arrive.

    Returns:
        ``rows_scanned``, ``days_rebuilt``, ``buckets_written`` and ``late_rows_merged``.

    Raises:
        StoreError: ``now`` is naive, ``batch_size`` is below 1, or the database failed.
    """
    if batch_size < 1:
        raise StoreError(f"batch_size must be at least 1, got {batch_size}")
    now = _now(now)
    hour_end, day_end = _floor(now, HOUR), _floor(now, DAY)
    try:
        with store._sessions.begin() as s:
            if store.dialect == "postgresql":
                # Waits for the feature inserts in flight to commit (and holds new ones for this short
                # transaction only), so no row with an id up to ``top`` can appear after the scan.
                s.execute(text("LOCK TABLE features IN SHARE MODE"))
            top = int(s.scalar(select(func.max(FeatureRow.id))) or 0)
        with store._sessions() as s:
            scanned, aggregated = _meta_int(s, SCANNED_KEY), _meta_int(s, CEILING_KEY)
            pruned_before = _meta_time(s, DELETED_BEFORE_KEY)
            dirty: set[tuple[str, datetime]] = set()
            pending: int | None = None  # the first row whose day is not complete yet
            last, n_scanned = scanned, 0
            while True:
                batch = s.execute(select(FeatureRow.id, FeatureRow.asset_id, FeatureRow.window_start)
                                  .where(FeatureRow.id > last, FeatureRow.id <= top)
                                  .order_by(FeatureRow.id).limit(batch_size)).all()
                if not batch:
                    break
                for row_id, asset_id, start in batch:
                    if start < hour_end:
                        dirty.add((asset_id, _floor(start, DAY)))
                    if start >= day_end and pending is None:
                        pending = row_id
                last, n_scanned = batch[-1][0], n_scanned + len(batch)
        ceiling = max(last, aggregated)
        buckets = merged = 0
        for asset_id, day in sorted(dirty):
            with store._sessions.begin() as s:
                if pruned_before is not None and day < pruned_before:
                    merged += _merge_late(s, asset_id, day, aggregated, ceiling)
                else:
                    buckets += _rebuild_day(s, asset_id, day, ceiling, hour_end, day_end)
        with store._sessions.begin() as s:
            s.merge(StoreMeta(key=SCANNED_KEY, value=str(last if pending is None else min(last, pending - 1))))
            s.merge(StoreMeta(key=CEILING_KEY, value=str(ceiling)))
    except SQLAlchemyError as err:
        raise StoreError(f"cannot downsample the features: {err}") from err
    return {"rows_scanned": n_scanned, "days_rebuilt": len(dirty), "buckets_written": buckets,
            "late_rows_merged": merged}


def _delete_batches(store: Store, model: Any, *conditions: Any, batch_size: int) -> int:
    deleted = 0
    while True:
        with store._sessions.begin() as s:
            ids = list(s.scalars(select(model.id).where(*conditions).order_by(model.id).limit(batch_size)))
            if not ids:
                return deleted
            s.execute(delete(model).where(model.id.in_(ids)))
            deleted += len(ids)


def _days(limit: int | None) -> int | None:
    return limit or None  # 0 keeps the rows for good, as None does


def _drop_partitions(store: Store, table: str, cutoff: datetime, dropped: dict[str, int],
                     max_id: int | None = None) -> int:
    """Drop ``table``'s partitions wholly before ``cutoff`` (when it is partitioned); rows they held."""
    if table not in store.partitioned:
        return 0
    result = drop_partitions_before(store.engine, PARTITIONED[table], cutoff, max_id=max_id)
    dropped[table] = result["partitions"]
    return result["rows"]


def _prune(store: Store, settings: RetentionSettings, now: datetime,
           dropped: dict[str, int]) -> dict[str, int]:
    """Delete rows older than each table's retention; feature rows only once aggregated.

    Whole partitions go first (counted in ``dropped`` per table, their rows in the result), then
    the rows that are left past the cutoff, in batches.
    """
    deleted: dict[str, int] = {}
    for name, model, at in _PRUNED:
        days = _days(getattr(settings, name))
        if days is not None:
            cutoff = now - timedelta(days=days)
            gone = _drop_partitions(store, model.__tablename__, cutoff, dropped)
            deleted[model.__tablename__] = gone + _delete_batches(store, model, at < cutoff,
                                                                  batch_size=settings.batch_size)
    days = _days(settings.features_days)
    if days is None:
        return deleted
    # whole days only, so a day's aggregates are either rebuilt from all its rows or merged
    cutoff = min(_floor(now - timedelta(days=days), DAY), _floor(now, DAY))
    with store._sessions.begin() as s:
        ceiling = _meta_int(s, CEILING_KEY)
        before = _meta_time(s, DELETED_BEFORE_KEY)
        if before is None or cutoff > before:  # recorded before any row goes: an interrupted prune stays safe
            s.merge(StoreMeta(key=DELETED_BEFORE_KEY, value=cutoff.isoformat()))
    gone = _drop_partitions(store, "features", cutoff, dropped, max_id=ceiling)
    deleted["features"] = gone + _delete_batches(store, FeatureRow, FeatureRow.window_start < cutoff,
                                                 FeatureRow.id <= ceiling, batch_size=settings.batch_size)
    return deleted


def maintain(store: Store, settings: RetentionSettings, now: datetime | None = None) -> dict[str, Any]:
    """Downsample the features, then apply each table's retention (``genedge ingest maintain``).

    Alarms, work orders, assets, store meta and the aggregates are never deleted. On a partitioned
    PostgreSQL store the partitions due are created first and old ones dropped whole.

    Returns:
        ``{"now": ..., "partitions": {table: {"created", "moved", "dropped"}}, "aggregated": {...},
        "deleted": {table: rows}}``; ``partitions`` is empty where no table is partitioned (SQLite).

    Raises:
        StoreError: ``now`` is naive, ``settings`` is not a RetentionSettings, or the database failed.
    """
    if not isinstance(settings, RetentionSettings):
        raise StoreError(f"settings must be RetentionSettings (store.retention), got {type(settings).__name__}")
    now = _now(now)
    try:
        made = ensure_all(store.engine, now) if store.partitioned else {}
    except SQLAlchemyError as err:
        raise StoreError(f"cannot create the partitions due: {err}") from err
    aggregated = downsample(store, now=now, batch_size=settings.batch_size)
    dropped: dict[str, int] = {}
    try:
        deleted = _prune(store, settings, now, dropped)
    except SQLAlchemyError as err:
        raise StoreError(f"cannot apply the retention: {err}") from err
    partitions = {table: {**counts, "dropped": dropped.get(table, 0)} for table, counts in made.items()}
    return {"now": now.isoformat(), "partitions": partitions, "aggregated": aggregated, "deleted": deleted}


def feature_aggregates(store: Store, asset_id: str, key: str, *, resolution: Literal["hour", "day"] = "hour",
                       since: datetime | None = None, until: datetime | None = None) -> list[AggregatePoint]:
    """The stored buckets of one feature (``channel.name``) of an asset, oldest first.

    Raises:
        StoreError: ``resolution`` is not ``hour`` or ``day``, or the database failed.
    """
    models: dict[str, _Model] = {"hour": FeatureHourly, "day": FeatureDaily}
    if resolution not in models:
        raise StoreError(f"resolution must be 'hour' or 'day', got {resolution!r}")
    model = models[resolution]
    stmt = select(model).where(model.asset_id == asset_id, model.key == key)
    if since is not None:
        stmt = stmt.where(model.bucket_start >= since)
    if until is not None:
        stmt = stmt.where(model.bucket_start < until)
    try:
        with store._sessions() as s:
            rows: list[Any] = list(s.scalars(stmt.order_by(model.bucket_start)))
    except SQLAlchemyError as err:
        raise StoreError(f"cannot read the {resolution} aggregates of {asset_id}/{key}: {err}") from err
    return [AggregatePoint(bucket_start=r.bucket_start, n=r.n, mean=r.mean, min=r.min, max=r.max, last=r.last)
            for r in rows]


def count_buckets(store: Store) -> dict[str, int]:
    """How many hourly and daily buckets are stored."""
    with store._sessions() as s:
        return {m.__tablename__: int(s.scalar(select(func.count()).select_from(m)) or 0)
                for m in (FeatureHourly, FeatureDaily)}
