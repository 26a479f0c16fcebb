"""Calibrating the shipped 90 % intervals on out-of-fold errors: coverage on units the model never saw.

The shipped C-MAPSS ensembles calibrate their Mondrian 90 % interval on their validation units only
(20 on FD001/FD003, about 50 on FD002/FD004). Here a nested 5-fold cross-fit *inside the shipped
split* (``benchmarks/rul_crossfit.py``: one network per fold with the shipped card's recipe, cut from
the shipped model's training units only; its validation units held out of everything) predicts every
training unit out of fold, and the same five networks predict the validation units. Out-of-fold cuts
are the fold networks' own validation cuts (5 random truncations per unit, drawn by
``CMAPSSDataModule`` exactly as the shipped validation cuts are) and, for the ``*_grid`` methods, every
:data:`CAL_STEP`-th admissible truncation of each unit (RUL 1, 6, 11, ... up to min(150, life - 20):
a systematic sample of the range the random cuts are drawn from).

Calibration methods (all Mondrian, bins ``models.pipeline.CMAPSS_INTERVAL_BINS``, 90 %):

* ``val``: what ships, the shipped ensemble's errors on the calibration units' 5 validation cuts;
* ``val_grid``: the same on the calibration units' grid truncations;
* ``oof_raw``: ``val`` plus the single networks' out-of-fold errors on every training unit, as they are;
* ``oof_scaled``: the same, the out-of-fold scores multiplied by the ensemble's mean absolute error over
  the single networks' on the calibration units (:func:`models.oof_calibration.oof_conformal`);
* ``oof_scaled_grid``: ``oof_scaled`` on grid truncations, of the training and the calibration units;
* ``all_val_in_sample``: reference only, the shipped calibration itself (every validation unit, the
  held-out ones included).

Evaluation, the same splits for every method: each split draws a random half of the shipped
*validation* units (the only units the shipped model never trained on) and holds it out; the other
half are the calibration units (with ``oof_*``, plus the out-of-fold pool of the training units, the
same in every split; the error ratio is measured on the calibration units only). Both halves of each
of 200 permutations are held out in turn: 400 splits. The shipped int8 ONNX model is scored on the
held-out units only, on *every* admissible truncation of each, each unit weighted equally, so a
split's coverage varies with which units are held out, not with which 5 cuts were drawn; the coverage
of the 5 validation cuts is reported too, for comparison with ``results/rul_intervals.md``.
Leave-one-unit-out (each validation unit against the others) is the largest calibration set. Reported:
mean and 10th percentile of coverage over splits, mean width, width where the prediction is below
``models.pipeline.NEAR_FAILURE_RUL``; and two checks of what 10-26 test units can tell, on the single
networks (the only models with many unseen units): how far the mean coverage of half as many unseen
units as there are validation units wanders under a calibration from every other training unit, and
whether the validation units are harder than the training units (a permutation test on per-unit MAE).

    python benchmarks/rul_oof_intervals.py --subset FD001 [--subset ...]   # trains missing folds
    python benchmarks/rul_oof_intervals.py --merge      -> results/rul_oof_intervals.{json,md}
    python benchmarks/rul_oof_intervals.py --subset FD001 --calibration DIR   # DIR/cmapss-FD001_calibration.json

Fold checkpoints and each subset's predictions are kept in ``--checkpoint-dir`` (/tmp/oof/ckpt), so a
rerun does not retrain.
"""

# ruff: noqa: N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.rul_crossfit import N_FOLDS, fit_folds, nested_setup  # noqa: E402
from core.datasets.cmapss import load_cmapss  # noqa: E402
from core.inference.calibration import SplitConformal  # noqa: E402
from core.inference.registry import SHIPPED_DIR, ModelRegistry  # noqa: E402
from core.inference.runtime import OnnxRULPredictor  # noqa: E402
from models.oof_calibration import ensemble_error_ratio, oof_card_calibration, oof_conformal  # noqa: E402
from models.pipeline import CMAPSS_INTERVAL_BINS, NEAR_FAILURE_RUL  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
PARTS = RESULTS / "rul_oof_intervals_parts"
COVERAGE = 0.9
N_PERMUTATIONS = 200
BINS = CMAPSS_INTERVAL_BINS
#: calibration cuts of the ``*_grid`` methods: every CAL_STEP-th admissible truncation of each unit
CAL_STEP = 5
SYNTHETIC_UNIT = 1000  # a truncation's synthetic unit id: unit * SYNTHETIC_UNIT + its RUL

Arrays = dict[str, np.ndarray]


def dense_cuts(
    dm: Any, data_dir: Path, units: np.ndarray, step: int = 1
) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Every ``step``-th admissible truncation of ``units``, windowed by ``dm``.

    Admissible: RUL 1 .. min(val_max_rul, life - min_cut_length), the range the data module's random
    validation cuts are drawn from uniformly; ``step`` keeps RUL 1, 1 + step, ...

    Returns:
        windows ``(n, channels, window)``, capped truths, the RUL of each cut (uncapped) and its unit.
    """
    df = load_cmapss(data_dir, dm.subset, "train")
    xs, ruls_out, us = [], [], []
    for unit in units:
        g = df[df["unit"] == unit].sort_values("cycle")
        n = len(g)
        ruls = np.arange(1, max(min(dm.val_max_rul, n - dm.min_cut_length), 1) + 1, step)
        cut = pd.concat([g.iloc[: n - r].assign(unit=int(unit) * SYNTHETIC_UNIT + int(r)) for r in ruls], ignore_index=True)
        X, ids = dm.last_windows(cut)
        xs.append(X)
        ruls_out.append(ids % SYNTHETIC_UNIT)
        us.append(np.full(ids.size, unit))
    rul = np.concatenate(ruls_out)
    return np.concatenate(xs), np.minimum(rul, dm.rul_cap).astype(np.float64), rul, np.concatenate(us)


def subset_predictions(data_dir: Path, subset: str, version: str, checkpoint_dir: Path) -> Arrays:
    """Out-of-fold and validation predictions of the nested cross-fit, and the shipped model's (cached).

    Keys: ``val_*`` the shipped validation cuts (5 per unit; ``val_ship`` the shipped int8 model's
    predictions, ``val_single`` each fold network's), ``dense_*`` every admissible truncation of the
    validation units (``dense_single`` each fold network's), ``oof_*`` the fold networks' own validation
    cuts of the training units (5 per unit, each predicted by the network that did not train on it),
    ``oofgrid_*`` every :data:`CAL_STEP`-th truncation of the training units, predicted the same way.
    """
    cache = checkpoint_dir / f"predictions_{subset}_{version}.npz"
    if cache.is_file():
        with np.load(cache) as z:
            return {k: z[k] for k in z.files}
    split_dm, mv, config = nested_setup(data_dir, subset, version, checkpoint_dir)
    seed = int(mv.card.seed or 0)
    shipped = OnnxRULPredictor(mv.model_path, mv.card)
    dense_X, dense_y, dense_rul, dense_units = dense_cuts(split_dm, data_dir, split_dm.val_units)
    out: Arrays = {
        "val_y": split_dm.y_val.astype(np.float64),
        "val_units": split_dm.val_cut_units,
        "val_ship": shipped.predict_windows(split_dm.X_val).astype(np.float64),
        "dense_y": dense_y,
        "dense_rul": dense_rul,
        "dense_units": dense_units,
        "dense_ship": shipped.predict_windows(dense_X).astype(np.float64),
    }
    parts: dict[str, list[np.ndarray]] = {
        k: []
        for k in ("oof_y", "oof_units", "oof_pred", "val_single", "dense_single", "oofgrid_y", "oofgrid_units", "oofgrid_pred")
    }
    for k in range(N_FOLDS):  # one at a time: a fold's data module holds every training window
        fold = fit_folds(data_dir, subset, [k], config, seed, split_dm)[0]
        fdm, est = fold.datamodule, fold.estimator
        # the fold's normaliser is the shipped model's (checked by fit_folds), so split_dm windows them alike
        grid_X, grid_y, _, grid_units = dense_cuts(split_dm, data_dir, fdm.val_units, CAL_STEP)
        for key, value in (
            ("oof_y", fdm.y_val),
            ("oof_units", fdm.val_cut_units),
            ("oof_pred", est.predict(fdm.X_val)),
            ("val_single", est.predict(split_dm.X_val)),
            ("dense_single", est.predict(dense_X)),
            ("oofgrid_y", grid_y),
            ("oofgrid_units", grid_units),
            ("oofgrid_pred", est.predict(grid_X)),
        ):
            parts[key].append(np.asarray(value))
        del fold, fdm, est
    for key, values in parts.items():
        stacked = np.stack(values) if key in ("val_single", "dense_single") else np.concatenate(values)
        out[key] = stacked if key.endswith("units") else stacked.astype(np.float64)
    if sorted(np.unique(out["oof_units"]).tolist()) != split_dm.train_units.tolist():
        raise SystemExit(f"{subset}: the out-of-fold units are not the shipped model's training units")
    checkpoint_dir.mkdir(parents=True, exist_ok=True)
    np.savez(cache, allow_pickle=False, **out)
    return out


#: what a part's ``bounds`` says when its intervals had :meth:`SplitConformal.interval`'s monotone envelope
MONOTONE = "monotone"

#: a method calibrates from the arrays and the validation units it may use (never the held-out ones)
Method = Callable[[Arrays, np.ndarray], SplitConformal]


def _val_only(a: Arrays, cal_units: np.ndarray) -> SplitConformal:
    cal = np.isin(a["val_units"], cal_units)
    return SplitConformal(bins=BINS).fit(a["val_y"][cal], a["val_ship"][cal])


def _val_grid(a: Arrays, cal_units: np.ndarray) -> SplitConformal:
    cal = np.isin(a["dense_units"], cal_units) & ((a["dense_rul"] - 1) % CAL_STEP == 0)
    return SplitConformal(bins=BINS).fit(a["dense_y"][cal], a["dense_ship"][cal])


def _oof_raw(a: Arrays, cal_units: np.ndarray) -> SplitConformal:
    cal = np.isin(a["val_units"], cal_units)
    y = np.concatenate([a["oof_y"], a["val_y"][cal]])
    return SplitConformal(bins=BINS).fit(y, np.concatenate([a["oof_pred"], a["val_ship"][cal]]))


def _oof_scaled(a: Arrays, cal_units: np.ndarray) -> SplitConformal:
    cal = np.isin(a["val_units"], cal_units)
    vy, vp, vs = a["val_y"][cal], a["val_ship"][cal], a["val_single"][:, cal]
    return oof_conformal(a["oof_y"], a["oof_pred"], vy, vp, vs, bins=BINS)[0]


def _oof_scaled_grid(a: Arrays, cal_units: np.ndarray) -> SplitConformal:
    cal = np.isin(a["dense_units"], cal_units) & ((a["dense_rul"] - 1) % CAL_STEP == 0)
    vy, vp, vs = a["dense_y"][cal], a["dense_ship"][cal], a["dense_single"][:, cal]
    return oof_conformal(a["oofgrid_y"], a["oofgrid_pred"], vy, vp, vs, bins=BINS)[0]


def _all_val(a: Arrays, cal_units: np.ndarray) -> SplitConformal:
    return SplitConformal(bins=BINS).fit(a["val_y"], a["val_ship"])


METHODS: dict[str, Method] = {
    "val": _val_only,
    "val_grid": _val_grid,
    "oof_raw": _oof_raw,
    "oof_scaled": _oof_scaled,
    "oof_scaled_grid": _oof_scaled_grid,
    "all_val_in_sample": _all_val,
}


def unit_weighted_score(conf: SplitConformal, y: np.ndarray, pred: np.ndarray, units: np.ndarray) -> dict[str, float]:
    """Coverage and width, each unit weighted equally; near-failure sums (with those weights) to pool over splits."""
    lo, hi = conf.interval(pred, COVERAGE)
    _, inverse, counts = np.unique(units, return_inverse=True, return_counts=True)
    w = 1.0 / counts[inverse]
    hits, width, near = (y >= lo) & (y <= hi), hi - lo, pred < NEAR_FAILURE_RUL
    return {
        "cov": float(np.sum(w * hits) / w.sum()),
        "width": float(np.sum(w * width) / w.sum()),
        "near_n": float(np.sum(w * near)),
        "near_width": float(np.sum(w * width * near)),
        "near_hits": float(np.sum(w * hits * near)),
    }


def evaluate(a: Arrays, n_permutations: int = N_PERMUTATIONS, seed: int = 0) -> dict[str, Any]:
    """Every method on the same random halvings of the validation units, and leave-one-unit-out."""
    units = np.unique(a["val_units"])
    rng = np.random.default_rng(seed)
    per: dict[str, list[dict[str, float]]] = {m: [] for m in METHODS}
    ratios = []
    for _ in range(n_permutations):
        first = rng.permutation(units)[: units.size // 2]
        for held_units in (first, np.setdiff1d(units, first)):
            cal_units = np.setdiff1d(units, held_units)
            cal = np.isin(a["val_units"], cal_units)
            test = np.isin(a["dense_units"], held_units)
            ratios.append(ensemble_error_ratio(a["val_y"][cal], a["val_ship"][cal], a["val_single"][:, cal]))
            for name, method in METHODS.items():
                conf = method(a, cal_units)
                row = unit_weighted_score(conf, a["dense_y"][test], a["dense_ship"][test], a["dense_units"][test])
                row["cov5"] = unit_weighted_score(conf, a["val_y"][~cal], a["val_ship"][~cal], a["val_units"][~cal])["cov"]
                per[name].append(row)
    out: dict[str, Any] = {}
    for name, method in METHODS.items():
        r = {k: np.array([row[k] for row in per[name]]) for k in per[name][0]}
        louo = []
        for unit in units:
            held = a["dense_units"] == unit
            louo.append(
                unit_weighted_score(
                    method(a, units[units != unit]), a["dense_y"][held], a["dense_ship"][held], a["dense_units"][held]
                )
            )
        lo = {k: np.array([row[k] for row in louo]) for k in louo[0]}
        out[name] = {
            "coverage_mean": float(r["cov"].mean()),
            "coverage_p10": float(np.percentile(r["cov"], 10)),
            "coverage_p5": float(np.percentile(r["cov"], 5)),
            "coverage_5cuts_mean": float(r["cov5"].mean()),
            "coverage_5cuts_p10": float(np.percentile(r["cov5"], 10)),
            "width": float(r["width"].mean()),
            "width_near_failure": float(r["near_width"].sum() / r["near_n"].sum()),
            "coverage_near_failure": float(r["near_hits"].sum() / r["near_n"].sum()),
            "coverage_louo": float(lo["cov"].mean()),
            "width_louo": float(lo["width"].mean()),
            "width_near_failure_louo": float(lo["near_width"].sum() / lo["near_n"].sum()),
            "coverage_near_failure_louo": float(lo["near_hits"].sum() / lo["near_n"].sum()),
        }
    out["_oof_scale_over_splits"] = {
        "mean": float(np.mean(ratios)),
        "p10": float(np.percentile(ratios, 10)),
        "p90": float(np.percentile(ratios, 90)),
    }
    return out


def _mae(pred: np.ndarray, y: np.ndarray) -> float:
    return float(np.mean(np.abs(pred - y)))


def test_set_noise(a: Arrays, n_units: int, n_draws: int = 2000, seed: int = 0) -> dict[str, float]:
    """How far the mean coverage of ``n_units`` unseen units wanders when the calibration is right.

    Measured on the single networks, the only models with many unseen units: each training unit's
    out-of-fold grid cuts against a Mondrian calibration on every other training unit's, then the
    mean over random groups of ``n_units`` units.
    """
    units = np.unique(a["oofgrid_units"])
    per_unit = []
    for unit in units:
        held = a["oofgrid_units"] == unit
        conf = SplitConformal(bins=BINS).fit(a["oofgrid_y"][~held], a["oofgrid_pred"][~held])
        lo, hi = conf.interval(a["oofgrid_pred"][held], COVERAGE)
        per_unit.append(float(np.mean((a["oofgrid_y"][held] >= lo) & (a["oofgrid_y"][held] <= hi))))
    cov = np.asarray(per_unit)
    rng = np.random.default_rng(seed)
    means = np.array([cov[rng.choice(cov.size, n_units, replace=False)].mean() for _ in range(n_draws)])
    return {"louo_mean": float(cov.mean()), "p10": float(np.percentile(means, 10)), "p90": float(np.percentile(means, 90))}


def harder_val_units(a: Arrays, n_perm: int = 10000, seed: int = 0) -> dict[str, float]:
    """Single-network MAE per unit, validation units against training units (grid cuts), with a permutation p-value."""
    grid = (a["dense_rul"] - 1) % CAL_STEP == 0
    val_err = np.abs(a["dense_single"][:, grid] - a["dense_y"][grid]).mean(axis=0)
    val_units = a["dense_units"][grid]
    oof_err = np.abs(a["oofgrid_pred"] - a["oofgrid_y"])
    val = np.array([val_err[val_units == u].mean() for u in np.unique(val_units)])
    oof = np.array([oof_err[a["oofgrid_units"] == u].mean() for u in np.unique(a["oofgrid_units"])])
    both = np.concatenate([val, oof])
    diff = val.mean() - oof.mean()
    rng = np.random.default_rng(seed)
    perm = []
    for _ in range(n_perm):
        shuffled = rng.permutation(both)
        perm.append(shuffled[: val.size].mean() - shuffled[val.size :].mean())
    return {
        "val_units_mae": float(val.mean()),
        "train_units_mae": float(oof.mean()),
        "p_two_sided": float(np.mean(np.abs(perm) >= abs(diff))),
    }


def run_subset(data_dir: Path, subset: str, checkpoint_dir: Path) -> dict[str, Any]:
    """One subset's row: the data, the error ratio, the card's bins and every method's evaluation."""
    mv = ModelRegistry(SHIPPED_DIR).promoted(f"cmapss-{subset}")
    a = subset_predictions(data_dir, subset, mv.version, checkpoint_dir)
    everything = np.unique(a["val_units"])
    grid = (a["dense_rul"] - 1) % CAL_STEP == 0
    return {
        "subset": subset,
        "version": mv.version,
        "n_val_units": int(np.unique(a["val_units"]).size),
        "n_oof_units": int(np.unique(a["oof_units"]).size),
        "n_dense_cuts": int(a["dense_y"].size),
        "mae_shipped_val": _mae(a["val_ship"], a["val_y"]),
        "mae_single_val": [_mae(p, a["val_y"]) for p in a["val_single"]],
        "mae_single_oof": _mae(a["oof_pred"], a["oof_y"]),
        "mae_shipped_dense": _mae(a["dense_ship"], a["dense_y"]),
        "mae_single_dense": [_mae(p, a["dense_y"]) for p in a["dense_single"]],
        "mae_single_oofgrid": _mae(a["oofgrid_pred"], a["oofgrid_y"]),
        "oof_scale": ensemble_error_ratio(a["val_y"], a["val_ship"], a["val_single"]),
        "oof_scale_grid": ensemble_error_ratio(a["dense_y"][grid], a["dense_ship"][grid], a["dense_single"][:, grid]),
        "bin_q90": {
            m: METHODS[m](a, everything).bin_quantiles(COVERAGE).tolist()
            for m in ("val", "val_grid", "oof_raw", "oof_scaled", "oof_scaled_grid")
        },
        "methods": evaluate(a),
        "single_network_test_set_noise": test_set_noise(a, int(np.unique(a["val_units"]).size) // 2),
        "single_network_mae_by_units": harder_val_units(a),
        "bounds": MONOTONE,
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def card_calibration(data_dir: Path, subset: str, checkpoint_dir: Path, *, grid: bool = True) -> dict[str, Any]:
    """The card calibration section of ``oof_scaled_grid`` (``grid=False``: ``oof_scaled``), on every unit."""
    mv = ModelRegistry(SHIPPED_DIR).promoted(f"cmapss-{subset}")
    a = subset_predictions(data_dir, subset, mv.version, checkpoint_dir)
    if grid:
        g = (a["dense_rul"] - 1) % CAL_STEP == 0
        oof_y, oof_pred, val_y, val_pred, singles = (
            a["oofgrid_y"],
            a["oofgrid_pred"],
            a["dense_y"][g],
            a["dense_ship"][g],
            a["dense_single"][:, g],
        )
        cuts = f"every {CAL_STEP}th admissible truncation (RUL 1, {1 + CAL_STEP}, ... up to 150) of each unit"
    else:
        oof_y, oof_pred, val_y, val_pred, singles = a["oof_y"], a["oof_pred"], a["val_y"], a["val_ship"], a["val_single"]
        cuts = "5 random truncations per unit (the data module's validation cuts)"
    return oof_card_calibration(
        oof_y,
        oof_pred,
        val_y,
        val_pred,
        singles,
        bins=BINS,
        source=(
            f"{mv.version}'s ONNX predictions on its validation units plus the out-of-fold errors of a nested 5-fold "
            f"cross-fit over its training units (single networks, scaled by oof_scale); {cuts}; "
            "benchmarks/rul_oof_intervals.py"
        ),
        n_oof_units=int(np.unique(a["oof_units"]).size),
        n_val_units=int(np.unique(a["val_units"]).size),
    )


def _bounds_note(rows: list[dict[str, Any]]) -> list[str]:
    """A line naming the subsets scored with per-bin bounds as they are (parts that do not record ``bounds``)."""
    raw = [r["subset"] for r in rows if r.get("bounds") != MONOTONE]
    if not raw:
        return []
    return [
        "",
        f"{', '.join(raw)}: scored with the per-bin bounds as they are, without the monotone envelope "
        "`SplitConformal.interval` applies; the envelope only widens an interval, so these coverages are lower "
        "bounds on the runtime's (rerun `--subset` to rescore; the fold networks are not kept in the repository).",
    ]


def markdown(rows: list[dict[str, Any]]) -> str:
    """The results table: one line per subset and method."""
    lines = [
        f"Mondrian {COVERAGE:.0%} intervals of the promoted int8 models, {2 * N_PERMUTATIONS} splits: half the validation "
        "units held out in turn, scored on every admissible truncation (5-cut: on their 5 validation cuts); widths in "
        "cycles, mean over held-out units; LOUO: each validation unit against the others (benchmarks/rul_oof_intervals.py).",
        *_bounds_note(rows),
        "",
        "| subset | method | coverage mean [p10] | 5-cut coverage mean [p10] | width "
        f"| pred < {NEAR_FAILURE_RUL:.0f}: width (coverage) | LOUO coverage, width, pred < {NEAR_FAILURE_RUL:.0f} "
        "| q90 per bin (all units) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        for name, m in r["methods"].items():
            if name.startswith("_"):
                continue
            q = r["bin_q90"].get(name)
            lines.append(
                f"| {r['subset']} ({r['version']}) | {name} | {m['coverage_mean']:.3f} [{m['coverage_p10']:.3f}] "
                f"| {m['coverage_5cuts_mean']:.3f} [{m['coverage_5cuts_p10']:.3f}] | {m['width']:.1f} "
                f"| {m['width_near_failure']:.1f} ({m['coverage_near_failure']:.2f}) "
                f"| {m['coverage_louo']:.3f}, {m['width_louo']:.1f}, {m['width_near_failure_louo']:.1f} "
                f"| {'-' if q is None else ' / '.join(f'{v:.1f}' for v in q)} |"
            )
    lines += [
        "",
        "MAE, 5 validation cuts per unit / every admissible truncation (OOF: every 5th):",
        "",
        "| subset | val units | OOF units | shipped (val) | single networks (val) | single networks (OOF) "
        "| scale, 5 cuts [p10, p90 over splits] | scale, grid cuts |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        s = r["methods"]["_oof_scale_over_splits"]
        lines.append(
            f"| {r['subset']} | {r['n_val_units']} | {r['n_oof_units']} "
            f"| {r['mae_shipped_val']:.2f} / {r['mae_shipped_dense']:.2f} "
            f"| {np.mean(r['mae_single_val']):.2f} / {np.mean(r['mae_single_dense']):.2f} "
            f"| {r['mae_single_oof']:.2f} / {r['mae_single_oofgrid']:.2f} "
            f"| {r['oof_scale']:.3f} [{s['p10']:.3f}, {s['p90']:.3f}] | {r['oof_scale_grid']:.3f} |"
        )
    lines += [
        "",
        "What the test units can tell, on the single networks' out-of-fold grid cuts of the training units:",
        "",
        "| subset | LOUO coverage, each training unit | mean over random groups of half the val units [p10, p90] "
        "| single-network MAE, val units / training units (permutation p) |",
        "| --- | --- | --- | --- |",
    ]
    for r in rows:
        n, h = r["single_network_test_set_noise"], r["single_network_mae_by_units"]
        lines.append(
            f"| {r['subset']} | {n['louo_mean']:.3f} | [{n['p10']:.3f}, {n['p90']:.3f}] "
            f"| {h['val_units_mae']:.2f} / {h['train_units_mae']:.2f} (p = {h['p_two_sided']:.2f}) |"
        )
    return "\n".join(lines) + "\n"


def merge(parts: Path = PARTS, out: Path = RESULTS / "rul_oof_intervals.json") -> dict[str, Any]:
    """Collect the per-subset parts into one results file and its Markdown table."""
    rows = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(parts.glob("FD00*.json"))]
    doc = {
        "protocol": (
            f"Mondrian 90 % intervals (bins {list(BINS)}) of the promoted int8 ONNX models; {N_PERMUTATIONS} random "
            "halvings of the shipped validation units, each half held out in turn; held-out units scored on every "
            "admissible truncation, each unit weighted equally; out-of-fold pool from a nested 5-fold cross-fit over "
            "the shipped training units"
        ),
        "coverage_nominal": COVERAGE,
        "rows": rows,
    }
    out.write_text(json.dumps(doc, indent=1) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(rows), encoding="utf-8")
    return doc


def main(argv: list[str] | None = None) -> int:
    """CLI entry point."""
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "datasets" / "cmapss")
    ap.add_argument("--subset", action="append", default=[])
    ap.add_argument("--checkpoint-dir", type=Path, default=Path("/tmp/oof/ckpt"))
    ap.add_argument(
        "--calibration", type=Path, default=None, help="write each --subset's oof_scaled card calibration into this folder"
    )
    ap.add_argument("--merge", action="store_true")
    args = ap.parse_args(argv)
    if args.merge:
        print(markdown(merge()["rows"]), end="")
        return 0
    for subset in args.subset:
        if args.calibration is not None:
            args.calibration.mkdir(parents=True, exist_ok=True)
            path = args.calibration / f"cmapss-{subset}_calibration.json"
            path.write_text(
                json.dumps(card_calibration(args.data_dir, subset, args.checkpoint_dir), indent=1) + "\n", encoding="utf-8"
            )
            print(path)
            continue
        part = run_subset(args.data_dir, subset, args.checkpoint_dir)
        PARTS.mkdir(parents=True, exist_ok=True)
        (PARTS / f"{subset}.json").write_text(json.dumps(part, indent=1) + "\n", encoding="utf-8")
        print(markdown([part]), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
