"""RUL of the demo plant's machines: train on simulated runs, export int8 ONNX, register.

The model reads the edge agent's own feature frames (see :mod:`models.data.simulator`) and
predicts the remaining useful life in simulated hours, with a split-conformal interval whose
width scales with the prediction (errors are larger far from failure).

This is the ``simulator`` recipe of :mod:`models.recipes`. Reproduce the shipped model (a few CPU-minutes)::

    genedge rul train-sim --registry-dir models/shipped --promote --json
"""

# ruff: noqa: N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

from dataclasses import dataclass
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ModelError
from core.inference.calibration import SplitConformal, empirical_coverage, interval_width
from core.inference.card import ModelCard
from core.inference.registry import ModelRegistry, ModelVersion
from core.inference.runtime import FeatureRULPredictor
from models._recipe import (
    FeatureTrainResult,
    Recipe,
    RunOptions,
    export_int8_dynamic,
    export_measure_register,
    model_card,
    register_recalibrated,
)
from models.data.arrays import EventRun
from models.data.simulator import SimulatorDataModule
from models.metrics import rmse
from models.transformer import TransformerRUL

__all__ = [
    "MODEL_NAME",
    "RECIPE",
    "SimTrainResult",
    "SimulatorRecipe",
    "build_sim_card",
    "default_sim_config",
    "evaluate_sim",
    "fresh_unit_cuts",
    "recalibrate_sim_version",
    "register_sim",
    "train_simulator",
]

#: Registry name of the shipped simulator model.
MODEL_NAME = "sim-bearing"
COVERAGE = 0.9
#: Mondrian bins (hours) of the prediction for recalibrated intervals: near failure, mid-life, far
#: from it. One normalised quantile gives intervals about 30 h wide below 50 h that cover 0.6 of the
#: truths there on unseen units (``benchmarks/rul_sim_intervals.py``).
SIM_INTERVAL_BINS = (50.0, 120.0)
#: Predictions below this many hours are the ones a planner acts on (near-failure widths and coverage).
NEAR_FAILURE_H = 50.0
#: Seeds of the fresh units a recalibration draws: never 0, the seed the shipped model's units come from.
RECALIBRATION_SEEDS = (2000, 3000)


def default_sim_config() -> dict[str, Any]:
    """Data and model parameters of the shipped model (a few CPU-minutes on one thread)."""
    return {
        "data": {"n_units": 200, "window": 12, "step_hours": 4.0, "rul_cap": 200.0, "n_val_cuts": 5},
        "model": {
            "conv_kernel": 3,
            "n_sensor_layers": 0,
            "d_model": 32,
            "n_heads": 4,
            "n_layers": 2,
            "d_ff": 64,
            "dropout": 0.1,
            "learning_rate": 1e-3,
            "max_epochs": 30,
            "batch_size": 256,
            "patience": 6,
            "num_threads": 1,
        },
        "calibration": {"scale": "prediction", "offset": 20.0},
    }


@dataclass
class SimTrainResult(FeatureTrainResult[SimulatorDataModule]):
    """A trained estimator, its data module, the interval calibrator and the metrics."""


def _cross_coverage(y: np.ndarray, pred: np.ndarray, units: np.ndarray, make: Any, seed: int) -> tuple[float, float]:
    """Out-of-sample coverage and width: calibrate on half the validation units, test on the other half."""
    ids = np.unique(units)
    if ids.size < 4:
        return float("nan"), float("nan")
    perm = np.random.default_rng(seed).permutation(ids)
    halves = [perm[: ids.size // 2], perm[ids.size // 2 :]]
    hits, widths = [], []
    for cal_units, test_units in (halves, halves[::-1]):
        cal, test = np.isin(units, cal_units), np.isin(units, test_units)
        lo, hi = make().fit(y[cal], pred[cal]).interval(pred[test], COVERAGE)
        hits.append((y[test] >= lo) & (y[test] <= hi))
        widths.append(hi - lo)
    return float(np.mean(np.concatenate(hits))), float(np.mean(np.concatenate(widths)))


def evaluate_sim(est: Any, dm: SimulatorDataModule, conformal: SplitConformal, *, seed: int = 0) -> dict[str, Any]:
    """Validation metrics of the model against the best constant predictor (the training mean).

    ``val_*``: the truncated validation windows. ``traj_*``: every window of the faulty
    validation units where the true RUL is below the cap (the part of a run where RUL matters).
    """
    y, units = dm.y_val, dm.val_cut_units
    pred = np.clip(est.predict(dm.X_val), 0.0, dm.rul_cap)
    const = np.full_like(pred, float(np.mean(dm.y_train)))
    cfg = conformal

    def make() -> SplitConformal:
        return SplitConformal(scale=cfg.scale, offset=cfg.offset)

    def make_const() -> SplitConformal:
        return SplitConformal()

    cov, width = _cross_coverage(y, pred, units, make, seed)
    const_cov, const_width = _cross_coverage(y, const, units, make_const, seed)
    traj_y, traj_p = [], []
    for uid in dm.val_units:
        if dm.units[int(uid)].fault.kind == "none":
            continue
        X_u, y_u = dm.unit_windows(int(uid))
        late = y_u < dm.rul_cap
        traj_y.append(y_u[late])
        traj_p.append(np.clip(est.predict(X_u[late]), 0.0, dm.rul_cap))
    ty, tp = (np.concatenate(traj_y), np.concatenate(traj_p)) if traj_y else (np.zeros(0), np.zeros(0))
    traj_rmse = rmse(ty, tp) if ty.size else float("nan")
    traj_const = rmse(ty, np.full_like(ty, float(np.mean(ty)))) if ty.size else float("nan")
    return {
        "rul_unit": "h",
        "val_n_units": int(np.unique(units).size),
        "val_n_cuts": int(y.size),
        "val_rmse": rmse(y, pred),
        "val_rmse_constant": rmse(y, const),
        "val_coverage_cross": cov,
        "val_interval_width_cross": width,
        "val_coverage_cross_constant": const_cov,
        "val_interval_width_cross_constant": const_width,
        "coverage_nominal": COVERAGE,
        "traj_rmse_below_cap": traj_rmse,
        "traj_rmse_below_cap_constant": traj_const,
        "traj_n_windows": int(ty.size),
    }


def train_simulator(
    *,
    seed: int = 0,
    data_params: dict[str, Any] | None = None,
    model_params: dict[str, Any] | None = None,
    progress_bar: bool = False,
    extra_runs: tuple[EventRun, ...] = (),
) -> SimTrainResult:
    """Simulate units, train a :class:`~models.transformer.TransformerRUL`, calibrate, evaluate.

    Args:
        seed: seeds the units, the split, the truncations and the model.
        data_params: overrides of :class:`~models.data.simulator.SimulatorDataModule` parameters.
        model_params: overrides of the estimator's parameters.
        progress_bar: show Lightning's progress bar.
        extra_runs: measured runs of the plant's machines up to a confirmed fault (training only;
            see :class:`~models.data.simulator.SimulatorDataModule`).
    """
    config = default_sim_config()
    config["data"].update(data_params or {})
    config["model"].update(model_params or {})
    dm = SimulatorDataModule(seed=seed, extra_runs=extra_runs, **config["data"])
    dm.setup()
    est = TransformerRUL(random_state=seed, rul_cap=dm.rul_cap, progress_bar=progress_bar, **config["model"])
    est.fit(dm.X_train, dm.y_train, X_val=dm.X_val, y_val=dm.y_val)
    pred = np.clip(est.predict(dm.X_val), 0.0, dm.rul_cap)
    conformal = SplitConformal(**config["calibration"]).fit(dm.y_val, pred)
    result = SimTrainResult(est, dm, conformal, config, seed)
    result.metrics = evaluate_sim(est, dm, conformal, seed=seed)
    return result


def sim_dataset_card(dm: SimulatorDataModule) -> dict[str, Any]:
    """The card's ``dataset`` section of a model trained on ``dm``: its units, fault kinds, split and plant runs."""
    kinds: dict[str, int] = {}
    for u in dm.units:
        kinds[u.fault.kind] = kinds.get(u.fault.kind, 0) + 1
    return {
        "name": "simulator",
        "generator": "core.sim.AssetSimulator + core.signal.FeaturePipeline",
        "n_units": len(dm.units),
        "fault_kinds": kinds,
        "asset_types": sorted({u.asset.asset_id for u in dm.units}),
        "train_units": dm.train_units.tolist(),
        "val_units": dm.val_units.tolist(),
        "plant_runs": [
            {
                "name": r.name,
                "frames": int(r.t_hours.size),
                "hours": float(r.t_hours[-1]),
                "event_hours": r.event_hours,
                "censored": r.censored,
                "windows": int(r.exact(dm.rul_cap).sum()),
            }
            for r in dm.extra_runs
        ],
    }


def build_sim_card(result: SimTrainResult, *, variant: str = "int8-dynamic") -> ModelCard:
    """The model card: provenance, configuration, preprocessing (features, order, scaling), calibration, metrics."""
    dm = result.datamodule
    dataset = sim_dataset_card(dm)
    return model_card(
        model="transformer",
        variant=variant,
        dataset=dataset,
        seed=result.seed,
        config=result.config,
        preprocessing=dm.preprocessing_card(),
        calibration=result.conformal.to_dict(),
        metrics=result.metrics,
    )


def register_sim(
    result: SimTrainResult, registry_dir: str | Path, *, name: str = MODEL_NAME, promote: bool = True
) -> ModelVersion:
    """Export int8 (dynamic) ONNX, measure it with onnxruntime on validation, register (and promote)."""
    dm = result.datamodule

    def measure(paths: dict[str, Path], card: ModelCard) -> dict[str, Any]:
        pred = FeatureRULPredictor(paths[card.variant], card).predict_windows(dm.X_val)
        pred32 = FeatureRULPredictor(paths["fp32"], card).predict_windows(dm.X_val)
        lo, hi = result.conformal.interval(pred, COVERAGE)
        return {
            "val_rmse_onnx": rmse(dm.y_val, pred),
            "val_rmse_onnx_fp32": rmse(dm.y_val, pred32),
            "val_coverage_onnx_in_sample": empirical_coverage(dm.y_val, lo, hi),
            "val_interval_width_onnx": interval_width(lo, hi),
        }

    export = partial(export_int8_dynamic, result.estimator.network, dm.n_channels, dm.window)
    return export_measure_register(registry_dir, name, build_sim_card(result), export=export, measure=measure, promote=promote)


class SimulatorRecipe(Recipe[SimTrainResult]):
    """The ``simulator`` recipe: the demo plant's model (hours) on simulated run-to-failure units.

    Its own option of :meth:`train`: ``extra_runs``, the plant's own runs to a confirmed fault
    (:func:`genedge.retrain.store_runs`). The units are simulated: it takes no ``data_dir``.
    """

    name = "simulator"
    registry_names = (MODEL_NAME,)
    unit = "h"
    dataset = "simulated run-to-failure units of the demo plant (plus the plant's own runs)"
    needs_data_dir = False

    def default_config(self, **options: Any) -> dict[str, Any]:
        """:func:`default_sim_config` (it takes no options)."""
        return default_sim_config(**options)

    def _train(self, run: RunOptions, **options: Any) -> SimTrainResult:
        return train_simulator(**run.train_kwargs(), **options)

    def _build_card(self, result: SimTrainResult, variant: str) -> ModelCard:
        return build_sim_card(result, variant=variant)

    def _register(
        self, result: SimTrainResult, registry_dir: str | Path, *, name: str | None, promote: bool, variant: str
    ) -> ModelVersion:
        return register_sim(result, registry_dir, name=name or MODEL_NAME, promote=promote)


#: The ``simulator`` entry of :data:`models.recipes.RECIPES`.
RECIPE = SimulatorRecipe()


def fresh_unit_cuts(predictor: FeatureRULPredictor, data: dict[str, Any], n_units: int, seed: int
                    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Truth, prediction and unit of random cuts of ``n_units`` freshly simulated units.

    The units are drawn with the card's data settings (``data``: its ``config["data"]``) and cut at
    ``n_val_cuts`` random instants each, as validation does; the predictor reads them through its own
    card's normaliser, as the edge does. No unit of another seed is the same unit.
    """
    dm = SimulatorDataModule(n_units=n_units, window=int(data["window"]), step_hours=float(data["step_hours"]),
                             rul_cap=float(data["rul_cap"]), n_val_cuts=int(data["n_val_cuts"]), seed=seed)
    dm.setup()
    dm.normalizer = predictor.normalizer
    rng = np.random.default_rng(seed)
    ys, preds, units = [], [], []
    for uid in range(n_units):
        X, y = dm.unit_windows(uid)
        idx = np.sort(rng.choice(y.size, size=min(dm.n_val_cuts, y.size), replace=False))
        ys.append(y[idx])
        preds.append(np.clip(predictor.predict_windows(X[idx]), 0.0, dm.rul_cap))
        units.append(np.full(idx.size, uid))
    return np.concatenate(ys).astype(np.float64), np.concatenate(preds).astype(np.float64), np.concatenate(units)


def recalibrate_sim_version(
    registry_dir: str | Path,
    name: str = MODEL_NAME,
    *,
    version: str | None = None,
    n_units: int = 400,
    seeds: tuple[int, ...] = RECALIBRATION_SEEDS,
    bins: tuple[float, ...] = SIM_INTERVAL_BINS,
    promote: bool = False,
) -> ModelVersion:
    """Register a simulator model again with its interval calibrated on freshly simulated units.

    No training: ``n_units`` new units per seed (none of them seen in training or validation) are
    cut as validation cuts are, the version's own ONNX file predicts them, and a Mondrian
    :class:`SplitConformal` on absolute errors with ``bins`` is fitted on all of them. The card
    keeps the network's metrics, replaces the interval metrics by those of the new calibration
    (coverage and width with half the fresh units calibrating and the other half scored) and records
    ``recalibrated_from``; the ONNX file is the same.

    Raises:
        ModelError: the version is not a simulator model, a seed is its training seed, or ``n_units`` < 4.
    """
    reg = ModelRegistry(registry_dir)
    mv = reg.get(name, version) if version is not None else reg.promoted(name)
    card = mv.card
    if card.dataset.name != "simulator":
        raise ModelError(f"{name}/{mv.version} was not trained on simulated units: it cannot be recalibrated on them")
    if card.seed in seeds or not seeds:
        raise ModelError(f"recalibration seeds {seeds} must be given and must not include the training seed {card.seed}")
    if n_units < 4:
        raise ModelError(f"n_units must be >= 4, got {n_units}")
    predictor = FeatureRULPredictor(mv.model_path, card)
    drawn = [fresh_unit_cuts(predictor, card.config["data"], n_units, seed) for seed in seeds]
    y = np.concatenate([d[0] for d in drawn])
    pred = np.concatenate([d[1] for d in drawn])
    units = np.concatenate([d[2] + k * n_units for k, d in enumerate(drawn)])
    conformal = SplitConformal(bins=bins).fit(y, pred)
    cov, width = _cross_coverage(y, pred, units, conformal.unfitted, seed=0)
    lo, hi = conformal.interval(pred, COVERAGE)
    near = pred < NEAR_FAILURE_H
    calibration = {**conformal.to_dict(),
                   "source": f"{mv.version}'s ONNX predictions on {units.size} cuts of {len(seeds) * n_units} "
                             f"freshly simulated units (seeds {', '.join(map(str, seeds))})"}
    metrics = {
        **{k: v for k, v in card.metrics.items() if "coverage" not in k and "interval" not in k},
        "coverage_nominal": COVERAGE,
        "calibration_n_units": len(seeds) * n_units,
        "fresh_coverage_cross": cov,
        "fresh_interval_width_cross": width,
        **({"fresh_interval_width_near_failure": float(np.mean(hi[near] - lo[near]))} if near.any() else {}),
    }
    return register_recalibrated(reg, mv, calibration, metrics, promote=promote)
