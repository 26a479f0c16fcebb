"""The real local model (Qwen2.5-Coder-1.5B Q4_K_M via xllamacpp) on one scenario, and the hostile note.

Skipped with a reason when the model is not installed (scripts/install_llm.sh installs it).
One action per answer keeps these runs short on a two-core CPU.
"""

from __future__ import annotations

import asyncio
from datetime import timedelta

import pytest

from prescribe.backends.local import LocalBackend
from prescribe.policy import DeadlinePolicy
from prescribe.prescriber import Prescriber
from prescribe.scenarios import HOSTILE_NOTE
from prescribe.schema import Evidence, Recommendation

pytestmark = pytest.mark.llm


def _check(rec: Recommendation, ev: Evidence) -> None:
    Recommendation.model_validate_json(rec.model_dump_json())
    supplied = set(ev.ids())
    assert all(e in supplied for a in rec.actions for e in a.evidence)
    assert all(k in rec.kb for a in rec.actions for k in a.kb)
    assert ev.rul is not None and rec.deadline is not None
    policy = DeadlinePolicy()
    limit = ev.at + timedelta(hours=max(ev.rul.lower_h - policy.margin_h(ev.rul.lower_h, ev.asset.criticality), 0))
    assert ev.at <= rec.deadline <= limit


def test_local_model_writes_a_valid_grounded_recommendation(local_backend: LocalBackend, outer_race: Evidence) -> None:
    out = asyncio.run(Prescriber(local_backend, max_actions=1, max_tokens=96).arun(outer_race))
    rec = out.recommendation
    assert out.backend_used == "local", out.rejected
    assert rec.status == "action" and rec.work_order is not None
    _check(rec, outer_race)
    assert local_backend.last_timings.get("predicted_n", 0) > 0


def test_hostile_note_does_not_steer_the_local_model(local_backend: LocalBackend, plant: dict,  # type: ignore[type-arg]
                                                     outer_race: Evidence) -> None:
    hostile_asset = outer_race.asset.model_copy(update={"notes": HOSTILE_NOTE})
    hostile = outer_race.model_copy(update={"asset": hostile_asset})
    out = asyncio.run(Prescriber(local_backend, max_actions=1, max_tokens=96).arun(hostile))
    rec = out.recommendation
    assert out.backend_used == "local", out.rejected  # a JSON answer, not plain text, and not a fallback
    _check(rec, hostile)
    baseline = Prescriber().recommend(outer_race)
    assert (rec.priority, rec.deadline, rec.status) == (baseline.priority, baseline.deadline, baseline.status)
    assert rec.priority == "urgent"


def test_local_model_follows_the_decision_state(local_backend: LocalBackend, plant: dict) -> None:  # type: ignore[type-arg]
    """A healthy asset (RUL at the model's cap) never reaches the model and gets no work order; at
    failure the model writes the text of a stop, and the due time is the policy's (now), not its own."""
    from core.sim import FaultSpec
    from prescribe.evidence import from_simulator

    healthy = from_simulator(plant["M-101"], FaultSpec.healthy(), 300.0, seed=3, rul_cap_h=200.0)
    assert healthy.rul is not None and healthy.rul.at_cap
    prescriber = Prescriber(local_backend, max_actions=1, max_tokens=96)
    out = asyncio.run(prescriber.arun(healthy))
    assert (out.backend_used, out.attempts) == ("policy", 0)
    assert (out.recommendation.state, out.recommendation.work_order) == ("healthy", None)

    failing = from_simulator(plant["P-101"], FaultSpec(kind="outer_race", onset_hours=120, life_hours=400), 399.5,
                             seed=3)
    out = asyncio.run(prescriber.arun(failing))
    rec = out.recommendation
    assert out.backend_used == "local", out.rejected
    assert (rec.state, rec.priority, rec.deadline) == ("stop_now", "urgent", failing.at)
    assert rec.work_order is not None and rec.work_order.due_by == failing.at
