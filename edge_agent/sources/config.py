"""Where the agent's readings come from: the source kind, replay files, OPC UA nodes and Modbus registers."""

from __future__ import annotations

from pathlib import Path
from typing import Literal

from pydantic import BaseModel, Field

__all__ = ["ModbusTag", "OpcUaTag", "SourceConfig"]


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
