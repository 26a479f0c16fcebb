"""The what-if twin's kernel: derated faults, futures, options, risk, cost and the recommendation."""

from __future__ import annotations

import math
import time
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from core.inference.registry import SHIPPED_DIR, ModelRegistry
from core.sim import AssetSimulator, FaultSpec, damage_at, default_plant, growth_multiplier
from core.twin import (
    ANALOGS_FILE,
    AnalogLibrary,
    AssetCosts,
    Futures,
    evaluate,
    find_library,
    health_fan,
    interval_futures,
    make_options,
    recommend,
)

SHIPPED_SIM = ModelRegistry(SHIPPED_DIR).promoted("sim-bearing")
SHIPPED_LIBRARY = SHIPPED_SIM.path / ANALOGS_FILE


# ------------------------------------------------------------------------------- derated faults
def test_growth_multiplier_follows_the_load_life_law() -> None:
    assert growth_multiplier("outer_race", 0.3) == pytest.approx(0.7**3)
    assert growth_multiplier("imbalance", 0.3) == pytest.approx(0.7**2)
    assert growth_multiplier("ball", 0.0) == 1.0
    with pytest.raises(ValueError, match="derate_share"):
        growth_multiplier("ball", 1.0)


def test_a_derate_moves_the_time_of_event_and_slows_the_damage_clock() -> None:
    plain = FaultSpec(kind="outer_race", onset_hours=100, life_hours=300)
    derated = plain.model_copy(update={"derate_from_hours": 200.0, "derate_share": 0.3})
    m = 0.7**3
    assert derated.time_of_event == pytest.approx(200 + 100 / m)
    assert float(damage_at(derated, 200.0)) == pytest.approx(float(damage_at(plain, 200.0)))  # continuous at the start
    assert float(damage_at(derated, 250.0)) == pytest.approx(float(damage_at(plain, 200 + 50 * m)))
    assert float(damage_at(derated, derated.time_of_event)) == pytest.approx(1.0)
    # a derate that starts after the failure changes nothing
    late = plain.model_copy(update={"derate_from_hours": 400.0, "derate_share": 0.3})
    assert late.time_of_event == plain.time_of_event == 300.0


def test_the_simulated_machine_runs_at_the_derated_load_and_its_rul_follows() -> None:
    asset = default_plant()[0]
    plain = FaultSpec(kind="outer_race", onset_hours=100, life_hours=300)
    derated = plain.model_copy(update={"derate_from_hours": 150.0, "derate_share": 0.4})
    a, b = AssetSimulator(asset, plain, seed=1), AssetSimulator(asset, derated, seed=1)
    assert b.state(100.0).load_pct == pytest.approx(a.state(100.0).load_pct)
    assert b.state(200.0).load_pct == pytest.approx(0.6 * a.state(200.0).load_pct)
    assert b.state(200.0).rul_hours == pytest.approx(derated.time_of_event - 200.0)
    assert b.state(200.0).temperature_c < a.state(200.0).temperature_c  # less load, less heat
    assert not b.state(299.0).failed and b.time_of_event_hours == pytest.approx(derated.time_of_event)


# ------------------------------------------------------------------------------- costs, options
def test_costs_reject_negative_or_infinite_values() -> None:
    with pytest.raises(ValueError, match="lead_time_h"):
        AssetCosts(downtime_per_h=100.0, lead_time_h=-1.0)
    with pytest.raises(ValueError, match="downtime_per_h"):
        AssetCosts(downtime_per_h=math.inf)


def test_a_failure_costs_more_than_a_repair_in_a_planned_stop() -> None:
    c = AssetCosts(downtime_per_h=1000.0, repair_h=6.0, stop_h=12.0)
    assert c.planned_cost(in_stop=True) == pytest.approx(c.work_cost)  # fits the stop: no lost production
    assert c.planned_cost(in_stop=False) == pytest.approx(c.work_cost + 6000.0)
    assert c.failure_cost(part_wait_h=10.0) == pytest.approx(c.work_cost + c.failure_extra_cost + 1000.0 * (10 + 6 + 12))


def test_options_wait_for_the_spare_part() -> None:
    costs = AssetCosts(downtime_per_h=1000.0, lead_time_h=50.0)
    opts = {o.name: o for o in make_options([10.0, 178.0, 346.0], costs)}
    assert opts["repair_now"].repair_h == 50.0
    assert opts["repair_next_stop"].repair_h == 178.0  # the stop at 10 h comes before the part
    assert opts["run_on"].repair_h == 346.0
    assert opts["derate"].derate_share == 0.3 and opts["derate"].in_stop


def _futures(failure_h: list[float]) -> Futures:
    t = np.asarray(failure_h, dtype=float)
    return Futures(t, np.full(t.size, 0.5), np.full(t.size, 3.0), kind="outer_race")


def test_evaluate_counts_failures_before_each_repair_and_a_derate_buys_time() -> None:
    fut = _futures([5.0, 30.0, 60.0, 90.0, 150.0, 400.0, math.inf, math.inf])
    costs = AssetCosts(downtime_per_h=1000.0)
    out = {o.option.name: o for o in evaluate(fut, make_options([100.0, 268.0], costs), costs, next_stop_h=100.0)}
    assert out["repair_now"].p_fail_before_repair == 0.0
    assert out["repair_next_stop"].p_fail_before_repair == pytest.approx(4 / 8)
    assert out["run_on"].p_fail_before_repair == pytest.approx(5 / 8)  # within the horizon (the second stop)
    # derated, a future grows 1 / 0.343 times slower: 5 h and 30 h become 14.6 h and 87.5 h, still before the stop
    assert out["derate"].p_fail_before_repair == pytest.approx(2 / 8)
    assert out["repair_now"].p_fail_24h == out["repair_next_stop"].p_fail_24h == pytest.approx(1 / 8)
    assert out["repair_now"].expected_cost == pytest.approx(costs.planned_cost(in_stop=False))
    assert out["run_on"].failure_quantiles_h[-1] == math.inf  # the 95th percentile is beyond reach


def test_recommend_takes_the_cheapest_within_the_risk_limit_else_the_safest() -> None:
    costs = AssetCosts(downtime_per_h=2000.0)
    far = _futures([900.0] * 95 + [20.0] * 5)
    rec = recommend(evaluate(far, make_options([100.0, 268.0], costs), costs, next_stop_h=100.0), 0.06)
    assert rec.within_limit and rec.choice.option.name == "run_on"
    near = _futures([50.0] * 50 + [300.0] * 50)  # half fail before the stop at 100 h
    rec = recommend(evaluate(near, make_options([100.0, 268.0], costs), costs, next_stop_h=100.0), 0.05)
    assert rec.choice.option.name in ("repair_now", "derate") and rec.choice.p_fail_before_repair <= 0.05
    waiting = AssetCosts(downtime_per_h=2000.0, lead_time_h=24.0)
    sure = _futures([1.0] * 100)  # fails before the part arrives
    rec = recommend(evaluate(sure, make_options([100.0], waiting), waiting), 0.05)
    assert not rec.within_limit and "no option" in rec.reason


def test_interval_futures_reproduce_the_interval() -> None:
    fut = interval_futures(100.0, 60.0, 160.0, 20000, np.random.default_rng(0))
    assert np.median(fut.failure_h) == pytest.approx(100.0, rel=0.03)
    inside = np.mean((fut.failure_h >= 60.0) & (fut.failure_h <= 160.0))
    assert inside == pytest.approx(0.9, abs=0.01)
    with pytest.raises(ValueError, match="lower"):
        interval_futures(100.0, 120.0, 160.0, 10, np.random.default_rng(0))


def test_health_fan_is_ordered_and_renews_at_the_repair() -> None:
    fut = _futures([50.0, 80.0, 120.0, 200.0])
    costs = AssetCosts(downtime_per_h=1000.0)
    outcome = next(o for o in evaluate(fut, make_options([100.0, 268.0], costs), costs) if o.option.name == "repair_next_stop")
    times = np.linspace(0.0, 150.0, 31)
    fan = health_fan(fut, outcome, times)
    assert fan.shape == (5, 31)
    assert np.all(np.diff(fan, axis=0) >= -1e-12)  # quantiles in order
    assert fan[2, 0] == pytest.approx(0.5)  # damage 0.5 now
    after = times >= 100.0
    assert np.all(fan[4, after] == 1.0)  # the futures that reached the stop are new again
    assert fan[0, -1] == 0.0  # the ones that failed first stay failed


# ------------------------------------------------------------------------------- the analog library
def _library(n_units: int = 30, per_unit: int = 10) -> AnalogLibrary:
    rng = np.random.default_rng(1)
    rows, true, med, unit = [], [], [], []
    for u in range(n_units):
        life = rng.uniform(100, 400)
        for t in np.linspace(0, life * 0.9, per_unit):
            rul = life - t
            pred = min(rul * rng.uniform(0.8, 1.2), 200.0)
            rows.append(AnalogLibrary.query_features(pred, 0.7 * pred, min(1.3 * pred + 10, 200), 200.0, 0.7, t))
            true.append(rul)
            med.append(pred)
            unit.append(u)
    n = len(true)
    return AnalogLibrary(model="m:v1", cap_h=200.0, features=np.array(rows), true_rul_h=np.array(true),
                         pred_median_h=np.array(med), damage=np.full(n, 0.3), shape=np.full(n, 3.0),
                         unit=np.array(unit, dtype=np.int64), kind=np.full(n, "ball"), k=10)


def test_analog_neighbours_are_one_case_per_run() -> None:
    lib = _library()
    idx, w = lib.neighbours(lib.query_features(80.0, 56.0, 114.0, 200.0, 0.7, 100.0))
    assert idx.size == 10 and len(set(lib.unit[idx].tolist())) == 10
    assert w.sum() == pytest.approx(1.0) and np.all(w > 0)
    idx2, _ = lib.neighbours(lib.query_features(80.0, 56.0, 114.0, 200.0, 0.7, 100.0), exclude_unit=int(lib.unit[idx[0]]))
    assert int(lib.unit[idx[0]]) not in lib.unit[idx2]


def test_analog_futures_follow_what_happened_after_similar_predictions() -> None:
    lib = _library()
    rng = np.random.default_rng(2)
    near = lib.sample(20.0, 14.0, 36.0, 2000, rng)
    far = lib.sample(180.0, 126.0, 200.0, 2000, rng)
    assert near.source == "analogs" and near.kind == "ball" and near.n == 2000
    assert np.median(near.failure_h) < 40.0
    assert np.median(far.failure_h) > 120.0


def test_analog_library_round_trips_through_json_and_refuses_bad_files(tmp_path: Path) -> None:
    lib = _library()
    lib.true_rul_h[3] = np.inf  # a healthy run
    back = AnalogLibrary.from_json(lib.to_json(tmp_path / "m" / "v1" / ANALOGS_FILE))
    assert back.model == "m:v1" and back.k == 10 and np.isinf(back.true_rul_h[3])
    np.testing.assert_allclose(back.features, lib.features, atol=1e-4)
    assert find_library("m:v1", [tmp_path / "none", tmp_path]) is not None
    assert find_library("m:v2", [tmp_path]) is None
    assert find_library("../m:v1", [tmp_path]) is None  # no path tricks in a model name
    bad = tmp_path / "bad.json"
    bad.write_text('{"format": "something else"}')
    with pytest.raises(ConfigError, match="not a genedge-analogs"):
        AnalogLibrary.from_json(bad)
    bad.write_text('{"format": "genedge-analogs/1", "model": "x"}')
    with pytest.raises(ConfigError, match="malformed"):
        AnalogLibrary.from_json(bad)
    with pytest.raises(ConfigError, match="cannot read"):
        AnalogLibrary.from_json(tmp_path / "missing.json")


def test_shipped_library_belongs_to_the_shipped_model_and_is_fast() -> None:
    lib = AnalogLibrary.from_json(SHIPPED_LIBRARY)
    assert lib.model == f"sim-bearing:{SHIPPED_SIM.version}" and lib.cap_h == 200.0 and lib.true_rul_h.size > 5000
    assert len(set(lib.unit.tolist())) >= 300 and np.isinf(lib.true_rul_h).any()  # healthy runs are in it
    costs = AssetCosts(downtime_per_h=6000.0)
    rng = np.random.default_rng(0)
    t0 = time.process_time()
    for _ in range(5):
        fut = lib.sample(60.0, 35.0, 95.0, 500, rng, load_share=0.75, age_h=250.0)
        recommend(evaluate(fut, make_options([30.0, 198.0], costs), costs, age_h=250.0, next_stop_h=30.0))
    assert (time.process_time() - t0) / 5 < 2.0  # the budget per what-if; the benchmark measures it


# ------------------------------------------------------------------------------- watching and spread
def test_a_failure_the_model_flags_in_time_is_repaired_not_suffered() -> None:
    costs = AssetCosts(downtime_per_h=1000.0)
    options = make_options([100.0, 268.0], costs)
    flagged_later = Futures(np.array([50.0]), np.array([0.5]), np.array([3.0]), warn_h=np.array([10.0]))
    out = {o.option.name: o for o in evaluate(flagged_later, options, costs, stops_h=[100.0, 268.0], review_h=4.0)}
    assert out["repair_next_stop"].p_fail_before_repair == 0.0  # flagged at 10 h, repaired at 14 h, fails at 50 h
    assert out["repair_next_stop"].expected_cost == pytest.approx(costs.planned_cost(in_stop=False))
    flagged_now = Futures(np.array([50.0]), np.array([0.5]), np.array([3.0]), warn_h=np.array([0.0]))
    out = {o.option.name: o for o in evaluate(flagged_now, options, costs, stops_h=[100.0, 268.0])}
    assert out["repair_next_stop"].p_fail_before_repair == 1.0  # nothing new to learn: the risk is priced in
    slow_part = AssetCosts(downtime_per_h=1000.0, lead_time_h=48.0)
    out = {o.option.name: o for o in evaluate(flagged_later, make_options([100.0, 268.0], slow_part), slow_part,
                                              stops_h=[100.0, 268.0])}
    assert out["repair_next_stop"].p_fail_before_repair == 1.0  # the part comes too late: 10 + 4 + 48 > 50
    in_time_for_stop = Futures(np.array([150.0]), np.array([0.5]), np.array([3.0]), warn_h=np.array([60.0]))
    out = {o.option.name: o for o in evaluate(in_time_for_stop, make_options([100.0, 268.0], costs), costs,
                                              stops_h=[100.0, 268.0])}
    assert out["run_on"].p_fail_before_repair == 0.0
    assert out["run_on"].expected_cost == pytest.approx(costs.planned_cost(in_stop=True))  # repaired in the stop at 100 h


def test_flag_leads_come_from_each_runs_own_later_predictions() -> None:
    lib = _library()
    lower = lib.features[:, 1] * lib.cap_h
    flagged = np.flatnonzero(lower <= 36.0)
    assert flagged.size > 0
    np.testing.assert_allclose(lib._warn_lead_h[flagged], lib.true_rul_h[flagged])  # flagged there and then
    for u in range(5):  # earlier cases of a run take the lead of the run's first flag after them
        run = np.flatnonzero(lib.unit == u)
        run = run[np.argsort(lib.features[run, 4])]
        for k, i in enumerate(run):
            later = [j for j in run[k:] if lower[j] <= 36.0]
            expected = lib.true_rul_h[later[0]] if later else np.inf
            assert lib._warn_lead_h[i] == pytest.approx(expected)
    flagged = lib.sample(20.0, 14.0, 36.0, 100, np.random.default_rng(0))
    assert flagged.warn_h is not None and np.all(flagged.warn_h == 0.0)
    calm = lib.sample(190.0, 130.0, 200.0, 100, np.random.default_rng(0))
    assert calm.warn_h is not None and np.all((calm.warn_h <= calm.failure_h) | np.isinf(calm.failure_h))


def test_spread_is_learnt_by_leaving_runs_out_and_widens_the_futures(tmp_path: Path) -> None:
    lib = _library(n_units=40)
    narrow = lib.sample(80.0, 56.0, 114.0, 4000, np.random.default_rng(3)).failure_h
    lib.spread = (1.5,) * 4
    wide = lib.sample(80.0, 56.0, 114.0, 4000, np.random.default_rng(3)).failure_h
    assert np.ptp(np.quantile(wide, [0.05, 0.95])) > np.ptp(np.quantile(narrow, [0.05, 0.95]))
    assert np.median(wide) == pytest.approx(np.median(narrow), rel=1e-6)  # widened around the median
    factors = lib.calibrate_spread(0.9, every=3, n=200)
    assert len(factors) == 4 and all(1.0 <= f <= 2.5 for f in factors)
    back = AnalogLibrary.from_json(lib.to_json(tmp_path / "lib.json"))
    assert back.spread == lib.spread
    bad = tmp_path / "bad.json"
    raw = (tmp_path / "lib.json").read_text().replace('"factors":[', '"factors":[9,')
    bad.write_text(raw)
    with pytest.raises(ConfigError, match="malformed"):
        AnalogLibrary.from_json(bad)
