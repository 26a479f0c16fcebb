"""What the dashboard says about each asset's condition: the decision state, its colour and rank,
the RUL as text and the ISO-zone-A hint. Pure: no Streamlit, no store.

The decision state is the prescriber's (:func:`prescribe.policy.assess` on
:func:`prescribe.evidence.from_store`), so a card and the work order drafted for it always agree
(docs/decisions.md). Its colour marks urgency only: acknowledging an alarm changes the alarm's
label, never how urgent the asset looks.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

from core.iso import ZONES
from core.maintenance import DEFECT_FAULT
from ingest.store.queries import AlarmView, AssetOverview, PredictionView
from prescribe.policy import DeadlinePolicy, Decision, assess
from prescribe.schema import Evidence

__all__ = [
    "STATES",
    "STATE_HELP",
    "STATE_HEX",
    "STATE_LABEL",
    "ZONE_A_HINT",
    "AssetDecision",
    "RulText",
    "judge",
    "rul_line",
    "rul_text",
    "urgency_hex",
    "urgency_key",
    "zone_a_hint",
]

#: Decision states, most severe first: the order of the plant overview.
STATES = ("stop_now", "urgent", "plan", "insufficient_evidence", "watch", "healthy")
STATE_LABEL = {"stop_now": "stop now", "urgent": "urgent", "plan": "plan",
               "insufficient_evidence": "insufficient evidence", "watch": "watch", "healthy": "healthy"}
#: What each state asks of people (docs/decisions.md).
STATE_HELP = {
    "stop_now": "Stop and replace now: due now, a work order is drafted.",
    "urgent": "Do the work before its due time, without waiting for a planned stop.",
    "plan": "Do the work at the next planned stop, before the RUL lower bound minus the safety margin.",
    "insufficient_evidence": "The evidence is weak or contradictory: collect better evidence before acting.",
    "watch": "Degradation signs, but the end of life is beyond the planning horizon: trend more closely.",
    "healthy": "No degradation sign: continue monitoring.",
}
#: ISA-101: healthy is muted; colour grows with urgency.
STATE_HEX = {"stop_now": "#b71c1c", "urgent": "#e53935", "plan": "#ef6c00", "insufficient_evidence": "#6a1b9a",
             "watch": "#f9a825", "healthy": "#b0bec5"}
#: Alarm severities, most severe first, and their colours where no decision state is known.
_SEVERITIES = ("critical", "high", "medium", "low")
_SEVERITY_HEX = {"critical": "#b71c1c", "high": "#e53935", "medium": "#ef6c00", "low": "#f9a825"}
_MUTED = "#b0bec5"

#: Why a bearing fault can sit in ISO zone A.
ZONE_A_HINT = ("ISO 10816 velocity zones judge overall vibration; early bearing defects show in the envelope "
               "spectrum before the velocity rises.")


@dataclass(frozen=True)
class AssetDecision:
    """The decision for one asset as the dashboard shows it.

    Attributes:
        asset_id: the asset.
        state: the decision state (:data:`STATES`).
        why: the condition that set the state.
        priority: the work priority the policy gives.
        reasons: why the evidence is insufficient (empty otherwise).
        zone: ISO zone letter of the evidence (``None`` without velocity).
        bearing_fault: a bearing fault the evidence shows (envelope peak or fault call), in words.
        temperature_rate_k_h: the bearing temperature's trend over the evidence's look-back, in K per
            plant hour (the rate the policy judges; ``None`` with fewer than two readings).
    """

    asset_id: str
    state: str
    why: str
    priority: str
    reasons: tuple[str, ...] = ()
    zone: str | None = None
    bearing_fault: str | None = None
    temperature_rate_k_h: float | None = None

    @property
    def label(self) -> str:
        return STATE_LABEL.get(self.state, self.state)

    @property
    def healthy(self) -> bool:
        return self.state == "healthy"


def _bearing_fault(ev: Evidence, policy: DeadlinePolicy) -> str | None:
    if ev.peaks:
        best = max(ev.peaks, key=lambda p: p.snr)
        return f"{best.defect.upper()} peak in the envelope ({best.snr:.0f}x floor)"
    call = ev.fault
    if call is not None and call.kind in DEFECT_FAULT.values() and call.confidence >= policy.min_confidence:
        return f"{call.kind.replace('_', ' ')} fault call ({call.confidence:.2f})"
    return None


def judge(ev: Evidence, policy: DeadlinePolicy | None = None) -> AssetDecision:
    """The prescriber's decision for ``ev`` (:func:`prescribe.policy.assess`), reduced to what pages show."""
    policy = policy or DeadlinePolicy()
    d: Decision = assess(ev, policy)
    return AssetDecision(asset_id=ev.asset.asset_id, state=d.state, why=d.why, priority=d.priority, reasons=d.reasons,
                         zone=ZONES[ev.zone.zone] if ev.zone is not None else None,
                         bearing_fault=_bearing_fault(ev, policy),
                         temperature_rate_k_h=ev.temperature.slope_c_per_h if ev.temperature is not None else None)


def zone_a_hint(zone: str | None, decision: AssetDecision | None) -> str | None:
    """Why ISO zone A shows beside a bearing fault, when it does; ``None`` otherwise."""
    if decision is None or decision.bearing_fault is None or (zone or decision.zone) != "A":
        return None
    return f"{decision.bearing_fault} while ISO zone A: {ZONE_A_HINT}"


def _open_severity(alarms: Sequence[AlarmView]) -> int:
    """Rank of the worst alarm that is not shelved (0 = critical); after ``low`` when there is none."""
    ranks = [_SEVERITIES.index(a.severity) if a.severity in _SEVERITIES else len(_SEVERITIES)
             for a in alarms if a.state != "shelved"]
    return min(ranks, default=len(_SEVERITIES) + 1)


def urgency_key(a: AssetOverview, decision: AssetDecision | None) -> tuple[int, int, str]:
    """Sort key, most urgent first: decision state, then the worst alarm's severity, then the asset id.

    An acknowledged alarm ranks as its severity: acknowledging says someone knows, not that the
    asset is less urgent.
    """
    state = STATES.index(decision.state) if decision is not None and decision.state in STATES else len(STATES)
    return state, _open_severity(a.open_alarms), a.asset.asset_id


def urgency_hex(a: AssetOverview, decision: AssetDecision | None) -> str:
    """The colour of how urgent the asset is: its decision state, else its worst unshelved alarm's severity."""
    if decision is not None and decision.state in STATE_HEX:
        return STATE_HEX[decision.state]
    rank = _open_severity(a.open_alarms)
    return _SEVERITY_HEX[_SEVERITIES[rank]] if rank < len(_SEVERITIES) else _MUTED


@dataclass(frozen=True)
class RulText:
    """A RUL as a card shows it: the figure, its unit, and a line under it."""

    value: str
    unit: str
    sub: str


def rul_text(p: PredictionView | None, *, healthy: bool = False) -> RulText:
    """The RUL of ``p`` as a figure, a unit and a line under it.

    A median at the model's cap (``p.at_cap``, the prescriber's notion), or any prediction of a
    healthy asset whose model has a cap, reads ``≥ cap``: the model only says "at least this
    long", so no interval is shown whose lower bound would sit below the figure. Between a
    median of 196 h and one at the cap, a healthy asset's figure does not change.

    Args:
        p: the newest prediction (``None``: none yet).
        healthy: the asset's decision state is ``healthy`` (no degradation sign).
    """
    if p is None:
        return RulText("—", "", "none yet")
    if p.rul_unit == "%":  # a share-of-life model: the share of the bearing's life still left
        return RulText(f"{p.rul_median:.0f}", "%", f"{p.rul_lower:.0f}–{p.rul_upper:.0f} %")
    if p.rul_cap is not None and (p.at_cap or healthy):
        return RulText(f"≥ {p.rul_cap:.0f}", p.rul_unit, "no degradation" if healthy else "model cap")
    interval = f"{p.rul_lower:.0f}–{p.rul_upper:.0f} {p.rul_unit}"
    return RulText(f"{p.rul_median:.0f}", p.rul_unit, f"no degradation · {interval}" if healthy else interval)


def rul_line(p: PredictionView | None, *, healthy: bool = False) -> str:
    """The RUL in one line: ``'no degradation, ≥ 200 h'``, ``'≥ 200 h (model cap)'``,
    ``'120 h [95–160 h] (90 %)'`` or ``'no prediction yet'``."""
    if p is None:
        return "no prediction yet"
    t = rul_text(p, healthy=healthy)
    if t.value.startswith("≥"):
        return f"no degradation, {t.value} {t.unit}" if healthy else f"{t.value} {t.unit} (model cap)"
    unit = "% of life left" if p.rul_unit == "%" else p.rul_unit
    return (("no degradation, " if healthy else "")
            + f"{p.rul_median:.0f} {unit} [{p.rul_lower:.0f}–{p.rul_upper:.0f} {p.rul_unit}] ({p.coverage:.0%})")
