"""Rare-failure experiment on CWRU: real vs classical augmentation vs generated samples.

What the committed results/synth.json holds (physics-informed VAE, 5 seeds, SNR -4 and 0 dB, k 1 and 2;
about 50 min per SNR on 2 busy CPU cores; the exact settings are in its ``meta``)::

    python benchmarks/synth.py --seeds 5 --snr -4 --snr 0 --kernels 2016

(it was run as one process per SNR, ``--snr -4`` and ``--snr 0`` with ``--out`` to two files, merged
afterwards: every run is seeded on its own, so the split does not change the numbers.)

The convolutional VAE and WGAN-GP as well (about 3.5 min more per run; results/synth_conv.json holds
their last run)::

    python benchmarks/synth.py --seeds 5 --kernels 2016 --generator physics_vae --generator vae --generator gan

Missing-data synthesis (gap filling by the conditional VAE vs linear interpolation)::

    python benchmarks/synth.py --gaps-only

C-MAPSS FD001 RUL with 10 % of the training units, with and without synthetic late-life windows
(written to ``results/synth_rul.json`` and merged into ``results/synth.json`` under ``rul_cmapss``)::

    python benchmarks/synth.py --rul-only --seeds 5

Writes ``benchmarks/results/synth.json`` (after every run), ``benchmarks/results/synth.md`` (the
README table) and small PNGs under ``benchmarks/results/synth/`` (for looking at; not committed).
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
if str(ROOT) not in sys.path:
    sys.path.insert(0, str(ROOT))

from benchmarks._synth_harness import markdown_table, run_gap_experiment, run_rare_failure  # noqa: E402


def _merge(path: Path, key: str, value: object) -> None:
    data = json.loads(path.read_text()) if path.is_file() else {}
    data[key] = value
    path.write_text(json.dumps(data, indent=1, default=float))


def main(argv: list[str] | None = None) -> int:
    """Parse arguments, run, write the JSON and Markdown results."""
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--data-dir", type=Path, default=ROOT.parent / "shared/datasets")
    p.add_argument("--snr", type=float, action="append", dest="snrs", help="dB; repeat (default -4 and 0)")
    p.add_argument("--k", type=int, action="append", dest="ks", help="real fault windows per class; repeat (default 1 and 2)")
    p.add_argument("--seeds", type=int, default=5)
    p.add_argument("--vae-steps", type=int, default=400)
    p.add_argument("--gan-steps", type=int, default=600)
    p.add_argument("--physics-steps", type=int, default=800)
    p.add_argument(
        "--generator",
        action="append",
        dest="generators",
        choices=["physics_vae", "vae", "gan"],
        help="repeat; default physics_vae only (the convolutional VAE / WGAN-GP cost ~3.5 min a run)",
    )
    p.add_argument("--kernels", type=int, default=10_000, help="MiniRocket kernels")
    p.add_argument("--n-aug", type=int, default=50)
    p.add_argument("--n-gen", type=int, default=50)
    p.add_argument("--threads", type=int, default=1)
    p.add_argument("--out", type=Path, default=ROOT / "benchmarks/results/synth.json")
    p.add_argument("--gaps-only", action="store_true", help="only the missing-data experiment -> results/synth_gaps.json")
    p.add_argument(
        "--rul-only",
        action="store_true",
        help="only the C-MAPSS FD001 RUL experiment -> results/synth_rul.json (+ synth.json['rul_cmapss'])",
    )
    p.add_argument("--rul-vae-steps", type=int, default=1500)
    p.add_argument("--rul-generator", choices=["trend_vae", "conv_vae"], default="trend_vae")
    p.add_argument("--plots", type=Path, default=ROOT / "benchmarks/results/synth")
    args = p.parse_args(argv)
    import torch

    torch.set_num_threads(args.threads)
    if args.rul_only:
        from benchmarks._synth_rul_harness import run_rul_experiment

        rul_out = args.out.with_name("synth_rul.json")
        rul = run_rul_experiment(
            args.data_dir / "cmapss",
            seeds=list(range(args.seeds)),
            vae_steps=args.rul_vae_steps,
            generator=args.rul_generator,
            out=rul_out,
        )
        _merge(args.out, "rul_cmapss", rul)
        print(json.dumps(rul["summary"], indent=1))
        return 0
    if args.gaps_only:
        run_gap_experiment(args.data_dir, out=args.out.with_name("synth_gaps.json"))
        return 0
    previous = json.loads(args.out.read_text()) if args.out.is_file() else {}
    res = run_rare_failure(
        args.data_dir,
        snrs=args.snrs or [-4.0, 0.0],
        ks=args.ks or [1, 2],
        seeds=list(range(args.seeds)),
        vae_steps=args.vae_steps,
        gan_steps=args.gan_steps,
        physics_steps=args.physics_steps,
        generators=args.generators or ["physics_vae"],
        num_kernels=args.kernels,
        n_aug=args.n_aug,
        n_gen=args.n_gen,
        out=args.out,
        plot_dir=args.plots,
    )
    if "rul_cmapss" in previous:  # the RUL experiment is run separately (--rul-only); keep its result
        _merge(args.out, "rul_cmapss", previous["rul_cmapss"])
        res["rul_cmapss"] = previous["rul_cmapss"]
    args.out.with_suffix(".md").write_text(markdown_table(res))
    print(json.dumps(res["summary"], indent=1, default=float))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
