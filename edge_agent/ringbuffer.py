"""Local ring buffer of raw snapshots, published upstream on request or when an anomaly starts."""

from __future__ import annotations

from collections import deque
from datetime import datetime

from edge_agent.sources.base import RawBatch

__all__ = ["RawRingBuffer"]


class RawRingBuffer:
    """The last ``capacity`` raw batches of each channel of each asset, bounded in memory.

    Args:
        capacity: batches kept per (asset, channel).
    """

    def __init__(self, capacity: int = 8) -> None:
        if capacity < 1:
            raise ValueError(f"capacity must be >= 1, got {capacity}")
        self.capacity = capacity
        self._buf: dict[tuple[str, str], deque[RawBatch]] = {}

    def add(self, batch: RawBatch) -> None:
        key = (batch.asset.asset_id, batch.channel.name)
        self._buf.setdefault(key, deque(maxlen=self.capacity)).append(batch)

    def snapshot(self, asset_id: str, channel: str | None = None, *, last: int | None = None,
                 since: datetime | None = None) -> list[RawBatch]:
        """Kept batches of an asset (optionally one channel), oldest first."""
        out: list[RawBatch] = []
        for (a, c), dq in self._buf.items():
            if a != asset_id or (channel is not None and c != channel):
                continue
            items = list(dq)
            if since is not None:
                items = [b for b in items if b.start >= since]
            if last is not None:
                items = items[-last:]
            out.extend(items)
        return sorted(out, key=lambda b: (b.start, b.channel.name))

    def __len__(self) -> int:
        return sum(len(d) for d in self._buf.values())
