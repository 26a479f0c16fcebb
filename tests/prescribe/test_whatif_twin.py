"""The what-if twin of one asset: evidence, costs and calendar into options and a choice; the CLI."""

from __future__ import annotations

import json
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from typer.testing import CliRunner

from core.assets import AssetConfig
from core.inference.registry import SHIPPED_DIR, ModelRegistry
from core.settings import PlantSettings, Settings
from core.sim import FaultSpec
from core.twin import find_library
from core.wire import Prediction
from genedge.cli import app
from ingest.store import Store
from prescribe.evidence import from_simulator
from prescribe.schema import Evidence, whatif_summary
from prescribe.whatif import asset_costs, next_stops_h, run_whatif, whatif_fact, whatif_from_store
from tests.prescribe._frames import outer_race_frames

T0 = datetime(2026, 3, 2, 8, 0, tzinfo=UTC)
SIM_MODEL = f"sim-bearing:{ModelRegistry(SHIPPED_DIR).promoted('sim-bearing').version}"
LIBRARY = find_library(SIM_MODEL, [SHIPPED_DIR])


def _with_model(ev: Evidence, median: float, lower: float, upper: float) -> Evidence:
    assert ev.rul is not None
    rul = ev.rul.model_copy(update={"model": SIM_MODEL, "median_h": median, "lower_h": lower, "upper_h": upper,
                                    "cap_h": 200.0})
    return ev.model_copy(update={"rul": rul})


def test_next_stops_follow_the_calendar_in_plant_hours() -> None:
    plant = PlantSettings(planned_stop_anchor=T0, planned_stop_every_h=168.0, planned_stop_h=12.0)
    assert next_stops_h(T0 + timedelta(hours=13), plant) == pytest.approx([155.0, 323.0, 491.0])
    assert next_stops_h(T0 + timedelta(hours=5), plant, count=1) == [0.0]  # a stop under way counts as now
    # the demo's clock: 3600 plant hours per wall hour, so 10 wall seconds are 10 plant hours
    assert next_stops_h(T0 + timedelta(seconds=10), plant, time_scale=3600.0, count=1) == [0.0]
    assert next_stops_h(T0 + timedelta(seconds=20), plant, time_scale=3600.0, count=1) == pytest.approx([148.0])
    one_off = PlantSettings(planned_stop_every_h=0.0, planned_stops=[T0 + timedelta(hours=30)])
    assert next_stops_h(T0, one_off) == pytest.approx([30.0])


def test_asset_costs_override_the_plant_defaults() -> None:
    plant = PlantSettings()
    own = AssetConfig(asset_id="P-1", criticality=3, downtime_cost_per_h=9000.0, spare_lead_time_h=48.0)
    default = AssetConfig(asset_id="P-2", criticality=1)
    assert asset_costs(own, plant).downtime_per_h == 9000.0 and asset_costs(own, plant).lead_time_h == 48.0
    assert asset_costs(default, plant).downtime_per_h == plant.downtime_cost_per_h[1]


def test_a_developing_fault_gets_four_options_and_a_choice_within_the_risk_limit(outer_race: Evidence,
                                                                                  plant: dict[str, AssetConfig]) -> None:
    ev = _with_model(outer_race, 60.0, 38.0, 95.0)
    w = run_whatif(ev, plant["P-101"], PlantSettings(), library=LIBRARY, load_share=0.8, age_h=300.0)
    assert w.developing and w.generator == "analogs" and w.futures is not None and w.futures.n == 500
    assert [o.option.name for o in w.outcomes] == ["run_on", "derate", "repair_next_stop", "repair_now"]
    chosen = w.chosen
    assert w.risk_limit == 0.05  # P-101 is criticality 3
    assert chosen is not None and chosen.p_fail_before_repair <= w.risk_limit
    assert all(o.p_fail_before_repair > w.risk_limit or o.cost_per_h >= chosen.cost_per_h for o in w.outcomes)
    derate, stop = w.outcome("derate"), w.outcome("repair_next_stop")
    assert derate is not None and stop is not None and derate.p_fail_before_repair <= stop.p_fail_before_repair
    fact = whatif_fact(w)
    assert fact is not None and fact.option == w.choice
    text = whatif_summary(fact)
    assert "EUR" in text and "%" in text and "500 simulated futures" in text
    again = run_whatif(ev, plant["P-101"], PlantSettings(), library=LIBRARY, load_share=0.8, age_h=300.0)
    assert again.as_dict() == w.as_dict()  # same inputs, same answer
    times, fan = w.fan(w.choice)
    assert fan.shape == (5, times.size)


def test_a_failing_asset_is_told_to_stop(plant: dict[str, AssetConfig]) -> None:
    fault = FaultSpec(kind="outer_race", onset_hours=120, life_hours=400)
    ev = _with_model(from_simulator(plant["P-101"], fault, 396.0, seed=3), 3.0, 0.0, 12.0)
    w = run_whatif(ev, plant["P-101"], PlantSettings(), library=LIBRARY, age_h=396.0)
    assert w.developing and w.choice == "repair_now", w.reason


def test_no_developing_fault_means_run_on(plant: dict[str, AssetConfig]) -> None:
    healthy = from_simulator(plant["P-102"], FaultSpec.healthy(), 150.0, seed=2)
    w = run_whatif(healthy, plant["P-102"], PlantSettings(), library=LIBRARY)
    assert not w.developing and w.choice == "run_on" and w.outcomes == [] and w.generator == "none"
    assert "run on" in w.reason and whatif_fact(w) is None  # nothing simulated, nothing for a work order to cite


def test_the_interval_stands_in_for_a_model_without_a_library(outer_race: Evidence, plant: dict[str, AssetConfig]) -> None:
    ev = _with_model(outer_race, 60.0, 38.0, 95.0)
    other = ev.model_copy(update={"rul": ev.rul.model_copy(update={"model": "sim-bearing:v9"})})  # type: ignore[union-attr]
    w = run_whatif(other, plant["P-101"], PlantSettings(), library=LIBRARY)
    assert w.generator == "interval" and "no analog library for sim-bearing:v9" in w.reason


def test_engineer_inputs_are_checked(outer_race: Evidence, plant: dict[str, AssetConfig]) -> None:
    ev = _with_model(outer_race, 60.0, 38.0, 95.0)
    w = run_whatif(ev, plant["P-101"], PlantSettings(), library=LIBRARY, derate_share=0.5, repair_in_h=10.0)
    stop = w.outcome("repair_next_stop")
    assert stop is not None and stop.option.repair_h == 10.0 and w.outcome("derate").option.derate_share == 0.5  # type: ignore[union-attr]
    with pytest.raises(ValueError, match="repair_in_h"):
        run_whatif(ev, plant["P-101"], PlantSettings(), repair_in_h=float("nan"))
    with pytest.raises(ValueError, match="derate_share"):
        run_whatif(ev, plant["P-101"], PlantSettings(), derate_share=0.95)


# --------------------------------------------------------------------------------------- the store
@pytest.fixture
def store(tmp_path: Path, plant: dict[str, AssetConfig]) -> Iterator[tuple[Store, str]]:
    url = f"sqlite:///{tmp_path / 'twin.db'}"
    with Store(url) as s:
        s.upsert_assets(plant.values())
        msgs: list[tuple[Any, datetime]] = [*outer_race_frames(plant["P-101"], T0, extra={"load": {"mean": 82.0}})]
        msgs.append((Prediction(publisher="edge-01", seq=9, asset_id="P-101", model_name="sim-bearing",
                                model_version=SIM_MODEL.partition(":")[2], at=T0 - timedelta(minutes=5), rul_median=50,
                                rul_lower=30, rul_upper=80, coverage=0.9, rul_cap=200.0), T0))
        s.write(msgs)
        yield s, url


def test_from_store_reads_the_load_age_and_library(store: tuple[Store, str]) -> None:
    s, _ = store
    w = whatif_from_store(s, "P-101", Settings(), now=T0)
    assert w.generator == "analogs" and w.model == SIM_MODEL
    assert w.load_share == pytest.approx(0.82) and w.age_h == pytest.approx(48.0)  # since its first stored window
    assert w.developing and len(w.outcomes) == 4


def test_cli_prints_the_options_and_refuses_bad_input(store: tuple[Store, str]) -> None:
    _, url = store
    runner = CliRunner()
    got = runner.invoke(app, ["whatif", "--asset", "P-101", "--db", url, "--json", "--option", "repair_now",
                              "--option", "derate"])
    assert got.exit_code == 0, got.output
    data = json.loads(got.output)
    assert [o["option"] for o in data["options"]] == ["derate", "repair_now"] and data["generator"] == "analogs"
    text = runner.invoke(app, ["whatif", "--asset", "P-101", "--db", url])
    assert text.exit_code == 0 and "Recommendation:" in text.output and "Repair now" in text.output
    bad = runner.invoke(app, ["whatif", "--asset", "P-101", "--db", url, "--option", "explode"])
    assert bad.exit_code != 0 and "unknown option" in bad.output
    unknown = runner.invoke(app, ["whatif", "--asset", "NOPE", "--db", url])
    assert unknown.exit_code == 1 and "not registered" in unknown.output
    derate = runner.invoke(app, ["whatif", "--asset", "P-101", "--db", url, "--derate", "2"])
    assert derate.exit_code == 1 and "derate_share" in derate.output
