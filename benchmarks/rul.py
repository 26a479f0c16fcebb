"""C-MAPSS RUL benchmark: transformer vs LSTM vs MiniRocket over seeds, plus compression.

Run (full protocol, hours on 2 CPU cores)::

    python benchmarks/rul.py --data-dir ../shared/datasets/cmapss

Shipped models (seed 0, a 5-network transformer ensemble, exported as int8-compact, registered
and promoted into models/shipped; the fp32 weights kept for benchmarks/rul_compression.py)::

    python benchmarks/rul.py --subset FD001 --model transformer --seeds 1 --members 5 \
        --ship-dir models/shipped --artifacts-dir /tmp/rulv5 --out benchmarks/results/rul_ship_FD001.json

Resumable, shared by two worker processes (run the same line twice), then merged::

    python benchmarks/rul.py --parts-dir benchmarks/results/rul_cmapss_parts
    python benchmarks/rul.py --parts-dir benchmarks/results/rul_cmapss_parts --merge

Reduced run (what the committed results/rul_cmapss.json holds is stated in its ``meta``)::

    python benchmarks/rul.py --data-dir ../shared/datasets/cmapss --subset FD001 --seeds 2 \
        --max-epochs 10
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._rul_harness import markdown_table, merge_parts, run_benchmark, run_parts  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, write ``benchmarks/results/rul_cmapss.json`` and, beside it, its Markdown table (``.md``)."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared/datasets/cmapss")
    p.add_argument("--subset", action="append", dest="subsets")
    p.add_argument("--model", action="append", dest="models")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--max-epochs", type=int, default=None)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--members", type=int, default=None, help="seed-ensemble size of the deep models")
    p.add_argument("--jobs", type=int, default=None, help="ensemble members trained at once (one process each)")
    p.add_argument(
        "--ship-dir", type=Path, default=None, help="register + promote the first-seed transformer here (models/shipped)"
    )
    p.add_argument("--ship-variant", default="int8-compact", help="export variant registered with --ship-dir")
    p.add_argument("--artifacts-dir", type=Path, default=None, help="keep ONNX variants + net.pt here")
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/rul_cmapss.json")
    p.add_argument(
        "--parts-dir",
        type=Path,
        default=None,
        help="resumable mode: one JSON per (subset, model, seed) here, seed-major; start several "
        "workers on the same directory to share the work; no compression",
    )
    p.add_argument("--merge", action="store_true", help="merge --parts-dir into --out and its .md table")
    args = p.parse_args(argv)
    subsets = args.subsets or ["FD001", "FD002", "FD003", "FD004"]
    models = args.models or ["transformer", "lstm", "minirocket"]
    if args.parts_dir is not None:
        if not args.merge:
            run_parts(
                args.data_dir,
                args.parts_dir,
                subsets=subsets,
                models=models,
                seeds=list(range(args.seeds)),
                max_epochs=args.max_epochs,
                members=args.members,
            )
        res = merge_parts(args.parts_dir, args.out)
        table = markdown_table(res["summary"])
        args.out.with_suffix(".md").write_text(table, encoding="utf-8")
        print(table)
        return 0
    res = run_benchmark(
        args.data_dir,
        subsets=subsets,
        models=models,
        seeds=list(range(args.seeds)),
        max_epochs=args.max_epochs,
        out=args.out,
        threads=args.threads,
        ship_dir=args.ship_dir,
        ship_variant=args.ship_variant,
        artifacts_dir=args.artifacts_dir,
        members=args.members,
        jobs=args.jobs,
    )
    args.out.with_suffix(".md").write_text(markdown_table(res["summary"]), encoding="utf-8")
    print(json.dumps(res["summary"], indent=2, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
