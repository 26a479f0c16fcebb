"""Plants of the simulator as federation clients: their own fault mixes, their own stored runs, FedAvg across them.

The in-process federation averages the plants' weights with Flower's own weighted mean
(``flwr.server.strategy.aggregate.aggregate``). Real SuperNodes of simulator plants, with SecAgg+
and registration, run in ``tests/genedge/test_federate_cli.py`` (``genedge federate sim-client``).
"""

from __future__ import annotations

import dataclasses
import time
from pathlib import Path

import numpy as np
import pytest
from flwr.server.strategy.aggregate import aggregate

from core.errors import ModelError
from core.inference.registry import ModelRegistry
from core.inference.runtime import FeatureRULPredictor
from models.data.arrays import EventRun
from models.data.simulator import FAULT_KINDS, SimulatorDataModule, draw_units, unit_frames
from models.federated.sim_plants import (
    SimPlant,
    SimPlantLearner,
    load_event_runs,
    register_sim_federated,
    save_event_runs,
    sim_plant_learner,
)
from models.sim_pipeline import MODEL_NAME

REPO = Path(__file__).resolve().parents[2]
BEARING = ("outer_race", "inner_race", "ball", "cage")
#: small, quick plants: short runs, coarse frames, one torch thread
SMALL = {"span_hours": 200.0, "step_hours": 10.0, "life_hours": (120.0, 400.0), "window": 6, "batch_size": 64, "num_threads": 1}
PLANTS = (
    SimPlant("bearings", BEARING, n_units=16, seed=1, **SMALL),  # type: ignore[arg-type]
    SimPlant("drives", ("imbalance", "misalignment"), n_units=12, seed=2, **SMALL),  # type: ignore[arg-type]
    SimPlant("mixed", FAULT_KINDS, n_units=12, seed=3, **SMALL),  # type: ignore[arg-type]
)


def _faults(dm: SimulatorDataModule) -> set[str]:
    return {str(u.fault.kind) for u in dm.units} - {"none"}


# --------------------------------------------------------------------------------------- fault mixes


def test_fault_kinds_restrict_the_draws_and_the_default_keeps_them() -> None:
    assert draw_units(40, seed=5, fault_kinds=None) == draw_units(40, seed=5)
    assert {u.fault.kind for u in draw_units(40, seed=5)} - {"none"} == set(FAULT_KINDS)
    only = draw_units(40, seed=5, fault_kinds=("imbalance", "misalignment"))
    assert {u.fault.kind for u in only} == {"none", "imbalance", "misalignment"}
    for bad, match in ((("spalling",), "unknown fault kind"), (("none",), "unknown fault kind"), ((), "at least one"),
                       (("ball", "ball"), "each once")):  # fmt: skip
        with pytest.raises(ModelError, match=match):
            draw_units(3, fault_kinds=bad)
        with pytest.raises(ModelError, match=match):
            SimulatorDataModule(4, fault_kinds=bad)


def test_a_plant_round_trips_through_its_node_config() -> None:
    plant = SimPlant("west", ("ball", "cage"), n_units=9, seed=4, healthy_fraction=0.3, runs_file="/x/runs.npz", **SMALL)  # type: ignore[arg-type]
    cfg = plant.node_config()
    assert cfg["fault-kinds"] == "ball,cage" and cfg["sim-units"] == 9 and cfg["runs-file"] == "/x/runs.npz"
    assert SimPlant.from_node_config(cfg) == plant
    assert SimPlant.from_node_config({"plant": "p", "fault-kinds": "cage"}).fault_kinds == ("cage",)
    with pytest.raises(ModelError, match="'fault-kinds' is missing"):
        SimPlant.from_node_config({"plant": "p"})
    with pytest.raises(ModelError, match="unknown fault kind"):
        SimPlant.from_node_config({"plant": "p", "fault-kinds": "ball,rotor_bar"})
    with pytest.raises(ModelError, match="sim-life-hours"):
        SimPlant.from_node_config({"plant": "p", "fault-kinds": "ball", "sim-life-hours": "100"})


# --------------------------------------------------------------------------------------- stored runs


def _measured_run(name: str, kind: str, seed: int, step_hours: float) -> EventRun:
    """A machine's measured run to a confirmed fault (frames as the gateway computes them)."""
    unit = next(u for u in draw_units(30, seed=seed, span_hours=200.0, life_hours=(150.0, 300.0)) if u.fault.kind == kind)
    t, raw = unit_frames(unit, step_hours=step_hours)
    return EventRun(name, t - t[0], raw, float(unit.fault.life_hours - t[0]))


def test_stored_runs_travel_in_a_file_and_join_only_the_training_windows(tmp_path: Path) -> None:
    runs = (_measured_run("P-101 WO-000017", "outer_race", 8, 10.0), _measured_run("P-102 WO-000021", "ball", 9, 10.0))
    path = save_event_runs(tmp_path / "runs.npz", runs)
    back = load_event_runs(path)
    assert [r.name for r in back] == [r.name for r in runs]
    for a, b in zip(runs, back, strict=True):
        np.testing.assert_array_equal(a.raw, b.raw)
        np.testing.assert_array_equal(a.t_hours, b.t_hours)
        assert (a.event_hours, a.censored) == (b.event_hours, b.censored)
    with pytest.raises(ModelError, match="features"):
        load_event_runs(path, features=(("vib_de", "rms", "log"),))
    with pytest.raises(ModelError, match="missing"):
        load_event_runs(tmp_path / "none.npz")

    plain = SimPlantLearner.from_plant(PLANTS[0])
    with_runs = SimPlantLearner.from_plant(dataclasses.replace(PLANTS[0], runs_file=str(path)))
    frames = sum(r.t_hours.size for r in runs)
    assert with_runs.n_train == plain.n_train + frames, "every frame of a run to a fault ends a training window"
    np.testing.assert_array_equal(with_runs.data.y_val, plain.data.y_val)  # validation stays on simulated units


# --------------------------------------------------------------------------------------- FedAvg in process


@pytest.fixture(scope="module")
def learners() -> list[SimPlantLearner]:
    return [SimPlantLearner.from_plant(p, net_seed=7) for p in PLANTS]


def _val_rmse(learners: list[SimPlantLearner], weights: list[np.ndarray]) -> float:
    """FedAvg's evaluation: the plants' RMSEs weighted by their validation cuts."""
    scores = [lrn.evaluate(weights, {}) for lrn in learners]
    return float(sum(n * loss for loss, n, _ in scores) / sum(n for _, n, _ in scores))


def test_fedavg_across_plants_of_different_fault_mixes_improves(learners: list[SimPlantLearner]) -> None:
    # each plant's data holds its own fault kinds only, with its own normaliser
    assert _faults(learners[0].data) <= set(BEARING) and len(_faults(learners[0].data)) >= 2
    assert _faults(learners[1].data) == {"imbalance", "misalignment"}
    assert len(_faults(learners[2].data)) >= 4
    assert not np.allclose(learners[0].data.normalizer.mean, learners[1].data.normalizer.mean)  # type: ignore[union-attr]
    # identical initial weights on every plant
    start = [lrn.get_parameters() for lrn in learners]
    for other in start[1:]:
        assert all(np.array_equal(a, b) for a, b in zip(start[0], other, strict=True))

    weights, history = start[0], [_val_rmse(learners, start[0])]
    started = time.perf_counter()
    for rnd in range(1, 5):
        fits = [lrn.fit(weights, {"local_epochs": 2, "server_round": rnd, "proximal_mu": 0.0}) for lrn in learners]
        assert [n for _, n, _ in fits] == [lrn.n_train for lrn in learners]
        weights = [np.asarray(a, np.float32) for a in aggregate([(w, n) for w, n, _ in fits])]
        history.append(_val_rmse(learners, weights))
    print(f"4 FedAvg rounds, 3 sim plants: {time.perf_counter() - started:.1f} s; val RMSE (h) {np.round(history, 1)}")
    assert history[-1] < 0.7 * history[0], f"the federated model must learn: {history}"
    assert min(history[2:]) < history[1]


def test_the_federated_weights_are_registered_unpromoted_with_the_plants_fault_mix(
    learners: list[SimPlantLearner], tmp_path: Path
) -> None:
    learner = learners[1]
    weights, _, _ = learner.fit(learner.get_parameters(), {"local_epochs": 1, "server_round": 1})
    federation = {"rounds": 1, "plants": [p.name for p in PLANTS], "strategy": "fedavg", "privacy": None}
    first = register_sim_federated(tmp_path, learner, weights, federation)
    second = register_sim_federated(tmp_path, learner, weights, federation)
    assert (first.name, first.version, second.version) == (MODEL_NAME, "v1", "v2")
    assert not first.promoted and not second.promoted
    card = ModelRegistry(tmp_path).get(MODEL_NAME, "v1").card
    extra = card.model_extra or {}
    assert extra["federation"]["registered_by"] == "drives" and extra["federation"]["plants"] == federation["plants"]
    dataset = card.dataset.model_extra or {}
    assert dataset["plant_fault_kinds"] == ["imbalance", "misalignment"]
    assert set(dataset["fault_kinds"]) <= {"none", "imbalance", "misalignment"}
    # the edge runtime rebuilds the plant's inputs from the card; int8 stays near the torch network
    onnx = FeatureRULPredictor(first.model_path, card).predict_windows(learner.data.X_val)
    assert np.abs(onnx - learner.predict(learner.data.X_val)).max() < 10.0
    assert card.metrics["val_rmse_onnx"] == pytest.approx(card.metrics["val_rmse"], abs=3.0)


def test_the_factory_reads_the_node_and_run_config() -> None:
    learner = sim_plant_learner({**PLANTS[1].node_config(), "data-dir": "/unused"}, {"seed": 7, "local-epochs": 3, "window": 50})
    assert learner.plant == PLANTS[1] and learner.net_seed == 7 and learner.local_epochs == 3
    assert learner.data.X_train.shape[1:] == (learner.data.n_channels, PLANTS[1].window)


# --------------------------------------------------------------------------------------- deployment


def test_a_sim_plant_refuses_a_run_that_asks_for_dp() -> None:
    with pytest.raises(ModelError, match="do not train under DP"):
        sim_plant_learner(PLANTS[0].node_config(), {"seed": 0, "dp-epsilon": 8.0})
