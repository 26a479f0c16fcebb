"""``genedge synth ...``: train a generator, sample from it, run the quality gate (Typer app mounted by ``genedge.cli``).

Heavy imports (torch, Lightning, sktime) happen inside the commands.
"""

# ruff: noqa: N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import pickle
from pathlib import Path
from typing import Annotated, Any

import typer

from core.errors import GenEdgeError
from genedge._cli_output import emit, fail

__all__ = ["synth_app"]

synth_app = typer.Typer(help="Generative models of sensor windows: train, sample, quality gate.", no_args_is_help=True)

DataDir = Annotated[Path, typer.Option("--data-dir", help="Folder with the cwru/ data set (or the cwru folder).")]
ModelPath = Annotated[Path, typer.Option("--model-path", help="Pickled generator written by `genedge synth train`.")]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON line.")]






def _load(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise typer.BadParameter(f"no model file at {path}")
    with path.open("rb") as fh:
        bundle: dict[str, Any] = pickle.load(fh)
    if "generator" not in bundle:
        raise typer.BadParameter(f"{path} is not a `genedge synth train` file")
    return bundle


def _label(value: str, names: list[str]) -> int:
    if value.isdigit():
        return int(value)
    if value in names:
        return names.index(value)
    raise typer.BadParameter(f"--label must be 0..{len(names) - 1} or one of {names}, got {value!r}")


@synth_app.command("train")
def train(
    data_dir: DataDir,
    out: Annotated[Path, typer.Option("--out", help="Where to write the pickled generator.")],
    *,
    model: Annotated[str, typer.Option(help="physics (physics-informed VAE) | vae | gan")] = "vae",
    k: Annotated[int, typer.Option(help="Real fault windows per class (all normal windows are used); 0 = all.")] = 2,
    snr: Annotated[float | None, typer.Option(help="White noise SNR in dB added to the windows; omit for clean.")] = -4.0,
    steps: Annotated[int | None, typer.Option(help="Training batches (default: the model's).")] = None,
    seed: Annotated[int, typer.Option(help="Seed of the few-shot draw and of training.")] = 0,
    threads: Annotated[int, typer.Option(help="torch CPU threads.")] = 1,
    progress: Annotated[bool, typer.Option("--progress/--no-progress", help="Lightning progress bar.")] = True,
    as_json: JsonFlag = False,
) -> None:
    """Train a conditional VAE, WGAN-GP or physics-informed VAE on CWRU windows (first half of each recording only)."""
    from synth import ConditionalVAE, ConditionalWGAN, few_shot, load_cwru, make_generator

    try:
        data = load_cwru(data_dir, snr_db=snr, max_normal_train=200)
        X, y = (data.X_train, data.y_train) if k == 0 else few_shot(data.X_train, data.y_train, k, seed=seed)[:2]
        names = {"physics": "physics_vae", "vae": "vae", "gan": "gan"}
        if model not in names:
            raise typer.BadParameter(f"--model must be physics, vae or gan, got {model!r}")
        defaults = {"physics_vae": 800, "vae": ConditionalVAE().n_steps, "gan": ConditionalWGAN().n_steps}
        n_steps = steps if steps is not None else defaults[names[model]]
        # the CWRU configuration of each generator (conditions, kinematics, measurement SNR)
        gen: Any = make_generator(names[model], seed=seed, snr=snr, steps={names[model]: n_steps})
        gen.set_params(num_threads=threads, progress_bar=progress)
        gen.fit(X, y)
    except GenEdgeError as err:
        fail(err)
    out.parent.mkdir(parents=True, exist_ok=True)
    bundle = {"generator": gen, "class_names": data.class_names, "snr_db": snr, "k": k, "seed": seed, "fs": data.fs}
    with out.open("wb") as fh:
        pickle.dump(bundle, fh)
    emit({"model": model, "out": str(out), "windows": int(X.shape[0]), "k": k, "snr_db": snr}, as_json, width=22)


@synth_app.command("sample")
def sample(
    model_path: ModelPath,
    out: Annotated[Path, typer.Option("--out", help="Where to write the windows (.npy, shape (n, channels, length)).")],
    *,
    n: Annotated[int, typer.Option(help="Windows to draw.")] = 100,
    label: Annotated[str, typer.Option(help="Class label (0..9) or name, e.g. inner_014.")] = "inner_014",
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Draw synthetic windows of one class."""
    import numpy as np
    from rich.progress import Progress

    bundle = _load(model_path)
    gen = bundle["generator"]
    lab = _label(label, bundle["class_names"])
    chunks = []
    try:
        with Progress(transient=True) as bar:
            task = bar.add_task("sampling", total=n)
            for i, start in enumerate(range(0, n, 256)):
                m = min(256, n - start)
                chunks.append(gen.sample(m, lab, random_state=seed + i))
                bar.advance(task, m)
    except GenEdgeError as err:
        fail(err)
    X = np.concatenate(chunks) if chunks else np.empty((0, gen.n_channels_, gen.window_), dtype=np.float32)
    out.parent.mkdir(parents=True, exist_ok=True)
    np.save(out, X)
    emit({"out": str(out), "shape": list(X.shape), "label": lab, "class": bundle["class_names"][lab]}, as_json, width=22)


@synth_app.command("evaluate")
def evaluate(
    model_path: ModelPath,
    data_dir: DataDir,
    *,
    report_dir: Annotated[Path, typer.Option("--report-dir", help="Folder for report.json and PNG plots.")] = Path(
        "synth_report"),
    per_class: Annotated[int, typer.Option(help="Real (first-half) and synthetic windows per fault class.")] = 40,
    seed: Annotated[int, typer.Option(help="Sampling seed.")] = 0,
    as_json: JsonFlag = False,
) -> None:
    """Quality gate of a trained generator against real first-half fault windows; JSON + PNG report."""
    import numpy as np
    from rich.progress import Progress

    from synth import CWRU_SHAFT_HZ, QualityGate, cwru_defect_frequencies, load_cwru

    bundle = _load(model_path)
    gen = bundle["generator"]
    try:
        with Progress(transient=True) as bar:
            task = bar.add_task("loading data", total=3)
            data = load_cwru(data_dir, snr_db=bundle["snr_db"], max_normal_train=200)
            idx = np.concatenate([np.flatnonzero(data.y_train == c)[:per_class] for c in range(1, 10)])
            bar.update(task, advance=1, description="sampling")
            y_syn = np.repeat(np.arange(1, 10), per_class)
            X_syn = gen.sample(y_syn.size, y_syn, random_state=seed)
            bar.update(task, advance=1, description="quality gate")
            gate = QualityGate(fs=data.fs, defect_frequencies=cwru_defect_frequencies(), shaft_hz=CWRU_SHAFT_HZ)
            report = gate.evaluate(data.X_train[idx], data.y_train[idx], X_syn, y_syn, plot_dir=report_dir)
            bar.update(task, advance=1)
    except GenEdgeError as err:
        fail(err)
    report.save(report_dir / "report.json")
    emit({"passed": report.passed, "discriminative_score": round(report.discriminative_score, 4),
           "predictive_score": round(report.predictive_score, 4), "mmd": round(report.mmd, 4),
           "spectral_passed": report.spectral_passed, "failures": report.failures,
           "report": str(report_dir / "report.json")}, as_json)
    if not report.passed:
        raise typer.Exit(code=2)
