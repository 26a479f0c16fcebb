"""Priority, deadline and the sufficiency of evidence: decided in code, never by a language model.

The deadline rule: with a RUL interval, the work is due no later than
``now + lower - margin`` where the safety margin grows with the asset's criticality,
``margin = max(min_h[c], fraction[c] * lower)``; when that leaves no time the work is due now.
Priority follows the time left before the deadline, one level up for criticality 3 and one
down for criticality 1, and at least ``high`` in ISO zone D or with a high/critical alarm.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime, timedelta

from core.maintenance import PRIORITIES, Priority
from prescribe.evidence import DEFECT_FAULT
from prescribe.schema import Evidence

__all__ = ["DeadlinePolicy", "Decision", "assess"]


@dataclass(frozen=True)
class DeadlinePolicy:
    """Parameters of the deadline and priority rules.

    Attributes:
        margin_fraction: safety margin as a fraction of the RUL lower bound, by criticality.
        margin_min_h: smallest safety margin in hours, by criticality.
        urgent_h, high_h, medium_h: time left (hours) up to which the base priority is
            urgent, high, medium (beyond: low).
        monitor_h: time left beyond which a calm asset (zone A/B, no peaks, no alarms) is
            only monitored.
        zone_deadline_h: without a RUL prediction, time allowed in zone C and D.
        max_rel_width: RUL intervals wider than this (``(upper - lower) / median``) are too weak.
        max_age_h: RUL predictions older than this are stale.
        min_confidence: fault calls below this confidence do not count.
    """

    margin_fraction: dict[int, float] = field(default_factory=lambda: {1: 0.15, 2: 0.25, 3: 0.35})
    margin_min_h: dict[int, float] = field(default_factory=lambda: {1: 4.0, 2: 8.0, 3: 12.0})
    urgent_h: float = 24.0
    high_h: float = 72.0
    medium_h: float = 336.0
    monitor_h: float = 720.0
    zone_deadline_h: dict[int, float] = field(default_factory=lambda: {2: 336.0, 3: 24.0})
    max_rel_width: float = 1.5
    max_age_h: float = 24.0
    min_confidence: float = 0.5

    def margin_h(self, lower_h: float, criticality: int) -> float:
        """Safety margin taken off the RUL lower bound."""
        return max(self.margin_min_h[criticality], self.margin_fraction[criticality] * lower_h)

    def deadline(self, now: datetime, lower_h: float, criticality: int) -> tuple[datetime, float, float]:
        """``(deadline, margin_h, window_h)``: due by ``now + max(lower - margin, 0)``."""
        margin = self.margin_h(lower_h, criticality)
        window = max(lower_h - margin, 0.0)
        return now + timedelta(hours=window), margin, window

    def priority(self, window_h: float, criticality: int, *, zone: int | None = None,
                 severe_alarm: bool = False) -> Priority:
        """Priority from the time left before the deadline, the criticality, zone and alarms."""
        if window_h <= self.urgent_h:
            level = 3
        elif window_h <= self.high_h:
            level = 2
        elif window_h <= self.medium_h:
            level = 1
        else:
            level = 0
        level += {1: -1, 2: 0, 3: 1}[criticality]
        if (zone is not None and zone >= 3) or severe_alarm:
            level = max(level, 3 if criticality == 3 else 2)
        return PRIORITIES[min(max(level, 0), 3)]


@dataclass(frozen=True)
class Decision:
    """What the policy decided for one piece of evidence.

    Attributes:
        status: ``action``, ``monitor`` or ``insufficient_evidence``.
        priority: work priority.
        deadline: due time (``None``: no deadline, e.g. monitor only).
        margin_h: safety margin taken off the RUL lower bound (``None`` without RUL).
        window_h: hours from now to the deadline.
        reasons: why the evidence is insufficient (empty otherwise).
        fault: the fault the recommendation is about (``None`` when unknown).
    """

    status: str
    priority: Priority
    deadline: datetime | None
    margin_h: float | None
    window_h: float | None
    reasons: tuple[str, ...] = ()
    fault: str | None = None


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
        if kind == "none" and (found or (ev.rul is not None and ev.rul.lower_h < policy.high_h)):
            out.append("fault class none but " + ("defect peaks are present" if found else "the RUL lower bound is short"))
    if ev.rul is not None and ev.rul.lower_h < policy.high_h:
        calm = (ev.zone is not None and ev.zone.zone <= 1 and ev.zone.trend != "rising" and not found
                and not any(a.severity in ("high", "critical") and a.kind != "rul_low" for a in ev.alarms)
                and (ev.temperature is None or (ev.temperature.slope_c_per_h or 0.0) <= 0.05))
        if calm:
            out.append("RUL says failure is near but vibration, peaks, temperature and alarms are all calm")
    return out


def _weaknesses(ev: Evidence, policy: DeadlinePolicy) -> list[str]:
    out = []
    if ev.rul is None and ev.life_share is not None:
        out.append("the model predicts the share of life left, but when the part was fitted is unknown: set the "
                   "asset's in_service_since, or complete the repair work order with the fault confirmed")
    elif ev.rul is None and ev.zone is None and not ev.peaks:
        out.append("no RUL prediction and no vibration features for this asset")
    if ev.rul is not None:
        r = ev.rul
        width = (r.upper_h - r.lower_h) / max(r.median_h, 1e-6)
        if width > policy.max_rel_width:
            out.append(f"RUL interval too wide: {r.lower_h:.0f} to {r.upper_h:.0f} h around {r.median_h:.0f} h")
        age = (ev.at - r.at).total_seconds() / 3600.0
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
    return None


def assess(ev: Evidence, policy: DeadlinePolicy | None = None) -> Decision:
    """Decide status, priority and deadline for the evidence of one asset."""
    policy = policy or DeadlinePolicy()
    crit = ev.asset.criticality
    zone = ev.zone.zone if ev.zone is not None else None
    severe = any(a.severity in ("high", "critical") and a.state != "cleared" for a in ev.alarms)
    fault = _fault_of(ev, policy)
    reasons = _weaknesses(ev, policy) + _contradictions(ev, policy)
    if reasons:
        # Collect better evidence soon; the deadline still never passes the RUL rule.
        window = policy.high_h if crit < 3 else policy.urgent_h
        margin = None
        if ev.rul is not None:
            _, margin, rul_window = policy.deadline(ev.at, ev.rul.lower_h, crit)
            window = min(window, rul_window)
        priority = policy.priority(window, crit, zone=zone, severe_alarm=severe)
        return Decision("insufficient_evidence", priority, ev.at + timedelta(hours=window), margin, window,
                        tuple(reasons), fault)
    calm = (zone is None or zone <= 1) and not ev.peaks and not severe
    if ev.rul is not None:
        deadline, margin, window = policy.deadline(ev.at, ev.rul.lower_h, crit)
        if calm and window > policy.monitor_h:
            return Decision("monitor", "low", None, margin, window, (), fault)
        return Decision("action", policy.priority(window, crit, zone=zone, severe_alarm=severe), deadline, margin, window,
                        (), fault)
    if zone is not None and zone >= 2:
        window = policy.zone_deadline_h[zone]
        return Decision("action", policy.priority(window, crit, zone=zone, severe_alarm=severe),
                        ev.at + timedelta(hours=window), None, window, (), fault)
    if ev.peaks or severe or fault is not None:
        window = policy.medium_h
        return Decision("action", policy.priority(window, crit, zone=zone, severe_alarm=severe),
                        ev.at + timedelta(hours=window), None, window, (), fault)
    return Decision("monitor", "low", None, None, None, (), None)
