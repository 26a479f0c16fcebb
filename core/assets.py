"""Asset, channel and bearing model shared by every package.

Bearing defect frequencies follow the standard kinematic formulas (e.g. Randall & Antoni,
"Rolling element bearing diagnostics - a tutorial", MSSP 2011) for a stationary outer race.
"""

from __future__ import annotations

import math
from enum import StrEnum

from pydantic import AwareDatetime, BaseModel, ConfigDict, Field, model_validator

__all__ = [
    "UNITS",
    "AssetConfig",
    "AssetKind",
    "BearingGeometry",
    "ChannelConfig",
    "DefectFrequencies",
    "Quantity",
]


class Quantity(StrEnum):
    """Physical quantities a channel may carry."""

    ACCELERATION = "acceleration"
    VELOCITY = "velocity"
    TEMPERATURE = "temperature"
    SOUND_PRESSURE = "sound_pressure"
    SPEED = "speed"
    LOAD = "load"
    PRESSURE = "pressure"
    CURRENT = "current"
    GENERIC = "generic"


#: Accepted unit for each quantity; a reading in another unit is rejected at ingest.
UNITS: dict[Quantity, frozenset[str]] = {
    Quantity.ACCELERATION: frozenset({"g", "m/s2"}),
    Quantity.VELOCITY: frozenset({"mm/s"}),
    Quantity.TEMPERATURE: frozenset({"degC"}),
    Quantity.SOUND_PRESSURE: frozenset({"Pa"}),
    Quantity.SPEED: frozenset({"rpm"}),
    Quantity.LOAD: frozenset({"%", "kW", "N"}),
    Quantity.PRESSURE: frozenset({"bar", "kPa"}),
    Quantity.CURRENT: frozenset({"A"}),
    Quantity.GENERIC: frozenset({"1"}),
}


class AssetKind(StrEnum):
    PUMP = "pump"
    MOTOR = "motor"
    FAN = "fan"
    COMPRESSOR = "compressor"
    ENGINE = "engine"
    BEARING_RIG = "bearing_rig"


class DefectFrequencies(BaseModel):
    """Bearing characteristic frequencies in Hz at a given shaft speed."""

    model_config = ConfigDict(frozen=True)

    shaft: float
    bpfo: float
    bpfi: float
    bsf: float
    ftf: float

    def as_dict(self) -> dict[str, float]:
        return {"shaft": self.shaft, "bpfo": self.bpfo, "bpfi": self.bpfi, "bsf": self.bsf, "ftf": self.ftf}


class BearingGeometry(BaseModel):
    """Rolling element bearing geometry.

    Attributes:
        designation: catalogue name, e.g. ``SKF 6205``.
        n_balls: number of rolling elements.
        ball_diameter_mm: rolling element diameter.
        pitch_diameter_mm: pitch circle diameter.
        contact_angle_deg: contact angle.
    """

    model_config = ConfigDict(frozen=True)

    designation: str = "generic"
    n_balls: int = Field(gt=2)
    ball_diameter_mm: float = Field(gt=0)
    pitch_diameter_mm: float = Field(gt=0)
    contact_angle_deg: float = Field(default=0.0, ge=0, lt=90)

    @model_validator(mode="after")
    def _ball_fits(self) -> BearingGeometry:
        if self.ball_diameter_mm >= self.pitch_diameter_mm:
            raise ValueError(
                f"ball_diameter_mm ({self.ball_diameter_mm}) must be smaller than "
                f"pitch_diameter_mm ({self.pitch_diameter_mm})"
            )
        return self

    def defect_frequencies(self, shaft_hz: float) -> DefectFrequencies:
        """Characteristic defect frequencies for a shaft turning at ``shaft_hz``."""
        ratio = self.ball_diameter_mm / self.pitch_diameter_mm * math.cos(math.radians(self.contact_angle_deg))
        return DefectFrequencies(
            shaft=shaft_hz,
            bpfo=self.n_balls / 2 * shaft_hz * (1 - ratio),
            bpfi=self.n_balls / 2 * shaft_hz * (1 + ratio),
            bsf=self.pitch_diameter_mm / (2 * self.ball_diameter_mm) * shaft_hz * (1 - ratio**2),
            ftf=shaft_hz / 2 * (1 - ratio),
        )

    @classmethod
    def skf_6205(cls) -> BearingGeometry:
        """Drive-end bearing of the CWRU test rig (SKF 6205-2RS JEM)."""
        return cls(designation="SKF 6205", n_balls=9, ball_diameter_mm=7.94, pitch_diameter_mm=39.04)

    @classmethod
    def skf_6203(cls) -> BearingGeometry:
        return cls(designation="SKF 6203", n_balls=8, ball_diameter_mm=6.75, pitch_diameter_mm=28.5)

    @classmethod
    def skf_6310(cls) -> BearingGeometry:
        return cls(designation="SKF 6310", n_balls=8, ball_diameter_mm=17.46, pitch_diameter_mm=77.5)


class ChannelConfig(BaseModel):
    """One sensor channel of an asset."""

    model_config = ConfigDict(frozen=True)

    name: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    quantity: Quantity
    unit: str
    sample_rate_hz: float = Field(gt=0, le=1_000_000)
    min_value: float = -1e6
    max_value: float = 1e6

    @model_validator(mode="after")
    def _unit_matches(self) -> ChannelConfig:
        if self.unit not in UNITS[self.quantity]:
            raise ValueError(
                f"unit {self.unit!r} is not valid for {self.quantity.value}; "
                f"expected one of {sorted(UNITS[self.quantity])}"
            )
        return self


class AssetConfig(BaseModel):
    """A monitored machine: identity, place in the plant, sensors and bearing."""

    model_config = ConfigDict(frozen=True)

    asset_id: str = Field(pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    name: str = ""
    kind: AssetKind = AssetKind.PUMP
    site: str = Field(default="plant1", pattern=r"^[A-Za-z0-9_\-]{1,64}$")
    line: str = "line1"
    criticality: int = Field(default=2, ge=1, le=3, description="1 = low, 3 = safety/production critical")
    machine_class: str = Field(default="II", pattern="^(I|II|III|IV)$", description="ISO 10816/20816 class")
    shaft_speed_rpm: float = Field(default=1780.0, gt=0)
    bearing: BearingGeometry = Field(default_factory=BearingGeometry.skf_6205)
    channels: tuple[ChannelConfig, ...] = ()
    spare_parts: tuple[str, ...] = ()
    notes: str = ""
    in_service_since: AwareDatetime | None = Field(
        default=None,
        description="when the monitored part (e.g. the bearing) was last fitted or renewed; turns a share-of-life "
        "prediction into hours",
    )
    cycles_at_start: int = Field(
        default=0,
        ge=0,
        description="operating cycles the asset had run before this gateway first saw it: a RUL model that reads "
        "the asset's age counts on from here when the asset has no cycle-counter channel",
    )
    standstill_mm_s: float = Field(
        default=0.2,
        gt=0,
        le=10,
        description="broadband velocity RMS (mm/s) below which the machine counts as stopped: the running hours "
        "a share-of-life prediction needs leave the stopped time out",
    )

    downtime_cost_per_h: float | None = Field(
        default=None, ge=0, description="production lost per hour stopped outside a planned stop; none: [plant] default "
        "for its criticality",
    )
    repair_h: float | None = Field(default=None, gt=0, le=10_000, description="hours a planned repair takes; none: [plant]")
    parts_cost: float | None = Field(default=None, ge=0, description="parts of one repair; none: [plant]")
    failure_cost: float | None = Field(
        default=None, ge=0, description="secondary damage of an unplanned failure (shaft, housing, product); none: [plant]",
    )
    spare_lead_time_h: float = Field(
        default=0.0, ge=0, le=100_000, description="hours until the spare part is on site; 0: in stock",
    )

    def channel(self, name: str) -> ChannelConfig:
        for ch in self.channels:
            if ch.name == name:
                return ch
        raise KeyError(f"asset {self.asset_id!r} has no channel {name!r}; has {[c.name for c in self.channels]}")

    @property
    def shaft_hz(self) -> float:
        return self.shaft_speed_rpm / 60.0
