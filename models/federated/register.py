"""A plant registers the federated model in its own registry, beside its own versions.

The federated weights become a model of the plant like any other: exported to ONNX (fp32 and int8),
with the plant's own normaliser as its preprocessing and its 90 % interval calibrated on the plant's
own validation cuts, scored there with onnxruntime. The card says how it was trained: its
``federation`` section records the rounds, the plants, the strategy, secure aggregation and the
privacy budget spent. It is registered under the plant's model name and not promoted: the plant's
engineers compare it with their own version on the Models page and promote it, or keep theirs.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from core.datasets.cmapss import data_hash
from core.errors import ModelError
from core.inference.calibration import SplitConformal
from core.inference.card import ModelCard
from core.inference.registry import ModelVersion
from core.inference.runtime import OnnxRULPredictor
from models._recipe import export_int8_dynamic, export_measure_register, model_card
from models.federated.learner import PlantLearner
from models.federated.plants import PlantDataModule
from models.metrics import phm08_score, rmse
from models.pipeline import registry_name

__all__ = ["federated_card", "register_federated", "register_plant_version"]

VARIANT = "int8-dynamic"


def federated_card(learner: PlantLearner, federation: Mapping[str, Any]) -> ModelCard:
    """The card of the learner's current weights as ``learner``'s plant would register them.

    Args:
        learner: the plant's learner, its network holding the federated weights.
        federation: how the weights were trained (rounds, plants, strategy, secure aggregation,
            privacy); stored as the card's ``federation`` section.
    """
    dm = learner.data
    if not isinstance(dm, PlantDataModule):
        raise ModelError("only a plant's own learner registers a federated model (the pooled reference has no plant)")
    pred = learner.predict(dm.X_val)
    conformal = SplitConformal().fit(dm.y_val, pred)
    cfg = learner.config
    card = model_card(
        model="transformer",
        variant=VARIANT,
        dataset={
            "name": "cmapss",
            "subset": dm.subset,
            "train_file_sha256": data_hash(dm.data_dir, dm.subset),
            "train_units": dm.train_units.tolist(),
            "val_units": dm.val_units.tolist(),
        },
        seed=cfg.seed,
        config={"data": {**cfg.data_kwargs(), "sensors": list(cfg.sensors)}, "model": cfg.net_kwargs()},
        preprocessing=dm.preprocessing_card(),
        calibration=conformal.to_dict(),
        metrics={"val_rmse": rmse(dm.y_val, pred), "val_score": phm08_score(dm.y_val, pred)},
    )
    return ModelCard.from_dict({**card.to_dict(), "federation": {**dict(federation), "registered_by": learner.name}})


def register_federated(
    registry_dir: str | Path,
    learner: PlantLearner,
    parameters: Sequence[np.ndarray],
    federation: Mapping[str, Any],
    *,
    name: str | None = None,
    promote: bool = False,
) -> ModelVersion:
    """Register the federated ``parameters`` as the next version of the plant's model.

    Args:
        registry_dir: the plant's model registry.
        learner: the plant's learner (its data, normaliser and validation cuts).
        parameters: the federation's final weights.
        federation: the card's ``federation`` section (see :func:`federated_card`).
        name: registry name; default the plant's own C-MAPSS model's (``cmapss-<subset>``).
        promote: promote it at once (default: no, the plant's engineers decide).

    Returns:
        The registered version.
    """
    learner.set_parameters(parameters)
    dm = learner.data
    card = federated_card(learner, federation)

    def measure(paths: dict[str, Path], card: ModelCard) -> dict[str, Any]:
        pred = OnnxRULPredictor(paths[VARIANT], card).predict_windows(dm.X_val)
        fp32 = OnnxRULPredictor(paths["fp32"], card).predict_windows(dm.X_val)
        return {"val_rmse_onnx": rmse(dm.y_val, pred), "val_rmse_onnx_fp32": rmse(dm.y_val, fp32),
                "val_score_onnx": phm08_score(dm.y_val, pred)}

    return export_measure_register(
        registry_dir,
        name or registry_name(str(card.dataset.subset)),
        card,
        export=lambda out: export_int8_dynamic(learner.net, dm.n_channels, learner.config.window, out),
        measure=measure,
        promote=promote,
    )


def register_plant_version(
    learner: PlantLearner, registry_dir: str, parameters: Sequence[np.ndarray], federation: Mapping[str, Any]
) -> str:
    """The ClientApp's registrar: register the final weights, unpromoted, under the plant's model name; the version id."""
    return register_federated(registry_dir, learner, parameters, federation).version
