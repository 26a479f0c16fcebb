"""Read-only queries for dashboards and reports.

Every function takes an :class:`~ingest.store.Store` and returns frozen dataclasses of plain
values; sessions and ORM rows never leave this module. Queries that look for "the latest"
row seek the composite indexes one asset (and channel) at a time, so their cost grows with
the number of assets, not with the length of the history.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

import numpy as np
from numpy.typing import NDArray
from sqlalchemy import func, select
from sqlalchemy.exc import SQLAlchemyError
from sqlalchemy.orm import Session

from core.errors import StoreError
from core.wire import utcnow
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

__all__ = [
    "AlarmView",
    "AssetInfo",
    "AssetOverview",
    "ChannelLatest",
    "DeadLetterView",
    "FeatureView",
    "PredictionView",
    "StatusView",
    "TrendPoint",
    "Waveform",
    "WorkOrderView",
    "alarm",
    "alarm_view",
    "alarms",
    "assess_quality",
    "asset",
    "assets",
    "baseline",
    "dead_letter_counts",
    "dead_letters",
    "features",
    "latest_features",
    "latest_predictions",
    "latest_readings",
    "latest_status",
    "latest_waveform",
    "latest_waveforms",
    "open_alarms_by_asset",
    "plant_overview",
    "predictions",
    "trend",
    "work_order",
    "work_order_view",
    "work_orders",
]

#: Quantities that count as "vibration" and "temperature" for the plant overview.
VIBRATION_QUANTITIES = ("acceleration", "velocity")
TEMPERATURE_QUANTITIES = ("temperature",)
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

    @property
    def is_open(self) -> bool:
        return self.state in OPEN_ALARM_STATES


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
    """Everything the plant overview shows for one asset."""

    asset: AssetInfo
    vibration: ChannelLatest | None
    temperature: ChannelLatest | None
    prediction: PredictionView | None
    features: FeatureView | None
    open_alarms: tuple[AlarmView, ...]
    quality: str
    last_update: datetime | None

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
                          health_index=None if r.health_index is None else float(r.health_index))


def alarm_view(r: Alarm) -> AlarmView:
    """An :class:`AlarmView` of an ORM row (for :mod:`ingest.store.actions`)."""
    return AlarmView(id=int(r.id), asset_id=r.asset_id, kind=r.kind, severity=r.severity, state=r.state,
                     message=r.message or "", raised_at=r.raised_at, acked_by=r.acked_by, acked_at=r.acked_at,
                     shelved_by=r.shelved_by, shelved_at=r.shelved_at, shelve_reason=r.shelve_reason,
                     shelved_until=r.shelved_until, cleared_at=r.cleared_at)


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
    out: dict[str, dict[str, ChannelLatest]] = {}
    with _read(store, "latest readings") as s:
        for info in infos:
            per: dict[str, ChannelLatest] = {}
            for ch in _channels_of(s, info):
                row = _latest_reading(s, info.asset_id, ch)
                if row is not None:
                    per[ch] = _channel_latest(row)
            out[info.asset_id] = per
    return out


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


def baseline(store: Store, asset_id: str, channel: str, *, value: str = "v_rms", n: int = 20) -> float | None:
    """Median of ``value`` (``v_rms`` or ``v_mean``) over the first ``n`` stored batches of a channel, or ``None``."""
    if value not in ("v_rms", "v_mean"):
        raise StoreError(f"value must be 'v_rms' or 'v_mean', got {value!r}")
    stmt = (select(getattr(Reading, value)).where(Reading.asset_id == asset_id, Reading.channel == channel)
            .order_by(Reading.start.asc(), Reading.id.asc()).limit(n))
    with _read(store, f"baseline of {asset_id}/{channel}") as s:
        values = [float(v) for v in s.scalars(stmt)]
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
                         values=np.frombuffer(r.samples, dtype="<f4").copy(), quality=r.quality)
                for r in s.scalars(stmt)]


def latest_waveform(store: Store, asset_id: str, channel: str, *, min_samples: int = 2) -> Waveform | None:
    """Samples of the newest batch of a channel with at least ``min_samples`` samples."""
    found = latest_waveforms(store, asset_id, channel, 1, min_samples=min_samples)
    return found[0] if found else None


def assess_quality(latest: dict[str, ChannelLatest], now: datetime, stale_after: timedelta) -> str:
    """Data quality of an asset from its channels' newest batches.

    Returns:
        ``no data``; ``silent`` or ``flatline`` or ``suspect`` when any channel's newest batch
        says so (a multi-sample batch with zero range counts as flatline); ``stale`` when the
        newest batch of every channel ended more than ``stale_after`` before ``now``; else ``good``.
    """
    if not latest:
        return "no data"
    qualities = set()
    for c in latest.values():
        q = "silent" if c.quality == "device_silent" else c.quality
        if q == "good" and c.n_samples > 1 and c.v_max == c.v_min:
            q = "flatline"
        qualities.add(q)
    for q in ("silent", "flatline", "suspect"):
        if q in qualities:
            return q
    newest = max(c.end for c in latest.values())
    return "stale" if now - newest > stale_after else "good"


# ------------------------------------------------------------------- features, predictions
def features(store: Store, asset_id: str, *, limit: int = 500) -> list[FeatureView]:
    """The newest ``limit`` feature windows of an asset, oldest first."""
    stmt = (select(FeatureRow).where(FeatureRow.asset_id == asset_id)
            .order_by(FeatureRow.window_start.desc(), FeatureRow.id.desc()).limit(limit))
    with _read(store, f"features of {asset_id}") as s:
        return [_feature_view(r) for r in reversed(list(s.scalars(stmt)))]


def latest_features(store: Store, asset_ids: Sequence[str]) -> dict[str, FeatureView]:
    """The newest feature window of each asset that has one."""
    out: dict[str, FeatureView] = {}
    with _read(store, "latest features") as s:
        for a in asset_ids:
            r = s.scalars(select(FeatureRow).where(FeatureRow.asset_id == a)
                          .order_by(FeatureRow.window_start.desc(), FeatureRow.id.desc()).limit(1)).first()
            if r is not None:
                out[a] = _feature_view(r)
    return out


def predictions(store: Store, asset_id: str, *, limit: int = 500) -> list[PredictionView]:
    """The newest ``limit`` RUL predictions of an asset, oldest first."""
    stmt = (select(PredictionRow).where(PredictionRow.asset_id == asset_id)
            .order_by(PredictionRow.at.desc(), PredictionRow.id.desc()).limit(limit))
    with _read(store, f"predictions of {asset_id}") as s:
        return [_prediction_view(r) for r in reversed(list(s.scalars(stmt)))]


def latest_predictions(store: Store, asset_ids: Sequence[str]) -> dict[str, PredictionView]:
    """The newest prediction of each asset that has one."""
    out: dict[str, PredictionView] = {}
    with _read(store, "latest predictions") as s:
        for a in asset_ids:
            r = s.scalars(select(PredictionRow).where(PredictionRow.asset_id == a)
                          .order_by(PredictionRow.at.desc(), PredictionRow.id.desc()).limit(1)).first()
            if r is not None:
                out[a] = _prediction_view(r)
    return out


# -------------------------------------------------------------------------------- alarms
def alarms(store: Store, *, states: Sequence[str] | None = None, asset_id: str | None = None,
           limit: int = 500) -> list[AlarmView]:
    """Alarms, newest first, optionally only in ``states`` and of one asset."""
    stmt = select(Alarm)
    if states is not None:
        stmt = stmt.where(Alarm.state.in_(list(states)))
    if asset_id is not None:
        stmt = stmt.where(Alarm.asset_id == asset_id)
    stmt = stmt.order_by(Alarm.raised_at.desc(), Alarm.id.desc()).limit(limit)
    with _read(store, "alarms") as s:
        return [alarm_view(r) for r in s.scalars(stmt)]


def alarm(store: Store, alarm_id: int) -> AlarmView | None:
    """One alarm, or ``None``."""
    with _read(store, f"alarm {alarm_id}") as s:
        r = s.get(Alarm, alarm_id)
        return None if r is None else alarm_view(r)


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
    stmt = select(WorkOrder)
    if statuses is not None:
        stmt = stmt.where(WorkOrder.status.in_(list(statuses)))
    if asset_id is not None:
        stmt = stmt.where(WorkOrder.asset_id == asset_id)
    stmt = stmt.order_by(WorkOrder.created_at.desc(), WorkOrder.id.desc()).limit(limit)
    with _read(store, "work orders") as s:
        return [work_order_view(r) for r in s.scalars(stmt)]


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
        ends = [c.end for c in per.values()]
        if info.asset_id in feats:
            f = feats[info.asset_id]
            ends.append(f.window_start + timedelta(seconds=f.window_s))
        out.append(AssetOverview(
            asset=info, vibration=_pick(per, VIBRATION_QUANTITIES), temperature=_pick(per, TEMPERATURE_QUANTITIES),
            prediction=preds.get(info.asset_id), features=feats.get(info.asset_id),
            open_alarms=tuple(open_alarms.get(info.asset_id, [])), quality=assess_quality(per, now, stale_after),
            last_update=max(ends) if ends else None,
        ))
    return out
