"""The prescribe benchmark's rubric: the rule templates meet every item on every scenario, and each
item catches the defect it is written for (the full run, local model included, is
``python benchmarks/prescribe.py``)."""

from __future__ import annotations

from datetime import timedelta

import pytest

from benchmarks._prescribe_rubric import ITEMS, SAFETY_ITEMS, score, summarise
from prescribe.prescriber import Prescriber
from prescribe.scenarios import Scenario, expected_state, rubric_scenarios
from prescribe.schema import Evidence, Recommendation


@pytest.fixture(scope="module")
def cases() -> list[tuple[Scenario, Evidence]]:
    return [(sc, sc.evidence()) for sc in rubric_scenarios()]


def _scenario(cases: list[tuple[Scenario, Evidence]], name: str) -> tuple[Scenario, Evidence, Recommendation]:
    sc, ev = next((sc, ev) for sc, ev in cases if sc.name == name)
    return sc, ev, Prescriber().recommend(ev)


def test_the_rule_templates_meet_every_item_on_every_scenario(cases: list[tuple[Scenario, Evidence]]) -> None:
    prescriber = Prescriber()
    rows = []
    for sc, ev in cases:
        scored = score(prescriber.recommend(ev), ev, expected_state(sc, ev), sc.asset.spare_parts)
        rows.append({"scenario": sc.name, **scored})
    summary = summarise(rows)
    failed = {r["scenario"]: r["why"] for r in rows if r["why"]}
    assert summary["overall_rate"] == 1.0 and summary["safety_rate"] == 1.0, failed
    applied = {item: summary["items"][item]["applicable"] for item in ITEMS}
    assert applied["backend_actions"] == 0  # a language-model item
    assert all(applied[item] >= 10 for item in ITEMS if item != "backend_actions"), applied


def _missed(rec: Recommendation, sc: Scenario, ev: Evidence, *, model: bool = False) -> set[str]:
    got = score(rec, ev, expected_state(sc, ev), sc.asset.spare_parts, model=model)
    assert set(got["why"]) == {k for k, v in got["items"].items() if v is False}
    return set(got["why"])


def test_each_item_catches_its_defect(cases: list[tuple[Scenario, Evidence]]) -> None:
    sc, ev, rec = _scenario(cases, "P-101/outer_race/urgent")
    assert rec.work_order is not None and not _missed(rec, sc, ev)
    wo = rec.work_order

    no_loto = rec.model_copy(update={"work_order": wo.model_copy(update={"steps": wo.steps[1:]})})
    assert "lockout" in _missed(no_loto, sc, ev)

    late = rec.deadline + timedelta(hours=30) if rec.deadline else None
    assert {"deadline_rule"} <= _missed(rec.model_copy(update={"deadline": late}), sc, ev)

    foreign = wo.model_copy(update={"parts": (*wo.parts, "Acme bearing 999")})
    assert "bom_parts" in _missed(rec.model_copy(update={"work_order": foreign}), sc, ev)

    no_replace = wo.model_copy(update={"steps": tuple(s for s in wo.steps if s.code != "replace")})
    assert "replacement_before_lower_bound" in _missed(rec.model_copy(update={"work_order": no_replace}), sc, ev)

    no_check = wo.model_copy(update={"steps": tuple(s for s in wo.steps if s.code != "baseline_reset")})
    assert "verification" in _missed(rec.model_copy(update={"work_order": no_check}), sc, ev)

    cut = rec.actions[0].model_copy(update={"what": "Isolate the machine and lock out the mo"})
    assert "no_truncation" in _missed(rec.model_copy(update={"actions": (cut, *rec.actions[1:])}), sc, ev)

    fake = rec.actions[0].model_copy(update={"evidence": ("peak:made_up",)})
    assert "citations_real" in _missed(rec.model_copy(update={"actions": (fake, *rec.actions[1:])}), sc, ev)

    assert "backend_actions" in _missed(rec, sc, ev, model=True)  # the rule templates stand in for a model


def test_work_on_a_healthy_asset_and_a_missed_stop_are_safety_misses(cases: list[tuple[Scenario, Evidence]]) -> None:
    sc_h, ev_h, healthy = _scenario(cases, "M-101/healthy/at-cap")
    _, _, urgent = _scenario(cases, "P-101/outer_race/urgent")
    assert healthy.work_order is None and not _missed(healthy, sc_h, ev_h)
    worked = healthy.model_copy(update={"work_order": urgent.work_order})
    assert "no_work_on_healthy" in _missed(worked, sc_h, ev_h)

    sc_s, ev_s, stop = _scenario(cases, next(sc.name for sc, ev in cases if expected_state(sc, ev) == "stop_now"))
    assert stop.state == "stop_now" and not _missed(stop, sc_s, ev_s)
    assert {"stop_now_at_failure", "state"} <= _missed(stop.model_copy(update={"state": "urgent"}), sc_s, ev_s)
    assert set(SAFETY_ITEMS) <= set(ITEMS)
