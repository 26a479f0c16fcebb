"""Read-only queries for dashboards and reports.

Every function takes an :class:`~ingest.store.Store` and returns frozen dataclasses of plain
values; sessions and ORM rows never leave this module. Queries that look for "the latest"
row seek the composite indexes one asset (and channel) at a time, so their cost grows with
the number of assets, not with the length of the history.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any, TypeVar

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import Select, String, bindparam, case, func, or_, select, true
from sqlalchemy.dialects.postgresql import ARRAY
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session, aliased

from core.alarm_limits import (
    BASELINE_WINDOWS,
    RMS_KEY,
    TEMPERATURE_KEYS,
    TEMPERATURE_QUANTITIES,
    VIBRATION_QUANTITIES,
)
from core.errors import StoreError
from core.maintenance import PRIORITIES
from core.wire import rul_at_cap, utcnow
from ingest.store.models import (
    Alarm,
    Asset,
    DeadLetter,
    FeatureRow,
    PredictionRow,
    Reading,
    StatusRow,
    WorkOrder,
)
from ingest.store.repo import Store

_View = TypeVar("_View")

__all__ = [
    "TIME_SCALE_KEY",
    "AlarmKpis",
    "AlarmView",
    "AssetInfo",
    "AssetOverview",
    "Baseline",
    "ChannelLatest",
    "DeadLetterView",
    "FeatureSeries",
    "FeatureView",
    "PredictionView",
    "Snapshot",
    "StatusView",
    "TrendPoint",
    "Waveform",
    "WorkOrderView",
    "alarm",
    "alarm_kpis",
    "alarm_view",
    "alarms",
    "assess_quality",
    "asset",
    "assets",
    "baseline",
    "channel_baseline",
    "dead_letter_counts",
    "dead_letters",
    "feature_baseline",
    "feature_channels_seen",
    "feature_series",
    "features",
    "first_window",
    "latest_features",
    "latest_predictions",
    "latest_readings",
    "latest_snapshot",
    "latest_status",
    "latest_waveform",
    "latest_waveforms",
    "open_alarms_by_asset",
    "open_work_orders_by_asset",
    "plant_overview",
    "predictions",
    "time_scale",
    "trend",
    "work_order",
    "work_order_view",
    "work_orders",
]

# VIBRATION_QUANTITIES and TEMPERATURE_QUANTITIES (core.alarm_limits) count as "vibration" and
# "temperature" for the plant overview too.
#: Alarm states that are still open (not returned to normal).
OPEN_ALARM_STATES = ("active", "acknowledged", "shelved")
_SEVERITY_RANK = {"low": 0, "medium": 1, "high": 2, "critical": 3}
_STATE_RANK = {"active": 3, "acknowledged": 2, "shelved": 1, "cleared": 0}



# --------------------------------------------------------------------------------- views
@dataclass(frozen=True)
class AssetInfo:
    """A registered asset; ``config`` is the :class:`core.assets.AssetConfig` as JSON (may be empty)."""

    asset_id: str
    site: str
    line: str
    name: str
    kind: str
    criticality: int
    config: dict[str, Any]
    last_seen: datetime | None


@dataclass(frozen=True)
class ChannelLatest:
    """Summary of the newest reading batch of one channel (no samples)."""

    asset_id: str
    channel: str
    quantity: str
    unit: str
    sample_rate_hz: float
    start: datetime
    received_at: datetime
    n_samples: int
    v_min: float
    v_max: float
    v_mean: float
    v_rms: float
    quality: str

    @property
    def end(self) -> datetime:
        """Time of the batch's last sample."""
        return self.start + timedelta(seconds=self.n_samples / self.sample_rate_hz)


@dataclass(frozen=True)
class TrendPoint:
    """Summary values of one reading batch, for trends."""

    start: datetime
    v_min: float
    v_max: float
    v_mean: float
    v_rms: float
    quality: str


@dataclass(frozen=True)
class Waveform:
    """The samples of one reading batch."""

    asset_id: str
    channel: str
    quantity: str
    unit: str
    sample_rate_hz: float
    start: datetime
    values: NDArray[np.float32]
    quality: str
    received_at: datetime | None = None


@dataclass(frozen=True)
class Snapshot:
    """The raw batches of one channel that an edge agent sent together (on request or at an anomaly).

    The agent keeps its newest raw batches in a ring buffer and sends them all at once, so the
    batches of one snapshot arrive together but cover the ticks before the request.
    """

    asset_id: str
    channel: str
    received_at: datetime
    batches: tuple[Waveform, ...]  # newest first

    @property
    def newest_start(self) -> datetime:
        return self.batches[0].start

    @property
    def oldest_start(self) -> datetime:
        return self.batches[-1].start


@dataclass(frozen=True)
class FeatureView:
    """Edge features of one window: ``features[channel][name] = value``."""

    asset_id: str
    publisher: str
    window_start: datetime
    window_s: float
    features: dict[str, dict[str, float]]
    quality: str


@dataclass(frozen=True)
class FeatureSeries:
    """Selected edge features of an asset's windows, oldest first.

    ``values["vib_de.rms"][i]`` belongs to the window starting at ``times[i]``; ``None`` where that
    window did not carry the feature.
    """

    asset_id: str
    times: tuple[datetime, ...]
    quality: tuple[str, ...]
    values: dict[str, tuple[float | None, ...]]

    def __len__(self) -> int:
        return len(self.times)

    def present(self, key: str) -> tuple[list[datetime], list[float]]:
        """Times and values of the windows that carry ``key``."""
        pairs = [(t, v) for t, v in zip(self.times, self.values.get(key, ()), strict=False) if v is not None]
        return [p[0] for p in pairs], [p[1] for p in pairs]


@dataclass(frozen=True)
class PredictionView:
    """A RUL prediction: median and a calibrated interval of nominal ``coverage``."""

    asset_id: str
    model_name: str
    model_version: str
    at: datetime
    rul_unit: str
    rul_median: float
    rul_lower: float
    rul_upper: float
    coverage: float
    health_index: float | None
    rul_cap: float | None = None

    @property
    def at_cap(self) -> bool:
        """Whether the median sits at the model's cap (:func:`core.wire.rul_at_cap`)."""
        return rul_at_cap(self.rul_unit, self.rul_median, self.rul_cap)


@dataclass(frozen=True)
class AlarmView:
    """An alarm with its ISA-18.2 state and who did what when."""

    id: int
    asset_id: str
    kind: str
    severity: str
    state: str
    message: str
    raised_at: datetime
    acked_by: str | None
    acked_at: datetime | None
    shelved_by: str | None
    shelved_at: datetime | None
    shelve_reason: str | None
    shelved_until: datetime | None
    cleared_at: datetime | None
    escalated_at: datetime | None = None
    escalated_by: str | None = None
    escalated_from: str | None = None

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_ALARM_STATES

    @property
    def acknowledged(self) -> bool:
        """Whether someone acknowledged the alarm since it was raised or last escalated."""
        return self.acked_at is not None and (self.escalated_at is None or self.acked_at >= self.escalated_at)


@dataclass(frozen=True)
class WorkOrderView:
    """A work order; ``body`` holds the recommendation, its evidence and the ``history`` of actions."""

    id: int
    asset_id: str
    status: str
    title: str
    priority: str
    due_by: datetime | None
    body: dict[str, Any]
    created_at: datetime
    updated_at: datetime
    updated_by: str | None
    outcome: str | None
    history: tuple[dict[str, Any], ...] = field(default=())


@dataclass(frozen=True)
class DeadLetterView:
    """A rejected message: why, and a printable start of its payload."""

    id: int
    received_at: datetime
    topic: str
    reason: str
    detail: str
    payload_bytes: int
    payload_preview: str


@dataclass(frozen=True)
class StatusView:
    """Latest status report, birth or death of one publisher for one asset."""

    asset_id: str
    publisher: str
    kind: str
    state: str
    detail: str
    sent_at: datetime


@dataclass(frozen=True)
class AssetOverview:
    """Everything the plant overview shows for one asset.

    ``features`` is the newest window the edge agent published (vibration, velocity and ISO
    zone, envelope amplitudes, health); ``readings`` the newest raw batch of each channel that
    is sent raw (slow process values, and vibration snapshots when one was taken).
    """

    asset: AssetInfo
    features: FeatureView | None
    readings: dict[str, ChannelLatest]
    prediction: PredictionView | None
    open_alarms: tuple[AlarmView, ...]
    quality: str
    last_update: datetime | None

    @property
    def monitored(self) -> bool:
        """Configured, or sent data: not a publisher known only by its status reports (an edge agent)."""
        return bool(self.asset.config or self.features or self.readings or self.prediction or self.open_alarms)

    @property
    def temperature(self) -> ChannelLatest | None:
        """The newest raw batch of the asset's first temperature channel."""
        return _pick(self.readings, TEMPERATURE_QUANTITIES)

    @property
    def alarm_state(self) -> str:
        """The most pressing open alarm state (``active`` > ``acknowledged`` > ``shelved``), or ``normal``."""
        if not self.open_alarms:
            return "normal"
        return max(self.open_alarms, key=lambda a: _STATE_RANK.get(a.state, 0)).state

    @property
    def worst_severity(self) -> str | None:
        if not self.open_alarms:
            return None
        return max(self.open_alarms, key=lambda a: _SEVERITY_RANK.get(a.severity, -1)).severity


# ------------------------------------------------------------------------------ helpers
def _read(store: Store, what: str) -> Session:
    try:
        return store._sessions()
    except SQLAlchemyError as err:  # pragma: no cover - sessionmaker does not connect eagerly
        raise StoreError(f"cannot read {what}: {err}") from err


def _asset_info(r: Asset) -> AssetInfo:
    return AssetInfo(asset_id=r.asset_id, site=r.site or "", line=r.line or "", name=r.name or r.asset_id,
                     kind=r.kind or "", criticality=int(r.criticality), config=dict(r.config or {}),
                     last_seen=r.last_seen)


#: Reading columns without the samples blob, in ChannelLatest's field order.
_SUMMARY = (Reading.asset_id, Reading.channel, Reading.quantity, Reading.unit, Reading.sample_rate_hz, Reading.start,
            Reading.received_at, Reading.n_samples, Reading.v_min, Reading.v_max, Reading.v_mean, Reading.v_rms,
            Reading.quality)


def _channel_latest(r: Any) -> ChannelLatest:
    return ChannelLatest(asset_id=r[0], channel=r[1], quantity=r[2], unit=r[3], sample_rate_hz=float(r[4]),
                         start=r[5], received_at=r[6], n_samples=int(r[7]), v_min=float(r[8]), v_max=float(r[9]),
                         v_mean=float(r[10]), v_rms=float(r[11]), quality=str(r[12]))


def _feature_view(r: FeatureRow) -> FeatureView:
    feats = {str(ch): {str(k): float(v) for k, v in vals.items()} for ch, vals in (r.features or {}).items()}
    return FeatureView(asset_id=r.asset_id, publisher=r.publisher, window_start=r.window_start,
                       window_s=float(r.window_s), features=feats, quality=r.quality)


def _prediction_view(r: PredictionRow) -> PredictionView:
    return PredictionView(asset_id=r.asset_id, model_name=r.model_name, model_version=r.model_version, at=r.at,
                          rul_unit=r.rul_unit, rul_median=float(r.rul_median), rul_lower=float(r.rul_lower),
                          rul_upper=float(r.rul_upper), coverage=float(r.coverage),
                          health_index=None if r.health_index is None else float(r.health_index),
                          rul_cap=None if r.rul_cap is None else float(r.rul_cap))


def alarm_view(r: Alarm) -> AlarmView:
    """An :class:`AlarmView` of an ORM row (for :mod:`ingest.store.actions`)."""
    return AlarmView(id=int(r.id), asset_id=r.asset_id, kind=r.kind, severity=r.severity, state=r.state,
                     message=r.message or "", raised_at=r.raised_at, acked_by=r.acked_by, acked_at=r.acked_at,
                     shelved_by=r.shelved_by, shelved_at=r.shelved_at, shelve_reason=r.shelve_reason,
                     shelved_until=r.shelved_until, cleared_at=r.cleared_at, escalated_at=r.escalated_at,
                     escalated_by=r.escalated_by, escalated_from=r.escalated_from)


def work_order_view(r: WorkOrder) -> WorkOrderView:
    """A :class:`WorkOrderView` of an ORM row (for :mod:`ingest.store.actions`)."""
    body = dict(r.body or {})
    history = body.get("history", [])
    return WorkOrderView(id=int(r.id), asset_id=r.asset_id, status=r.status, title=r.title, priority=r.priority,
                         due_by=r.due_by, body=body, created_at=r.created_at, updated_at=r.updated_at,
                         updated_by=r.updated_by, outcome=r.outcome,
                         history=tuple(h for h in history if isinstance(h, dict)) if isinstance(history, list) else ())


def _preview(payload: bytes, limit: int = 300) -> str:
    text = payload[:limit].decode("utf-8", errors="replace")
    text = "".join(c if c.isprintable() or c in "\n\t" else "\ufffd" for c in text)
    return text + (f" ... [{len(payload)} bytes]" if len(payload) > limit else "")


# -------------------------------------------------------------------------------- assets
#: The ``store_meta`` key of the plant hours per wall-clock hour of the stored timestamps.
TIME_SCALE_KEY = "time_scale"


def time_scale(store: Store, configured: float | None = None) -> float:
    """Plant hours per wall-clock hour of the store's timestamps: ``configured`` when given (the
    ``store.time_scale`` setting), else what the store records (the demo records its simulator's
    acceleration), else 1. A recorded value that is not a positive finite number reads as 1.

    Raises:
        StoreError: the database failed.
    """
    if configured is not None:
        return configured
    raw = store.meta(TIME_SCALE_KEY)
    try:
        value = float(raw) if raw is not None else 1.0
    except ValueError:
        return 1.0
    return value if math.isfinite(value) and value > 0 else 1.0


def assets(store: Store) -> list[AssetInfo]:
    """All registered assets, by site, line and id."""
    with _read(store, "assets") as s:
        rows = s.scalars(select(Asset).order_by(Asset.site, Asset.line, Asset.asset_id))
        return [_asset_info(r) for r in rows]


def asset(store: Store, asset_id: str) -> AssetInfo | None:
    """One asset, or ``None`` if it is unknown."""
    with _read(store, f"asset {asset_id!r}") as s:
        r = s.get(Asset, asset_id)
        return None if r is None else _asset_info(r)


# ------------------------------------------------------------------------------ readings
def _channels_of(s: Session, info: AssetInfo) -> list[str]:
    """The configured channels; for an asset registered only by its data, the channels it sent."""
    configured = [str(c["name"]) for c in info.config.get("channels", []) if isinstance(c, dict) and "name" in c]
    if configured:
        return configured
    return sorted(s.scalars(select(Reading.channel).where(Reading.asset_id == info.asset_id).distinct()))


def _latest_reading(s: Session, asset_id: str, channel: str) -> Any:
    stmt = (select(*_SUMMARY).where(Reading.asset_id == asset_id, Reading.channel == channel)
            .order_by(Reading.start.desc(), Reading.id.desc()).limit(1))
    return s.execute(stmt).first()


def latest_readings(store: Store, asset_ids: Iterable[str] | None = None) -> dict[str, dict[str, ChannelLatest]]:
    """The newest batch summary of every channel of every (or the given) asset.

    Returns:
        ``asset_id -> channel -> ChannelLatest``; an asset with no readings maps to ``{}``.
    """
    infos = assets(store)
    if asset_ids is not None:
        wanted = set(asset_ids)
        infos = [i for i in infos if i.asset_id in wanted]
    with _read(store, "latest readings") as s:
        pairs = [(info.asset_id, ch) for info in infos for ch in _channels_of(s, info)]
        if store.dialect == "postgresql" and pairs:
            rows = list(s.execute(_newest_per_key(select(*_SUMMARY), (Reading.asset_id, Reading.channel),
                                                  (Reading.start.desc(), Reading.id.desc()), pairs)).all())
        else:  # SQLite answers each small indexed query in microseconds, without a round trip
            rows = [r for a, ch in pairs if (r := _latest_reading(s, a, ch)) is not None]
        found = {(r.asset_id, r.channel): r for r in rows}
    out: dict[str, dict[str, ChannelLatest]] = {info.asset_id: {} for info in infos}
    for a, ch in pairs:  # each asset's channels in their configured order
        if (a, ch) in found:
            out[a][ch] = _channel_latest(found[(a, ch)])
    return out


def _newest_per_key(query: Any, columns: tuple[Any, ...], order: tuple[Any, ...],
                    keys: Sequence[tuple[str, ...]]) -> Select[Any]:
    """PostgreSQL: a statement selecting the newest row of ``query`` for each key of ``columns``.

    The keys come in as arrays (``unnest``) and a LATERAL subquery takes each key's first row in
    ``order`` through the same index the one-key query uses: one round trip and one plan for the
    whole fleet instead of one per key. Its columns are the subquery's, ``newest``.
    """
    arrays = [bindparam(f"keys_{i}", list(k), type_=ARRAY(String())) for i, k in enumerate(zip(*keys, strict=True))]
    names = [f"k{i}" for i in range(len(columns))]
    wanted = func.unnest(*arrays).table_valued(*names).render_derived(name="wanted")
    newest = (query.where(*(c == wanted.c[n] for c, n in zip(columns, names, strict=True)))
              .order_by(*order).limit(1).lateral("newest"))
    return select(newest).select_from(wanted).join(newest, true())


def trend(store: Store, asset_id: str, channel: str, *, limit: int = 500,
          since: datetime | None = None) -> list[TrendPoint]:
    """Summary values of the newest ``limit`` batches of one channel, oldest first."""
    stmt = select(Reading.start, Reading.v_min, Reading.v_max, Reading.v_mean, Reading.v_rms, Reading.quality).where(
        Reading.asset_id == asset_id, Reading.channel == channel)
    if since is not None:
        stmt = stmt.where(Reading.start >= since)
    stmt = stmt.order_by(Reading.start.desc(), Reading.id.desc()).limit(limit)
    with _read(store, f"trend of {asset_id}/{channel}") as s:
        rows = s.execute(stmt).all()
    return [TrendPoint(start=r[0], v_min=float(r[1]), v_max=float(r[2]), v_mean=float(r[3]), v_rms=float(r[4]),
                       quality=str(r[5])) for r in reversed(rows)]


def _first_readings(store: Store, asset_id: str, channel: str, value: str, n: int) -> list[float]:
    if value not in ("v_rms", "v_mean"):
        raise StoreError(f"value must be 'v_rms' or 'v_mean', got {value!r}")
    stmt = (select(getattr(Reading, value)).where(Reading.asset_id == asset_id, Reading.channel == channel)
            .order_by(Reading.start.asc(), Reading.id.asc()).limit(n))
    try:
        with _read(store, f"baseline of {asset_id}/{channel}") as s:
            return [float(v) for v in s.scalars(stmt)]
    except SQLAlchemyError as err:
        raise StoreError(f"cannot read the baseline of {asset_id}/{channel}: {err}") from err


def baseline(store: Store, asset_id: str, channel: str, *, value: str = "v_rms", n: int = 20) -> float | None:
    """Median of ``value`` (``v_rms`` or ``v_mean``) over the first ``n`` stored batches of a channel, or ``None``."""
    values = _first_readings(store, asset_id, channel, value, n)
    return float(np.median(values)) if values else None


def latest_waveforms(store: Store, asset_id: str, channel: str, n: int = 1, *,
                     min_samples: int = 2) -> list[Waveform]:
    """Samples of the newest ``n`` batches of a channel with at least ``min_samples`` samples, newest first."""
    stmt = (select(Reading).where(Reading.asset_id == asset_id, Reading.channel == channel,
                                  Reading.n_samples >= min_samples)
            .order_by(Reading.start.desc(), Reading.id.desc()).limit(n))
    with _read(store, f"waveforms of {asset_id}/{channel}") as s:
        return [Waveform(asset_id=r.asset_id, channel=r.channel, quantity=r.quantity, unit=r.unit,
                         sample_rate_hz=float(r.sample_rate_hz), start=r.start,
                         values=np.frombuffer(r.samples, dtype="<f4").copy(), quality=r.quality,
                         received_at=r.received_at)
                for r in s.scalars(stmt)]


def latest_waveform(store: Store, asset_id: str, channel: str, *, min_samples: int = 2) -> Waveform | None:
    """Samples of the newest batch of a channel with at least ``min_samples`` samples."""
    found = latest_waveforms(store, asset_id, channel, 1, min_samples=min_samples)
    return found[0] if found else None


def latest_snapshot(store: Store, asset_id: str, channel: str, *, max_batches: int = 8,
                    together: timedelta = timedelta(seconds=30)) -> Snapshot | None:
    """The newest raw snapshot of a (fast) channel: its batches that arrived within ``together`` of the newest.

    Args:
        store: the store.
        asset_id: the asset.
        channel: a channel the edge agent sends raw only in snapshots (vibration, sound).
        max_batches: most batches returned (the agent's ring buffer holds 8 per channel).
        together: batches received this close to the newest one belong to the same snapshot.
    """
    batches = latest_waveforms(store, asset_id, channel, max_batches)
    if not batches:
        return None
    newest = max(b.received_at or b.start for b in batches)
    same = tuple(b for b in batches if newest - (b.received_at or b.start) <= together)
    return Snapshot(asset_id=asset_id, channel=channel, received_at=newest, batches=same)


_QUALITY_ORDER = ("silent", "flatline", "suspect")


def _frame_end(f: FeatureView) -> datetime:
    return f.window_start + timedelta(seconds=f.window_s)


def assess_quality(latest: dict[str, ChannelLatest], now: datetime, stale_after: timedelta,
                   frame: FeatureView | None = None) -> str:
    """Data quality of an asset from its newest feature window and its channels' newest raw batches.

    Returns:
        ``no data`` when there is neither; ``stale`` when the newest of them ended more than
        ``stale_after`` before ``now``; else ``silent``, ``flatline`` or ``suspect`` when the
        newest window says so (or marks a channel flat), or a raw batch as recent as the data
        does (a multi-sample batch with zero range counts as flatline); else ``good``. Raw
        batches older than ``stale_after`` before the newest data (an old vibration snapshot)
        do not count.
    """
    ends = [c.end for c in latest.values()] + ([_frame_end(frame)] if frame is not None else [])
    if not ends:
        return "no data"
    newest = max(ends)
    if now - newest > stale_after:
        return "stale"
    qualities = set()
    if frame is not None and newest - _frame_end(frame) <= stale_after:
        qualities.add("silent" if frame.quality == "device_silent" else frame.quality)
        if any(values.get("flatline", 0.0) >= 0.5 for values in frame.features.values()):
            qualities.add("flatline")
    for c in latest.values():
        if newest - c.end > stale_after:
            continue
        q = "silent" if c.quality == "device_silent" else c.quality
        if q == "good" and c.n_samples > 1 and c.v_max == c.v_min:
            q = "flatline"
        qualities.add(q)
    return next((q for q in _QUALITY_ORDER if q in qualities), "good")


# ------------------------------------------------------------------- features, predictions
def _newest(row: Any, at: Any, asset_id: str, limit: int) -> Select[Any]:
    """Rows of ``row``'s table of one asset, newest first by ``at`` (the id breaks ties), at most ``limit``."""
    return select(row).where(row.asset_id == asset_id).order_by(at.desc(), row.id.desc()).limit(limit)


def _history(store: Store, what: str, row: Any, at: Any, view: Callable[[Any], _View], asset_id: str,
             limit: int) -> list[_View]:
    """The newest ``limit`` rows of one asset as views, oldest first."""
    with _read(store, f"{what} of {asset_id}") as s:
        return [view(r) for r in reversed(list(s.scalars(_newest(row, at, asset_id, limit))))]


def _latest_each(store: Store, what: str, row: Any, at: Any, view: Callable[[Any], _View],
                 asset_ids: Sequence[str]) -> dict[str, _View]:
    """The newest row of each asset that has one, as views."""
    out: dict[str, _View] = {}
    with _read(store, f"latest {what}") as s:
        if store.dialect == "postgresql" and asset_ids:
            newest = _newest_per_key(select(row), (row.asset_id,), (at.desc(), row.id.desc()),
                                     [(a,) for a in asset_ids]).subquery()
            for r in s.scalars(select(aliased(row, newest))):
                out[r.asset_id] = view(r)
            return out
        for a in asset_ids:
            r = s.scalars(_newest(row, at, a, 1)).first()
            if r is not None:
                out[a] = view(r)
    return out


def features(store: Store, asset_id: str, *, limit: int = 500) -> list[FeatureView]:
    """The newest ``limit`` feature windows of an asset, oldest first."""
    return _history(store, "features", FeatureRow, FeatureRow.window_start, _feature_view, asset_id, limit)


def first_window(store: Store, asset_id: str) -> datetime | None:
    """Start of the oldest stored feature window of an asset (how long it has been watched), or ``None``."""
    with _read(store, f"first window of {asset_id}") as s:
        first: datetime | None = s.scalar(select(func.min(FeatureRow.window_start)).where(FeatureRow.asset_id == asset_id))
    return first  # min() keeps the column's type: timezone-aware UTC on every backend


def latest_features(store: Store, asset_ids: Sequence[str]) -> dict[str, FeatureView]:
    """The newest feature window of each asset that has one."""
    return _latest_each(store, "features", FeatureRow, FeatureRow.window_start, _feature_view, asset_ids)


def _feature_key(key: str) -> tuple[str, str]:
    channel, dot, name = key.partition(".")
    if not dot or not channel or not name:
        raise StoreError(f"feature keys look like 'channel.name' (e.g. 'vib_de.rms'), got {key!r}")
    return channel, name


def feature_series(store: Store, asset_id: str, keys: Sequence[str], *, limit: int = 500,
                   since: datetime | None = None) -> FeatureSeries:
    """Chosen features (``"channel.name"``) of the newest ``limit`` windows of an asset, oldest first.

    Only the chosen values are read out of each window's JSON (by the database), so long trends
    stay cheap.

    Raises:
        StoreError: a key is not ``channel.name``, or the database failed.
    """
    paths = [_feature_key(k) for k in keys]
    cols = [FeatureRow.features[path].as_float() for path in paths]
    stmt = select(FeatureRow.window_start, FeatureRow.quality, *cols).where(FeatureRow.asset_id == asset_id)
    if since is not None:
        stmt = stmt.where(FeatureRow.window_start >= since)
    stmt = stmt.order_by(FeatureRow.window_start.desc(), FeatureRow.id.desc()).limit(limit)
    try:
        with _read(store, f"feature series of {asset_id}") as s:
            rows = list(reversed(s.execute(stmt).all()))
    except SQLAlchemyError as err:
        raise StoreError(f"cannot read feature series of {asset_id}: {err}") from err
    values = {k: tuple(None if r[2 + i] is None else float(r[2 + i]) for r in rows) for i, k in enumerate(keys)}
    return FeatureSeries(asset_id=asset_id, times=tuple(r[0] for r in rows), quality=tuple(str(r[1]) for r in rows),
                         values=values)


def feature_channels_seen(store: Store, asset_id: str, channels: Sequence[str], *,
                          since: datetime) -> dict[str, datetime | None]:
    """When each channel last appeared in an asset's feature windows since ``since`` (``None``: not since).

    Silence reports (windows of quality ``device_silent``) do not count as the channel being seen.
    """
    if not channels:
        return {}
    cols = [func.max(case((FeatureRow.features[(ch,)].as_string().is_not(None), FeatureRow.window_start)))
            for ch in channels]
    stmt = select(*cols).where(FeatureRow.asset_id == asset_id, FeatureRow.window_start >= since,
                               FeatureRow.quality != "device_silent")
    try:
        with _read(store, f"channels of {asset_id}") as s:
            row = s.execute(stmt).one()
    except SQLAlchemyError as err:
        raise StoreError(f"cannot read the channels of {asset_id}: {err}") from err
    return dict(zip(channels, row, strict=True))


def _first_features(store: Store, asset_id: str, key: str, n: int) -> list[float]:
    col = FeatureRow.features[_feature_key(key)].as_float()
    stmt = (select(col).where(FeatureRow.asset_id == asset_id, col.is_not(None))
            .order_by(FeatureRow.window_start.asc(), FeatureRow.id.asc()).limit(n))
    try:
        with _read(store, f"baseline of {asset_id}/{key}") as s:
            return [float(v) for v in s.scalars(stmt)]
    except SQLAlchemyError as err:
        raise StoreError(f"cannot read the baseline of {asset_id}/{key}: {err}") from err


def feature_baseline(store: Store, asset_id: str, key: str, *, n: int = 20) -> float | None:
    """Median of a feature (``"channel.name"``) over the first ``n`` windows that carry it, or ``None``."""
    values = _first_features(store, asset_id, key, n)
    return float(np.median(values)) if values else None


@dataclass(frozen=True)
class Baseline:
    """A channel's baseline, the value its relative alarm limits are built on (:mod:`core.alarm_limits`).

    Attributes:
        value: the median of the channel's first stored values.
        samples: how many values it is the median of (at most :data:`core.alarm_limits.BASELINE_WINDOWS`).
        source: where the values come from, e.g. ``features vib_de.rms`` or ``readings temp_de v_mean``.
    """

    value: float
    samples: int
    source: str

    @property
    def complete(self) -> bool:
        """Whether the baseline has all its values: it no longer changes as data arrives."""
        return self.samples >= BASELINE_WINDOWS


def channel_baseline(store: Store, asset_id: str, channel: str, quantity: str) -> Baseline | None:
    """The baseline of a channel, as both the dashboard's limit lines and ingest's alarms use it.

    Vibration (``acceleration``, ``velocity``): the median of the ``rms`` feature over the first
    :data:`~core.alarm_limits.BASELINE_WINDOWS` windows that carry it. Temperature: the median of
    the mean of the channel's first raw batches when it sends raw readings, else of its first
    level feature (``mean``, ``level`` or ``last``, the first it carries). Other quantities, or
    no data yet: ``None``.

    Raises:
        StoreError: the database failed.
    """
    n = BASELINE_WINDOWS
    sources: list[tuple[str, str]] = []  # ("readings", channel) or ("features", "channel.name"), first found wins
    if quantity in VIBRATION_QUANTITIES:
        sources.append(("features", f"{channel}.{RMS_KEY}"))
    elif quantity in TEMPERATURE_QUANTITIES:
        sources += [("readings", channel), *(("features", f"{channel}.{name}") for name in TEMPERATURE_KEYS)]
    for table, key in sources:
        values = (_first_readings(store, asset_id, key, "v_mean", n) if table == "readings"
                  else _first_features(store, asset_id, key, n))
        if values:
            where = f"readings {key} v_mean" if table == "readings" else f"features {key}"
            return Baseline(value=float(np.median(values)), samples=len(values), source=where)
    return None


def predictions(store: Store, asset_id: str, *, limit: int = 500) -> list[PredictionView]:
    """The newest ``limit`` RUL predictions of an asset, oldest first."""
    return _history(store, "predictions", PredictionRow, PredictionRow.at, _prediction_view, asset_id, limit)


def latest_predictions(store: Store, asset_ids: Sequence[str]) -> dict[str, PredictionView]:
    """The newest prediction of each asset that has one."""
    return _latest_each(store, "predictions", PredictionRow, PredictionRow.at, _prediction_view, asset_ids)


# -------------------------------------------------------------------------------- alarms
def alarms(store: Store, *, states: Sequence[str] | None = None, asset_id: str | None = None,
           limit: int = 500) -> list[AlarmView]:
    """Alarms, newest first, optionally only in ``states`` and of one asset."""
    stmt = _newest_first(select(Alarm), Alarm.state, states, Alarm.asset_id, asset_id,
                         (Alarm.raised_at, Alarm.id), limit)
    with _read(store, "alarms") as s:
        return [alarm_view(r) for r in s.scalars(stmt)]


def alarm(store: Store, alarm_id: int) -> AlarmView | None:
    """One alarm, or ``None``."""
    with _read(store, f"alarm {alarm_id}") as s:
        r = s.get(Alarm, alarm_id)
        return None if r is None else alarm_view(r)


#: EEMUA 191: a 10-minute window with more new alarms than this (per operator) is an alarm flood.
FLOOD_PER_10_MIN = 10
#: The window alarm rates are counted in.
RATE_WINDOW = timedelta(minutes=10)
#: The same alarm (asset and kind) raised this often within :data:`CHATTER_WITHIN` chatters.
CHATTER_COUNT = 3
CHATTER_WITHIN = timedelta(seconds=60)
#: An alarm standing (not cleared, not shelved) longer than this is stale.
STALE_AFTER = timedelta(hours=24)


@dataclass(frozen=True)
class AlarmKpis:
    """Alarm-system performance over a time window, as EEMUA 191 counts it.

    Attributes:
        since, until: the window ``[since, until)`` the alarms were raised in.
        operators: operator positions the alarms are shared by (rates are per operator).
        raised: alarms raised in the window.
        avg_per_10min: new alarms per operator per 10 minutes, on average (EEMUA: about 1 is
            very likely acceptable, 2 manageable).
        peak_per_10min: new alarms per operator in the busiest 10 minutes (EEMUA: under 10).
        peak_at: start of the busiest 10 minutes (``None`` without alarms).
        windows: 10-minute windows in ``[since, until)`` (the last may be shorter).
        floods: windows with more than :data:`FLOOD_PER_10_MIN` new alarms per operator.
        chattering: ``(asset, kind, raises)`` of each alarm raised :data:`CHATTER_COUNT` times or
            more within :data:`CHATTER_WITHIN`; ``raises`` is the most within any such span.
        stale_ids: alarms standing (raised, neither cleared nor shelved) for more than
            :data:`STALE_AFTER` at ``until``, oldest first.
        by_priority: alarms raised in the window by priority (severity), every priority present.
    """

    since: datetime
    until: datetime
    operators: int
    raised: int
    avg_per_10min: float
    peak_per_10min: float
    peak_at: datetime | None
    windows: int
    floods: int
    chattering: tuple[tuple[str, str, int], ...]
    stale_ids: tuple[int, ...]
    by_priority: dict[str, int]

    @property
    def flood_share(self) -> float:
        """Share of the 10-minute windows that were floods."""
        return self.floods / self.windows if self.windows else 0.0


def _most_within(times: Sequence[datetime], span: timedelta) -> int:
    """The most of the sorted ``times`` that fall within any ``span``."""
    best, lo = 0, 0
    for hi, t in enumerate(times):
        while t - times[lo] > span:
            lo += 1
        best = max(best, hi - lo + 1)
    return best


def alarm_kpis(store: Store, *, since: datetime, until: datetime | None = None, operators: int = 1) -> AlarmKpis:
    """Alarm rates, floods, chattering and stale alarms over ``[since, until)`` (EEMUA 191).

    Args:
        store: the store.
        since: start of the window (timezone-aware).
        until: end of the window (default now).
        operators: operator positions sharing the alarms (rates and floods are per operator).

    Raises:
        StoreError: naive times, an empty window, fewer than one operator, or the database failed.
    """
    until = until or utcnow()
    if since.tzinfo is None or until.tzinfo is None:
        raise StoreError("since and until must be timezone-aware")
    if until <= since:
        raise StoreError(f"until must be after since, got {since.isoformat()} .. {until.isoformat()}")
    if isinstance(operators, bool) or not isinstance(operators, int) or operators < 1:
        raise StoreError(f"operators must be a whole number >= 1, got {operators!r}")
    new = (select(Alarm.asset_id, Alarm.kind, Alarm.severity, Alarm.raised_at)
           .where(Alarm.raised_at >= since, Alarm.raised_at < until).order_by(Alarm.raised_at, Alarm.id))
    standing = (select(Alarm.id).where(Alarm.raised_at <= until - STALE_AFTER, Alarm.state != "shelved",
                                       or_(Alarm.cleared_at.is_(None), Alarm.cleared_at > until))
                .order_by(Alarm.raised_at, Alarm.id))
    try:
        with _read(store, "alarm KPIs") as s:
            rows = s.execute(new).all()
            stale = tuple(int(i) for i in s.scalars(standing))
    except SQLAlchemyError as err:
        raise StoreError(f"cannot read the alarm KPIs: {err}") from err
    windows = max(1, math.ceil((until - since) / RATE_WINDOW))
    per_window = [0] * windows
    by_alarm: dict[tuple[str, str], list[datetime]] = {}
    by_priority = dict.fromkeys(_SEVERITY_RANK, 0)
    for asset_id, kind, severity, raised_at in rows:
        per_window[min(int((raised_at - since) / RATE_WINDOW), windows - 1)] += 1
        by_alarm.setdefault((asset_id, kind), []).append(raised_at)
        by_priority[severity] = by_priority.get(severity, 0) + 1
    peak = max(per_window)
    chattering = tuple(sorted(((a, k, n) for (a, k), times in by_alarm.items()
                               if (n := _most_within(times, CHATTER_WITHIN)) >= CHATTER_COUNT),
                              key=lambda c: (-c[2], c[0], c[1])))
    return AlarmKpis(
        since=since, until=until, operators=operators, raised=len(rows),
        avg_per_10min=len(rows) / ((until - since) / RATE_WINDOW) / operators,
        peak_per_10min=peak / operators, peak_at=since + per_window.index(peak) * RATE_WINDOW if rows else None,
        windows=windows, floods=sum(n / operators > FLOOD_PER_10_MIN for n in per_window),
        chattering=chattering, stale_ids=stale, by_priority=by_priority)


def open_alarms_by_asset(store: Store) -> dict[str, list[AlarmView]]:
    """Open (active, acknowledged, shelved) alarms grouped by asset, newest first."""
    out: dict[str, list[AlarmView]] = {}
    for a in alarms(store, states=OPEN_ALARM_STATES, limit=10_000):
        out.setdefault(a.asset_id, []).append(a)
    return out


# --------------------------------------------------------------------------- work orders
def work_orders(store: Store, *, statuses: Sequence[str] | None = None, asset_id: str | None = None,
                limit: int = 500) -> list[WorkOrderView]:
    """Work orders, newest first, optionally only in ``statuses`` and of one asset."""
    stmt = _newest_first(select(WorkOrder), WorkOrder.status, statuses, WorkOrder.asset_id, asset_id,
                         (WorkOrder.created_at, WorkOrder.id), limit)
    with _read(store, "work orders") as s:
        return [work_order_view(r) for r in s.scalars(stmt)]


def _newest_first(stmt: Select[Any], state_col: Any, states: Sequence[str] | None, asset_col: Any,
                  asset_id: str | None, order: tuple[Any, Any], limit: int) -> Select[Any]:
    """``stmt`` filtered to ``states`` and one asset (each when given), newest first, at most ``limit`` rows."""
    if states is not None:
        stmt = stmt.where(state_col.in_(list(states)))
    if asset_id is not None:
        stmt = stmt.where(asset_col == asset_id)
    return stmt.order_by(order[0].desc(), order[1].desc()).limit(limit)


def open_work_orders_by_asset(store: Store) -> dict[str, WorkOrderView]:
    """Each asset's most urgent open (draft or approved) work order: the highest priority, then the
    approved one (the work going ahead), then the newest. An escalation drafts a more urgent order
    beside an approved one; the alarm it answers links to the escalated order."""
    out: dict[str, WorkOrderView] = {}

    def rank(w: WorkOrderView) -> tuple[int, bool]:
        return (PRIORITIES.index(w.priority) if w.priority in PRIORITIES else -1, w.status == "approved")

    for w in work_orders(store, statuses=("approved", "draft"), limit=10_000):  # newest first
        held = out.get(w.asset_id)
        if held is None or rank(w) > rank(held):
            out[w.asset_id] = w
    return out


def work_order(store: Store, work_order_id: int) -> WorkOrderView | None:
    """One work order, or ``None``."""
    with _read(store, f"work order {work_order_id}") as s:
        r = s.get(WorkOrder, work_order_id)
        return None if r is None else work_order_view(r)


# ------------------------------------------------------------------- dead letters, status
def dead_letters(store: Store, *, limit: int = 200, reason: str | None = None) -> list[DeadLetterView]:
    """Rejected messages, newest first."""
    stmt = select(DeadLetter.id, DeadLetter.received_at, DeadLetter.topic, DeadLetter.reason, DeadLetter.detail,
                  func.length(DeadLetter.payload), func.substr(DeadLetter.payload, 1, 300))
    if reason is not None:
        stmt = stmt.where(DeadLetter.reason == reason)
    stmt = stmt.order_by(DeadLetter.id.desc()).limit(limit)
    with _read(store, "dead letters") as s:
        rows = s.execute(stmt).all()
    out = []
    for r in rows:
        head = bytes(r[6]) if r[6] is not None else b""
        size = int(r[5] or 0)
        preview = _preview(head) + (f" ... [{size} bytes]" if size > len(head) else "")
        out.append(DeadLetterView(id=int(r[0]), received_at=r[1], topic=r[2], reason=r[3], detail=r[4],
                                  payload_bytes=size, payload_preview=preview))
    return out


def dead_letter_counts(store: Store, *, since: datetime | None = None) -> dict[str, int]:
    """Number of dead letters per reason (since ``since``)."""
    stmt = select(DeadLetter.reason, func.count()).group_by(DeadLetter.reason)
    if since is not None:
        stmt = stmt.where(DeadLetter.received_at >= since)
    with _read(store, "dead-letter counts") as s:
        return {str(r[0]): int(r[1]) for r in s.execute(stmt).all()}


def latest_status(store: Store, *, limit: int = 200) -> list[StatusView]:
    """The newest status report, birth or death per (publisher, asset), newest first."""
    newest = (select(func.max(StatusRow.id).label("id")).group_by(StatusRow.publisher, StatusRow.asset_id)
              .subquery())
    stmt = select(StatusRow).join(newest, StatusRow.id == newest.c.id).order_by(StatusRow.sent_at.desc()).limit(limit)
    with _read(store, "status reports") as s:
        return [StatusView(asset_id=r.asset_id, publisher=r.publisher, kind=r.kind, state=r.state,
                           detail=r.detail or "", sent_at=r.sent_at) for r in s.scalars(stmt)]


# -------------------------------------------------------------------------------- overview
def _pick(latest: dict[str, ChannelLatest], quantities: Sequence[str]) -> ChannelLatest | None:
    for c in latest.values():
        if c.quantity in quantities:
            return c
    return None


def plant_overview(store: Store, *, now: datetime | None = None,
                   stale_after: timedelta = timedelta(seconds=30)) -> list[AssetOverview]:
    """One :class:`AssetOverview` per registered asset, by site, line and id.

    Args:
        store: the store.
        now: the time staleness is judged against (default: now).
        stale_after: data older than this makes an asset ``stale``.
    """
    now = now or utcnow()
    infos = assets(store)
    ids = [i.asset_id for i in infos]
    latest = latest_readings(store, ids)
    preds = latest_predictions(store, ids)
    feats = latest_features(store, ids)
    open_alarms = open_alarms_by_asset(store)
    out = []
    for info in infos:
        per = latest.get(info.asset_id, {})
        frame = feats.get(info.asset_id)
        ends = [c.end for c in per.values()] + ([_frame_end(frame)] if frame is not None else [])
        out.append(AssetOverview(
            asset=info, features=frame, readings=per, prediction=preds.get(info.asset_id),
            open_alarms=tuple(open_alarms.get(info.asset_id, [])),
            quality=assess_quality(per, now, stale_after, frame), last_update=max(ends) if ends else None,
        ))
    return out
