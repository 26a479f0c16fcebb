"""Replay of the real datasets as live sources, at real or accelerated speed.

The files are read by :mod:`core.datasets`; this module paces them out as raw batches.

* FEMTO/PRONOSTIA: two-axis 25.6 kHz vibration snapshots and 10 Hz temperature, read straight
  from the ``Learning_set_BearingX_Y.tar.xz`` archives (no extraction).
* CWRU: drive-end (and fan-end) acceleration from the ``.mat`` files, cut into snapshots.
* C-MAPSS: each engine unit is a multi-sensor asset, one sample per channel per cycle.
* DCASE 2020 task 2: 16 kHz WAV clips as an acoustic channel.
"""

from __future__ import annotations

from collections.abc import AsyncIterator, Sequence
from datetime import datetime
from pathlib import Path

import numpy as np

from core.assets import AssetConfig
from core.datasets.cmapss import CMAPSS_CHANNELS, cmapss_assets, read_cmapss_file, units_of
from core.datasets.cwru import cwru_asset, read_cwru
from core.datasets.dcase import dcase_asset, read_wav
from core.datasets.femto import femto_asset, iter_femto
from core.errors import SourceError
from edge_agent.sources._pacing import Pacer
from edge_agent.sources.base import RawBatch

__all__ = [
    "CmapssReplaySource",
    "CwruReplaySource",
    "DcaseReplaySource",
    "FemtoReplaySource",
]


class FemtoReplaySource:
    """A FEMTO bearing run-to-failure as a live asset.

    Each vibration snapshot gives one batch per axis (``acc_h``, ``acc_v``); each temperature
    file one batch of 600 samples. ``truth`` carries the life fraction of every snapshot.

    Args:
        archive: the bearing's ``.tar.xz``.
        asset: its config (default :func:`femto_asset` from the file name).
        speed: data seconds per wall second; ``None`` as fast as possible.
        temperature: include the temperature channel.
        limit: stop after this many vibration snapshots.
        origin: timestamp of the first snapshot (default: start of the replay).
    """

    def __init__(
        self,
        archive: str | Path,
        asset: AssetConfig | None = None,
        *,
        speed: float | None = 1.0,
        temperature: bool = True,
        limit: int | None = None,
        origin: datetime | None = None,
    ) -> None:
        self.archive = Path(archive)
        bearing = self.archive.name.removesuffix(".tar.xz").rsplit("Bearing", 1)[-1]
        self.asset = asset or femto_asset(bearing)
        self.temperature = temperature
        self.limit = limit
        self.pacer = Pacer(speed, origin)

    async def __aenter__(self) -> FemtoReplaySource:
        self.pacer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def batches(self) -> AsyncIterator[RawBatch]:
        a = self.asset
        h, v = a.channel("acc_h"), a.channel("acc_v")
        temp = a.channel("temp") if self.temperature else None
        for snap in iter_femto(self.archive, temperature=self.temperature, limit=self.limit):
            await self.pacer.wait_until(snap.t_s)
            start = self.pacer.stamp(snap.t_s)
            truth: dict[str, float | None] = {"t_data_s": snap.t_s, "index": float(snap.index)}
            if snap.kind == "acc":
                yield RawBatch(a, h, start, snap.values[:, 0], truth)
                yield RawBatch(a, v, start, snap.values[:, 1], truth)
            elif temp is not None:
                yield RawBatch(a, temp, start, snap.values, truth)


class CwruReplaySource:
    """CWRU files one after another, cut into snapshots of ``snapshot_s`` seconds (DE and FE)."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        asset: AssetConfig | None = None,
        *,
        snapshot_s: float = 1.0,
        speed: float | None = 1.0,
        origin: datetime | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.asset = asset or cwru_asset()
        self.snapshot_s = snapshot_s
        self.pacer = Pacer(speed, origin)

    async def __aenter__(self) -> CwruReplaySource:
        self.pacer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def batches(self) -> AsyncIterator[RawBatch]:
        t = 0.0
        for path in self.paths:
            rec = read_cwru(path)
            n = int(self.snapshot_s * rec.fs)
            for i in range(0, rec.de.size - n + 1, n):
                await self.pacer.wait_until(t)
                start = self.pacer.stamp(t)
                truth: dict[str, float | None] = {"rpm": rec.rpm}
                yield RawBatch(self.asset, self.asset.channel("de"), start, rec.de[i : i + n], truth)
                if rec.fe is not None:
                    yield RawBatch(self.asset, self.asset.channel("fe"), start, rec.fe[i : i + n], truth)
                t += self.snapshot_s


class CmapssReplaySource:
    """C-MAPSS engines as multi-sensor assets: every cycle, one single-sample batch per channel per engine.

    Engines run side by side; ``truth`` has the cycle and, for training files, the true RUL in cycles.

    Args:
        path: ``train_FD00X.txt`` or ``test_FD00X.txt``.
        units: engine units to replay (default all).
        assets: one config per unit, in the order of ``units`` (default :func:`cmapss_assets`); each
            must have the channels of :data:`CMAPSS_CHANNELS`.
        cycle_s: data seconds per cycle.
        speed: data seconds per wall second; ``None`` as fast as possible.
        origin: timestamp of the first cycle (default: start of the replay).
        truncate: treat a training file as cut off (no true RUL in ``truth``).
    """

    def __init__(
        self,
        path: str | Path,
        units: Sequence[int] | None = None,
        *,
        assets: Sequence[AssetConfig] | None = None,
        cycle_s: float = 1.0,
        speed: float | None = 1.0,
        origin: datetime | None = None,
        truncate: bool = False,
    ) -> None:
        self.path = Path(path)
        self.subset = self.path.stem.split("_")[-1]
        self.data = units_of(read_cmapss_file(self.path))
        self.units = list(units) if units is not None else sorted(self.data)
        missing = sorted(set(self.units) - set(self.data))
        if missing:
            raise SourceError(f"{self.path.name} has units 1-{max(self.data)}, not {missing}")
        self.assets = list(assets) if assets is not None else cmapss_assets(self.subset, self.units, cycle_s=cycle_s)
        if len(self.assets) != len(self.units):
            raise SourceError(f"need one asset per unit: {len(self.units)} units, {len(self.assets)} assets")
        self.cycle_s = cycle_s
        self.pacer = Pacer(speed, origin)
        self.run_to_failure = self.path.name.startswith("train") and not truncate

    async def __aenter__(self) -> CmapssReplaySource:
        self.pacer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def batches(self) -> AsyncIterator[RawBatch]:
        longest = max(len(self.data[u]) for u in self.units)
        for c in range(longest):
            t = c * self.cycle_s
            await self.pacer.wait_until(t)
            start = self.pacer.stamp(t)
            for u, asset in zip(self.units, self.assets, strict=True):
                rows = self.data[u]
                if c >= len(rows):
                    continue
                row = rows[c]
                rul = float(len(rows) - 1 - c) if self.run_to_failure else None
                truth: dict[str, float | None] = {"cycle": float(row[0]), "rul_cycles": rul}
                for name, value in zip(CMAPSS_CHANNELS, row[1:], strict=True):
                    yield RawBatch(asset, asset.channel(name), start, np.asarray([value]), truth)


class DcaseReplaySource:
    """WAV clips one after another as the ``mic`` channel, in chunks of ``chunk_s`` seconds."""

    def __init__(
        self,
        paths: Sequence[str | Path],
        asset: AssetConfig | None = None,
        *,
        chunk_s: float = 1.0,
        full_scale_pa: float = 1.0,
        speed: float | None = 1.0,
        origin: datetime | None = None,
    ) -> None:
        self.paths = [Path(p) for p in paths]
        self.asset = asset or dcase_asset()
        self.chunk_s = chunk_s
        self.full_scale_pa = full_scale_pa
        self.pacer = Pacer(speed, origin)

    async def __aenter__(self) -> DcaseReplaySource:
        self.pacer.start()
        return self

    async def __aexit__(self, *exc: object) -> None:
        return None

    async def batches(self) -> AsyncIterator[RawBatch]:
        ch = self.asset.channel("mic")
        t = 0.0
        for clip, path in enumerate(self.paths):
            fs, x = read_wav(path, self.full_scale_pa)
            if fs != ch.sample_rate_hz:
                raise SourceError(f"{path.name} is sampled at {fs} Hz, channel mic expects {ch.sample_rate_hz} Hz")
            n = int(self.chunk_s * fs)
            for i in range(0, x.size - n + 1, n):
                await self.pacer.wait_until(t)
                yield RawBatch(self.asset, ch, self.pacer.stamp(t), x[i : i + n], {"clip": float(clip)})
                t += self.chunk_s
