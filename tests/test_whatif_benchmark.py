"""The what-if benchmark's parts on a small sample: calibration on fresh simulated runs, one backtest
plant, the speed budget and the report (the full run is ``python benchmarks/whatif.py``)."""

from __future__ import annotations

import math

import numpy as np
import pytest

from benchmarks import whatif
from benchmarks._whatif_backtest import PlantConfig, run_plant
from core.inference.registry import SHIPPED_DIR, ModelRegistry
from core.inference.runtime import FeatureRULPredictor
from core.twin import ANALOGS_FILE, AnalogLibrary
from models.twin_library import build_sim_library


@pytest.fixture(scope="module")
def shipped() -> tuple[FeatureRULPredictor, AnalogLibrary]:
    return (FeatureRULPredictor.from_registry(SHIPPED_DIR, "sim-bearing"),
            AnalogLibrary.from_json(ModelRegistry(SHIPPED_DIR).promoted("sim-bearing").path / ANALOGS_FILE))


def test_learned_futures_cover_held_out_runs_where_the_interval_alone_cannot(
        shipped: tuple[FeatureRULPredictor, AnalogLibrary]) -> None:
    predictor, library = shipped
    cases = build_sim_library(predictor, model=library.model, n_units=8, seed=909, every=6, calibrate=False)
    cal = whatif.calibrate(library, cases, seed=1)
    learned, interval = cal["analogs"], cal["interval"]
    assert learned["all"]["n"] == interval["all"]["n"] == int(np.isfinite(cases.true_rul_h).sum()) > 20
    assert sum(learned["all"]["pit_histogram"]) == learned["all"]["n"]
    assert 0.6 <= learned["all"]["coverage_90"] <= 1.0 and learned["all"]["coverage_50"] <= learned["all"]["coverage_90"]
    # at the model's cap its interval says nothing about the truth beyond it; the analogs know what followed
    assert learned["truth_at_or_above_cap"]["coverage_90"] > interval["truth_at_or_above_cap"]["coverage_90"]


def test_one_backtest_plant_keeps_its_books(shipped: tuple[FeatureRULPredictor, AnalogLibrary]) -> None:
    predictor, library = shipped
    cfg = PlantConfig(seed=7, horizon_h=320.0)
    rtf = run_plant(cfg, "run_to_failure", 0.0, predictor, library)
    twin = run_plant(cfg, "twin", 0.0, predictor, library)
    for r in (rtf, twin):
        assert r["cost"] > 0 and math.isfinite(r["cost"]) and r["cost"] >= r["terminal"]
    assert rtf["planned"] == 0 and rtf["derate_h"] == 0  # run to failure never repairs before a failure
    assert twin["failures"] <= rtf["failures"]
    assert run_plant(cfg, "twin", 0.0, predictor, library) == twin  # the plant and the twin are reproducible


def test_one_what_if_fits_the_speed_budget_and_the_report_renders(
        shipped: tuple[FeatureRULPredictor, AnalogLibrary]) -> None:
    _, library = shipped
    sp = whatif.speed(library, repeats=3)
    assert sp["median_s"]["analogs"] < sp["target_s"]
    res = {"model": library.model, "quick": True, "library": {"cases": 1, "units": 1, "seed": 1},
           "calibration": {"x": {g: {k: {"n": 1, "coverage_90": 0.9, "coverage_50": 0.5, "width_90_h": 10.0,
                                          "pit_histogram": [1] * 10} for k in ("all", "truth_below_cap")}
                                  for g in ("analogs", "interval")}},
           "femto": {"skipped": "no data"},
           "backtest": {"seeds": [1], "tuning_seeds": [2], "horizon_h": 100.0, "tuning": {},
                        "policies": {"twin": {"param": 0.0, "cost_mean": 1.0, "cost_std": 0.0, "failures_mean": 0.0,
                                              "planned_mean": 1.0, "unplanned_stops_mean": 0.0}}},
           "speed": sp}
    text = whatif.markdown(res)
    assert "| twin | 0 | 1 (0) |" in text and "Skipped: no data" in text
