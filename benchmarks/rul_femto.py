"""FEMTO/PRONOSTIA bearings: RUL from edge feature windows, leave one bearing out.

Every vibration snapshot of the three run-to-failure bearings goes through the edge agent's
feature pipeline (:class:`models.data.FEMTODataModule`); each model trains on two bearings and
predicts every window of the third. Nothing of the held-out bearing is seen in training: early
stopping and the conformal calibration use a seeded 20 % of the training windows. Those
windows come from the training bearings, so a second calibration is measured too: cross-bearing,
where the model is trained on each training bearing alone, scored on the other, and those
residuals calibrate the interval around the model trained on both (two extra fits). The baseline
in the same process is the constant predictor (the training targets' mean): a model is only
useful where its ratio to it is well below 1.

    python benchmarks/rul_femto.py --data-dir ../shared/datasets/femto

-> ``benchmarks/results/rul_femto.json`` and ``.md`` (mean +- std over seeds per held-out bearing);
one target per process (``--target rul --out benchmarks/results/rul_femto_hours.json``) splits
the work over two cores.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import sys
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from models.femto_pipeline import default_femto_config  # noqa: E402  (after the path set-up)

#: The recipe of each model on these windows (30 frames = 5 minutes): the transformer is the one
#: `genedge rul train-femto` deploys; the LSTM gets the same deep recipe (EMA weights, input noise,
#: small batches for the ~2,000 training windows).
_RECIPE = default_femto_config()
_DEEP = {k: v for k, v in _RECIPE["model"].items() if k != "patch_len"}
MODELS: dict[str, dict[str, Any]] = {
    "transformer": dict(_RECIPE["model"]),
    "lstm": dict(_DEEP),
    "minirocket": {"num_kernels": 2000},
}
TARGETS = {"life_pct": "remaining life, % of the run", "rul": "RUL, hours (capped at 3 h)"}
WINDOW = int(_RECIPE["data"]["window"])
RUL_CAP_H = float(_RECIPE["data"]["rul_cap"])


def fold(runs: dict[str, Any], data_dir: Path, val: str, target: str, model: str, seed: int) -> dict[str, Any]:
    """Train ``model`` on the other bearings, score every window of ``val``."""
    from scipy import stats

    from core.inference.calibration import SplitConformal, empirical_coverage
    from models.data.femto import FEMTODataModule
    from models.metrics import rmse
    from models.pipeline import make_estimator

    dm = FEMTODataModule(data_dir, val, runs=runs, window=WINDOW, target=target, rul_cap=RUL_CAP_H, train_stride=2)
    dm.setup()
    t0 = time.perf_counter()
    est = make_estimator(model, rul_cap=dm.output_cap, random_state=seed, **MODELS[model]).fit(dm.X_train, dm.y_train)
    fit_s = time.perf_counter() - t0
    pred = est.predict(dm.X_val)
    interval = est.predict_interval(dm.X_val, 0.9)
    # cross-bearing calibration: residuals of models that never saw the bearing they predict
    ys, preds = [], []
    for other in dm.train_bearings:
        rest = tuple(b for b in dm.train_bearings if b != other)
        sub = FEMTODataModule(
            data_dir, other, train_bearings=rest, runs=runs, window=WINDOW, target=target, rul_cap=RUL_CAP_H, train_stride=2
        )
        sub.setup()
        one = make_estimator(model, rul_cap=dm.output_cap, random_state=seed, **MODELS[model]).fit(sub.X_train, sub.y_train)
        # ``other`` is ``sub``'s held-out bearing: its every window, normalised on ``rest``
        ys.append(sub.y_val)
        preds.append(one.predict(sub.X_val))
    cross = SplitConformal().fit(np.concatenate(ys), np.concatenate(preds))
    cross_lower, cross_upper = cross.interval(pred, 0.9)
    const = rmse(dm.y_val, np.full_like(dm.y_val, float(dm.y_train.mean())))
    late = dm.y_val <= np.quantile(dm.y_val, 0.2)  # the last fifth of the run
    value = rmse(dm.y_val, pred)
    # the question a planner asks, in hours: a remaining share p of the run, after t hours of it,
    # means t * p / (100 - p) hours left (capped like the hours target); the baseline is the
    # training bearings' mean capped RUL
    run = runs[val]
    true_h = run.target("rul", RUL_CAP_H)
    if target == "rul":
        hours = pred
    else:
        share = np.clip(pred, 0.0, 100.0) / 100.0
        hours = np.minimum(run.t_hours * share / np.maximum(1.0 - share, 1e-9), RUL_CAP_H)
    mean_h = float(np.mean(np.concatenate([runs[b].target("rul", RUL_CAP_H) for b in dm.train_bearings])))
    return {
        "val_bearing": val,
        "target": target,
        "model": model,
        "seed": seed,
        "rmse": value,
        "constant_rmse": const,
        "ratio_to_constant": value / const,
        "rmse_last_fifth": rmse(dm.y_val[late], pred[late]),
        "constant_rmse_last_fifth": rmse(dm.y_val[late], np.full(int(late.sum()), float(dm.y_train.mean()))),
        "spearman_vs_time": float(stats.spearmanr(dm.val_t_hours, pred)[0]),
        "coverage_90": empirical_coverage(dm.y_val, interval["lower"], interval["upper"]),
        "coverage_90_cross_bearing": empirical_coverage(dm.y_val, cross_lower, cross_upper),
        "interval_width_cross_bearing": float(np.mean(cross_upper - cross_lower)),
        "rul_hours_rmse": rmse(true_h, hours),
        "rul_hours_constant_rmse": rmse(true_h, np.full(true_h.size, mean_h)),
        "n_train_windows": int(dm.y_train.size),
        "n_val_windows": int(dm.y_val.size),
        "fit_seconds": fit_s,
    }


def summarise(rows: list[dict[str, Any]]) -> tuple[dict[str, Any], str]:
    """Mean +- std over seeds per (target, held-out bearing, model) and the Markdown table."""
    keys = (
        "rmse",
        "ratio_to_constant",
        "rmse_last_fifth",
        "spearman_vs_time",
        "coverage_90",
        "coverage_90_cross_bearing",
        "interval_width_cross_bearing",
        "rul_hours_rmse",
    )
    groups: dict[tuple[str, str, str], list[dict[str, Any]]] = {}
    for r in rows:
        groups.setdefault((r["target"], r["val_bearing"], r["model"]), []).append(r)
    summary: dict[str, Any] = {}
    lines = [
        "| target | held-out bearing | model | RMSE | ratio to constant | RMSE, last fifth of life | Spearman vs time "
        "| 90 % coverage (windows) | 90 % coverage (cross-bearing) | its mean width | RUL RMSE, hours (capped 3 h) |",
        "|---|---|---|---|---|---|---|---|---|---|---|",
    ]
    for (target, val, model), rs in sorted(groups.items()):
        entry: dict[str, Any] = {
            "n": len(rs),
            "constant_rmse": rs[0]["constant_rmse"],
            "rul_hours_constant_rmse": rs[0]["rul_hours_constant_rmse"],
        }
        for k in keys:
            vals = [r[k] for r in rs]
            entry[k] = {"mean": statistics.fmean(vals), "std": statistics.stdev(vals) if len(vals) > 1 else 0.0}
        summary.setdefault(target, {}).setdefault(val, {})[model] = entry
        cells = [f"{entry[k]['mean']:.2f} ± {entry[k]['std']:.2f}" for k in keys]
        cells[-1] += f" (constant {entry['rul_hours_constant_rmse']:.2f})"
        lines.append(f"| {target} | {val} (constant {entry['constant_rmse']:.2f}) | {model} | " + " | ".join(cells) + " |")
    return summary, "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run every fold, write the results."""
    from models.data.femto import FEMTO_BEARINGS, bearing_run

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared/datasets/femto")
    p.add_argument("--model", action="append", dest="models", choices=sorted(MODELS))
    p.add_argument("--target", action="append", dest="targets", choices=sorted(TARGETS))
    p.add_argument("--seeds", type=int, default=3)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/rul_femto.json")
    args = p.parse_args(argv)
    t0 = time.perf_counter()
    runs = {b: bearing_run(args.data_dir, b) for b in FEMTO_BEARINGS}
    feature_s = time.perf_counter() - t0
    print(f"features of {sum(r.raw.shape[0] for r in runs.values())} snapshots: {feature_s:.0f} s", flush=True)
    rows = []
    for target in args.targets or list(TARGETS):
        for val in FEMTO_BEARINGS:
            for model in args.models or list(MODELS):
                for seed in range(args.seeds):
                    r = fold(runs, args.data_dir, val, target, model, seed)
                    rows.append(r)
                    print(
                        f"{target} {val} {model} s{seed}: RMSE {r['rmse']:.2f} (constant {r['constant_rmse']:.2f}), "
                        f"Spearman {r['spearman_vs_time']:+.2f}, "
                        f"coverage {r['coverage_90']:.2f} / {r['coverage_90_cross_bearing']:.2f}, "
                        f"RUL hours {r['rul_hours_rmse']:.2f} (constant {r['rul_hours_constant_rmse']:.2f})",
                        flush=True,
                    )
    summary, table = summarise(rows)
    result = {
        "meta": {
            "protocol": "leave one bearing out; early stopping and calibration on 20 % of the training windows",
            "window_frames": WINDOW,
            "frame_seconds": 10.0,
            "rul_cap_hours": RUL_CAP_H,
            "targets": TARGETS,
            "models": MODELS,
            "bearings": {b: {"snapshots": int(r.raw.shape[0]), "life_hours": r.life_hours} for b, r in runs.items()},
            "feature_seconds": feature_s,
            "platform": platform.platform(),
        },
        "summary": summary,
        "runs": rows,
    }
    args.out.write_text(json.dumps(result, indent=1, default=float) + "\n", encoding="utf-8")
    args.out.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
