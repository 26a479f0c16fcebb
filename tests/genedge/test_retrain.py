"""Retraining from the plant's store: stored feature frames up to a confirmed fault become a training run."""

from __future__ import annotations

import json
from datetime import timedelta
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from core.inference.card import read_card
from core.sim import FaultSpec, default_plant
from genedge.retrain import store_runs
from genedge.rul_cli import rul_app
from ingest.store import Store
from models.data.simulator import SimulatorDataModule, SimUnit, unit_frames
from prescribe import workorders as wo
from prescribe.evidence import from_simulator
from prescribe.prescriber import Prescriber
from tests.genedge._store_runs import LIFE_H, T0, feature_frame


def test_store_frames_up_to_a_confirmed_fault_become_one_run(plant_store: tuple[str, np.ndarray, np.ndarray]) -> None:
    url, t, raw = plant_store
    with Store(url) as store:
        runs = store_runs(store, step_hours=4.0)
    assert len(runs) == 1
    run = runs[0]
    assert run.name.startswith("P-101 WO-")
    # one frame per 4 h step (the first of each), only before the repair
    before = t < LIFE_H
    np.testing.assert_allclose(run.t_hours, t[before][::2])
    np.testing.assert_allclose(run.raw, raw[before][::2], rtol=1e-9)
    assert run.event_hours == pytest.approx(LIFE_H)
    rul = run.rul_hours(150.0)
    assert rul[0] == 150.0 and rul[-1] == pytest.approx(LIFE_H - run.t_hours[-1])
    # the demo's clock: 10 asset hours per wall hour spreads the same frames ten times wider
    with Store(url) as store:
        fast = store_runs(store, step_hours=40.0, time_scale=10.0)
    np.testing.assert_allclose(fast[0].t_hours, 10.0 * run.t_hours)


def test_store_runs_join_training_only(plant_store: tuple[str, np.ndarray, np.ndarray]) -> None:
    url, _, _ = plant_store
    with Store(url) as store:
        runs = tuple(store_runs(store, step_hours=10.0))
    small = {"n_units": 6, "window": 6, "step_hours": 10.0, "span_hours": 100.0, "life_hours": (80.0, 200.0), "seed": 3}
    plain = SimulatorDataModule(**small)  # type: ignore[arg-type]
    with_plant = SimulatorDataModule(**small, extra_runs=runs)  # type: ignore[arg-type]
    plain.setup()
    with_plant.setup()
    n = runs[0].t_hours.size
    assert with_plant.X_train.shape[0] == plain.X_train.shape[0] + n
    np.testing.assert_allclose(with_plant.y_train[-n:], runs[0].rul_hours(with_plant.rul_cap))
    np.testing.assert_array_equal(with_plant.y_val, plain.y_val)  # validation stays simulated
    assert with_plant.X_train.shape[1:] == plain.X_train.shape[1:]


def test_an_inspection_that_found_nothing_labels_the_frames_a_cap_before_it_healthy(tmp_path: Path) -> None:
    """A work order completed with "not confirmed": the machine was healthy then, so its RUL at every frame at
    least a cap before is at least the cap. Those frames become healthy training windows (target = cap)."""
    plant = {a.asset_id: a for a in default_plant()}
    unit = SimUnit(0, plant["P-101"], FaultSpec(), seed=9, ambient_c=25.0, start_hours=0.0, end_hours=400.0)
    t, raw = unit_frames(unit, step_hours=2.0, snapshot_samples=6400)
    url = f"sqlite:///{tmp_path / 'healthy.db'}"
    inspected = T0 + timedelta(hours=380.0)
    with Store(url) as store:
        store.upsert_assets(plant.values())
        frames = enumerate(zip(t, raw, strict=True))
        store.write([(feature_frame(i, T0 + timedelta(hours=float(h)), r), T0) for i, (h, r) in frames])
        # a false alarm: the prescriber saw an outer-race fault and drafted an inspection, which found nothing
        suspected = FaultSpec(kind="outer_race", onset_hours=60.0, life_hours=LIFE_H)
        rec = Prescriber().recommend(from_simulator(plant["P-101"], suspected, 180.0, seed=3))
        draft = wo.save_draft(store, rec, at=inspected - timedelta(hours=20))
        wo.approve(store, draft.id, "olga", at=inspected - timedelta(hours=19))
        wo.complete(store, draft.id, "tom", found="none", fault_confirmed=False, at=inspected)
    with Store(url) as store:
        assert store_runs(store, step_hours=10.0) == [], "without the model's cap an inspection labels nothing"
        (run,) = store_runs(store, step_hours=10.0, censored_cap=150.0)
        assert store_runs(store, step_hours=10.0, censored_cap=400.0) == [], "no frame a whole cap before it"
    assert run.censored and run.event_hours == pytest.approx(380.0)
    np.testing.assert_allclose(run.t_hours, np.arange(0.0, 380.0, 10.0))
    exact = run.exact(150.0)
    assert exact.sum() == 24 and run.t_hours[exact].max() == 230.0  # 0, 10, ..., 230 h: at least 150 h before
    small = {"n_units": 6, "window": 6, "step_hours": 10.0, "span_hours": 100.0, "life_hours": (80.0, 200.0), "seed": 3}
    plain = SimulatorDataModule(**small)  # type: ignore[arg-type]
    with_run = SimulatorDataModule(**small, rul_cap=150.0, extra_runs=(run,))  # type: ignore[arg-type]
    plain.setup()
    with_run.setup()
    assert with_run.X_train.shape[0] == plain.X_train.shape[0] + 24
    np.testing.assert_array_equal(with_run.y_train[-24:], 150.0)


def test_a_healthy_inspection_does_not_end_the_run_to_the_next_fault(
    plant_store: tuple[str, np.ndarray, np.ndarray],
) -> None:
    """In the fixture the inspection that found nothing comes 10 h after the repair: no frame lies a cap before it
    within that run, so it gives none, and the run to the confirmed fault is as without censoring."""
    url, _, _ = plant_store
    with Store(url) as store:
        plain = store_runs(store, step_hours=4.0)
        with_censored = store_runs(store, step_hours=4.0, censored_cap=150.0)
    assert [r.name for r in with_censored] == [r.name for r in plain] and not with_censored[0].censored
    np.testing.assert_array_equal(with_censored[0].t_hours, plain[0].t_hours)


@pytest.mark.slow
def test_train_sim_from_store_registers_a_model_that_names_its_plant_runs(
    plant_store: tuple[str, np.ndarray, np.ndarray], tmp_path: Path
) -> None:
    url, _, _ = plant_store
    reg = tmp_path / "reg"
    args = ["train-sim", "--units", "8", "--max-epochs", "1", "--registry-dir", str(reg), "--from-store", "--json"]
    # the store of the settings (as the dashboard's job has it), not a URL on the command line
    res = CliRunner().invoke(rul_app, args, env={"GENEDGE_STORE__URL": url})
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["plant_runs"] == 1 and out["version"] == "v1"
    card = read_card(reg / "sim-bearing" / "v1" / "card.json")
    (plant_run,) = getattr(card.dataset, "plant_runs", [])
    assert plant_run["name"].startswith("P-101 WO-") and plant_run["event_hours"] == pytest.approx(LIFE_H)
    assert plant_run["frames"] == 50 and plant_run["windows"] == 50 and not plant_run["censored"]
    assert out["plant_runs_censored"] == 0
