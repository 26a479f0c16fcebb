"""The deterministic work-order skeleton, and the merge of a backend's added steps into it.

Every work order (decision states ``plan``, ``urgent`` and ``stop_now``) gets the same skeleton,
filled from the failure-mode procedure (:mod:`prescribe.knowledge`), the asset's bill of
materials and the policy's decision:

1. isolate and lock out / tag out (LOTO), then the procedure's own safety steps;
2. confirm the fault, only when the evidence does not already confirm it;
3. replace the part (due by the policy's deadline) and the procedure's repair tasks, with part
   numbers from the bill of materials (the main repair step also cites the what-if twin's choice,
   ``whatif:choice``, when the evidence carries one);
4. lubrication check; 5. alignment or balance check where the fault calls for it;
6. guards back, locks and tags off; 7. test run, then the vibration baseline and alarm limits reset;

with the procedure's estimated duration and crew. A backend (language model or templates) only
adds steps and writes the narrative: its steps are screened (:func:`screen_added`) and merged
after the skeleton's steps of the same kind (:func:`merge_steps`); no skeleton step is ever
dropped or reordered.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

from prescribe._text import DEFECT_ABBREVIATIONS, clip_sentence, is_whole_sentence, plain_text, ungrounded
from prescribe.evidence import rul_text
from prescribe.knowledge import PART_ROLES, Procedure
from prescribe.policy import DeadlinePolicy, Decision
from prescribe.schema import STEP_KINDS, AssetFacts, Evidence, EvidenceItem, StepKind, WorkStep, risk_text

__all__ = ["FAULT_TEXT", "NARRATIVE_LIMIT", "WHATIF_ID", "Skeleton", "build_skeleton", "match_parts", "merge_steps",
           "screen_added", "template_narrative", "whatif_due_note"]

FAULT_TEXT = {"outer_race": "outer race defect", "inner_race": "inner race defect", "ball": "rolling element defect",
              "cage": "cage defect", "imbalance": "rotor imbalance", "misalignment": "misalignment",
              "looseness": "mechanical looseness", "lubrication": "lubrication problem", "overheating": "bearing overheating",
              "cavitation": "pump cavitation"}
#: What has to be locked out, by asset kind.
_ENERGY = {"pump": "the motor supply and the suction and discharge valves",
           "fan": "the motor supply, and block the fan wheel against windmilling",
           "motor": "the motor supply and the driven machine"}
_SEALED = re.compile(r"-2(Z|RS)\b", re.IGNORECASE)
_PLACEHOLDER = re.compile(r"\{([a-z_]+)\}")
_WORD = re.compile(r"[a-z0-9]+")
#: Words that say nothing about what a step does (function words and the words every step uses).
_STOP = frozenset({"the", "and", "with", "for", "from", "that", "this", "then", "after", "before", "check", "into",
                   "each", "every", "them", "their", "its", "all", "any", "are", "was", "has", "have", "been",
                   "against", "ensure", "make", "sure", "properly", "prevent", "further", "damage", "bearing",
                   "machine", "pump", "motor", "drive", "end"})
_SUFFIX = re.compile(r"(ing|ed|es|s)$")
_RENEWS = re.compile(r"^(replace|renew|change|exchange|swap|fit)\b", re.IGNORECASE)
#: Backend wording that would undo the decision or a safety step.
_UNSAFE = re.compile(r"\b(skip|bypass|defeat|override|without (lock\w*|isolat\w*|loto)|no need to|postpone|defer"
                     r"|continue (running|operation|monitoring)|no action)\b", re.IGNORECASE)
_LATER = re.compile(r"\b(next planned stop|trend|monitor|wait)\b", re.IGNORECASE)
_CONFIRMS = re.compile(r"\b(confirm|verify|check|measure|look for)\w*\b", re.IGNORECASE)
#: Longest narrative a backend's answer may carry (:class:`prescribe.prompt.LLMDraft`), the rule
#: templates' included.
NARRATIVE_LIMIT = 500
#: The evidence item of the what-if twin's choice (:func:`prescribe.schema.evidence_items`).
WHATIF_ID = "whatif:choice"


@dataclass(frozen=True)
class Skeleton:
    """The mandatory part of a work order.

    Attributes:
        steps: the steps, in order (LOTO first).
        procedure: the failure-mode procedure it follows.
        parts: bill-of-materials entries it uses.
        parts_missing: part roles it needs that the bill of materials lacks.
        duration_h: estimated duration (the procedure's).
        crew: who does the work (the procedure's).
        title: the work order's title.
        headline: the main repair in a few words (for the summary).
        confirmed: whether the evidence already confirms the fault (no confirm step then).
        confirmed_by: the evidence items that confirm it.
    """

    steps: tuple[WorkStep, ...]
    procedure: Procedure
    parts: tuple[str, ...]
    parts_missing: tuple[str, ...]
    duration_h: float
    crew: str
    title: str
    headline: str
    confirmed: bool
    confirmed_by: tuple[str, ...] = field(default=())

    def labels(self) -> list[str]:
        """Each step in a few words, for the prompt (the model must not repeat them)."""
        return [_label(s) for s in self.steps]


def _label(s: WorkStep) -> str:
    fixed = {"loto": "LOTO", "lubrication_check": "lubrication check", "alignment_check": "alignment check",
             "balance_check": "balance check", "loto_release": "LOTO release", "baseline_reset": "baseline reset"}
    if s.code in fixed:
        return fixed[s.code]
    words = s.text.rstrip(".").split()
    return " ".join(words[:5]) + (" ..." if len(words) > 5 else "")


# --------------------------------------------------------------------------- parts
def _bearing_numbers(facts: AssetFacts) -> list[str]:
    return re.findall(r"\d{3,}", facts.bearing)


def match_parts(facts: AssetFacts, role: str) -> tuple[str, ...]:
    """The asset's bill-of-materials entries that fill ``role`` (``bearing``, ``seal``, ``grease`` ...).

    A bearing is found by its designation's number (``6310`` in ``SKF 6310-2Z``), or by the word
    bearing when the designation has none; other roles by their words (:data:`PART_ROLES`). An
    entry that names another role (a bearing grease) is not a bearing.

    Raises:
        ValueError: ``role`` is not a known part role.
    """
    if role not in PART_ROLES:
        raise ValueError(f"role must be one of {sorted(PART_ROLES)}, got {role!r}")
    out = []
    for part in facts.spare_parts:
        low = part.lower()
        other = any(w in low for r, words in PART_ROLES.items() if r != "bearing" for w in words)
        if role == "bearing":
            numbers = _bearing_numbers(facts)
            hit = (any(n in part for n in numbers) if numbers else "bearing" in low) and not other
        else:
            hit = any(w in low for w in PART_ROLES[role])
        if hit:
            out.append(part)
    return tuple(out)


# ------------------------------------------------------------------------- building
def _cite(items: Sequence[EvidenceItem], *wanted: str) -> tuple[str, ...]:
    ids = [i.id for i in items]
    got = tuple(dict.fromkeys(w for w in wanted if w in ids))[:4]
    return got or (ids[0],)


def _due(d: Decision) -> str:
    if d.deadline is None:
        return "the due time"
    margin = f" (RUL lower bound minus the {d.margin_h:.0f} h margin)" if d.margin_h is not None else ""
    return f"{d.deadline:%Y-%m-%d %H:%M} UTC{margin}"


def _when(d: Decision) -> str:
    if d.state == "stop_now":
        return "now, before the machine runs again"
    if d.state == "urgent":
        return f"without waiting for a planned stop, no later than {_due(d)}"
    return f"at the next planned stop, no later than {_due(d)}"


def _confirmation(ev: Evidence, proc: Procedure, policy: DeadlinePolicy) -> tuple[str, ...]:
    """The evidence ids that already confirm the procedure's fault (a strong own peak)."""
    return tuple(f"peak:{p.defect}" for p in ev.peaks
                 if f"peak:{p.defect}" in proc.confirmed_by and p.snr >= policy.strong_peak_snr)


def _bearing_name(facts: AssetFacts) -> str:
    designation = plain_text(facts.bearing)
    return f"drive-end bearing {designation}" if designation and designation != "generic" else "drive-end bearing"


class _Parts:
    """Part roles resolved against the bill of materials, remembering what is used and missing."""

    def __init__(self, facts: AssetFacts, proc: Procedure) -> None:
        self.facts, self.proc = facts, proc
        self.used: list[str] = []
        self.missing: list[str] = []

    def get(self, role: str) -> tuple[str, ...]:
        found = match_parts(self.facts, role)
        if found:
            self.used += [p for p in found if p not in self.used]
        elif role in self.proc.parts and role not in self.missing:
            self.missing.append(role)
        return found

    def fill(self, text: str) -> tuple[str, tuple[str, ...]] | None:
        """``text`` with each ``{role}`` replaced by its part numbers; ``None`` when an optional
        role is not in the bill of materials (the task does not apply to this asset)."""
        used: list[str] = []
        for role in _PLACEHOLDER.findall(text):
            found = match_parts(self.facts, role)
            if not found and role not in self.proc.parts:
                return None
            found = self.get(role)
            used += found
            word = role.replace("_", " ")
            text = text.replace(f"{{{role}}}", ", ".join(plain_text(p) for p in found) if found
                                else f"the specified {word}, not in the spare list: order it")
        return text, tuple(used)


#: The checks after reassembly: text and why.
_CHECKS = {
    "alignment": ("Alignment check: after reassembly, laser-check the shaft alignment and soft foot against the "
                  "coupling maker's tolerance and record the as-left values.",
                  "reassembly disturbs the alignment, and misalignment loads the new bearing"),
    "balance": ("Balance check: after reassembly, measure the 1x vibration and trim-balance the rotor in place to "
                "ISO 21940 grade G6.3 if it is above the limit.", "residual imbalance shortens bearing life"),
}


def _lubrication_text(facts: AssetFacts, grease: tuple[str, ...]) -> str:
    bearing = match_parts(facts, "bearing")
    if bearing and _SEALED.search(bearing[0]):
        return (f"Lubrication check: {plain_text(bearing[0])} is sealed and greased for life; check the bearing turns "
                "smoothly, with no grease leaking from its seals, and that the housing is clean and dry.")
    if grease:
        return (f"Lubrication check: grease the bearing with {plain_text(grease[0])} to the specified amount, "
                "without over-greasing, and record the amount and date.")
    return ("Lubrication check: grease the bearing with the specified grease to the specified amount, without "
            "over-greasing; no grease is in the spare list, so order it.")


def build_skeleton(ev: Evidence, d: Decision, items: Sequence[EvidenceItem], proc: Procedure,
                   policy: DeadlinePolicy | None = None) -> Skeleton:
    """The mandatory steps of the work order for ``ev`` and its decision ``d``.

    Args:
        ev: the evidence.
        d: the policy's decision (``plan``, ``urgent`` or ``stop_now``).
        items: the citable evidence items.
        proc: the failure-mode procedure (``prescribe.knowledge.procedure_for(d.fault)``).
        policy: the policy whose ``strong_peak_snr`` says when a peak confirms a fault.

    Raises:
        ValueError: the decision state drafts no work order.
    """
    if not d.works_on_machine:
        raise ValueError(f"decision state {d.state!r} drafts no work order; only plan, urgent and stop_now do")
    policy = policy or DeadlinePolicy()
    facts, kb = ev.asset, (proc.id,)
    parts = _Parts(facts, proc)
    fault = FAULT_TEXT.get(d.fault or "", "deteriorating condition")
    own = [f"peak:{p.defect}" for p in ev.peaks if f"peak:{p.defect}" in proc.confirmed_by]
    basis = _cite(items, "rul:latest", *own, "fault:class", "zone:latest", "temp:latest")
    confirmed_by = _confirmation(ev, proc, policy)
    steps: list[WorkStep] = []

    def add(kind: StepKind, code: str, text: str, why: str, cites: tuple[str, ...], used: tuple[str, ...] = ()) -> None:
        steps.append(WorkStep(kind=kind, code=code, text=clip_sentence(text, 300), why=clip_sentence(why, 400),
                              parts=used, evidence=cites, kb=kb, due_by=d.deadline))

    # 1. safety
    energy = _ENERGY.get(facts.kind, "every energy source")
    opening = {"stop_now": "Stop the machine now, then isolate it", "urgent": "At the earliest stop, isolate the machine",
               }.get(d.state, "At the next planned stop, isolate the machine")
    add("safety", "loto", f"{opening} and lock out and tag out (LOTO) {energy}; prove zero energy before any work.",
        f"no work on a machine that can start, turn or hold pressure; criticality {facts.criticality} of 3", basis)
    for text in proc.safety:
        add("safety", "safety", text, f"safety step of the {proc.title.lower()} procedure", basis)
    # 2. confirm what the evidence does not already show
    if not confirmed_by:
        weak = [f"{p.defect.upper()} at {p.snr:.0f}x the floor" for p in ev.peaks if f"peak:{p.defect}" in own]
        why = (f"{fault} not yet confirmed: " + (", ".join(weak) + f", below the {policy.strong_peak_snr:.0f}x strong level"
                                                  if weak else "no measurement shows its cause directly")
               + f"; {rul_text(ev)}")
        add("confirm", "confirm", proc.confirm, why, _cite(items, *own, "fault:class", "zone:trend", "zone:latest"))
    # 3. repair
    headline = f"Repair the {proc.title.lower()}"
    # the main repair step cites the what-if's simulated risk and cost of when to do it
    whatif = (WHATIF_ID,) if any(i.id == WHATIF_ID for i in items) else ()
    if proc.replace is not None:
        found = parts.get(proc.replace)
        name = _bearing_name(facts) if proc.replace == "bearing" else proc.replace.replace("_", " ")
        spare = (f"spare {plain_text(found[0])}" if found
                 else "a new one of the same designation (not in the spare list: order it now)")
        headline = f"Replace the {name} with {spare}"
        state = "confirmed" if confirmed_by else "indicated"
        add("repair", "replace", f"{headline} {_when(d)}.", f"{fault} {state}; {rul_text(ev)}",
            (*_cite(items, "rul:latest", *own, "fault:class"), *whatif), found[:1])
    for text in proc.tasks:
        filled = parts.fill(text)
        if filled is not None:
            main = proc.replace is None and not any(st.kind == "repair" for st in steps)
            add("repair", "repair", filled[0], f"step of the {proc.title.lower()} procedure",
                (*basis, *whatif) if main else basis, filled[1])
    if proc.replace is None and steps and steps[-1].kind == "repair":
        headline = steps[-1].text.rstrip(".")
    # 4. lubrication
    grease = parts.get("grease") if "grease" in proc.parts else match_parts(facts, "grease")
    parts.used += [g for g in grease if g not in parts.used]
    add("lubrication", "lubrication_check", _lubrication_text(facts, grease), "wrong or missing lubrication is the "
        "commonest cause of bearing failure", _cite(items, "temp:trend", "temp:latest", "spares"), grease[:1])
    # 5. alignment or balance
    for check in proc.checks:
        text, why = _CHECKS[check]
        add("alignment", f"{check}_check", text, why, _cite(items, "zone:trend", "zone:latest"))
    # 6. hand back, 7. verify and reset the baseline
    add("safety", "loto_release", "Refit the guards, clear the crew and tools, then remove the locks and tags and "
        "hand the machine back to operations.", "the machine returns to service only when it is safe to run", basis)
    add("verification", "verify", "Run the machine at normal load and check that overall velocity is back in ISO "
        "20816 zone A or B and the bearing temperature settles.", "proves the repair removed the fault",
        _cite(items, "zone:latest", "temp:latest", *own))
    for text in proc.verification:
        add("verification", "verify", text, f"check of the {proc.title.lower()} procedure",
            _cite(items, *own, "zone:latest"))
    add("verification", "baseline_reset", "Reset the baseline: re-learn the vibration baseline over the first 24 h "
        "of running, set the alarm limits from it, and complete this work order with the fault found so the life "
        "count restarts.", "the old baseline and RUL describe the part that was removed",
        _cite(items, "zone:latest", "rul:latest"))

    title_words = "replace " + _bearing_name(facts) if proc.replace == "bearing" else proc.title.lower()
    return Skeleton(steps=tuple(steps), procedure=proc, parts=tuple(parts.used), parts_missing=tuple(parts.missing),
                    duration_h=proc.duration_h, crew=proc.crew,
                    title=f"{facts.asset_id}: {title_words} ({fault})"[:200], headline=headline,
                    confirmed=bool(confirmed_by), confirmed_by=confirmed_by)


# ---------------------------------------------------------------------------- merge
def _content(text: str) -> set[str]:
    words = (_SUFFIX.sub("", w) if len(w) > 5 else w for w in _WORD.findall(text.lower()) if w not in _STOP)
    return {w for w in words if len(w) >= 4}


def screen_added(step: WorkStep, skeleton: Skeleton, ev: Evidence, context: str, state: str,
                 kept: Sequence[WorkStep] = ()) -> str | None:
    """Why a backend's added step must be dropped, or ``None`` to keep it.

    Dropped: text that is not a whole sentence; a number, term or claim its prompt did not show
    (:func:`prescribe._text.ungrounded`); wording that defers the work or skips a safety step; a
    confirmation of what the evidence already confirms; a stop-now step that waits or trends;
    and a repeat of a step already in the work order.
    """
    text = f"{step.text} {step.why}"
    if not is_whole_sentence(step.text):
        return "not a whole sentence"
    facts = ungrounded(text, context)
    if facts:
        return "states what the evidence does not: " + ", ".join(facts)
    if _UNSAFE.search(text):
        return "defers the work or skips a safety step"
    if state == "stop_now" and _LATER.search(step.text):
        return "waits although the decision is stop now"
    confirmed = {DEFECT_ABBREVIATIONS.get(t) for t in re.findall(r"[A-Z]{3,4}", step.text)} & {
        c.split(":")[1] for c in skeleton.confirmed_by}
    if confirmed and (step.kind == "confirm" or _CONFIRMS.search(step.text)):
        return f"asks to confirm {', '.join(sorted(c.upper() for c in confirmed if c))}, which the evidence already confirms"
    if step.kind == "confirm" and skeleton.confirmed:
        return "asks to confirm a fault the evidence already confirms"
    replaced = next((s for s in skeleton.steps if s.code == "replace"), None)
    if replaced is not None and _RENEWS.search(step.text) and (
            "bearing" in step.text.lower() or any(p in step.text for p in replaced.parts)):
        return f"repeats the step {replaced.text[:60]!r}"
    words = _content(step.text)
    if not words:
        return "says nothing specific"
    for other in (*skeleton.steps, *kept):
        if len(words & _content(other.text)) >= 0.6 * len(words):
            return f"repeats the step {other.text[:60]!r}"
    return None


def merge_steps(skeleton: Skeleton, added: Sequence[WorkStep]) -> tuple[WorkStep, ...]:
    """The skeleton's steps in order, each added step after the skeleton's last step of its kind.

    A kind the skeleton lacks goes after the last step of an earlier kind; added safety steps go
    before the confirm step (not after the final hand-back), added verification before the
    baseline reset. No skeleton step is dropped or moved.
    """
    out = list(skeleton.steps)
    rank = {k: i for i, k in enumerate(STEP_KINDS)}
    tail = {"loto_release", "verify", "baseline_reset"}
    for step in added:
        if step.kind == "verification":
            at = next(i for i, s in enumerate(out) if s.code == "baseline_reset") if any(
                s.code == "baseline_reset" for s in out) else len(out)
        else:
            # the work block: everything before the hand-back and the test run
            block = [i for i, s in enumerate(out) if s.code not in tail and rank[s.kind] <= rank[step.kind]]
            at = block[-1] + 1 if block else 0
        out.insert(at, step)
    return tuple(out)


# ------------------------------------------------------------------------ narrative
def _whatif_due(ev: Evidence) -> datetime | None:
    """Wall-clock time of the what-if's chosen repair (``None``: none in reach)."""
    w = ev.whatif
    if w is None or w.repair_in_h is None:
        return None
    return ev.at + timedelta(hours=w.repair_in_h / ev.time_scale)


def _after_deadline(ev: Evidence, d: Decision) -> bool:
    """Whether the what-if's chosen option would repair after the decision's due time."""
    if ev.whatif is None or d.deadline is None or ev.whatif.option == "repair_now":
        return False
    due = _whatif_due(ev)
    return due is None or due > d.deadline + timedelta(seconds=1)


#: Each what-if option as what the crew would be doing, for sentences.
_DOING = {"run_on": "running on as is", "derate": "derating and repairing at the next planned stop",
          "repair_next_stop": "repairing at the next planned stop", "repair_now": "repairing now"}


def whatif_due_note(ev: Evidence, d: Decision) -> str:
    """How the what-if's choice meets the decision's due time, in one sentence ("" without a what-if).

    The decision's state and due time are the policy's and never move: a chosen option whose
    repair comes after the due time is named, and the due time stands (docs/decisions.md, "What-if").
    """
    w = ev.whatif
    if w is None:
        return ""
    doing = _DOING[w.option]
    if d.deadline is None:
        return f"The what-if favours {doing}; the decision ({d.state}) is the policy's."
    due = f"{d.deadline:%Y-%m-%d %H:%M} UTC"
    if w.option == "repair_now":
        return f"The what-if favours {doing}, before the decision's due time ({due}), which stays the latest."
    if _after_deadline(ev, d):
        return (f"The what-if favours {doing}, which would come after the decision's due time ({due}); "
                "that due time stands (safety first): do the work by then.")
    return f"The what-if favours {doing}, within the decision's due time ({due})."


def _whatif_sentence(ev: Evidence, d: Decision, *, alternative: bool = True) -> str:
    """The what-if's trade-off in plain words: the chosen option's risk and cost, and the best alternative's."""
    w = ev.whatif
    if w is None:
        return ""
    cur = w.currency.upper()
    doing = _DOING[w.option]
    if w.option in ("derate", "repair_next_stop") and w.repair_in_h is not None:
        doing += f" in {w.repair_in_h:.0f} h"
    first = "of failing first" if w.option != "run_on" else (
        f"of failing within {w.repair_in_h:.0f} h" if w.repair_in_h is not None else "of failing")
    text = (f"What-if over {w.futures} simulated futures: {doing} risks {risk_text(w.p_fail_before_repair)} "
            f"{first} for an expected {w.expected_cost:,.0f} {cur}")
    if alternative and w.alternative is not None and w.alternative_p_fail is not None \
            and w.alternative_cost is not None:
        text += (f", against {risk_text(w.alternative_p_fail)} and {w.alternative_cost:,.0f} {cur} for "
                 f"{_DOING[w.alternative]}")
    if not w.within_limit:
        text += f"; no option stays within the {risk_text(w.risk_limit)} risk limit"
    if _after_deadline(ev, d):
        text += "; it would come after the due time, which stands"
    return text


def template_narrative(ev: Evidence, d: Decision, skeleton: Skeleton) -> str:
    """The rule templates' narrative: the fault, the facts that show it, what is due when, and the
    what-if's trade-off when the evidence has one.

    Within :data:`NARRATIVE_LIMIT`, the trade-off comes first: the zone and temperature facts are
    left out for it, then its alternative, and only then the trade-off itself.
    """
    fault = FAULT_TEXT.get(d.fault or "", "deteriorating condition")
    core = [f"{p.defect.upper()} at {p.snr:.0f}x the envelope floor with {p.harmonics} harmonics" for p in ev.peaks[:2]]
    if ev.rul is not None:
        core.append(rul_text(ev, coverage=True))
    more = []
    if ev.zone is not None:
        more.append(f"ISO 20816 zone {'ABCD'[ev.zone.zone]} at {ev.zone.velocity_mm_s:.1f} mm/s")
    if ev.temperature is not None and ev.temperature.latest_c >= 60:
        more.append(f"bearing at {ev.temperature.latest_c:.0f} degC")
    act = skeleton.headline[0].lower() + skeleton.headline[1:]
    second = clip_sentence(plain_text({"stop_now": f"Stop it now and {act} before it runs again",
                                       "urgent": f"Without waiting for a planned stop, {act} by {_due(d)}"}.get(
                                           d.state, f"At the next planned stop, {act} by {_due(d)}")), 300)

    def first(facts: list[str]) -> str:
        head = f"{fault[0].upper()}{fault[1:]} on {ev.asset.asset_id}" + (": " + ", ".join(facts) if facts else "")
        return clip_sentence(plain_text(head), 300)

    for facts, alternative in (([*core, *more], True), (core, True), ([*core, *more], False), (core, False)):
        tradeoff = clip_sentence(plain_text(_whatif_sentence(ev, d, alternative=alternative)), 300)
        text = " ".join(t for t in (first(facts), second, tradeoff) if t)
        if not tradeoff or len(text) <= NARRATIVE_LIMIT:
            return text
    return f"{first([*core, *more])} {second}"
