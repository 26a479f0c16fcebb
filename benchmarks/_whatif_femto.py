"""Calibration of the what-if twin's failure-time futures on the real FEMTO/PRONOSTIA bearings.

The question: when the twin draws futures for a bearing its RUL model never saw, does the truth
fall where the futures say it will? For FEMTO the model speaks share of life left in percent
(:mod:`models.femto_pipeline`), so the futures are shares of life, capped at 100.

Protocol, for each bearing ``B`` held out in turn:

1. :func:`models.femto_pipeline.train_femto` trains its leave-one-bearing-out folds: every
   bearing predicted by a model trained on the other two (:class:`~models.femto_pipeline.BearingFold`).
2. The **analog library** of ``B`` (:class:`core.twin.AnalogLibrary`) holds every window of the
   *other* bearings' folds: what a model that never saw them said (median, and the split-conformal
   90 % interval calibrated on the other library bearing's fold residuals, so no residual of ``B``
   enters), the operating condition (radial load / 5000 N as ``load_share``), the hours run
   (``age_kh``) and what happened (the true share of life left).
3. Every window of ``B`` (its own fold: median, and the interval calibrated on both other
   bearings' residuals, as the model card's nested coverage does) draws :data:`FUTURES` futures
   from each generator of :data:`GENERATORS`: that library (learned), the same library with the
   hours run left out of the analog distance (the three runs lasted 1.4 to 7.8 h, so an hour of
   one is not an hour of another), and :func:`core.twin.interval_futures` (the model's interval
   alone, the no-learning baseline). The truth is scored against each: PIT, coverage and width of
   the central 50 % and 90 % intervals of the futures, CRPS.

Limits, stated with the numbers: three bearings under three conditions give two runs per library.
:meth:`~core.twin.AnalogLibrary.neighbours` takes one case per run, so every query draws from two
analogs at most; the learned futures are two scaled outcomes mixed by kernel weight, and their
central 50 % interval is often a single point. Each library bearing's predictions come from a
model that had ``B`` among its training bearings (``B``'s features and targets trained it, never
``B``'s residuals): with three bearings there is no fold that keeps ``B`` out of both.

``benchmarks/whatif.py`` calls :func:`femto_calibration` and writes the numbers into
``benchmarks/results/whatif.{json,md}``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

from core.datasets.femto import FEMTO_CONDITIONS
from core.errors import ModelError
from core.inference.calibration import SplitConformal
from core.twin import AnalogLibrary, interval_futures
from models.data.femto import FEMTO_BEARINGS, BearingRun, bearing_run
from models.femto_pipeline import BearingFold, train_femto

__all__ = ["CENTRAL", "FUTURES", "GENERATORS", "LOAD_RATING_N", "femto_calibration", "score_futures"]

#: Futures drawn per window.
FUTURES = 500
#: Scale of the conditions' radial loads: the heaviest FEMTO condition (3) is 1.0.
LOAD_RATING_N = 5000.0
#: Central intervals of the futures that are scored (their nominal coverage).
CENTRAL: tuple[float, ...] = (0.5, 0.9)
#: Coverage of the RUL model's conformal interval (the card's and the edge's).
MODEL_COVERAGE = 0.9
#: Share of life left at a new bearing, in percent: the model's cap.
CAP_PCT = 100.0
#: The learned futures' growth shape: the target is a linear health index (the growth law's linear limit).
_LINEAR_SHAPE = 1e-3
#: The generators scored, and what each is.
GENERATORS: dict[str, str] = {
    "analogs": "AnalogLibrary conditioned as the twin does: prediction, interval, load share and hours run",
    "analogs_no_age": "the same library with the hours run left out of the analog distance",
    "interval": "interval_futures: log-normal through the model's 90 % interval (no learning)",
}
#: Bins of the PIT histogram.
_PIT_BINS = 10

#: Reduced settings for a test (~1 minute on 2 cores, most of it the features): few epochs,
#: fewer training windows, every 5th window of the held-out bearing scored.
_QUICK: dict[str, Any] = {"model_params": {"max_epochs": 3}, "data_params": {"train_stride": 4}, "score_every": 5}
_FULL: dict[str, Any] = {"model_params": {}, "data_params": {}, "score_every": 1}


def femto_calibration(
    data_dir: Path,
    *,
    seed: int = 0,
    quick: bool = False,
    bearings: Sequence[str] = FEMTO_BEARINGS,
    runs: dict[str, BearingRun] | None = None,
) -> dict[str, Any]:
    """Score the twin's learned and interval futures on each FEMTO bearing held out (module docstring).

    Args:
        data_dir: folder with the ``Learning_set_BearingX_Y.tar.xz`` archives (or a ``femto/`` folder).
        seed: seeds the models and the draws.
        quick: few epochs and every 5th held-out window (a test); the full run trains the
            deployed recipe (:func:`models.femto_pipeline.default_femto_config`) and scores every window.
        bearings: the run-to-failure bearings (at least three: each library needs two).
        runs: bearing runs already computed (their features take ~20-40 s for all three).

    Returns:
        ``bearings`` (per held-out bearing: its windows, load, the library it drew from, the
        model's fold quality, and under each name of :data:`GENERATORS` its scores: ``coverage_50``,
        ``coverage_90``, ``width_50``, ``width_90`` (percentage points), ``point_intervals_50``
        (share of windows whose central 50 % is one value), ``pit_mean``, ``pit_ks`` (largest
        distance of the PIT's distribution from uniform), ``pit_histogram`` (10 bins), ``crps``),
        ``pooled`` (the same scores over every scored window), the settings and the seconds spent.

    Raises:
        ModelError: a bad argument, or an archive that is missing or unreadable.
    """
    bearings = tuple(bearings)
    if isinstance(seed, bool) or not isinstance(seed, int) or seed < 0:
        raise ModelError(f"seed must be an int >= 0, got {seed!r}")
    if len(bearings) < 3 or len(set(bearings)) != len(bearings):
        raise ModelError(f"need at least three different bearings (two in each library), got {bearings}")
    unknown = [b for b in bearings if b.partition("_")[0] not in {str(c) for c in FEMTO_CONDITIONS}]
    if unknown:
        raise ModelError(f"FEMTO bearings are '<condition>_<n>' with condition in {sorted(FEMTO_CONDITIONS)}, got {unknown}")
    settings = _QUICK if quick else _FULL
    t0 = time.perf_counter()
    runs = dict(runs or {})
    for b in bearings:
        if b not in runs:
            runs[b] = bearing_run(data_dir, b)
    t_features = time.perf_counter() - t0
    result = train_femto(
        data_dir,
        bearings=bearings,
        seed=seed,
        runs=runs,
        data_params=dict(settings["data_params"]),
        model_params=dict(settings["model_params"]),
    )
    t_train = time.perf_counter() - t0 - t_features
    folds = {f.bearing: f for f in result.folds}
    per: dict[str, Any] = {}
    pooled: dict[str, list[dict[str, NDArray[np.float64]]]] = {name: [] for name in GENERATORS}
    for i, b in enumerate(bearings):
        others = [folds[x] for x in bearings if x != b]
        library = _library(others, model=f"femto-fold-without-{b}", with_age=True)
        no_age = _library(others, model=f"femto-fold-without-{b}", with_age=False)
        rows = np.arange(0, folds[b].y.size, int(settings["score_every"]))
        median, lower, upper = _with_interval(folds[b], others)
        m, lo, hi = median[rows], lower[rows], upper[rows]
        truth = folds[b].y[rows].astype(np.float64)
        age_h = folds[b].t_hours[rows]
        futures = {
            "analogs": _draw_analogs(library, m, lo, hi, _load_share(b), age_h, np.random.default_rng([seed, i, 0])),
            "analogs_no_age": _draw_analogs(
                no_age, m, lo, hi, _load_share(b), np.zeros_like(age_h), np.random.default_rng([seed, i, 2])
            ),
            "interval": _draw_interval(m, lo, hi, np.random.default_rng([seed, i, 1])),
        }
        scored = {name: _per_window(f, truth) for name, f in futures.items()}
        for name, s in scored.items():
            pooled[name].append(s)
        quality = result.metrics["bearings"][b]
        per[b] = {
            "windows": int(rows.size),
            "life_hours": runs[b].life_hours,
            "load_n": _load_n(b),
            "load_share": _load_share(b),
            "library": {
                "bearings": [f.bearing for f in others],
                "cases": int(library.true_rul_h.size),
                "analogs_per_query": int(min(library.k, np.unique(library.unit).size)),
            },
            "model": {
                "rmse": quality["rmse"],
                "ratio_to_constant": quality["ratio_to_constant"],
                "coverage_90_model_interval": quality["coverage_nested"],
            },
            **{name: _summary(scored[name]) for name in GENERATORS},
        }
    t_score = time.perf_counter() - t0 - t_features - t_train
    merged = {name: {k: np.concatenate([s[k] for s in parts]) for k in parts[0]} for name, parts in pooled.items()}
    return {
        "protocol": (
            "leave one bearing out: each bearing's windows, predicted by a model trained on the other two, "
            "draw futures from an analog library of the other bearings' out-of-fold cases (learned) and from "
            "the model's 90 % conformal interval alone (log-normal); the true share of life left is scored"
        ),
        "unit": "% of life left",
        "futures_per_window": FUTURES,
        "central_intervals": list(CENTRAL),
        "seed": seed,
        "quick": quick,
        "epochs": int(result.config["model"]["max_epochs"]),
        "train_stride": int(result.config["data"]["train_stride"]),
        "score_every": int(settings["score_every"]),
        "bearings": per,
        "pooled": {
            "windows": int(sum(v["windows"] for v in per.values())),
            **{name: _summary(merged[name]) for name in GENERATORS},
        },
        "generators": dict(GENERATORS),
        "caveats": [
            f"{len(bearings)} bearings: each library holds {len(bearings) - 1} runs, and the analog generator takes "
            "one case per run, so each query draws from at most that many analogs",
            "the models that predicted a library's bearings had the held-out bearing among their training bearings "
            "(its features and targets, never its residuals)",
            "windows of one bearing are not independent: the pooled figures weigh the longest run most",
        ],
        "seconds": {"features": t_features, "training": t_train, "scoring": t_score, "total": time.perf_counter() - t0},
    }


# ------------------------------------------------------------------------------------ pieces
def _load_n(bearing: str) -> float:
    """Radial load of a bearing's operating condition in newtons."""
    return FEMTO_CONDITIONS[int(bearing.split("_", maxsplit=1)[0])][1]


def _load_share(bearing: str) -> float:
    """The AnalogLibrary's ``load_share`` of a bearing's condition."""
    return _load_n(bearing) / LOAD_RATING_N


def _with_interval(
    fold: BearingFold, calibration: Sequence[BearingFold]
) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.float64]]:
    """A fold's median and its 90 % interval, calibrated on other folds' residuals, as the edge states it (upper <= 100)."""
    cal = SplitConformal().fit(np.concatenate([f.y for f in calibration]), np.concatenate([f.pred for f in calibration]))
    median = np.clip(fold.pred.astype(np.float64), 0.0, CAP_PCT)
    lower, upper = cal.interval(median, MODEL_COVERAGE)
    return median, np.clip(lower, 0.0, median), np.clip(upper, median, CAP_PCT)


def _library(folds: Sequence[BearingFold], *, model: str, with_age: bool) -> AnalogLibrary:
    """The analog library of the given out-of-fold bearings (each one a run; intervals from the others' residuals).

    ``with_age=False`` holds every case's age at 0: a constant feature the analog distance ignores
    (query with ``age_h=0`` too).
    """
    parts: list[dict[str, NDArray[Any]]] = []
    for j, f in enumerate(folds):
        median, lower, upper = _with_interval(f, [g for g in folds if g is not f])
        load = _load_share(f.bearing)
        ages = f.t_hours if with_age else np.zeros_like(f.t_hours)
        features = np.stack(
            [
                AnalogLibrary.query_features(m, lo, hi, CAP_PCT, load, h)
                for m, lo, hi, h in zip(median, lower, upper, ages, strict=True)
            ]
        )
        y = f.y.astype(np.float64)
        parts.append(
            {
                "features": features,
                "true_rul_h": y,
                "pred_median_h": median,
                "damage": 1.0 - y / CAP_PCT,
                "shape": np.full(y.size, _LINEAR_SHAPE),
                "unit": np.full(y.size, j, dtype=np.int64),
                "kind": np.full(y.size, "bearing"),
            }
        )
    cat = {k: np.concatenate([p[k] for p in parts]) for k in parts[0]}
    meta = {
        "source": "FEMTO/PRONOSTIA leave-one-bearing-out folds",
        "bearings": [f.bearing for f in folds],
        "unit": "% of life left",
    }
    return AnalogLibrary(
        model=model,
        cap_h=CAP_PCT,
        features=cat["features"],
        true_rul_h=cat["true_rul_h"],
        pred_median_h=cat["pred_median_h"],
        damage=cat["damage"],
        shape=cat["shape"],
        unit=cat["unit"],
        kind=cat["kind"],
        meta=meta,
    )


def _draw_analogs(
    library: AnalogLibrary,
    median: NDArray[np.float64],
    lower: NDArray[np.float64],
    upper: NDArray[np.float64],
    load_share: float,
    age_h: NDArray[np.float64],
    rng: np.random.Generator,
) -> NDArray[np.float64]:
    """``(windows, FUTURES)`` learned futures (share of life left, at most 100)."""
    out = np.stack(
        [
            library.sample(float(m), float(lo), float(hi), FUTURES, rng, load_share=load_share, age_h=float(h)).failure_h
            for m, lo, hi, h in zip(median, lower, upper, age_h, strict=True)
        ]
    )
    return np.minimum(out, CAP_PCT)


def _draw_interval(
    median: NDArray[np.float64], lower: NDArray[np.float64], upper: NDArray[np.float64], rng: np.random.Generator
) -> NDArray[np.float64]:
    """``(windows, FUTURES)`` futures from the model's interval alone (share of life left, at most 100)."""
    out = np.stack(
        [
            interval_futures(float(m), float(lo), float(hi), FUTURES, rng, coverage=MODEL_COVERAGE).failure_h
            for m, lo, hi in zip(median, lower, upper, strict=True)
        ]
    )
    return np.minimum(out, CAP_PCT)


def score_futures(futures: NDArray[np.float64], truth: NDArray[np.float64]) -> dict[str, Any]:
    """Score ``(windows, n)`` futures against one truth per window (the summary of :func:`femto_calibration`).

    Raises:
        ModelError: the shapes do not match, or a value is not finite.
    """
    f, t = np.asarray(futures, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    if f.ndim != 2 or t.ndim != 1 or f.shape[0] != t.size or f.shape[1] < 2 or t.size == 0:
        raise ModelError(f"need futures (windows, n >= 2) and truth (windows,), got {f.shape} and {t.shape}")
    if not (np.isfinite(f).all() and np.isfinite(t).all()):
        raise ModelError("futures and truth must be finite")
    return _summary(_per_window(f, t))


def _per_window(futures: NDArray[np.float64], truth: NDArray[np.float64]) -> dict[str, NDArray[np.float64]]:
    """Per window: the truth's PIT (mid-rank on ties), CRPS, and each central interval's hit and width."""
    below = (futures < truth[:, None]).mean(axis=1)
    tied = (futures == truth[:, None]).mean(axis=1)
    out = {"pit": below + 0.5 * tied, "crps": _crps(futures, truth)}
    for c in CENTRAL:
        lo, hi = np.quantile(futures, [0.5 - c / 2, 0.5 + c / 2], axis=1)
        key = round(c * 100)
        out[f"hit_{key}"] = ((truth >= lo) & (truth <= hi)).astype(np.float64)
        out[f"width_{key}"] = hi - lo
    return out


def _crps(futures: NDArray[np.float64], truth: NDArray[np.float64]) -> NDArray[np.float64]:
    """Sample CRPS per window: ``E|X - y| - E|X - X'| / 2`` (the spread term from the sorted samples)."""
    x = np.sort(futures, axis=1)
    m = x.shape[1]
    spread = 2.0 / m**2 * (x * (2.0 * np.arange(1, m + 1) - m - 1)).sum(axis=1)
    crps: NDArray[np.float64] = np.abs(x - truth[:, None]).mean(axis=1) - 0.5 * spread
    return crps


def _summary(s: dict[str, NDArray[np.float64]]) -> dict[str, Any]:
    """Coverage and mean width of each central interval, PIT summaries and mean CRPS over windows."""
    pit = s["pit"]
    u = np.sort(pit)
    n = u.size
    ks = float(max(np.max(np.arange(1, n + 1) / n - u), np.max(u - np.arange(n) / n)))
    out: dict[str, Any] = {}
    for c in CENTRAL:
        key = round(c * 100)
        out[f"coverage_{key}"] = float(np.mean(s[f"hit_{key}"]))
        out[f"width_{key}"] = float(np.mean(s[f"width_{key}"]))
    out["point_intervals_50"] = float(np.mean(s["width_50"] <= 0.0))
    out["pit_mean"] = float(np.mean(pit))
    out["pit_ks"] = ks
    out["pit_histogram"] = np.histogram(pit, bins=_PIT_BINS, range=(0.0, 1.0))[0].astype(int).tolist()
    out["crps"] = float(np.mean(s["crps"]))
    return out
