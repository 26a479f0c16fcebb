"""Per-asset processing: raw batches -> windows -> features, data quality and health."""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from core.assets import AssetConfig
from core.edge_config import FeatureConfig, HealthConfig, QualityConfig
from core.signal import ChannelWindow, FeaturePipeline
from core.wire import DataQuality
from edge_agent.health import AlarmState, HealthMonitor
from edge_agent.quality import QualityMonitor
from edge_agent.sources.base import RawBatch

__all__ = ["AssetProcessor", "WindowResult"]

#: Precedence when a window's channels disagree: the worst wins.
_QUALITY_RANK = {DataQuality.GOOD: 0, DataQuality.SUSPECT: 1, DataQuality.FLATLINE: 2, DataQuality.DEVICE_SILENT: 3}


@dataclass
class WindowResult:
    """Everything the agent publishes about one window of one asset."""

    asset: AssetConfig
    window_start: datetime
    window_s: float
    batches: list[RawBatch]
    features: dict[str, dict[str, float]]
    quality: DataQuality
    channel_quality: dict[str, DataQuality]
    alarm: AlarmState | None
    truth: dict[str, float | None] = field(default_factory=dict)


class AssetProcessor:
    """Groups an asset's batches into windows and computes each window's features and health.

    A window closes when a channel delivers a second batch (the next tick has begun) or when
    :meth:`flush` is called. Stale batches are dropped here.

    Args:
        asset: the asset.
        features: feature pipeline options.
        health: health index / threshold options.
        quality: data quality options.
    """

    def __init__(self, asset: AssetConfig, *, features: FeatureConfig | None = None,
                 health: HealthConfig | None = None, quality: QualityConfig | None = None) -> None:
        self.asset = asset
        self.pipeline = FeaturePipeline(asset, features)
        self.health = HealthMonitor(asset, health)
        self.quality = QualityMonitor(asset, quality)
        self._open: dict[str, list[RawBatch]] = {}
        self._qualities: dict[str, DataQuality] = {}
        self.windows = 0

    def add(self, batch: RawBatch) -> Iterator[WindowResult]:
        """Take one batch; yields the window it closed, if any."""
        verdict = self.quality.check(batch)
        if verdict.stale:
            return
        if batch.channel.name in self._open:
            result = self.flush()
            if result is not None:
                yield result
        self._open[batch.channel.name] = [batch]
        self._qualities[batch.channel.name] = verdict.quality

    def flush(self) -> WindowResult | None:
        """Close the open window now."""
        if not self._open:
            return None
        batches = [b for bs in self._open.values() for b in bs]
        qualities = dict(self._qualities)
        self._open, self._qualities = {}, {}
        return self._process(batches, qualities)

    def _process(self, batches: list[RawBatch], qualities: dict[str, DataQuality]) -> WindowResult:
        window = {b.channel.name: ChannelWindow(b.start, np.asarray(b.values, dtype=np.float64)) for b in batches}
        good = {k: v for k, v in window.items() if qualities.get(k) != DataQuality.FLATLINE}
        features = self.pipeline.compute(good) if good else {}
        for name in window.keys() - good.keys():  # a frozen channel's statistics would be lies: say so instead
            features[name] = {"flatline": 1.0, "value": float(window[name].values[-1])}
        alarm = self.health.update(features) if good else None
        quality = max(qualities.values(), key=_QUALITY_RANK.__getitem__, default=DataQuality.GOOD)
        start = min(b.start for b in batches)
        window_s = max(len(b.values) / b.channel.sample_rate_hz for b in batches)
        truth = next((b.truth for b in batches if b.truth), None) or {}
        self.windows += 1
        return WindowResult(asset=self.asset, window_start=start, window_s=window_s, batches=batches,
                            features=features, quality=quality, channel_quality=qualities, alarm=alarm, truth=truth)
