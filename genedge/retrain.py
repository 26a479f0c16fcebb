"""The plant's own history as RUL training data: stored feature frames up to each confirmed fault.

A completed work order whose outcome confirmed the predicted fault (``prescribe.workorders``
``training_labels``) marks an event on that asset at its completion time. The asset's feature
frames stored before it (``ingest.store``), one per ``step_hours`` of asset time as the edge hook
takes them, become a measured run to that event (:class:`models.data.simulator.EventRun`), with
RUL ``completed_at - t``: a lower bound where the repair came before a failure. The runs join
the simulated units when ``genedge rul train-sim --from-store`` retrains the demo plant's model.

This lives in the composition root because it joins three apps (store, prescriber, models).
"""

from __future__ import annotations

import math
from datetime import datetime
from typing import Any

import numpy as np

from models.data.arrays import EventRun
from models.data.simulator import DEFAULT_FEATURES

__all__ = ["store_runs"]


def _parse(at: str | None) -> datetime | None:
    if not at:
        return None
    return datetime.fromisoformat(at)


def store_runs(
    store: Any,
    *,
    features: tuple[tuple[str, str, str], ...] = DEFAULT_FEATURES,
    step_hours: float = 4.0,
    time_scale: float = 1.0,
    max_frames: int = 200_000,
) -> list[EventRun]:
    """Runs to a confirmed fault from the store, oldest work order first.

    Args:
        store: an open :class:`ingest.store.Store`.
        features: ``(channel, feature, transform)`` in model order (the model's, e.g.
            :data:`~models.data.simulator.DEFAULT_FEATURES`).
        step_hours: asset hours between kept frames (the model's frame spacing).
        time_scale: asset hours per wall-clock hour of the stored timestamps (1 in a plant; the
            demo's simulated plant runs faster).
        max_frames: newest frames read per asset.

    Returns:
        One run per confirmed fault that has at least two usable frames before it; frames lacking
        a feature are skipped, and a run starts after the asset's previous confirmed fault.
    """
    from ingest.store import queries
    from prescribe.workorders import training_labels

    events: dict[str, list[tuple[datetime, str]]] = {}
    for label in training_labels(store):
        at = _parse(label.completed_at)
        if label.fault_confirmed and at is not None:
            events.setdefault(label.asset_id, []).append((at, label.work_order_number))
    runs: list[EventRun] = []
    for asset_id, evs in sorted(events.items()):
        frames = queries.features(store, asset_id, limit=max_frames)
        start: datetime | None = None
        for at, number in sorted(evs):
            times, rows = [], []
            first: datetime | None = None
            last_step = -1
            for f in frames:
                if f.window_start >= at or (start is not None and f.window_start <= start):
                    continue
                row = [(f.features.get(c) or {}).get(n) for c, n, _ in features]
                if any(v is None or not math.isfinite(v) for v in row):
                    continue
                first = first or f.window_start
                hours = (f.window_start - first).total_seconds() * time_scale / 3600.0
                step = math.floor(hours / step_hours)
                if step <= last_step:
                    continue
                last_step = step
                times.append(hours)
                rows.append([float(v) for v in row])  # type: ignore[arg-type]
            start = at
            if len(times) < 2 or first is None:
                continue
            event_hours = (at - first).total_seconds() * time_scale / 3600.0
            runs.append(EventRun(f"{asset_id} {number}", np.asarray(times), np.asarray(rows), event_hours))
    return runs
