"""The plant's own history as RUL training data: stored feature frames up to each confirmed fault.

A completed work order whose outcome confirmed the predicted fault (``prescribe.workorders``
``training_labels``) marks an event on that asset at its completion time. The asset's feature
frames stored before it (``ingest.store``), one per ``step_hours`` of asset time as the edge hook
takes them, become a measured run to that event (:class:`models.data.arrays.EventRun`), with
RUL ``completed_at - t``: a lower bound where the repair came before a failure. A work order
that found no fault is a censored run: the machine was healthy then, so frames at least a RUL cap
before it are labelled with the cap (healthy examples of the plant's own machines). The runs join
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
    censored_cap: float | None = None,
) -> list[EventRun]:
    """Runs to a confirmed fault (and, with ``censored_cap``, to a healthy inspection) from the store.

    Args:
        store: an open :class:`ingest.store.Store`.
        features: ``(channel, feature, transform)`` in model order (the model's, e.g.
            :data:`~models.data.simulator.DEFAULT_FEATURES`).
        step_hours: asset hours between kept frames (the model's frame spacing), taken as the
            agent's hook takes them (:class:`edge_agent.hooks.StepSampler`).
        time_scale: asset hours per wall-clock hour of the stored timestamps (1 in a plant; the
            demo's simulated plant runs faster).
        max_frames: newest frames read per asset.
        censored_cap: the model's RUL cap. When given, a completed work order that found no fault
            (``fault_confirmed`` false) gives a censored run (:attr:`EventRun.censored`): the machine
            was healthy at the inspection, so at frames at least a cap before it the capped RUL is
            the cap. An inspection with no such frame gives none.

    Returns:
        One run per event with at least two usable frames before it, in time order per asset.
        Frames lacking a feature are skipped. A run starts after the asset's previous confirmed
        fault (a repair); a healthy inspection does not end the run to the next fault.
    """
    from edge_agent.hooks import StepSampler
    from ingest.store import queries
    from prescribe.workorders import training_labels

    events: dict[str, list[tuple[datetime, str, bool]]] = {}
    for label in training_labels(store):
        at = _parse(label.completed_at)
        if at is None or label.fault_confirmed is None:
            continue
        if label.fault_confirmed or censored_cap is not None:
            events.setdefault(label.asset_id, []).append((at, label.work_order_number, not label.fault_confirmed))
    runs: list[EventRun] = []
    for asset_id, evs in sorted(events.items()):
        frames = queries.features(store, asset_id, limit=max_frames)
        start: datetime | None = None  # the previous repair
        for at, number, censored in sorted(evs):
            sampler = StepSampler(step_hours, time_scale)
            times, rows = [], []
            first: datetime | None = None
            for f in frames:
                if f.window_start >= at or (start is not None and f.window_start <= start):
                    continue
                row = [(f.features.get(c) or {}).get(n) for c, n, _ in features]
                if any(v is None or not math.isfinite(v) for v in row) or not sampler.take(asset_id, f.window_start):
                    continue
                first = first or f.window_start
                times.append((f.window_start - first).total_seconds() * time_scale / 3600.0)
                rows.append([float(v) for v in row])  # type: ignore[arg-type]
            if not censored:
                start = at
            if len(times) < 2 or first is None:
                continue
            run = EventRun(
                f"{asset_id} {number}",
                np.asarray(times),
                np.asarray(rows),
                (at - first).total_seconds() * time_scale / 3600.0,
                censored=censored,
            )
            if censored and censored_cap is not None and not run.exact(censored_cap).any():
                continue
            runs.append(run)
    return runs
