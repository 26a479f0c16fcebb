"""Do the demo model's 90 % intervals hold on units it has never seen?

The shipped ``sim-bearing`` calibrates its interval on its 40 validation units (normalised split
conformal, |error| / (prediction + offset)); ``genedge rul calibrate-sim`` registers the same network
recalibrated on freshly simulated units (seeds 2000 and 3000 by default). The simulator can draw as
many unseen units as a question needs, so this benchmark draws ``--units`` more (seed 1000, used by
no calibration) with the card's data settings and cuts each at ``n_val_cuts`` random instants, as
validation does. The promoted int8 model predicts them through its own card (normaliser included).
Reported:

* ``shipped``: the promoted version's interval, scored on every fresh cut and over random fleets of
  40 fresh units (the validation set's size): coverage, its 10th percentile over fleets, width,
  coverage near failure, its score quantile(s), and up to which prediction its lower bound is 0 h
  (an asset with a degradation sign predicted there goes straight to stop-now);
* ``calibrate_sim``: the same for the calibration ``genedge rul calibrate-sim`` would register
  (absolute errors by bin of the prediction on 400 fresh units of each of its default seeds);
* ``recalibrated, k units``: the shipped score, and absolute errors by bin of the prediction (Mondrian,
  ``models.sim_pipeline.SIM_INTERVAL_BINS``), calibrated afresh on ``k`` of these fresh units and
  scored on all the others, over 200 random splits: what a calibration set of ``k`` units gives on
  unseen units (mean and 10th percentile of coverage, mean width, coverage where the prediction is
  below 50 h). ``k`` = 40 is the shipped calibration's size.

These are simulated units: they say how the calibration behaves, not how real machines fail.

    python benchmarks/rul_sim_intervals.py [--units 400] -> benchmarks/results/rul_sim_intervals.{json,md}
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
from core.inference.runtime import FeatureRULPredictor  # noqa: E402
from models.sim_pipeline import NEAR_FAILURE_H, RECALIBRATION_SEEDS, SIM_INTERVAL_BINS, fresh_unit_cuts  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
COVERAGE = 0.9
FRESH_SEED = 1000  # the shipped model trained and calibrated on seed 0's units
FLEET = 40  # units per fleet: the size of the shipped validation set
N_SPLITS = 200
#: Units per seed that ``genedge rul calibrate-sim`` draws by default
CALIBRATE_SIM_UNITS = 400


def _hits(y: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    return (y >= lo) & (y <= hi)


def shipped_coverage(conf: SplitConformal, y: np.ndarray, pred: np.ndarray, units: np.ndarray,
                     seed: int = 0) -> dict[str, Any]:
    lo, hi = conf.interval(pred, COVERAGE)
    hits, width = _hits(y, lo, hi), hi - lo
    ids = np.unique(units)
    rng = np.random.default_rng(seed)
    fleets = [float(hits[np.isin(units, rng.choice(ids, FLEET, replace=False))].mean()) for _ in range(1000)]
    near = pred < NEAR_FAILURE_H
    # Up to which prediction the (monotone) lower bound is 0 h: an asset with a degradation sign
    # predicted there is inside any safety margin, so the decision policy stops it at once.
    grid = np.arange(0.0, 200.5, 0.5)
    zero = grid[conf.interval(grid, COVERAGE)[0] <= conf.lower_bound]
    return {"method": _method(conf), "coverage": float(hits.mean()), "width": float(width.mean()),
            "q90_by_bin": conf.bin_quantiles(COVERAGE).tolist(),
            "lower_bound_zero_up_to_h": float(zero.max()) if zero.size else None,
            "fleet40_mean": float(np.mean(fleets)), "fleet40_p10": float(np.percentile(fleets, 10)),
            "coverage_near_failure": float(hits[near].mean()) if near.any() else None,
            "width_near_failure": float(width[near].mean()) if near.any() else None}


def recalibrated(conf: SplitConformal, y: np.ndarray, pred: np.ndarray, units: np.ndarray, k: int,
                 seed: int = 0) -> dict[str, Any]:
    """Calibrate on ``k`` random units, score the rest, ``N_SPLITS`` times."""
    ids = np.unique(units)
    rng = np.random.default_rng(seed)
    cover, width, near_cover = [], [], []
    for _ in range(N_SPLITS):
        cal = np.isin(units, rng.choice(ids, k, replace=False))
        lo, hi = conf.unfitted().fit(y[cal], pred[cal]).interval(pred[~cal], COVERAGE)
        hits, near = _hits(y[~cal], lo, hi), pred[~cal] < NEAR_FAILURE_H
        cover.append(float(hits.mean()))
        width.append(float((hi - lo).mean()))
        near_cover.append(float(hits[near].mean()) if near.any() else np.nan)
    return {"method": _method(conf), "k_units": k, "coverage_mean": float(np.mean(cover)),
            "coverage_p10": float(np.percentile(cover, 10)), "width": float(np.mean(width)),
            "coverage_near_failure": float(np.nanmean(near_cover))}


def _method(conf: SplitConformal) -> str:
    score = f"abs. error / (prediction + {conf.offset:g})" if conf.scale == "prediction" else "abs. error"
    return score + (f" by bin of the prediction ({'/'.join(f'{b:g}' for b in conf.bins)} h)" if conf.bins else "")


def markdown(res: dict[str, Any]) -> str:
    lines = [
        f"{res['n_units']} fresh simulated units (seed {FRESH_SEED}), {res['n_cuts']} cuts; model "
        f"{res['model']} {res['version']}, 90 % intervals. RMSE on the fresh cuts {res['rmse']:.1f} h "
        f"(on its validation cuts {res['rmse_validation']:.1f} h).", "",
        f"| interval | coverage | 10th percentile | mean width (h) | coverage where predicted < {NEAR_FAILURE_H:.0f} h |",
        "| --- | --- | --- | --- | --- |",
    ]
    for label, s in (("shipped", res["shipped"]), (f"calibrate-sim ({res['calibrate_sim_units']} units, seeds "
                                                   f"{', '.join(map(str, RECALIBRATION_SEEDS))})", res["calibrate_sim"])):
        lines += [f"| {label}: {s['method']}, every fresh cut | {s['coverage']:.3f} | - | {s['width']:.1f} | "
                  f"{s['coverage_near_failure']:.3f} |",
                  f"| {label}, fleets of {FLEET} units | {s['fleet40_mean']:.3f} | {s['fleet40_p10']:.3f} | - | - |"]
    for r in res["recalibrated"]:
        lines.append(f"| {r['method']}, recalibrated on {r['k_units']} units, scored on the rest ({N_SPLITS} "
                     f"splits) | {r['coverage_mean']:.3f} | {r['coverage_p10']:.3f} | {r['width']:.1f} | "
                     f"{r['coverage_near_failure']:.3f} |")
    facts = [f"{label}: score quantile {' / '.join(f'{q:.3g}' for q in s['q90_by_bin'])}, "
             + (f"lower bound 0 h up to a prediction of {s['lower_bound_zero_up_to_h']:g} h"
                if s["lower_bound_zero_up_to_h"] is not None else "lower bound above 0 h everywhere")
             for label, s in (("shipped", res["shipped"]), ("calibrate-sim", res["calibrate_sim"]))]
    lines += ["", "90 % score quantile (shipped: of |error| / (prediction + offset); calibrate-sim: of |error| by bin, "
              f"{' / '.join(f'{b:g}' for b in SIM_INTERVAL_BINS)} h) and where the monotone lower bound leaves 0 h: "
              + "; ".join(facts) + "."]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--units", type=int, default=400)
    p.add_argument("--registry", type=Path, default=SHIPPED_DIR)
    p.add_argument("--out", type=Path, default=RESULTS / "rul_sim_intervals.json")
    args = p.parse_args(argv)
    mv = ModelRegistry(args.registry).promoted("sim-bearing")
    predictor = FeatureRULPredictor(mv.model_path, mv.card)
    y, pred, units = fresh_unit_cuts(predictor, mv.card.config["data"], args.units, FRESH_SEED)
    conf = SplitConformal.from_dict(mv.card.calibration or {})
    calibration_draws = [fresh_unit_cuts(predictor, mv.card.config["data"], CALIBRATE_SIM_UNITS, seed)
                         for seed in RECALIBRATION_SEEDS]  # what genedge rul calibrate-sim fits on
    by_bin = SplitConformal(bins=SIM_INTERVAL_BINS).fit(np.concatenate([d[0] for d in calibration_draws]),
                                                        np.concatenate([d[1] for d in calibration_draws]))
    res = {
        "model": mv.name, "version": mv.version, "coverage_nominal": COVERAGE, "n_units": args.units,
        "n_cuts": int(y.size), "fresh_seed": FRESH_SEED,
        "rmse": float(np.sqrt(np.mean((y - pred) ** 2))), "rmse_validation": mv.card.metrics.get("val_rmse_onnx"),
        "shipped": shipped_coverage(conf, y, pred, units),
        "calibrate_sim_units": len(RECALIBRATION_SEEDS) * CALIBRATE_SIM_UNITS,
        "calibrate_sim": shipped_coverage(by_bin, y, pred, units),
        "recalibrated": [recalibrated(c, y, pred, units, k) for c in (conf.unfitted(), by_bin.unfitted())
                         for k in (FLEET, 4 * FLEET)],
    }
    args.out.write_text(json.dumps(res, indent=1) + "\n", encoding="utf-8")
    table = markdown(res)
    args.out.with_suffix(".md").write_text(table, encoding="utf-8")
    print(table, end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
