"""Cached data loaders: the only way pages read the store and the model registry.

Each loader takes the store URL (the cache key) and returns plain values; time-to-live is
short so live pages stay live. After an action, :func:`invalidate` drops the cached state.
"""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path
from typing import Any

import streamlit as st

from core.errors import GenEdgeError
from core.inference.registry import ModelRegistry
from core.wire import utcnow
from dashboard._context import _open_store, settings
from dashboard._status import AssetDecision, judge
from ingest.store import queries as q
from ingest.store.retention import AggregatePoint, feature_aggregates
from prescribe.evidence import from_store

__all__ = [
    "invalidate",
    "load_alarms",
    "load_asset",
    "load_assets",
    "load_channel_baseline",
    "load_channels_seen",
    "load_dead_letter_counts",
    "load_dead_letters",
    "load_decisions",
    "load_feature_history",
    "load_feature_series",
    "load_latest_readings",
    "load_models",
    "load_overview",
    "load_predictions",
    "load_snapshot",
    "load_status",
    "load_time_scale",
    "load_trend",
    "load_work_orders",
    "stale_after",
]

_LIVE, _SLOW = timedelta(seconds=2), timedelta(seconds=10)
#: Judging an asset reads up to 500 feature windows: a few seconds old is fresh enough.
_DECIDE = timedelta(seconds=5)


def stale_after() -> timedelta:
    """An asset whose newest data is older than this shows as stale (``dashboard.stale_after_s``)."""
    return timedelta(seconds=settings().dashboard.stale_after_s)


def load_overview(url: str) -> list[q.AssetOverview]:
    """The overview rows, stale per ``dashboard.stale_after_s``."""
    return _load_overview(url, stale_after().total_seconds())


@st.cache_data(ttl=_LIVE, show_spinner=False)
def _load_overview(url: str, stale_s: float) -> list[q.AssetOverview]:
    return q.plant_overview(_open_store(url), stale_after=timedelta(seconds=stale_s))


@st.cache_data(ttl=_SLOW, show_spinner=False)
def load_assets(url: str) -> list[q.AssetInfo]:
    return q.assets(_open_store(url))


@st.cache_data(ttl=_SLOW, show_spinner=False)
def load_asset(url: str, asset_id: str) -> q.AssetInfo | None:
    return q.asset(_open_store(url), asset_id)


@st.cache_data(ttl=_LIVE, show_spinner=False)
def load_latest_readings(url: str, asset_id: str | None = None) -> dict[str, dict[str, q.ChannelLatest]]:
    return q.latest_readings(_open_store(url), None if asset_id is None else [asset_id])


@st.cache_data(ttl=_LIVE, show_spinner=False)
def load_trend(url: str, asset_id: str, channel: str, limit: int) -> list[q.TrendPoint]:
    return q.trend(_open_store(url), asset_id, channel, limit=limit)


@st.cache_data(ttl=_SLOW, show_spinner=False)
def load_time_scale(url: str) -> float:
    """Plant hours per wall-clock hour of the store's timestamps (the ``store.time_scale`` setting, else
    what the store records, else 1)."""
    return q.time_scale(_open_store(url), settings().store.time_scale)


@st.cache_data(ttl=timedelta(minutes=5), show_spinner=False)
def load_channel_baseline(url: str, asset_id: str, channel: str, quantity: str) -> q.Baseline | None:
    """The channel's baseline as ingest's alarms use it (:func:`ingest.store.queries.channel_baseline`)."""
    return q.channel_baseline(_open_store(url), asset_id, channel, quantity)


@st.cache_data(ttl=_LIVE, show_spinner=False, max_entries=32)
def load_snapshot(url: str, asset_id: str, channel: str) -> q.Snapshot | None:
    """The newest raw snapshot of a fast channel (the batches the edge agent sent together)."""
    return q.latest_snapshot(_open_store(url), asset_id, channel)


@st.cache_data(ttl=_LIVE, show_spinner=False, max_entries=64)
def load_feature_series(url: str, asset_id: str, keys: tuple[str, ...], limit: int) -> q.FeatureSeries:
    """Chosen features (``channel.name``) of the newest ``limit`` windows, oldest first."""
    return q.feature_series(_open_store(url), asset_id, keys, limit=limit)


@st.cache_data(ttl=_SLOW, show_spinner=False, max_entries=64)
def load_feature_history(url: str, asset_id: str, key: str, resolution: str) -> list[AggregatePoint]:
    """One feature's stored hourly or daily buckets (kept for good by ``genedge ingest maintain``)."""
    return feature_aggregates(_open_store(url), asset_id, key, resolution=resolution)  # type: ignore[arg-type]


@st.cache_data(ttl=_SLOW, show_spinner=False)
def load_channels_seen(url: str, asset_id: str, channels: tuple[str, ...], minutes: int = 10) -> dict[str, Any]:
    """When each channel last appeared in the asset's feature windows of the last ``minutes``."""
    return q.feature_channels_seen(_open_store(url), asset_id, channels,
                                   since=utcnow() - timedelta(minutes=minutes))


@st.cache_data(ttl=_LIVE, show_spinner=False)
def load_predictions(url: str, asset_id: str, limit: int = 500) -> list[q.PredictionView]:
    return q.predictions(_open_store(url), asset_id, limit=limit)


@st.cache_data(ttl=_LIVE, show_spinner=False)
def load_alarms(url: str, states: tuple[str, ...] | None = None, asset_id: str | None = None,
                limit: int = 500) -> list[q.AlarmView]:
    return q.alarms(_open_store(url), states=states, asset_id=asset_id, limit=limit)


@st.cache_data(ttl=_LIVE, show_spinner=False)
def load_work_orders(url: str, statuses: tuple[str, ...] | None = None, asset_id: str | None = None,
                     limit: int = 500) -> list[q.WorkOrderView]:
    return q.work_orders(_open_store(url), statuses=statuses, asset_id=asset_id, limit=limit)


@st.cache_data(ttl=_DECIDE, show_spinner=False)
def load_decisions(url: str, asset_ids: tuple[str, ...], time_scale: float | None = None) -> dict[str, AssetDecision]:
    """The prescriber's decision for each asset, judged now on its evidence in the store
    (``time_scale``: the ``store.time_scale`` setting; ``None``: what the store records).

    The same evidence and policy the prescriber drafts work orders from (``from_store`` and
    ``assess``), so cards and work orders agree. An asset whose evidence cannot be gathered (not
    registered, invalid stored values) is left out: its card shows no state.
    """
    store = _open_store(url)
    time_scale = q.time_scale(store, time_scale)  # once for all assets
    out: dict[str, AssetDecision] = {}
    for asset_id in asset_ids:
        try:
            out[asset_id] = judge(from_store(store, asset_id, time_scale=time_scale))
        except (GenEdgeError, ValueError):  # StoreError is a GenEdgeError; pydantic's ValidationError a ValueError
            continue
    return out


@st.cache_data(ttl=_SLOW, show_spinner=False)
def load_dead_letters(url: str, reason: str | None = None, limit: int = 200) -> list[q.DeadLetterView]:
    return q.dead_letters(_open_store(url), reason=reason, limit=limit)


@st.cache_data(ttl=_SLOW, show_spinner=False)
def load_dead_letter_counts(url: str) -> dict[str, int]:
    return q.dead_letter_counts(_open_store(url))


@st.cache_data(ttl=_SLOW, show_spinner=False)
def load_status(url: str) -> list[q.StatusView]:
    return q.latest_status(_open_store(url))


@st.cache_data(ttl=_SLOW, show_spinner=False)
def load_models(registry_dir: str) -> list[dict[str, Any]]:
    """Every registered model version as ``{name, version, promoted, card, path}``."""
    if not Path(registry_dir).is_dir():
        return []
    reg = ModelRegistry(registry_dir)
    targets: dict[str, str | None] = {}
    rows = []
    for v in reg.list():
        if v.name not in targets:
            targets[v.name] = reg.rollback_target(v.name)
        rows.append({"name": v.name, "version": v.version, "promoted": v.promoted, "card": v.card, "path": str(v.path),
                     "rollback_to": targets[v.name]})
    return rows


def invalidate() -> None:
    """Drop cached alarms, work orders, overview, decisions and models after an action."""
    for loader in (_load_overview, load_alarms, load_work_orders, load_models, load_decisions):
        loader.clear()
