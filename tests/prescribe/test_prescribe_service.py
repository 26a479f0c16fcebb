"""The decision watcher: a work order each time an asset escalates into work, none for healthy assets."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.assets import AssetConfig
from core.wire import Prediction
from ingest.store import Store, queries
from prescribe import workorders as wo
from prescribe.prescriber import Prescriber
from prescribe.service import DecisionWatcher

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path, plant: dict[str, AssetConfig]) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'watch.db'}") as s:
        s.upsert_assets(plant.values())
        yield s


def _predict(store: Store, asset_id: str, seq: int, at: datetime, median: float, lower: float, upper: float,
             *, health: float | None = None, cap: float | None = 200.0) -> None:
    store.write([(Prediction(publisher="edge-01", seq=seq, asset_id=asset_id, model_name="rul", model_version="1",
                             at=at, rul_median=median, rul_lower=lower, rul_upper=upper, coverage=0.9,
                             health_index=health, rul_cap=cap), at)])


async def _prescriber() -> Prescriber:
    return Prescriber()  # the rules backend: deterministic and quick


def test_watcher_drafts_on_each_escalation_and_supersedes_drafts(store: Store, plant: dict[str, AssetConfig]) -> None:
    watched = {k: plant[k] for k in ("P-201", "M-101")}
    watcher = DecisionWatcher(store, watched, _prescriber)
    # (hour, median, lower, upper, health) of P-201 and the state the watcher must reach
    steps = [(0, 200, 140, 270, 1.0, "healthy"), (1, 170, 120, 230, 0.7, "plan"), (2, 165, 118, 225, 0.7, "plan"),
             (3, 40, 30, 52, 0.4, "urgent"), (4, 3, 0, 6, 0.1, "stop_now")]
    drafted = []
    for seq, (hour, median, lower, upper, health, state) in enumerate(steps, start=1):
        now = T0 + timedelta(hours=hour)
        _predict(store, "P-201", seq, now, median, lower, upper, health=health)
        _predict(store, "M-101", seq, now, 200, 140, 270, health=1.0)  # healthy throughout, RUL at the cap
        events = asyncio.run(watcher.step(now))
        assert watcher.states["P-201"] == state, (hour, watcher.states)
        assert watcher.states["M-101"] == "healthy"
        drafted += [e for e in events]
    assert [(e.asset_id, e.previous, e.state) for e in drafted] == [
        ("P-201", "healthy", "plan"), ("P-201", "plan", "urgent"), ("P-201", "urgent", "stop_now")]
    assert not queries.work_orders(store, asset_id="M-101")
    orders = {o.id: o for o in queries.work_orders(store, asset_id="P-201")}
    assert [orders[e.work_order_id].priority for e in drafted] == ["medium", "high", "urgent"]
    # each escalation rejected the drafts before it, saying which work order supersedes them
    assert drafted[1].superseded == (drafted[0].work_order_id,) and drafted[2].superseded == (drafted[1].work_order_id,)
    assert [o.status for o in orders.values() if o.status == "draft"] == ["draft"]
    reason = orders[drafted[0].work_order_id].body["history"][-1]["note"]
    assert wo.work_order_number(drafted[1].work_order_id) in reason and "urgent" in reason
    asyncio.run(watcher.aclose())


def test_watcher_keeps_approved_work_and_drafts_nothing_when_state_falls(store: Store,
                                                                           plant: dict[str, AssetConfig]) -> None:
    watcher = DecisionWatcher(store, {"P-201": plant["P-201"]}, _prescriber)
    _predict(store, "P-201", 1, T0, 40, 30, 52, health=0.4)
    (first,) = asyncio.run(watcher.step(T0))
    assert first.state == "urgent"
    wo.approve(store, first.work_order_id or 0, "planner")
    later = T0 + timedelta(hours=1)
    _predict(store, "P-201", 2, later, 170, 120, 230, health=0.7)  # a better prediction: plan, below the open work
    assert asyncio.run(watcher.step(later)) == []
    latest = T0 + timedelta(hours=2)
    _predict(store, "P-201", 3, latest, 3, 0, 6, health=0.1)  # failing: a new draft, the approved one kept
    (escalated,) = asyncio.run(watcher.step(latest))
    assert escalated.state == "stop_now" and escalated.superseded == ()
    statuses = {o.id: o.status for o in queries.work_orders(store, asset_id="P-201")}
    assert statuses == {first.work_order_id: "approved", escalated.work_order_id: "draft"}


def test_rubric_scenarios_cover_the_issue_and_the_policy_meets_every_expected_state() -> None:
    from collections import Counter

    from prescribe.policy import assess
    from prescribe.scenarios import FAULT_KINDS, expected_state, rubric_scenarios

    cases = rubric_scenarios()
    assert len(cases) >= 60
    kinds = {sc.fault.kind for sc in cases} | {sc.options["fault_call"].kind for sc in cases if "fault_call" in sc.options}
    assert set(FAULT_KINDS) | {"none", "looseness", "lubrication", "overheating"} <= kinds
    assert {sc.asset.criticality for sc in cases} == {1, 2, 3}
    got, wrong = Counter(), []
    for sc in cases:
        ev = sc.evidence()
        want = expected_state(sc, ev)
        state = assess(ev).state
        got[want] += 1
        if state != want:
            wrong.append((sc.name, want, state))
    assert not wrong
    assert min(got[s] for s in ("healthy", "watch", "plan", "urgent", "stop_now", "insufficient_evidence")) >= 4


def test_a_failing_prescription_is_logged_and_retried_not_fatal(store: Store, plant: dict[str, AssetConfig],
                                                               caplog: pytest.LogCaptureFixture) -> None:
    calls = {"n": 0}

    async def flaky() -> Prescriber:
        calls["n"] += 1
        if calls["n"] == 1:
            raise RuntimeError("backend worker crashed")
        return Prescriber()

    watcher = DecisionWatcher(store, {"P-201": plant["P-201"], "M-101": plant["M-101"]}, flaky)
    _predict(store, "P-201", 1, T0, 40, 30, 52, health=0.4)
    assert asyncio.run(watcher.step(T0)) == []
    assert "prescribing for P-201 (urgent) failed" in caplog.text and "M-101" in watcher.states  # judged after the failure
    (event,) = asyncio.run(watcher.step(T0))
    assert event.state == "urgent" and event.work_order_id is not None


def test_evidence_reads_trends_in_plant_hours_on_an_accelerated_store(store: Store) -> None:
    from core.wire import FeatureFrame
    from prescribe.evidence import from_store
    from prescribe.policy import assess

    # the demo's clock: one wall-clock second is one plant hour; the bearing warms 1 K per plant hour
    frames = [(FeatureFrame(publisher="edge-01", seq=200 + k, asset_id="P-201", window_start=T0 + timedelta(seconds=k),
                            window_s=1.0, features={"temp_de": {"mean": 40.0 + k}}), T0) for k in range(30)]
    store.write(frames)
    now = T0 + timedelta(seconds=30)
    wall = from_store(store, "P-201", now=now)  # read as a plant: 3600 K/h, a temperature trip
    assert wall.temperature is not None and wall.temperature.slope_c_per_h == pytest.approx(3600, rel=1e-3)
    assert assess(wall).state == "stop_now"
    store.set_meta("time_scale", "3600")
    plant = from_store(store, "P-201", now=now)
    assert plant.temperature is not None and plant.temperature.slope_c_per_h == pytest.approx(1.0, rel=1e-3)
    assert plant.temperature.lookback_h == pytest.approx(29.0) and assess(plant).state != "stop_now"
    with pytest.raises(ValueError, match="time_scale"):
        from_store(store, "P-201", now=now, time_scale=float("nan"))


def test_due_times_are_wall_clock_on_an_accelerated_clock(plant: dict[str, AssetConfig]) -> None:
    from core.sim import FaultSpec
    from prescribe.evidence import from_simulator
    from prescribe.policy import assess

    ev = from_simulator(plant["P-201"], FaultSpec(kind="outer_race", onset_hours=180, life_hours=600), 420.0, seed=1)
    plant_clock = assess(ev)
    demo_clock = assess(ev.model_copy(update={"time_scale": 3600.0}))  # one wall-clock second per plant hour
    assert plant_clock.state == demo_clock.state == "plan" and plant_clock.window_h == demo_clock.window_h
    assert plant_clock.deadline is not None and demo_clock.deadline is not None and plant_clock.window_h is not None
    assert (plant_clock.deadline - ev.at).total_seconds() == pytest.approx(plant_clock.window_h * 3600)
    assert (demo_clock.deadline - ev.at).total_seconds() == pytest.approx(plant_clock.window_h)
