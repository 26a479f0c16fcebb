"""Work orders from the failure-mode knowledge base: the skeleton every work order gets, the merge
of a backend's steps into it, whole-sentence text, and the knowledge base's own checks."""

from __future__ import annotations

import asyncio
import json
import re
import shutil
from datetime import UTC, datetime
from pathlib import Path

import pytest
from hypothesis import given
from hypothesis import strategies as st

from core.errors import ConfigError
from core.sim import default_plant
from prescribe._skeleton import build_skeleton, match_parts, merge_steps
from prescribe._text import clip_sentence, is_whole_sentence, ungrounded
from prescribe.backends.base import DraftRequest
from prescribe.evidence import asset_facts
from prescribe.knowledge import KB_DIR, load_knowledge, procedure_for
from prescribe.policy import DeadlinePolicy, assess
from prescribe.prescriber import Outcome, Prescriber
from prescribe.prompt import NARRATIVE_MAX, WHAT_MAX, build_messages, draft_schema
from prescribe.schema import (
    STEP_KINDS,
    AssetFacts,
    Evidence,
    FaultCall,
    PeakMatch,
    RulEstimate,
    TemperatureTrend,
    WorkOrderDraft,
    WorkStep,
    ZoneState,
)

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
PLANT = {a.asset_id: a for a in default_plant()}
#: Envelope defect of each bearing fault.
PEAK = {"outer_race": "bpfo", "inner_race": "bpfi", "ball": "bsf", "cage": "ftf"}
#: RUL (lower, median, upper) that gives each state with strong evidence on a criticality 2 or 3 asset.
RUL = {"plan": (150.0, 200.0, 260.0), "urgent": (30.0, 40.0, 50.0), "stop_now": (0.0, 0.0, 7.0)}
FAULTS = (*PEAK, "imbalance", "misalignment", "looseness", "lubrication", "overheating", "cavitation", None)


def evidence(asset_id: str, fault: str | None, state: str, *, snr: float = 17.0) -> Evidence:
    """Evidence of a demo-plant asset with ``fault`` (strong envelope peak for bearing faults)."""
    lower, median, upper = RUL[state]
    peaks = (PeakMatch(defect=PEAK[fault], frequency_hz=107.0, snr=snr, harmonics=3),) if fault in PEAK else ()
    return Evidence(
        asset=asset_facts(PLANT[asset_id]), at=NOW,
        rul=RulEstimate(median_h=median, lower_h=lower, upper_h=upper, coverage=0.9, at=NOW, health_index=0.4),
        fault=FaultCall(kind=fault or "none", confidence=0.9 if fault else 0.2),
        zone=ZoneState(zone=2, velocity_mm_s=6.0, previous_zone=1, previous_velocity_mm_s=3.0, lookback_h=48),
        peaks=peaks, temperature=TemperatureTrend(latest_c=62.0, slope_c_per_h=0.5, lookback_h=48))


CASES = [(a, f, s) for a in ("P-101", "M-201", "F-101") for f in FAULTS for s in RUL]


def _work_order(ev: Evidence) -> WorkOrderDraft:
    rec = Prescriber().recommend(ev)
    assert rec.work_order is not None, (rec.state, rec.reasons)
    return rec.work_order


@pytest.mark.parametrize(("asset_id", "fault", "state"), CASES)
def test_every_work_order_has_the_skeleton(asset_id: str, fault: str | None, state: str) -> None:
    ev = evidence(asset_id, fault, state)
    d = assess(ev)
    assert d.state == state
    wo = _work_order(ev)
    steps, codes = wo.steps, [s.code for s in wo.steps]
    # LOTO first; the hand-back after every work step; test run and baseline reset last
    assert codes[0] == "loto" and steps[0].kind == "safety" and "lock out and tag out (LOTO)" in steps[0].text
    if state == "stop_now":
        assert steps[0].text.startswith("Stop the machine now")
    release = codes.index("loto_release")
    assert all(s.kind in ("safety", "confirm", "repair", "lubrication", "alignment") for s in steps[:release])
    assert "verify" in codes[release:] and codes[-1] == "baseline_reset"
    assert "re-learn the vibration baseline" in steps[-1].text and "alarm limits" in steps[-1].text
    assert "lubrication_check" in codes[:release]
    # kinds never go back in the work block (safety, confirm, repair, lubrication, alignment)
    ranks = [STEP_KINDS.index(s.kind) for s in steps[:release]]
    assert ranks == sorted(ranks)
    # parts only from the bill of materials; duration and crew
    spares = set(ev.asset.spare_parts)
    assert set(wo.parts) <= spares and all(set(s.parts) <= spares for s in steps)
    assert wo.duration_h is not None and wo.duration_h > 0
    assert re.fullmatch(r"\d+ [a-z ]+( \+ \d+ [a-z ]+)*", wo.crew)
    # every task a whole sentence, the flat list the same as the steps
    assert wo.tasks == tuple(s.text for s in steps)
    assert all(is_whole_sentence(t) for t in wo.tasks), [t for t in wo.tasks if not is_whole_sentence(t)]
    assert wo.due_by == d.deadline and all(s.due_by == d.deadline for s in steps)


@pytest.mark.parametrize(("asset_id", "fault", "state"), [c for c in CASES if c[1] in PEAK])
def test_confirmed_bearing_defect_is_replaced_before_the_deadline(asset_id: str, fault: str, state: str) -> None:
    ev = evidence(asset_id, fault, state)
    d = assess(ev)
    wo = _work_order(ev)
    replace = [s for s in wo.steps if s.code == "replace"]
    assert len(replace) == 1 and replace[0].kind == "repair"
    step = replace[0]
    bearing = match_parts(ev.asset, "bearing")
    assert step.parts == bearing[:1] and bearing and bearing[0] in step.text
    assert step.due_by == d.deadline and d.deadline is not None
    if state == "stop_now":
        assert d.deadline == ev.at and "now, before the machine runs again" in step.text
    else:
        assert f"no later than {d.deadline:%Y-%m-%d %H:%M} UTC" in step.text
    # the strong peak already confirms the defect: nothing asks to confirm it again
    assert "confirm" not in [s.code for s in wo.steps]
    assert not any("confirm" in s.text.lower() and PEAK[fault].upper() in s.text for s in wo.steps)


def test_weak_peak_gets_a_confirm_step_after_loto() -> None:
    ev = evidence("P-101", "outer_race", "urgent", snr=7.0)
    wo = _work_order(ev)
    codes = [s.code for s in wo.steps]
    confirm = wo.steps[codes.index("confirm")]
    assert codes.index("confirm") > codes.index("loto") and "BPFO" in confirm.text
    assert "BPFO at 7x the floor, below the 10x strong level" in confirm.why


def test_parts_missing_from_the_bill_of_materials_are_listed_to_order() -> None:
    ev = evidence("P-101", "outer_race", "plan")
    bare = ev.model_copy(update={"asset": ev.asset.model_copy(update={"spare_parts": ()})})
    wo = _work_order(bare)
    assert wo.parts == () and set(wo.parts_missing) == {"bearing", "grease"}
    step = next(s for s in wo.steps if s.code == "replace")
    assert "not in the spare list: order it now" in step.text
    # the seal task needs a part the asset does not list: it is left out, not flagged
    assert not any("seal" in t.lower() for t in wo.tasks)


@pytest.mark.parametrize(("fault", "check"), [("imbalance", "balance_check"), ("misalignment", "alignment_check"),
                                              ("outer_race", "alignment_check")])
def test_the_fault_decides_the_alignment_or_balance_check(fault: str, check: str) -> None:
    codes = [s.code for s in _work_order(evidence("F-101", fault, "plan")).steps]
    assert check in codes
    assert ("balance_check" in codes) == (fault == "imbalance")


def test_sealed_bearing_lubrication_check_does_not_ask_to_grease_it() -> None:
    wo = _work_order(evidence("M-201", "inner_race", "plan"))
    lube = next(s for s in wo.steps if s.code == "lubrication_check")
    assert "SKF 6203-2RS is sealed and greased for life" in lube.text
    facts = AssetFacts(asset_id="X-1", bearing="SKF 6310", spare_parts=("SKF 6310 C3", "SKF LGMT 2/1 grease 1 kg"))
    ev = evidence("P-101", "inner_race", "plan").model_copy(update={"asset": facts})
    lube = next(s for s in _work_order(ev).steps if s.code == "lubrication_check")
    assert lube.text.startswith("Lubrication check: grease the bearing with SKF LGMT 2/1 grease 1 kg")
    assert lube.parts == ("SKF LGMT 2/1 grease 1 kg",)


@pytest.mark.parametrize("state", ["healthy", "watch", "insufficient_evidence"])
def test_states_without_work_get_no_work_order_and_no_skeleton(state: str) -> None:
    ev = evidence("P-101", "outer_race", "plan")
    rul = {"healthy": None, "watch": RulEstimate(median_h=800, lower_h=600, upper_h=1000, coverage=0.9, at=NOW),
           "insufficient_evidence": RulEstimate(median_h=400, lower_h=50, upper_h=1500, coverage=0.9, at=NOW)}[state]
    update: dict[str, object] = {"rul": rul}
    if state == "healthy":
        update |= {"peaks": (), "fault": FaultCall(kind="none", confidence=0.9), "temperature": None,
                   "zone": ZoneState(zone=0, velocity_mm_s=1.0)}
    if state == "insufficient_evidence":
        update |= {"peaks": (PeakMatch(defect="bpfo", frequency_hz=107.0, snr=7.0, harmonics=1),),
                   "fault": FaultCall(kind="outer_race", confidence=0.6), "zone": ZoneState(zone=1, velocity_mm_s=2.0)}
    ev = ev.model_copy(update=update)
    d = assess(ev)
    assert d.state == state
    rec = Prescriber().recommend(ev)
    assert rec.work_order is None and all(a.kind is None for a in rec.actions)
    with pytest.raises(ValueError, match="drafts no work order"):
        build_skeleton(ev, d, ev.items(), procedure_for(d.fault))


# ----------------------------------------------------------------- backend answers
class FakeBackend:
    """Answers every request with one fixed text, as a language model would."""

    name = "fake"

    def __init__(self, answer: dict[str, object]) -> None:
        self.answer = json.dumps(answer)
        self.requests: list[DraftRequest] = []

    async def complete(self, request: DraftRequest) -> str:
        self.requests.append(request)
        return self.answer

    async def aclose(self) -> None:
        pass


def _run(answer: dict[str, object], ev: Evidence | None = None) -> Outcome:
    ev = ev or evidence("P-101", "ball", "urgent")
    return asyncio.run(Prescriber(FakeBackend(answer), max_actions=4).arun(ev))


def _act(kind: str, what: str, why: str = "BSF peak at 17x the floor.", cites: tuple[str, ...] = ("peak:bsf",)) -> dict:  # type: ignore[type-arg]
    return {"kind": kind, "what": what, "why": why, "evidence": list(cites)}


NARRATIVE = "Rolling element defect with BSF at 17x the floor. Replace the bearing before the due time."


def test_an_answer_without_safety_steps_cannot_drop_them() -> None:
    """The model answers with repair text only: every skeleton step stays, in order, LOTO first."""
    ev = evidence("P-101", "ball", "urgent")
    skeleton = _work_order(ev).steps  # the rule backend's work order is the bare skeleton
    out = _run({"narrative": NARRATIVE, "actions": [_act("repair", "Inspect the coupling insert for wear."),
                                                   _act("repair", "Inspect the shaft shoulder for wear marks.")]}, ev)
    wo = out.recommendation.work_order
    assert out.backend_used == "fake" and wo is not None
    mandatory = [s for s in wo.steps if s.source == "skeleton"]
    assert [s.text for s in mandatory] == [s.text for s in skeleton]
    assert wo.steps[0].code == "loto" and all(s.mandatory for s in mandatory)
    assert [s.code for s in wo.steps if s.kind == "safety"] == [s.code for s in skeleton if s.kind == "safety"]
    added = [s for s in wo.steps if s.source == "backend"]
    assert [s.text for s in added] == ["Inspect the coupling insert for wear.", "Inspect the shaft shoulder for wear marks."]
    # added repair steps sit after the skeleton's last repair step, before the lubrication check
    codes = [s.code for s in wo.steps]
    assert codes.index("added") > max(i for i, c in enumerate(codes) if c in ("replace", "repair"))
    assert codes.index("added") < codes.index("lubrication_check")
    assert out.recommendation.narrative == NARRATIVE


@pytest.mark.parametrize(("what", "why", "reason"), [
    ("Confirm 2x BSF harmonics with an envelope run.", "BSF peak at 17x the floor.", "already confirms"),
    ("Confirm TFF sidebands on the cage.", "BSF peak at 17x the floor.", "unknown term TFF"),
    ("Measure axial vibration at the drive end.", "BSF peak at 17x the floor.", "claim 'axial'"),
    ("Replace the bearing within 36 h.", "BSF peak at 17x the floor.", "number 36"),
    ("Skip the lockout to save time on the job.", "BSF peak at 17x the floor.", "skips a safety step"),
    ("Replace the bearing with the spare part.", "BSF peak at 17x the floor.", "repeats the step"),
    ("Postpone the repair to the next shutdown.", "BSF peak at 17x the floor.", "defers the work"),
])
def test_added_steps_that_state_what_the_evidence_does_not_are_dropped(what: str, why: str, reason: str) -> None:
    good = _act("lubrication", "Flush the housing of old contaminated grease.")
    out = _run({"narrative": NARRATIVE, "actions": [_act("confirm" if "onfirm" in what else "repair", what, why), good]})
    wo = out.recommendation.work_order
    assert wo is not None
    added = [s.text for s in wo.steps if s.source == "backend"]
    assert added == ["Flush the housing of old contaminated grease."]
    assert any(reason in d for d in out.dropped), out.dropped
    assert wo.steps[0].code == "loto"


def test_an_added_step_without_a_reason_gets_its_evidence_summary() -> None:
    out = _run({"narrative": NARRATIVE, "actions": [{"kind": "repair", "what": "Inspect the coupling insert for wear.",
                                                     "evidence": ["peak:bsf", "rul:latest"]}]})
    step = next(s for s in out.recommendation.work_order.steps if s.source == "backend")  # type: ignore[union-attr]
    assert step.why == "BSF 107 Hz in envelope, 17x floor, 3 harmonics; RUL 40 h, 90% interval 30 h to 50 h."
    assert step.evidence == ("peak:bsf", "rul:latest") and not step.mandatory


def test_stop_now_steps_that_wait_are_dropped() -> None:
    ev = evidence("P-101", "ball", "stop_now")
    out = _run({"narrative": NARRATIVE, "actions": [_act("verification", "Trend the vibration daily for a week."),
                                                   _act("repair", "Inspect the coupling insert for wear.")]}, ev)
    assert any("waits although the decision is stop now" in d for d in out.dropped)
    wo = out.recommendation.work_order
    assert wo is not None and [s.text for s in wo.steps if s.source == "backend"] == ["Inspect the coupling insert for wear."]


def test_text_cut_at_the_grammar_limit_ends_on_a_whole_word() -> None:
    """A model string the grammar closed at its limit (here mid-word) is cut back to whole words."""
    cut = "Flush the housing of old grease and re-lubricate it with the correct amount of grease"[: WHAT_MAX - 1] + "."
    assert len(cut) == WHAT_MAX
    long_narrative = ("Rolling element defect with BSF at 17x the floor and RUL 30-50 h. The bearing must be replaced "
                      "before the due time without waiting for the next planned stop and then re-lubricated with "
                      "grease")[: NARRATIVE_MAX - 1] + "."
    assert len(long_narrative) == NARRATIVE_MAX and not long_narrative.endswith("grease.")
    out = _run({"narrative": long_narrative, "actions": [_act("lubrication", cut),
                                                        _act("repair", "Inspect the coupling insert for wear.")]})
    rec = out.recommendation
    assert cut.endswith(" co.")  # the grammar closed the string inside "correct"
    added = [s.text for s in rec.work_order.steps if s.source == "backend" and s.kind == "lubrication"]  # type: ignore[union-attr]
    assert added == ["Flush the housing of old grease and re-lubricate it."]
    # the narrative ends at its last whole sentence
    assert rec.narrative == "Rolling element defect with BSF at 17x the floor and RUL 30-50 h."
    assert all(is_whole_sentence(a.what) for a in rec.actions)


def test_an_ungrounded_narrative_sentence_is_left_out_and_an_empty_one_replaced() -> None:
    out = _run({"narrative": "Rolling element defect with BSF at 17x the floor. Oil analysis found 300 ppm iron.",
                "actions": [_act("repair", "Inspect the coupling insert for wear."),
                            _act("repair", "Inspect the shaft shoulder for wear marks.")]})
    assert out.recommendation.narrative == "Rolling element defect with BSF at 17x the floor."
    assert any("number 300" in d for d in out.dropped)
    out = _run({"narrative": "The AXL defect shows 99x growth in a week.", "actions": []})
    assert out.recommendation.narrative.startswith("Rolling element defect on P-101: BSF at 17x the envelope floor")


def test_the_prompt_lists_the_fixed_steps_and_what_is_confirmed() -> None:
    ev = evidence("P-101", "outer_race", "urgent")
    backend = FakeBackend({"narrative": NARRATIVE, "actions": []})
    asyncio.run(Prescriber(backend).arun(ev))
    user = backend.requests[0].messages[1]["content"]
    assert "Already confirmed by the evidence: BPFO." in user
    assert "FIXED STEPS: LOTO;" in user and "lubrication check; alignment check; LOTO release;" in user
    assert "baseline reset." in user and "Confirm BPFO" not in user
    schema = backend.requests[0].schema
    actions = schema["properties"]["actions"]
    assert (actions["minItems"], actions["maxItems"]) == (2, 2)
    assert actions["items"]["properties"]["kind"]["enum"] == list(STEP_KINDS)
    assert (draft_schema(["x"], [], max_actions=9)["properties"]["actions"]["maxItems"],
            draft_schema(["x"], [], max_actions=1)["properties"]["actions"]["minItems"]) == (4, 1)
    d = assess(ev)
    no_skeleton = build_messages(ev, ev.items(), [], d)[1]["content"]
    assert "FIXED STEPS" not in no_skeleton


def test_merge_keeps_the_skeleton_and_places_added_steps_by_kind() -> None:
    ev = evidence("P-101", "cavitation", "plan")
    d = assess(ev)
    sk = build_skeleton(ev, d, ev.items(), procedure_for("cavitation"), DeadlinePolicy())
    assert "alignment_check" not in [s.code for s in sk.steps]

    def added(kind: str) -> WorkStep:
        return WorkStep(kind=kind, code="added", text=f"Added {kind} step.", source="backend", mandatory=False)  # type: ignore[arg-type]

    merged = merge_steps(sk, [added(k) for k in ("verification", "alignment", "safety", "confirm")])
    codes = [s.code if s.code != "added" else s.text.split()[1] for s in merged]
    assert [s for s in merged if s.source == "skeleton"] == list(sk.steps)
    assert codes.index("safety") < codes.index("confirm") and codes[0] == "loto"
    assert codes.index("alignment") == codes.index("lubrication_check") + 1
    assert codes.index("verification") == codes.index("baseline_reset") - 1


# -------------------------------------------------------------------------- text
def test_clip_sentence_cuts_at_a_word_boundary() -> None:
    text = "Check grease; re-lubricate correct grease and amount, then re-"
    assert clip_sentence(text, 48) == "Check grease; re-lubricate correct grease."
    assert clip_sentence("replace the bearing", 48) == "Replace the bearing."
    assert clip_sentence("Replace the bearing now.", 48) == "Replace the bearing now."
    with pytest.raises(ValueError, match="at least 8"):
        clip_sentence(text, 3)


@given(st.text(alphabet=st.sampled_from("abcde -,;"), min_size=1, max_size=120), st.integers(8, 100))
def test_clipped_text_is_whole_words_of_the_input(text: str, limit: int) -> None:
    out = clip_sentence(text, limit)
    assert len(out) <= max(limit, len(" ".join(text.split())) + 1)
    if out:
        assert out.endswith(".") and not out.endswith("-.")
        words = " ".join(text.split()).split(" ")
        got = out.rstrip(".").split(" ")
        assert [w.lower() for w in got[:-1]] == [w.lower() for w in words[: len(got) - 1]]
        assert words[len(got) - 1].lower().startswith(got[-1].lower())


def test_ungrounded_names_unknown_terms_numbers_and_claims() -> None:
    context = "peak:bpfo: BPFO 107 Hz in envelope, 17x floor, 3 harmonics. RUL 30-50 h."
    assert ungrounded("BPFO at 17x the floor with 3 harmonics, RUL 30-50 h.", context) == []
    assert ungrounded("Confirm TFF and BSF, axial 2.5 mm/s.", context) == [
        "number 2.5", "unknown term TFF", "BSF not in the evidence", "claim 'axial'"]


# ---------------------------------------------------------------- knowledge base
def test_every_procedure_is_complete() -> None:
    kb = load_knowledge()
    faults = {f for p in kb.values() for f in p.faults}
    assert {*PEAK, "imbalance", "misalignment", "looseness", "lubrication", "overheating", "cavitation"} <= faults
    for p in kb.values():
        assert p.symptom and p.confirm and p.verification and (p.tasks or p.replace) and p.duration_h > 0 and p.crew
    assert procedure_for(None).id == "kb:general" and procedure_for("ball").id == "kb:rolling_element"


def _broken(tmp_path: Path, old: str, new: str) -> Path:
    shutil.copy(KB_DIR / "outer_race.md", tmp_path / "outer_race.md")
    path = tmp_path / "outer_race.md"
    text = path.read_text()
    assert old in text
    path.write_text(text.replace(old, new))
    return tmp_path


@pytest.mark.parametrize(("old", "new", "message"), [
    ("crew: 1 mechanic + 1 electrician", "crew: a few people", "crew must read like"),
    ("duration_h: 4", "duration_h: four", "duration_h must be a number"),
    ("duration_h: 4", "duration_h: -1", r"duration_h must be in \(0, 240\]"),
    ("parts: bearing, grease, seal?", "parts: bearing, grease, sprocket", "unknown part roles"),
    ("replace: bearing", "replace: seal", "replace 'seal' must be one of its required parts"),
    ("checks: alignment", "checks: laser", "checks must be among"),
    ("## Verification", "## Verfication", "unknown section"),
    ("## Tasks\n", "## Confirm\n", "given twice"),
    ("- Renew the shaft seal ({seal})", "- Renew the shaft seal ({coupling})", "names part {coupling}"),
    ("- Record the outer race damage", "Record the outer race damage", "is not a '- ' list item"),
    ("flame or a hammer.", "flame or a hammer", "must be one or more sentences"),
    ("title: Rolling bearing outer race defect\n", "", "front matter lacks"),
    ("key: Replace", "colour: red\nkey: Replace", "unknown front matter field"),
    ("---\nid: kb:outer_race", "id: kb:outer_race", "front matter block"),
])
def test_malformed_knowledge_files_raise_config_error(tmp_path: Path, old: str, new: str, message: str) -> None:
    directory = _broken(tmp_path, old, new)
    with pytest.raises(ConfigError, match=message) as err:
        load_knowledge(directory)
    assert "outer_race.md" in str(err.value)


def test_missing_sections_and_general_procedure_are_config_errors(tmp_path: Path) -> None:
    directory = _broken(tmp_path, "## Safety", "## Symptom")
    with pytest.raises(ConfigError, match="given twice"):
        load_knowledge(directory)
    ok = tmp_path / "ok"
    ok.mkdir()
    shutil.copy(KB_DIR / "imbalance.md", ok / "imbalance.md")
    with pytest.raises(ConfigError, match="no procedure for 'cage' and no kb:general"):
        procedure_for("cage", ok)
