"""A plant registers the federated weights as a version of its own model, with the federation on the card."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from core.inference.registry import ModelRegistry
from core.inference.runtime import OnnxRULPredictor
from models.federated.learner import FederatedConfig, PlantLearner
from models.federated.plants import cmapss_plants
from models.federated.register import register_federated

SMALL = FederatedConfig(window=30, patch_len=5, d_model=16, n_heads=2, n_layers=1, d_ff=32, train_stride=4)


def test_the_federated_model_is_registered_unpromoted_with_its_federation(cmapss_dir: Path, tmp_path: Path) -> None:
    plant = cmapss_plants(cmapss_dir, ("FD001",), seed=0).plants[1]
    learner = PlantLearner.from_plant(cmapss_dir, plant, SMALL)
    weights, _, _ = learner.fit(learner.get_parameters(), {"local_epochs": 2, "server_round": 1})
    federation = {"rounds": 1, "plants": [plant.name], "strategy": "fedavg", "privacy": None}
    mv = register_federated(tmp_path, learner, weights, federation)
    assert mv.name == "cmapss-FD001" and mv.version == "v1" and not mv.promoted
    card = ModelRegistry(tmp_path).get("cmapss-FD001", "v1").card
    extra = card.model_extra or {}
    assert extra["federation"]["registered_by"] == plant.name and extra["federation"]["strategy"] == "fedavg"
    assert card.dataset.train_units == learner.data.train_units.tolist()
    # the edge runtime reproduces the plant's inputs from the card and the int8 file stays near fp32
    torch_pred = learner.predict(learner.data.X_val)
    onnx_pred = OnnxRULPredictor(mv.model_path, card).predict_windows(learner.data.X_val)
    assert np.abs(onnx_pred - torch_pred).max() < 5.0
    assert abs(card.metrics["val_rmse_onnx"] - card.metrics["val_rmse"]) < 1.0
    assert card.calibration is not None
