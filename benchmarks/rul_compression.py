"""Re-measure the compression table of the shipped C-MAPSS transformers from saved weights.

No training: for each subset the network is rebuilt from the shipped model card's config
(``models/shipped/cmapss-FD00X/<version>/card.json``, or for an earlier version its archived card in
``benchmarks/results/archive/shipped_cards/``), the trained fp32 weights are loaded from
``<weights-dir>/FD00X/net.pt`` (the ``state_dict`` of ``res.estimator.network``, as
``benchmarks/rul.py --artifacts-dir`` saves it), the data module is rebuilt with the card's
seed and split, every ONNX variant of :data:`models.pipeline.VARIANTS` is exported and
:func:`models.export.compare.compression_report` compares them with eager fp32 PyTorch on the
validation cuts, in one process (sizes against the fp32 ONNX file; latencies are medians at one
thread; RMSE change against the eager model).

Run (about a minute per subset on an idle core; use ``nice`` on a shared machine)::

    OMP_NUM_THREADS=1 python benchmarks/rul_compression.py --weights-dir /tmp/genedge_rul_artifacts

The committed JSON measured FD001 v8 (retrained, below), FD002 v7, FD003 v5 and FD004 v7 (each
entry's ``card``; FD002 to FD004 before the int4, mixed and structured variants existed): one
``--subset FD00X --version vN --update`` call per subset gives it again from those runs' weights.

Options: ``--subset FD001`` (repeatable), ``--repeats`` (timed calls per latency, median),
``--out`` (default ``benchmarks/results/rul_compression.json``), ``--update`` (replace only
the given subsets' entries in ``--out``), ``--keep-dir`` (keep the ONNX files),
``--fleet-batch`` (windows per fleet call; default: every engine of the subset's test fleet,
100 on FD001), ``--variant`` (measure only these), ``--weights-note`` (what the weights are),
``--structured-sweep H,F,L`` (repeatable: also prune to H heads and F channels per layer with L
layers removed, fine-tune and time it; with ``--sweep-only --update`` into an existing entry).

Latencies: one thread, batch 1, 64 and the fleet batch, every model (eager PyTorch included)
taking turns over five rounds in one process, median of ``--repeats`` calls; speed-ups against
eager PyTorch (``speedup_*``) and against the fp32 ONNX model in the same runtime
(``speedup_vs_onnx_fp32_*``). Each entry's ``targets`` checks GenEdge issue #37's table
(:data:`TARGETS`); ``plans`` holds mixed precision's measured sensitivities and the structured
pruning's kept heads, channels and layers.

Weights: ``net.pt`` of any ensemble size; the network is rebuilt with as many members as the
weights have (``members``, ``weights_note``), so a single retrained member of the card's
configuration works too (then ``weights_match_card`` is false: it is not the shipped ensemble).

Each subset's entry says whether the loaded weights reproduce the card's validation RMSE
(``weights_match_card``; if not, they are not the shipped weights) and, for the variants of
:data:`BREAKDOWN_VARIANTS`, where the bytes of the file go
(:func:`models.export.compare.byte_breakdown`). A subset without ``net.pt`` (or whose
``net.pt`` does not fit the card's network) gets file sizes only, from the card's
architecture with random weights: sizes do not depend on the values.

Ship the compact variant of the same weights as a new promoted version (how v4 was made)::

    python benchmarks/rul_compression.py --weights-dir /tmp/rulv3 --version v3 --ship

Weights of a shipped run can be recreated by training it again (same seed and config; for
FD001 v3 this reproduced the card's validation RMSE exactly) with::

    python benchmarks/rul.py --subset FD002 --model transformer --seeds 1 --members 5 \
        --artifacts-dir /tmp/genedge_rul_artifacts --out /tmp/rul_ship_FD002.json

The FD001 entry (issue #37's table) came from v8's configuration retrained (5 members, seed 0)::

    python benchmarks/rul.py --subset FD001 --model transformer --seeds 1 --members 5 \
        --artifacts-dir /tmp/rulw_c5 --out /tmp/rulw_c5/rul_FD001.json
    python benchmarks/rul_compression.py --weights-dir /tmp/rulw_c5 --subset FD001 --version v8 --update \
        --structured-sweep 2,32,1 --structured-sweep 2,16,1
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import sys
import tempfile
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from core.inference.card import ModelCard, read_card  # noqa: E402  (after the path set-up above)

#: variants whose file is broken down by initializer kind and node op in the JSON
BREAKDOWN_VARIANTS = ("fp32", "int8-dynamic", "int8-compact", "int4", "int4-matmulnbits", "mixed")
REQUIREMENT = {"size_change_pct_max": -73.5, "speedup_b1_min": 2.0, "rmse_change_pct_max": 2.0}
#: variants trained after compression (left out of a sizes-only entry)
FINETUNED = ("pruned50ft-int8-dynamic", "structured", "structured-int8-compact")
#: GenEdge issue #37's table: int4 >= 85 % smaller within 2 % RMSE change, mixed precision within
#: 0.7 %, one variant >= 2x faster than fp32 ONNX (same runtime, batch 1 or fleet batch) within 2 %
TARGETS = {
    "int4_size_change_pct_max": -85.0,
    "int4_rmse_change_pct_max": 2.0,
    "mixed_rmse_change_pct_max": 0.7,
    "speedup_vs_onnx_fp32_min": 2.0,
    "speedup_rmse_change_pct_max": 2.0,
}


def members_of(state: dict[str, Any]) -> int:
    """Ensemble size of a saved ``state_dict`` (``members.<i>.`` keys; 1 without them)."""
    indices = {int(k.split(".")[1]) for k in state if k.startswith("members.")}
    return max(indices) + 1 if indices else 1


def fleet_size(data_dir: Path, subset: str) -> int:
    """Engines in the subset's test fleet: the fleet batch (every asset of a plant at once)."""
    from core.datasets.cmapss import load_cmapss

    return int(load_cmapss(data_dir, subset, "test")["unit"].nunique())


def rebuild(card: ModelCard, weights: Path | None, data_dir: Path) -> Any:
    """The shipped run as a :class:`~models.pipeline.TrainResult`, weights loaded, no training.

    Without ``weights`` the network keeps random weights, perturbed so that no two tensors are
    equal (as after training; the exporter merges equal ones): right for file sizes, which do
    not depend on the values, and for nothing else.
    """
    import numpy as np
    import torch

    from core.inference.calibration import SplitConformal
    from models.data.cmapss import CMAPSSDataModule
    from models.metrics import rmse
    from models.pipeline import TrainResult, make_estimator
    from models.torch_estimator import MeanEnsemble

    subset, seed, cfg = str(card.dataset.subset), int(card.seed or 0), card.config
    dm = CMAPSSDataModule(data_dir, subset, seed=seed, **cfg["data"])
    dm.setup()
    if dm.val_units.tolist() != card.dataset.val_units:
        raise SystemExit(f"{subset}: validation units differ from the card's")
    est = make_estimator(card.model, random_state=seed, **cfg["model"])
    n_members = int(cfg["model"].get("n_members", 1))
    state = torch.load(weights, map_location="cpu") if weights is not None else None
    if state is not None:  # the saved run's ensemble size (a retrained single member, say)
        n_members = members_of(state)
    nets = [est._build_net(dm.n_channels, dm.window) for _ in range(n_members)]
    net = nets[0] if n_members == 1 else MeanEnsemble(nets)
    if state is not None:
        net.load_state_dict(state)
    else:
        torch.manual_seed(seed)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.05 * torch.randn_like(p))
    net.eval()
    est.net_, est.n_channels_, est.n_timepoints_, est.is_fitted_ = net, dm.n_channels, dm.window, True
    pred = est.predict(dm.X_val)
    est.conformal_ = SplitConformal().fit(dm.y_val, pred)
    metrics = {"val_rmse": rmse(dm.y_val, pred), "val_n_cuts": int(np.asarray(dm.y_val).size), "members": n_members}
    return TrainResult(card.model, subset, seed, est, dm, cfg, metrics=metrics, data_dir=data_dir)


def measure(subset: str, args: argparse.Namespace) -> dict[str, Any]:
    """Export every variant of one subset and compare it with eager fp32 PyTorch."""
    from benchmarks._archive import card_path as find_card
    from models.export.compare import byte_breakdown, compression_report
    from models.pipeline import VARIANTS, export_variants

    card_path = find_card(args.shipped_dir, f"cmapss-{subset}", args.version)  # shipped, else archived
    card = read_card(card_path)
    weights = args.weights_dir / subset / "net.pt"
    if not weights.exists():
        return measure_sizes(card, card_path, args, "no saved weights")
    try:
        res = rebuild(card, weights, args.data_dir)
    except RuntimeError as err:  # load_state_dict: another architecture (an older run's weights)
        return measure_sizes(card, card_path, args, f"{weights} does not fit the card's network ({str(err)[:120]})")
    card_rmse = float(card.metrics["val_rmse"])
    fleet = args.fleet_batch or fleet_size(args.data_dir, subset)
    variants = tuple(args.variants or VARIANTS)
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep_dir / subset if args.keep_dir else Path(tmp)
        paths = export_variants(res, out, variants)
        rows = compression_report(
            res.estimator.network,
            paths,
            res.datamodule.X_val,
            res.datamodule.y_val,
            threads=args.threads,
            repeats=args.repeats,
            fleet_batch=fleet,
        )
        breakdown = {name: byte_breakdown(paths[name]) for name in BREAKDOWN_VARIANTS if name in paths}
        plans = {
            name: json.loads((out / f"{name}.plan.json").read_text(encoding="utf-8"))
            for name in ("mixed", "structured")
            if (out / f"{name}.plan.json").exists()
        }
    for row in rows:
        row["meets_requirement"] = (
            row["size_change_pct"] <= REQUIREMENT["size_change_pct_max"]
            and row["speedup_b1"] >= REQUIREMENT["speedup_b1_min"]
            and row["rmse_change_pct"] <= REQUIREMENT["rmse_change_pct_max"]
        )
    n_members = res.metrics["members"]
    card_members = int(card.config["model"].get("n_members", 1))
    match = abs(res.metrics["val_rmse"] - card_rmse) < 1e-3
    note = (
        f"the card's network ({card_members} members)"
        if match
        else f"{n_members} member(s) of the card's configuration, retrained (seed {card.seed}); the card has {card_members}"
    )
    return {
        "card": str(card_path.relative_to(ROOT)) if card_path.is_relative_to(ROOT) else str(card_path),
        "weights": str(args.weights_dir / subset / "net.pt"),
        "weights_note": args.weights_note or note,
        "members": n_members,
        "val_rmse_torch": res.metrics["val_rmse"],
        "val_rmse_card": card_rmse,
        "weights_match_card": match,
        "val_n_cuts": res.metrics["val_n_cuts"],
        "fleet_batch": fleet,
        "rows": rows,
        "targets": check_targets(rows),
        "plans": plans,
        "byte_breakdown": breakdown,
    }


def check_targets(rows: list[dict[str, Any]]) -> dict[str, Any]:
    """Each of :data:`TARGETS` with the rows that meet it, or the measured values where none does."""
    by_name = {r["variant"]: r for r in rows}
    out: dict[str, Any] = {}
    int4 = by_name.get("int4")
    if int4 is not None:
        out["int4"] = {
            "size_change_pct": int4["size_change_pct"],
            "rmse_change_pct": int4["rmse_change_pct"],
            "met": int4["size_change_pct"] <= TARGETS["int4_size_change_pct_max"]
            and abs(int4["rmse_change_pct"]) <= TARGETS["int4_rmse_change_pct_max"],
        }
    mixed = by_name.get("mixed")
    if mixed is not None:
        out["mixed"] = {
            "size_change_pct": mixed["size_change_pct"],
            "rmse_change_pct": mixed["rmse_change_pct"],
            "met": abs(mixed["rmse_change_pct"]) <= TARGETS["mixed_rmse_change_pct_max"],
        }
    fast = []
    for row in rows[1:]:
        best = max(v for k, v in row.items() if k.startswith("speedup_vs_onnx_fp32_"))
        if best >= TARGETS["speedup_vs_onnx_fp32_min"] and abs(row["rmse_change_pct"]) <= TARGETS["speedup_rmse_change_pct_max"]:
            fast.append(row["variant"])
    out["speedup"] = {"variants": fast, "met": bool(fast)}
    return out


def structured_sweep(subset: str, args: argparse.Namespace) -> dict[str, Any]:
    """Structured pruning at several strengths, each fine-tuned, against the fp32 ONNX model.

    Each ``--structured-sweep H,F,L`` keeps ``H`` heads and ``F`` feed-forward channels per layer
    and removes ``L`` whole layers (as the ``structured`` variant, same fine-tuning), so the entry
    shows what each step of pruning buys in speed and costs in RMSE.
    """
    from benchmarks._archive import card_path as find_card
    from models.export import export_onnx
    from models.export.compare import compression_report
    from models.export.structured import parameter_count, prune_structured_finetune

    card = read_card(find_card(args.shipped_dir, f"cmapss-{subset}", args.version))
    res = rebuild(card, args.weights_dir / subset / "net.pt", args.data_dir)
    net, dm = res.estimator.network, res.datamodule
    counts: dict[str, int] = {}
    with tempfile.TemporaryDirectory() as tmp:
        paths = {"fp32": export_onnx(net, dm.n_channels, dm.window, Path(tmp) / "fp32.onnx")}
        for spec in args.structured_sweep:
            heads, ffn, drop = (int(v) for v in spec.split(","))
            pruned, _ = prune_structured_finetune(
                net,
                dm.X_train,
                dm.y_train,
                dm.X_train[::10],
                dm.y_train[::10],
                keep_heads=heads,
                keep_ffn=ffn,
                drop_layers=drop,
                epochs=5,
                seed=res.seed,
            )
            name = f"structured-h{heads}-f{ffn}-l{drop}"
            paths[name] = export_onnx(pruned, dm.n_channels, dm.window, Path(tmp) / f"{name}.onnx")
            counts[name] = parameter_count(pruned)
        rows = compression_report(
            net,
            paths,
            dm.X_val,
            dm.y_val,
            threads=args.threads,
            repeats=args.repeats,
            fleet_batch=args.fleet_batch or fleet_size(args.data_dir, subset),
        )
    for row in rows:
        row["parameters"] = counts.get(row["variant"], parameter_count(net))
    return {"measured_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"), "rows": rows}


def measure_sizes(card: ModelCard, card_path: Path, args: argparse.Namespace, why: str) -> dict[str, Any]:
    """Without trained weights: file sizes only (they do not depend on the weights' values)."""
    from models.export.compare import byte_breakdown
    from models.pipeline import VARIANTS, export_variants

    res = rebuild(card, None, args.data_dir)
    # fine-tuning random weights would only take time: the sizes of those variants need trained weights
    variants = tuple(v for v in args.variants or VARIANTS if v not in FINETUNED)
    with tempfile.TemporaryDirectory() as tmp:
        paths = export_variants(res, Path(tmp), variants)
        ref = paths["fp32"].stat().st_size
        rows = [
            {"variant": name, "size_bytes": p.stat().st_size, "size_change_pct": 100.0 * (p.stat().st_size / ref - 1)}
            for name, p in paths.items()
        ]
        breakdown = {name: byte_breakdown(paths[name]) for name in BREAKDOWN_VARIANTS if name in paths}
    return {
        "card": str(card_path.relative_to(ROOT)) if card_path.is_relative_to(ROOT) else str(card_path),
        "weights": None,
        "note": f"{why}: sizes only, from the card's architecture with random weights "
        "(sizes do not depend on the values; fp32 equals the card's fp32_size_bytes when the "
        "architecture matches); no latency or RMSE",
        "fp32_size_bytes_card": card.metrics.get("fp32_size_bytes"),
        "rows": rows,
        "byte_breakdown": breakdown,
    }


def ship_compact(subset: str, args: argparse.Namespace) -> dict[str, Any]:
    """Register the int8-compact export of the shipped weights as a new promoted version.

    Same network, same weights, same calibration as ``--version``: the new card is that card
    with ``variant`` int8-compact, ``derived_from`` and the ONNX metrics measured again on the
    validation cuts with the edge runtime. Refuses weights that do not reproduce the card.
    """
    from core.inference.registry import ModelRegistry, git_commit
    from core.inference.runtime import OnnxRULPredictor
    from models.export.compact import export_int8_compact
    from models.metrics import phm08_score, rmse

    name = f"cmapss-{subset}"
    from benchmarks._archive import card_path

    card = read_card(card_path(args.shipped_dir, name, args.version))  # shipped, else archived
    res = rebuild(card, args.weights_dir / subset / "net.pt", args.data_dir)
    if abs(res.metrics["val_rmse"] - float(card.metrics["val_rmse"])) >= 1e-3:
        raise SystemExit(f"{subset}: the weights do not reproduce {args.version}'s validation RMSE; not shipped")
    dm = res.datamodule
    with tempfile.TemporaryDirectory() as tmp:
        path = export_int8_compact(res.estimator.network, dm.n_channels, dm.window, Path(tmp) / "model.onnx")
        new = card.to_dict()
        new.update(
            {
                "variant": "int8-compact",
                "derived_from": {"version": args.version, "variant": card.variant},
                "git_commit": git_commit(ROOT),
                "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            }
        )
        pred = OnnxRULPredictor(path, ModelCard.from_dict(new)).predict_windows(dm.X_val)
        new["metrics"].update({"val_rmse_onnx": rmse(dm.y_val, pred), "val_score_onnx": phm08_score(dm.y_val, pred)})
        for key in ("model_file", "model_sha256", "model_size_bytes"):
            new.pop(key, None)
        mv = ModelRegistry(args.shipped_dir).register(name, path, new, promote=True)
    return {
        "name": name,
        "version": mv.version,
        "val_rmse_onnx": new["metrics"]["val_rmse_onnx"],
        "size_bytes": mv.model_path.stat().st_size,
    }


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, measure each subset, write the JSON."""
    from core.inference.registry import SHIPPED_DIR, git_commit

    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared/datasets/cmapss")
    p.add_argument("--weights-dir", type=Path, default=Path("/tmp/genedge_rul_artifacts"))
    p.add_argument("--shipped-dir", type=Path, default=SHIPPED_DIR)
    p.add_argument("--version", default="v5")
    p.add_argument("--subset", action="append", dest="subsets")
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--repeats", type=int, default=200)
    p.add_argument(
        "--fleet-batch", type=int, default=None, help="windows per fleet call (default: engines in the subset's test set)"
    )
    p.add_argument("--variant", action="append", dest="variants", help="measure only these variants (fp32 always)")
    p.add_argument("--weights-note", default=None, help="what the weights are, recorded in the entry")
    p.add_argument(
        "--entry-suffix", default="", help="store the entry as '<subset><suffix>' (a second set of weights beside the first)"
    )
    p.add_argument(
        "--structured-sweep",
        action="append",
        default=[],
        metavar="H,F,L",
        help="also prune to H heads and F channels per layer, L layers removed, fine-tune and time it (repeatable)",
    )
    p.add_argument(
        "--sweep-only",
        action="store_true",
        help="with --update: measure only --structured-sweep, into the subset's existing entry",
    )
    p.add_argument("--keep-dir", type=Path, default=None)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/rul_compression.json")
    p.add_argument("--update", action="store_true", help="replace only these subsets' entries in --out")
    p.add_argument(
        "--ship",
        action="store_true",
        help="instead of measuring: register the int8-compact export of --version's weights in "
        "--shipped-dir as a new promoted version (same weights and calibration)",
    )
    args = p.parse_args(argv)
    subsets = args.subsets or ["FD001", "FD002", "FD003", "FD004"]
    if args.ship:
        for subset in subsets:
            print(json.dumps(ship_compact(subset, args)), flush=True)
        return 0
    result: dict[str, Any] = {
        "meta": {
            "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
            "git_commit": git_commit(ROOT),
            "platform": platform.platform(),
            "threads": args.threads,
            "repeats": args.repeats,
            "requirement": REQUIREMENT,
            "targets": TARGETS,
            "protocol": "validation cuts of the card's split (seed, units); sizes vs the fp32 ONNX file; "
            "latency = median of `repeats` calls, batch 1, 64 and the fleet batch (each entry's "
            "`fleet_batch`: every engine of the subset's test fleet at once), torch and onnxruntime at "
            "`threads` threads in the same process; speedup_* against eager torch, "
            "speedup_vs_onnx_fp32_* against the fp32 ONNX model; RMSE change vs eager fp32 torch",
        },
        "subsets": {},
    }
    if args.update and args.out.exists():
        # keep the other subsets' entries (measured earlier, perhaps under other conditions)
        previous = json.loads(args.out.read_text(encoding="utf-8"))
        result["subsets"] = previous.get("subsets", {})
        if args.sweep_only:  # the entries' own measurements stand, so does the run's description
            result["meta"] = previous.get("meta", result["meta"])
    for subset in subsets:
        key = f"{subset}{args.entry_suffix}"
        if args.sweep_only:
            if key not in result["subsets"] or not args.structured_sweep:
                raise SystemExit(f"--sweep-only needs --update, --structured-sweep and an entry {key!r} in --out")
            result["subsets"][key]["structured_sweep"] = sweep = structured_sweep(subset, args)
            for row in sweep["rows"]:
                print(subset, json.dumps({k: row[k] for k in ("variant", "rmse_change_pct", "parameters")}), flush=True)
            args.out.write_text(json.dumps(result, indent=2, default=float) + "\n", encoding="utf-8")
            continue
        result["subsets"][key] = entry = measure(subset, args)
        if args.structured_sweep:
            entry["structured_sweep"] = structured_sweep(subset, args)
        entry["measured_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        for row in entry["rows"]:
            line = f"{subset} {row['variant']:>22} size={row['size_bytes']:>7} ({row['size_change_pct']:+6.1f}%)"
            if "rmse" in row:
                line += (
                    f" b1={row['latency_b1_ms']:.3f}ms (x{row.get('speedup_vs_onnx_fp32_b1', 1.0):.2f})"
                    f" fleet={row['latency_fleet_ms']:.2f}ms (x{row.get('speedup_vs_onnx_fp32_fleet', 1.0):.2f})"
                    f" rmse={row['rmse']:.3f} ({row['rmse_change_pct']:+.2f}%)"
                )
            print(line, flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=float) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
