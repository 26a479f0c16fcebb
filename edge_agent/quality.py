"""Data quality at the edge: a frozen (flat-lined) sensor is told apart from a silent device.

* **Flat line**: data keeps arriving with fresh timestamps, but the signal does not move
  (every sample of a high-rate batch equal, or a slow channel repeating the same value).
* **Device silent**: nothing new arrives for ``silent_after_s``. The agent then reports the
  silence; it never re-sends the last values with new timestamps.
* **Stale**: a batch whose timestamp is not after the previous one of its channel (a polled
  device that returns its cached value) is dropped, not re-published.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from datetime import datetime

import numpy as np

from core.assets import AssetConfig
from core.edge_config import QualityConfig
from core.wire import DataQuality
from edge_agent.sources.base import RawBatch

__all__ = ["ChannelVerdict", "QualityMonitor"]


@dataclass
class _ChannelState:
    last_start: datetime | None = None
    last_value: float | None = None
    repeats: int = 0
    last_seen: float = field(default_factory=time.monotonic)


@dataclass(frozen=True)
class ChannelVerdict:
    """Quality of one batch; ``stale`` batches must be dropped."""

    quality: DataQuality
    stale: bool = False


class QualityMonitor:
    """Quality bookkeeping of one asset's channels."""

    def __init__(self, asset: AssetConfig, config: QualityConfig | None = None) -> None:
        self.asset = asset
        self.config = config or QualityConfig()
        now = time.monotonic()
        self._state = {c.name: _ChannelState(last_seen=now) for c in asset.channels}
        self.stale_dropped = 0

    def check(self, batch: RawBatch, now: float | None = None) -> ChannelVerdict:
        """Verdict on a batch as it arrives."""
        st = self._state.setdefault(batch.channel.name, _ChannelState())
        if st.last_start is not None and batch.start <= st.last_start:
            self.stale_dropped += 1
            return ChannelVerdict(DataQuality.SUSPECT, stale=True)
        st.last_start = batch.start
        st.last_seen = time.monotonic() if now is None else now
        values = np.asarray(batch.values, dtype=np.float64)
        if values.size > 1:
            st.repeats = 0
            flat = float(np.ptp(values)) <= self.config.flat_tolerance
            return ChannelVerdict(DataQuality.FLATLINE if flat else DataQuality.GOOD)
        value = float(values[0])
        st.repeats = st.repeats + 1 if st.last_value is not None and abs(value - st.last_value) <= \
            self.config.flat_tolerance else 1
        st.last_value = value
        return ChannelVerdict(DataQuality.FLATLINE if st.repeats >= self.config.flat_repeats else DataQuality.GOOD)

    def silent_channels(self, now: float | None = None) -> dict[str, float]:
        """Channels with nothing new for ``silent_after_s``: name -> seconds since the last batch."""
        t = time.monotonic() if now is None else now
        return {name: t - st.last_seen for name, st in self._state.items()
                if t - st.last_seen >= self.config.silent_after_s}
