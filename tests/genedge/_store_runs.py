"""A plant's store with one run to a confirmed fault: the stored history that retraining labels."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np

from core.sim import FaultSpec, default_plant
from core.wire import FeatureFrame
from ingest.store import Store
from models.data.simulator import DEFAULT_FEATURES, SimUnit, unit_frames
from prescribe import workorders as wo
from prescribe.evidence import from_simulator
from prescribe.prescriber import Prescriber

T0 = datetime(2026, 3, 1, tzinfo=UTC)
LIFE_H = 200.0


def feature_frame(seq: int, at: datetime, row: np.ndarray | None) -> FeatureFrame:
    """P-101's feature frame of ``row`` (in :data:`DEFAULT_FEATURES` order); ``None``: one without vibration features."""
    feats: dict[str, dict[str, float]] = {}
    if row is None:  # a frame the model cannot read (no vibration features)
        feats = {"temp_de": {"mean": 40.0}}
    else:
        for (channel, name, _), value in zip(DEFAULT_FEATURES, row, strict=True):
            feats.setdefault(channel, {})[name] = float(value)
    return FeatureFrame(publisher="edge-01", seq=seq, asset_id="P-101", window_start=at, window_s=1.0, features=feats)


def build_plant_store(tmp_path: Path) -> tuple[str, np.ndarray, np.ndarray]:
    """P-101's frames every 2 h up to and past a repair at 200 h that confirmed the fault, in a real SQLite store.

    Returns:
        The store's URL, the frames' times (hours) and their raw feature rows.
    """
    plant = {a.asset_id: a for a in default_plant()}
    fault = FaultSpec(kind="outer_race", onset_hours=60.0, life_hours=LIFE_H)
    unit = SimUnit(0, plant["P-101"], fault, seed=5, ambient_c=25.0, start_hours=0.0, end_hours=LIFE_H + 20.0)
    t, raw = unit_frames(unit, step_hours=2.0, snapshot_samples=6400)
    url = f"sqlite:///{tmp_path / 'plant.db'}"
    with Store(url) as store:
        store.upsert_assets(plant.values())
        msgs = [(feature_frame(i, T0 + timedelta(hours=float(h)), r), T0) for i, (h, r) in enumerate(zip(t, raw, strict=True))]
        msgs.append((feature_frame(len(msgs), T0 + timedelta(hours=7.0), None), T0))  # skipped: lacks features
        store.write(msgs)
        # the prescriber's work order, approved and completed at 200 h: fault confirmed
        rec = Prescriber().recommend(from_simulator(plant["P-101"], fault, 180.0, seed=3))
        done_at = T0 + timedelta(hours=LIFE_H)
        draft = wo.save_draft(store, rec, at=done_at - timedelta(hours=20))
        wo.approve(store, draft.id, "olga", at=done_at - timedelta(hours=19))
        wo.complete(store, draft.id, "tom", found="outer_race", fault_confirmed=True, at=done_at)
        # a second one on the same asset that found nothing is no event
        other = wo.save_draft(store, rec, at=done_at + timedelta(hours=5))
        wo.approve(store, other.id, "olga", at=done_at + timedelta(hours=6))
        wo.complete(store, other.id, "tom", found="none", fault_confirmed=False, at=done_at + timedelta(hours=10))
    return url, t, raw
