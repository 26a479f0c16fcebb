"""SQLAlchemy 2.x table definitions. Sessions never leave ``ingest.store``."""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any, ClassVar

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    Float,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    String,
    Text,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column
from sqlalchemy.types import TypeDecorator

# SQLite only auto-increments INTEGER PRIMARY KEY; PostgreSQL gets a BIGINT identity.
_BigId = BigInteger().with_variant(Integer(), "sqlite")


class UTCDateTime(TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite stores them naive)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: GenEdge stores timezone-aware UTC times only")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    type_annotation_map: ClassVar[dict[Any, Any]] = {datetime: UTCDateTime(), dict[str, Any]: JSON}


class Asset(Base):
    __tablename__ = "assets"

    asset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    site: Mapped[str] = mapped_column(String(64))
    line: Mapped[str] = mapped_column(String(64), default="")
    name: Mapped[str] = mapped_column(String(200), default="")
    kind: Mapped[str] = mapped_column(String(32), default="")
    criticality: Mapped[int] = mapped_column(Integer, default=2)
    config: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    last_seen: Mapped[datetime | None] = mapped_column(nullable=True)


class StoreMeta(Base):
    """Facts about the stored data that readers need to interpret it, e.g. ``time_scale``: plant
    hours per wall-clock hour of the timestamps (1 in a plant; the demo's accelerated simulator)."""

    __tablename__ = "store_meta"

    key: Mapped[str] = mapped_column(String(64), primary_key=True)
    value: Mapped[str] = mapped_column(Text)


class _Received:
    """Columns every stored wire message has.

    On PostgreSQL ``readings``, ``features`` and ``predictions`` are partitioned by their event time
    (migration 0007, ``ingest.store._partitions``): there the primary key is ``(id, <time>)`` and the
    unique key ``(msg_id, <time>)``. ``id`` comes from one sequence per table, so it stays unique and
    ordered across partitions and the ORM keeps addressing rows by ``id`` alone.
    """

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    msg_id: Mapped[str] = mapped_column(String(64), unique=True)
    publisher: Mapped[str] = mapped_column(String(64))
    seq: Mapped[int] = mapped_column(BigInteger)
    historical: Mapped[bool] = mapped_column(Boolean, default=False)
    sent_at: Mapped[datetime]
    received_at: Mapped[datetime]


class Reading(_Received, Base):
    __tablename__ = "readings"
    __table_args__ = (
        Index("ix_readings_asset_channel_start", "asset_id", "channel", "start"),
        Index("ix_readings_publisher_seq", "publisher", "seq"),
    )

    asset_id: Mapped[str] = mapped_column(String(64))
    channel: Mapped[str] = mapped_column(String(64))
    quantity: Mapped[str] = mapped_column(String(32))
    unit: Mapped[str] = mapped_column(String(16))
    sample_rate_hz: Mapped[float] = mapped_column(Float)
    start: Mapped[datetime]
    n_samples: Mapped[int] = mapped_column(Integer)
    # float32 little-endian samples; summary columns serve dashboards without decoding.
    samples: Mapped[bytes] = mapped_column(LargeBinary)
    v_min: Mapped[float] = mapped_column(Float)
    v_max: Mapped[float] = mapped_column(Float)
    v_mean: Mapped[float] = mapped_column(Float)
    v_rms: Mapped[float] = mapped_column(Float)
    quality: Mapped[str] = mapped_column(String(16), default="good")


class FeatureRow(_Received, Base):
    __tablename__ = "features"
    __table_args__ = (Index("ix_features_asset_window", "asset_id", "window_start"),)

    asset_id: Mapped[str] = mapped_column(String(64))
    window_start: Mapped[datetime]
    window_s: Mapped[float] = mapped_column(Float)
    features: Mapped[dict[str, Any]] = mapped_column(JSON)
    quality: Mapped[str] = mapped_column(String(16), default="good")


class PredictionRow(_Received, Base):
    __tablename__ = "predictions"
    __table_args__ = (Index("ix_predictions_asset_at", "asset_id", "at"),)

    asset_id: Mapped[str] = mapped_column(String(64))
    model_name: Mapped[str] = mapped_column(String(128))
    model_version: Mapped[str] = mapped_column(String(64))
    at: Mapped[datetime]
    rul_unit: Mapped[str] = mapped_column(String(8))
    rul_median: Mapped[float] = mapped_column(Float)
    rul_lower: Mapped[float] = mapped_column(Float)
    rul_upper: Mapped[float] = mapped_column(Float)
    coverage: Mapped[float] = mapped_column(Float)
    health_index: Mapped[float | None] = mapped_column(Float, nullable=True)
    rul_cap: Mapped[float | None] = mapped_column(Float, nullable=True)


class StatusRow(_Received, Base):
    """Status reports and birth/death certificates."""

    __tablename__ = "status_reports"
    __table_args__ = (
        Index("ix_status_asset_sent", "asset_id", "sent_at"),
        # the dashboard's newest report per (publisher, asset)
        Index("ix_status_publisher_asset_id", "publisher", "asset_id", "id"),
    )

    asset_id: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="")
    detail: Mapped[str] = mapped_column(Text, default="")
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class DeadLetter(Base):
    __tablename__ = "dead_letters"

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    # msg_id when the payload had one, else sha256 of topic and payload: redeliveries land once.
    dedup_key: Mapped[str] = mapped_column(String(96), unique=True)
    topic: Mapped[str] = mapped_column(Text)
    payload: Mapped[bytes] = mapped_column(LargeBinary)
    reason: Mapped[str] = mapped_column(String(32), index=True)
    detail: Mapped[str] = mapped_column(Text)
    received_at: Mapped[datetime] = mapped_column(index=True)


class Alarm(Base):
    """ISA-18.2 style alarm: active -> acknowledged / shelved -> cleared; an escalation makes it active again."""

    __tablename__ = "alarms"
    __table_args__ = (
        Index("ix_alarms_asset_state", "asset_id", "state"),
        # the dashboard's lists, newest first: open alarms (by state), one asset's, and the KPI window
        Index("ix_alarms_state_raised", "state", "raised_at", "id"),
        Index("ix_alarms_asset_raised", "asset_id", "raised_at", "id"),
        Index("ix_alarms_raised", "raised_at", "id"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    asset_id: Mapped[str] = mapped_column(String(64), ForeignKey("assets.asset_id"))
    kind: Mapped[str] = mapped_column(String(64))
    severity: Mapped[str] = mapped_column(String(16))
    state: Mapped[str] = mapped_column(String(16), default="active")
    message: Mapped[str] = mapped_column(Text, default="")
    raised_at: Mapped[datetime]
    acked_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    acked_at: Mapped[datetime | None] = mapped_column(nullable=True)
    shelved_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    shelved_at: Mapped[datetime | None] = mapped_column(nullable=True)
    shelved_until: Mapped[datetime | None] = mapped_column(nullable=True)
    shelve_reason: Mapped[str | None] = mapped_column(Text, nullable=True)
    cleared_at: Mapped[datetime | None] = mapped_column(nullable=True)
    # The latest escalation (a higher priority while open): when, by whom (the service) and from what.
    escalated_at: Mapped[datetime | None] = mapped_column(nullable=True)
    escalated_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    escalated_from: Mapped[str | None] = mapped_column(String(16), nullable=True)


class WorkOrder(Base):
    """Draft -> approved / rejected -> done, with who and when."""

    __tablename__ = "work_orders"
    __table_args__ = (
        Index("ix_work_orders_asset_status", "asset_id", "status"),
        # the dashboard's lists, newest first: open orders (by status), one asset's, all
        Index("ix_work_orders_status_created", "status", "created_at", "id"),
        Index("ix_work_orders_asset_created", "asset_id", "created_at", "id"),
        Index("ix_work_orders_created", "created_at", "id"),
    )

    id: Mapped[int] = mapped_column(_BigId, primary_key=True, autoincrement=True)
    asset_id: Mapped[str] = mapped_column(String(64), ForeignKey("assets.asset_id"))
    status: Mapped[str] = mapped_column(String(16), default="draft")
    title: Mapped[str] = mapped_column(String(200))
    priority: Mapped[str] = mapped_column(String(16), default="medium")
    due_by: Mapped[datetime | None] = mapped_column(nullable=True)
    body: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    updated_by: Mapped[str | None] = mapped_column(String(64), nullable=True)
    outcome: Mapped[str | None] = mapped_column(Text, nullable=True)


class _FeatureAggregate:
    """Columns of a downsampled feature table: one row per asset, bucket and ``channel.name`` key.

    ``last`` is the value of the newest window in the bucket (``last_at``), so buckets can be merged.
    """

    asset_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    bucket_start: Mapped[datetime] = mapped_column(primary_key=True)
    key: Mapped[str] = mapped_column(String(160), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)
    mean: Mapped[float] = mapped_column(Float)
    min: Mapped[float] = mapped_column(Float)
    max: Mapped[float] = mapped_column(Float)
    last: Mapped[float] = mapped_column(Float)
    last_at: Mapped[datetime]


class FeatureHourly(_FeatureAggregate, Base):
    """Hourly aggregates of the feature windows, kept for good (``ingest.store.retention``)."""

    __tablename__ = "features_hourly"
    __table_args__ = (Index("ix_features_hourly_asset_key_bucket", "asset_id", "key", "bucket_start"),)


class FeatureDaily(_FeatureAggregate, Base):
    """Daily aggregates of the feature windows, kept for good (``ingest.store.retention``)."""

    __tablename__ = "features_daily"
    __table_args__ = (Index("ix_features_daily_asset_key_bucket", "asset_id", "key", "bucket_start"),)
