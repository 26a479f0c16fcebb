"""Data quality at the edge: flat-lined channel vs silent device; stale values never re-sent."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import AsyncIterator
from datetime import datetime, timedelta

import numpy as np

from core.assets import AssetConfig, ChannelConfig, Quantity
from core.edge_config import QualityConfig
from core.settings import EdgeSettings, Settings
from core.wire import DataQuality, FeatureFrame, ReadingBatch, StatusReport
from edge_agent.agent import EdgeAgent
from edge_agent.sources.base import RawBatch
from tests._factories import ListSink

ASSET = AssetConfig(asset_id="pump-q", channels=(
    ChannelConfig(name="vib", quantity=Quantity.ACCELERATION, unit="g", sample_rate_hz=25600.0),
    ChannelConfig(name="temp", quantity=Quantity.TEMPERATURE, unit="degC", sample_rate_hz=1.0),
))




class ScriptedSource:
    """Good data, then a frozen temperature sensor, a repeated (stale) batch, then silence."""

    def __init__(self, t0: datetime) -> None:
        self.t0 = t0
        self.last_start: datetime | None = None

    async def __aenter__(self) -> ScriptedSource:
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def batches(self) -> AsyncIterator[RawBatch]:
        rng = np.random.default_rng(0)
        vib, temp = ASSET.channel("vib"), ASSET.channel("temp")
        for i in range(12):
            start = self.t0 + timedelta(seconds=i)
            frozen = i >= 4
            yield RawBatch(ASSET, vib, start, rng.normal(0, 0.1, 2048))
            yield RawBatch(ASSET, temp, start, np.array([40.0 if frozen else 40.0 + 0.1 * i]))
            self.last_start = start
            await asyncio.sleep(0.01)
        yield RawBatch(ASSET, temp, self.last_start, np.array([40.0]))  # the same sample again: stale
        await asyncio.sleep(2.0)  # the device stops answering


def test_flatline_and_silent_device_get_different_flags() -> None:
    edge = EdgeSettings(agent_id="edge-q", quality=QualityConfig(flat_repeats=3, silent_after_s=0.8), status_interval_s=60)
    sink = ListSink()
    agent = EdgeAgent(Settings(edge=edge), [ASSET], sink)
    source = ScriptedSource(datetime(2026, 1, 1, tzinfo=datetime.now().astimezone().tzinfo))
    asyncio.run(agent.run(source))

    temps = [m for m in sink.messages if isinstance(m, ReadingBatch) and m.channel == "temp"]
    assert [m.quality for m in temps[:3]] == [DataQuality.GOOD] * 3
    assert temps[-1].quality == DataQuality.FLATLINE, "a frozen sensor that keeps answering is a flat line"
    frames = [m for m in sink.messages if isinstance(m, FeatureFrame)]
    flat_frames = [f for f in frames if f.quality == DataQuality.FLATLINE]
    assert flat_frames and all(f.features["temp"].get("flatline") == 1.0 for f in flat_frames)
    silent = [f for f in frames if f.quality == DataQuality.DEVICE_SILENT]
    assert len(silent) == 1, "a silent device is reported once, with its own flag"
    assert set(silent[0].features) == {"temp", "vib"} and silent[0].features["vib"]["silent_s"] >= 0.8
    assert any(isinstance(m, StatusReport) and "device silent" in m.detail for m in sink.messages)
    # Stale values are never re-sent: one reading per real sample, timestamps strictly increasing.
    assert len(temps) == 12 and len({m.start for m in temps}) == 12
    assert all(a.start < b.start for a, b in itertools.pairwise(temps))
    assert agent.processors["pump-q"].quality.stale_dropped == 1
