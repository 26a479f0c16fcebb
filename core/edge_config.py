"""Option models of the edge agent, held by :class:`core.settings.EdgeSettings`.

Pure pydantic models without behaviour, so the one ``Settings`` can carry them: the source, the
feature pipeline, the health index, data quality and the PLC write-back.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, ConfigDict, Field, model_validator

from core.iso import ISO_ZONE_LIMITS

__all__ = [
    "PLC_SENTINEL_FIELDS",
    "PLC_VALIDITY_FIELDS",
    "PLC_VALUE_FIELDS",
    "FeatureConfig",
    "HealthConfig",
    "ModbusTag",
    "OpcUaTag",
    "PlcConfig",
    "PlcTarget",
    "QualityConfig",
    "SourceConfig",
]


class OpcUaTag(BaseModel):
    """An OPC UA node read as one channel of an asset."""

    node_id: str
    asset_id: str
    channel: str


class ModbusTag(BaseModel):
    """A Modbus register (or 32-bit register pair) polled as one channel: ``value = raw * scale + offset``."""

    address: int = Field(ge=0, le=65535)
    asset_id: str
    channel: str
    kind: Literal["holding", "input"] = "holding"
    words: Literal[1, 2] = 1
    signed: bool = False
    scale: float = 1.0
    offset: float = 0.0


class SourceConfig(BaseModel):
    """Where the agent's readings come from."""

    kind: Literal["simulator", "femto", "cwru", "cmapss", "dcase", "opcua", "modbus"] = "simulator"
    paths: list[Path] = Field(default_factory=list, description="dataset files for replays")
    speed: float | None = Field(default=1.0, description="replay speed (data s per wall s); None: flat out")
    units: list[int] | None = Field(default=None, description="C-MAPSS units to replay")
    endpoint: str = Field(default="", description="opc.tcp://host:port/path or host:port for Modbus")
    unit_id: int = Field(default=1, ge=0, le=247, description="Modbus unit (slave) id")
    poll_s: float = Field(default=1.0, gt=0)
    opcua_tags: list[OpcUaTag] = Field(default_factory=list)
    modbus_tags: list[ModbusTag] = Field(default_factory=list)


class FeatureConfig(BaseModel):
    """What the pipeline computes; defaults suit 25.6 kHz vibration and 16 kHz sound.

    Attributes:
        vib_bands_hz: acceleration band-energy edges (upper edges beyond Nyquist are clipped).
        velocity_band_hz: integration band of broadband velocity RMS (ISO 20816: 10-1000 Hz).
        zone_limits: ISO zone boundaries A/B, B/C, C/D in mm/s per machine class.
        envelope: compute envelope features (set ``False`` to save CPU on weak gateways).
        envelope_harmonics: harmonics of each defect frequency reported.
        envelope_tol: relative search half-width around each defect harmonic (slip, speed error).
        sk_npersegs: STFT window lengths of the spectral kurtosis band search.
        temperature_horizon_s: trailing span of the temperature slope fit.
        acoustic_fraction: octave fraction of the acoustic bands (1 = octaves, 3 = third-octaves).
    """

    model_config = ConfigDict(frozen=True)

    vib_bands_hz: tuple[float, ...] = (10.0, 1000.0, 2000.0, 5000.0, 10000.0, 12800.0)
    velocity_band_hz: tuple[float, float] = (10.0, 1000.0)
    zone_limits: dict[str, tuple[float, float, float]] = Field(default_factory=lambda: dict(ISO_ZONE_LIMITS))
    envelope: bool = True
    envelope_harmonics: int = Field(default=3, ge=1, le=10)
    envelope_tol: float = Field(default=0.02, gt=0, lt=0.2)
    sk_npersegs: tuple[int, ...] = (16, 32, 64)
    temperature_horizon_s: float = Field(default=600.0, gt=0)
    acoustic_fraction: int = Field(default=1, ge=1, le=3)


class HealthConfig(BaseModel):
    """Parameters of the health index and its adaptive threshold (in windows)."""

    model_config = ConfigDict(frozen=True)

    warmup_windows: int = Field(default=60, ge=0, description="run-in windows ignored before the baseline")
    baseline_windows: int = Field(default=100, ge=5, description="healthy windows the threshold is learned on")
    smooth_windows: int = Field(default=15, ge=1, description="causal running median of the HI")
    k: float = Field(default=5.0, gt=0, description="threshold = baseline mean + k * baseline std")
    persistence: int = Field(default=5, ge=1, description="consecutive exceedances before an alarm")
    min_std: float = Field(default=1e-3, gt=0, description="floor of the baseline std (log units)")


class QualityConfig(BaseModel):
    """Thresholds of the data-quality checks: flat-lined sensors and silent devices."""

    model_config = ConfigDict(frozen=True)

    flat_tolerance: float = Field(default=0.0, ge=0, description="peak-to-peak at or below this is flat")
    flat_repeats: int = Field(default=5, ge=2, description="identical single-sample batches that make a flat line")
    silent_after_s: float = Field(default=10.0, gt=0, description="no new data for this long: device silent")


#: The fields a PLC target can map: values, then the validity flags the agent keeps with them.
PLC_VALUE_FIELDS = ("health_index", "rul_hours", "rul_cycles", "rul_life_pct", "iso_zone", "alarm_bits")
PLC_VALIDITY_FIELDS = ("valid", "health_valid", "rul_valid")
#: Value fields that may carry a sentinel while invalid (the alarm word is always written as it is).
PLC_SENTINEL_FIELDS = ("health_index", "rul_hours", "rul_cycles", "rul_life_pct", "iso_zone")


class PlcTarget(BaseModel):
    """Where one asset's health outputs are written; only these addresses are ever written.

    OPC UA: field -> node id. Modbus: field -> holding register; values are written as
    ``round(value * scale)`` (16-bit unsigned). Fields: ``health_index``, ``rul_hours``,
    ``rul_cycles``, ``rul_life_pct`` (the RUL goes to the field of the model's unit), ``iso_zone``,
    ``alarm_bits``, and the validity flags (1 = fresh and trustworthy, 0 = not): ``valid`` (every
    mapped value), ``health_valid`` (health index and zone), ``rul_valid`` (the RUL).

    While a value is invalid its tag keeps its last value (the flags say not to trust it), unless
    ``invalid_opcua`` / ``invalid_modbus`` name a sentinel for the field: that value is written in
    its place (OPC UA in the node's own type, e.g. ``-1``; Modbus the raw register, e.g. ``65535``).
    """

    asset_id: str
    opcua_nodes: dict[str, str] = Field(default_factory=dict)
    modbus_registers: dict[str, int] = Field(default_factory=dict)
    modbus_scale: dict[str, float] = Field(
        default_factory=lambda: {
            "health_index": 1000.0,
            "rul_hours": 1.0,
            "rul_cycles": 1.0,
            "rul_life_pct": 10.0,
            "iso_zone": 1.0,
            "alarm_bits": 1.0,
            "valid": 1.0,
            "health_valid": 1.0,
            "rul_valid": 1.0,
        }
    )
    invalid_opcua: dict[str, float] = Field(default_factory=dict, description="field -> value written while invalid")
    invalid_modbus: dict[str, int] = Field(default_factory=dict, description="field -> raw register while invalid")

    @model_validator(mode="after")
    def _known_fields(self) -> PlcTarget:
        # a misspelt field ("validity") would leave the PLC without the flag its logic relies on
        known = (*PLC_VALUE_FIELDS, *PLC_VALIDITY_FIELDS)
        for option, names, allowed in (("opcua_nodes", self.opcua_nodes, known),
                                       ("modbus_registers", self.modbus_registers, known),
                                       ("invalid_opcua", self.invalid_opcua, PLC_SENTINEL_FIELDS),
                                       ("invalid_modbus", self.invalid_modbus, PLC_SENTINEL_FIELDS)):
            unknown = sorted(set(names) - set(allowed))
            if unknown:
                raise ValueError(f"PLC target {self.asset_id}: {option} has unknown fields {unknown}; "
                                 f"expected some of {', '.join(allowed)}")
        bad = sorted(k for k, v in (*self.modbus_registers.items(), *self.invalid_modbus.items()) if not 0 <= v <= 0xFFFF)
        if bad:
            raise ValueError(f"PLC target {self.asset_id}: Modbus register numbers and raw values must be 0-65535; "
                             f"fields {bad} are not")
        return self


class PlcConfig(BaseModel):
    """PLC write-back: the endpoints, the agent's heartbeat, the freshness limit and the per-asset targets."""

    opcua_endpoint: str | None = None
    modbus_endpoint: str | None = Field(default=None, description="host:port")
    modbus_unit_id: int = Field(default=1, ge=0, le=247)
    min_interval_s: float = Field(default=1.0, ge=0, description="per asset, between writes")
    heartbeat_opcua_node: str | None = Field(default=None, description="node the agent's heartbeat counter goes to")
    heartbeat_modbus_register: int | None = Field(default=None, ge=0, le=65535,
                                                  description="holding register of the heartbeat counter")
    heartbeat_interval_s: float = Field(default=1.0, gt=0, le=60, description="seconds between heartbeat increments")
    rul_max_age_s: float | None = Field(
        default=None, gt=0,
        description="a RUL older than this is invalid; None: three prediction intervals of the model "
                    "(feature models: step_hours of asset time), 3600 s for C-MAPSS models")
    targets: list[PlcTarget] = Field(default_factory=list)

    @model_validator(mode="after")
    def _registers_unique(self) -> PlcConfig:
        # two outputs on one register would overwrite each other and the PLC could not tell which it sees
        owners: dict[int, str] = {}
        if self.heartbeat_modbus_register is not None:
            owners[self.heartbeat_modbus_register] = "heartbeat"
        for t in self.targets:
            for name, reg in t.modbus_registers.items():
                if reg in owners:
                    raise ValueError(f"Modbus register {reg} is mapped twice: {owners[reg]} and {t.asset_id}.{name}")
                owners[reg] = f"{t.asset_id}.{name}"
        return self
