"""The C-MAPSS benchmark: models over seeds, evaluated identically, plus compression."""

from __future__ import annotations

import datetime as dt
import json
import os
import platform
import tempfile
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import numpy as np

from benchmarks._archive import is_archived, load_parts
from core.inference.registry import git_commit

__all__ = ["markdown_table", "merge_parts", "one_run", "run_benchmark", "run_parts", "summarize"]


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


def one_run(
    data_dir: str | Path,
    subset: str,
    model: str,
    seed: int,
    *,
    max_epochs: int | None,
    members: int | None,
    model_params: dict[str, Any] | None = None,
    data_params: dict[str, Any] | None = None,
    jobs: int | None = None,
) -> tuple[dict[str, Any], Any]:
    """Train and validate one (subset, model, seed); returns its result row and the training result.

    ``model_params`` / ``data_params`` override the defaults (the ablation runner's variants);
    ``jobs`` processes train ensemble members at once (MiniRocket: its transform's jobs).
    """
    from models.pipeline import train_cmapss

    t0 = time.perf_counter()
    extra = dict(model_params or {})
    if members and model != "minirocket":
        extra["n_members"] = members
    if jobs is not None:
        extra["n_jobs"] = jobs
    res = train_cmapss(
        data_dir, subset, model=model, seed=seed, max_epochs=max_epochs, model_params=extra, data_params=data_params
    )
    run = {
        "subset": subset,
        "model": model,
        "seed": seed,
        "fit_seconds": time.perf_counter() - t0,
        **res.metrics,
        "epochs": getattr(res.estimator, "n_epochs_", None),
        "config": res.config,
    }
    return run, res


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
    ship_variant: str = "int8-compact",
    artifacts_dir: str | Path | None = None,
    members: int | None = None,
    log: Callable[[str], None] = print,
    jobs: int | None = None,
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
        ship_dir: if given, the first-seed transformer of each subset is exported as
            ``ship_variant``, registered and promoted in this registry (how ``models/shipped``
            is made).
        ship_variant: the export variant that is shipped (see :data:`models.pipeline.VARIANTS`).
        artifacts_dir: if given, the ONNX variants and the torch weights (``net.pt``) of the
            compressed transformers are kept in ``<artifacts_dir>/<subset>/``.
        members: seed-ensemble size of the deep models (``None``: their default, one network).
        log: progress sink.
        jobs: ensemble members trained at once, one process each (see :func:`one_run`).

    Returns:
        ``{"meta": ..., "runs": [...], "summary": ..., "compression": {...}}``.
    """
    from models.export.compare import compression_report
    from models.minirocket import numba_available
    from models.pipeline import export_variants, register_result

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
                run, res = one_run(data_dir, subset, model, seed, max_epochs=max_epochs, members=members, jobs=jobs)
                runs.append(run)
                log(f"{subset} {model} seed={seed} val_rmse={run['val_rmse']:.3f} ({run['fit_seconds']:.0f}s)")
                if model == "transformer" and seed == seeds[0] and ship_dir is not None:
                    mv = register_result(res, ship_dir, variant=ship_variant, promote=True)
                    run["shipped"] = {
                        "name": mv.name,
                        "version": mv.version,
                        "val_rmse_onnx": mv.card.metrics["val_rmse_onnx"],
                    }
                    log(f"  shipped {mv.name} {mv.version} val_rmse_onnx={mv.card.metrics['val_rmse_onnx']:.3f}")
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


def _part_path(parts_dir: Path, subset: str, model: str, seed: int) -> Path:
    return parts_dir / f"{subset}_{model}_s{seed}.json"


@contextmanager
def claim_part(path: Path) -> Iterator[bool]:
    """Claim one part file for this process: ``True`` if it is to be run here.

    ``False`` when the part is already on disk (or in its directory's archive, see
    :mod:`benchmarks._archive`) or another worker holds its exclusive ``.lock`` file; the lock is
    removed on exit, also when the run fails.
    """
    lock = path.with_suffix(".lock")
    if path.exists() or is_archived(path):
        yield False
        return
    try:
        os.close(os.open(lock, os.O_CREAT | os.O_EXCL | os.O_WRONLY))
    except FileExistsError:
        yield False
        return
    try:
        yield True
    finally:
        lock.unlink(missing_ok=True)


def write_part(path: Path, row: dict[str, Any]) -> None:
    """Write one part file atomically (a reader never sees half of it)."""
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(row, indent=2, default=float) + "\n", encoding="utf-8")
    tmp.replace(path)


def run_parts(
    data_dir: str | Path,
    parts_dir: str | Path,
    *,
    subsets: list[str],
    models: list[str],
    seeds: list[int],
    max_epochs: int | None = None,
    members: int | None = None,
    log: Callable[[str], None] = print,
) -> list[Path]:
    """Resumable, shardable benchmark: one JSON file per (subset, model, seed).

    Runs seed-major (every subset and model of seed 0 before seed 1) so a run stopped early
    still covers every subset. A run already on disk is skipped; a run in progress elsewhere
    is claimed by an exclusive ``.lock`` file, so several worker processes can share one
    ``parts_dir``. :func:`merge_parts` combines the files.

    Returns:
        The part files this call wrote.
    """

    from models.minirocket import numba_available

    parts = Path(parts_dir)
    parts.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    for seed in seeds:
        for subset in subsets:
            for model in models:
                if model == "minirocket" and not numba_available():
                    log(f"{subset}/minirocket: numba not installed, skipped")
                    continue
                path = _part_path(parts, subset, model, seed)
                with claim_part(path) as mine:
                    if not mine:
                        continue
                    run, _ = one_run(data_dir, subset, model, seed, max_epochs=max_epochs, members=members)
                    run.update(
                        {
                            "max_epochs_override": max_epochs,
                            "members": members,
                            "git_commit": git_commit(Path(__file__).resolve().parent),
                            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
                        }
                    )
                    write_part(path, run)
                    written.append(path)
                    log(f"{subset} {model} seed={seed} val_rmse={run['val_rmse']:.3f} ({run['fit_seconds']:.0f}s)")
    return written


def merge_parts(parts_dir: str | Path, out: str | Path | None = None) -> dict[str, Any]:
    """Combine :func:`run_parts` files into the benchmark JSON (``runs`` + ``summary``)."""
    runs = load_parts(parts_dir)  # the directory and, once packed, its archive
    runs.sort(key=lambda r: (r["subset"], r["model"], r["seed"]))
    result = {
        "meta": {
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "git_commit": git_commit(Path(__file__).resolve().parent),
            "platform": platform.platform(),
            "subsets": sorted({r["subset"] for r in runs}),
            "models": sorted({r["model"] for r in runs}),
            "seeds": sorted({r["seed"] for r in runs}),
            "max_epochs_override": sorted({r.get("max_epochs_override") for r in runs}, key=str),
            "members": sorted({r.get("members") for r in runs}, key=str),
            "protocol": "validation split by unit (20%), 5 random truncations per validation "
            "unit, RUL capped at 125; each seed changes the split, the truncations and the "
            "initialisation; test metrics only where RUL_*.txt exists",
            "merged_from": str(parts_dir),
        },
        "runs": runs,
        "summary": summarize(runs),
        "compression": {},
    }
    if out is not None:
        path = Path(out)
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(json.dumps(result, indent=2, default=float) + "\n", encoding="utf-8")
    return result


def markdown_table(summary: dict[str, Any], metric: str = "val_rmse") -> str:
    """README table: one row per model, one column per subset, ``mean ± std (n)``; best bold."""
    subsets = sorted(summary)
    models = sorted({m for per in summary.values() for m in per})
    best = {s: min((summary[s][m][metric]["mean"] for m in summary[s] if metric in summary[s][m]), default=None) for s in subsets}
    lines = ["| model | " + " | ".join(subsets) + " |", "|---|" + "---|" * len(subsets)]
    for m in models:
        cells = []
        for s in subsets:
            st = summary[s].get(m, {}).get(metric)
            if not st or not st["n"]:
                cells.append("n/a")
                continue
            cell = f"{st['mean']:.2f} ± {st['std']:.2f} ({st['n']})"
            cells.append(f"**{cell}**" if best[s] is not None and st["mean"] == best[s] else cell)
        lines.append(f"| {m} | " + " | ".join(cells) + " |")
    return "\n".join(lines) + "\n"
