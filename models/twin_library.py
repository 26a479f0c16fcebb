"""The what-if twin's learned generator: an analog library of run-to-failure cases of one RUL model.

Simulated units of the demo plant's machines (drawn with a seed the RUL model never trained on)
run to failure, some of them derated part of the way; at every frame the deployed ONNX model
predicts as the edge agent would, and the case records what it said next to what then happened
(:class:`core.twin.AnalogLibrary`). Build the shipped library (about a CPU-minute)::

    genedge whatif build-library --json
"""

from __future__ import annotations

import dataclasses
from typing import Any

import numpy as np

from core.inference.preprocess import sliding_windows
from core.inference.runtime import FeatureRULPredictor
from core.sim import AssetSimulator, damage_at
from core.twin import AnalogLibrary
from models.data.simulator import SimUnit, draw_units, unit_frames

__all__ = ["DEFAULT_LIBRARY_SEED", "build_sim_library", "unit_cases"]

#: Seed of the library's units: the shipped simulator model trained on seed 0's units.
DEFAULT_LIBRARY_SEED = 101


def _derated(unit: SimUnit, rng: np.random.Generator, share_of_units: float) -> SimUnit:
    """With probability ``share_of_units``, the unit derated by 20-40 % from a point of its measured span."""
    if unit.fault.kind == "none" or rng.random() >= share_of_units:
        return unit
    start = float(rng.uniform(unit.start_hours, unit.end_hours))
    share = float(rng.choice([0.2, 0.3, 0.4]))
    fault = unit.fault.model_copy(update={"derate_from_hours": round(start, 1), "derate_share": share})
    return dataclasses.replace(unit, fault=fault, end_hours=fault.time_of_event)


def unit_cases(unit: SimUnit, predictor: FeatureRULPredictor, *, every: int = 1) -> dict[str, np.ndarray]:
    """Every ``every``-th frame of one unit (once the model's window is full): prediction and truth."""
    times, raw = unit_frames(unit, tuple((c, n, "none") for c, n in predictor.features), step_hours=predictor.step_hours)
    keep = np.isfinite(raw).all(axis=1)
    times, raw = times[keep], raw[keep]
    ends = np.arange(predictor.window - 1, times.size, every)
    if ends.size == 0:
        return {}
    windows = sliding_windows(predictor.normalizer.transform(raw), predictor.window, ends)
    median = predictor.predict_windows(windows)
    lower, upper = predictor.interval(median, 0.9)
    t = times[ends]
    sim = AssetSimulator(unit.asset, unit.fault, seed=unit.seed, ambient_c=unit.ambient_c)
    load = np.array([sim.state(float(h)).load_pct / 100.0 for h in t])
    event = unit.fault.time_of_event
    cap = predictor.rul_cap
    return {
        "features": np.stack([AnalogLibrary.query_features(m, lo, hi, cap, ld, h)
                              for m, lo, hi, ld, h in zip(median, lower, upper, load, t, strict=True)]),
        "true_rul_h": np.maximum(event - t, 0.0) if np.isfinite(event) else np.full(t.size, np.inf),
        "pred_median_h": median,
        "damage": damage_at(unit.fault, t),
        "shape": np.full(t.size, unit.fault.severity_growth),
        "unit": np.full(t.size, unit.unit, dtype=np.int64),
        "kind": np.full(t.size, unit.fault.kind),
    }


def build_sim_library(predictor: FeatureRULPredictor, *, model: str, n_units: int = 320,
                      seed: int = DEFAULT_LIBRARY_SEED, derated_share: float = 0.35, every: int = 4,
                      k: int = 40, span_hours: float = 1000.0, calibrate: bool = True) -> AnalogLibrary:
    """Simulate ``n_units`` runs, predict along each with ``predictor``, and keep the cases.

    Args:
        predictor: the deployed simulator RUL model (hours).
        model: its ``name:version`` (the library belongs to that model).
        n_units: simulated runs (about 15 % healthy).
        seed: seed of the runs (not the model's training seed).
        derated_share: share of faulty runs derated by 20-40 % from a random point of their span.
        every: keep every ``every``-th frame of a run.
        k: analogs per query.
        span_hours: measured span of each run; the default covers every life from new (lives are
            150-1000 h), so the library knows what a young part at the model's cap goes on to do.
        calibrate: learn the spread factors by leaving one run out (:meth:`AnalogLibrary.calibrate_spread`).
    """
    rng = np.random.default_rng([seed, 0x7A1])
    parts: list[dict[str, np.ndarray]] = []
    for unit in draw_units(n_units, seed=seed, span_hours=span_hours):
        cases = unit_cases(_derated(unit, rng, derated_share), predictor, every=every)
        if cases:
            parts.append(cases)
    cat: dict[str, Any] = {key: np.concatenate([p[key] for p in parts]) for key in parts[0]}
    meta = {"source": "simulated run-to-failure units (core.sim) measured by the edge feature pipeline",
            "n_units": n_units, "seed": seed, "derated_share": derated_share, "every": every, "span_hours": span_hours,
            "n_cases": int(cat["true_rul_h"].size)}
    library = AnalogLibrary(model=model, cap_h=float(predictor.rul_cap), k=k, meta=meta, **cat)
    if calibrate:
        library.calibrate_spread(0.9, seed=seed)
    return library
