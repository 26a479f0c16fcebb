"""Pacing of dataset replays: real time, accelerated, or as fast as possible."""

from __future__ import annotations

import asyncio
import time
from datetime import datetime, timedelta

from core.wire import utcnow

__all__ = ["Pacer"]


class Pacer:
    """Maps data time (seconds from the recording's start) to wall time and timestamps.

    Args:
        speed: data seconds per wall second (1 = real time); ``None`` replays as fast as possible.
        origin: timestamp of data time 0; default the moment the replay starts. Timestamps are
            ``origin + t / speed`` (``speed`` taken as 1 when ``None``): an accelerated replay
            compresses the timeline, so it never stamps samples in the future.
    """

    def __init__(self, speed: float | None = 1.0, origin: datetime | None = None) -> None:
        if speed is not None and speed <= 0:
            raise ValueError(f"speed must be > 0 or None, got {speed}")
        self.speed = speed
        self.origin = origin
        self._wall0 = 0.0

    def start(self) -> None:
        self._wall0 = time.monotonic()
        if self.origin is None:
            self.origin = utcnow()

    def stamp(self, t_data: float) -> datetime:
        assert self.origin is not None, "call start() first"
        return self.origin + timedelta(seconds=t_data / (self.speed or 1.0))

    async def wait_until(self, t_data: float) -> None:
        """Sleep until data time ``t_data`` is due (yield to the loop when unpaced)."""
        if self.speed is None:
            await asyncio.sleep(0)
            return
        delay = self._wall0 + t_data / self.speed - time.monotonic()
        await asyncio.sleep(max(0.0, delay))
