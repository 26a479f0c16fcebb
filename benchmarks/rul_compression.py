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

The committed JSON measured FD001 v6, FD002 v7, FD003 v5 and FD004 v7 (each entry's ``card``): one
``--subset FD00X --version vN --update`` call per subset gives it again from those runs' weights.

Options: ``--subset FD001`` (repeatable), ``--repeats`` (timed calls per latency, median),
``--out`` (default ``benchmarks/results/rul_compression.json``), ``--update`` (replace only
the given subsets' entries in ``--out``), ``--keep-dir`` (keep the ONNX files).

Each subset's entry says whether the loaded weights reproduce the card's validation RMSE
(``weights_match_card``; if not, they are not the shipped weights) and, for fp32,
int8-dynamic and int8-compact, where the bytes of the file go
(:func:`models.export.compare.byte_breakdown`). A subset without ``net.pt`` (or whose
``net.pt`` does not fit the card's network) gets file sizes only, from the card's
architecture with random weights: sizes do not depend on the values.

Ship the compact variant of the same weights as a new promoted version (how v4 was made)::

    python benchmarks/rul_compression.py --weights-dir /tmp/rulv3 --version v3 --ship

Weights of a shipped run can be recreated by training it again (same seed and config; for
FD001 v3 this reproduced the card's validation RMSE exactly) with::

    python benchmarks/rul.py --subset FD002 --model transformer --seeds 1 --members 5 \
        --artifacts-dir /tmp/genedge_rul_artifacts --out /tmp/rul_ship_FD002.json
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
BREAKDOWN_VARIANTS = ("fp32", "int8-dynamic", "int8-compact")
REQUIREMENT = {"size_change_pct_max": -73.5, "speedup_b1_min": 2.0, "rmse_change_pct_max": 2.0}


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
    nets = [est._build_net(dm.n_channels, dm.window) for _ in range(n_members)]
    net = nets[0] if n_members == 1 else MeanEnsemble(nets)
    if weights is not None:
        net.load_state_dict(torch.load(weights, map_location="cpu"))
    else:
        torch.manual_seed(seed)
        with torch.no_grad():
            for p in net.parameters():
                p.add_(0.05 * torch.randn_like(p))
    net.eval()
    est.net_, est.n_channels_, est.n_timepoints_, est.is_fitted_ = net, dm.n_channels, dm.window, True
    pred = est.predict(dm.X_val)
    est.conformal_ = SplitConformal().fit(dm.y_val, pred)
    metrics = {"val_rmse": rmse(dm.y_val, pred), "val_n_cuts": int(np.asarray(dm.y_val).size)}
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
    with tempfile.TemporaryDirectory() as tmp:
        out = args.keep_dir / subset if args.keep_dir else Path(tmp)
        paths = export_variants(res, out, VARIANTS)
        rows = compression_report(
            res.estimator.network,
            paths,
            res.datamodule.X_val,
            res.datamodule.y_val,
            threads=args.threads,
            repeats=args.repeats,
        )
        breakdown = {name: byte_breakdown(paths[name]) for name in BREAKDOWN_VARIANTS if name in paths}
    for row in rows:
        row["meets_requirement"] = (
            row["size_change_pct"] <= REQUIREMENT["size_change_pct_max"]
            and row["speedup_b1"] >= REQUIREMENT["speedup_b1_min"]
            and row["rmse_change_pct"] <= REQUIREMENT["rmse_change_pct_max"]
        )
    return {
        "card": str(card_path.relative_to(ROOT)) if card_path.is_relative_to(ROOT) else str(card_path),
        "weights": str(args.weights_dir / subset / "net.pt"),
        "val_rmse_torch": res.metrics["val_rmse"],
        "val_rmse_card": card_rmse,
        "weights_match_card": abs(res.metrics["val_rmse"] - card_rmse) < 1e-3,
        "val_n_cuts": res.metrics["val_n_cuts"],
        "rows": rows,
        "byte_breakdown": breakdown,
    }


def measure_sizes(card: ModelCard, card_path: Path, args: argparse.Namespace, why: str) -> dict[str, Any]:
    """Without trained weights: file sizes only (they do not depend on the weights' values)."""
    from models.export.compare import byte_breakdown
    from models.pipeline import VARIANTS, export_variants

    res = rebuild(card, None, args.data_dir)
    with tempfile.TemporaryDirectory() as tmp:
        paths = export_variants(res, Path(tmp), VARIANTS)
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
            "protocol": "validation cuts of the card's split (seed, units); sizes vs the fp32 ONNX file; "
            "latency = median of `repeats` calls, batch 1 and 64, torch and onnxruntime at `threads` "
            "threads in the same process; RMSE change vs eager fp32 torch",
        },
        "subsets": {},
    }
    if args.update and args.out.exists():
        # keep the other subsets' entries (measured earlier, perhaps under other conditions)
        result["subsets"] = json.loads(args.out.read_text(encoding="utf-8")).get("subsets", {})
    for subset in subsets:
        result["subsets"][subset] = entry = measure(subset, args)
        entry["measured_at"] = dt.datetime.now(dt.UTC).isoformat(timespec="seconds")
        for row in entry["rows"]:
            line = f"{subset} {row['variant']:>22} size={row['size_bytes']:>7} ({row['size_change_pct']:+6.1f}%)"
            if "rmse" in row:
                line += (
                    f" b1={row['latency_b1_ms']:.3f}ms (x{row['speedup_b1']:.1f}) b64={row['latency_b64_ms']:.2f}ms"
                    f" rmse={row['rmse']:.3f} ({row['rmse_change_pct']:+.2f}%)"
                )
            print(line, flush=True)
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(result, indent=2, default=float) + "\n", encoding="utf-8")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
