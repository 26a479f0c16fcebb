"""How the 90 % intervals of the shipped C-MAPSS models are calibrated: one pooled quantile or by bin.

For each subset's shipped model (the promoted version; its own int8 ONNX file predicts its validation
cuts, rebuilt from its card) the same predictions are calibrated three ways (core.inference.calibration):

* ``pooled``: one split-conformal quantile of |error| (what v1-v11 shipped);
* ``scaled30``: normalised scores |error| / (prediction + 30), intervals growing with the prediction;
* ``mondrian``: one quantile per bin of the prediction (edges ``models.pipeline.CMAPSS_INTERVAL_BINS``).

Each is scored out of sample: leave-one-unit-out (every validation unit against intervals calibrated
on the others) and 200 random halvings of the units (calibrate on one half, score the other; mean and
10th percentile, what a 10-unit calibration set can give). Reported per method: coverage, mean width,
width where the prediction is below 40 cycles (near failure, what a planner acts on), coverage per
predicted-RUL band, and the leave-one-unit-out coverage re-weighted to how the *test* set's predictions
spread over those bands (test_FD00X.txt's sensor rows only: no truth is read).

The three calibrate the validation cuts only. FD001 and FD003 ship a calibration on every training
unit instead (``benchmarks/rul_replica_intervals.py``); their rows here compare the methods on the
same network's validation predictions.

    python benchmarks/rul_intervals.py [--data-dir ../shared/datasets/cmapss]
      -> benchmarks/results/rul_intervals.{json,md}
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.inference.calibration import SplitConformal  # noqa: E402
from core.inference.registry import SHIPPED_DIR, ModelRegistry  # noqa: E402
from core.inference.runtime import OnnxRULPredictor  # noqa: E402
from models.evaluation import load_test_units  # noqa: E402
from models.pipeline import CMAPSS_INTERVAL_BINS, NEAR_FAILURE_RUL, card_datamodule, louo_intervals  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
BANDS = (0.0, 25.0, 50.0, 75.0, 100.0, 115.0)  # predicted-RUL bands the coverage is broken down by
COVERAGE = 0.9
N_HALVINGS = 200

METHODS: dict[str, SplitConformal] = {
    "pooled": SplitConformal(),
    "scaled30": SplitConformal(scale="prediction", offset=30.0),
    "mondrian": SplitConformal(bins=CMAPSS_INTERVAL_BINS),
}


def _halvings(conf: SplitConformal, y: np.ndarray, pred: np.ndarray, units: np.ndarray) -> np.ndarray:
    unique = np.unique(units)
    rng = np.random.default_rng(0)
    out = []
    for _ in range(N_HALVINGS):
        first = np.isin(units, rng.permutation(unique)[: unique.size // 2])
        for cal in (first, ~first):
            lo, hi = conf.unfitted().fit(y[cal], pred[cal]).interval(pred[~cal], COVERAGE)
            out.append(float(np.mean((y[~cal] >= lo) & (y[~cal] <= hi))))
    return np.asarray(out)


def run_subset(data_dir: Path, subset: str, registry: Path = SHIPPED_DIR) -> dict[str, Any]:
    mv = ModelRegistry(registry).promoted(f"cmapss-{subset}")
    card = mv.card
    dm = card_datamodule(card, data_dir)
    predictor = OnnxRULPredictor(mv.model_path, card)
    pred = predictor.predict_windows(dm.X_val).astype(np.float64)
    y = dm.y_val.astype(np.float64)
    units = dm.val_cut_units
    band_val = np.searchsorted(BANDS, pred, side="right") - 1
    has_test = (data_dir / f"test_{subset}.txt").is_file()
    test_share = None
    if has_test:
        test_pred = predictor.predict_units(load_test_units(data_dir, subset))[0]  # sensor rows only, no truth
        band_test = np.searchsorted(BANDS, test_pred, side="right") - 1
        test_share = np.bincount(band_test, minlength=len(BANDS)) / band_test.size
    row: dict[str, Any] = {
        "subset": subset,
        "version": mv.version,
        "n_units": int(np.unique(units).size),
        "n_cuts": int(y.size),
        "val_band_share": (np.bincount(band_val, minlength=len(BANDS)) / y.size).round(3).tolist(),
        "test_band_share": test_share.round(3).tolist() if test_share is not None else None,
        "methods": {},
    }
    near = pred < NEAR_FAILURE_RUL
    for name, conf in METHODS.items():
        lower, upper = louo_intervals(pred, units, y, COVERAGE, conf)
        hits, width = (y >= lower) & (y <= upper), upper - lower
        halves = _halvings(conf, y, pred, units)
        band_cov = [float(hits[band_val == b].mean()) if (band_val == b).any() else float("nan") for b in range(len(BANDS))]
        m: dict[str, Any] = {
            "coverage_louo": float(hits.mean()),
            "coverage_halvings_mean": float(halves.mean()),
            "coverage_halvings_p10": float(np.percentile(halves, 10)),
            "width": float(width.mean()),
            "width_near_failure": float(width[near].mean()),
            "coverage_near_failure": float(hits[near].mean()),
            "band_coverage": band_cov,
        }
        if test_share is not None:
            ok = ~np.isnan(band_cov)
            m["coverage_louo_test_weighted"] = float(np.dot(np.asarray(band_cov)[ok], test_share[ok]) / test_share[ok].sum())
        row["methods"][name] = m
    return row


def markdown(rows: list[dict[str, Any]]) -> str:
    bands = " / ".join(f"{int(b)}-" for b in BANDS)
    lines = [
        f"| subset | method | coverage LOUO | halvings mean [p10] | test-weighted | width | width pred < {NEAR_FAILURE_RUL:.0f} "
        f"| coverage by predicted RUL {bands} |",
        "| --- | --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        for name, m in r["methods"].items():
            tw = m.get("coverage_louo_test_weighted")
            lines.append(
                f"| {r['subset']} ({r['version']}) | {name} | {m['coverage_louo']:.3f} | {m['coverage_halvings_mean']:.3f} "
                f"[{m['coverage_halvings_p10']:.3f}] | {'-' if tw is None else f'{tw:.3f}'} | {m['width']:.1f} | "
                f"{m['width_near_failure']:.1f} | {' / '.join(f'{c:.2f}' for c in m['band_coverage'])} |"
            )
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared/datasets/cmapss")
    p.add_argument("--subset", action="append", dest="subsets")
    p.add_argument("--registry", type=Path, default=SHIPPED_DIR)
    p.add_argument("--out", type=Path, default=RESULTS / "rul_intervals.json")
    args = p.parse_args(argv)
    rows = [run_subset(args.data_dir, s, args.registry) for s in args.subsets or ["FD001", "FD002", "FD003", "FD004"]]
    res = {"coverage_nominal": COVERAGE, "bins": list(CMAPSS_INTERVAL_BINS), "bands": list(BANDS), "rows": rows}
    args.out.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    table = markdown(rows)
    args.out.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
