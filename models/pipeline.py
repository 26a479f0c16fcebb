"""End-to-end C-MAPSS workflows: train, evaluate, export, register: the ``cmapss`` recipe of :mod:`models.recipes`.

Everything takes plain arguments (paths, ints); the composition root passes settings in.
"""

from __future__ import annotations

import copy
import json
import logging
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from core.datasets.cmapss import data_hash
from core.errors import ModelError
from core.inference.calibration import SplitConformal, empirical_coverage, interval_width
from core.inference.card import ModelCard
from core.inference.registry import ModelRegistry, ModelVersion
from core.inference.runtime import OnnxRULPredictor
from models._recipe import Recipe, RunOptions, export_measure_register, model_card, register_recalibrated
from models.base import NEUTRAL_PARAMS, BaseRULEstimator
from models.crossfit import CrossFitEnsemble
from models.data.cmapss import CMAPSSDataModule
from models.export.compact import export_int8_compact, export_packed
from models.export.mixed import export_mixed, plan_mixed
from models.export.onnx import (
    convert_fp16,
    export_onnx,
    quantize_int4_weight_only,
    quantize_int8_dynamic,
    quantize_int8_static,
)
from models.export.prune import prune_finetune, prune_magnitude
from models.export.structured import prune_structured_finetune
from models.lstm import LSTMRUL
from models.metrics import phm08_score, rmse
from models.minirocket import MiniRocketRUL
from models.transformer import TransformerRUL

log = logging.getLogger(__name__)

__all__ = [
    "MODEL_NAMES",
    "RECIPE",
    "SUBSETS",
    "CmapssRecipe",
    "TrainResult",
    "build_card",
    "card_config",
    "card_datamodule",
    "default_config",
    "export_variants",
    "fit_fold",
    "louo_intervals",
    "make_estimator",
    "recalibrate_version",
    "register_result",
    "registry_name",
    "train_cmapss",
]

MODEL_NAMES = ("transformer", "lstm", "minirocket")
SUBSETS = ("FD001", "FD002", "FD003", "FD004")
VARIANTS = (
    "fp32",
    "int8-dynamic",
    "int8-compact",
    "int8-static",
    "fp16",
    "int4",
    "int4-matmulnbits",
    "mixed",
    "pruned50-int8-dynamic",
    "pruned50ft-int8-dynamic",
    "structured",
    "structured-int8-compact",
)
#: Block size of the packed ``int4`` and ``mixed`` variants (elements per fp16 scale); ``int4``
#: stores every weight matrix in 4 bits and the biases and LayerNorm vectors in 8.
INT4_BLOCK_SIZE = 32
#: ``mixed``: the most sensitive weights kept in fp16 within this share of the weights, the rest int4.
MIXED_KEEP_SHARE = 0.125
#: ``structured``: share of each encoder layer's heads and feed-forward channels kept, and whole
#: layers removed (the least important by measurement), before 5 epochs of fine-tuning. On the
#: FD001 ensemble one head of four, 16 channels of 64 and one layer of three gave 2.6x the fp32
#: ONNX model's speed at the fleet batch for +0.5 % RMSE; half the heads and channels, 1.9x
#: (benchmarks/results/rul_compression.json, ``structured_sweep``).
STRUCTURED_KEEP = {"heads": 0.25, "ffn": 0.25, "drop_layers": 1}

#: Per-subset data defaults, each chosen on validation RMSE over 5 split seeds (the evidence for every
#: choice is in docs/rul.md, "What moved the error", and benchmarks/results/rul_ablation.md):
#: 80-cycle windows (50 on FD003, where 80 did not help); the engine's age as one more channel;
#: FD002 and FD004 share their six operating conditions, so each also trains on the other's units;
#: every second training window (neighbouring windows overlap in all but one cycle). The data
#: defaults are the same for every model, so the LSTM baseline gets the pooled units and the age too.
_DATA_DEFAULTS: dict[str, dict[str, Any]] = {
    "FD001": {"window": 80, "age_channel": True},
    "FD002": {"window": 80, "train_stride": 2, "extra_train_subsets": ["FD004"], "age_channel": True},
    "FD003": {"window": 50, "age_channel": True},
    "FD004": {"window": 80, "train_stride": 2, "extra_train_subsets": ["FD002"], "age_channel": True},
}
#: The deep models' training recipe (EMA weights, input noise, batch, epochs); one intra-op
#: thread: on a shared 2-core machine two spinning OpenMP threads run about 10x slower.
_DEEP_RECIPE: dict[str, Any] = {
    "learning_rate": 1e-3,
    "max_epochs": 25,
    "batch_size": 128,
    "patience": 8,
    "ema_decay": 0.99,
    "input_noise": 0.05,
    "num_threads": 1,
}
_MODEL_DEFAULTS: dict[str, dict[str, Any]] = {
    "transformer": {"conv_kernel": 0, "n_sensor_layers": 1, "d_model": 32, "n_layers": 2, **_DEEP_RECIPE},
    # the same training recipe as the transformer
    "lstm": dict(_DEEP_RECIPE),
    "minirocket": {"num_kernels": 2000},
}
#: The transformer reads every default window as this many patch tokens (patch_len = window / 10:
#: 5-cycle patches at 50 cycles, 8-cycle patches at 80).
_TRANSFORMER_TOKENS = 10
#: Edges (predicted RUL, cycles) of the Mondrian interval bins of C-MAPSS models (core.inference.calibration):
#: below 40, 40-90, 90 and up. One pooled quantile gives intervals as wide near failure as far from it;
#: by bin they narrow to 8-15 cycles below 40 at the same average coverage (docs/rul.md, "Intervals";
#: benchmarks/rul_intervals.py).
CMAPSS_INTERVAL_BINS: tuple[float, ...] = (40.0, 90.0)
#: Interval widths are also reported for predictions below this (``val_interval_width_near_failure``).
NEAR_FAILURE_RUL = 40.0
#: Per subset and model: overrides of the data defaults. The FD002/FD004 transformers train on every
#: window of their training units (lower validation RMSE over 5 split seeds at about 1.4x the training
#: time); the LSTM keeps every second window, since every window made it worse (docs/rul.md).
_SUBSET_DATA_OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {
    "FD002": {"transformer": {"train_stride": 1}},
    "FD004": {"transformer": {"train_stride": 1}},
}
#: Per subset and model: overrides of the model defaults. FD002 and FD004 (six operating conditions)
#: want depth at 80 cycles (3 time + 2 sensor layers), no dropout, and late (over-predicted) errors
#: weighted 1.5x, the PHM08 score's asymmetry; on FD001 and FD003 the same changes did nothing or
#: worse (docs/rul.md).
_SUBSET_MODEL_OVERRIDES: dict[str, dict[str, dict[str, Any]]] = {
    "FD002": {"transformer": {"n_layers": 3, "n_sensor_layers": 2, "dropout": 0.0, "late_weight": 1.5}},
    "FD004": {"transformer": {"n_layers": 3, "n_sensor_layers": 2, "dropout": 0.0, "late_weight": 1.5}},
}


def registry_name(subset: str) -> str:
    """Registry name of the shipped model of a C-MAPSS subset."""
    return f"cmapss-{subset}"


def default_config(subset: str, model: str = "transformer") -> dict[str, Any]:
    """Default data and model parameters for a subset."""
    if model not in MODEL_NAMES:
        raise ModelError(f"model must be one of {MODEL_NAMES}, got {model!r}")
    data_cfg = {**_DATA_DEFAULTS.get(subset, {"window": 50}), **_SUBSET_DATA_OVERRIDES.get(subset, {}).get(model, {})}
    model_cfg = dict(_MODEL_DEFAULTS[model])
    if model == "transformer":
        model_cfg["patch_len"] = data_cfg["window"] // _TRANSFORMER_TOKENS
    model_cfg.update(_SUBSET_MODEL_OVERRIDES.get(subset, {}).get(model, {}))
    return {"data": data_cfg, "model": model_cfg}


def resolve_config(
    subset: str,
    model: str = "transformer",
    *,
    model_params: dict[str, Any] | None = None,
    data_params: dict[str, Any] | None = None,
) -> dict[str, Any]:
    """The data and model parameters a run trains with: :func:`default_config` under the overrides."""
    config = default_config(subset, model)
    config["data"].update(data_params or {})
    config["model"].update(model_params or {})
    return config


def card_config(card: ModelCard) -> dict[str, Any]:
    """A model card's ``{"data": ..., "model": ...}`` as a run would train it again.

    Cards from before a data option existed say nothing of it and were trained without it: those
    options are filled in as off, so today's defaults (e.g. FD002/FD004's ``age_channel``) do not
    slip into a reproduction. The same holds for the deep models' learning options added since a card
    was written (:data:`models.base.NEUTRAL_PARAMS`).
    """
    model = dict(card.config["model"])
    if card.model in ("transformer", "lstm"):  # cards before late_weight existed trained with 1.0
        model = {**NEUTRAL_PARAMS, **model}
    return {"data": {"age_channel": False, **card.config["data"]}, "model": model}


def make_estimator(model: str, **params: Any) -> BaseRULEstimator:
    """Instantiate an estimator by name (imports torch only for the deep ones)."""
    if model == "transformer":

        return TransformerRUL(**params)
    if model == "lstm":

        return LSTMRUL(**params)
    if model == "minirocket":

        return MiniRocketRUL(**params)
    raise ModelError(f"model must be one of {MODEL_NAMES}, got {model!r}")


@dataclass
class TrainResult:
    """A trained estimator with its data module, configuration and metrics."""

    model: str
    subset: str
    seed: int
    estimator: BaseRULEstimator | CrossFitEnsemble
    datamodule: CMAPSSDataModule
    config: dict[str, Any]
    metrics: dict[str, Any] = field(default_factory=dict)
    data_dir: Path | None = None
    #: a cross-fit's per-fold results (fold ``k`` held out of ``folds[k]``); empty otherwise
    folds: list[TrainResult] = field(default_factory=list)


def _interval_metrics(
    y: np.ndarray, pred: np.ndarray, conformal: SplitConformal, prefix: str, coverage: float
) -> dict[str, float]:
    lower, upper = conformal.interval(pred, coverage)
    return {
        f"{prefix}_coverage": empirical_coverage(y, lower, upper),
        f"{prefix}_interval_width": interval_width(lower, upper),
    }


def _cross_coverage(
    y: np.ndarray, pred: np.ndarray, units: np.ndarray, coverage: float, seed: int, conformal: SplitConformal | None = None
) -> float:
    """Out-of-sample coverage on validation: calibrate on half the units, test on the other.

    One random halving (``seed``), so with 20 validation units it is noisy (about +-0.04); see
    :func:`_louo_coverage`. ``conformal`` gives the calibration method (its settings, not its scores).
    """
    unique = np.unique(units)
    if unique.size < 4:
        return float("nan")
    perm = np.random.default_rng(seed).permutation(unique)
    halves = [perm[: unique.size // 2], perm[unique.size // 2 :]]
    hits = []
    for cal_units, test_units in (halves, halves[::-1]):
        cal = np.isin(units, cal_units)
        test = np.isin(units, test_units)
        conf = (conformal.unfitted() if conformal is not None else SplitConformal()).fit(y[cal], pred[cal])
        lo, hi = conf.interval(pred[test], coverage)
        hits.append((y[test] >= lo) & (y[test] <= hi))
    return float(np.mean(np.concatenate(hits)))


def louo_intervals(
    pred: np.ndarray, units: np.ndarray, y: np.ndarray, coverage: float, conformal: SplitConformal
) -> tuple[np.ndarray, np.ndarray]:
    """Leave-one-unit-out intervals: each unit's cuts get ``conformal``'s method calibrated on the other units."""
    lower, upper = np.empty(pred.size), np.empty(pred.size)
    for unit in np.unique(units):
        held = units == unit
        lower[held], upper[held] = conformal.unfitted().fit(y[~held], pred[~held]).interval(pred[held], coverage)
    return lower, upper


def _louo_coverage(y: np.ndarray, pred: np.ndarray, units: np.ndarray, coverage: float, conformal: SplitConformal) -> float:
    """Leave-one-unit-out coverage: each validation unit's cuts against intervals calibrated on the others."""
    if np.unique(units).size < 4:
        return float("nan")
    return empirical_coverage(y, *louo_intervals(pred, units, y, coverage, conformal))


def _val_metrics(
    y: np.ndarray, pred: np.ndarray, units: np.ndarray, conformal: SplitConformal, *, coverage: float, seed: int
) -> dict[str, Any]:
    lower, upper = conformal.interval(pred, coverage)
    near = pred < NEAR_FAILURE_RUL
    return {
        "val_rmse": rmse(y, pred),
        "val_score": phm08_score(y, pred),
        "val_n_units": int(np.unique(units).size),
        "val_n_cuts": int(y.size),
        "val_coverage_cross": _cross_coverage(y, pred, units, coverage, seed, conformal),
        "val_coverage_louo": _louo_coverage(y, pred, units, coverage, conformal),
        "coverage_nominal": coverage,
        "val_interval_width": interval_width(lower, upper),
        # what a planner reads off an engine predicted close to failure
        "val_interval_width_near_failure": interval_width(lower[near], upper[near]) if near.any() else float("nan"),
    }


def calibrate_intervals(result: TrainResult, bins: tuple[float, ...] = CMAPSS_INTERVAL_BINS) -> None:
    """Recalibrate a trained (non-cross-fit) estimator's intervals as Mondrian bins on its validation cuts."""
    est = result.estimator
    dm = result.datamodule
    est.conformal_ = SplitConformal(bins=bins).fit(dm.y_val, est.predict(dm.X_val))


def _test_metrics(est: Any, dm: CMAPSSDataModule, coverage: float) -> dict[str, Any]:
    if dm.X_test is None or dm.y_test is None:
        return {}
    tpred = est.predict(dm.X_test)
    return {
        "test_rmse": rmse(dm.y_test, tpred),
        "test_score": phm08_score(dm.y_test, tpred),
        "test_n_units": int(dm.y_test.size),
        **_interval_metrics(dm.y_test, tpred, est.conformal_, "test", coverage),
    }


def evaluate_estimator(est: BaseRULEstimator, dm: CMAPSSDataModule, *, coverage: float = 0.9, seed: int = 0) -> dict[str, Any]:
    """Validation (and, with truth files, test) metrics of a fitted estimator."""
    pred = est.predict(dm.X_val)
    metrics = _val_metrics(dm.y_val, pred, dm.val_cut_units, est.conformal_, coverage=coverage, seed=seed)
    metrics.update(_test_metrics(est, dm, coverage))
    return metrics


def train_cmapss(
    data_dir: str | Path,
    subset: str,
    *,
    model: str = "transformer",
    seed: int = 42,
    max_epochs: int | None = None,
    window: int | None = None,
    progress_bar: bool = False,
    model_params: dict[str, Any] | None = None,
    data_params: dict[str, Any] | None = None,
    model_seed: int | None = None,
) -> TrainResult:
    """Train one estimator on a C-MAPSS subset with the standard protocol.

    Args:
        data_dir: directory with ``train_FD00X.txt`` (and optionally test / RUL files).
        subset: ``"FD001"`` .. ``"FD004"``.
        model: ``"transformer"``, ``"lstm"`` or ``"minirocket"``.
        seed: seeds the unit split, truncations and the model.
        max_epochs: overrides the default epochs of deep models.
        window: overrides the default window length.
        progress_bar: show Lightning's progress bar.
        model_params: extra estimator parameters.
        data_params: extra :class:`CMAPSSDataModule` parameters.
        model_seed: seeds the model only (its first ensemble member), if not ``seed``: with a
            ``checkpoint_dir`` in ``model_params`` this trains some members of the ensemble that
            ``seed`` would train (for fits split over several runs).

    Returns:
        The trained result with validation (and test, where truth exists) metrics.
    """
    config = resolve_config(subset, model, model_params=model_params, data_params=data_params)
    if window is not None:
        config["data"]["window"] = window
    if max_epochs is not None and model != "minirocket":
        config["model"]["max_epochs"] = max_epochs
    if model != "minirocket":
        config["model"]["progress_bar"] = progress_bar
    if config["data"].get("n_folds") is not None:
        result = _train_crossfit(Path(data_dir), subset, model, seed, config, model_seed)
    else:
        config["data"].pop("fold", None)
        result = fit_fold(data_dir, subset, model=model, seed=seed, config=config, model_seed=model_seed)
        calibrate_intervals(result)
        result.metrics = evaluate_estimator(result.estimator, result.datamodule, seed=seed)
    config["model"].pop("progress_bar", None)
    config["model"].pop("checkpoint_dir", None)  # where members were cached, not how they were trained
    return result


def fit_fold(
    data_dir: str | Path,
    subset: str,
    *,
    model: str,
    seed: int,
    config: dict[str, Any],
    fold: int | None = None,
    model_seed: int | None = None,
) -> TrainResult:
    """Fit one estimator on the data module of a resolved ``config`` (no metrics).

    With ``config["data"]["n_folds"]`` set, ``fold`` picks the held-out fold and the model is
    seeded ``seed + fold``, as in a cross-fit: one fold fitted with a ``checkpoint_dir`` in
    ``config["model"]`` is reused by the cross-fit run (so folds can be trained in parallel).
    """
    data_cfg = dict(config["data"])
    if fold is not None:
        data_cfg["fold"] = fold
    dm = CMAPSSDataModule(data_dir, subset, seed=seed, **data_cfg)
    dm.setup()
    base = seed if model_seed is None else model_seed
    est = make_estimator(model, random_state=base + (fold or 0), **config["model"])
    est.fit(dm.X_train, dm.y_train, X_val=dm.X_val, y_val=dm.y_val)
    return TrainResult(model, subset, seed, est, dm, config, data_dir=Path(data_dir))


def _train_crossfit(
    data_dir: Path, subset: str, model: str, seed: int, config: dict[str, Any], model_seed: int | None
) -> TrainResult:
    """K networks, network ``k`` early-stopped on fold ``k``; averaged; CV+ calibrated (models.crossfit)."""
    n_folds = int(config["data"]["n_folds"])
    config["data"].pop("fold", None)  # a cross-fit trains every fold
    folds = []
    for k in range(n_folds):
        log.info("cross-fit %s %s: fold %d of %d", subset, model, k + 1, n_folds)
        res = fit_fold(data_dir, subset, model=model, seed=seed, config=config, fold=k, model_seed=model_seed)
        folds.append(res)
    y = np.concatenate([f.datamodule.y_val for f in folds])
    units = np.concatenate([f.datamodule.val_cut_units for f in folds])
    fold_preds = [f.estimator.predict(f.datamodule.X_val) for f in folds]
    pred = np.concatenate(fold_preds)
    conformal = SplitConformal(bins=CMAPSS_INTERVAL_BINS).fit(y, pred)
    est = CrossFitEnsemble.from_folds([f.estimator for f in folds], conformal)
    # the ensemble's data view: fold 0's windows and normaliser (shared by all folds), every unit
    # trained on, and the out-of-fold cuts as its validation set (scored per fold, never by the mean)
    dm = copy.copy(folds[0].datamodule)
    dm.train_units = np.unique(np.concatenate([f.datamodule.train_units for f in folds]))
    dm.val_units = np.unique(units)
    dm.X_val = np.concatenate([f.datamodule.X_val for f in folds])
    dm.y_val, dm.val_cut_units = y, units
    result = TrainResult(model, subset, seed, est, dm, config, data_dir=data_dir, folds=folds)
    result.metrics = _val_metrics(y, pred, units, conformal, coverage=0.9, seed=seed)
    result.metrics["val_fold_rmse"] = [rmse(f.datamodule.y_val, p) for f, p in zip(folds, fold_preds, strict=True)]
    result.metrics.update(_test_metrics(est, dm, 0.9))
    return result


def export_variants(result: TrainResult, out_dir: str | Path, variants: tuple[str, ...] | None = None) -> dict[str, Path]:
    """Export the trained network to ONNX and build the requested compressed variants.

    ``variants=None`` builds every variant of :data:`VARIANTS` that applies to the network
    (``int8-compact``, ``int4``, ``mixed`` and the ``structured`` ones take transformers only:
    they are left out for an LSTM); a variant asked for by name that does not apply raises
    :class:`~core.errors.ModelError`. ``mixed`` writes its measured sensitivities to
    ``mixed.plan.json`` and ``structured`` its kept heads, channels and layers to
    ``structured.plan.json`` in ``out_dir``.
    """
    net = getattr(result.estimator, "network", None)
    if net is None:
        raise ModelError(f"{result.model} has no network to export to ONNX")
    out = Path(out_dir)
    out.mkdir(parents=True, exist_ok=True)
    dm = result.datamodule
    paths = {"fp32": export_onnx(net, dm.n_channels, dm.window, out / "fp32.onnx")}
    # calibration windows of the measured variants: every 10th training window, never the
    # validation cuts the variants are scored on
    x_cal, y_cal = dm.X_train[::10], dm.y_train[::10]
    structured: dict[str, Any] = {}

    def structured_net() -> Any:
        """The structurally pruned, fine-tuned network, built once for both of its variants."""
        if "net" not in structured:
            counts = _structured_counts(net)
            structured["net"], plans = prune_structured_finetune(
                net,
                dm.X_train,
                dm.y_train,
                x_cal,
                y_cal,
                keep_heads=counts["keep_heads"],
                keep_ffn=counts["keep_ffn"],
                drop_layers=counts["drop_layers"],
                epochs=5,
                seed=result.seed,
            )
            _write_json(out / "structured.plan.json", [p.to_dict() for p in plans])
        return structured["net"]

    def mixed() -> Path:
        plan = plan_mixed(net, x_cal, keep_share=MIXED_KEEP_SHARE, block_size=INT4_BLOCK_SIZE)
        _write_json(out / "mixed.plan.json", plan.to_dict())
        return export_mixed(net, dm.n_channels, dm.window, out / "mixed.onnx", plan, block_size=INT4_BLOCK_SIZE)

    builders: dict[str, Callable[[], Path]] = {
        "int8-dynamic": lambda: quantize_int8_dynamic(paths["fp32"], out / "int8-dynamic.onnx"),
        "int8-compact": lambda: export_int8_compact(net, dm.n_channels, dm.window, out / "int8-compact.onnx"),
        "int8-static": lambda: quantize_int8_static(paths["fp32"], out / "int8-static.onnx", dm.X_train, seed=result.seed),
        "fp16": lambda: convert_fp16(paths["fp32"], out / "fp16.onnx"),
        "int4": lambda: export_packed(net, dm.n_channels, dm.window, out / "int4.onnx", block_size=INT4_BLOCK_SIZE),
        "int4-matmulnbits": lambda: quantize_int4_weight_only(paths["fp32"], out / "int4-matmulnbits.onnx"),
        "mixed": mixed,
        "pruned50-int8-dynamic": lambda: quantize_int8_dynamic(
            export_onnx(prune_magnitude(net, 0.5), dm.n_channels, dm.window, out / "pruned50.onnx"),
            out / "pruned50-int8-dynamic.onnx",
        ),
        # half the weights zeroed, then 5 epochs of fine-tuning on the training windows (masks held); the
        # epoch is picked on every 10th training window, never on the validation cuts the variant is scored on
        "pruned50ft-int8-dynamic": lambda: quantize_int8_dynamic(
            export_onnx(
                prune_finetune(
                    net, dm.X_train, dm.y_train, dm.X_train[::10], dm.y_train[::10], amount=0.5, epochs=5, seed=result.seed
                ),
                dm.n_channels,
                dm.window,
                out / "pruned50ft.onnx",
            ),
            out / "pruned50ft-int8-dynamic.onnx",
        ),
        "structured": lambda: export_onnx(structured_net(), dm.n_channels, dm.window, out / "structured.onnx"),
        "structured-int8-compact": lambda: export_int8_compact(
            structured_net(), dm.n_channels, dm.window, out / "structured-int8-compact.onnx"
        ),
    }
    wanted = VARIANTS if variants is None else variants
    unknown = sorted(set(wanted) - {"fp32", *builders})
    if unknown:
        raise ModelError(f"variants must be among {VARIANTS}, got {unknown}")
    for name in wanted:
        if name == "fp32":
            continue
        try:
            paths[name] = builders[name]()
        except ModelError:
            if variants is not None:
                raise
            log.info("variant %s does not apply to this %s network: left out", name, result.model)
    return {k: v for k, v in paths.items() if k in wanted}


def _write_json(path: Path, value: Any) -> None:
    """The measurements behind a variant (mixed precision's sensitivities, the pruning plan) beside it."""
    path.write_text(json.dumps(value, indent=1) + "\n", encoding="utf-8")


def _structured_counts(net: Any) -> dict[str, int]:
    """:data:`STRUCTURED_KEEP` as counts for ``net``'s layers (its first member's, for an ensemble)."""
    members = getattr(net, "members", None)
    first = members[0] if members is not None else net
    layers = [m for m in first.modules() if hasattr(m, "attn") and hasattr(m, "ff")]
    if not layers:
        raise ModelError(f"structured pruning takes a transformer, got {type(first).__name__}")
    n_heads, d_ff = int(layers[0].attn.n_heads), int(layers[0].ff[0].out_features)
    return {
        "keep_heads": max(1, round(STRUCTURED_KEEP["heads"] * n_heads)),
        "keep_ffn": max(1, round(STRUCTURED_KEEP["ffn"] * d_ff)),
        "drop_layers": min(int(STRUCTURED_KEEP["drop_layers"]), len(layers) - 1),
    }


def build_card(result: TrainResult, *, variant: str = "int8-dynamic", extra_metrics: dict[str, Any] | None = None) -> ModelCard:
    """The model card: provenance, configuration, preprocessing, calibration and metrics."""
    dm = result.datamodule
    dataset = {
        "name": "cmapss",
        "subset": result.subset,
        "train_file_sha256": data_hash(dm.data_dir, result.subset),
        # subsets whose units all joined the training set (config.data.extra_train_subsets)
        **(
            {"extra_train_files_sha256": {x: data_hash(dm.data_dir, x) for x in dm.extra_train_subsets}}
            if dm.extra_train_subsets
            else {}
        ),
        "train_units": dm.train_units.tolist(),
        "val_units": dm.val_units.tolist(),
        # a cross-fit: the held-out units of each fold's network (val_units is all of them)
        **({"fold_units": [f.datamodule.val_units.tolist() for f in result.folds]} if result.folds else {}),
    }
    return model_card(
        model=result.model,
        variant=variant,
        dataset=dataset,
        seed=result.seed,
        config=result.config,
        preprocessing=dm.preprocessing_card(),
        calibration=result.estimator.conformal_.to_dict(),
        metrics={**result.metrics, **(extra_metrics or {})},
    )


def register_result(
    result: TrainResult,
    registry_dir: str | Path,
    *,
    variant: str = "int8-dynamic",
    promote: bool = True,
    name: str | None = None,
) -> ModelVersion:
    """Export ``variant``, measure its validation RMSE with onnxruntime, register (and promote)."""
    dm = result.datamodule
    wanted = ("fp32", variant) if variant != "fp32" else ("fp32",)

    def measure(paths: dict[str, Path], card: ModelCard) -> dict[str, Any]:
        if result.folds:
            # the averaged model has trained on every validation cut's unit: score the variant the way
            # val_rmse scores the fp32 networks, each fold's network exported alone on its own fold
            pred, fp32 = _fold_onnx_predictions(result, paths["fp32"].parent, variant, card)
        else:
            pred = OnnxRULPredictor(paths[variant], card).predict_windows(dm.X_val)
            fp32 = OnnxRULPredictor(paths["fp32"], card).predict_windows(dm.X_val)
        return {
            "val_rmse_onnx": rmse(dm.y_val, pred),
            "val_rmse_onnx_fp32": rmse(dm.y_val, fp32),
            "val_score_onnx": phm08_score(dm.y_val, pred),
        }

    return export_measure_register(
        registry_dir,
        name or registry_name(result.subset),
        build_card(result, variant=variant),
        export=lambda out: export_variants(result, out, wanted),
        measure=measure,
        promote=promote,
    )


def card_datamodule(card: ModelCard, data_dir: str | Path) -> CMAPSSDataModule:
    """The set-up data module a C-MAPSS model card was trained and validated on (its split, its cuts).

    Raises:
        ModelError: if the card's seed does not rebuild the validation units it records.
    """
    if card.dataset.subset is None or card.seed is None:
        raise ModelError(f"{card.name}/{card.version} is not a C-MAPSS card with a seed: its split cannot be rebuilt")
    dm = CMAPSSDataModule(data_dir, card.dataset.subset, seed=card.seed, **card_config(card)["data"])
    dm.setup()
    if dm.val_units.tolist() != card.dataset.val_units:
        raise ModelError(f"the card's seed does not rebuild {card.name}/{card.version}'s validation units")
    return dm


def recalibrate_version(
    registry_dir: str | Path,
    name: str,
    data_dir: str | Path,
    *,
    version: str | None = None,
    bins: tuple[float, ...] = CMAPSS_INTERVAL_BINS,
    promote: bool = False,
) -> ModelVersion:
    """Register a registered C-MAPSS model again with intervals recalibrated on its validation cuts.

    No training: the version's (default: the promoted one's) card rebuilds its validation cuts from
    ``data_dir``, its own ONNX file predicts them (so the scores are the shipped model's, quantisation
    included), and a :class:`SplitConformal` with ``bins`` (``()``: one pooled quantile) is fitted on
    them. The new version has the same ONNX file, the card with the new ``calibration`` and interval
    metrics, and ``recalibrated_from``.

    Raises:
        ModelError: for a cross-fit (its averaged network has seen every validation unit), a
            ``data_dir`` whose training files (the subset's and any extra subsets') do not match the
            card's hashes, or a card whose seed does not rebuild its validation units.
    """
    reg = ModelRegistry(registry_dir)
    mv = reg.get(name, version) if version is not None else reg.promoted(name)
    card = mv.card
    if card.dataset.fold_units is not None:
        raise ModelError(f"{name}/{mv.version} is a cross-fit: no validation unit is unseen by its averaged network")
    wanted: dict[str, str | None] = {str(card.dataset.subset): card.dataset.train_file_sha256}
    wanted.update(card.dataset.extra_train_files_sha256)
    for sub, sha in wanted.items():  # the extra subsets' units shape the normaliser the cuts go through
        if not (Path(data_dir) / f"train_{sub}.txt").is_file():
            raise ModelError(f"{name}/{mv.version} needs train_{sub}.txt in {data_dir}: not found")
        if data_hash(data_dir, sub) != sha:
            raise ModelError(f"train_{sub}.txt in {data_dir} is not the file {name}/{mv.version} was trained on (hash differs)")
    dm = card_datamodule(card, data_dir)
    pred = OnnxRULPredictor(mv.model_path, card).predict_windows(dm.X_val)
    conformal = SplitConformal(bins=bins).fit(dm.y_val, pred)
    metrics = _val_metrics(dm.y_val, pred, dm.val_cut_units, conformal, coverage=0.9, seed=dm.seed)
    return register_recalibrated(
        reg, mv, {**conformal.to_dict(), "source": f"{mv.version}'s ONNX predictions on its validation cuts"},
        {**card.metrics, **{k: v for k, v in metrics.items() if "coverage" in k or "interval" in k}}, promote=promote)


def _fold_onnx_predictions(result: TrainResult, tmp: Path, variant: str, card: ModelCard) -> tuple[np.ndarray, np.ndarray]:
    """Out-of-fold predictions of each fold's network exported alone as ``variant`` and as fp32."""
    pred, fp32 = [], []
    for k, fold in enumerate(result.folds):
        wanted = ("fp32", variant) if variant != "fp32" else ("fp32",)
        paths = export_variants(fold, tmp / f"fold{k}", wanted)
        windows = fold.datamodule.X_val
        pred.append(OnnxRULPredictor(paths[variant], card).predict_windows(windows))
        fp32.append(OnnxRULPredictor(paths["fp32"], card).predict_windows(windows))
    return np.concatenate(pred), np.concatenate(fp32)


class CmapssRecipe(Recipe[TrainResult]):
    """The ``cmapss`` recipe: RUL in cycles of the NASA C-MAPSS turbofan engines, one model per subset.

    Its own options of :meth:`train` and :meth:`default_config`: ``subset`` (default ``FD001``) and
    ``model`` (:data:`MODEL_NAMES`); :meth:`train` also takes ``window`` and ``model_seed``, as
    :func:`train_cmapss` does. :meth:`register` takes every variant of :data:`VARIANTS` that applies.
    """

    name = "cmapss"
    registry_names = tuple(registry_name(s) for s in SUBSETS)
    unit = "cycles"
    dataset = "NASA C-MAPSS turbofan engines (train_FD00X.txt), validation split by unit"
    default_seed = 42
    variants = VARIANTS

    def default_config(self, **options: Any) -> dict[str, Any]:
        """:func:`default_config` of ``subset`` (default ``FD001``) and ``model``."""
        return default_config(**{"subset": "FD001", **options})

    def _train(self, run: RunOptions, **options: Any) -> TrainResult:
        return train_cmapss(
            run.folder(),
            seed=run.seed,
            max_epochs=run.max_epochs,
            progress_bar=run.progress_bar,
            model_params=run.model_params,
            data_params=run.data_params,
            **{"subset": "FD001", **options},
        )

    def _build_card(self, result: TrainResult, variant: str) -> ModelCard:
        return build_card(result, variant=variant)

    def _register(
        self, result: TrainResult, registry_dir: str | Path, *, name: str | None, promote: bool, variant: str
    ) -> ModelVersion:
        return register_result(result, registry_dir, variant=variant, promote=promote, name=name)


#: The ``cmapss`` entry of :data:`models.recipes.RECIPES`.
RECIPE = CmapssRecipe()
