"""Rare-failure experiment on CWRU: real vs classical augmentation vs VAE / WGAN-GP samples.

Full protocol (hours on 2 busy CPU cores)::

    python benchmarks/synth.py --data-dir ../shared/datasets

Reduced run (what the committed results/synth.json holds is stated in its ``meta``)::

    python benchmarks/synth.py --seeds 5 --kernels 2016

Missing-data synthesis (gap filling by the conditional VAE vs linear interpolation)::

    python benchmarks/synth.py --gaps-only

Writes ``benchmarks/results/synth.json`` (after every run), ``benchmarks/results/synth.md`` (the
README table) and small PNGs under ``benchmarks/results/synth/``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from synth.experiment import markdown_table, run_gap_experiment, run_rare_failure  # noqa: E402


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, write the JSON and Markdown results."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared/datasets")
    p.add_argument("--snr", type=float, action="append", dest="snrs", help="dB; repeat (default -4 and 0)")
    p.add_argument("--k", type=int, action="append", dest="ks", help="real fault windows per class; repeat (default 1 and 2)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--vae-steps", type=int, default=400)
    p.add_argument("--gan-steps", type=int, default=600)
    p.add_argument("--kernels", type=int, default=10_000, help="MiniRocket kernels")
    p.add_argument("--n-aug", type=int, default=50)
    p.add_argument("--n-gen", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/synth.json")
    p.add_argument("--gaps-only", action="store_true",
                   help="only the missing-data experiment -> results/synth_gaps.json")
    p.add_argument("--plots", type=Path, default=ROOT / "benchmarks/results/synth")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.gaps_only:
        run_gap_experiment(args.data_dir, out=args.out.with_name("synth_gaps.json"))
        return 0
    res = run_rare_failure(args.data_dir, snrs=args.snrs or [-4.0, 0.0], ks=args.ks or [1, 2], seeds=list(range(args.seeds)),
                           vae_steps=args.vae_steps, gan_steps=args.gan_steps, num_kernels=args.kernels,
                           n_aug=args.n_aug, n_gen=args.n_gen, out=args.out, plot_dir=args.plots)
    args.out.with_suffix(".md").write_text(markdown_table(res))
    print(json.dumps(res["summary"], indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
