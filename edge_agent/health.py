"""Health index and an adaptive anomaly threshold learned on each asset's own healthy start.

The health index (HI) is fixed in advance and the same for every asset with vibration: the
log-ratio of the broadband acceleration RMS of the asset's primary vibration channel (its first
acceleration channel) to that channel's healthy baseline, smoothed by a causal running median.
No cumulative sums, so the HI can fall again when the vibration does. Assets without vibration
fall back to the first channel carrying a ``mean`` feature (process values, C-MAPSS sensors).

The threshold is learned, per asset, on the windows after a warm-up (run-in) period:
``mean + k * std`` of the raw per-window log RMS. An alarm needs ``persistence`` consecutive
windows of the smoothed HI above it. Defaults (warm-up 60, baseline 100, median of 15, k 5,
persistence 5 windows) were fixed once for every bearing; see the edge README for the FEMTO
numbers they give.
"""

from __future__ import annotations

import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass

import numpy as np

from core.assets import AssetConfig, Quantity
from core.edge_config import HealthConfig
from core.errors import NotFittedError

__all__ = ["AlarmState", "HealthMonitor", "primary_channel"]


@dataclass(frozen=True)
class AlarmState:
    """Result of one window: the HI, the threshold (``None`` while learning) and the alarm flags."""

    hi: float
    threshold: float | None
    learning: bool
    exceeding: bool
    alarm: bool
    alarm_started: bool
    alarm_cleared: bool

    @property
    def health(self) -> float:
        """The HI mapped to ``(0, 1]``: baseline RMS over current RMS, 1 at or below the baseline."""
        return float(math.exp(-max(self.hi, 0.0)))


def primary_channel(asset: AssetConfig) -> tuple[str, str]:
    """The (channel, feature) pair the HI is built on for ``asset``."""
    for ch in asset.channels:
        if ch.quantity == Quantity.ACCELERATION:
            return ch.name, "rms"
    for ch in asset.channels:
        if ch.quantity not in (Quantity.SPEED, Quantity.LOAD):
            return ch.name, "mean"
    if asset.channels:
        return asset.channels[0].name, "mean"
    raise ValueError(f"asset {asset.asset_id!r} has no channels to build a health index on")


class HealthMonitor:
    """Online HI and adaptive threshold of one asset.

    Call :meth:`update` once per window with the window's features; the first
    ``warmup_windows + baseline_windows`` windows teach the threshold.

    Args:
        asset: whose primary channel the HI is built on.
        config: HI and threshold parameters.
    """

    def __init__(self, asset: AssetConfig, config: HealthConfig | None = None) -> None:
        self.asset = asset
        self.config = config or HealthConfig()
        self.channel, self.feature = primary_channel(asset)
        self._seen = 0
        self._baseline: list[float] = []
        self._recent: deque[float] = deque(maxlen=self.config.smooth_windows)
        self._run = 0
        self._alarm = False
        self.center_: float | None = None
        self.threshold_: float | None = None

    @property
    def fitted(self) -> bool:
        return self.threshold_ is not None

    def _raw(self, features: Mapping[str, Mapping[str, float]]) -> float | None:
        value = features.get(self.channel, {}).get(self.feature)
        if value is None or not math.isfinite(value):
            return None
        if self.feature == "rms":
            return math.log(max(value, 1e-12))
        return float(value)

    def update(self, features: Mapping[str, Mapping[str, float]]) -> AlarmState | None:
        """Feed one window's features; ``None`` when the primary channel is missing from it."""
        z = self._raw(features)
        if z is None:
            return None
        cfg = self.config
        self._seen += 1
        self._recent.append(z)
        if self.threshold_ is None:
            if self._seen > cfg.warmup_windows:
                self._baseline.append(z)
            if len(self._baseline) >= cfg.baseline_windows:
                self._fit(np.asarray(self._baseline))
            smoothed = float(np.median(self._recent))
            centre = float(np.mean(self._baseline)) if self._baseline else smoothed
            return AlarmState(hi=smoothed - centre, threshold=None, learning=True,
                              exceeding=False, alarm=False, alarm_started=False, alarm_cleared=False)
        assert self.center_ is not None
        hi = float(np.median(self._recent)) - self.center_
        exceeding = hi > self.threshold_
        self._run = self._run + 1 if exceeding else 0
        was = self._alarm
        if self._run >= cfg.persistence:
            self._alarm = True
        elif not exceeding:
            self._alarm = False
        return AlarmState(hi=hi, threshold=self.threshold_, learning=False, exceeding=exceeding, alarm=self._alarm,
                          alarm_started=self._alarm and not was, alarm_cleared=was and not self._alarm)

    def _fit(self, baseline: np.ndarray) -> None:
        self.center_ = float(baseline.mean())
        self.threshold_ = self.config.k * max(float(baseline.std()), self.config.min_std)
        self._baseline = []

    def state(self) -> dict[str, float]:
        """Learned baseline for persistence across restarts."""
        if self.threshold_ is None or self.center_ is None:
            raise NotFittedError(f"health monitor of {self.asset.asset_id!r} has not learned its baseline yet")
        return {"center": self.center_, "threshold": self.threshold_}
