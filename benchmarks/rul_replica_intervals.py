"""The shipped 90 % RUL intervals, calibrated and scored on every training unit through replicas of the shipped recipe.

A shipped C-MAPSS model is a 5-network int8 ensemble trained on 80 of the 100 FD001/FD003 training
units and early-stopped on the other 20, whose errors then calibrate its Mondrian interval. Twenty
units are too few to promise 90 % on new engines, and too few to check it: the coverage of 10
held-out units wanders by +-0.05 even under a correct calibration (``results/rul_oof_intervals.md``).

Here the recipe is *replicated* so that every training unit gets an error from a model that never
trained on it, the same kind of model as the shipped one:

* group 0 is the shipped model's own validation group, predicted by the shipped int8 ONNX file;
* the shipped model's 80 training units are cut into 4 more groups of 20 (seed :data:`GROUP_SEED`); for
  each, the card's recipe (its data and model configuration, its seed, 5 members, early stopping on
  the held-out group, its own normaliser) trains on the other 80 units and is exported as the card's
  variant (int8-compact); it predicts the group it never saw.

Each unit is cut at every admissible truncation (RUL 1 .. min(150, life - 20), the range the
validation cuts are drawn from) and windowed by its own group's model. Calibration uses every
:data:`CAL_STEP`-th truncation of the calibration units (a systematic sample of that range), the
Mondrian bins of ``models.pipeline.CMAPSS_INTERVAL_BINS``; coverage is scored on every truncation of
the held-out units, each unit weighted equally, through ``SplitConformal.interval`` (the runtime's
monotone envelope included).

Leave-units-out: :data:`N_PERMUTATIONS` random halvings of the 100 units, each half held out in turn
(calibrate on 50, score 50): the mean and 10th percentile of coverage over the splits; and
leave-one-unit-out (calibrate on 99). For reference, the calibration the card shipped with (the
shipped model's 5 random cuts of its 20 validation units) scored on the 80 units the replicas hold out.

    python benchmarks/rul_replica_intervals.py --subset FD001 --train-groups 1,2   # train into the cache
    python benchmarks/rul_replica_intervals.py --subset FD001    # trains what is missing, scores
    python benchmarks/rul_replica_intervals.py --merge     -> results/rul_replica_intervals.{json,md}
    python benchmarks/rul_replica_intervals.py --subset FD001 --register   # new version, all-unit calibration

Member checkpoints and each subset's predictions are kept in ``--checkpoint-dir``, so a rerun does not
retrain.
"""

# ruff: noqa: N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import argparse
import datetime as dt
import json
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import numpy as np

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks.rul_intervals import BANDS  # noqa: E402  (the predicted-RUL bands coverage is broken down by)
from benchmarks.rul_oof_intervals import dense_cuts  # noqa: E402
from benchmarks.rul_oof_intervals import unit_weighted_score as score  # noqa: E402
from core.inference.calibration import SplitConformal  # noqa: E402
from core.inference.registry import SHIPPED_DIR, ModelRegistry, ModelVersion  # noqa: E402
from core.inference.runtime import OnnxRULPredictor  # noqa: E402
from models.pipeline import CMAPSS_INTERVAL_BINS, NEAR_FAILURE_RUL  # noqa: E402

RESULTS = ROOT / "benchmarks" / "results"
PARTS = RESULTS / "rul_replica_intervals_parts"
COVERAGE = 0.9
BINS = CMAPSS_INTERVAL_BINS
N_GROUPS = 5
GROUP_SEED = 0
N_PERMUTATIONS = 200
#: calibration cuts: every CAL_STEP-th admissible truncation of each calibration unit
CAL_STEP = 5
#: member processes of a replica's training (each on one thread, as the card's num_threads says)
N_JOBS = 2

Arrays = dict[str, np.ndarray]


def shipped(subset: str, version: str | None = None, registry_dir: Path = SHIPPED_DIR) -> ModelVersion:
    """The registry entry of ``subset`` (the promoted version unless ``version``; default: the shipped registry)."""
    reg = ModelRegistry(registry_dir)
    name = f"cmapss-{subset}"
    return reg.get(name, version) if version else reg.promoted(name)


def unit_groups(mv: ModelVersion) -> list[np.ndarray]:
    """Group 0: the shipped validation units; groups 1..4: the shipped training units, shuffled and cut in 4."""
    ds = mv.card.dataset
    train = np.asarray(sorted(ds.train_units))
    rest = np.array_split(np.random.default_rng(GROUP_SEED).permutation(train), N_GROUPS - 1)
    return [np.asarray(sorted(ds.val_units)), *(np.sort(g) for g in rest)]


def replica_config(
    mv: ModelVersion, held_out: np.ndarray, checkpoint_dir: Path, overrides: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The card's recipe with ``held_out`` as its validation group (``overrides``: model parameters of a reduced run)."""
    from models.pipeline import card_config

    cfg = card_config(mv.card)
    return {
        "data": {**cfg["data"], "val_units": [int(u) for u in held_out]},
        "model": {**cfg["model"], "n_jobs": N_JOBS, "checkpoint_dir": str(checkpoint_dir), **(overrides or {})},
    }


def fit_replica(
    data_dir: Path, subset: str, mv: ModelVersion, group: int, checkpoint_dir: Path, overrides: dict[str, Any] | None = None
) -> Any:
    """Train (or load from the checkpoint directory) the replica that holds out ``group``."""
    from models.pipeline import fit_fold

    held = unit_groups(mv)[group]
    t0 = time.perf_counter()
    res = fit_fold(
        data_dir,
        mv.card.dataset.subset,
        model=mv.card.model,
        seed=int(mv.card.seed or 0),
        config=replica_config(mv, held, checkpoint_dir, overrides),
    )
    if res.datamodule.val_units.tolist() != held.tolist() or set(res.datamodule.train_units.tolist()) & set(held.tolist()):
        raise SystemExit(f"{subset} group {group}: the replica's split is not the one asked for")
    loaded = list(getattr(res.estimator, "members_loaded_", []))
    print(
        json.dumps({"subset": subset, "group": group, "seconds": round(time.perf_counter() - t0), "loaded": loaded}), flush=True
    )
    return res


def subset_predictions(
    data_dir: Path, subset: str, mv: ModelVersion, checkpoint_dir: Path, overrides: dict[str, Any] | None = None
) -> Arrays:
    """Every admissible truncation of every training unit, predicted by the model that did not train on it (cached).

    Keys: ``y`` (capped truth), ``rul`` (uncapped RUL of the cut), ``units``, ``group``, ``pred``; and
    ``val_*``: the shipped model's 5 validation cuts per unit (what its card calibrated on).
    """
    from models.export.compact import export_int8_compact
    from models.pipeline import card_datamodule

    # named by the file's hash too: another registry may hold a different model under the same version
    cache = checkpoint_dir / f"replica_predictions_{subset}_{mv.version}_{(mv.card.model_sha256 or 'unregistered')[:12]}.npz"
    if cache.is_file() and not overrides:
        with np.load(cache) as z:
            return {k: z[k] for k in z.files}
    if mv.card.variant != "int8-compact":
        raise SystemExit(f"{subset} {mv.version}: replicas are exported as int8-compact, the card says {mv.card.variant}")
    split_dm = card_datamodule(mv.card, data_dir)  # raises unless the card's seed rebuilds its validation units
    ship = OnnxRULPredictor(mv.model_path, mv.card)
    groups = unit_groups(mv)
    replica_card = mv.card.model_copy(update={"model_sha256": None})  # the shipped card names its own file only
    parts: dict[str, list[np.ndarray]] = {k: [] for k in ("y", "rul", "units", "group", "pred")}

    def add(g: int, y: np.ndarray, rul: np.ndarray, units: np.ndarray, pred: np.ndarray) -> None:
        for key, value in (("y", y), ("rul", rul), ("units", units), ("group", np.full(y.size, g)), ("pred", pred)):
            parts[key].append(np.asarray(value))

    X, y, rul, units = dense_cuts(split_dm, data_dir, groups[0])
    add(0, y, rul, units, ship.predict_windows(X))
    for g in range(1, N_GROUPS):
        res = fit_replica(data_dir, subset, mv, g, checkpoint_dir, overrides)
        dm = res.datamodule
        X, y, rul, units = dense_cuts(dm, data_dir, groups[g])  # windowed by the replica's own normaliser
        with tempfile.TemporaryDirectory() as tmp:
            path = export_int8_compact(res.estimator.network, dm.n_channels, dm.window, Path(tmp) / "replica.onnx")
            add(g, y, rul, units, OnnxRULPredictor(path, replica_card).predict_windows(X))
        del res, dm
    out: Arrays = {k: np.concatenate(v) for k, v in parts.items()}
    out["y"], out["pred"] = out["y"].astype(np.float64), out["pred"].astype(np.float64)
    out["val_y"] = split_dm.y_val.astype(np.float64)
    out["val_units"] = split_dm.val_cut_units
    out["val_pred"] = ship.predict_windows(split_dm.X_val).astype(np.float64)
    if sorted(np.unique(out["units"]).tolist()) != sorted(np.concatenate(groups).tolist()):
        raise SystemExit(f"{subset}: the replicas do not cover every training unit")
    if not overrides:  # a reduced run is not the recipe: never cached as its predictions
        checkpoint_dir.mkdir(parents=True, exist_ok=True)
        np.savez(cache, allow_pickle=False, **out)
    return out


def calibrate(a: Arrays, cal_units: np.ndarray) -> SplitConformal:
    """Mondrian calibration on every :data:`CAL_STEP`-th truncation of ``cal_units``."""
    cal = np.isin(a["units"], cal_units) & ((a["rul"] - 1) % CAL_STEP == 0)
    return SplitConformal(bins=BINS).fit(a["y"][cal], a["pred"][cal])


def _summary(rows: list[dict[str, float]]) -> dict[str, float]:
    r = {k: np.array([row[k] for row in rows]) for k in rows[0]}
    return {
        "coverage_mean": float(r["cov"].mean()),
        "coverage_p10": float(np.percentile(r["cov"], 10)),
        "coverage_p5": float(np.percentile(r["cov"], 5)),
        "width": float(r["width"].mean()),
        "width_near_failure": float(r["near_width"].sum() / r["near_n"].sum()),
        "coverage_near_failure": float(r["near_hits"].sum() / r["near_n"].sum()),
    }


def evaluate(a: Arrays, n_permutations: int = N_PERMUTATIONS, seed: int = 0) -> dict[str, Any]:
    """Halvings of the units (each half held out in turn), leave-one-unit-out, and the card's own calibration."""
    units = np.unique(a["units"])
    rng = np.random.default_rng(seed)
    halves = []
    for _ in range(n_permutations):
        first = rng.permutation(units)[: units.size // 2]
        for held in (first, np.setdiff1d(units, first)):
            test = np.isin(a["units"], held)
            halves.append(score(calibrate(a, np.setdiff1d(units, held)), a["y"][test], a["pred"][test], a["units"][test]))
    louo, hits = [], np.zeros(a["y"].size, dtype=bool)
    for unit in units:
        test = a["units"] == unit
        conf = calibrate(a, units[units != unit])
        louo.append(score(conf, a["y"][test], a["pred"][test], a["units"][test]))
        lo, hi = conf.interval(a["pred"][test], COVERAGE)
        hits[test] = (a["y"][test] >= lo) & (a["y"][test] <= hi)
    band = np.searchsorted(BANDS, a["pred"], side="right") - 1
    # the card's calibration: the shipped model's 5 validation cuts of group 0, scored on groups 1..4
    card_conf = SplitConformal(bins=BINS).fit(a["val_y"], a["val_pred"])
    unseen = a["group"] > 0
    per_unit = []
    for u in np.unique(a["units"][unseen]):
        m = unseen & (a["units"] == u)
        per_unit.append(score(card_conf, a["y"][m], a["pred"][m], a["units"][m]))
    card_cov = np.array([p["cov"] for p in per_unit])
    return {
        "halvings": _summary(halves),
        "louo": {**_summary(louo), "band_coverage": [float(hits[band == b].mean()) for b in range(len(BANDS))]},
        "card_calibration_on_replica_units": {
            **_summary(per_unit),
            "coverage_unit_ci95": _unit_bootstrap(card_cov, seed),
        },
    }


def _unit_bootstrap(per_unit: np.ndarray, seed: int, n: int = 2000) -> list[float]:
    rng = np.random.default_rng(seed)
    means = [per_unit[rng.integers(0, per_unit.size, per_unit.size)].mean() for _ in range(n)]
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def _mae(a: Arrays, mask: np.ndarray) -> float:
    return float(np.mean(np.abs(a["pred"][mask] - a["y"][mask])))


def run_subset(
    data_dir: Path, subset: str, checkpoint_dir: Path, version: str | None = None, registry_dir: Path = SHIPPED_DIR
) -> dict[str, Any]:
    """One subset's results row."""
    mv = shipped(subset, version, registry_dir)
    a = subset_predictions(data_dir, subset, mv, checkpoint_dir)
    units = np.unique(a["units"])
    grid = (a["rul"] - 1) % CAL_STEP == 0
    return {
        "subset": subset,
        "version": mv.version,
        "n_units": int(units.size),
        "n_cuts": int(a["y"].size),
        "n_calibration_cuts_all_units": int(grid.sum()),
        # the version whose card calibrated on the validation cuts alone (before the all-unit calibration)
        "val_calibrated_version": (
            mv.card.recalibrated_from if "rul_replica_intervals" in str((mv.card.calibration or {}).get("source")) else mv.version
        ),
        "mae_by_group": [_mae(a, a["group"] == g) for g in range(N_GROUPS)],
        "bin_q90_all_units": calibrate(a, units).bin_quantiles(COVERAGE).tolist(),
        "bin_q90_card": SplitConformal(bins=BINS).fit(a["val_y"], a["val_pred"]).bin_quantiles(COVERAGE).tolist(),
        **evaluate(a),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
    }


def register(
    data_dir: Path, subset: str, checkpoint_dir: Path, registry_dir: Path = SHIPPED_DIR, version: str | None = None
) -> str:
    """Register the model's ONNX file again with the all-unit calibration, promoted; returns the new version."""
    mv = shipped(subset, version, registry_dir)
    return register_calibration(mv, subset_predictions(data_dir, subset, mv, checkpoint_dir), registry_dir).version


def register_calibration(mv: ModelVersion, a: Arrays, registry_dir: Path) -> ModelVersion:
    """``mv``'s file as a new promoted version in ``registry_dir``, calibrated on every unit of ``a``."""
    from models._recipe import register_recalibrated

    units = np.unique(a["units"])
    ev = evaluate(a)
    # about 3,000 scores: kept to 1e-4 cycles, a third of the card's size at full float precision
    full = calibrate(a, units).to_dict()
    full["scores"] = [round(v, 4) for v in full["scores"]]
    full["bin_scores"] = [[round(v, 4) for v in b] for b in full["bin_scores"]]
    stored = SplitConformal.from_dict(full).to_dict()
    source = (
        f"out-of-group errors of {mv.version}'s recipe on all {units.size} training units: {mv.version} itself on its "
        f"validation units, {N_GROUPS - 1} replicas of its recipe (each holding out a quarter of its training units) "
        f"on the rest; every {CAL_STEP}th admissible truncation; benchmarks/rul_replica_intervals.py"
    )
    # the interval figures are the replicas' (every unit out of group); the validation-cut interval
    # figures of the card describe the calibration being replaced, so they do not carry over
    stale = ("val_coverage_cross", "val_coverage_louo", "val_interval_width", "val_interval_width_near_failure")
    metrics = {
        **{k: v for k, v in mv.card.metrics.items() if k not in stale},
        "interval_n_units": int(units.size),
        "interval_coverage_louo": ev["louo"]["coverage_mean"],
        "interval_coverage_halvings": ev["halvings"]["coverage_mean"],
        "interval_coverage_halvings_p10": ev["halvings"]["coverage_p10"],
        "interval_width": ev["louo"]["width"],
        "interval_width_near_failure": ev["louo"]["width_near_failure"],
    }
    return register_recalibrated(ModelRegistry(registry_dir), mv, {**stored, "source": source}, metrics, promote=True)


def markdown(rows: list[dict[str, Any]]) -> str:
    """The results table."""
    near = f"pred < {NEAR_FAILURE_RUL:.0f}"
    lines = [
        f"Mondrian {COVERAGE:.0%} intervals of the shipped int8 C-MAPSS models on every training unit, each predicted by "
        "the shipped model or a replica of its recipe that never trained on it; calibrated on every "
        f"{CAL_STEP}th truncation of the calibration units, scored on every truncation of the held-out units, each "
        f"unit weighted equally; widths in cycles (benchmarks/rul_replica_intervals.py). The shipped version's card "
        "holds the calibration on all units; the first row estimates its coverage on new engines with half the units "
        "(a calibration on all of them varies less), the second with all but one.",
        "",
        f"| subset | calibration | held out | coverage mean [p10] | width | {near}: width (coverage) | q90 per bin |",
        "| --- | --- | --- | --- | --- | --- | --- |",
    ]
    for r in rows:
        n = r["n_units"]
        for label, held, key, q in (
            (f"{n // 2} units", f"the other {n - n // 2}, {2 * N_PERMUTATIONS} splits", "halvings", None),
            (f"{n - 1} units (q90: all {n}, as shipped)", "1 unit, each in turn", "louo", r["bin_q90_all_units"]),
            (
                f"its validation units alone (as {r['val_calibrated_version']} shipped): 20, 5 cuts each",
                f"the {n - 20} units of the replicas",
                "card_calibration_on_replica_units",
                r["bin_q90_card"],
            ),
        ):
            m = r[key]
            ci = m.get("coverage_unit_ci95")
            if key == "halvings":
                cov = f"{m['coverage_mean']:.3f} [{m['coverage_p10']:.3f}]"
            else:  # one calibration scored unit by unit: a spread over units, not over calibrations
                cov = f"{m['coverage_mean']:.3f}" + (f" (95 % CI {ci[0]:.3f}-{ci[1]:.3f})" if ci else "")
            lines.append(
                f"| {r['subset']} ({r['version']}) | {label} | {held} | {cov} | {m['width']:.1f} "
                f"| {m['width_near_failure']:.1f} ({m['coverage_near_failure']:.2f}) "
                f"| {'-' if q is None else ' / '.join(f'{v:.1f}' for v in q)} |"
            )
    lines += [
        "",
        "MAE on every truncation, by group (0: the shipped model on its validation units; 1-4: replicas):",
        "",
        "| subset | " + " | ".join(f"group {g}" for g in range(N_GROUPS)) + " |",
        "| --- | " + " | ".join("---" for _ in range(N_GROUPS)) + " |",
    ]
    for r in rows:
        lines.append(f"| {r['subset']} | " + " | ".join(f"{v:.2f}" for v in r["mae_by_group"]) + " |")
    bands = " / ".join(f"{b:.0f}-" for b in BANDS)
    lines += [
        "",
        "Leave-one-unit-out coverage by band of the prediction (every cut counted once; the guarantee is per bin, not per band):",
        "",
        f"| subset | {bands} |",
        "| --- | --- |",
    ]
    for r in rows:
        cov = r["louo"].get("band_coverage")
        lines.append(f"| {r['subset']} | {'-' if cov is None else ' / '.join(f'{c:.2f}' for c in cov)} |")
    return "\n".join(lines) + "\n"


def merge(parts: Path = PARTS, out: Path = RESULTS / "rul_replica_intervals.json") -> dict[str, Any]:
    """Collect the per-subset parts into one results file and its Markdown table."""
    rows = [json.loads(p.read_text(encoding="utf-8")) for p in sorted(parts.glob("FD00*.json"))]
    doc = {
        "protocol": (
            f"Mondrian {COVERAGE:.0%} intervals (bins {list(BINS)}); every training unit predicted out of group (the "
            f"shipped int8 model on its validation group, {N_GROUPS - 1} int8 replicas of its recipe on 4 groups of its "
            f"training units, seed {GROUP_SEED}); calibration on every {CAL_STEP}th truncation; {N_PERMUTATIONS} "
            "halvings, each half held out in turn, and leave-one-unit-out; every truncation scored, units weighted equally"
        ),
        "coverage_nominal": COVERAGE,
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
    ap.add_argument("--version", default=None, help="shipped version (default: the promoted one)")
    ap.add_argument("--checkpoint-dir", type=Path, default=ROOT / "var" / "checkpoints" / "replicas")
    ap.add_argument("--train-groups", default=None, help="only train the replicas of these groups (comma-separated, 1-4)")
    ap.add_argument("--register", action="store_true", help="register the all-unit calibration as a new promoted version")
    ap.add_argument(
        "--registry-dir", type=Path, default=SHIPPED_DIR, help="registry the model is read from and --register writes to"
    )
    ap.add_argument("--merge", action="store_true")
    args = ap.parse_args(argv)
    if args.merge:
        print(markdown(merge()["rows"]), end="")
        return 0
    for subset in args.subset:
        if args.train_groups is not None:
            mv = shipped(subset, args.version, args.registry_dir)
            for g in (int(k) for k in args.train_groups.split(",")):
                if not 1 <= g < N_GROUPS:
                    raise SystemExit(f"--train-groups: replicas are groups 1..{N_GROUPS - 1}, got {g}")
                fit_replica(args.data_dir, subset, mv, g, args.checkpoint_dir)
            continue
        if args.register:
            print(register(args.data_dir, subset, args.checkpoint_dir, args.registry_dir, args.version))
            continue
        part = run_subset(args.data_dir, subset, args.checkpoint_dir, args.version, args.registry_dir)
        PARTS.mkdir(parents=True, exist_ok=True)
        (PARTS / f"{subset}.json").write_text(json.dumps(part, indent=1) + "\n", encoding="utf-8")
        print(markdown([part]), end="")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
