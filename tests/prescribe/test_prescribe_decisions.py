"""The decision policy (docs/decisions.md) as a table: every state and its edges, the risk matrix,
and the prescriber and rule backend following the state."""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from prescribe.backends.base import DraftRequest
from prescribe.backends.rules import RulesBackend
from prescribe.policy import RISK_MATRIX, DeadlinePolicy, assess
from prescribe.prescriber import Prescriber
from prescribe.schema import AssetFacts, Evidence, FaultCall, PeakMatch, RulEstimate, TemperatureTrend, ZoneState

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
POLICY = DeadlinePolicy()


@dataclass(frozen=True)
class Case:
    """One row: the evidence, then the expected state, priority and hours to the deadline (None: no deadline)."""

    rul: tuple[float, float, float] | None  # (lower, median, upper) in hours
    state: str
    priority: str | None = None
    window_h: float | None = -1.0  # -1: not checked
    crit: int = 2
    cap_h: float | None = None
    health: float | None = None
    zone: int = 1
    rising: bool = False
    snr: float | None = None  # BPFO envelope peak
    fault: tuple[str, float] = ("none", 0.9)
    temp: tuple[float, float] | None = None  # (latest degC, slope K/h)
    reason: str = ""
    extra: dict[str, Any] = field(default_factory=dict)


def make(c: Case) -> Evidence:
    rul = None
    if c.rul is not None:
        lower, median, upper = c.rul
        rul = RulEstimate(median_h=median, lower_h=lower, upper_h=upper, coverage=0.9, at=NOW, cap_h=c.cap_h,
                          health_index=c.health)
    return Evidence(
        asset=AssetFacts(asset_id="P-101", criticality=c.crit, bearing="SKF 6310", spare_parts=("SKF 6310-2RS",)),
        at=NOW, rul=rul, fault=FaultCall(kind=c.fault[0], confidence=c.fault[1]),
        zone=ZoneState(zone=c.zone, velocity_mm_s=3.0, previous_zone=c.zone,
                       previous_velocity_mm_s=2.0 if c.rising else 3.0, lookback_h=48),
        peaks=(PeakMatch(defect="bpfo", frequency_hz=107.0, snr=c.snr, harmonics=3),) if c.snr is not None else (),
        temperature=TemperatureTrend(latest_c=c.temp[0], slope_c_per_h=c.temp[1], lookback_h=48) if c.temp else None,
    )


STRONG = {"snr": 17.0, "fault": ("outer_race", 0.9)}
WEAK = {"snr": 7.0, "fault": ("outer_race", 0.6)}

TABLE: dict[str, Case] = {
    # healthy: no degradation sign and the RUL at its cap, a normal health index, or no RUL at all
    "healthy: RUL at the cap, lower bound below the horizon": Case((140, 200, 270), "healthy", "low", None,
                                                                   cap_h=200, health=1.0),
    "healthy: RUL just below the cap, health normal (the demo's 196 h flip)": Case((122, 196, 270), "healthy", "low",
                                                                                  None, cap_h=200, health=1.0),
    "healthy: no RUL, calm": Case(None, "healthy", "low", None),
    "healthy: criticality 3 at the cap": Case((140, 200, 270), "healthy", "low", None, crit=3, cap_h=200, health=1.0),
    # watch: degradation signs, the lower bound beyond the planning horizon or the RUL at its cap
    "watch: RUL at the cap with an envelope peak": Case((140, 200, 270), "watch", "low", None, cap_h=200,
                                                        health=1.0, snr=7.0, fault=("outer_race", 0.6)),
    "watch: lower bound beyond the horizon": Case((600, 800, 1000), "watch", "low", None, **STRONG),  # type: ignore[arg-type]
    "watch: lower bound 1 h beyond the horizon": Case((337, 400, 460), "watch", "low", None, **WEAK),  # type: ignore[arg-type]
    # plan: lower bound within the planning horizon; due by lower - margin
    "plan: lower bound at the horizon": Case((336, 400, 460), "plan", "medium", 336 - 0.25 * 336, **WEAK),  # type: ignore[arg-type]
    "plan: strong evidence, 150 h": Case((150, 200, 260), "plan", "medium", 150 - 0.25 * 150, **STRONG),  # type: ignore[arg-type]
    "plan: wide interval far from zero with strong evidence": Case((60, 400, 1500), "plan", "high", 60 - 15, **STRONG),  # type: ignore[arg-type]
    "plan: finite RUL without signs and unknown health": Case((150, 200, 260), "plan", "medium", 150 - 0.25 * 150),
    # urgent: at most urgent_h left before lower - margin
    "urgent: 22 h left (crit 2)": Case((30, 40, 50), "urgent", "high", 22, **STRONG),  # type: ignore[arg-type]
    "urgent: just above the margin": Case((8.5, 10, 12), "urgent", "urgent", 0.5, **STRONG),  # type: ignore[arg-type]
    "urgent: crit 1 still at least high": Case((20, 25, 30), "urgent", "high", 20 - 4, crit=1, **STRONG),  # type: ignore[arg-type]
    # stop now: lower bound within the safety margin, zone D or a temperature trip
    "stop_now: P-101 at failure, RUL 0 [0-7] with BPFO 17x": Case((0, 0, 7), "stop_now", "urgent", 0, crit=3,
                                                                 temp=(72.0, 2.0), reason="safety margin", **STRONG),  # type: ignore[arg-type]
    "stop_now: lower bound at the margin": Case((8, 10, 12), "stop_now", "urgent", 0, **STRONG),  # type: ignore[arg-type]
    "stop_now: RUL 1 [1-20] narrow in hours, weak evidence": Case((1, 3, 20), "stop_now", "urgent", 0, **WEAK),  # type: ignore[arg-type]
    "stop_now: zone D with the RUL at its cap": Case((140, 200, 270), "stop_now", "urgent", 0, cap_h=200,
                                                     health=1.0, zone=3, reason="zone D"),
    "stop_now: zone D without RUL": Case(None, "stop_now", "urgent", 0, zone=3, reason="zone D"),
    "stop_now: temperature trip": Case((600, 800, 1000), "stop_now", "urgent", 0, temp=(96.0, 0.5),
                                       reason="temperature trip"),
    "stop_now: temperature rising 2.5 K/min": Case(None, "stop_now", "urgent", 0, temp=(60.0, 150.0),
                                                   reason="temperature trip"),
    # insufficient: weak evidence and an interval wider than max(24 h, 1.5 x median); contradictions
    "insufficient: wide far from zero, weak evidence": Case((50, 400, 1500), "insufficient_evidence",
                                                            reason="interval too wide", **WEAK),  # type: ignore[arg-type]
    "insufficient: wide near zero beyond the 24 h floor, weak": Case((0, 5, 40), "insufficient_evidence",
                                                                     reason="interval too wide", zone=2),
    "insufficient: RUL 0 but everything calm": Case((0, 1, 3), "insufficient_evidence", reason="all calm"),
}


@pytest.mark.parametrize("name", list(TABLE))
def test_decision_table(name: str) -> None:
    c = TABLE[name]
    d = assess(make(c), POLICY)
    assert d.state == c.state, (d, d.reasons)
    assert d.status == {"healthy": "monitor", "watch": "monitor", "insufficient_evidence": "insufficient_evidence"}.get(
        c.state, "action")
    if c.priority is not None:
        assert d.priority == c.priority, d
    if c.window_h is None:
        assert d.deadline is None and d.window_h is None
    elif c.window_h >= 0:
        assert d.window_h == pytest.approx(c.window_h)
        assert d.deadline == NOW + timedelta(hours=c.window_h)
    if c.reason:
        assert c.reason in d.why + " ".join(d.reasons), (d.why, d.reasons)
    if c.state == "stop_now":
        assert d.deadline == NOW and d.priority == "urgent"


def test_p101_at_failure_was_called_insufficient_by_a_relative_width() -> None:
    """The issue's case: the old relative width (7 h / 0 h) made it "insufficient"; it is a stop."""
    d = assess(make(TABLE["stop_now: P-101 at failure, RUL 0 [0-7] with BPFO 17x"]), POLICY)
    assert d.state == "stop_now" and not d.reasons and d.fault == "outer_race"


@pytest.mark.parametrize("crit", [1, 2, 3])
@pytest.mark.parametrize(("hours", "column"), [(10, 0), (24, 0), (24.5, 1), (72, 1), (100, 2), (336, 2), (337, 3)])
def test_priority_is_the_risk_matrix(crit: int, hours: float, column: int) -> None:
    assert POLICY.priority(hours, crit) == RISK_MATRIX[crit][column]


@pytest.mark.parametrize(("crit", "lower", "priority"), [(1, 200, "low"), (2, 200, "medium"), (3, 200, "high"),
                                                         (1, 60, "medium"), (2, 60, "high"), (3, 60, "urgent")])
def test_plan_priority_is_criticality_times_time_to_lower_bound(crit: int, lower: float, priority: str) -> None:
    d = assess(make(Case((lower, lower * 1.2, lower * 1.4), "plan", crit=crit, **STRONG)), POLICY)  # type: ignore[arg-type]
    assert (d.state, d.priority) == ("plan", priority)
    assert d.deadline == NOW + timedelta(hours=lower - POLICY.margin_h(lower, crit))


def test_policy_parameters_move_the_edges() -> None:
    ev = make(Case((400, 500, 600), "watch", **STRONG))  # type: ignore[arg-type]
    assert assess(ev, POLICY).state == "watch"
    assert assess(ev, DeadlinePolicy(planning_horizon_h=500)).state == "plan"
    trip = make(Case(None, "healthy", temp=(80.0, 0.0)))
    assert assess(trip, POLICY).state == "healthy"
    assert assess(trip, DeadlinePolicy(temp_trip_c=80.0)).state == "stop_now"


class _MustNotBeCalled:
    name = "must-not-be-called"

    async def complete(self, request: DraftRequest) -> str:
        raise AssertionError(f"a {request.decision.state} asset must not reach a backend")

    async def aclose(self) -> None:
        pass


@pytest.mark.parametrize("name", ["healthy: RUL at the cap, lower bound below the horizon",
                                  "watch: RUL at the cap with an envelope peak", "watch: lower bound beyond the horizon"])
def test_healthy_and_watch_reach_no_backend_and_draft_no_work_order(name: str) -> None:
    c = TABLE[name]
    rec = Prescriber(_MustNotBeCalled()).recommend(make(c))  # type: ignore[arg-type]
    assert (rec.state, rec.status, rec.work_order, rec.deadline, rec.backend) == (c.state, "monitor", None, None, "policy")
    assert "monitor" in rec.actions[0].what.lower() or "watch" in rec.actions[0].what.lower()
    assert "replace" not in rec.summary.lower()


def test_rul_at_cap_reads_at_least_never_a_finite_time() -> None:
    ev = make(TABLE["healthy: RUL at the cap, lower bound below the horizon"])
    item = next(i for i in ev.items() if i.id == "rul:latest")
    assert item.summary.startswith("RUL >= 200 h") and " d" not in item.summary and "140" not in item.summary
    rec = Prescriber().recommend(ev)
    assert "RUL >= 200 h" in rec.actions[0].why and rec.state == "healthy"


def test_rules_backend_never_upgrades_a_healthy_or_watch_asset() -> None:
    """Asked directly (past the prescriber), the rule backend answers "continue monitoring"."""
    from prescribe.knowledge import retrieve
    from prescribe.prompt import build_messages, draft_schema

    for name in ("healthy: RUL at the cap, lower bound below the horizon", "watch: lower bound beyond the horizon"):
        ev = make(TABLE[name])
        d, items = assess(ev, POLICY), ev.items()
        procs = retrieve(ev, d.fault, limit=2)
        req = DraftRequest(messages=build_messages(ev, items, procs, d), schema=draft_schema([i.id for i in items], []),
                           max_tokens=96, evidence=ev, items=items, procedures=procs, decision=d)
        answer = RulesBackend().draft(req)
        assert answer["actions"] == [] and str(answer["narrative"]).startswith("Continue monitoring"), answer


@pytest.mark.parametrize(("name", "first", "replace"), [
    ("stop_now: P-101 at failure, RUL 0 [0-7] with BPFO 17x", "Stop the machine now", "now, before the machine runs again"),
    ("urgent: 22 h left (crit 2)", "At the earliest stop", "without waiting for a planned stop, no later than {due}"),
    ("plan: strong evidence, 150 h", "At the next planned stop", "at the next planned stop, no later than {due}"),
])
def test_work_is_drafted_with_the_policy_deadline(name: str, first: str, replace: str) -> None:
    ev = make(TABLE[name])
    d = assess(ev, POLICY)
    rec = Prescriber().recommend(ev)
    assert rec.state == TABLE[name].state and rec.work_order is not None
    assert rec.actions[0].what.startswith(first) and rec.actions[0].kind == "safety", rec.actions
    step = next(s for s in rec.work_order.steps if s.code == "replace")
    due = f"{d.deadline:%Y-%m-%d %H:%M} UTC" if d.deadline is not None else ""
    assert step.text.startswith("Replace the drive-end bearing SKF 6310 with spare SKF 6310-2RS "
                                + replace.format(due=due)), step.text
    assert rec.deadline == d.deadline == rec.work_order.due_by
    assert all(a.deadline == d.deadline for a in rec.actions)
