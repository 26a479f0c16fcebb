"""The C-MAPSS benchmark: models over seeds, evaluated identically, plus compression."""

from __future__ import annotations

import datetime as dt
import json
import platform
import tempfile
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

import numpy as np

from models.registry import git_commit

__all__ = ["run_benchmark", "summarize"]


def _mean_std(values: list[float]) -> dict[str, float]:
    arr = np.asarray([v for v in values if v is not None and np.isfinite(v)], dtype=np.float64)
    if arr.size == 0:
        return {"mean": float("nan"), "std": float("nan"), "n": 0}
    return {"mean": float(arr.mean()), "std": float(arr.std(ddof=0)), "n": int(arr.size)}


def summarize(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """Mean and std of each metric per (subset, model)."""
    out: dict[str, Any] = {}
    keys = ("val_rmse", "val_score", "val_coverage_cross", "test_rmse", "test_score", "test_coverage", "fit_seconds")
    for run in runs:
        out.setdefault(run["subset"], {}).setdefault(run["model"], []).append(run)
    return {
        subset: {
            model: {k: _mean_std([r.get(k) for r in rs]) for k in keys if any(k in r for r in rs)}
            for model, rs in per_model.items()
        }
        for subset, per_model in out.items()
    }


def run_benchmark(
    data_dir: str | Path,
    *,
    subsets: list[str],
    models: list[str],
    seeds: list[int],
    max_epochs: int | None = None,
    compression_subsets: list[str] | None = None,
    out: str | Path | None = None,
    threads: int = 1,
    ship_dir: str | Path | None = None,
    artifacts_dir: str | Path | None = None,
    members: int | None = None,
    log: Callable[[str], None] = print,
) -> dict[str, Any]:
    """Train every model on every subset for every seed; measure compression of transformers.

    Args:
        data_dir: C-MAPSS directory.
        subsets: subsets to run.
        models: model names (see :data:`models.pipeline.MODEL_NAMES`).
        seeds: seeds (each changes the validation split, truncations and initialisation).
        max_epochs: override of the deep models' epochs (reduced runs).
        compression_subsets: subsets whose first-seed transformer is exported and compressed
            (default: all ``subsets``).
        out: JSON file to write.
        threads: CPU threads for latency measurements.
        ship_dir: if given, the first-seed transformer of each subset is exported as dynamic
            int8, registered and promoted in this registry (how ``models/shipped`` is made).
        artifacts_dir: if given, the ONNX variants and the torch weights (``net.pt``) of the
            compressed transformers are kept in ``<artifacts_dir>/<subset>/``.
        members: seed-ensemble size of the deep models (``None``: their default, one network).
        log: progress sink.

    Returns:
        ``{"meta": ..., "runs": [...], "summary": ..., "compression": {...}}``.
    """
    from models.export.compare import compression_report
    from models.minirocket import numba_available
    from models.pipeline import export_variants, register_result, train_cmapss

    runs: list[dict[str, Any]] = []
    compression: dict[str, Any] = {}
    skipped: list[str] = []
    comp_subsets = subsets if compression_subsets is None else compression_subsets
    for subset in subsets:
        for model in models:
            if model == "minirocket" and not numba_available():
                skipped.append(f"{subset}/minirocket: numba not installed")
                continue
            for seed in seeds:
                t0 = time.perf_counter()
                extra = {"n_members": members} if members and model != "minirocket" else None
                res = train_cmapss(data_dir, subset, model=model, seed=seed, max_epochs=max_epochs, model_params=extra)
                fit_s = time.perf_counter() - t0
                run = {
                    "subset": subset,
                    "model": model,
                    "seed": seed,
                    "fit_seconds": fit_s,
                    **res.metrics,
                    "epochs": getattr(res.estimator, "n_epochs_", None),
                    "config": res.config,
                }
                runs.append(run)
                log(f"{subset} {model} seed={seed} val_rmse={res.metrics['val_rmse']:.3f} ({fit_s:.0f}s)")
                if model == "transformer" and seed == seeds[0] and ship_dir is not None:
                    mv = register_result(res, ship_dir, variant="int8-dynamic", promote=True)
                    run["shipped"] = {
                        "name": mv.name,
                        "version": mv.version,
                        "val_rmse_onnx": mv.card["metrics"]["val_rmse_onnx"],
                    }
                    log(f"  shipped {mv.name} {mv.version} val_rmse_onnx={mv.card['metrics']['val_rmse_onnx']:.3f}")
                if model == "transformer" and seed == seeds[0] and subset in comp_subsets:
                    with tempfile.TemporaryDirectory() as tmp:
                        where = Path(artifacts_dir) / subset if artifacts_dir else Path(tmp)
                        paths = export_variants(res, where)
                        if artifacts_dir:
                            import torch

                            torch.save(res.estimator.network.state_dict(), where / "net.pt")
                        compression[subset] = compression_report(
                            res.estimator.network, paths, res.datamodule.X_val, res.datamodule.y_val, threads=threads
                        )
    result = {
        "meta": {
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "git_commit": git_commit(Path(__file__).resolve().parent),
            "platform": platform.platform(),
            "processor": platform.processor(),
            "subsets": subsets,
            "models": models,
            "seeds": seeds,
            "max_epochs_override": max_epochs,
            "members": members,
            "latency_threads": threads,
            "skipped": skipped,
            "protocol": "validation split by unit (20%), 5 random truncations per validation "
            "unit, RUL capped at 125; test metrics only where RUL_*.txt exists",
        },
        "runs": runs,
        "summary": summarize(runs),
        "compression": compression,
    }
    if out is not None:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, default=float) + "\n", encoding="utf-8")
    return result
