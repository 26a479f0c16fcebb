"""Cross-fit against the split ensemble, nested: does training on every unit pay, judged on untouched units?

The shipped C-MAPSS models until v8 are 5-network seed ensembles trained on 80 % of the training
units (split seed 0); the other 20 % early-stop and calibrate them, and nothing ever trains on them.
A 5-fold cross-fit (``genedge rul train --folds 5``, :mod:`models.crossfit`) trains each of its 5
networks on 80 % too, but a different 80 %, so together they cover every unit.

Whether that is better can only be judged on units neither has seen. This benchmark repeats the
cross-fit *inside* the shipped split: its 5 folds are cut from split 0's training units only, and
split 0's validation units are held out of everything (``CMAPSSDataModule(holdout_units=...)``;
the cross-fit's normaliser is then fitted on exactly the shipped model's training units, so it is
the same normaliser). Both models are scored on the shipped model's own validation cuts, both as
int8 ONNX. The comparison leans *towards* the shipped ensemble: its members trained on all of split
0's training units (the nested cross-fit's on 80 % of them) and it early-stopped on the very
cuts it is scored on (the cross-fit never saw them).

Like for like, it also trains the split ensemble the cross-fit would replace: 5 seeds on the nested
cross-fit's fold-0 split (the same amount of data per network, one fifth of the units never trained
on; its seed-0 network *is* the cross-fit's fold 0), scored on the same cuts.

Also reported: the nested cross-fit's single networks on those cuts (the gain from averaging) and
the coverage of its out-of-fold (CV+) 90 % interval on them.

Run (folds can train in separate processes; they meet in the checkpoint directory)::

    python benchmarks/rul_crossfit.py --subset FD002 --train-folds 0,2,4
    python benchmarks/rul_crossfit.py --subset FD002 --train-folds 1,3
    python benchmarks/rul_crossfit.py --subset FD002          # scores (trains any fold missing)
    python benchmarks/rul_crossfit.py --merge

Writes ``results/rul_crossfit_parts/<subset>.json`` and, on ``--merge``, ``results/rul_crossfit.json``
plus its Markdown table (``.md``).
"""

# ruff: noqa: N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.inference.registry import SHIPPED_DIR  # noqa: E402  (after the path set-up)

RESULTS = ROOT / "benchmarks" / "results"
PARTS = RESULTS / "rul_crossfit_parts"
N_FOLDS = 5


def nested_setup(data_dir: Path, subset: str, version: str, checkpoint_dir: Path) -> tuple[Any, Any, dict[str, Any]]:
    """The shipped version's split data module, its registry entry, and the nested cross-fit's config."""
    from benchmarks._archive import registered_version
    from models.data.cmapss import CMAPSSDataModule
    from models.pipeline import card_config, resolve_config

    mv = registered_version(SHIPPED_DIR, f"cmapss-{subset}", version)  # v8 is archived: results/archive/shipped_history
    card = mv.card
    dm = CMAPSSDataModule(data_dir, subset, seed=int(card.seed or 0), **card.config["data"])
    dm.setup()
    if dm.val_units.tolist() != card.dataset.val_units:
        raise SystemExit(f"{subset} {version}: the rebuilt split differs from the card's")
    shipped = card_config(card)
    model_params = {**shipped["model"], "n_members": 1, "n_jobs": 1, "checkpoint_dir": str(checkpoint_dir)}
    data_params = {**shipped["data"], "n_folds": N_FOLDS, "holdout_units": dm.val_units.tolist()}
    config = resolve_config(subset, card.model, model_params=model_params, data_params=data_params)
    return dm, mv, config


def fit_folds(data_dir: Path, subset: str, folds: list[int], config: dict[str, Any], seed: int, split_dm: Any) -> list[Any]:
    """Fit (or load from the checkpoint directory) the nested cross-fit's folds."""
    from models.pipeline import fit_fold

    out = []
    for k in folds:
        t0 = time.perf_counter()
        res = fit_fold(data_dir, subset, model="transformer", seed=seed, config=config, fold=k)
        dm = res.datamodule
        if dm.preprocessing_card() != split_dm.preprocessing_card():
            raise SystemExit("the nested cross-fit's normaliser differs from the shipped model's")
        if set(dm.train_units.tolist()) & set(split_dm.val_units.tolist()):
            raise SystemExit("a held-out unit reached a fold's training set")
        loaded = list(getattr(res.estimator, "members_loaded_", []))
        print(json.dumps({"subset": subset, "fold": k, "seconds": round(time.perf_counter() - t0), "loaded": loaded}), flush=True)
        out.append(res)
    return out


def score(data_dir: Path, subset: str, version: str, checkpoint_dir: Path) -> dict[str, Any]:
    """Nested cross-fit vs the shipped ensemble on the shipped ensemble's validation cuts."""
    from benchmarks.rul_ensembles import bootstrap_diff
    from core.inference.calibration import SplitConformal
    from core.inference.runtime import OnnxRULPredictor
    from models.crossfit import CrossFitEnsemble
    from models.export.compact import export_int8_compact
    from models.metrics import phm08_score, rmse

    split_dm, mv, config = nested_setup(data_dir, subset, version, checkpoint_dir)
    seed = int(mv.card.seed or 0)
    folds = fit_folds(data_dir, subset, list(range(N_FOLDS)), config, seed, split_dm)
    y, units, X = split_dm.y_val, split_dm.val_cut_units, split_dm.X_val
    shipped = OnnxRULPredictor(mv.model_path, mv.card)
    ship_pred = shipped.predict_windows(X)
    oof_y = np.concatenate([f.datamodule.y_val for f in folds])
    oof_pred = np.concatenate([f.estimator.predict(f.datamodule.X_val) for f in folds])
    est = CrossFitEnsemble.from_folds([f.estimator for f in folds], SplitConformal().fit(oof_y, oof_pred))
    with tempfile.TemporaryDirectory() as tmp:
        path = export_int8_compact(est.network, split_dm.n_channels, split_dm.window, Path(tmp) / "crossfit.onnx")
        cf_pred = OnnxRULPredictor(path, mv.card).predict_windows(X)
    lo, hi = est.conformal_.interval(cf_pred, 0.9)
    # the like-for-like split ensemble: 5 seeds on fold 0's split (the same data per network as the
    # cross-fit's, one fifth never trained on); its seed-0 network is the cross-fit's fold 0 (cached)
    split_config = {"data": config["data"], "model": {**config["model"], "n_members": N_FOLDS}}
    split = fit_folds(data_dir, subset, [0], split_config, seed, split_dm)[0]
    with tempfile.TemporaryDirectory() as tmp:
        path = export_int8_compact(split.estimator.network, split_dm.n_channels, split_dm.window, Path(tmp) / "split.onnx")
        split_pred = OnnxRULPredictor(path, mv.card).predict_windows(X)
    return {
        "subset": subset,
        "shipped_version": version,
        "n_units": int(np.unique(units).size),
        "n_cuts": int(y.size),
        "crossfit_fold_units": [int(f.datamodule.val_units.size) for f in folds],
        "shipped_int8_rmse": rmse(y, ship_pred),
        "shipped_int8_score": phm08_score(y, ship_pred),
        "crossfit_int8_rmse": rmse(y, cf_pred),
        "crossfit_int8_score": phm08_score(y, cf_pred),
        "crossfit_fp32_rmse": rmse(y, est.predict(X)),
        "crossfit_single_net_rmse": [rmse(y, f.estimator.predict(X)) for f in folds],
        "crossfit_oof_rmse": rmse(oof_y, oof_pred),
        "crossfit_coverage_90": float(np.mean((y >= lo) & (y <= hi))),
        "crossfit_width_90": float(np.mean(hi - lo)),
        "crossfit_minus_shipped": bootstrap_diff(y, cf_pred, ship_pred, units),
        "split_ensemble_int8_rmse": rmse(y, split_pred),
        "split_ensemble_int8_score": phm08_score(y, split_pred),
        "crossfit_minus_split_ensemble": bootstrap_diff(y, cf_pred, split_pred, units),
        "config": {k: v for k, v in config["model"].items() if k != "checkpoint_dir"},
        "machine": platform.machine(),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def markdown(rows: list[dict[str, Any]]) -> str:
    """The README table of the merged parts."""
    from benchmarks.rul_ensembles import diff_cells

    lines = [
        "| subset | shipped (int8) | nested cross-fit (int8) | its single networks | CF - shipped [95% CI] | units CF better "
        "| like-for-like split ensemble (int8) | CF - split [95% CI] | units CF better | CV+ 90 % coverage (width) |",
        "| --- | --- | --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        singles = np.asarray(r["crossfit_single_net_rmse"])
        lines.append(
            f"| {r['subset']} | {r['shipped_int8_rmse']:.2f} ({r['shipped_version']}) | {r['crossfit_int8_rmse']:.2f} "
            f"| {singles.mean():.2f} ± {singles.std(ddof=1):.2f} | {diff_cells(r['crossfit_minus_shipped'])} "
            + (
                f"| {r['split_ensemble_int8_rmse']:.2f} | {diff_cells(r['crossfit_minus_split_ensemble'])} "
                if "split_ensemble_int8_rmse" in r
                else "| not run | - | - "  # FD004's was stopped for lack of time
            )
            + f"| {r['crossfit_coverage_90']:.2f} ({r['crossfit_width_90']:.1f}) |"
        )
    return "\n".join(lines) + "\n"


def merge(parts: Path = PARTS, out: Path = RESULTS / "rul_crossfit.json") -> dict[str, Any]:
    """Collect the per-subset parts into one results file and its Markdown table."""
    rows = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(parts.glob("FD00*.json"))]
    doc = {
        "protocol": (
            "nested: 5-fold cross-fit over the shipped split's training units (its validation units held out of "
            "everything), scored with the shipped ensemble on the shipped ensemble's validation cuts, both int8 ONNX; "
            "difference = RMSE(cross-fit) - RMSE(shipped), 95% bootstrap interval over validation units"
        ),
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
    ap.add_argument("--version", default="v8", help="shipped version to nest in (its split, config and seed)")
    ap.add_argument("--checkpoint-dir", type=Path, default=ROOT / "var" / "checkpoints" / "crossfit")
    ap.add_argument("--train-folds", default=None, help="only train these folds (comma-separated) into the cache")
    ap.add_argument("--merge", action="store_true")
    args = ap.parse_args(argv)
    if args.merge:
        print(markdown(merge()["rows"]))
        return 0
    for subset in args.subset:
        if args.train_folds is not None:
            split_dm, mv, config = nested_setup(args.data_dir, subset, args.version, args.checkpoint_dir)
            folds = [int(k) for k in args.train_folds.split(",")]
            fit_folds(args.data_dir, subset, folds, config, int(mv.card.seed or 0), split_dm)
            continue
        part = score(args.data_dir, subset, args.version, args.checkpoint_dir)
        PARTS.mkdir(parents=True, exist_ok=True)
        (PARTS / f"{subset}.json").write_text(json.dumps(part, indent=1) + "\n", encoding="utf-8")
        print(json.dumps(part, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
