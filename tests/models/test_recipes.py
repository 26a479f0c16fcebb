"""The recipe registry: the three training recipes behind one interface, each writing a valid typed card.

Each card is built from a set-up data module and a fitted interval, without training a network
(the short real runs of each recipe are in test_models_training, test_models_simulator and
test_models_femto).
"""

from __future__ import annotations

import json
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import numpy as np
import pytest
from typer.testing import CliRunner

from core.errors import ModelError
from core.inference.calibration import SplitConformal
from core.inference.card import ModelCard
from models.data.cmapss import CMAPSSDataModule
from models.data.femto import FEMTO_FEATURES, BearingRun, FEMTODataModule
from models.data.simulator import SimulatorDataModule
from models.femto_pipeline import FemtoTrainResult, default_femto_config
from models.pipeline import TrainResult, default_config
from models.recipes import RECIPES, get_recipe, recipe_rows
from models.sim_pipeline import SimTrainResult, default_sim_config


def _conformal(y: np.ndarray) -> SplitConformal:
    return SplitConformal().fit(y, y + np.random.default_rng(0).normal(0.0, 5.0, y.size))


def _cmapss_result(cmapss_dir: Path) -> TrainResult:
    config = default_config("FD001", "lstm")
    dm = CMAPSSDataModule(cmapss_dir, "FD001", seed=0, **config["data"])
    dm.setup()
    estimator: Any = SimpleNamespace(conformal_=_conformal(dm.y_val))
    return TrainResult("lstm", "FD001", 0, estimator, dm, config, metrics={"val_rmse": 12.5})


def _sim_result() -> SimTrainResult:
    config = default_sim_config()
    config["data"].update(n_units=8, window=4, step_hours=20.0, n_val_cuts=2)
    dm = SimulatorDataModule(seed=3, **config["data"])
    dm.setup()
    return SimTrainResult(None, dm, _conformal(dm.y_val), config, 3, metrics={"val_rmse": 20.0, "rul_unit": "h"})


def _femto_result(tmp_path: Path) -> FemtoTrainResult:
    rng = np.random.default_rng(0)
    runs = {}
    for name, n in (("1_1", 40), ("2_1", 30)):
        t = np.arange(n) * 10.0 / 3600.0
        runs[name] = BearingRun(name, t, rng.normal(size=(n, len(FEMTO_FEATURES))), float(t[-1]))
    config = default_femto_config()
    config["data"].update(window=5)
    dm = FEMTODataModule(tmp_path, None, train_bearings=("1_1", "2_1"), runs=runs, **config["data"])
    dm.setup()
    return FemtoTrainResult(None, dm, _conformal(dm.y_train), config, 0, metrics={"rul_unit": "%"})


def test_the_registry_holds_the_three_recipes() -> None:
    assert set(RECIPES) == {"cmapss", "simulator", "femto"}
    assert all(get_recipe(name).name == name for name in RECIPES)
    assert RECIPES["cmapss"].registry_names == ("cmapss-FD001", "cmapss-FD002", "cmapss-FD003", "cmapss-FD004")
    assert (RECIPES["simulator"].registry_names, RECIPES["femto"].registry_names) == (("sim-bearing",), ("femto-bearing",))
    assert {r.name: r.unit for r in RECIPES.values()} == {"cmapss": "cycles", "simulator": "h", "femto": "%"}
    assert {r.name: r.default_seed for r in RECIPES.values()} == {"cmapss": 42, "simulator": 0, "femto": 0}
    # each recipe's default configuration is its pipeline's
    assert get_recipe("cmapss").default_config(subset="FD002") == default_config("FD002")
    assert get_recipe("simulator").default_config() == default_sim_config()
    assert get_recipe("femto").default_config() == default_femto_config()


def test_an_unknown_recipe_is_a_clear_error() -> None:
    with pytest.raises(ModelError, match=r"recipe must be one of \['cmapss', 'femto', 'simulator'\], got 'cwru'"):
        get_recipe("cwru")


def test_each_recipe_builds_a_valid_card(cmapss_dir: Path, tmp_path: Path) -> None:
    results = {"cmapss": _cmapss_result(cmapss_dir), "simulator": _sim_result(), "femto": _femto_result(tmp_path)}
    cards = {name: RECIPES[name].build_card(result) for name, result in results.items()}
    for name, card in cards.items():
        assert isinstance(card, ModelCard), name
        again = ModelCard.from_dict(json.loads(json.dumps(card.to_dict())))  # what card.json holds reads back
        assert again.to_dict() == card.to_dict(), name
        # the fields every recipe fills alike
        assert (card.task, card.variant, card.seed) == ("rul", "int8-dynamic", results[name].seed), name
        assert card.created_at, name
        assert (card.onnx.input, card.onnx.output, card.onnx.layout) == ("x", "rul", "batch, channel, time"), name
        assert card.config == results[name].config and card.calibration is not None, name
        assert card.metrics == results[name].metrics, name
    assert cards["cmapss"].dataset.name == "cmapss" and cards["cmapss"].dataset.subset == "FD001"
    assert cards["cmapss"].rul_unit == "cycles" and not cards["cmapss"].is_feature_model
    assert cards["simulator"].dataset.name == "simulator" and cards["simulator"].rul_unit == "h"
    assert getattr(cards["simulator"].dataset, "plant_runs", None) == []
    assert cards["femto"].dataset.name == "femto" and cards["femto"].rul_unit == "%"
    assert cards["femto"].calibration is not None and cards["femto"].calibration["source"].startswith("leave-one-bearing")
    assert RECIPES["cmapss"].build_card(results["cmapss"], variant="int8-compact").variant == "int8-compact"


def test_a_variant_the_recipe_does_not_export_is_refused(tmp_path: Path) -> None:
    result = _sim_result()
    with pytest.raises(ModelError, match=r"simulator recipe registers variant one of \('int8-dynamic',\), got 'fp16'"):
        RECIPES["simulator"].build_card(result, variant="fp16")
    with pytest.raises(ModelError, match="got 'fp16'"):
        RECIPES["simulator"].register(result, tmp_path, variant="fp16")
    assert not any(tmp_path.iterdir()), "nothing registered"


def test_data_dir_is_checked_before_training(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="cmapss recipe needs data_dir"):
        get_recipe("cmapss").train()
    with pytest.raises(ModelError, match="femto recipe needs data_dir"):
        get_recipe("femto").train()
    with pytest.raises(ModelError, match="simulator recipe reads no dataset folder"):
        get_recipe("simulator").train(data_dir=tmp_path)


def test_cli_lists_the_recipes() -> None:
    from genedge.cli import app

    res = CliRunner().invoke(app, ["rul", "recipes", "--json"])
    assert res.exit_code == 0, res.output
    assert json.loads(res.stdout) == recipe_rows()
    assert [r["name"] for r in json.loads(res.stdout)] == ["cmapss", "simulator", "femto"]
    res = CliRunner().invoke(app, ["rul", "recipes"])
    assert res.exit_code == 0 and "sim-bearing" in res.output and "femto-bearing" in res.output

