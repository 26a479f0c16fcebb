"""The what-if twin: calibration of its futures, its value as a maintenance policy, and its speed.

1. **Calibration on held-out simulated units.** Runs of the demo plant's machines the analog library
   never saw (other seeds), measured along their whole life by the edge pipeline and the shipped
   RUL model: at each moment the twin draws 500 futures and the true failure time is scored (PIT,
   coverage of the central 50 % and 90 % intervals, width). Also leave-one-run-out over the
   library's own runs. The learned generator (analog library) against the RUL model's interval
   alone (a log-normal through it: the physics and the interval, nothing learned from outcomes).
2. **Calibration on the FEMTO bearings left out** (share of life; ``benchmarks/_whatif_femto.py``).
3. **Value**: simulated plants with known truth (``benchmarks/_whatif_backtest.py``); the fixed
   policies' parameters are chosen on separate tuning seeds; per evaluation seed the total cost,
   unplanned failures and planned repairs of each policy; the twin's paired cost difference to each
   with its 95 % bootstrap interval over seeds.
4. **Speed**: one what-if (500 futures x 4 options, the recommendation) on one core, against the
   interval generator in the same process.

    python benchmarks/whatif.py [--quick] [--seeds 10] [--workers 2] [--data-dir ../shared/datasets]
      -> benchmarks/results/whatif.{json,md}
"""

from __future__ import annotations

import argparse
import json
import math
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._whatif_backtest import POLICIES, PlantConfig, run_plant  # noqa: E402
from core.inference.registry import SHIPPED_DIR, ModelRegistry  # noqa: E402
from core.inference.runtime import FeatureRULPredictor  # noqa: E402
from core.twin import ANALOGS_FILE, AnalogLibrary, AssetCosts, evaluate, interval_futures, make_options, recommend  # noqa: E402
from models.twin_library import build_sim_library  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
MODEL = "sim-bearing"
N_FUTURES = 500


# ----------------------------------------------------------------------------------- calibration
def _score(pit: np.ndarray, width: np.ndarray) -> dict[str, Any]:
    return {
        "n": int(pit.size),
        "coverage_90": float(np.mean((pit >= 0.05) & (pit <= 0.95))) if pit.size else math.nan,
        "coverage_50": float(np.mean((pit >= 0.25) & (pit <= 0.75))) if pit.size else math.nan,
        "width_90_h": float(np.median(width)) if width.size else math.nan,
        "pit_histogram": np.histogram(pit, bins=10, range=(0.0, 1.0))[0].tolist(),
    }


def calibrate(library: AnalogLibrary, cases: AnalogLibrary, *, exclude_own: bool = False, seed: int = 0) -> dict[str, Any]:
    """PIT of each case's true failure time under both generators (faulty runs only: a healthy run has none)."""
    rng = np.random.default_rng(seed)
    cap = cases.cap_h
    out: dict[str, list[tuple[float, float, float]]] = {"analogs": [], "interval": []}
    for i in np.flatnonzero(np.isfinite(cases.true_rul_h)):
        truth = float(cases.true_rul_h[i])
        f = cases.features[i]
        med, lo, hi = f[0] * cap, f[1] * cap, f[2] * cap
        lo, hi = min(lo, med), max(hi, med)
        gens = {
            "analogs": library.sample(med, lo, hi, N_FUTURES, rng, load_share=float(f[3]), age_h=float(f[4]) * 1000.0,
                                      exclude_unit=int(cases.unit[i]) if exclude_own else None),
            "interval": interval_futures(med, lo, hi, N_FUTURES, rng),
        }
        for name, fut in gens.items():
            x = fut.failure_h
            q5, q95 = np.quantile(x, [0.05, 0.95], method="inverted_cdf")
            width = float(q95 - q5) if np.isfinite(q95) else math.inf  # no failure in sight at the upper end
            out[name].append((float(np.mean(x < truth) + 0.5 * np.mean(x == truth)), width, truth))
    result: dict[str, Any] = {}
    for name, rows in out.items():
        arr = np.array(rows)
        pit, width, truths = arr[:, 0], arr[:, 1], arr[:, 2]
        near = truths < cap
        result[name] = {"all": _score(pit, width), "truth_below_cap": _score(pit[near], width[near]),
                        "truth_at_or_above_cap": _score(pit[~near], width[~near])}
    return result


def femto(data_dir: Path | None, quick: bool) -> dict[str, Any]:
    """The FEMTO leave-one-bearing-out calibration, when the data is there."""
    if data_dir is None or not (data_dir / "femto").is_dir():
        return {"skipped": f"no femto data under {data_dir}"}
    from benchmarks._whatif_femto import femto_calibration

    t0 = time.perf_counter()
    got = femto_calibration(data_dir / "femto", quick=quick)
    got["wall_s"] = round(time.perf_counter() - t0, 1)
    return got


# ---------------------------------------------------------------------------------- the backtest
_WORKER: dict[str, Any] = {}


def _shipped_library() -> AnalogLibrary:
    """The analog library beside the promoted version of the shipped simulator model."""
    return AnalogLibrary.from_json(ModelRegistry(SHIPPED_DIR).promoted(MODEL).path / ANALOGS_FILE)


def _init_worker() -> None:
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    _WORKER["predictor"] = FeatureRULPredictor.from_registry(SHIPPED_DIR, MODEL)
    _WORKER["library"] = _shipped_library()


def _job(args: tuple[int, str, float, float]) -> dict[str, Any]:
    seed, policy, param, horizon = args
    cfg = PlantConfig(seed=seed, horizon_h=horizon)
    return run_plant(cfg, policy, param, _WORKER["predictor"], _WORKER["library"])


def _run_jobs(jobs: list[tuple[int, str, float, float]], workers: int) -> list[dict[str, Any]]:
    if workers <= 1:
        _init_worker()
        return [_job(j) for j in jobs]
    with ProcessPoolExecutor(workers, initializer=_init_worker) as pool:
        return list(pool.map(_job, jobs))


def _bootstrap(diff: np.ndarray, rng: np.random.Generator, n: int = 5000) -> tuple[float, float]:
    means = rng.choice(diff, size=(n, diff.size), replace=True).mean(axis=1)
    return float(np.quantile(means, 0.025)), float(np.quantile(means, 0.975))


def backtest(seeds: list[int], tuning_seeds: list[int], horizon: float, workers: int) -> dict[str, Any]:
    """Tune the fixed policies on ``tuning_seeds``, then run every policy on ``seeds``."""
    t0 = time.perf_counter()
    tuning_jobs = [(s, p, v, horizon) for s in tuning_seeds for p, grid in POLICIES.items() if len(grid) > 1 for v in grid]
    tuned = _run_jobs(tuning_jobs, workers)
    chosen: dict[str, float] = {p: grid[0] for p, grid in POLICIES.items()}
    tuning: dict[str, dict[str, float]] = {}
    for p, grid in POLICIES.items():
        if len(grid) > 1:
            means = {v: float(np.mean([r["cost"] for r in tuned if r["policy"] == p and r["param"] == v])) for v in grid}
            tuning[p] = {str(v): m for v, m in means.items()}
            chosen[p] = min(means, key=lambda v: means[v])
    runs = _run_jobs([(s, p, chosen[p], horizon) for s in seeds for p in POLICIES], workers)
    rng = np.random.default_rng(0)
    per: dict[str, dict[str, Any]] = {}
    for p in POLICIES:
        rows = sorted((r for r in runs if r["policy"] == p), key=lambda r: r["seed"])
        cost = np.array([r["cost"] for r in rows])
        per[p] = {"param": chosen[p], "cost_mean": float(cost.mean()),
                  "cost_std": float(cost.std(ddof=1)) if cost.size > 1 else 0.0,
                  "failures_mean": float(np.mean([r["failures"] for r in rows])),
                  "failures_total": int(sum(r["failures"] for r in rows)),
                  "planned_mean": float(np.mean([r["planned"] for r in rows])),
                  "unplanned_stops_mean": float(np.mean([r["unplanned_stops"] for r in rows])),
                  "derate_h_mean": float(np.mean([r["derate_h"] for r in rows])),
                  "per_seed_cost": cost.round(0).tolist()}
    twin = np.array(per["twin"]["per_seed_cost"])
    for p in POLICIES:
        if p == "twin":
            continue
        diff = twin - np.array(per[p]["per_seed_cost"])
        lo, hi = _bootstrap(diff, rng)
        std = float(diff.std(ddof=1)) if diff.size > 1 else 0.0
        per[p]["twin_minus_this"] = {"mean": float(diff.mean()), "ci95": [lo, hi], "std_over_seeds": std,
                                     "twin_cheaper_by_more_than_spread": bool(-diff.mean() > std),
                                     "seeds_twin_cheaper": int(np.sum(diff < 0))}
    return {"seeds": seeds, "tuning_seeds": tuning_seeds, "horizon_h": horizon, "tuning": tuning, "policies": per,
            "wall_s": round(time.perf_counter() - t0, 1)}


# ------------------------------------------------------------------------------------ speed
def speed(library: AnalogLibrary, repeats: int = 30) -> dict[str, Any]:
    """CPU time of one what-if: futures, the four options, the recommendation (one thread)."""
    costs = AssetCosts(downtime_per_h=6000.0, lead_time_h=24.0)
    rng = np.random.default_rng(0)

    def once(gen: str) -> float:
        t0 = time.process_time()
        if gen == "analogs":
            fut = library.sample(60.0, 38.0, 95.0, N_FUTURES, rng, load_share=0.8, age_h=300.0)
        else:
            fut = interval_futures(60.0, 38.0, 95.0, N_FUTURES, rng)
        recommend(evaluate(fut, make_options([30.0, 198.0, 366.0], costs), costs, age_h=300.0, next_stop_h=30.0))
        return time.process_time() - t0

    times = {g: [once(g) for _ in range(repeats)] for g in ("interval", "analogs")}
    med = {g: float(np.median(v)) for g, v in times.items()}
    return {"futures": N_FUTURES, "options": 4, "cases_in_library": int(library.true_rul_h.size),
            "median_s": med, "analogs_over_interval": med["analogs"] / med["interval"], "target_s": 2.0}


# ------------------------------------------------------------------------------------ report
def _fmt_ci(d: dict[str, Any]) -> str:
    lo, hi = d["ci95"]
    return f"{d['mean']:+,.0f} ({lo:+,.0f} to {hi:+,.0f})"


def _cheaper(diff: dict[str, Any] | None, n: int) -> str:
    return f"{diff['seeds_twin_cheaper']}/{n}" if diff else "-"


def markdown(res: dict[str, Any]) -> str:
    lines = ["# What-if twin: calibration, value, speed", "",
             f"Model `{res['model']}`; library of {res['library']['cases']} cases from {res['library']['units']} "
             f"simulated runs (seed {res['library']['seed']}). Generated by "
             f"`python benchmarks/whatif.py{' --quick' if res['quick'] else ''}`.", "",
             "## Calibration of the failure-time distribution (faulty runs, every moment of their life)", "",
             "| held-out set | generator | cases | 90 % coverage | 50 % coverage | 90 % width (median, h) "
             "| 90 % cov., truth < cap | PIT histogram (10 bins) |",
             "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for name, cal in res["calibration"].items():
        for gen in ("analogs", "interval"):
            a, near = cal[gen]["all"], cal[gen]["truth_below_cap"]
            lines.append(f"| {name} | {gen} | {a['n']} | {a['coverage_90']:.3f} | {a['coverage_50']:.3f} | "
                         f"{a['width_90_h']:.0f} | {near['coverage_90']:.3f} | {a['pit_histogram']} |")
    fem = res["femto"]
    lines += ["", "## FEMTO bearings left out (share of life)", ""]
    if "skipped" in fem:
        lines.append(f"Skipped: {fem['skipped']}.")
    else:
        lines += [f"{fem['protocol']}. {fem.get('epochs')} epochs; {fem.get('wall_s')} s.", "",
                  "| held-out bearing | windows | generator | 50 % coverage | 90 % coverage | 90 % width (points) | CRPS |",
                  "| --- | --- | --- | --- | --- | --- | --- |"]
        rows = [*fem["bearings"].items(), ("pooled", fem["pooled"])]
        for name, b in rows:
            for gen in fem["generators"]:
                g = b[gen]
                lines.append(f"| {name} | {b['windows']} | {gen} | {g['coverage_50']:.2f} | {g['coverage_90']:.2f} | "
                             f"{g['width_90']:.1f} | {g['crps']:.1f} |")
        lines += ["", "Caveats: " + "; ".join(fem["caveats"]) + "."]
    bt = res["backtest"]
    lines += ["", f"## Value: {len(bt['seeds'])} simulated plants x {bt['horizon_h']:.0f} h, 8 machines each", "",
              f"Fixed policies' parameters chosen on tuning seeds {bt['tuning_seeds']}: "
              + ", ".join(f"{p} {v}" for p, v in bt["tuning"].items()) + ".", "",
              "| policy | parameter | total cost, mean (sd) | unplanned failures / plant | planned repairs / plant | "
              "repairs outside a stop / plant | twin minus this policy (95 % CI) | twin cheaper on seeds |",
              "| --- | --- | --- | --- | --- | --- | --- | --- |"]
    for p, d in bt["policies"].items():
        diff = d.get("twin_minus_this")
        lines.append(f"| {p} | {d['param']:g} | {d['cost_mean']:,.0f} ({d['cost_std']:,.0f}) | {d['failures_mean']:.2f} | "
                     f"{d['planned_mean']:.1f} | {d['unplanned_stops_mean']:.1f} | {_fmt_ci(diff) if diff else '-'} | "
                     f"{_cheaper(diff, len(bt['seeds']))} |")
    sp = res["speed"]
    lines += ["", "## Speed (one core)", "",
              f"One what-if ({sp['futures']} futures x {sp['options']} options, recommendation): "
              f"{sp['median_s']['analogs'] * 1000:.1f} ms with the analog library, "
              f"{sp['median_s']['interval'] * 1000:.1f} ms with the interval alone "
              f"(ratio {sp['analogs_over_interval']:.1f}x); target <= {sp['target_s']:.0f} s.", ""]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="a small version (the test suite's)")
    ap.add_argument("--seeds", type=int, default=10, help="evaluation plants")
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared" / "datasets")
    ap.add_argument("--out", type=Path, default=RESULTS / "whatif")
    args = ap.parse_args(argv)
    library = _shipped_library()
    predictor = FeatureRULPredictor.from_registry(SHIPPED_DIR, MODEL)
    held_units = 12 if args.quick else 100
    calibration: dict[str, Any] = {}
    for seed in ((202,) if args.quick else (202, 303)):
        cases = build_sim_library(predictor, model=library.model, n_units=held_units, seed=seed)
        calibration[f"held-out seed {seed} ({held_units} runs)"] = calibrate(library, cases, seed=seed)
    if not args.quick:
        calibration["leave-one-run-out (library)"] = calibrate(library, library, exclude_own=True)
    seeds = list(range(1, 3 if args.quick else args.seeds + 1))
    tuning = [1001] if args.quick else [1001, 1002, 1003]
    res = {
        "model": library.model, "quick": args.quick,
        "library": {"cases": int(library.true_rul_h.size), "units": library.meta.get("n_units"),
                    "seed": library.meta.get("seed")},
        "calibration": calibration,
        "femto": femto(args.data_dir, args.quick),
        "backtest": backtest(seeds, tuning, 400.0 if args.quick else 1500.0, args.workers),
        "speed": speed(library, repeats=10 if args.quick else 30),
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(res, indent=1, default=float))
    args.out.with_suffix(".md").write_text(markdown(res))
    print(markdown(res))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
