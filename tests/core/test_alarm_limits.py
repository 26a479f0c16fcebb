"""Alarm limits (configured or relative to the baseline), the deadband, and the RUL time bands."""

from __future__ import annotations

import math

import pytest

from core.alarm_limits import (
    Limit,
    back_to_normal,
    channel_limits,
    channel_quantity,
    configured_limits,
    exceeded,
    level_severity,
)
from core.maintenance import ALARM_SEVERITY_OF_STATE, DeadlinePolicy, time_state
from dashboard import _limits


class _Base:
    value = 0.05


def test_relative_limits_of_vibration_and_temperature() -> None:
    vib = channel_limits({}, "vib_de", "acceleration", 0.0417)
    assert [(lim.level, lim.label) for lim in vib] == [("alert", "alert: 2x baseline"), ("alarm", "alarm: 4x baseline")]
    assert [lim.value for lim in vib] == pytest.approx([0.0834, 0.1668])
    temp = channel_limits({}, "temp_de", "temperature", 43.4)
    assert [lim.label for lim in temp] == ["alert: baseline +15 K", "alarm: baseline +25 K"]
    assert [lim.value for lim in temp] == pytest.approx([58.4, 68.4])
    assert channel_limits({}, "vib_de", "acceleration", _Base()) == channel_limits({}, "vib_de", "acceleration", 0.05)
    for bad in (None, 0.0, -1.0, math.nan):
        assert channel_limits({}, "vib_de", "acceleration", bad) == []
    assert channel_limits({}, "load", "load", 50.0) == [], "no limits for other quantities"


def test_configured_limits_win_and_bad_entries_are_left_out() -> None:
    config = {"alarm_limits": {"vib_de": {"alert": 0.3, "alarm": "high"}, "temp_de": {"alarm": True}}}
    assert channel_limits(config, "vib_de", "acceleration", 0.05) == [Limit("alert (configured)", 0.3, "alert")]
    assert configured_limits(config, "temp_de") == [], "a bool is not a limit"
    assert configured_limits(config, "mic") is None and configured_limits({"alarm_limits": "x"}, "vib_de") is None


def test_the_dashboard_draws_the_core_limits() -> None:
    assert _limits.channel_limits is channel_limits and _limits.Limit is Limit
    assert _limits.iso_zone(12.0, "II") == "D" and _limits.iso_zone(0.5, "nonsense") == "A"
    assert "II" in _limits.ISO_10816_ZONES


def test_exceeded_picks_the_highest_level_and_the_deadband_holds_the_alarm() -> None:
    limits = channel_limits({}, "vib_de", "acceleration", 0.05)  # 0.1 alert, 0.2 alarm
    assert exceeded(0.1, limits) is None, "at the limit is not above it"
    hit = exceeded(0.15, limits)
    assert hit is not None and hit.level == "alert"
    hit = exceeded(0.25, limits)
    assert hit is not None and hit.level == "alarm"
    assert exceeded(math.nan, limits) is None
    assert not back_to_normal(0.096, limits, 5.0), "inside the 5 % deadband below 0.1"
    assert back_to_normal(0.094, limits, 5.0) and back_to_normal(0.099, limits, 0.0)
    assert back_to_normal(1.0, [], 5.0), "no limits: nothing to be in alarm about"
    with pytest.raises(ValueError, match="deadband_pct"):
        back_to_normal(0.05, limits, -1.0)


def test_level_severity_and_channel_quantity() -> None:
    assert [level_severity(lvl, c) for lvl in ("alert", "alarm") for c in (1, 3)] == ["low", "medium", "high", "high"]
    config = {"channels": [{"name": "vib_de", "quantity": "acceleration"}]}
    assert channel_quantity(config, "vib_de") == "acceleration"
    assert channel_quantity({}, "x", {"rms": 1.0, "crest": 3.0}) == "acceleration"
    assert channel_quantity({}, "mic", {"rms": 1.0, "crest": 3.0, "spl_db": 80.0}) is None
    assert channel_quantity({}, "t", {"mean": 40.0, "slope_per_min": 0.1}) == "temperature"


@pytest.mark.parametrize(("lower", "crit", "at_cap", "state"), [
    (600.0, 2, False, None),  # watch: beyond the 336 h planning horizon
    (150.0, 2, False, "plan"),  # margin 37.5 h, 112.5 h left
    (33.0, 2, False, "plan"),  # margin 8.25 h: 24.75 h left, just outside urgent_h
    (32.0, 2, False, "urgent"),  # margin 8 h: 24 h left
    (30.0, 2, False, "urgent"),
    (8.0, 2, False, "stop_now"),  # within the 8 h margin
    (0.0, 3, False, "stop_now"),
    (20.0, 3, False, "urgent"),  # margin 12 h
    (5.0, 2, True, None),  # at the model's cap: "at least the cap", no deadline
])
def test_time_state_follows_the_decision_policy_bands(lower: float, crit: int, at_cap: bool,
                                                      state: str | None) -> None:
    assert time_state(lower, crit, at_cap=at_cap) == state


def test_time_state_priorities_and_bad_input() -> None:
    assert ALARM_SEVERITY_OF_STATE == {"plan": "medium", "urgent": "high", "stop_now": "critical"}
    assert time_state(200.0, 2, at_cap=False, policy=DeadlinePolicy(planning_horizon_h=168.0)) is None
    with pytest.raises(ValueError, match="criticality"):
        time_state(10.0, 4, at_cap=False)
    with pytest.raises(ValueError, match="lower_h"):
        time_state(-1.0, 2, at_cap=False)
