"""What the training recipes (:mod:`models.recipes`) do alike, written once.

* :class:`Recipe`: the interface and its shared part (run options, seed and variant checks); a
  recipe implements ``default_config``, ``_train``, ``_build_card`` and ``_register``;
* :func:`model_card`: the card fields every recipe fills the same way (task, ONNX interface, git
  commit, creation time) around the ones it knows (dataset, preprocessing, calibration, metrics);
* :func:`export_measure_register`: export into a scratch folder, measure the exported files with
  onnxruntime (each recipe its own metrics), register the chosen variant;
* :func:`export_int8_dynamic`: the fp32 + int8 (dynamic) export of the feature-frame models;
* :class:`FeatureTrainResult`: what a feature-frame recipe (simulator, FEMTO) trains.
"""

from __future__ import annotations

import datetime as dt
import tempfile
from abc import ABC, abstractmethod
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, ClassVar, Generic, TypeVar

from core.errors import ModelError
from core.inference.calibration import SplitConformal
from core.inference.card import ModelCard
from core.inference.registry import ModelRegistry, ModelVersion, git_commit
from models.export.onnx import export_onnx, quantize_int8_dynamic

__all__ = [
    "ONNX_INTERFACE",
    "FeatureTrainResult",
    "Recipe",
    "RunOptions",
    "export_int8_dynamic",
    "export_measure_register",
    "model_card",
    "register_recalibrated",
]

#: The exported graph's interface, the same for every recipe (:class:`core.inference.card.OnnxCard`).
ONNX_INTERFACE = {"input": "x", "output": "rul", "layout": "batch, channel, time"}

#: Writes the exported ONNX files into a scratch folder: ``{"fp32": path, variant: path, ...}``.
Exporter = Callable[[Path], dict[str, Path]]
#: Measures the exported files (the card says which variant is registered): metrics for the card.
Measurer = Callable[[dict[str, Path], ModelCard], dict[str, Any]]

DM = TypeVar("DM")
R = TypeVar("R")


@dataclass
class FeatureTrainResult(Generic[DM]):
    """A trained estimator on the edge agent's feature frames, its data module, interval calibrator and metrics."""

    estimator: Any
    datamodule: DM
    conformal: SplitConformal
    config: dict[str, Any]
    seed: int
    metrics: dict[str, Any] = field(default_factory=dict)


def model_card(
    *,
    model: str,
    variant: str,
    dataset: Mapping[str, Any],
    seed: int,
    config: dict[str, Any],
    preprocessing: Mapping[str, Any],
    calibration: Mapping[str, Any],
    metrics: Mapping[str, Any],
) -> ModelCard:
    """A trained model's card, not yet registered: provenance, configuration, preprocessing, calibration, metrics."""
    return ModelCard.from_dict({
        "task": "rul",
        "model": model,
        "variant": variant,
        "dataset": dict(dataset),
        "seed": seed,
        "config": config,
        "preprocessing": dict(preprocessing),
        "calibration": dict(calibration),
        "metrics": dict(metrics),
        "git_commit": git_commit(Path(__file__).resolve().parent),
        "created_at": dt.datetime.now(dt.UTC).isoformat(timespec="seconds"),
        "onnx": dict(ONNX_INTERFACE),
    })


def export_int8_dynamic(network: Any, n_channels: int, window: int, out: Path) -> dict[str, Path]:
    """The network as fp32 ONNX and its int8 (dynamic) quantisation, in ``out``."""
    fp32 = export_onnx(network, n_channels, window, out / "fp32.onnx")
    return {"fp32": fp32, "int8-dynamic": quantize_int8_dynamic(fp32, out / "int8-dynamic.onnx")}


def export_measure_register(
    registry_dir: str | Path,
    name: str,
    card: ModelCard,
    *,
    export: Exporter,
    measure: Measurer,
    promote: bool,
) -> ModelVersion:
    """Export (fp32 and ``card.variant``), add the measured metrics and the fp32 size to ``card``, register the variant.

    Args:
        registry_dir: the model registry.
        name: the registry name.
        card: the trained model's card (:func:`model_card`); its ``variant`` is the file registered.
        export: writes the ONNX files into the scratch folder it gets.
        measure: scores the exported files with onnxruntime; its metrics join the card's.
        promote: promote the new version.
    """
    with tempfile.TemporaryDirectory() as tmp:
        paths = export(Path(tmp))
        card.metrics.update(measure(paths, card))
        card.metrics["fp32_size_bytes"] = paths["fp32"].stat().st_size
        return ModelRegistry(registry_dir).register(name, paths[card.variant], card, promote=promote)


def register_recalibrated(
    registry: ModelRegistry,
    mv: ModelVersion,
    calibration: dict[str, Any],
    metrics: dict[str, Any],
    *,
    promote: bool,
) -> ModelVersion:
    """Register ``mv``'s ONNX file again as a new version whose card has ``calibration`` and ``metrics``.

    Everything else of the card carries over; it records ``recalibrated_from`` and the current commit.
    """
    renewed = ("name", "version", "created_at", "git_commit", "model_sha256")  # the registry writes these anew
    card = {k: v for k, v in mv.card.to_dict().items() if k not in renewed}
    card.update(calibration=calibration, metrics=metrics, recalibrated_from=mv.version,
                git_commit=git_commit(Path(__file__).resolve().parent))
    return registry.register(mv.name, mv.model_path, card, promote=promote)


@dataclass(frozen=True)
class RunOptions:
    """A training run's options as every recipe gets them (the seed resolved, the parameters copied)."""

    recipe: str
    data_dir: Path | None
    seed: int
    max_epochs: int | None
    model_params: dict[str, Any]
    data_params: dict[str, Any]
    progress_bar: bool

    def folder(self) -> Path:
        """The dataset folder (checked by :meth:`Recipe.train` for a recipe that needs one)."""
        if self.data_dir is None:
            raise ModelError(f"the {self.recipe} recipe needs data_dir, got None")
        return self.data_dir

    def train_kwargs(self) -> dict[str, Any]:
        """``seed``, ``data_params``, ``model_params`` (with :attr:`max_epochs` over the config's epochs) and
        ``progress_bar``: the keywords the feature-frame recipes' train functions take."""
        epochs = {"max_epochs": self.max_epochs} if self.max_epochs is not None else {}
        return {
            "seed": self.seed,
            "data_params": self.data_params,
            "model_params": {**self.model_params, **epochs},
            "progress_bar": self.progress_bar,
        }


class Recipe(ABC, Generic[R]):
    """A training recipe: data, model, calibration and metrics that end in a registered, carded model.

    Attributes:
        name: the recipe's key in :data:`models.recipes.RECIPES` (``cmapss``, ``simulator``, ``femto``).
        registry_names: the registry names it writes (by default).
        unit: the unit of the RUL it predicts (``cycles``, ``h``, ``%``).
        dataset: what it trains on, in one line.
        default_seed: the seed of a run that names none (the shipped models').
        needs_data_dir: whether :meth:`train` reads a dataset folder.
        variants: the ONNX variants :meth:`register` can register.
    """

    name: ClassVar[str]
    registry_names: ClassVar[tuple[str, ...]]
    unit: ClassVar[str]
    dataset: ClassVar[str]
    default_seed: ClassVar[int] = 0
    needs_data_dir: ClassVar[bool] = True
    variants: ClassVar[tuple[str, ...]] = ("int8-dynamic",)

    @abstractmethod
    def default_config(self, **options: Any) -> dict[str, Any]:
        """The data and model parameters a run trains with unless told otherwise."""

    def train(
        self,
        *,
        data_dir: str | Path | None = None,
        seed: int | None = None,
        max_epochs: int | None = None,
        model_params: Mapping[str, Any] | None = None,
        data_params: Mapping[str, Any] | None = None,
        progress_bar: bool = False,
        **options: Any,
    ) -> R:
        """Train, calibrate and evaluate.

        Args:
            data_dir: the dataset folder (recipes with :attr:`needs_data_dir`; the others take none).
            seed: the run's seed (``None``: :attr:`default_seed`).
            max_epochs: epochs over the config's (``None``: the config's).
            model_params: estimator parameters over the config's.
            data_params: data module parameters over the config's.
            progress_bar: show Lightning's progress bar.
            options: the recipe's own options (see each recipe's docstring).

        Returns:
            The trained result, its ``metrics`` included.

        Raises:
            ModelError: ``data_dir`` missing where the recipe reads one, or given where it reads none.
        """
        if data_dir is None and self.needs_data_dir:
            raise ModelError(f"the {self.name} recipe needs data_dir ({self.dataset}), got None")
        if data_dir is not None and not self.needs_data_dir:
            raise ModelError(f"the {self.name} recipe reads no dataset folder: data_dir must be None, got {data_dir}")
        run = RunOptions(
            recipe=self.name,
            data_dir=None if data_dir is None else Path(data_dir),
            seed=self.default_seed if seed is None else seed,
            max_epochs=max_epochs,
            model_params=dict(model_params or {}),
            data_params=dict(data_params or {}),
            progress_bar=progress_bar,
        )
        return self._train(run, **options)

    def build_card(self, result: R, *, variant: str = "int8-dynamic") -> ModelCard:
        """The result's card before export (registering adds the ONNX metrics, name and version)."""
        return self._build_card(result, self._checked(variant))

    def register(
        self,
        result: R,
        registry_dir: str | Path,
        *,
        promote: bool = False,
        name: str | None = None,
        variant: str = "int8-dynamic",
    ) -> ModelVersion:
        """Export ``variant``, measure it with onnxruntime, register it as ``name`` (default: the recipe's)."""
        return self._register(result, registry_dir, name=name, promote=promote, variant=self._checked(variant))

    def _checked(self, variant: str) -> str:
        """``variant`` if the recipe exports it; else a :class:`ModelError` naming the ones it does."""
        if variant not in self.variants:
            raise ModelError(f"the {self.name} recipe registers variant one of {self.variants}, got {variant!r}")
        return variant

    @abstractmethod
    def _train(self, run: RunOptions, **options: Any) -> R:
        """Train with the run's options and the recipe's own ``options``."""

    @abstractmethod
    def _build_card(self, result: R, variant: str) -> ModelCard:
        """The card of ``result`` as ``variant`` (checked)."""

    @abstractmethod
    def _register(self, result: R, registry_dir: str | Path, *, name: str | None, promote: bool, variant: str) -> ModelVersion:
        """Export, measure and register ``variant`` (checked) as ``name`` (``None``: the recipe's)."""
