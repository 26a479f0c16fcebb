"""Options of the edge agent beyond :class:`core.settings.EdgeSettings` (read from ``--agent-config``)."""

from __future__ import annotations

import tomllib
from pathlib import Path
from typing import Any

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import ConfigError
from core.signal import FeatureConfig
from edge_agent.health import HealthConfig
from edge_agent.quality import QualityConfig
from edge_agent.sources.config import ModbusTag, OpcUaTag, SourceConfig

__all__ = ["AgentConfig", "ModbusTag", "OpcUaTag", "PlcConfig", "PlcTarget", "SourceConfig"]


class PlcTarget(BaseModel):
    """Where one asset's health outputs are written; only these addresses are ever written.

    OPC UA: field -> node id. Modbus: field -> holding register; values are written as
    ``round(value * scale)`` (16-bit unsigned). Fields: ``health_index``, ``rul_hours``,
    ``rul_cycles``, ``rul_life_pct`` (the RUL goes to the field of the model's unit), ``iso_zone``,
    ``alarm_bits``.
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
        }
    )


class PlcConfig(BaseModel):
    opcua_endpoint: str | None = None
    modbus_endpoint: str | None = Field(default=None, description="host:port")
    modbus_unit_id: int = Field(default=1, ge=0, le=247)
    min_interval_s: float = Field(default=1.0, ge=0, description="per asset, between writes")
    targets: list[PlcTarget] = Field(default_factory=list)


class AgentConfig(BaseModel):
    """Everything the agent needs besides the shared settings."""

    model_config = ConfigDict(extra="forbid")

    source: SourceConfig = Field(default_factory=SourceConfig)
    features: FeatureConfig = Field(default_factory=FeatureConfig)
    health: HealthConfig = Field(default_factory=HealthConfig)
    quality: QualityConfig = Field(default_factory=QualityConfig)
    plc: PlcConfig = Field(default_factory=PlcConfig)
    raw_below_hz: float = Field(default=100.0, ge=0, description="channels slower than this go upstream raw")
    raw_on_anomaly: bool = True
    ring_capacity: int = Field(default=8, ge=1, description="raw batches kept per channel")
    raw_decimals: int = Field(default=5, ge=0, le=12)
    status_interval_s: float = Field(default=10.0, gt=0)
    primary_host: str | None = Field(default=None, description="wait for this host's STATE before sending")
    rul_model: Path | None = Field(
        default=None,
        description="RUL model: a registry model directory (its promoted version is loaded), a version "
        "directory or an ONNX file; its card says whether it reads C-MAPSS rows or edge feature frames",
    )
    rul_every: int = Field(
        default=10,
        ge=1,
        description="windows between RUL predictions (C-MAPSS models; feature models predict once per frame step of their card)",
    )
    rul_time_scale: float = Field(
        default=1.0,
        gt=0,
        description="asset seconds per second of the window "
        "timestamps, for feature models' frame steps (an accelerated simulator: 3600)",
    )
    rul_coverage: float = Field(default=0.9, gt=0, lt=1)

    @classmethod
    def load(cls, path: Path | None, **overrides: Any) -> AgentConfig:
        data: dict[str, Any] = {}
        if path is not None:
            try:
                data = tomllib.loads(Path(path).read_text())
            except (OSError, tomllib.TOMLDecodeError) as err:
                raise ConfigError(f"agent config {str(path)!r} is not readable TOML: {err}") from err
        data.update(overrides)
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            raise ConfigError(f"invalid agent config: {err}") from err
