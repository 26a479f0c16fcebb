"""``genedge rul ...`` and ``genedge models ...`` commands (Typer apps mounted by ``genedge.cli``).

Heavy imports (torch, Lightning, sktime) happen inside the commands that need them, so
``genedge --help`` and ``genedge models list`` stay fast.

Every command reads the ``models`` section of the settings (``--config`` TOML file, ``GENEDGE_MODELS__*``
environment): the registry is ``models.registry_dir`` unless ``--registry-dir`` says otherwise, and
the training commands take ``models.seed``, ``models.max_epochs`` and ``models.accelerator`` where the
settings set them; an explicit option wins over both. The C-MAPSS benchmark is ``benchmarks/rul.py``.

The training commands (``train``, ``train-sim``, ``train-femto``, and ``quantize``'s training run) are thin
calls into the recipe registry (:mod:`models.recipes`): :func:`_training_run` resolves the options they share.
"""

from __future__ import annotations

import json
import sys
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Annotated, Any, cast

import typer

from core.errors import GenEdgeError, ModelError
from core.inference.card import read_card
from core.inference.registry import SHIPPED_DIR, ModelRegistry, ModelVersion
from core.settings import ModelsSettings, Settings
from genedge._cli_output import emit, fail
from genedge._common import ConfigOpt, DbOpt, load_settings

if TYPE_CHECKING:  # the recipes import torch: the commands import them when they run
    from models.recipes import Recipe

__all__ = ["models_app", "rul_app"]

rul_app = typer.Typer(help="Remaining-useful-life models: train, evaluate, calibrate, quantize.", no_args_is_help=True)
models_app = typer.Typer(help="Model registry: list, promote, roll back.", no_args_is_help=True)

DataDir = Annotated[Path, typer.Option("--data-dir", help="Directory with C-MAPSS text files.")]
Subset = Annotated[str, typer.Option("--subset", help="C-MAPSS subset FD001..FD004.")]
RegistryDir = Annotated[
    Path | None, typer.Option("--registry-dir", help="Model registry directory (default: models.registry_dir of the settings).")
]
MaxEpochs = Annotated[
    int | None, typer.Option(help="Override the default epochs (default: models.max_epochs where the settings set it).")
]
JsonFlag = Annotated[bool, typer.Option("--json", help="Print one JSON line.")]
ProgressFlag = Annotated[
    bool | None,
    typer.Option("--progress/--no-progress", help="Lightning progress bar on stderr (default: on a terminal, without --json)."),
]
PromoteFlag = Annotated[bool, typer.Option(help="Promote the registered version.")]
ModelName = Annotated[str, typer.Argument(help="Model name, e.g. cmapss-FD001.")]


@contextmanager
def _or_fail() -> Iterator[None]:
    """Report a :class:`GenEdgeError` raised inside as ``error: ...`` and exit 1 (every command's one way)."""
    try:
        yield
    except GenEdgeError as err:
        fail(err)


def _settings(config: Path | None, db: str | None = None) -> Settings:
    """The settings (defaults, the ``config`` TOML file, the environment, ``--db``); exits on a bad file or value."""
    try:
        return load_settings(config, db)
    except GenEdgeError as err:
        fail(err)


def _registry_dir(registry_dir: Path | None, config: Path | None) -> Path:
    """``--registry-dir``, else ``models.registry_dir`` of the settings."""
    return registry_dir or _settings(config).models.registry_dir


def _registry(registry_dir: Path | None, config: Path | None) -> ModelRegistry:
    """The registry of ``--registry-dir``, else of the settings."""
    return ModelRegistry(_registry_dir(registry_dir, config))


def _runtime_params(settings: ModelsSettings, model: str = "transformer") -> dict[str, Any]:
    """Estimator runtime parameters the settings set (Lightning's accelerator of the deep models)."""
    accelerator = settings.accelerator
    return {"accelerator": accelerator} if accelerator is not None and model != "minirocket" else {}


@dataclass(frozen=True)
class _Run:
    """A training command's recipe with the options every training command resolves alike.

    Settings left unset (``None``) leave each recipe its own: 25 epochs for C-MAPSS, 30 for the
    simulator and FEMTO; seed 42 for C-MAPSS, 0 for the shipped simulator and FEMTO models.
    """

    recipe: Recipe[Any]
    seed: int
    max_epochs: int | None
    runtime: dict[str, Any]
    registry_dir: Path
    progress_bar: bool

    def train(self, *, model_params: dict[str, Any] | None = None, **options: Any) -> Any:
        """The recipe's :meth:`~models.recipes.Recipe.train` with this run's seed, epochs and runtime."""
        return self.recipe.train(
            seed=self.seed,
            max_epochs=self.max_epochs,
            model_params={**self.runtime, **(model_params or {})},
            progress_bar=self.progress_bar,
            **options,
        )

    def register(self, result: Any, **options: Any) -> ModelVersion:
        """The recipe's :meth:`~models.recipes.Recipe.register` into this run's registry."""
        return self.recipe.register(result, self.registry_dir, **options)


def _training_run(
    recipe: str,
    settings: ModelsSettings,
    *,
    seed: int | None,
    max_epochs: int | None,
    registry_dir: Path | None = None,
    progress: bool | None = None,
    as_json: bool = False,
    model: str = "transformer",
    epochs_from_settings: bool = True,
) -> _Run:
    """Resolve a training command's shared options: an explicit option wins over ``models.*`` of the settings,
    which wins over the recipe's default; the progress bar is on when stderr is a terminal and no JSON is asked."""
    from models.recipes import get_recipe

    with _or_fail():
        found = get_recipe(recipe)
    if max_epochs is None and epochs_from_settings:
        max_epochs = settings.max_epochs
    return _Run(
        recipe=found,
        seed=seed if seed is not None else settings.seed if settings.seed is not None else found.default_seed,
        max_epochs=max_epochs,
        runtime=_runtime_params(settings, model),
        registry_dir=registry_dir or settings.registry_dir,
        progress_bar=progress if progress is not None else not as_json and sys.stderr.isatty(),
    )


def _model_params(model: str, items: list[str]) -> dict[str, Any]:
    """``KEY=VALUE`` items as model hyperparameters (VALUE read as JSON, else kept as text); exits on an unknown KEY."""
    from models.pipeline import make_estimator

    with _or_fail():
        known = make_estimator(model).get_params()
    out: dict[str, Any] = {}
    for item in items:
        key, sep, raw = item.partition("=")
        key = key.strip()
        if not sep or not key:
            fail(GenEdgeError(f"--param takes KEY=VALUE, got {item!r}"))
        if key not in known:
            fail(GenEdgeError(f"{model} has no hyperparameter {key!r}; it has {', '.join(sorted(known))}"))
        try:
            out[key] = json.loads(raw)
        except ValueError:
            out[key] = raw
    return out


def _from_card(path: Path) -> tuple[str, str, int, dict[str, Any]]:
    """A C-MAPSS card's subset, model, seed and ``{"data": ..., "model": ...}``; exits if it is none."""
    from models.pipeline import card_config

    card_path = path / "card.json" if path.is_dir() else path
    try:
        card = read_card(card_path)
        if card.dataset.subset is None or card.seed is None:
            raise ModelError(f"{card_path} is not a C-MAPSS card with a seed: it cannot be trained again")
        return card.dataset.subset, card.model, card.seed, card_config(card)
    except (GenEdgeError, KeyError) as err:
        fail(err)


@rul_app.command("recipes")
def recipes(as_json: JsonFlag = False) -> None:
    """List the training recipes of rul train, train-sim and train-femto: name, registry names, RUL unit, dataset."""
    from models.recipes import recipe_rows

    rows = recipe_rows()
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        typer.echo(f"{r['name']:<10} {', '.join(r['registry_names']):<58} {r['unit']:<6} {r['dataset']}")


@rul_app.command("train")
def train(
    data_dir: DataDir,
    *,
    subset: Subset = "FD001",
    model: Annotated[str, typer.Option(help="transformer | lstm | minirocket")] = "transformer",
    seed: Annotated[
        int | None,
        typer.Option(help="Seed of split, truncations and model (default: models.seed where the settings set it, else 42)."),
    ] = None,
    max_epochs: MaxEpochs = None,
    window: Annotated[int | None, typer.Option(help="Override the window length.")] = None,
    members: Annotated[
        int | None, typer.Option(help="Seed ensemble of this many networks (seeds seed, seed+1, ...), averaged.")
    ] = None,
    folds: Annotated[
        int | None,
        typer.Option(
            min=2,
            help="Cross-fit on every unit: this many networks, each early-stopped on one of as many by-unit "
            "folds it does not train on, averaged; intervals calibrated on their out-of-fold errors (CV+). "
            "--members then counts networks per fold.",
        ),
    ] = None,
    jobs: Annotated[
        int | None,
        typer.Option(
            min=-1,
            help="Processes at once: ensemble members trained in parallel (each with the model's threads; "
            "no progress bar then), MiniRocket's transform jobs; -1: as many as the cores hold. "
            "The result does not depend on it.",
        ),
    ] = None,
    registry_dir: RegistryDir = None,
    config: ConfigOpt = None,
    register: Annotated[bool, typer.Option(help="Export and register the model.")] = True,
    promote: PromoteFlag = False,
    variant: Annotated[
        str, typer.Option(help="Registered variant: fp32 | int8-dynamic | int8-compact | int8-static | fp16 | int4")
    ] = "int8-dynamic",
    from_card: Annotated[
        Path | None,
        typer.Option(help="Reproduce a model card's run: its subset, model, config and seed."),
    ] = None,
    own_units_only: Annotated[
        bool,
        typer.Option(
            "--own-units-only",
            help="Train on the subset's own units only (FD002 and FD004 also train on each other's by default).",
        ),
    ] = False,
    age_channel: Annotated[
        bool | None,
        typer.Option(
            "--age-channel/--no-age-channel",
            help="Give the model each engine's age (its cycle number) as one more input channel "
            "(default: the subset's, or the card's, setting).",
        ),
    ] = None,
    train_stride: Annotated[
        int | None,
        typer.Option(
            min=1,
            help="Train on every Nth window of each training unit (default: the subset's, or the card's; "
            "the FD002/FD004 LSTM and MiniRocket take every 2nd, neighbouring windows sharing all but one "
            "cycle, their transformers every window).",
        ),
    ] = None,
    checkpoint_dir: Annotated[
        Path | None,
        typer.Option(
            help="Save each trained network here at once and reuse those already there (same data and "
            "configuration): an interrupted ensemble fit, run again, trains only the networks it lacks.",
        ),
    ] = None,
    param: Annotated[
        list[str] | None,
        typer.Option(
            "--param",
            help="Set one of the model's hyperparameters, KEY=VALUE (VALUE read as JSON; repeatable), over the "
            "subset's defaults or the card's: --param d_model=64 --param d_ff=128.",
        ),
    ] = None,
    progress: ProgressFlag = None,
    as_json: JsonFlag = False,
) -> None:
    """Train a model on a C-MAPSS subset (validation split by unit) and register it (the cmapss recipe)."""
    model_params: dict[str, Any] = {}
    data_params: dict[str, Any] = {}
    if from_card is not None:  # the card's subset, model, seed and configuration; its own epochs unless --max-epochs
        subset, model, seed, card_cfg = _from_card(from_card)
        model_params, data_params = card_cfg["model"], card_cfg["data"]
    run = _training_run(
        "cmapss",
        _settings(config).models,
        seed=seed,
        max_epochs=max_epochs,
        registry_dir=registry_dir,
        progress=progress,
        as_json=as_json,
        model=model,
        epochs_from_settings=from_card is None,
    )
    model_params.update(run.runtime)  # the settings' runtime over the card's, --param over both
    if param:
        model_params.update(_model_params(model, param))
    if members is not None:
        model_params["n_members"] = members
    if folds is not None:
        data_params["n_folds"] = folds
    if jobs is not None:
        model_params["n_jobs"] = jobs
    if checkpoint_dir is not None:
        if model == "minirocket":
            fail(GenEdgeError("--checkpoint-dir applies to the deep models (transformer, lstm), not minirocket"))
        model_params["checkpoint_dir"] = str(checkpoint_dir)
    if own_units_only:
        data_params["extra_train_subsets"] = []
    if age_channel is not None:
        data_params["age_channel"] = age_channel
    if train_stride is not None:
        data_params["train_stride"] = train_stride
    with _or_fail():
        result = run.train(
            data_dir=data_dir, subset=subset, model=model, window=window, model_params=model_params, data_params=data_params
        )
        out: dict[str, Any] = {"subset": subset, "model": model, "seed": run.seed, **result.metrics}
        if checkpoint_dir is not None:  # seeds of the networks reused from the directory, not trained now
            out["members_loaded"] = list(getattr(result.estimator, "members_loaded_", []))
        if register:
            mv = run.register(result, variant=variant, promote=promote)
            out.update(_registered(mv))
            out["val_rmse_onnx"] = mv.card.metric("val_rmse_onnx")
    emit(out, as_json)


def _registered(mv: ModelVersion) -> dict[str, Any]:
    """What every training command prints of the version it registered."""
    return {"name": mv.name, "version": mv.version, "path": str(mv.model_path)}


@rul_app.command("train-sim")
def train_sim(
    *,
    seed: Annotated[
        int | None,
        typer.Option(
            help="Seed of the simulated units, split, truncations and model "
            "(default: models.seed where the settings set it, else 0)."
        ),
    ] = None,
    units: Annotated[int | None, typer.Option(help="Simulated units (default 200).")] = None,
    max_epochs: MaxEpochs = None,
    registry_dir: RegistryDir = None,
    promote: PromoteFlag = False,
    from_store: Annotated[
        bool,
        typer.Option(
            "--from-store",
            help="Also train on the plant's own runs: each asset's stored feature frames up to every completed "
            "work order that confirmed its fault, and, as healthy examples, its frames at least the model's RUL cap "
            "before one that found no fault (the store of the settings, or --db).",
        ),
    ] = False,
    db: DbOpt = None,
    config: ConfigOpt = None,
    time_scale: Annotated[float | None, typer.Option(
        help="Asset hours per wall-clock hour of the stored frames (default: what the store records, else 1)")] = None,
    progress: ProgressFlag = None,
    as_json: JsonFlag = False,
) -> None:
    """Train the demo plant's RUL model (hours) on simulated run-to-failure units (plus, with --from-store,
    the plant's own runs to confirmed faults) and register it as sim-bearing (the simulator recipe)."""
    settings = _settings(config, db)
    run = _training_run(
        "simulator", settings.models, seed=seed, max_epochs=max_epochs, registry_dir=registry_dir, progress=progress,
        as_json=as_json,
    )
    data = {"n_units": units} if units is not None else {}
    with _or_fail():
        runs = store_plant_runs(settings, {**run.recipe.default_config()["data"], **data}, time_scale) if from_store else ()
        mv = run.register(run.train(data_params=data, extra_runs=runs), promote=promote)
    out = {**_registered(mv), **mv.card.metrics}
    plant_runs = getattr(mv.card.dataset, "plant_runs", [])  # recorded by the simulator recipe (an extra card field)
    out["plant_runs"] = len(plant_runs)
    out["plant_runs_censored"] = sum(bool(r["censored"]) for r in plant_runs)
    emit(out, as_json)


def store_plant_runs(settings: Settings, data_cfg: dict[str, Any], time_scale: float | None) -> tuple[Any, ...]:
    """The plant's own runs to confirmed faults (and healthy inspections) from the store of the settings."""
    from genedge.retrain import store_runs
    from ingest.store import Store, queries

    with Store(settings.store.url.get_secret_value()) as store:
        time_scale = queries.time_scale(store, time_scale if time_scale is not None else settings.store.time_scale)
        return tuple(
            store_runs(
                store,
                step_hours=float(data_cfg["step_hours"]),
                time_scale=time_scale,
                censored_cap=float(data_cfg["rul_cap"]),
            )
        )


@rul_app.command("train-femto")
def train_femto_cmd(
    data_dir: Annotated[Path, typer.Option("--data-dir", help="Folder with the FEMTO Learning_set_BearingX_Y.tar.xz archives.")],
    *,
    bearing: Annotated[
        list[str] | None,
        typer.Option("--bearing", help="Run-to-failure bearing to use (repeat; default 1_1, 2_1 and 3_1; at least two)."),
    ] = None,
    seed: Annotated[
        int | None,
        typer.Option(help="Seed of the shuffling and every model (default: models.seed where the settings set it, else 0)."),
    ] = None,
    max_epochs: MaxEpochs = None,
    name: Annotated[str, typer.Option(help="Registry name.")] = "femto-bearing",
    registry_dir: RegistryDir = None,
    config: ConfigOpt = None,
    promote: PromoteFlag = False,
    progress: ProgressFlag = None,
    as_json: JsonFlag = False,
) -> None:
    """Train the bearing model on the FEMTO run-to-failure bearings (share of life left, %) and register it
    (the femto recipe).

    Each bearing is first predicted by a model trained on the others: those errors are the card's
    quality figures and calibrate the interval. The registered model trains on every bearing.
    """
    run = _training_run(
        "femto", _settings(config).models, seed=seed, max_epochs=max_epochs, registry_dir=registry_dir, progress=progress,
        as_json=as_json,
    )
    options: dict[str, Any] = {"bearings": tuple(bearing)} if bearing else {}
    with _or_fail():
        mv = run.register(run.train(data_dir=data_dir, **options), name=name, promote=promote)
    m = mv.card.metrics
    out: dict[str, Any] = {**_registered(mv), "rul_unit": m["rul_unit"]}
    out.update({k: v for k, v in m.items() if k.startswith(("lobo_", "in_sample_", "int8_"))})
    out["bearings"] = {b: {k: round(v, 3) for k, v in f.items()} for b, f in m["bearings"].items()}
    emit(out, as_json)


@rul_app.command("evaluate")
def evaluate(
    data_dir: DataDir,
    *,
    subset: Subset = "FD001",
    model: Annotated[
        Path | None,
        typer.Option(
            "--model",
            help="Version directory or model.onnx with card.json beside it (default: the promoted shipped model of the subset).",
        ),
    ] = None,
    registry_dir: Annotated[
        Path, typer.Option("--registry-dir", help="Registry of the subset's promoted model (default: the shipped models).")
    ] = SHIPPED_DIR,
    coverage: Annotated[float, typer.Option(help="Nominal interval coverage.")] = 0.9,
    as_json: JsonFlag = False,
) -> None:
    """Score a model on test_FD00X.txt against RUL_FD00X.txt (onnxruntime, no torch)."""
    from core.inference.runtime import OnnxRULPredictor
    from models.evaluation import evaluate_predictor

    with _or_fail():
        predictor = (
            OnnxRULPredictor.from_path(model)
            if model is not None
            else OnnxRULPredictor.from_registry(registry_dir, f"cmapss-{subset}")
        )
        out = evaluate_predictor(predictor, data_dir, subset, coverage=coverage)
    emit(out, as_json)


@rul_app.command("calibrate")
def calibrate(
    data_dir: DataDir,
    *,
    subset: Subset = "FD001",
    registry_dir: RegistryDir = None,
    config: ConfigOpt = None,
    name: Annotated[str | None, typer.Option(help="Registry name (default cmapss-<subset>).")] = None,
    version: Annotated[str | None, typer.Option(help="Version to recalibrate (default: the promoted one).")] = None,
    bins: Annotated[
        str,
        typer.Option(help="Mondrian bin edges on the predicted RUL, comma-separated; empty for one pooled quantile."),
    ] = "40,90",
    promote: PromoteFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Recalibrate a registered model's intervals on its validation cuts (no training) as a new version."""
    from models.pipeline import recalibrate_version, registry_name

    try:
        edges = tuple(float(b) for b in bins.split(",") if b.strip())
    except ValueError:
        fail(GenEdgeError(f"--bins takes comma-separated numbers, got {bins!r}"))
    with _or_fail():
        registry = _registry_dir(registry_dir, config)
        mv = recalibrate_version(registry, name or registry_name(subset), data_dir, version=version, bins=edges, promote=promote)
    m = mv.card.metrics
    cal = mv.card.calibration or {}
    out: dict[str, Any] = {
        "name": mv.name,
        "version": mv.version,
        "recalibrated_from": mv.card.recalibrated_from,
        "promoted": promote,
        "method": cal["method"],
        "bins": cal.get("bins", []),
        "q90": cal.get("bin_q90", [cal["q90"]]),
    }
    out.update({k: round(v, 4) for k, v in m.items() if k.startswith("val_") and ("coverage" in k or "interval" in k)})
    emit(out, as_json)


@rul_app.command("calibrate-sim")
def calibrate_sim(
    *,
    registry_dir: RegistryDir = None,
    config: ConfigOpt = None,
    name: Annotated[str, typer.Option(help="Registry name of the simulator model.")] = "sim-bearing",
    version: Annotated[str | None, typer.Option(help="Version to recalibrate (default: the promoted one).")] = None,
    units: Annotated[int, typer.Option(min=4, max=5000, help="Fresh simulated units per seed.")] = 400,
    seeds: Annotated[str, typer.Option(help="Seeds of the fresh units, comma-separated (not the training seed).")] = "2000,3000",
    bins: Annotated[str, typer.Option(help="Mondrian bin edges on the predicted RUL in hours, comma-separated.")] = "50,120",
    promote: PromoteFlag = False,
    as_json: JsonFlag = False,
) -> None:
    """Recalibrate a simulator model's intervals on freshly simulated units (no training) as a new version."""
    from models.sim_pipeline import recalibrate_sim_version

    try:
        seed_list = tuple(int(x) for x in seeds.split(",") if x.strip())
        edges = tuple(float(b) for b in bins.split(",") if b.strip())
    except ValueError:
        fail(GenEdgeError(f"--seeds takes comma-separated integers and --bins numbers, got {seeds!r} and {bins!r}"))
    with _or_fail():
        registry = _registry_dir(registry_dir, config)
        mv = recalibrate_sim_version(registry, name, version=version, n_units=units, seeds=seed_list, bins=edges,
                                     promote=promote)
    cal = mv.card.calibration or {}
    out: dict[str, Any] = {"name": mv.name, "version": mv.version, "recalibrated_from": mv.card.recalibrated_from,
                           "promoted": promote, "bins": cal.get("bins", []), "q90": cal.get("bin_q90", [cal.get("q90")])}
    out.update({k: round(v, 4) for k, v in mv.card.metrics.items() if k.startswith("fresh_") or k == "calibration_n_units"})
    emit(out, as_json)


@rul_app.command("quantize")
def quantize(
    data_dir: DataDir,
    *,
    subset: Subset = "FD001",
    seed: Annotated[
        int | None, typer.Option(help="Seed of the training run (default: models.seed where the settings set it, else 42).")
    ] = None,
    max_epochs: MaxEpochs = None,
    config: ConfigOpt = None,
    out_dir: Annotated[Path, typer.Option(help="Where to write the ONNX variants.")] = Path("var/quantized"),
    threads: Annotated[int, typer.Option(help="CPU threads for timing.")] = 1,
    as_json: JsonFlag = False,
) -> None:
    """Train, export fp32 ONNX and every compressed variant; print the compression table."""
    from models.export.compare import compression_report
    from models.pipeline import export_variants
    from models.torch_estimator import TorchRULEstimator

    run = _training_run("cmapss", _settings(config).models, seed=seed, max_epochs=max_epochs, as_json=as_json)
    with _or_fail():
        result = run.train(data_dir=data_dir, subset=subset)
        paths = export_variants(result, out_dir / subset)
        rows = compression_report(
            cast("TorchRULEstimator", result.estimator).network,
            paths,
            result.datamodule.X_val,
            result.datamodule.y_val,
            threads=threads,
        )
    if as_json:
        typer.echo(json.dumps({"subset": subset, "rows": rows}, default=float))
        return
    for row in rows:
        typer.echo(
            f"{row['variant']:>18} size={row['size_bytes']!s:>8} "
            f"({row['size_change_pct']:+.1f}%) b1={row['latency_b1_ms']:.3f}ms "
            f"(x{row['speedup_b1']:.1f}) b64={row['latency_b64_ms']:.3f}ms "
            f"(x{row['speedup_b64']:.1f}) rmse={row['rmse']:.3f} ({row['rmse_change_pct']:+.2f}%)"
        )


@models_app.command("list")
def list_models(
    registry_dir: RegistryDir = None,
    config: ConfigOpt = None,
    name: Annotated[str | None, typer.Option(help="Only this model.")] = None,
    as_json: JsonFlag = False,
) -> None:
    """List registered versions (``*`` marks the promoted one)."""
    with _or_fail():
        versions = _registry(registry_dir, config).list(name)
    rows = [
        {
            "name": v.name,
            "version": v.version,
            "promoted": v.promoted,
            "variant": v.card.variant,
            "created_at": v.card.created_at,
            "val_rmse": v.card.metric("val_rmse_onnx"),
        }
        for v in versions
    ]
    if as_json:
        typer.echo(json.dumps(rows))
        return
    for r in rows:
        mark = "*" if r["promoted"] else " "
        typer.echo(f"{mark} {r['name']:<16} {r['version']:<5} {r['variant']!s:<13} val_rmse={r['val_rmse']} {r['created_at']}")


@models_app.command("promote")
def promote(
    name: ModelName,
    version: Annotated[str, typer.Argument(help="Version, e.g. v2.")],
    registry_dir: RegistryDir = None,
    config: ConfigOpt = None,
) -> None:
    """Promote a version: the edge agent loads it next."""
    with _or_fail():
        mv = _registry(registry_dir, config).promote(name, version)
    typer.echo(f"promoted {mv.name} {mv.version}")


@models_app.command("rollback")
def rollback(
    name: ModelName,
    registry_dir: RegistryDir = None,
    config: ConfigOpt = None,
) -> None:
    """Re-promote the previously promoted version."""
    with _or_fail():
        mv = _registry(registry_dir, config).rollback(name)
    typer.echo(f"rolled back {mv.name} to {mv.version}")
