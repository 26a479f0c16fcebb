"""Turning raw source batches into wire reading batches."""

from __future__ import annotations

import numpy as np

from core.wire import DataQuality, ReadingBatch
from edge_agent.sources.base import RawBatch

__all__ = ["to_reading_batch"]


def to_reading_batch(raw: RawBatch, publisher: str, seq: int, *, decimals: int = 5,
                     quality: DataQuality = DataQuality.GOOD) -> ReadingBatch:
    """A :class:`ReadingBatch` for ``raw``; values rounded to ``decimals`` to keep JSON compact."""
    values = np.round(np.asarray(raw.values, dtype=np.float64), decimals)
    return ReadingBatch(
        publisher=publisher, seq=seq, asset_id=raw.asset.asset_id, channel=raw.channel.name,
        quantity=raw.channel.quantity, unit=raw.channel.unit, sample_rate_hz=raw.channel.sample_rate_hz,
        start=raw.start, values=values.tolist(), quality=quality,
    )
