"""The maintenance vocabulary shared by the store, ingest's alarms and the prescriber.

Work-order priorities, the decision policy's parameters and time bands (:class:`DeadlinePolicy`,
:data:`RISK_MATRIX`; docs/decisions.md is the reader's version) and the time state a RUL lower
bound puts an asset in (:func:`time_state`). The prescriber decides the full state from all the
evidence (``prescribe.policy.assess``); ingest's ``rul_low`` alarm takes its priority from the
same bands through :func:`time_state`, so an alarm's priority and the decision agree.
"""

from __future__ import annotations

import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Literal, get_args

__all__ = [
    "ALARM_SEVERITY_OF_STATE",
    "DEFECT_FAULT",
    "PEAK_SNR",
    "PRIORITIES",
    "RISK_MATRIX",
    "DeadlinePolicy",
    "EnvelopePeak",
    "Priority",
    "TimeState",
    "envelope_peaks",
    "peak_fault",
    "time_state",
]

#: A work order's priority.
Priority = Literal["low", "medium", "high", "urgent"]
#: Work-order priorities, lowest first.
PRIORITIES: tuple[Priority, ...] = get_args(Priority)

#: Envelope amplitude at a defect frequency over the spectrum's median floor that counts as a peak.
#: Healthy simulated bearings stay below 4; seeded defects give 8-40 from early damage on.
PEAK_SNR = 6.0
#: Which bearing fault each defect frequency points to.
DEFECT_FAULT = {"bpfo": "outer_race", "bpfi": "inner_race", "bsf": "ball", "ftf": "cage"}


@dataclass(frozen=True)
class EnvelopePeak:
    """An envelope-spectrum peak at a bearing defect frequency, read from an edge feature window.

    Attributes:
        defect: ``bpfo``, ``bpfi``, ``bsf`` or ``ftf``.
        snr: amplitude of the first harmonic over the spectrum's median floor.
        harmonics: harmonics (the first included) at 3x the floor or more, at most 10.
        frequency_hz: the defect frequency the edge sent (``None`` when it sent none).
    """

    defect: str
    snr: float
    harmonics: int
    frequency_hz: float | None


def envelope_peaks(feats: Mapping[str, float], threshold: float = PEAK_SNR) -> tuple[EnvelopePeak, ...]:
    """The defect frequencies of one channel's features (``env_<defect>_snr``, ``_h1``..``_h10``,
    ``_hz``) standing at ``threshold`` times the floor or more, strongest first."""
    out = []
    for defect in DEFECT_FAULT:
        snr = float(feats.get(f"env_{defect}_snr", 0.0))
        if not math.isfinite(snr) or snr < threshold:
            continue
        floor = float(feats.get(f"env_{defect}_h1", 0.0)) / snr
        harmonics = 1 + sum(1 for k in range(2, 11) if floor > 0 and float(feats.get(f"env_{defect}_h{k}", 0.0)) >= 3 * floor)
        hz = float(feats.get(f"env_{defect}_hz", 0.0))
        out.append(EnvelopePeak(defect, snr, min(harmonics, 10), hz if math.isfinite(hz) and hz > 0 else None))
    return tuple(sorted(out, key=lambda p: -p.snr))


def peak_fault(defects: Iterable[str], strongest: str) -> str:
    """The bearing fault envelope peaks point to: the strongest defect frequency's, except that BSF
    with its FTF sidebands is a rolling-element (ball) defect."""
    return "ball" if "bsf" in set(defects) and strongest in ("bsf", "ftf") else DEFECT_FAULT[strongest]

#: Risk matrix: criticality -> priority by the hours to the RUL lower bound, in the bands of
#: ``(urgent_h, high_h, medium_h, beyond)`` (see :meth:`DeadlinePolicy.priority`).
RISK_MATRIX: dict[int, tuple[Priority, Priority, Priority, Priority]] = {
    3: ("urgent", "urgent", "high", "medium"),
    2: ("urgent", "high", "medium", "low"),
    1: ("high", "medium", "low", "low"),
}

#: The time state a RUL lower bound alone puts an asset in (the RUL part of the decision policy).
TimeState = Literal["plan", "urgent", "stop_now"]
#: Alarm priority (ISA-18.2 severity) of each time state: the alarm says what the decision says.
ALARM_SEVERITY_OF_STATE: dict[TimeState, str] = {"plan": "medium", "urgent": "high", "stop_now": "critical"}


@dataclass(frozen=True)
class DeadlinePolicy:
    """Parameters of the decision policy (defaults in docs/decisions.md).

    Attributes:
        margin_fraction: safety margin as a fraction of the RUL lower bound, by criticality.
        margin_min_h: smallest safety margin in hours, by criticality; a lower bound within it
            means stop now.
        urgent_h, high_h, medium_h: hour bands of the risk matrix (time to the RUL lower bound).
        urgent_h also bounds the ``urgent`` state: at most this long before lower bound - margin.
        planning_horizon_h: a lower bound within it is ``plan`` (work at the next planned stop).
        zone_deadline_h: without a RUL prediction, time allowed in zone C and D.
        max_rel_width: relative width ``(upper - lower) / median`` beyond which an interval is wide ...
        min_width_h: ... provided it is also wider than this many hours (the absolute floor near zero).
        max_age_h: RUL predictions older than this are stale.
        min_confidence: fault calls below this confidence do not count.
        strong_confidence: a fault call at or above this confidence is strong evidence.
        strong_peak_snr: an envelope peak at or above this SNR is strong evidence.
        health_normal: a health index at or above this is normal (1 = as new).
        temp_rising_c_per_h: a temperature rising faster than this is a degradation sign.
        temp_trip_c: bearing temperature that trips: stop now.
        temp_trip_c_per_h: temperature rise rate that trips: stop now.
    """

    margin_fraction: dict[int, float] = field(default_factory=lambda: {1: 0.15, 2: 0.25, 3: 0.35})
    margin_min_h: dict[int, float] = field(default_factory=lambda: {1: 4.0, 2: 8.0, 3: 12.0})
    urgent_h: float = 24.0
    high_h: float = 72.0
    medium_h: float = 336.0
    planning_horizon_h: float = 336.0
    zone_deadline_h: dict[int, float] = field(default_factory=lambda: {2: 336.0, 3: 0.0})
    max_rel_width: float = 1.5
    min_width_h: float = 24.0
    max_age_h: float = 24.0
    min_confidence: float = 0.5
    strong_confidence: float = 0.8
    strong_peak_snr: float = 10.0
    health_normal: float = 0.9
    temp_rising_c_per_h: float = 1.0
    temp_trip_c: float = 95.0
    temp_trip_c_per_h: float = 120.0

    def margin_h(self, lower_h: float, criticality: int) -> float:
        """Safety margin taken off the RUL lower bound."""
        return max(self.margin_min_h[criticality], self.margin_fraction[criticality] * lower_h)

    def deadline(self, now: datetime, lower_h: float, criticality: int, *,
                 time_scale: float = 1.0) -> tuple[datetime, float, float]:
        """``(deadline, margin_h, window_h)``: due by ``now + max(lower - margin, 0)``.

        Hours are plant hours; ``time_scale`` (plant hours per wall-clock hour, 1 in a plant, the
        simulator's acceleration in the demo) turns the window into the wall-clock due time.
        """
        margin = self.margin_h(lower_h, criticality)
        window = max(lower_h - margin, 0.0)
        return now + timedelta(hours=window / time_scale), margin, window

    def priority(self, hours_h: float, criticality: int, *, zone: int | None = None,
                 severe_alarm: bool = False) -> Priority:
        """Priority from the risk matrix (criticality x hours to the RUL lower bound), at least
        ``high`` (``urgent`` for criticality 3) in ISO zone D or with a high/critical alarm."""
        bands = (self.urgent_h, self.high_h, self.medium_h)
        col = next((i for i, b in enumerate(bands) if hours_h <= b), len(bands))
        level = PRIORITIES.index(RISK_MATRIX[criticality][col])
        if (zone is not None and zone >= 3) or severe_alarm:
            level = max(level, 3 if criticality == 3 else 2)
        return PRIORITIES[level]


def time_state(lower_h: float, criticality: int, *, at_cap: bool,
               policy: DeadlinePolicy | None = None) -> TimeState | None:
    """The time state a RUL lower bound puts an asset in, in the decision policy's bands.

    ``stop_now`` when the lower bound is within the safety margin, ``urgent`` when at most
    ``urgent_h`` are left before the lower bound minus the margin, ``plan`` when the lower bound
    is within the planning horizon; ``None`` beyond the horizon or when the RUL sits at its
    model's cap (the model then says only "at least the cap": no deadline). The prescriber's
    ``stop_now`` by RUL also asks for a degradation sign and a narrow interval; this function is
    the time part only.

    Args:
        lower_h: the RUL lower bound in hours.
        criticality: the asset's criticality, 1-3.
        at_cap: whether the prediction sits at its model's cap.
        policy: the bands (default: :class:`DeadlinePolicy` defaults).

    Raises:
        ValueError: ``lower_h`` negative or not finite, or ``criticality`` not 1, 2 or 3.
    """
    policy = policy or DeadlinePolicy()
    if criticality not in policy.margin_min_h or criticality not in policy.margin_fraction:
        raise ValueError(f"criticality must be one of {sorted(policy.margin_min_h)}, got {criticality!r}")
    if not math.isfinite(lower_h) or lower_h < 0:
        raise ValueError(f"lower_h must be a finite number of hours >= 0, got {lower_h!r}")
    if at_cap:
        return None
    margin = policy.margin_h(lower_h, criticality)
    if lower_h <= margin:
        return "stop_now"
    if lower_h - margin <= policy.urgent_h:
        return "urgent"
    if lower_h <= policy.planning_horizon_h:
        return "plan"
    return None
