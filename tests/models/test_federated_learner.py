"""Plants of a federation and a plant's local learner, on the real C-MAPSS files."""

# ruff: noqa: N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import ModelError
from models.federated.learner import FederatedConfig, PlantLearner, pooled_learner
from models.federated.plants import DEFAULT_SENSORS, Plant, PlantDataModule, cmapss_plants

#: a small network and short windows: the tests check behaviour, not accuracy
SMALL = FederatedConfig(window=30, patch_len=5, d_model=16, n_heads=2, n_layers=1, d_ff=32, train_stride=4)


def test_plants_are_disjoint_uneven_and_leave_the_evaluation_units_out(cmapss_dir: Path) -> None:
    split = cmapss_plants(cmapss_dir, ("FD001", "FD003"), seed=3)
    assert [p.name for p in split.plants] == ["FD001-a", "FD001-b", "FD001-c", "FD003-a", "FD003-b", "FD003-c"]
    for subset in ("FD001", "FD003"):
        owned = [set(p.units) for p in split.plants if p.subset == subset]
        sizes = [len(u) for u in owned]
        assert sizes == sorted(sizes, reverse=True) and sizes[0] >= 3 * sizes[-1]
        assert sum(sizes) == len(set().union(*owned)), "a unit is owned by two plants"
        assert not set(split.eval_units[subset]) & set().union(*owned)
        assert sum(sizes) + len(split.eval_units[subset]) == 100
    assert cmapss_plants(cmapss_dir, ("FD001", "FD003"), seed=3) == split


def test_one_federation_cannot_mix_one_and_six_condition_fleets(cmapss_dir: Path) -> None:
    with pytest.raises(ModelError, match="operating conditions"):
        cmapss_plants(cmapss_dir, ("FD001", "FD002"))


def test_a_plant_reads_only_its_own_units_with_the_federations_sensors(cmapss_dir: Path) -> None:
    plant = Plant("p", "FD001", tuple(range(1, 11)))
    dm = PlantDataModule(cmapss_dir, plant, window=30, age_channel=True)
    dm.setup()
    assert set(dm.train_units) | set(dm.val_units) == set(plant.units)
    assert not set(dm.train_units) & set(dm.val_units)
    assert dm.X_train.shape[1] == len(DEFAULT_SENSORS) + 1  # the sensors and the age
    assert dm.normalizer is not None and dm.normalizer.sensor_index.tolist() == [s - 1 for s in DEFAULT_SENSORS]
    X, y = dm.cuts_of([50, 51], n_cuts=3, seed=0)
    assert X.shape == (6, dm.X_train.shape[1], 30) and (y <= 125).all()
    with pytest.raises(ModelError, match="does not have"):
        PlantDataModule(cmapss_dir, Plant("q", "FD001", (1, 999)), window=30).setup()


def test_node_config_round_trip_and_errors(cmapss_dir: Path) -> None:
    plant = Plant("FD003-b", "FD003", (4, 8, 15))
    assert Plant.from_node_config(plant.node_config(cmapss_dir)) == plant
    with pytest.raises(ModelError, match="'units'"):
        Plant.from_node_config({"plant": "x", "subset": "FD001"})
    with pytest.raises(ModelError, match="comma-separated"):
        Plant.from_node_config({"plant": "x", "subset": "FD001", "units": "1,two"})
    cfg = FederatedConfig(local_epochs=3, sensors=(2, 3, 4), dropout=0.1)
    assert FederatedConfig.from_run_config(cfg.to_run_config()) == cfg
    assert FederatedConfig.from_run_config({"local-epochs": 2, "num-server-rounds": 5}).local_epochs == 2


def test_plants_start_from_the_same_weights_and_a_round_moves_them(cmapss_dir: Path) -> None:
    split = cmapss_plants(cmapss_dir, ("FD001",), seed=0)
    big, small = (PlantLearner.from_plant(cmapss_dir, p, SMALL) for p in (split.plants[0], split.plants[2]))
    start = big.get_parameters()
    assert all(np.array_equal(a, b) for a, b in zip(start, small.get_parameters(), strict=True))
    assert sum(a.size for a in start) == big.n_parameters
    trained, n, metrics = small.fit(start, {"server_round": 1})
    assert n == small.n_train and np.isfinite(metrics["train_loss"])
    assert [a.shape for a in trained] == [a.shape for a in start]
    assert any(not np.allclose(a, b) for a, b in zip(trained, start, strict=True))
    again, _, _ = small.fit(start, {"server_round": 1})
    assert all(np.array_equal(a, b) for a, b in zip(trained, again, strict=True)), "a round is repeatable"
    rmse, n_val, m = small.evaluate(trained, {})
    assert n_val == small.data.y_val.shape[0] and m["rmse"] == rmse and 0 < rmse < 200


def test_the_proximal_term_keeps_a_plant_near_the_global_weights(cmapss_dir: Path) -> None:
    plant = cmapss_plants(cmapss_dir, ("FD001",), seed=0).plants[1]
    learner = PlantLearner.from_plant(cmapss_dir, plant, SMALL)
    start = learner.get_parameters()

    def drift(mu: float) -> float:
        w, _, _ = learner.fit(start, {"proximal_mu": mu, "local_epochs": 2, "server_round": 1})
        return float(np.sqrt(sum(((a - b) ** 2).sum() for a, b in zip(w, start, strict=True))))

    assert drift(10.0) < 0.5 * drift(0.0)


def test_wrong_weights_are_refused_and_pooling_concatenates_the_plants(cmapss_dir: Path) -> None:
    split = cmapss_plants(cmapss_dir, ("FD001",), seed=0)
    learners = [PlantLearner.from_plant(cmapss_dir, p, SMALL) for p in split.plants]
    params = learners[0].get_parameters()
    with pytest.raises(ModelError, match="weight arrays"):
        learners[0].set_parameters(params[:-1])
    with pytest.raises(ModelError, match="shape"):
        learners[0].set_parameters([np.zeros((2, 2), np.float32), *params[1:]])
    pooled = pooled_learner(learners)
    assert pooled.n_train == sum(lr.n_train for lr in learners)
    assert pooled.data.y_val.shape[0] == sum(lr.data.y_val.shape[0] for lr in learners)
