"""A deployable bearing RUL model from the FEMTO/PRONOSTIA run-to-failure bearings.

The model reads the edge agent's own vibration features (:mod:`models.data.femto`) and predicts
the **share of life left** in percent (100 when new, 0 at failure): the three bearings ran under
three operating conditions and lasted 1.4 to 7.8 h, so hours do not carry from one to another
(``benchmarks/results/rul_femto_hours.md``), a share of life does better
(``benchmarks/results/rul_femto.md``).

Training, in :func:`train_femto`:

1. **Leave one bearing out.** For each bearing a model is trained on the others and predicts
   every window of it. These residuals are what a bearing the model never saw looks like: they
   give the card's quality figures (RMSE against the constant predictor, per bearing) and
   calibrate the interval. Intervals calibrated on the training bearings' own windows do not
   carry to a new bearing (they covered 0-26 % of the held-out one in the benchmark).
2. **The deployed model** trains on every bearing; it gets the cross-bearing interval.

The coverage the card states is nested: for each bearing, the interval calibrated on the other
bearings' held-out residuals, scored on that bearing's. Three bearings are few: treat the model as
a starting point to retrain on the plant's own runs, not as a guarantee.

    genedge rul train-femto --data-dir ../shared/datasets/femto --promote
"""

# ruff: noqa: N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from functools import partial
from pathlib import Path
from typing import Any

import numpy as np
from scipy import stats

from core.errors import ModelError
from core.inference.calibration import SplitConformal, empirical_coverage
from core.inference.card import ModelCard
from core.inference.registry import ModelVersion
from core.inference.runtime import FeatureRULPredictor
from models._recipe import FeatureTrainResult, Recipe, RunOptions, export_int8_dynamic, export_measure_register, model_card
from models.data.femto import FEMTO_BEARINGS, BearingRun, FEMTODataModule, bearing_run
from models.metrics import rmse
from models.transformer import TransformerRUL

__all__ = [
    "MODEL_NAME",
    "RECIPE",
    "BearingFold",
    "FemtoRecipe",
    "FemtoTrainResult",
    "build_femto_card",
    "default_femto_config",
    "register_femto",
    "train_femto",
]

#: Registry name of the FEMTO share-of-life model.
MODEL_NAME = "femto-bearing"
COVERAGE = 0.9


def default_femto_config() -> dict[str, Any]:
    """Data and model parameters: the transformer of ``benchmarks/rul_femto.py`` (30 frames = 5 minutes)."""
    return {
        "data": {"window": 30, "target": "life_pct", "rul_cap": 3.0, "train_stride": 2},
        "model": {
            "patch_len": 3,
            "max_epochs": 30,
            "batch_size": 64,
            "ema_decay": 0.99,
            "input_noise": 0.05,
            "num_threads": 1,
        },
    }


@dataclass(frozen=True)
class BearingFold:
    """One bearing predicted by a model trained on the other bearings (every window, in time order)."""

    bearing: str
    t_hours: np.ndarray
    y: np.ndarray
    pred: np.ndarray
    #: the constant predictor of this fold: the mean target of its training windows
    constant: float


@dataclass
class FemtoTrainResult(FeatureTrainResult[FEMTODataModule]):
    """The deployed estimator (trained on every bearing), its data module, the cross-bearing
    interval, the metrics and the held-out folds."""

    folds: list[BearingFold] = field(default_factory=list)


def _fit(dm: FEMTODataModule, config: dict[str, Any], seed: int, progress_bar: bool) -> Any:

    est = TransformerRUL(random_state=seed, rul_cap=dm.output_cap, progress_bar=progress_bar, **config["model"])
    return est.fit(dm.X_train, dm.y_train)


def fold_metrics(folds: Sequence[BearingFold], coverage: float = COVERAGE) -> dict[str, Any]:
    """Quality of predicting a bearing never seen in training, per bearing and pooled.

    ``coverage_nested``: for each bearing, the interval calibrated on the other bearings' held-out
    residuals, scored on this bearing's windows.
    """
    per: dict[str, Any] = {}
    for i, f in enumerate(folds):
        others = [g for j, g in enumerate(folds) if j != i]
        cov = width = float("nan")
        if others:
            cal = SplitConformal().fit(np.concatenate([g.y for g in others]), np.concatenate([g.pred for g in others]))
            lo, hi = cal.interval(f.pred, coverage)
            cov, width = empirical_coverage(f.y, lo, hi), float(np.mean(hi - lo))
        const = rmse(f.y, np.full_like(f.y, f.constant))
        per[f.bearing] = {
            "windows": int(f.y.size),
            "rmse": rmse(f.y, f.pred),
            "rmse_constant": const,
            "ratio_to_constant": rmse(f.y, f.pred) / const if const > 0 else float("nan"),
            "spearman_vs_time": float(stats.spearmanr(f.t_hours, f.pred)[0]),
            "coverage_nested": cov,
            "interval_width_nested": width,
        }
    ratios = [v["ratio_to_constant"] for v in per.values()]
    return {
        "protocol": "leave one bearing out: each bearing scored by a model trained on the others",
        "coverage_nominal": coverage,
        "bearings": per,
        "lobo_rmse_mean": float(np.mean([v["rmse"] for v in per.values()])),
        "lobo_ratio_to_constant_mean": float(np.mean(ratios)),
        "lobo_ratio_to_constant_max": float(np.max(ratios)),
        "lobo_coverage_nested_mean": float(np.nanmean([v["coverage_nested"] for v in per.values()])),
    }


def train_femto(
    data_dir: str | Path,
    *,
    bearings: Sequence[str] = FEMTO_BEARINGS,
    seed: int = 0,
    data_params: dict[str, Any] | None = None,
    model_params: dict[str, Any] | None = None,
    runs: dict[str, BearingRun] | None = None,
    progress_bar: bool = False,
) -> FemtoTrainResult:
    """Leave-one-bearing-out folds, then the deployed model on every bearing (see the module docstring).

    Args:
        data_dir: folder with the ``Learning_set_BearingX_Y.tar.xz`` archives (or a ``femto/`` folder).
        bearings: the run-to-failure bearings to use (at least two).
        seed: seeds the shuffling and every model.
        data_params: overrides of :class:`~models.data.femto.FEMTODataModule` parameters.
        model_params: overrides of the transformer's parameters.
        runs: bearing runs already computed (their features take ~40 s for all three).
        progress_bar: show Lightning's progress bar.
    """
    bearings = tuple(bearings)
    if len(bearings) < 2 or len(set(bearings)) != len(bearings):
        raise ModelError(f"need at least two different bearings (one is held out in turn), got {bearings}")
    config = default_femto_config()
    config["data"].update(data_params or {})
    config["model"].update(model_params or {})
    runs = dict(runs or {})
    for b in bearings:
        if b not in runs:
            runs[b] = bearing_run(data_dir, b)
    folds = []
    for b in bearings:
        rest = tuple(x for x in bearings if x != b)
        dm_b = FEMTODataModule(data_dir, b, train_bearings=rest, runs=runs, seed=seed, **config["data"])
        dm_b.setup()
        est_b = _fit(dm_b, config, seed, progress_bar)
        pred = np.clip(est_b.predict(dm_b.X_val), 0.0, dm_b.output_cap)
        folds.append(BearingFold(b, dm_b.val_t_hours, dm_b.y_val, pred, float(np.mean(dm_b.y_train))))
    conformal = SplitConformal().fit(np.concatenate([f.y for f in folds]), np.concatenate([f.pred for f in folds]))
    dm = FEMTODataModule(data_dir, None, train_bearings=bearings, runs=runs, seed=seed, **config["data"])
    dm.setup()
    est = _fit(dm, config, seed, progress_bar)
    result = FemtoTrainResult(est, dm, conformal, config, seed, folds=folds)
    result.metrics = fold_metrics(folds)
    result.metrics["rul_unit"] = dm.preprocessing_card()["rul_unit"]
    return result


def build_femto_card(result: FemtoTrainResult, *, variant: str = "int8-dynamic") -> ModelCard:
    """The model card: provenance, configuration, preprocessing, cross-bearing calibration, metrics."""
    dm = result.datamodule
    dataset = {
        "name": "femto",
        "source": "FEMTO/PRONOSTIA (IEEE PHM 2012) learning set, through core.signal.FeaturePipeline",
        "bearings": {
            b: {"snapshots": int(dm.runs[b].raw.shape[0]), "life_hours": dm.runs[b].life_hours} for b in dm.train_bearings
        },
        "target": dm.target,
    }
    return model_card(
        model="transformer",
        variant=variant,
        dataset=dataset,
        seed=result.seed,
        config=result.config,
        preprocessing=dm.preprocessing_card(),
        calibration={**result.conformal.to_dict(), "source": "leave-one-bearing-out residuals"},
        metrics=result.metrics,
    )


def register_femto(
    result: FemtoTrainResult, registry_dir: str | Path, *, name: str = MODEL_NAME, promote: bool = False
) -> ModelVersion:
    """Export int8 (dynamic) ONNX, check it against the network on every bearing's windows, register.

    The check is in-sample (every bearing trained the deployed model): it measures what the int8
    export changes, not how well the model generalises (that is the card's leave-one-bearing-out part).
    """
    dm = result.datamodule
    windows = [dm.bearing_windows(b) for b in dm.train_bearings]
    X, y = np.concatenate([w[0] for w in windows]), np.concatenate([w[1] for w in windows])
    torch_pred = np.clip(result.estimator.predict(X), 0.0, dm.output_cap)

    def measure(paths: dict[str, Path], card: ModelCard) -> dict[str, Any]:
        pred = FeatureRULPredictor(paths[card.variant], card).predict_windows(X)
        return {
            "in_sample_rmse_torch": rmse(y, torch_pred),
            "in_sample_rmse_onnx_int8": rmse(y, pred),
            "int8_max_abs_diff_vs_torch": float(np.max(np.abs(pred - torch_pred))),
        }

    export = partial(export_int8_dynamic, result.estimator.network, dm.n_channels, dm.window)
    return export_measure_register(registry_dir, name, build_femto_card(result), export=export, measure=measure, promote=promote)


class FemtoRecipe(Recipe[FemtoTrainResult]):
    """The ``femto`` recipe: share of life left (%) from the FEMTO/PRONOSTIA run-to-failure bearings.

    Its own options of :meth:`train`, as :func:`train_femto` takes them: ``bearings`` (default
    :data:`~models.data.femto.FEMTO_BEARINGS`) and ``runs`` (bearing runs already computed).
    """

    name = "femto"
    registry_names = (MODEL_NAME,)
    unit = "%"
    dataset = "FEMTO/PRONOSTIA run-to-failure bearings (Learning_set_BearingX_Y.tar.xz), leave one bearing out"

    def default_config(self, **options: Any) -> dict[str, Any]:
        """:func:`default_femto_config` (it takes no options)."""
        return default_femto_config(**options)

    def _train(self, run: RunOptions, **options: Any) -> FemtoTrainResult:
        return train_femto(run.folder(), **run.train_kwargs(), **options)

    def _build_card(self, result: FemtoTrainResult, variant: str) -> ModelCard:
        return build_femto_card(result, variant=variant)

    def _register(
        self, result: FemtoTrainResult, registry_dir: str | Path, *, name: str | None, promote: bool, variant: str
    ) -> ModelVersion:
        return register_femto(result, registry_dir, name=name or MODEL_NAME, promote=promote)


#: The ``femto`` entry of :data:`models.recipes.RECIPES`.
RECIPE = FemtoRecipe()
