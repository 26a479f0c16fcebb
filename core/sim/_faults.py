"""Fault specification and the damage-growth law of a run-to-failure trajectory."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["BEARING_FAULTS", "LOAD_LIFE_EXPONENT", "FaultKind", "FaultSpec", "damage_at", "growth_multiplier"]

FaultKind = Literal["none", "outer_race", "inner_race", "ball", "cage", "imbalance", "misalignment"]

#: Fault kinds that produce impacts in a rolling element bearing.
BEARING_FAULTS: frozenset[str] = frozenset({"outer_race", "inner_race", "ball", "cage"})

#: Exponent ``p`` of the load-life law by fault kind: a fault grows ``(load / rated)^p`` times as
#: fast. Rolling contact fatigue of ball bearings follows Lundberg-Palmgren (``L10 ~ (C/P)^3``);
#: imbalance and misalignment forces grow with the square of what drives them.
LOAD_LIFE_EXPONENT: dict[str, float] = {
    "none": 0.0, "outer_race": 3.0, "inner_race": 3.0, "ball": 3.0, "cage": 3.0, "imbalance": 2.0, "misalignment": 2.0,
}


def growth_multiplier(kind: str, derate_share: float) -> float:
    """How much slower a fault of ``kind`` grows with the load reduced by ``derate_share`` (0-1).

    ``(1 - share)^p`` with ``p`` from :data:`LOAD_LIFE_EXPONENT`: 1 at full load; a 30 %
    derate makes a bearing defect grow at 0.34 times the rate (its remaining life 2.9 times longer).
    """
    if not 0.0 <= derate_share < 1.0:
        raise ValueError(f"derate_share must be in [0, 1), got {derate_share!r}")
    return float((1.0 - derate_share) ** LOAD_LIFE_EXPONENT.get(kind, 3.0))


class FaultSpec(BaseModel):
    """A fault injected into one asset.

    The asset is healthy until ``onset_hours``; from there a damage index grows
    exponentially, ``d(x) = (exp(k x) - 1) / (exp(k) - 1)`` with
    ``x = (t - onset) / (life - onset)`` and ``k = severity_growth``, reaching 1 (failure,
    the time of event) at ``life_hours`` when run at its normal load.

    A derate (the load reduced by ``derate_share`` from ``derate_from_hours`` on) slows the
    damage clock by :func:`growth_multiplier`: ``t`` above becomes the effective age
    ``from + (t - from) * m``, and the time of event moves to ``from + (life - from) / m``.

    Attributes:
        kind: fault mode; ``"none"`` is a healthy asset.
        onset_hours: simulated hours at which the fault initiates.
        life_hours: simulated hours at which the asset fails (damage reaches 1).
        severity_growth: shape ``k`` of the exponential growth; larger is later and steeper.
        derate_from_hours: simulated hour from which the machine runs derated (``None``: never).
        derate_share: share of the load taken off from ``derate_from_hours`` (0-0.9).
    """

    model_config = ConfigDict(frozen=True)

    kind: FaultKind = "none"
    onset_hours: float = Field(default=0.0, ge=0.0)
    life_hours: float = Field(default=math.inf, gt=0.0)
    severity_growth: float = Field(default=3.0, gt=0.0, le=50.0)
    derate_from_hours: float | None = Field(default=None, ge=0.0, allow_inf_nan=False)
    derate_share: float = Field(default=0.0, ge=0.0, le=0.9)

    @model_validator(mode="after")
    def _life_after_onset(self) -> FaultSpec:
        if self.kind != "none":
            if not math.isfinite(self.life_hours):
                raise ValueError(f"life_hours must be finite for a {self.kind!r} fault; got {self.life_hours}")
            if not math.isfinite(self.onset_hours) or self.life_hours <= self.onset_hours:
                raise ValueError(
                    f"life_hours ({self.life_hours}) must be greater than onset_hours ({self.onset_hours})"
                )
        return self

    @classmethod
    def healthy(cls) -> FaultSpec:
        """A spec with no fault."""
        return cls(kind="none")

    @property
    def is_bearing_fault(self) -> bool:
        """Whether the fault produces rolling element impacts."""
        return self.kind in BEARING_FAULTS

    @property
    def derated(self) -> bool:
        """Whether a derate is set."""
        return self.derate_from_hours is not None and self.derate_share > 0.0

    @property
    def time_of_event(self) -> float:
        """Simulated hour of failure with the derate taken into account (``inf`` if healthy)."""
        if self.kind == "none":
            return math.inf
        start = self.derate_from_hours
        if start is None or not self.derated or start >= self.life_hours:
            return self.life_hours
        return start + (self.life_hours - start) / growth_multiplier(self.kind, self.derate_share)

    def effective_hours(self, t_hours: ArrayLike) -> NDArray[np.float64]:
        """The damage clock at ``t_hours``: the time itself, slowed after a derate starts."""
        t = np.asarray(t_hours, dtype=np.float64)
        start = self.derate_from_hours
        if start is None or not self.derated:
            return t
        m = growth_multiplier(self.kind, self.derate_share)
        return np.where(t <= start, t, start + (t - start) * m)

    def load_factor(self, t_hours: ArrayLike) -> NDArray[np.float64]:
        """Share of the normal load the machine runs at (1, or ``1 - derate_share`` once derated)."""
        t = np.asarray(t_hours, dtype=np.float64)
        start = self.derate_from_hours
        if start is None or not self.derated:
            return np.ones_like(t)
        return np.where(t < start, 1.0, 1.0 - self.derate_share)


def damage_at(fault: FaultSpec, t_hours: ArrayLike) -> NDArray[np.float64]:
    """Damage index in [0, 1] at the given simulated times (vectorised).

    Args:
        fault: the injected fault.
        t_hours: simulated time(s) in hours.

    Returns:
        Damage with the shape of ``t_hours``; 0 before onset and 1 from ``life_hours`` on.
    """
    t = fault.effective_hours(t_hours)
    if fault.kind == "none":
        return np.zeros_like(t)
    x = np.clip((t - fault.onset_hours) / (fault.life_hours - fault.onset_hours), 0.0, 1.0)
    k = fault.severity_growth
    d: NDArray[np.float64] = np.expm1(k * x) / math.expm1(k)
    return np.clip(d, 0.0, 1.0)
