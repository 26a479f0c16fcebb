"""Pydantic schema of the prescriber: evidence in, recommendation and work-order draft out.

Evidence is typed (RUL interval, fault call, ISO zone, spectral peaks, alarms, temperature,
past work orders, the asset, the what-if twin's choice) and every fact is exposed as an :class:`EvidenceItem` with a
stable id (``rul:latest``, ``peak:bpfo``, ``alarm:17`` ...) that recommendations cite
(:func:`evidence_items`). Operator-entered text (asset name and notes, alarm messages, work-order
titles and outcomes) only ever appears in an item quoted by :func:`quote_data`.

This module is the bottom of ``prescribe``: it imports nothing of the package.
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import Literal

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

from core.iso import ZONES
from core.maintenance import Priority
from core.wire import rul_at_cap

__all__ = [
    "EVIDENCE_ID_PATTERN",
    "KB_ID_PATTERN",
    "STEP_KINDS",
    "TEXT_CHARS",
    "Action",
    "AlarmFact",
    "AssetFacts",
    "Evidence",
    "EvidenceItem",
    "FaultCall",
    "LifeShare",
    "PastWorkOrder",
    "PeakMatch",
    "Recommendation",
    "RulEstimate",
    "State",
    "Status",
    "StepKind",
    "TemperatureTrend",
    "WhatIfFact",
    "WhatIfOption",
    "WorkOrderDraft",
    "WorkStep",
    "ZoneState",
    "evidence_items",
    "quote_data",
    "risk_text",
    "whatif_option_text",
    "whatif_summary",
]

Status = Literal["action", "monitor", "insufficient_evidence"]
#: The what-if twin's options (:mod:`core.twin`): run on, derate until the next planned stop, repair
#: at the next planned stop, repair now.
WhatIfOption = Literal["run_on", "derate", "repair_next_stop", "repair_now"]
#: The decision state of :func:`prescribe.policy.assess` (docs/decisions.md): ``healthy`` and
#: ``watch`` are ``monitor``, ``plan``, ``urgent`` and ``stop_now`` are ``action``.
State = Literal["healthy", "watch", "plan", "urgent", "stop_now", "insufficient_evidence"]
#: What a work-order step does, in the order the skeleton lists them (docs/decisions.md, "Work orders").
StepKind = Literal["safety", "confirm", "repair", "lubrication", "alignment", "verification"]
STEP_KINDS: tuple[StepKind, ...] = ("safety", "confirm", "repair", "lubrication", "alignment", "verification")
#: Characters of step and action text: plain ASCII words, numbers and punctuation (a character
#: class for regular expressions). No control characters, markup or link syntax.
TEXT_CHARS = r"[A-Za-z0-9 ,.;:()/+%'-]"
EVIDENCE_ID_PATTERN = r"^[a-z_]{1,24}(:[A-Za-z0-9_.\-]{1,40})?$"
KB_ID_PATTERN = r"^kb:[a-z_]{1,32}$"
_CRITICALITY = {1: "low", 2: "medium", 3: "safety critical"}
_MAX_QUOTED = 300

_frozen = ConfigDict(frozen=True, extra="forbid")


class RulEstimate(BaseModel):
    """A remaining-useful-life prediction: median and an interval of nominal ``coverage``, in hours.

    ``basis`` is ``model`` when the model predicted hours, ``share_of_life`` when the hours were
    worked out from a predicted share of life left and the hours in service (see
    :class:`LifeShare`).
    """

    model_config = _frozen

    median_h: float = Field(ge=0, allow_inf_nan=False)
    lower_h: float = Field(ge=0, allow_inf_nan=False)
    upper_h: float = Field(ge=0, allow_inf_nan=False)
    coverage: float = Field(gt=0, lt=1)
    at: AwareDatetime
    model: str = Field(default="", max_length=160)
    health_index: float | None = Field(default=None, ge=0, le=1)
    basis: Literal["model", "share_of_life"] = "model"
    cap_h: float | None = Field(default=None, gt=0, allow_inf_nan=False,
                                description="the model's training cap: a median at the cap reads 'at least cap_h'")

    @property
    def at_cap(self) -> bool:
        """Whether the median sits at the model's cap, so the model only says "at least ``cap_h``"."""
        return rul_at_cap("h", self.median_h, self.cap_h)

    @model_validator(mode="after")
    def _ordered(self) -> RulEstimate:
        if not self.lower_h <= self.median_h <= self.upper_h:
            raise ValueError(
                f"RUL interval must satisfy lower <= median <= upper, got {self.lower_h} <= {self.median_h} <= {self.upper_h}"
            )
        return self


class LifeShare(BaseModel):
    """A share-of-life prediction (wire unit ``%``): how much of the part's life is left.

    ``in_service_h`` is how long the part has run since ``since`` (it was fitted or renewed;
    ``since_source`` says how that is known: ``config`` for the asset's ``in_service_since``,
    ``work_order`` for the newest completed repair that confirmed a fault). Without it the
    share cannot become hours and sets no deadline. ``calendar_h`` is the time since ``since``;
    ``running_share`` the share of the stored feature windows since then in which the machine
    ran (``running_windows`` of them counted), which scales it to running hours; ``None`` when
    too few windows carry a vibration level, and then the calendar hours count.
    """

    model_config = _frozen

    median_pct: float = Field(ge=0, le=100, allow_inf_nan=False)
    lower_pct: float = Field(ge=0, le=100, allow_inf_nan=False)
    upper_pct: float = Field(ge=0, le=100, allow_inf_nan=False)
    coverage: float = Field(gt=0, lt=1)
    at: AwareDatetime
    model: str = Field(default="", max_length=160)
    since: AwareDatetime | None = None
    since_source: Literal["config", "work_order", ""] = ""
    in_service_h: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    calendar_h: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    running_share: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    running_windows: int = Field(default=0, ge=0)

    @model_validator(mode="after")
    def _ordered(self) -> LifeShare:
        if not self.lower_pct <= self.median_pct <= self.upper_pct:
            raise ValueError(
                "life share interval must satisfy lower <= median <= upper, got "
                f"{self.lower_pct} <= {self.median_pct} <= {self.upper_pct}"
            )
        if (self.since is None) != (self.in_service_h is None):
            raise ValueError("since and in_service_h come together")
        return self


class FaultCall(BaseModel):
    """The fault class a classifier (or the envelope-peak diagnosis) gives, with its confidence."""

    model_config = _frozen

    kind: str = Field(pattern=r"^[a-z_]{1,32}$")
    confidence: float = Field(ge=0, le=1)
    source: str = Field(default="", max_length=120)


class ZoneState(BaseModel):
    """ISO 20816 evaluation zone (0 = A ... 3 = D) now and at the start of the look-back."""

    model_config = _frozen

    zone: int = Field(ge=0, le=3)
    velocity_mm_s: float = Field(ge=0, allow_inf_nan=False)
    previous_zone: int | None = Field(default=None, ge=0, le=3)
    previous_velocity_mm_s: float | None = Field(default=None, ge=0, allow_inf_nan=False)
    lookback_h: float | None = Field(default=None, ge=0)
    machine_class: str = "II"

    @property
    def trend(self) -> Literal["rising", "steady", "falling", "unknown"]:
        if self.previous_velocity_mm_s is None:
            return "unknown"
        ratio = self.velocity_mm_s / max(self.previous_velocity_mm_s, 1e-6)
        return "rising" if ratio > 1.15 else "falling" if ratio < 0.87 else "steady"


class PeakMatch(BaseModel):
    """A bearing defect frequency found in the envelope spectrum."""

    model_config = _frozen

    defect: Literal["bpfo", "bpfi", "bsf", "ftf"]
    frequency_hz: float = Field(gt=0, allow_inf_nan=False)
    snr: float = Field(ge=0, allow_inf_nan=False)
    harmonics: int = Field(ge=1, le=10, description="harmonics (h1 included) standing above the floor")


class AlarmFact(BaseModel):
    """An alarm of the asset (its message is data, never an instruction)."""

    model_config = _frozen

    id: int = Field(ge=0)
    kind: str = Field(max_length=64)
    severity: str = Field(max_length=16)
    state: str = Field(max_length=16)
    raised_at: AwareDatetime
    message: str = Field(default="", max_length=4000)


class TemperatureTrend(BaseModel):
    """Bearing temperature now and its slope over the look-back."""

    model_config = _frozen

    latest_c: float = Field(allow_inf_nan=False)
    slope_c_per_h: float | None = Field(default=None, allow_inf_nan=False)
    lookback_h: float | None = Field(default=None, ge=0)
    #: One-sided 95 % lower confidence bound of the slope, from the scatter about the fitted line
    #: (:func:`prescribe.evidence.temperature_trend`). ``None``: the slope is taken as exact.
    slope_low_c_per_h: float | None = Field(default=None, allow_inf_nan=False)

    @property
    def sure_rise_c_per_h(self) -> float:
        """The rise rate the measurements establish: the slope's lower bound when known, else the slope."""
        low = self.slope_low_c_per_h if self.slope_low_c_per_h is not None else self.slope_c_per_h
        return low if low is not None else 0.0


class PastWorkOrder(BaseModel):
    """A previous work order of the asset and what was found."""

    model_config = _frozen

    id: int = Field(ge=0)
    title: str = Field(max_length=200)
    status: str = Field(max_length=16)
    created_at: AwareDatetime
    outcome: str | None = Field(default=None, max_length=4000)


class WhatIfFact(BaseModel):
    """The what-if twin's choice for the asset (docs/decisions.md, "What-if"): the option with the
    lowest expected cost per hour within the plant's risk limit, its simulated risk and cost, and
    the best alternative's, over ``futures`` simulated futures.

    Risks are probabilities (0-1), costs are in ``currency``, hours are plant hours from the
    evidence's ``at``. The fact informs the work order's text; the decision's state and due time
    stay the policy's.
    """

    model_config = _frozen

    option: WhatIfOption
    label: str = Field(min_length=3, max_length=64)
    p_fail_before_repair: float = Field(ge=0, le=1, allow_inf_nan=False,
                                        description="risk of failing before the option's repair (run on: its horizon)")
    p_fail_before_stop: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False,
                                             description="risk of failing before the next planned stop")
    expected_cost: float = Field(ge=0, allow_inf_nan=False)
    currency: str = Field(pattern=r"^[A-Za-z]{3}$")
    repair_in_h: float | None = Field(default=None, ge=0, allow_inf_nan=False,
                                      description="plant hours to the option's repair (run on: its horizon); "
                                                  "None: none in reach")
    futures: int = Field(ge=1)
    generator: str = Field(pattern=r"^[a-z_]{1,24}$", description="analogs (learned) or interval (the RUL interval)")
    risk_limit: float = Field(gt=0, lt=1)
    alternative: WhatIfOption | None = None
    alternative_label: str = Field(default="", max_length=64)
    alternative_p_fail: float | None = Field(default=None, ge=0, le=1, allow_inf_nan=False)
    alternative_cost: float | None = Field(default=None, ge=0, allow_inf_nan=False)

    @property
    def within_limit(self) -> bool:
        """Whether the chosen option's risk is within the plant's risk limit."""
        return self.p_fail_before_repair <= self.risk_limit

    @model_validator(mode="after")
    def _alternative_whole(self) -> WhatIfFact:
        parts = (self.alternative, self.alternative_label or None, self.alternative_p_fail, self.alternative_cost)
        if any(p is None for p in parts) and any(p is not None for p in parts):
            raise ValueError("alternative, alternative_label, alternative_p_fail and alternative_cost come together, "
                             f"got {parts}")
        if self.alternative is not None and self.alternative == self.option:
            raise ValueError(f"the alternative must be another option than the chosen {self.option!r}")
        return self


class AssetFacts(BaseModel):
    """What the prescriber knows of the asset; name and notes are operator-entered data."""

    model_config = _frozen

    asset_id: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    name: str = Field(default="", max_length=200)
    kind: str = Field(default="", max_length=32)
    criticality: int = Field(default=2, ge=1, le=3)
    machine_class: str = "II"
    bearing: str = Field(default="", max_length=64)
    spare_parts: tuple[str, ...] = ()
    notes: str = Field(default="", max_length=4000)


class EvidenceItem(BaseModel):
    """One citable fact: a stable id, a one-line summary made by code, and the numbers behind it."""

    model_config = _frozen

    id: str = Field(pattern=EVIDENCE_ID_PATTERN)
    kind: str = Field(pattern=r"^[a-z_]{1,24}$")
    summary: str = Field(max_length=400)
    values: dict[str, float | int | str | None] = Field(default_factory=dict)


class Evidence(BaseModel):
    """Everything gathered about one asset at one time, from the store or the simulator."""

    model_config = _frozen

    asset: AssetFacts
    at: AwareDatetime
    source: Literal["store", "simulator", "manual"] = "manual"
    rul: RulEstimate | None = None
    life_share: LifeShare | None = None
    fault: FaultCall | None = None
    zone: ZoneState | None = None
    peaks: tuple[PeakMatch, ...] = ()
    alarms: tuple[AlarmFact, ...] = ()
    temperature: TemperatureTrend | None = None
    work_orders: tuple[PastWorkOrder, ...] = ()
    whatif: WhatIfFact | None = Field(default=None, description="the what-if twin's choice (prescribe.whatif)")
    time_scale: float = Field(default=1.0, gt=0, le=1e6, allow_inf_nan=False,
                              description="plant hours per wall-clock hour of ``at`` and the other timestamps: 1 in "
                                          "a plant; the demo's simulator runs faster. Hours (RUL, trends, margins) "
                                          "are plant hours; due times are wall-clock times.")

    def items(self) -> list[EvidenceItem]:
        """The citable items, in a fixed order (see :func:`evidence_items`)."""
        return evidence_items(self)

    def ids(self) -> list[str]:
        """Ids of the citable items."""
        return [i.id for i in self.items()]


class Action(BaseModel):
    """One thing to do: text from the skeleton or a backend, priority and deadline from the policy code.

    ``kind`` is the work-order step kind when the action is a step of a work order (``None`` for
    the monitoring and evidence-collecting actions of states without one).
    """

    model_config = _frozen

    what: str = Field(min_length=3, max_length=300)
    why: str = Field(min_length=3, max_length=400)
    evidence: tuple[str, ...] = Field(min_length=1, max_length=8)
    kb: tuple[str, ...] = Field(default=(), max_length=4)
    priority: Priority
    deadline: AwareDatetime | None
    kind: StepKind | None = None


class WorkStep(BaseModel):
    """One step of a work order.

    ``code`` tells the steps apart for programs: ``loto`` (isolate, lock out and tag out; always
    the first step), ``safety`` (a procedure's extra safety step), ``confirm``, ``replace`` (the
    replacement of the part named in ``parts``), ``repair``, ``lubrication_check``,
    ``alignment_check``, ``balance_check``, ``loto_release`` (guards back, locks and tags off),
    ``verify`` (the post-repair test run), ``baseline_reset`` (vibration baseline re-learned,
    alarm limits set), and ``added`` for a step a backend added. ``source`` says who wrote the
    text: ``skeleton`` steps are mandatory and deterministic; backend steps only add to them.
    """

    model_config = _frozen

    kind: StepKind
    code: str = Field(pattern=r"^[a-z_]{2,24}$")
    text: str = Field(min_length=3, max_length=300)
    why: str = Field(default="", max_length=400)
    source: Literal["skeleton", "backend"] = "skeleton"
    mandatory: bool = True
    parts: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    kb: tuple[str, ...] = ()
    due_by: AwareDatetime | None = None


class WorkOrderDraft(BaseModel):
    """A work order ready to be stored as a draft (CMMS fields).

    ``steps`` is the structured work (kind, code, text, parts per step, see :class:`WorkStep`),
    ``tasks`` the same steps as flat text for the CMMS export. ``parts`` are the spare parts
    taken from the asset's bill of materials; ``parts_missing`` the part roles the procedure needs
    that the bill of materials lacks (to be ordered). ``duration_h`` and ``crew`` are the
    procedure's estimate; ``narrative`` the backend's account of the fault and why the work is due.
    """

    model_config = _frozen

    asset_id: str
    title: str = Field(min_length=3, max_length=200)
    priority: Priority
    due_by: AwareDatetime | None
    description: str = Field(max_length=4000)
    tasks: tuple[str, ...] = Field(min_length=1)
    parts: tuple[str, ...] = ()
    evidence: tuple[str, ...] = ()
    kb: tuple[str, ...] = ()
    state: State | None = None
    fault: str | None = None
    narrative: str = Field(default="", max_length=600)
    steps: tuple[WorkStep, ...] = ()
    parts_missing: tuple[str, ...] = ()
    duration_h: float | None = Field(default=None, gt=0, allow_inf_nan=False)
    crew: str = Field(default="", max_length=120)

    @model_validator(mode="after")
    def _tasks_are_the_steps(self) -> WorkOrderDraft:
        if self.steps and tuple(s.text for s in self.steps) != self.tasks:
            raise ValueError("tasks must be the steps' text, in order")
        return self


class Recommendation(BaseModel):
    """What to do about one asset, by when, and why.

    ``status`` is ``action`` (do something before ``deadline``), ``monitor`` (healthy enough:
    keep trending) or ``insufficient_evidence`` (weak or contradictory evidence: ``reasons``
    says why and the only action is to collect better evidence).
    """

    model_config = _frozen

    asset_id: str
    created_at: AwareDatetime
    status: Status
    state: State | None = Field(default=None, description="the policy's decision state (docs/decisions.md)")
    summary: str = Field(max_length=600)
    priority: Priority
    deadline: AwareDatetime | None
    margin_h: float | None = Field(default=None, description="safety margin taken off the RUL lower bound")
    actions: tuple[Action, ...]
    reasons: tuple[str, ...] = ()
    evidence: tuple[EvidenceItem, ...]
    kb: tuple[str, ...] = ()
    backend: str
    notes: tuple[str, ...] = ()
    work_order: WorkOrderDraft | None = None
    narrative: str = Field(default="", max_length=600)

    @model_validator(mode="after")
    def _cites_only_supplied(self) -> Recommendation:
        known = {e.id for e in self.evidence}
        for a in self.actions:
            unknown = [i for i in a.evidence if i not in known]
            if unknown:
                raise ValueError(f"action {a.what!r} cites evidence {unknown} that was not supplied; supplied {sorted(known)}")
            unknown_kb = [k for k in a.kb if k not in self.kb]
            if unknown_kb:
                raise ValueError(f"action {a.what!r} cites procedures {unknown_kb} that were not retrieved; "
                                 f"retrieved {list(self.kb)}")
        return self

    def as_text(self) -> str:
        """A plain-text rendering for terminals."""
        state = f" ({self.state})" if self.state and self.state != self.status else ""
        lines = [f"{self.asset_id}: {self.status}{state} - priority {self.priority}"
                 + (f", due by {_fmt(self.deadline)}" if self.deadline else ""), self.summary]
        if self.narrative:
            lines.append(self.narrative)
        lines += [f"  ! {r}" for r in self.reasons]
        for i, a in enumerate(self.actions, 1):
            cites = ", ".join([*a.evidence, *a.kb])
            kind = f"[{a.kind}] " if a.kind else ""
            lines.append(f"  {i}. {kind}{a.what}\n     why: {a.why}\n     [{cites}]")
        wo = self.work_order
        if wo is not None and wo.duration_h is not None:
            lines.append(f"  estimate: {wo.duration_h:g} h, crew {wo.crew}"
                         + (f"; parts {', '.join(wo.parts)}" if wo.parts else "")
                         + (f"; to order: {', '.join(wo.parts_missing)}" if wo.parts_missing else ""))
        lines += [f"  note: {n}" for n in self.notes]
        lines.append(f"  (backend: {self.backend})")
        return "\n".join(lines)


def _fmt(t: datetime) -> str:
    return t.strftime("%Y-%m-%d %H:%M UTC")


# ------------------------------------------------------------------------------ quoting
_CONTROL = re.compile(r"[\x00-\x1f\x7f\u2028\u2029]")
_DELIMS = re.compile(r"[<>`«»\"{}\[\]]")


def quote_data(text: str, limit: int = _MAX_QUOTED) -> str:
    """Operator-entered text made safe to show inside the prompt's evidence block.

    Control characters and anything that could close a delimiter (angle brackets, back-ticks,
    braces, brackets, quotes, guillemets) are replaced, whitespace collapsed, the length capped,
    and the result wrapped in guillemets so it reads as a quotation, never as an instruction.
    """
    flat = _DELIMS.sub("'", _CONTROL.sub(" ", text or ""))
    flat = " ".join(flat.split())
    if len(flat) > limit:
        flat = flat[: limit - 1].rstrip() + "…"
    return f"«{flat}»"


# ------------------------------------------------------------------------------- items
def _hours(h: float) -> str:
    """Hours, always: one unit for every duration a planner compares (RUL, deadlines, margins)."""
    return f"{h:.0f} h"


def risk_text(p: float) -> str:
    """A probability as a whole per cent (``2 %``); a small risk is not rounded away to nothing."""
    if 0 < p < 0.005:
        return "under 1 %"
    if 0.995 <= p < 1:
        return "over 99 %"
    return f"{p * 100:.0f} %"


def whatif_option_text(fact: WhatIfFact) -> str:
    """The chosen option's label with when its repair comes (run on has no repair, only a horizon)."""
    label, h = fact.label, fact.repair_in_h
    if fact.option == "run_on" or h is None:
        return label
    if fact.option == "repair_now":
        return label if h < 0.5 else f"{label}, when the spare arrives in {_hours(h)}"
    return f"{label} in {_hours(h)}"


def whatif_summary(fact: WhatIfFact) -> str:
    """The what-if's trade-off in plain words: the chosen option's risk and cost, the best
    alternative's, and how many futures were simulated.

    For example "Repair at next planned stop in 37 h: 2 % risk of failing first (limit 5 %),
    expected cost 1,340 EUR; run on as is: 23 % risk, 9,800 EUR; 500 simulated futures (analogs)".
    """
    cur = fact.currency.upper()
    if fact.option == "run_on":
        horizon = f"within {_hours(fact.repair_in_h)}" if fact.repair_in_h is not None else "in reach"
        risk = f"{risk_text(fact.p_fail_before_repair)} risk of failing {horizon}"
    else:
        risk = f"{risk_text(fact.p_fail_before_repair)} risk of failing first"
    limit = (f"within the {risk_text(fact.risk_limit)} limit" if fact.within_limit
             else f"above the {risk_text(fact.risk_limit)} limit, the lowest of the options")
    text = (f"{whatif_option_text(fact)}: {risk} ({limit}), "
            f"expected cost {fact.expected_cost:,.0f} {cur}")
    if fact.alternative_p_fail is not None and fact.alternative_cost is not None:
        text += (f"; {fact.alternative_label.lower()}: {risk_text(fact.alternative_p_fail)} risk, "
                 f"{fact.alternative_cost:,.0f} {cur}")
    return f"{text}; {fact.futures} simulated futures ({fact.generator})"


def evidence_items(ev: Evidence) -> list[EvidenceItem]:
    """The citable items of ``ev``, with stable ids, in a fixed order.

    Summaries are short on purpose: they are what a language model reads (every token costs
    time on a small CPU) and what a planner scans in the work order.
    """
    items: list[EvidenceItem] = []
    add = items.append
    if ev.life_share is not None:
        s = ev.life_share
        age_h = max((ev.at - s.at).total_seconds() / 3600.0 * ev.time_scale, 0.0)
        since = (f"{s.in_service_h:.0f} h in service since "
                 + ("the asset's in-service date" if s.since_source == "config" else "the last confirmed repair")
                 if s.in_service_h is not None else "hours in service unknown")
        if s.running_share is not None and s.calendar_h is not None:
            since += f" (running in {s.running_share:.0%} of {s.running_windows} stored windows of {s.calendar_h:.0f} h)"
        elif s.in_service_h is not None:
            since += " (calendar hours: too few stored windows with the machine running to count its stops)"
        add(EvidenceItem(
            id="rul:life_share", kind="rul",
            summary=(f"Life left {s.median_pct:.0f} %, {s.coverage:.0%} interval {s.lower_pct:.0f} to {s.upper_pct:.0f} %, "
                     f"{since}" + (f", {age_h:.0f} h old" if age_h >= 1 else "")),
            values={"median_pct": round(s.median_pct, 2), "lower_pct": round(s.lower_pct, 2),
                    "upper_pct": round(s.upper_pct, 2), "coverage": s.coverage, "age_h": round(age_h, 2),
                    "in_service_h": None if s.in_service_h is None else round(s.in_service_h, 2),
                    "since": None if s.since is None else s.since.isoformat(), "since_source": s.since_source,
                    "calendar_h": None if s.calendar_h is None else round(s.calendar_h, 2),
                    "running_share": None if s.running_share is None else round(s.running_share, 4),
                    "running_windows": s.running_windows}))
    if ev.rul is not None:
        r = ev.rul
        age_h = max((ev.at - r.at).total_seconds() / 3600.0 * ev.time_scale, 0.0)
        add(EvidenceItem(
            id="rul:latest", kind="rul",
            summary=((f"RUL >= {r.cap_h:.0f} h (at the model's cap: no end of life in sight)" if r.at_cap and r.cap_h
                      else f"RUL {_hours(r.median_h)}, {r.coverage:.0%} interval {_hours(r.lower_h)} to {_hours(r.upper_h)}")
                     + (" (from the life share and the hours in service)" if r.basis == "share_of_life" else "")
                     + (f", {age_h:.0f} h old" if age_h >= 1 else "")),
            values={"median_h": round(r.median_h, 2), "lower_h": round(r.lower_h, 2), "upper_h": round(r.upper_h, 2),
                    "coverage": r.coverage, "age_h": round(age_h, 2), "health_index": r.health_index,
                    "basis": r.basis, "cap_h": r.cap_h, "at_cap": r.at_cap}))
    if ev.fault is not None:
        f = ev.fault
        add(EvidenceItem(id="fault:class", kind="fault", summary=f"{f.kind}, confidence {f.confidence:.2f}",
                         values={"kind": f.kind, "confidence": round(f.confidence, 3), "source": f.source}))
    if ev.zone is not None:
        z = ev.zone
        add(EvidenceItem(id="zone:latest", kind="zone",
                         summary=f"ISO 20816 zone {ZONES[z.zone]}, {z.velocity_mm_s:.1f} mm/s",
                         values={"zone": ZONES[z.zone], "velocity_mm_s": round(z.velocity_mm_s, 3),
                                 "machine_class": z.machine_class}))
        if z.previous_zone is not None and z.previous_velocity_mm_s is not None:
            add(EvidenceItem(
                id="zone:trend", kind="zone",
                summary=(f"{z.trend}, {z.previous_velocity_mm_s:.1f} to {z.velocity_mm_s:.1f} mm/s "
                         f"in {_hours(z.lookback_h or 0)}"
                         + (f", zone {ZONES[z.previous_zone]} to {ZONES[z.zone]}"
                            if z.previous_zone != z.zone else "")),
                values={"from": ZONES[z.previous_zone], "to": ZONES[z.zone], "trend": z.trend,
                        "lookback_h": z.lookback_h}))
    for p in ev.peaks:
        add(EvidenceItem(
            id=f"peak:{p.defect}", kind="peak",
            summary=f"{p.defect.upper()} {p.frequency_hz:.0f} Hz in envelope, {p.snr:.0f}x floor, {p.harmonics} harmonics",
            values={"defect": p.defect, "frequency_hz": round(p.frequency_hz, 2), "snr": round(p.snr, 2),
                    "harmonics": p.harmonics}))
    if ev.temperature is not None:
        t = ev.temperature
        add(EvidenceItem(id="temp:latest", kind="temperature", summary=f"bearing temperature {t.latest_c:.0f} degC",
                         values={"latest_c": round(t.latest_c, 2)}))
        if t.slope_c_per_h is not None:
            word = "rising" if t.slope_c_per_h > 0.05 else "falling" if t.slope_c_per_h < -0.05 else "steady"
            add(EvidenceItem(id="temp:trend", kind="temperature",
                             summary=f"{word}, {t.slope_c_per_h:+.2f} K/h",
                             values={"slope_c_per_h": round(t.slope_c_per_h, 4), "trend": word,
                                     "lookback_h": t.lookback_h,
                                     "slope_low_c_per_h": None if t.slope_low_c_per_h is None
                                     else round(t.slope_low_c_per_h, 4)}))
    for a in ev.alarms:
        add(EvidenceItem(
            id=f"alarm:{a.id}", kind="alarm",
            summary=f"{a.kind}, {a.severity}, {a.state}" + (f": {quote_data(a.message, 80)}" if a.message else ""),
            values={"kind": a.kind, "severity": a.severity, "state": a.state, "raised_at": a.raised_at.isoformat()}))
    if ev.whatif is not None:
        wi = ev.whatif
        add(EvidenceItem(
            id="whatif:choice", kind="whatif", summary=whatif_summary(wi),
            values={"option": wi.option, "label": wi.label, "p_fail_before_repair": round(wi.p_fail_before_repair, 4),
                    "p_fail_before_stop": None if wi.p_fail_before_stop is None else round(wi.p_fail_before_stop, 4),
                    "expected_cost": round(wi.expected_cost, 2), "currency": wi.currency,
                    "repair_in_h": None if wi.repair_in_h is None else round(wi.repair_in_h, 2),
                    "futures": wi.futures, "generator": wi.generator, "risk_limit": wi.risk_limit,
                    "alternative": wi.alternative,
                    "alternative_p_fail": None if wi.alternative_p_fail is None else round(wi.alternative_p_fail, 4),
                    "alternative_cost": None if wi.alternative_cost is None else round(wi.alternative_cost, 2)}))
    for w in ev.work_orders:
        add(EvidenceItem(
            id=f"wo:{w.id}", kind="work_order",
            summary=(f"{quote_data(w.title, 60)}, {w.status} {w.created_at:%Y-%m-%d}"
                     + (f", outcome {quote_data(w.outcome, 100)}" if w.outcome else "")),
            values={"status": w.status, "created_at": w.created_at.isoformat()}))
    facts = ev.asset
    add(EvidenceItem(id="asset:criticality", kind="asset",
                     summary=f"{facts.criticality} of 3, {_CRITICALITY[facts.criticality]}",
                     values={"criticality": facts.criticality}))
    add(EvidenceItem(id="spares", kind="spares",
                     summary=", ".join(quote_data(s, 40) for s in facts.spare_parts) if facts.spare_parts
                     else "no spare parts listed",
                     values={"count": len(facts.spare_parts)}))
    if facts.notes.strip():
        add(EvidenceItem(id="asset:notes", kind="asset", summary=quote_data(facts.notes, 200), values={}))
    return items
