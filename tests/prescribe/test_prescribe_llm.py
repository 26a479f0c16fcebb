"""The real local model (Qwen2.5-Coder-1.5B Q4_K_M via xllamacpp) on one scenario, and the hostile note.

Skipped with a reason when the model is not installed (scripts/install_llm.sh installs it).
The prescriber's defaults (a narrative and two added steps) are what these runs use.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import timedelta

import pytest

from prescribe._text import is_whole_sentence
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
    out = asyncio.run(Prescriber(local_backend).arun(outer_race))
    rec = out.recommendation
    assert out.backend_used == "local", out.rejected
    assert rec.status == "action" and rec.work_order is not None
    _check(rec, outer_race)
    assert local_backend.last_timings.get("predicted_n", 0) > 0
    # the model's text sits inside the skeleton, never in place of it; every text a whole sentence
    wo = rec.work_order
    skeleton = Prescriber().recommend(outer_race).work_order
    assert skeleton is not None
    assert [s.text for s in wo.steps if s.source == "skeleton"] == [s.text for s in skeleton.steps]
    assert wo.steps[0].code == "loto" and wo.steps[-1].code == "baseline_reset"
    assert all(is_whole_sentence(t) for t in wo.tasks) and is_whole_sentence(rec.narrative.split(". ")[-1])


def test_hostile_note_does_not_steer_the_local_model(local_backend: LocalBackend, plant: dict,  # type: ignore[type-arg]
                                                     outer_race: Evidence) -> None:
    hostile_asset = outer_race.asset.model_copy(update={"notes": HOSTILE_NOTE})
    hostile = outer_race.model_copy(update={"asset": hostile_asset})
    out = asyncio.run(Prescriber(local_backend).arun(hostile))
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
    prescriber = Prescriber(local_backend)
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


@pytest.fixture(scope="module")
def speculative_backend(local_backend: LocalBackend) -> Iterator[LocalBackend]:
    """The local model with n-gram speculative decoding (``ngram-mod``), loaded once for this module."""
    backend = LocalBackend(local_backend.model_path, threads=local_backend.threads,
                           system_prompt=local_backend.system_prompt, speculative="ngram-mod", draft_max=4, ngram_n=3)
    backend.start()
    yield backend
    backend.close()


def test_speculative_decoding_reports_drafts_and_keeps_the_decision(local_backend: LocalBackend,
                                                                    speculative_backend: LocalBackend,
                                                                    outer_race: Evidence) -> None:
    """The same request with speculation off and on: both answers pass the schema and the checks, the
    decision (state, priority, deadline) is the policy's both ways, and the worker reports how many
    tokens it generated in how long and how many drafted tokens were accepted. (Greedy text can differ:
    llama.cpp's CPU kernels round differently for a batch of drafted tokens than for one token, which
    flips near-ties; benchmarks/llm_speculative.py counts how often.)"""
    assert speculative_backend.worker_speculative == {"type": "ngram-mod", "draft_max": 4, "ngram_n": 3}
    plain = asyncio.run(Prescriber(local_backend).arun(outer_race))
    plain_timings = dict(local_backend.last_timings)
    fast = asyncio.run(Prescriber(speculative_backend).arun(outer_race))
    timings = speculative_backend.last_timings
    for out in (plain, fast):
        assert out.backend_used == "local", out.rejected
        _check(out.recommendation, outer_race)
    decided = [(o.recommendation.state, o.recommendation.priority, o.recommendation.deadline) for o in (plain, fast)]
    assert decided[0] == decided[1]
    assert plain_timings["predicted_n"] > 0 and plain_timings["predicted_ms"] > 0 and "draft_n" not in plain_timings
    assert timings["predicted_n"] > 0 and timings["predicted_ms"] > 0
    assert timings["draft_n"] > 0 and 0 <= timings["draft_n_accepted"] <= timings["draft_n"]
