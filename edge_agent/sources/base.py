"""The source protocol: anything that yields reading batches (simulator, replay, OPC UA, Modbus)."""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Protocol, runtime_checkable

import numpy as np

from core.assets import AssetConfig, ChannelConfig

__all__ = ["RawBatch", "Source"]


@dataclass(frozen=True)
class RawBatch:
    """Samples of one channel of one asset, before they become a wire message.

    ``truth`` carries simulator ground truth (health index, RUL) for evaluation; real
    sources leave it empty.
    """

    asset: AssetConfig
    channel: ChannelConfig
    start: datetime
    values: np.ndarray
    truth: dict[str, float | None] | None = None


@runtime_checkable
class Source(Protocol):
    """An async source of raw batches: ``async with source: async for b in source.batches(): ...``."""

    async def __aenter__(self) -> Source: ...

    async def __aexit__(self, *exc: object) -> None: ...

    def batches(self) -> AsyncIterator[RawBatch]: ...
