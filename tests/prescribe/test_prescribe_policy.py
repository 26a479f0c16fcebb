"""Deadline and priority rules (property-tested) and the insufficient-evidence path."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.maintenance import PRIORITIES
from prescribe.backends.base import DraftRequest
from prescribe.policy import DeadlinePolicy, assess
from prescribe.prescriber import Prescriber
from prescribe.schema import AlarmFact, AssetFacts, Evidence, FaultCall, PeakMatch, RulEstimate, ZoneState

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
POLICY = DeadlinePolicy()


def evidence(lower: float, median: float, upper: float, crit: int = 2, *, zone: int = 2, rising: bool = True,
             peaks: bool = True, age_h: float = 0.0, fault: str = "outer_race", confidence: float = 0.9,
             alarm: str | None = None) -> Evidence:
    return Evidence(
        asset=AssetFacts(asset_id="P-1", criticality=crit, spare_parts=("SKF 6205-2RS",), bearing="SKF 6205"),
        at=NOW,
        rul=RulEstimate(median_h=median, lower_h=lower, upper_h=upper, coverage=0.9, at=NOW - timedelta(hours=age_h)),
        fault=FaultCall(kind=fault, confidence=confidence),
        zone=ZoneState(zone=zone, velocity_mm_s=3.0, previous_zone=max(zone - 1, 0),
                       previous_velocity_mm_s=2.0 if rising else 3.0, lookback_h=48),
        peaks=(PeakMatch(defect="bpfo", frequency_hz=107.0, snr=20.0, harmonics=3),) if peaks else (),
        alarms=(AlarmFact(id=1, kind="vibration_high", severity=alarm, state="active", raised_at=NOW),) if alarm else (),
    )


intervals = st.tuples(st.floats(0, 5000), st.floats(0, 1.0), st.floats(0, 1.5)).map(
    lambda t: (t[0], t[0] * (1 + t[1] / 2), t[0] * (1 + t[1])))  # lower, median, upper: width <= 1.0 x median


@settings(max_examples=150, deadline=None)
@given(interval=intervals, crit=st.integers(1, 3), zone=st.integers(0, 3),
       alarm=st.sampled_from([None, "low", "high", "critical"]), peaks=st.booleans(), rising=st.booleans())
def test_deadline_never_after_lower_bound_minus_margin(interval: tuple[float, float, float], crit: int, zone: int,
                                                      alarm: str | None, peaks: bool, rising: bool) -> None:
    lower, median, upper = interval
    ev = evidence(lower, median, upper, crit, zone=zone, alarm=alarm, peaks=peaks, rising=rising)
    d = assess(ev, POLICY)
    margin = POLICY.margin_h(lower, crit)
    assert margin > 0
    if d.deadline is not None:
        assert ev.at <= d.deadline <= ev.at + timedelta(hours=max(lower - margin, 0.0))
    assert d.priority in PRIORITIES
    if d.status == "action":
        assert d.deadline is not None


@settings(max_examples=200, deadline=None)
@given(w1=st.floats(0, 2000), w2=st.floats(0, 2000), crit=st.integers(1, 3), zone=st.integers(0, 3))
def test_less_time_never_means_lower_priority(w1: float, w2: float, crit: int, zone: int) -> None:
    short, long_ = sorted((w1, w2))
    p_short = PRIORITIES.index(POLICY.priority(short, crit, zone=zone))
    p_long = PRIORITIES.index(POLICY.priority(long_, crit, zone=zone))
    assert p_short >= p_long


def test_criticality_raises_priority_and_margin() -> None:
    lows = [assess(evidence(100, 120, 140, c), POLICY) for c in (1, 2, 3)]
    assert [PRIORITIES.index(d.priority) for d in lows] == sorted(PRIORITIES.index(d.priority) for d in lows)
    assert lows[0].margin_h is not None and lows[2].margin_h is not None and lows[2].margin_h > lows[0].margin_h
    assert lows[2].deadline is not None and lows[0].deadline is not None and lows[2].deadline < lows[0].deadline


def test_no_time_left_means_due_now_and_urgent() -> None:
    d = assess(evidence(5, 6, 7, 3), POLICY)
    assert (d.status, d.priority, d.deadline) == ("action", "urgent", NOW)


class _MustNotBeCalled:
    name = "must-not-be-called"

    async def complete(self, request: DraftRequest) -> str:
        raise AssertionError("insufficient evidence must not reach a backend")

    async def aclose(self) -> None:
        pass


@pytest.mark.parametrize(("kwargs", "reason"), [
    # wide far from zero with weak evidence (no envelope peak, a modest fault call): strong evidence
    # is never insufficient for a wide interval (tests/prescribe/test_prescribe_decisions.py)
    ({"lower": 10, "median": 100, "upper": 900, "peaks": False, "confidence": 0.6}, "interval too wide"),
    ({"lower": 100, "median": 120, "upper": 140, "age_h": 72}, "old"),
    ({"lower": 100, "median": 120, "upper": 140, "fault": "inner_race"}, "envelope peaks point to bpfo"),
    ({"lower": 20, "median": 25, "upper": 30, "zone": 0, "rising": False, "peaks": False, "fault": "none"},
     "vibration, peaks, temperature and alarms are all calm"),
])
def test_weak_or_contradictory_evidence_says_so(kwargs: dict[str, object], reason: str) -> None:
    lower, median, upper = kwargs.pop("lower"), kwargs.pop("median"), kwargs.pop("upper")
    ev = evidence(lower, median, upper, **kwargs)  # type: ignore[arg-type]
    rec = Prescriber(_MustNotBeCalled()).recommend(ev)  # type: ignore[arg-type]
    assert rec.status == "insufficient_evidence"
    assert any(reason in r for r in rec.reasons), rec.reasons
    assert rec.work_order is None and rec.backend == "policy"
    assert len(rec.actions) == 1 and "evidence" in rec.actions[0].what.lower()
    limit = ev.at + timedelta(hours=max(float(lower) - POLICY.margin_h(float(lower), 2), 0))  # type: ignore[arg-type]
    assert rec.deadline is not None and rec.deadline <= limit


def test_no_evidence_at_all_is_insufficient() -> None:
    ev = Evidence(asset=AssetFacts(asset_id="P-1"), at=NOW)
    rec = Prescriber(_MustNotBeCalled()).recommend(ev)  # type: ignore[arg-type]
    assert rec.status == "insufficient_evidence"
    assert "no RUL prediction and no vibration features" in rec.reasons[0]
    assert rec.actions[0].evidence  # still cites what it has (the asset's criticality)


def test_healthy_asset_is_monitored_without_backend(plant: dict) -> None:  # type: ignore[type-arg]
    from core.sim import FaultSpec
    from prescribe.evidence import from_simulator

    ev = from_simulator(plant["P-102"], FaultSpec.healthy(), 200.0, seed=1)
    rec = Prescriber(_MustNotBeCalled()).recommend(ev)  # type: ignore[arg-type]
    assert (rec.status, rec.priority, rec.deadline, rec.work_order) == ("monitor", "low", None, None)


def _healthy_with_temperatures(readings: list[tuple[float, float]]) -> Evidence:
    """A healthy asset (RUL at its cap, zone A, no peaks, no fault call) whose bearing temperature
    read ``(hour, degC)``, as :func:`prescribe.evidence.temperature_trend` turns readings into a trend."""
    import numpy as np

    from prescribe.evidence import temperature_trend

    hours, values = np.array(readings, dtype=float).T
    return Evidence(
        asset=AssetFacts(asset_id="P-1", criticality=2), at=NOW,
        rul=RulEstimate(median_h=200, lower_h=125, upper_h=260, coverage=0.9, at=NOW, cap_h=200, health_index=1.0),
        zone=ZoneState(zone=0, velocity_mm_s=0.6), temperature=temperature_trend(hours, values))


def test_sensor_noise_over_a_few_readings_is_no_temperature_rise() -> None:
    # two readings an hour apart 1.5 K apart: a line through two points, no trend to judge
    two = _healthy_with_temperatures([(0, 42.0), (1, 43.5)])
    assert two.temperature is not None and two.temperature.slope_c_per_h is None
    assert assess(two).state == "healthy"
    # three noisy readings whose fitted slope is 1.5 K/h: the scatter leaves the rise unproven
    three = _healthy_with_temperatures([(0, 42.0), (1, 42.6), (2, 45.0)])
    assert three.temperature is not None and three.temperature.slope_c_per_h == pytest.approx(1.5)
    assert three.temperature.slope_low_c_per_h is not None and three.temperature.slope_low_c_per_h < 1.0
    assert assess(three).state == "healthy"


def test_a_steady_temperature_rise_is_a_degradation_sign_and_a_fast_one_trips() -> None:
    noise = [0.1, -0.2, 0.15, -0.05, 0.0, 0.2, -0.15, 0.05, -0.1, 0.0]
    warming = _healthy_with_temperatures([(h, 40.0 + 2.0 * h + e) for h, e in enumerate(noise)])
    assert warming.temperature is not None and warming.temperature.slope_low_c_per_h is not None
    assert 1.0 < warming.temperature.slope_low_c_per_h < 2.0
    assert assess(warming).state == "watch"
    burning = _healthy_with_temperatures([(h / 60, 40.0 + 3.0 * h + e) for h, e in enumerate(noise)])  # 180 K/h
    assert assess(burning).state == "stop_now" and "temperature trip" in assess(burning).why
