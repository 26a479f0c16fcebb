"""The plant simulator as a live source: one snapshot per channel per tick, on an accelerated clock."""

from __future__ import annotations

import asyncio
import time
from collections.abc import AsyncIterator
from datetime import datetime

import numpy as np

from core.assets import AssetConfig
from core.sim import FaultSpec, PlantSimulator
from core.wire import utcnow
from edge_agent.sources.base import RawBatch

__all__ = ["SimulatorSource"]

#: Channels sampled faster than this are sent as snapshots of ``snapshot_samples`` samples.
_HIGH_RATE_HZ = 100.0


class SimulatorSource:
    """Live readings from :class:`core.sim.PlantSimulator`.

    Args:
        assets: the plant's machines.
        faults: injected faults (``None``: the simulator's default mix).
        seed: reproducible plant.
        time_acceleration: simulated seconds per wall-clock second.
        interval_s: wall seconds between ticks; every channel of every asset is sampled each tick.
        snapshot_samples: samples per high-rate snapshot (vibration, sound).
        max_ticks: stop after this many ticks (``None``: run until cancelled).
    """

    def __init__(
        self,
        assets: list[AssetConfig],
        faults: dict[str, FaultSpec] | None = None,
        *,
        seed: int = 7,
        time_acceleration: float = 3600.0,
        interval_s: float = 1.0,
        snapshot_samples: int = 2048,
        max_ticks: int | None = None,
    ) -> None:
        self.plant = PlantSimulator(assets, faults, seed=seed, time_acceleration=time_acceleration)
        self.interval_s = interval_s
        self.snapshot_samples = snapshot_samples
        self.max_ticks = max_ticks
        self._t0 = 0.0

    async def __aenter__(self) -> SimulatorSource:
        self._t0 = time.monotonic()
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    def sim_hours(self) -> float:
        return self.plant.sim_hours(time.monotonic() - self._t0)

    def tick(self, t_hours: float, now: datetime) -> list[RawBatch]:
        """Every channel of every asset at simulated time ``t_hours``."""
        out: list[RawBatch] = []
        for asset in self.plant.assets:
            state = self.plant.state(asset.asset_id, t_hours)
            truth = {"t_hours": t_hours, "health_index": state.health_index, "rul_hours": state.rul_hours}
            for ch in asset.channels:
                n = self.snapshot_samples if ch.sample_rate_hz > _HIGH_RATE_HZ else 1
                values = self.plant.snapshot(asset.asset_id, ch, t_hours, n)
                out.append(RawBatch(asset=asset, channel=ch, start=now, values=np.asarray(values), truth=truth))
        return out

    async def batches(self) -> AsyncIterator[RawBatch]:
        ticks = 0
        next_at = time.monotonic()
        while self.max_ticks is None or ticks < self.max_ticks:
            for batch in self.tick(self.sim_hours(), utcnow()):
                yield batch
            ticks += 1
            next_at += self.interval_s
            await asyncio.sleep(max(0.0, next_at - time.monotonic()))
