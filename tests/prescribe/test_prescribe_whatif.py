"""The what-if twin in the work order: a developing fault's draft cites the chosen option's simulated
risk and cost (the demo's decision watcher computes it), never moves the policy's due time, and a
what-if that cannot be computed never stops the work order."""

from __future__ import annotations

import asyncio
import json
import logging
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from pydantic import ValidationError
from typer.testing import CliRunner

from core.assets import AssetConfig
from core.inference.registry import SHIPPED_DIR, ModelRegistry
from core.settings import PlantSettings, Settings
from core.sim import FaultSpec
from core.wire import Prediction
from ingest.store import Store, queries
from prescribe.backends.base import DraftRequest
from prescribe.evidence import from_simulator, from_store
from prescribe.policy import assess
from prescribe.prescriber import Prescriber
from prescribe.schema import Evidence, WhatIfFact, risk_text
from prescribe.service import DecisionWatcher, attach_whatif
from prescribe.whatif import WhatIf, run_whatif, whatif_fact, whatif_from_store

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
#: The shipped simulator RUL model, whose analog library lies beside it in models/shipped.
MODEL = "sim-bearing"
VERSION = ModelRegistry(SHIPPED_DIR).promoted(MODEL).version


@pytest.fixture
def store(tmp_path: Path, plant: dict[str, AssetConfig]) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'whatif.db'}") as s:
        s.upsert_assets(plant.values())
        yield s


@pytest.fixture
def settings() -> Settings:
    """Plant settings in another currency than the default, so the test sees the settings reach the text."""
    return Settings(plant=PlantSettings(currency="USD"))


def _predict(store: Store, asset_id: str, seq: int, at: datetime, median: float, lower: float, upper: float,
             health: float) -> None:
    store.write([(Prediction(publisher="edge-01", seq=seq, asset_id=asset_id, model_name=MODEL,
                             model_version=VERSION, at=at, rul_median=median, rul_lower=lower, rul_upper=upper,
                             coverage=0.9, health_index=health, rul_cap=200.0), at)])


async def _prescriber() -> Prescriber:
    return Prescriber()  # the rules backend: no language model needed


def _whatif_line(description: str) -> str:
    lines = [ln for ln in description.splitlines() if ln.startswith("What-if:")]
    assert len(lines) == 1, description
    return lines[0]


def _cost(value: float, currency: str) -> str:
    return f"{value:,.0f} {currency}"


# ------------------------------------------------------------------- the demo's watcher
def test_watcher_drafts_p101_work_orders_citing_the_whatif_as_its_fault_develops(
        store: Store, plant: dict[str, AssetConfig], settings: Settings) -> None:
    watcher = DecisionWatcher(store, {"P-101": plant["P-101"]}, _prescriber, settings=settings,
                              registry_dirs=[SHIPPED_DIR])
    # (hour, median, lower, upper, health) of P-101's outer race defect developing, and the state reached
    stages = [(0, 160, 120, 210, 0.7, "plan"), (1, 40, 30, 52, 0.4, "urgent")]
    for seq, (hour, median, lower, upper, health, state) in enumerate(stages, start=1):
        now = T0 + timedelta(hours=hour)
        _predict(store, "P-101", seq, now, median, lower, upper, health)
        (event,) = asyncio.run(watcher.step(now))
        assert event.state == state
        # the same what-if, computed independently from the store: its choice is what the work order cites
        wi = whatif_from_store(store, "P-101", settings, now=now, registry_dirs=[SHIPPED_DIR])
        assert wi.generator == "analogs" and wi.developing and wi.chosen is not None
        chosen = wi.chosen
        order = next(o for o in queries.work_orders(store, asset_id="P-101") if o.id == event.work_order_id)
        line = _whatif_line(order.body["description"])
        assert line.startswith(f"What-if: {chosen.option.label}")
        assert f"{risk_text(chosen.p_fail_before_repair)} risk of failing first" in line
        assert f"expected cost {_cost(chosen.expected_cost, 'USD')}" in line
        assert f"{settings.plant.futures} simulated futures (analogs)" in line
        # the main repair step (the fault class is unknown from a prediction alone: the general procedure's)
        repair = next(s for s in order.body["steps"] if s["kind"] == "repair")
        assert "whatif:choice" in repair["evidence"] and "whatif:choice" in order.body["evidence"]
        rec = order.body["recommendation"]
        item = next(e for e in rec["evidence"] if e["id"] == "whatif:choice")
        assert item["kind"] == "whatif" and item["values"]["option"] == wi.choice
        assert item["values"]["currency"] == "USD"
        # the policy's due time is the one without the what-if: it informs, it does not decide
        ev = from_store(store, "P-101", now=now, asset=plant["P-101"])
        assert datetime.fromisoformat(rec["deadline"]) == assess(ev).deadline
    asyncio.run(watcher.aclose())


def test_a_failing_whatif_is_logged_and_the_work_order_drafted_without_it(
        store: Store, plant: dict[str, AssetConfig], settings: Settings, tmp_path: Path,
        caplog: pytest.LogCaptureFixture) -> None:
    broken = tmp_path / "registry" / MODEL / VERSION
    broken.mkdir(parents=True)
    (broken / "analogs.json").write_text("{ not json")  # the model's analog library cannot be read
    watcher = DecisionWatcher(store, {"P-101": plant["P-101"]}, _prescriber, settings=settings,
                              registry_dirs=[tmp_path / "registry"])
    _predict(store, "P-101", 1, T0, 40, 30, 52, 0.4)
    with caplog.at_level(logging.ERROR, logger="prescribe.service"):
        (event,) = asyncio.run(watcher.step(T0))
    assert event.state == "urgent" and event.work_order_id is not None
    assert "what-if for P-101 failed; the work order is drafted without it" in caplog.text
    order = next(o for o in queries.work_orders(store, asset_id="P-101") if o.id == event.work_order_id)
    assert "What-if" not in order.body["description"] and "whatif:choice" not in order.body["evidence"]
    asyncio.run(watcher.aclose())


def test_healthy_asset_gets_no_work_order_and_no_whatif(store: Store, plant: dict[str, AssetConfig],
                                                        settings: Settings) -> None:
    watcher = DecisionWatcher(store, {"M-101": plant["M-101"]}, _prescriber, settings=settings,
                              registry_dirs=[SHIPPED_DIR])
    _predict(store, "M-101", 1, T0, 200, 140, 270, 1.0)  # RUL at the model's cap, health normal
    assert asyncio.run(watcher.step(T0)) == []
    assert watcher.states["M-101"] == "healthy" and not queries.work_orders(store, asset_id="M-101")
    ev = from_store(store, "M-101", now=T0, asset=plant["M-101"])
    assert attach_whatif(store, ev, settings, registry_dirs=[SHIPPED_DIR]) is ev  # no work, nothing to cite


# ------------------------------------------------------------------------ the prescriber
def _developing(plant: dict[str, AssetConfig], asset_id: str = "P-101", hours: float = 300.0) -> Evidence:
    return from_simulator(plant[asset_id], FaultSpec(kind="outer_race", onset_hours=120, life_hours=400), hours, seed=3)


def test_without_a_rul_there_is_no_whatif_and_the_work_order_is_drafted(store: Store,
                                                                        plant: dict[str, AssetConfig],
                                                                        settings: Settings) -> None:
    ev = _developing(plant).model_copy(update={"rul": None})
    assert assess(ev).works_on_machine  # strong envelope evidence: work without a RUL
    assert attach_whatif(store, ev, settings) is ev
    wi = run_whatif(ev, plant["P-101"], settings.plant)
    assert wi.outcomes == [] and whatif_fact(wi) is None
    rec = Prescriber().recommend(ev)
    assert rec.work_order is not None and "What-if" not in rec.work_order.description
    assert all(i.id != "whatif:choice" for i in rec.evidence) and "What-if" not in rec.narrative


def _with_whatif(ev: Evidence, plant: PlantSettings, asset: AssetConfig) -> tuple[Evidence, WhatIf]:
    wi = run_whatif(ev, asset, plant)
    fact = whatif_fact(wi)
    assert fact is not None
    return ev.model_copy(update={"whatif": fact}), wi


def test_a_choice_later_than_the_due_time_leaves_the_due_time_and_says_it_stands(
        plant: dict[str, AssetConfig]) -> None:
    ev = _developing(plant, "P-201", 280.0)
    base = Prescriber().recommend(ev)
    assert base.state == "plan" and base.deadline is not None
    # the next planned stop comes well after the policy's due time
    late = (base.deadline - ev.at).total_seconds() / 3600.0 + 30.0
    calendar = PlantSettings(planned_stop_anchor=ev.at + timedelta(hours=late), planned_stop_every_h=168)
    with_wi, wi = _with_whatif(ev, calendar, plant["P-201"])
    assert wi.choice in ("derate", "repair_next_stop") and wi.chosen is not None
    rec = Prescriber().recommend(with_wi)
    assert (rec.state, rec.priority, rec.deadline) == (base.state, base.priority, base.deadline)
    assert rec.work_order is not None and rec.work_order.due_by == base.deadline
    assert all(s.due_by is None or s.due_by <= base.deadline for s in rec.work_order.steps)
    line = _whatif_line(rec.work_order.description)
    assert line.startswith(f"What-if: {wi.chosen.option.label} in {wi.chosen.option.repair_h:.0f} h")
    assert f"{base.deadline:%Y-%m-%d %H:%M} UTC" in line and "that due time stands (safety first)" in line
    assert "which stands" in rec.narrative  # the rule templates' trade-off sentence says so too


def test_repair_now_keeps_the_policy_state_and_the_narrative_explains_the_tradeoff(
        plant: dict[str, AssetConfig]) -> None:
    ev = _developing(plant, "P-101", 344.0)
    base = Prescriber().recommend(ev)
    with_wi, wi = _with_whatif(ev, PlantSettings(), plant["P-101"])
    assert wi.choice == "repair_now" and wi.chosen is not None and with_wi.whatif is not None
    rec = Prescriber().recommend(with_wi)
    assert (rec.state, rec.priority, rec.deadline) == (base.state, base.priority, base.deadline)
    assert rec.work_order is not None
    assert "favours repairing now, before the decision's due time" in _whatif_line(rec.work_order.description)
    replace = next(s for s in rec.work_order.steps if s.code == "replace")
    assert "whatif:choice" in replace.evidence and replace.text == next(
        s.text for s in base.work_order.steps if s.code == "replace")  # cited, its text and due time unchanged
    fact = with_wi.whatif
    assert fact.alternative is not None and fact.alternative_cost is not None
    assert f"repairing now risks {risk_text(fact.p_fail_before_repair)} of failing first" in rec.narrative
    assert _cost(fact.expected_cost, "EUR") in rec.narrative and _cost(fact.alternative_cost, "EUR") in rec.narrative
    assert len(rec.narrative) <= 500 and rec.narrative.endswith(".")


class _Backend:
    """Answers with one fixed narrative, as a language model would."""

    name = "fake"

    def __init__(self, narrative: str) -> None:
        self.narrative = narrative
        self.requests: list[DraftRequest] = []

    async def complete(self, request: DraftRequest) -> str:
        self.requests.append(request)
        return json.dumps({"narrative": self.narrative, "actions": []})

    async def aclose(self) -> None:
        pass


def test_the_prompt_asks_for_the_tradeoff_and_screening_accepts_the_whatif_numbers(
        plant: dict[str, AssetConfig]) -> None:
    ev, _ = _with_whatif(_developing(plant, "P-101", 344.0), PlantSettings(), plant["P-101"])
    fact = ev.whatif
    assert fact is not None and fact.alternative_cost is not None and fact.alternative_p_fail is not None
    grounded = (f"Outer race defect on P-101: repairing now risks {fact.p_fail_before_repair * 100:.0f} % for "
                f"{fact.expected_cost:,.0f} EUR against {fact.alternative_p_fail * 100:.0f} % for derating.")
    backend = _Backend(grounded)
    out = asyncio.run(Prescriber(backend).arun(ev))
    user = backend.requests[0].messages[1]["content"]
    assert f"whatif:choice: {ev.items()[[i.id for i in ev.items()].index('whatif:choice')].summary}" in user
    assert "WHAT-IF:" in user and "risks and costs against the alternative" in user
    assert out.backend_used == "fake" and out.recommendation.narrative == grounded, out.dropped
    # a cost the what-if did not give is not grounded: the sentence is left out, the template stands in
    invented = "Outer race defect on P-101: repairing now costs 123,457 EUR against the derate option."
    out = asyncio.run(Prescriber(_Backend(invented)).arun(ev))
    assert "123" not in out.recommendation.narrative and any("number 123" in d for d in out.dropped)
    assert "What-if over" in out.recommendation.narrative


# ------------------------------------------------------------------------------ the fact
def test_whatif_fact_and_its_evidence_item(plant: dict[str, AssetConfig]) -> None:
    ev, wi = _with_whatif(_developing(plant, "P-101", 344.0), PlantSettings(currency="CHF"), plant["P-101"])
    fact = ev.whatif
    assert fact is not None and wi.chosen is not None
    assert (fact.option, fact.label, fact.futures, fact.generator) == (wi.choice, wi.chosen.option.label, 500, "interval")
    assert fact.p_fail_before_repair == pytest.approx(wi.chosen.p_fail_before_repair)
    assert fact.expected_cost == pytest.approx(wi.chosen.expected_cost)
    others = sorted((o for o in wi.outcomes if o is not wi.chosen), key=lambda o: o.cost_per_h)
    assert fact.alternative == others[0].option.name and fact.alternative_cost == pytest.approx(others[0].expected_cost)
    item = next(i for i in ev.items() if i.id == "whatif:choice")
    assert item.kind == "whatif" and item.values["currency"] == "CHF"
    assert item.summary.startswith(f"{fact.label}: {risk_text(fact.p_fail_before_repair)} risk of failing first")
    assert f"{others[0].option.label.lower()}: {risk_text(others[0].p_fail_before_repair)} risk" in item.summary
    assert item.summary.endswith("500 simulated futures (interval)")
    with pytest.raises(ValidationError, match="come together"):
        fact.model_validate({**fact.model_dump(), "alternative_cost": None})
    with pytest.raises(ValidationError, match="another option"):
        WhatIfFact.model_validate({**fact.model_dump(), "alternative": fact.option})


@pytest.mark.parametrize(("p", "text"), [(0.0, "0 %"), (0.003, "under 1 %"), (0.234, "23 %"), (0.998, "over 99 %"),
                                         (1.0, "100 %")])
def test_risk_text_keeps_small_and_near_certain_risks_visible(p: float, text: str) -> None:
    assert risk_text(p) == text


# ----------------------------------------------------------------------------- the CLI
def test_cli_with_a_store_attaches_the_whatif(tmp_path: Path, plant: dict[str, AssetConfig],
                                              monkeypatch: pytest.MonkeyPatch) -> None:
    from genedge.prescribe_cli import prescribe_app

    db = f"sqlite:///{tmp_path / 'cli.db'}"
    now = datetime.now(UTC) - timedelta(minutes=1)
    with Store(db) as s:
        s.upsert_assets(plant.values())
        _predict(s, "P-101", 1, now, 40, 30, 52, 0.4)
    monkeypatch.chdir(tmp_path)  # no var/registry here: the shipped model's library is used
    res = CliRunner().invoke(prescribe_app, ["--asset", "P-101", "--backend", "rules", "--json", "--db", db])
    assert res.exit_code == 0, res.output
    data = json.loads(res.output)
    assert data["state"] == "urgent"
    item = next(e for e in data["evidence"] if e["id"] == "whatif:choice")
    assert item["values"]["generator"] == "analogs"
    assert "What-if: " in data["work_order"]["description"] and "whatif:choice" in data["work_order"]["evidence"]
