"""Unit-level DP-SGD of a plant's local training (Opacus), on the real C-MAPSS files."""

from __future__ import annotations

import dataclasses
import math
from pathlib import Path

import numpy as np
import pytest
import torch
from opacus.optimizers import DPOptimizer

from core.errors import ModelError
from models.data.arrays import ArrayDataModule
from models.federated.learner import FederatedConfig, PlantLearner, pooled_learner
from models.federated.plants import Plant, PlantDataModule, cmapss_plants
from models.federated.privacy import PRIVACY_UNIT, PrivacyLedger, UnitLevelDP, unit_window_offsets

#: a small network and short windows: the tests check behaviour, not accuracy
SMALL = FederatedConfig(window=30, patch_len=5, d_model=16, n_heads=2, n_layers=1, d_ff=32, train_stride=4)
SMALL_DP = dataclasses.replace(SMALL, dp_epsilon=3.0, rounds=3)


@pytest.fixture(scope="module")
def plant(cmapss_dir: Path) -> Plant:
    """FD001's middle plant (about 24 units, 19 of them for training)."""
    return cmapss_plants(cmapss_dir, ("FD001",), seed=0).plants[1]


def test_noise_grows_as_epsilon_shrinks() -> None:
    sigmas = [
        PrivacyLedger.plan(n_units=35, epsilon=eps, delta=1e-5, rounds=20, local_epochs=1, max_grad_norm=1.0,
                           units_per_batch=8, windows_per_unit=8).noise_multiplier
        for eps in (8.0, 3.0, 1.0)
    ]
    assert 0 < sigmas[0] < sigmas[1] < sigmas[2]
    more_steps = PrivacyLedger.plan(n_units=35, epsilon=3.0, delta=1e-5, rounds=40, local_epochs=1, max_grad_norm=1.0,
                                    units_per_batch=8, windows_per_unit=8)
    assert more_steps.noise_multiplier > sigmas[1]
    with pytest.raises(ModelError, match="epsilon > 0"):
        PrivacyLedger.plan(n_units=35, epsilon=0.0, delta=1e-5, rounds=1, local_epochs=1, max_grad_norm=1.0,
                           units_per_batch=8, windows_per_unit=8)


def test_planned_rounds_spend_the_budget_and_one_more_is_refused(cmapss_dir: Path, plant: Plant) -> None:
    learner = PlantLearner.from_plant(cmapss_dir, plant, SMALL_DP)
    ledger = learner.privacy
    assert ledger is not None and ledger.units == len(learner.data.train_units)
    assert ledger.planned_steps == 3 * ledger.steps_per_epoch
    start = learner.get_parameters()
    weights, spent = start, []
    for server_round in (1, 2, 3):
        weights, n, metrics = learner.fit(weights, {"server_round": server_round})
        assert n == learner.n_train and math.isfinite(metrics["train_loss"]) and metrics["delta"] == 1e-5
        assert [a.shape for a in weights] == [a.shape for a in start]
        assert all(np.isfinite(a).all() for a in weights)
        spent.append(metrics["epsilon"])
    assert spent == sorted(spent) and spent[0] > 0
    assert 0.95 * SMALL_DP.dp_epsilon <= spent[-1] <= SMALL_DP.dp_epsilon
    assert learner.privacy is not None and learner.privacy.steps == ledger.planned_steps
    assert any(not np.allclose(a, b) for a, b in zip(weights, start, strict=True))
    with pytest.raises(ModelError, match="exceed the privacy budget"):
        learner.fit(weights, {"server_round": 4})
    assert learner.privacy.steps == ledger.planned_steps, "a refused round spends nothing"


def test_a_dp_round_is_repeatable(cmapss_dir: Path, plant: Plant) -> None:
    a, b = (PlantLearner.from_plant(cmapss_dir, plant, SMALL_DP) for _ in range(2))
    wa, _, _ = a.fit(a.get_parameters(), {"server_round": 1})
    wb, _, _ = b.fit(b.get_parameters(), {"server_round": 1})
    assert all(np.array_equal(x, y) for x, y in zip(wa, wb, strict=True))


def test_gradients_are_per_unit_and_clipped_per_unit(cmapss_dir: Path, plant: Plant) -> None:
    learner = PlantLearner.from_plant(cmapss_dir, plant, SMALL)  # no DP: build the unit-level parts here
    dp = UnitLevelDP(learner.net, learner.data.X_train, learner.data.y_train, _offsets(learner))
    dp.windows_per_unit = 4
    units = np.array([0, 3, 7, 11, 15])
    x, y = dp.draw(units, np.random.default_rng(0))
    assert x.shape == (5, 4, *learner.data.X_train.shape[1:]) and y.shape == (5, 4)
    params = list(learner.net.parameters())
    clip = 0.05  # below every unit's gradient norm: every unit is clipped
    optimizer = DPOptimizer(torch.optim.SGD(params, lr=0.0), noise_multiplier=0.0, max_grad_norm=clip,
                            expected_batch_size=5, loss_reduction="mean")
    optimizer.zero_grad()
    learner.net.train()
    ((dp.grad_module(x) - y) ** 2).mean().backward()
    grad_samples = [p.grad_sample for p in params]
    assert all(g.shape[0] == units.size for g in grad_samples), "one gradient per unit, not per window"
    # unit 2's gradient is that of its own mean loss over its windows
    own = torch.autograd.grad(((learner.net.encode(x[2]) - y[2]) ** 2).mean(), params)
    assert all(torch.allclose(g[2], o, atol=1e-6) for g, o in zip(grad_samples, own, strict=True))
    norms = torch.stack([g.reshape(units.size, -1).norm(dim=1) for g in grad_samples], dim=1).norm(dim=1)
    assert (norms > clip).all()
    optimizer.pre_step()
    factor = (clip / (norms + 1e-6)).clamp(max=1.0)
    clipped_norms = norms * factor
    assert (clipped_norms <= clip * (1 + 1e-5)).all()
    for p, g in zip(params, grad_samples, strict=True):
        # the step's gradient is the mean of the per-unit gradients each clipped to the norm
        assert torch.allclose(p.summed_grad, torch.einsum("i,i...", factor, g), atol=1e-7)
        assert p.grad is not None and torch.allclose(p.grad, p.summed_grad / 5, atol=1e-7)


def test_empty_poisson_batches_still_take_a_noisy_step(cmapss_dir: Path, plant: Plant) -> None:
    # one unit per batch on average: about a third of the steps sample no unit at all
    learner = PlantLearner.from_plant(cmapss_dir, plant, dataclasses.replace(SMALL_DP, dp_units_per_batch=1))
    assert learner.privacy is not None and learner.privacy.steps_per_epoch == learner.privacy.units
    _, _, metrics = learner.fit(learner.get_parameters(), {"server_round": 1})
    assert learner.privacy.steps == learner.privacy.steps_per_epoch, "every step is counted, empty or not"
    assert metrics["epsilon"] == pytest.approx(learner.privacy.epsilon_after(learner.privacy.steps))


def test_the_ledger_card_and_the_run_config(cmapss_dir: Path, plant: Plant) -> None:
    ledger = PrivacyLedger.plan(n_units=19, epsilon=1.0, delta=1e-5, rounds=4, local_epochs=2, max_grad_norm=0.5,
                                units_per_batch=8, windows_per_unit=8)
    card = ledger.charge(ledger.steps_per_epoch).to_card()
    for key in ("privacy_unit", "epsilon_target", "epsilon_spent", "delta", "noise_multiplier", "max_grad_norm",
                "sample_rate", "steps", "planned_steps", "accountant"):
        assert key in card
    assert card["privacy_unit"] == PRIVACY_UNIT == "engine run" and card["accountant"] == "rdp"
    assert card["steps"] == ledger.steps_per_epoch and 0 < card["epsilon_spent"] < 1.0
    assert PrivacyLedger.from_card(card) == ledger.charge(ledger.steps_per_epoch)
    cfg = FederatedConfig.from_run_config({"num-server-rounds": 7, "dp-epsilon": 3, "dp-units-per-batch": 4})
    assert (cfg.rounds, cfg.dp_epsilon, cfg.dp_units_per_batch, cfg.dp_delta) == (7, 3.0, 4, 1e-5)
    assert cfg.to_run_config()["num-server-rounds"] == 7 and FederatedConfig.from_run_config(cfg.to_run_config()) == cfg
    with pytest.raises(ModelError, match="dp_epsilon"):
        FederatedConfig(dp_epsilon=-1.0)


def test_dp_is_refused_where_units_are_unknown_or_dropout_is_random(cmapss_dir: Path, plant: Plant) -> None:
    learner = PlantLearner.from_plant(cmapss_dir, plant, SMALL)
    data = ArrayDataModule(learner.data.X_train, learner.data.y_train, learner.data.X_val, learner.data.y_val)
    with pytest.raises(ModelError, match="unit-level DP needs a plant's units"):
        PlantLearner("pooled", data, SMALL_DP)
    assert pooled_learner([learner]).config.dp_epsilon == 0.0
    with pytest.raises(ModelError, match="dropout"):
        PlantLearner.from_plant(cmapss_dir, plant, dataclasses.replace(SMALL_DP, dropout=0.1))


def _offsets(learner: PlantLearner) -> np.ndarray:
    data = learner.data
    assert isinstance(data, PlantDataModule)
    return unit_window_offsets(data.data_dir, data.subset, list(data.train_units), data.train_stride, learner.n_train)
