"""The decision policy: state, priority, deadline and the sufficiency of evidence, decided in
code, never by a language model (docs/decisions.md is the reader's version).

States, checked in this order:

- ``stop_now``: ISO zone D, a temperature trip, or the RUL lower bound within the safety margin
  with a degradation sign and an interval not too wide: stop and replace now (due now, urgent).
- ``insufficient_evidence``: weak or contradictory evidence (below); collect better evidence.
- ``healthy``: no degradation sign and the RUL at its model's cap, its health index normal, or no
  RUL at all: no work order, continue monitoring.
- ``urgent``: less than ``urgent_h`` left before the lower bound minus the margin: act within it.
- ``plan``: the RUL lower bound within ``planning_horizon_h``: do it at the next planned stop,
  before the lower bound minus the margin.
- ``watch``: degradation signs, the lower bound beyond the planning horizon (or the RUL at its
  cap): no work order, trend more closely.

The deadline rule: the work is due no later than ``now + lower - margin``, the safety margin
growing with the asset's criticality, ``margin = max(min_h[c], fraction[c] * lower)``.
Priority comes from a risk matrix of criticality and the hours to the RUL lower bound.
An interval is too wide only when its width exceeds ``max(min_width_h, max_rel_width * median)``
and the fault evidence is not strong: near zero a few hours of width is a narrow interval.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta

# The policy's parameters and bands live in core, so ingest's alarms use the same bands.
from core.maintenance import PRIORITIES, RISK_MATRIX, DeadlinePolicy, Priority
from prescribe.evidence import DEFECT_FAULT
from prescribe.schema import Evidence, State

__all__ = ["RISK_MATRIX", "DeadlinePolicy", "Decision", "DecisionPolicy", "assess", "fault_strength"]

#: The same class under the name the docs use.
DecisionPolicy = DeadlinePolicy


@dataclass(frozen=True)
class Decision:
    """What the policy decided for one piece of evidence.

    Attributes:
        status: ``action``, ``monitor`` or ``insufficient_evidence`` (from the state).
        priority: work priority.
        deadline: due time (``None``: no deadline, e.g. healthy or watch).
        margin_h: safety margin taken off the RUL lower bound (``None`` without RUL).
        window_h: hours from now to the deadline.
        reasons: why the evidence is insufficient (empty otherwise).
        fault: the fault the recommendation is about (``None`` when unknown).
        state: the decision state (module docstring, docs/decisions.md).
        why: one line saying which condition set the state.
    """

    status: str
    priority: Priority
    deadline: datetime | None
    margin_h: float | None
    window_h: float | None
    reasons: tuple[str, ...] = ()
    fault: str | None = None
    state: State = "healthy"
    why: str = ""

    @property
    def works_on_machine(self) -> bool:
        """Whether the state asks for maintenance work (a work order)."""
        return self.state in ("plan", "urgent", "stop_now")


_STATUS: dict[str, str] = {"healthy": "monitor", "watch": "monitor", "plan": "action", "urgent": "action",
                           "stop_now": "action", "insufficient_evidence": "insufficient_evidence"}


def _due(ev: Evidence, window_h: float) -> datetime:
    """The wall-clock time ``window_h`` plant hours after the evidence (``Evidence.time_scale``)."""
    return ev.at + timedelta(hours=window_h / ev.time_scale)


def _severe_alarm(ev: Evidence) -> bool:
    return any(a.severity in ("high", "critical") and a.state != "cleared" and a.kind != "rul_low" for a in ev.alarms)


def _temperature_trip(ev: Evidence, policy: DeadlinePolicy) -> bool:
    t = ev.temperature
    return t is not None and (t.latest_c >= policy.temp_trip_c or t.sure_rise_c_per_h >= policy.temp_trip_c_per_h)


def fault_strength(ev: Evidence, policy: DeadlinePolicy | None = None) -> str:
    """How strongly the measurements say the machine is degrading: ``strong``, ``weak`` or ``none``.

    Strong: ISO zone D, a temperature trip, an envelope peak at ``strong_peak_snr`` or more, or a
    fault call at ``strong_confidence`` or more. Weak (a degradation sign): any envelope peak, a
    fault call at ``min_confidence`` or more, zone C, a rising zone above A, a rising temperature
    (judged on the slope's lower confidence bound, so sensor noise over a few windows is no rise),
    an open high/critical alarm (other than the RUL alarm), or a health index below normal.
    """
    policy = policy or DeadlinePolicy()
    call = ev.fault if ev.fault is not None and ev.fault.kind != "none" else None
    zone = ev.zone
    if (zone is not None and zone.zone >= 3) or _temperature_trip(ev, policy) \
            or any(p.snr >= policy.strong_peak_snr for p in ev.peaks) \
            or (call is not None and call.confidence >= policy.strong_confidence):
        return "strong"
    health = ev.rul.health_index if ev.rul is not None else None
    signs = (bool(ev.peaks) or (call is not None and call.confidence >= policy.min_confidence)
             or (zone is not None and (zone.zone >= 2 or (zone.zone >= 1 and zone.trend == "rising")))
             or (ev.temperature is not None and ev.temperature.sure_rise_c_per_h > policy.temp_rising_c_per_h)
             or _severe_alarm(ev) or (health is not None and health < policy.health_normal))
    return "weak" if signs else "none"


def _contradictions(ev: Evidence, policy: DeadlinePolicy) -> list[str]:
    out = []
    found = {p.defect for p in ev.peaks}
    strong_call = ev.fault is not None and ev.fault.confidence >= policy.min_confidence
    if strong_call and ev.fault is not None:
        kind = ev.fault.kind
        bearing = kind in DEFECT_FAULT.values()
        own = {d for d, f in DEFECT_FAULT.items() if f == kind} | ({"ftf"} if kind == "ball" else set())
        if bearing and found and not (found & own):
            out.append(f"fault class {kind} but the envelope peaks point to {', '.join(sorted(found))}")
        if kind == "none" and (found or (ev.rul is not None and not ev.rul.at_cap and ev.rul.lower_h < policy.high_h)):
            out.append("fault class none but " + ("defect peaks are present" if found else "the RUL lower bound is short"))
    if ev.rul is not None and not ev.rul.at_cap and ev.rul.lower_h < policy.high_h:
        calm = (ev.zone is not None and ev.zone.zone <= 1 and ev.zone.trend != "rising" and not found
                and not _severe_alarm(ev)
                and (ev.temperature is None or (ev.temperature.slope_c_per_h or 0.0) <= 0.05))
        if calm:
            out.append("RUL says failure is near but vibration, peaks, temperature and alarms are all calm")
    return out


def _too_wide(ev: Evidence, policy: DeadlinePolicy, strength: str) -> bool:
    """Whether the RUL interval is too wide to act on: wider than ``max(min_width_h, max_rel_width *
    median)`` hours (judged in hours near zero: 0-7 h around 0 h is narrow) and the fault evidence
    is not strong (strong evidence acts on the lower bound however wide the interval)."""
    r = ev.rul
    if r is None or r.at_cap or strength == "strong":
        return False
    return r.upper_h - r.lower_h > max(policy.min_width_h, policy.max_rel_width * r.median_h)


def _weaknesses(ev: Evidence, policy: DeadlinePolicy, strength: str) -> list[str]:
    out = []
    if ev.rul is None and ev.life_share is not None:
        out.append("the model predicts the share of life left, but when the part was fitted is unknown: set the "
                   "asset's in_service_since, or complete the repair work order with the fault confirmed")
    elif ev.rul is None and ev.zone is None and not ev.peaks:
        out.append("no RUL prediction and no vibration features for this asset")
    if ev.rul is not None:
        r = ev.rul
        if _too_wide(ev, policy, strength):
            limit = max(policy.min_width_h, policy.max_rel_width * r.median_h)
            out.append(f"RUL interval too wide: {r.lower_h:.0f} to {r.upper_h:.0f} h around {r.median_h:.0f} h "
                       f"(wider than {limit:.0f} h)")
        age = (ev.at - r.at).total_seconds() / 3600.0 * ev.time_scale
        if age > policy.max_age_h:
            out.append(f"RUL prediction is {age:.0f} h old (limit {policy.max_age_h:.0f} h)")
    if ev.rul is None and ev.fault is not None and ev.fault.kind != "none" and ev.fault.confidence < policy.min_confidence \
            and not ev.peaks:
        out.append(f"fault class {ev.fault.kind} has low confidence {ev.fault.confidence:.2f} and nothing confirms it")
    return out


def _fault_of(ev: Evidence, policy: DeadlinePolicy) -> str | None:
    if ev.fault is not None and ev.fault.kind != "none" and ev.fault.confidence >= policy.min_confidence:
        return ev.fault.kind
    if ev.peaks:
        best = max(ev.peaks, key=lambda p: p.snr)
        return DEFECT_FAULT[best.defect]
    if _temperature_trip(ev, policy):
        return "overheating"
    return None


def _decision(state: State, priority: Priority, deadline: datetime | None, margin: float | None,
              window: float | None, fault: str | None, why: str, reasons: tuple[str, ...] = ()) -> Decision:
    return Decision(_STATUS[state], priority, deadline, margin, window, reasons, fault, state, why)


def assess(ev: Evidence, policy: DeadlinePolicy | None = None) -> Decision:
    """Decide state, priority and deadline for the evidence of one asset (docs/decisions.md)."""
    policy = policy or DeadlinePolicy()
    crit = ev.asset.criticality
    zone = ev.zone.zone if ev.zone is not None else None
    severe = _severe_alarm(ev)
    fault = _fault_of(ev, policy)
    strength = fault_strength(ev, policy)
    rul = ev.rul
    margin = policy.margin_h(rul.lower_h, crit) if rul is not None else None

    # 1. stop now: nothing weakens a trip, zone D or a failure inside the safety margin
    trips = []
    if zone is not None and zone >= 3:
        trips.append("ISO 20816 zone D")
    if _temperature_trip(ev, policy):
        trips.append("temperature trip")
    if rul is not None and margin is not None and not rul.at_cap and rul.lower_h <= margin and strength != "none" \
            and not _too_wide(ev, policy, strength):
        trips.append(f"RUL lower bound {rul.lower_h:.0f} h within the {margin:.0f} h safety margin")
    if trips:
        return _decision("stop_now", "urgent", ev.at, margin, 0.0, fault, "; ".join(trips))

    # 2. weak or contradictory evidence
    reasons = _weaknesses(ev, policy, strength) + _contradictions(ev, policy)
    if reasons:
        # Collect better evidence soon; the deadline still never passes the RUL rule.
        window = policy.high_h if crit < 3 else policy.urgent_h
        if rul is not None:
            window = min(window, policy.deadline(ev.at, rul.lower_h, crit, time_scale=ev.time_scale)[2])
        hours = rul.lower_h if rul is not None else window
        priority = policy.priority(hours, crit, zone=zone, severe_alarm=severe)
        return _decision("insufficient_evidence", priority, _due(ev, window), margin, window, fault,
                         "weak or contradictory evidence", tuple(reasons))

    # 3. healthy: no sign of degradation, and no finite RUL worth planning on
    health = rul.health_index if rul is not None else None
    normal_health = health is not None and health >= policy.health_normal
    if strength == "none" and (rul is None or rul.at_cap or normal_health):
        why = ("RUL at the model's cap" if rul is not None and rul.at_cap
               else "health index normal" if normal_health else "no RUL prediction")
        return _decision("healthy", "low", None, margin, None, None, f"no degradation sign; {why}")

    # 4. with a finite RUL: urgent, plan or watch by the lower bound
    if rul is not None and not rul.at_cap:
        deadline, margin_h, window = policy.deadline(ev.at, rul.lower_h, crit, time_scale=ev.time_scale)
        priority = policy.priority(rul.lower_h, crit, zone=zone, severe_alarm=severe)
        if window <= policy.urgent_h:
            return _decision("urgent", max(priority, "high", key=PRIORITIES.index), deadline, margin_h, window, fault,
                             f"{window:.0f} h left before the RUL lower bound minus the {margin_h:.0f} h margin")
        if rul.lower_h <= policy.planning_horizon_h:
            return _decision("plan", priority, deadline, margin_h, window, fault,
                             f"RUL lower bound {rul.lower_h:.0f} h within the {policy.planning_horizon_h:.0f} h "
                             "planning horizon")
        return _decision("watch", "low", None, margin_h, None, fault,
                         f"degradation signs; RUL lower bound {rul.lower_h:.0f} h beyond the planning horizon")

    # 5. without a finite RUL (none, or at its cap): zone C plans, strong evidence plans, else watch
    if rul is None and (zone == 2 or strength == "strong"):
        window = policy.zone_deadline_h[2] if zone == 2 else policy.medium_h
        return _decision("plan", policy.priority(window, crit, zone=zone, severe_alarm=severe),
                         _due(ev, window), None, window, fault,
                         ("ISO 20816 zone C" if zone == 2 else "strong fault evidence") + " without a RUL prediction")
    return _decision("watch", "low", None, margin, None, fault,
                     "degradation signs" + ("; RUL at the model's cap" if rul is not None else "; no RUL prediction"))
