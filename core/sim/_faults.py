"""Fault specification and the damage-growth law of a run-to-failure trajectory."""

from __future__ import annotations

import math
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from pydantic import BaseModel, ConfigDict, Field, model_validator

__all__ = ["BEARING_FAULTS", "FaultKind", "FaultSpec", "damage_at"]

FaultKind = Literal["none", "outer_race", "inner_race", "ball", "cage", "imbalance", "misalignment"]

#: Fault kinds that produce impacts in a rolling element bearing.
BEARING_FAULTS: frozenset[str] = frozenset({"outer_race", "inner_race", "ball", "cage"})


class FaultSpec(BaseModel):
    """A fault injected into one asset.

    The asset is healthy until ``onset_hours``; from there a damage index grows
    exponentially, ``d(x) = (exp(k x) - 1) / (exp(k) - 1)`` with
    ``x = (t - onset) / (life - onset)`` and ``k = severity_growth``, reaching 1 (failure,
    the time of event) at ``life_hours``.

    Attributes:
        kind: fault mode; ``"none"`` is a healthy asset.
        onset_hours: simulated hours at which the fault initiates.
        life_hours: simulated hours at which the asset fails (damage reaches 1).
        severity_growth: shape ``k`` of the exponential growth; larger is later and steeper.
    """

    model_config = ConfigDict(frozen=True)

    kind: FaultKind = "none"
    onset_hours: float = Field(default=0.0, ge=0.0)
    life_hours: float = Field(default=math.inf, gt=0.0)
    severity_growth: float = Field(default=3.0, gt=0.0, le=50.0)

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


def damage_at(fault: FaultSpec, t_hours: ArrayLike) -> NDArray[np.float64]:
    """Damage index in [0, 1] at the given simulated times (vectorised).

    Args:
        fault: the injected fault.
        t_hours: simulated time(s) in hours.

    Returns:
        Damage with the shape of ``t_hours``; 0 before onset and 1 from ``life_hours`` on.
    """
    t = np.asarray(t_hours, dtype=np.float64)
    if fault.kind == "none":
        return np.zeros_like(t)
    x = np.clip((t - fault.onset_hours) / (fault.life_hours - fault.onset_hours), 0.0, 1.0)
    k = fault.severity_growth
    d: NDArray[np.float64] = np.expm1(k * x) / math.expm1(k)
    return np.clip(d, 0.0, 1.0)
