"""Ensemble against ensemble: the shipped transformer vs an LSTM seed ensemble trained the same way.

The shipped C-MAPSS models are 5-network seed ensembles of the transformer (split seed 0). The
single-network ablation (``results/rul_ablation_w80.md``) left transformer vs LSTM tied within
noise, so this runs the comparison at the level that ships:

* per subset, the LSTM configuration with the lowest 5-seed mean validation RMSE in the ablation
  (the same selection by validation that set the transformer's defaults), read from
  ``results/rul_ablation_w80.json``;
* trained as a 5-network seed ensemble on split seed 0, i.e. the shipped transformer's split,
  recipe (epochs, EMA, noise, early stopping) and conformal calibration, and on the same training
  units (the card's ``extra_train_subsets``: FD002 and FD004 pool each other's units);
* both ensembles scored on the same validation cuts: the transformer through its shipped ONNX
  file (int8), the LSTM through its fp32 torch network (its best case) and its exported ONNX;
  the paired RMSE difference gets a 95 % bootstrap interval over validation units;
* the LSTM ensemble is registered in ``results/rul_baselines`` (``cmapss-FD00X-lstm``) so that a
  test set with truth can score it too: ``genedge rul evaluate --model
  benchmarks/results/rul_baselines/cmapss-FD00X-lstm --subset FD00X --data-dir DIR``.

Run (one subset per process; parts are merged)::

    python benchmarks/rul_ensembles.py --subset FD001 --subset FD003
    python benchmarks/rul_ensembles.py --subset FD004
    python benchmarks/rul_ensembles.py --merge
    python benchmarks/rul_ensembles.py --test-dir DIR   # both on test_/RUL_ files, no training

Writes ``results/rul_ensembles_parts/<subset>.json`` and, on ``--merge``,
``results/rul_ensembles.json`` plus its Markdown table (``.md``).
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.inference.registry import SHIPPED_DIR  # noqa: E402  (after the path set-up)

RESULTS = ROOT / "benchmarks" / "results"
ABLATION = RESULTS / "rul_ablation_w80.json"
PARTS = RESULTS / "rul_ensembles_parts"
BASELINES = RESULTS / "rul_baselines"
MEMBERS = 5
SPLIT_SEED = 0
N_BOOT = 2000


def select_lstm(
    subset: str, ablation: Path = ABLATION, *, variant: str | None = None
) -> tuple[str, dict[str, Any], dict[str, Any], float]:
    """The LSTM ablation variant with the lowest mean validation RMSE on ``subset`` (5 seeds each).

    ``variant`` names one instead (to train an ensemble's members before the ablation that would
    select it has finished; its mean is ``nan`` while the ablation has fewer than 5 seeds of it).
    Returns ``(variant, data_params, model_params, mean_val_rmse)``.
    """
    from benchmarks.rul_ablation import VARIANTS, resolve_variant

    summary = json.loads(ablation.read_text(encoding="utf-8"))["summary"][subset]
    candidates = {
        name: row["mean"]
        for name, row in summary.items()
        if name in VARIANTS and VARIANTS[name][0] == "lstm" and not name.endswith("_rep") and row["n"] >= 5
    }
    if variant is not None:
        if variant not in VARIANTS or VARIANTS[variant][0] != "lstm":
            raise ValueError(f"{variant!r} is not an LSTM variant of benchmarks/rul_ablation.py")
        best = variant
    else:
        best = min(candidates, key=candidates.__getitem__)
    _, data, params = resolve_variant(best, subset)
    return best, data, params, float(candidates.get(best, float("nan")))


def bootstrap_diff(
    y: np.ndarray, a: np.ndarray, b: np.ndarray, units: np.ndarray, *, n_boot: int = N_BOOT, seed: int = 0
) -> dict[str, float]:
    """RMSE(a) - RMSE(b) on the same cuts, with a 95 % bootstrap interval resampling whole units."""
    from models.metrics import rmse

    uniq = np.unique(units)
    idx = {u: np.flatnonzero(units == u) for u in uniq}
    rng = np.random.default_rng(seed)
    diffs = np.empty(n_boot)
    for i in range(n_boot):
        take = np.concatenate([idx[u] for u in rng.choice(uniq, size=uniq.size, replace=True)])
        diffs[i] = rmse(y[take], a[take]) - rmse(y[take], b[take])
    lo, hi = np.percentile(diffs, [2.5, 97.5])
    per_unit = np.array([rmse(y[idx[u]], a[idx[u]]) < rmse(y[idx[u]], b[idx[u]]) for u in uniq])
    return {
        "diff": float(rmse(y, a) - rmse(y, b)),
        "ci95_low": float(lo),
        "ci95_high": float(hi),
        "p_boot_diff_ge_0": float(np.mean(diffs >= 0.0)),
        "units_a_better": int(per_unit.sum()),
        "n_units": int(uniq.size),
    }


def run_subset(
    data_dir: Path,
    subset: str,
    *,
    max_epochs: int | None = None,
    register: bool = True,
    jobs: int = 1,
    threads: int | None = None,
    checkpoint_dir: Path | None = None,
    variant: str | None = None,
) -> dict[str, Any]:
    """Train the LSTM ensemble of ``subset``, score it and the shipped transformer on the same cuts.

    ``jobs`` members train at once, each in its own process with ``threads`` torch threads (the
    result does not depend on either). With ``checkpoint_dir`` each member is saved there when
    trained and members already there (same data and configuration, e.g. from
    :func:`train_members` in earlier runs) are loaded instead of trained.
    """
    from benchmarks._rul_harness import one_run
    from core.inference.registry import git_commit
    from models.metrics import phm08_score, rmse
    from models.pipeline import register_result

    variant, data_params, model_params, ablation_mean = lstm_setup(
        subset, jobs=jobs, threads=threads, checkpoint_dir=checkpoint_dir, variant=variant
    )
    t0 = time.perf_counter()
    run, res = one_run(
        data_dir,
        subset,
        "lstm",
        SPLIT_SEED,
        max_epochs=max_epochs,
        members=MEMBERS,
        model_params=model_params,
        data_params=data_params,
    )
    fit_seconds = time.perf_counter() - t0
    loaded = list(getattr(res.estimator, "members_loaded_", []))
    dm = res.datamodule
    y, units = np.asarray(dm.y_val, dtype=np.float64), np.asarray(dm.val_cut_units)
    lstm_pred = np.asarray(res.estimator.predict(dm.X_val), dtype=np.float64)
    tf = _transformer_fields(subset, y, units, lstm_pred, dm)
    tf_pred = tf.pop("transformer_predictions")

    row: dict[str, Any] = {
        "subset": subset,
        "lstm_variant": variant,
        "lstm_ablation_mean_val_rmse": ablation_mean,
        "lstm_config": res.config,
        "lstm_fit_seconds": fit_seconds,
        # members loaded from checkpoints trained in earlier runs (their time is not in lstm_fit_seconds)
        "lstm_members_loaded": loaded,
        "lstm_epochs": run["epochs"],
        "lstm_val_rmse": rmse(y, lstm_pred),
        "lstm_val_score": phm08_score(y, lstm_pred),
        "lstm_val_coverage_cross": run.get("val_coverage_cross"),
        **tf,
        "n_cuts": int(y.size),
        "predictions": {
            "y": y.tolist(),
            "unit": units.tolist(),
            "transformer": tf_pred,
            "lstm": lstm_pred.round(4).tolist(),
        },
        "max_epochs_override": max_epochs,
        "git_commit": git_commit(ROOT),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "platform": platform.platform(),
    }
    if register:
        mv = register_result(res, BASELINES, variant="int8-dynamic", promote=True, name=f"cmapss-{subset}-lstm")
        row["lstm_registered"] = {
            "path": str(mv.path.relative_to(ROOT)) if mv.path.is_relative_to(ROOT) else str(mv.path),
            "variant": "int8-dynamic",
            "val_rmse_onnx": mv.card.metrics["val_rmse_onnx"],
            "size_bytes": mv.card.model_size_bytes,
        }
    return row


def lstm_setup(
    subset: str,
    *,
    jobs: int = 1,
    threads: int | None = None,
    checkpoint_dir: Path | None = None,
    variant: str | None = None,
    accelerator: str = "cpu",
) -> tuple[str, dict[str, Any], dict[str, Any], float]:
    """The LSTM configuration of ``subset`` (see :func:`select_lstm`) on the shipped transformer's units.

    Like for like: the LSTM trains on the same units as the shipped transformer (its own subset's,
    plus those of the subsets its card names) and reads the same inputs (the age channel where the
    card has it). Returns ``(variant, data_params, model_params, ablation_mean)`` with the runtime
    options (``jobs``, ``threads``, ``checkpoint_dir``, ``accelerator``) added; ``variant`` as in
    :func:`select_lstm`.
    """
    from core.inference.registry import ModelRegistry

    variant, data_params, model_params, ablation_mean = select_lstm(subset, variant=variant)
    tf_card = ModelRegistry(SHIPPED_DIR).promoted(f"cmapss-{subset}").card
    data_params["extra_train_subsets"] = list(tf_card.config["data"].get("extra_train_subsets", []))
    data_params["age_channel"] = bool(tf_card.config["data"].get("age_channel", False))
    model_params = {**model_params, "n_jobs": jobs, **({"num_threads": threads} if threads else {})}
    if checkpoint_dir is not None:
        model_params["checkpoint_dir"] = str(checkpoint_dir)
    if accelerator != "cpu":
        model_params["accelerator"] = accelerator
    return variant, data_params, model_params, ablation_mean


def train_members(
    data_dir: Path,
    subset: str,
    members: list[int],
    checkpoint_dir: Path,
    *,
    max_epochs: int | None = None,
    jobs: int = 1,
    threads: int | None = None,
    variant: str | None = None,
    accelerator: str = "cpu",
) -> dict[str, Any]:
    """Train only ``members`` (a contiguous range of indices 0..MEMBERS-1) of the LSTM ensemble into ``checkpoint_dir``.

    For a machine that cannot train the whole ensemble in one sitting: each run adds members, and
    :func:`run_subset` with the same ``checkpoint_dir`` loads them and trains what is missing.
    Returns the members' validation RMSE and the time taken (nothing is scored or registered).
    ``accelerator`` is a runtime option: a member trained on a GPU is stored under the same key as
    on a CPU (it is not bit-for-bit the CPU's network) and loads on either.
    """
    from models.pipeline import train_cmapss

    members = sorted(set(members))
    if not members or members[0] < 0 or members[-1] >= MEMBERS or members != list(range(members[0], members[-1] + 1)):
        raise ValueError(f"members must be a contiguous range within 0..{MEMBERS - 1}, got {members}")
    name, data_params, model_params, _ = lstm_setup(
        subset, jobs=jobs, threads=threads, checkpoint_dir=checkpoint_dir, variant=variant, accelerator=accelerator
    )
    model_params["n_members"] = len(members)
    t0 = time.perf_counter()
    res = train_cmapss(
        data_dir,
        subset,
        model="lstm",
        seed=SPLIT_SEED,
        max_epochs=max_epochs,
        model_params=model_params,
        data_params=data_params,
        model_seed=SPLIT_SEED + members[0],
    )
    rmses = getattr(res.estimator, "member_val_rmse_", [])
    return {
        "subset": subset,
        "variant": name,
        "accelerator": accelerator,
        "members": members,
        "member_val_rmse": [float(r) for r in rmses],
        "loaded": list(getattr(res.estimator, "members_loaded_", [])),
        "seconds": time.perf_counter() - t0,
    }


def member_data_fingerprint(data_dir: Path, subset: str, variant: str | None = None) -> dict[str, Any]:
    """The training data an LSTM ensemble member of ``subset`` keys its checkpoint on, summarised.

    Members trained on another machine (a GPU machine, other numpy/scikit-learn) load here only
    if their data fingerprint is this machine's: this gives the fingerprint and float64 sums of
    the arrays, to tell a difference in the last bits from different data.
    """
    from models.data.cmapss import CMAPSSDataModule
    from models.pipeline import resolve_config
    from models.torch_estimator import data_fingerprint

    name, data_params, model_params, _ = lstm_setup(subset, variant=variant)
    cfg = resolve_config(subset, "lstm", model_params=model_params, data_params=data_params)
    dm = CMAPSSDataModule(data_dir, subset, seed=SPLIT_SEED, **cfg["data"])
    dm.setup()
    arrays = (dm.X_train, dm.y_train, dm.X_val, dm.y_val)
    return {
        "subset": subset,
        "variant": name,
        "fingerprint": data_fingerprint(*arrays),
        "sums": [float(np.asarray(a, dtype=np.float64).sum()) for a in arrays],
        "shapes": [list(np.shape(a)) for a in arrays],
    }


def error_profile(part: dict[str, Any], *, n_splits: int = 500, seed: int = 0) -> dict[str, Any]:
    """Where two ensembles of a part file differ: RMSE and mean error by true RUL, error correlation,
    and each model's RMSE after a cross-fitted offset (its mean error on a random half of the
    validation units subtracted on the other half, and the reverse; mean ± std over ``n_splits``).

    Uses the transformer's predictions stored in the part (the shipped version when it was scored).
    Predictions are floored at 0 cycles (an offset can push a late-life one below).
    """
    from models.metrics import rmse

    pred = part["predictions"]
    y, units = np.asarray(pred["y"], dtype=np.float64), np.asarray(pred["unit"])
    models = {
        "transformer": np.asarray(pred["transformer"], dtype=np.float64),
        "lstm": np.asarray(pred["lstm"], dtype=np.float64),
    }

    bands = []
    for lo, hi in ((0, 25), (25, 50), (50, 100), (100, 125), (125, 126)):
        m = (y >= lo) & (y < hi)
        bands.append(
            {
                "rul": f"{lo}-{hi - 1}" if hi - lo > 1 else str(lo),
                "n": int(m.sum()),
                **{f"{k}_rmse": rmse(y[m], np.maximum(p[m], 0.0)) for k, p in models.items()},
                **{f"{k}_mean_error": float(np.mean(p[m] - y[m])) for k, p in models.items()},
            }
        )
    rng = np.random.default_rng(seed)
    uniq = np.unique(units)
    crossfit: dict[str, list[float]] = {k: [] for k in models}
    for _ in range(n_splits):
        half = np.isin(units, rng.permutation(uniq)[: uniq.size // 2])
        for k, p in models.items():
            q = p.copy()
            q[~half] -= np.mean(p[half] - y[half])
            q[half] -= np.mean(p[~half] - y[~half])
            crossfit[k].append(rmse(y, np.maximum(q, 0.0)))
    return {
        "subset": part["subset"],
        "transformer_version": part.get("transformer_version"),
        "rmse": {k: rmse(y, np.maximum(p, 0.0)) for k, p in models.items()},
        "mean_error": {k: float(np.mean(p - y)) for k, p in models.items()},
        "error_correlation": float(np.corrcoef(models["transformer"] - y, models["lstm"] - y)[0, 1]),
        "by_true_rul": bands,
        "crossfit_offset_rmse": {k: {"mean": float(np.mean(v)), "std": float(np.std(v))} for k, v in crossfit.items()},
        "n_splits": n_splits,
    }


def _shipped_predictions(subset: str, dm: Any) -> tuple[Any, dict[str, Any], np.ndarray]:
    """The promoted shipped transformer of ``subset`` on the validation cuts of ``dm`` (the LSTM's).

    The transformer reads its own preprocessing: its card's data configuration and seed rebuild
    the same validation units and cuts (checked), normalised as it was trained (a model that also
    trained on another subset's units has its own normaliser), and its card's RMSE is checked.
    """
    from core.inference.registry import ModelRegistry
    from core.inference.runtime import OnnxRULPredictor
    from models.metrics import rmse
    from models.pipeline import card_datamodule

    shipped = ModelRegistry(SHIPPED_DIR).promoted(f"cmapss-{subset}")
    card = shipped.card
    if card.dataset.val_units != dm.val_units.tolist():
        raise RuntimeError(f"{subset}: the LSTM's validation units differ from the shipped transformer's")
    own = card_datamodule(card, dm.data_dir)
    if not (np.array_equal(own.y_val, dm.y_val) and np.array_equal(own.val_cut_units, dm.val_cut_units)):
        raise RuntimeError(f"{subset}: the transformer's validation cuts differ from the LSTM's")
    pred = np.asarray(OnnxRULPredictor(shipped.model_path, card).predict_windows(own.X_val), dtype=np.float64)
    got = rmse(np.asarray(dm.y_val, dtype=np.float64), pred)
    if abs(got - card.metrics["val_rmse_onnx"]) > 1e-3:
        raise RuntimeError(
            f"{subset}: shipped transformer scores {got:.4f} here, its card says {card.metrics['val_rmse_onnx']:.4f}"
        )
    return shipped, card, pred


def _transformer_fields(subset: str, y: np.ndarray, units: np.ndarray, lstm_pred: np.ndarray, dm: Any) -> dict[str, Any]:
    from models.metrics import phm08_score, rmse

    shipped, card, tf_pred = _shipped_predictions(subset, dm)
    return {
        "transformer_version": shipped.version,
        "transformer_variant": card.variant,
        # units of other subsets the transformer also trained on (its card's data configuration)
        "transformer_extra_train_subsets": list(card.config["data"].get("extra_train_subsets", [])),
        # whether it reads the engine's age (CMAPSSDataModule age_channel)
        "transformer_age_channel": bool(card.config["data"].get("age_channel", False)),
        "transformer_val_rmse": rmse(y, tf_pred),
        "transformer_val_score": phm08_score(y, tf_pred),
        "transformer_val_coverage_cross": card.metrics.get("val_coverage_cross"),
        "transformer_minus_lstm": bootstrap_diff(y, tf_pred, lstm_pred, units),
        "transformer_predictions": tf_pred.round(4).tolist(),
    }


def rescore(data_dir: Path, subset: str, parts: Path = PARTS) -> dict[str, Any]:
    """Score the promoted shipped transformer again against a part's LSTM ensemble (no training).

    For a newly shipped transformer version: the part's validation cuts are rebuilt from its LSTM
    data configuration and split seed and must give the stored truths; the LSTM predictions are
    the stored ones.
    """
    from core.inference.registry import git_commit
    from models.data.cmapss import CMAPSSDataModule

    path = parts / f"{subset}.json"
    row = json.loads(path.read_text(encoding="utf-8"))
    dm = CMAPSSDataModule(data_dir, subset, seed=SPLIT_SEED, **row["lstm_config"]["data"])
    dm.setup()
    preds = row["predictions"]
    y = np.asarray(preds["y"], dtype=np.float64)
    if not np.array_equal(np.asarray(dm.y_val, dtype=np.float64), y):
        raise RuntimeError(f"{subset}: the rebuilt validation cuts differ from the part's")
    fields = _transformer_fields(subset, y, np.asarray(preds["unit"]), np.asarray(preds["lstm"], dtype=np.float64), dm)
    preds["transformer"] = fields.pop("transformer_predictions")
    row.update(fields)
    row["rescored"] = {"git_commit": git_commit(ROOT), "at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds")}
    path.write_text(json.dumps(row, indent=1) + "\n", encoding="utf-8")
    return row


def compare_on_test(
    test_dir: Path, subsets: list[str], *, shipped: Path = SHIPPED_DIR, baselines: Path = BASELINES
) -> dict[str, Any]:
    """Score the shipped transformer and the committed LSTM ensemble on C-MAPSS test files with truth.

    For every subset whose ``test_FD00X.txt`` and ``RUL_FD00X.txt`` are both in ``test_dir`` (the
    kept-back acceptance data, for instance): each model's RMSE, PHM08 score and interval coverage
    exactly as ``genedge rul evaluate`` reports them, and the paired difference with a bootstrap
    interval over test units (one cut per unit). Subsets without both files are listed as skipped.
    """
    from core.inference.registry import ModelRegistry
    from core.inference.runtime import OnnxRULPredictor
    from models.evaluation import load_test_units, load_truth, score_test

    rows: list[dict[str, Any]] = []
    skipped: list[str] = []
    for subset in subsets:
        if not all((test_dir / f"{kind}_{subset}.txt").is_file() for kind in ("test", "RUL")):
            skipped.append(subset)
            continue
        units = load_test_units(test_dir, subset)
        truth = load_truth(test_dir, subset)
        versions = {
            "transformer": ModelRegistry(shipped).promoted(f"cmapss-{subset}"),
            "lstm": ModelRegistry(baselines).promoted(f"cmapss-{subset}-lstm"),
        }
        row: dict[str, Any] = {"subset": subset, "n_units": int(truth.size)}
        preds, caps = {}, {}
        for name, mv in versions.items():
            model = OnnxRULPredictor(mv.model_path, mv.card)
            pred, lower, upper = model.predict_units(units)
            preds[name], caps[name] = np.asarray(pred, dtype=np.float64), model.rul_cap
            row[name] = {
                "path": str(mv.path),
                "version": mv.version,
                **score_test(subset, truth, model.rul_cap, pred, lower, upper),
            }
        capped = np.minimum(truth, caps["transformer"])
        row["transformer_minus_lstm"] = bootstrap_diff(capped, preds["transformer"], preds["lstm"], np.arange(truth.size))
        rows.append(row)
    return {
        "protocol": (
            "official C-MAPSS test units (last cycle of each), truth capped at 125; difference = RMSE(transformer) "
            f"- RMSE(LSTM), 95% bootstrap interval over test units ({N_BOOT} resamples)"
        ),
        "rows": rows,
        "skipped": skipped,
    }


def markdown_test(rows: list[dict[str, Any]]) -> str:
    """The table of :func:`compare_on_test`."""
    lines = [
        "| subset | transformer RMSE / PHM08 / coverage | LSTM RMSE / PHM08 / coverage | T - L [95% CI] | units T better |",
        "| --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        t, lstm, d = r["transformer"], r["lstm"], r["transformer_minus_lstm"]
        lines.append(
            f"| {r['subset']} | {t['rmse']:.2f} / {t['score']:.0f} / {t['coverage']:.2f} "
            f"| {lstm['rmse']:.2f} / {lstm['score']:.0f} / {lstm['coverage']:.2f} "
            f"| {d['diff']:+.2f} [{d['ci95_low']:+.2f}, {d['ci95_high']:+.2f}] | {d['units_a_better']}/{d['n_units']} |"
        )
    return "\n".join(lines) + "\n"


def _plus(row: dict[str, Any], model: str) -> str:
    """``", + FD004 units"`` when ``model`` also trained on other subsets' units, ``", + age"`` when it
    reads the engine's age."""
    data = row.get("lstm_config", {}).get("data", {})
    extra = row.get("transformer_extra_train_subsets", []) if model == "transformer" else data.get("extra_train_subsets", [])
    age = row.get("transformer_age_channel", False) if model == "transformer" else data.get("age_channel", False)
    return (f", + {' + '.join(extra)} units" if extra else "") + (", + age" if age else "")


def diff_cells(d: dict[str, Any]) -> str:
    """Two table cells of a :func:`bootstrap_diff`: the difference with its interval, and units a better."""
    return f"{d['diff']:+.2f} [{d['ci95_low']:+.2f}, {d['ci95_high']:+.2f}] | {d['units_a_better']}/{d['n_units']}"


def markdown(rows: list[dict[str, Any]]) -> str:
    """The README table."""
    lines = [
        "| subset | transformer (shipped, int8) | LSTM ensemble (config) | LSTM int8 ONNX | T - L [95% CI] | units T better |",
        "| --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        d = r["transformer_minus_lstm"]
        onnx = r.get("lstm_registered", {}).get("val_rmse_onnx")
        lines.append(
            f"| {r['subset']} | {r['transformer_val_rmse']:.2f} ({r['transformer_version']}{_plus(r, 'transformer')}) "
            f"| {r['lstm_val_rmse']:.2f} ({r['lstm_variant']}{_plus(r, 'lstm')}) | {'' if onnx is None else f'{onnx:.2f}'} "
            f"| {diff_cells(d)} |"
        )
    return "\n".join(lines) + "\n"


def merge(parts: Path = PARTS, out: Path = RESULTS / "rul_ensembles.json") -> dict[str, Any]:
    """Merge the per-subset parts into one result file and its Markdown table."""
    rows = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(parts.glob("FD00*.json"))]
    result = {
        "protocol": (
            f"split seed {SPLIT_SEED} (the shipped models' split), {MEMBERS}-network seed ensembles, validation "
            "units truncated like the test set (5 cuts each), RUL cap 125; difference = RMSE(transformer) - "
            f"RMSE(LSTM) on the same cuts, 95% bootstrap interval over units ({N_BOOT} resamples)"
        ),
        "rows": rows,
    }
    out.write_text(json.dumps(result, indent=1) + "\n", encoding="utf-8")
    out.with_suffix(".md").write_text(markdown(rows), encoding="utf-8")
    return result


def _parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared/datasets/cmapss")
    p.add_argument("--subset", action="append", dest="subsets")
    p.add_argument("--max-epochs", type=int, default=None, help="reduced runs only")
    p.add_argument("--no-register", action="store_true")
    p.add_argument("--merge", action="store_true")
    p.add_argument(
        "--rescore",
        action="store_true",
        help="score the promoted transformer again against the parts' LSTM ensembles of --subset (no training), then merge",
    )
    p.add_argument(
        "--test-dir",
        type=Path,
        default=None,
        help="compare the shipped and the committed LSTM models on test_/RUL_ files here (no training)",
    )
    p.add_argument("--out", type=Path, default=None, help="with --test-dir: also write the JSON here")
    p.add_argument("--jobs", type=int, default=1, help="ensemble members trained at once (one process each)")
    p.add_argument("--threads", type=int, default=None, help="torch CPU threads per member (default: the model's)")
    p.add_argument(
        "--checkpoint-dir",
        type=Path,
        default=None,
        help="save each trained member here and load members already there (resumable, or split over runs)",
    )
    p.add_argument(
        "--members",
        default=None,
        help="with --checkpoint-dir: train only these members (a range such as 0-1 or 2-4) and stop (no scoring)",
    )
    p.add_argument("--variant", default=None, help="this LSTM ablation variant instead of the best one by validation")
    p.add_argument(
        "--part-out",
        type=Path,
        default=None,
        help="write the part file here, not to rul_ensembles_parts/ (an ensemble kept for the record, not merged)",
    )
    p.add_argument("--accelerator", default="cpu", help="with --members: Lightning accelerator (cpu, gpu)")
    p.add_argument(
        "--fingerprint",
        action="store_true",
        help="print the training data fingerprint of --subset's (--variant's) LSTM members as JSON (no training)",
    )
    p.add_argument(
        "--errors",
        action="store_true",
        help="where the two ensembles of --subset's part file differ (by true RUL, offsets); writes "
        "results/rul_ensembles_errors_<subset>.json (no training)",
    )
    return p


def main(argv: list[str] | None = None) -> int:
    """Run subsets (one part file each) or merge the parts."""
    p = _parser()
    args = p.parse_args(argv)
    if args.fingerprint:
        for subset in args.subsets or ["FD004"]:
            print(json.dumps(member_data_fingerprint(args.data_dir, subset, args.variant)), flush=True)
        return 0
    if args.errors:
        for subset in args.subsets or ["FD004"]:
            prof = error_profile(json.loads((PARTS / f"{subset}.json").read_text(encoding="utf-8")))
            (RESULTS / f"rul_ensembles_errors_{subset}.json").write_text(json.dumps(prof, indent=1) + "\n", encoding="utf-8")
            print(json.dumps(prof), flush=True)
        return 0
    if args.members is not None:
        if args.checkpoint_dir is None:
            p.error("--members needs --checkpoint-dir (the members are kept there for a later full run)")
        lo, _, hi = args.members.partition("-")
        try:
            members = list(range(int(lo), int(hi or lo) + 1))
        except ValueError:
            p.error(f"--members takes a range such as 0-1 or 2-4, got {args.members!r}")
        for subset in args.subsets or ["FD004"]:
            out = train_members(
                args.data_dir,
                subset,
                members,
                args.checkpoint_dir,
                max_epochs=args.max_epochs,
                jobs=args.jobs,
                threads=args.threads,
                variant=args.variant,
                accelerator=args.accelerator,
            )
            print(json.dumps(out), flush=True)
        return 0
    if args.test_dir is not None:
        res = compare_on_test(args.test_dir, args.subsets or ["FD001", "FD002", "FD003", "FD004"])
        if args.out is not None:
            args.out.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
        print(markdown_test(res["rows"]), end="")
        if res["skipped"]:
            print(f"skipped (no test_/RUL_ files in {args.test_dir}): {', '.join(res['skipped'])}")
        return 0 if res["rows"] else 1
    if args.rescore:
        for subset in args.subsets or ["FD001", "FD002", "FD003", "FD004"]:
            rescore(args.data_dir, subset)
    if args.merge or args.rescore:
        res = merge()
        print(markdown(res["rows"]), end="")
        return 0
    if args.part_out is not None and len(args.subsets or []) != 1:
        p.error("--part-out takes one --subset")
    PARTS.mkdir(parents=True, exist_ok=True)
    for subset in args.subsets or ["FD001", "FD002", "FD003", "FD004"]:
        row = run_subset(
            args.data_dir,
            subset,
            max_epochs=args.max_epochs,
            register=not args.no_register,
            jobs=args.jobs,
            threads=args.threads,
            checkpoint_dir=args.checkpoint_dir,
            variant=args.variant,
        )
        part = args.part_out if args.part_out is not None else PARTS / f"{subset}.json"
        part.parent.mkdir(parents=True, exist_ok=True)
        part.write_text(json.dumps(row, indent=1) + "\n", encoding="utf-8")
        d = row["transformer_minus_lstm"]
        print(
            f"{subset}: transformer {row['transformer_val_rmse']:.2f} vs LSTM {row['lstm_val_rmse']:.2f} "
            f"({row['lstm_variant']}), diff {d['diff']:+.2f} [{d['ci95_low']:+.2f}, {d['ci95_high']:+.2f}] "
            f"({row['lstm_fit_seconds']:.0f}s)",
            flush=True,
        )
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
