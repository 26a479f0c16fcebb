"""Replay of the real datasets as live sources, at real or accelerated speed.

* FEMTO/PRONOSTIA: two-axis 25.6 kHz vibration snapshots and 10 Hz temperature, read straight
  from the ``Learning_set_BearingX_Y.tar.xz`` archives (no extraction).
* CWRU: drive-end (and fan-end) acceleration from the ``.mat`` files, cut into snapshots.
* C-MAPSS: each engine unit is a multi-sensor asset, one sample per channel per cycle.
* DCASE 2020 task 2: 16 kHz WAV clips as an acoustic channel.
"""

from __future__ import annotations

import tarfile
from collections.abc import AsyncIterator, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.io import loadmat, wavfile

from core.assets import AssetConfig, AssetKind, BearingGeometry, ChannelConfig, Quantity
from core.errors import SourceError
from edge_agent.sources._pacing import Pacer
from edge_agent.sources.base import RawBatch

__all__ = [
    "FEMTO_CONDITIONS",
    "CmapssReplaySource",
    "CwruRecord",
    "CwruReplaySource",
    "DcaseReplaySource",
    "FemtoReplaySource",
    "FemtoSnapshot",
    "cmapss_assets",
    "cwru_asset",
    "dcase_asset",
    "femto_asset",
    "iter_femto",
    "load_cmapss",
    "load_cwru",
    "pronostia_bearing",
    "read_wav",
]

#: Operating condition of each FEMTO bearing: (shaft rpm, radial load N).
FEMTO_CONDITIONS: dict[int, tuple[float, float]] = {1: (1800.0, 4000.0), 2: (1650.0, 4200.0), 3: (1500.0, 5000.0)}
FEMTO_RATE_HZ = 25600.0
FEMTO_TEMP_RATE_HZ = 10.0
CWRU_RATE_HZ = 12000.0


def pronostia_bearing() -> BearingGeometry:
    """The PRONOSTIA test bearing (Nectoux et al. 2012): 13 rollers of 3.5 mm on a 25.6 mm pitch circle."""
    return BearingGeometry(designation="NSK 6804DD", n_balls=13, ball_diameter_mm=3.5, pitch_diameter_mm=25.6)


# --------------------------------------------------------------------------------------- FEMTO
@dataclass(frozen=True)
class FemtoSnapshot:
    """One record of a FEMTO archive: ``kind`` "acc" (n x 2: horizontal, vertical, g) or "temp" (n,)."""

    kind: str
    index: int
    t_s: float
    values: NDArray[np.float64]


def femto_asset(bearing: str, site: str = "plant1") -> AssetConfig:
    """Asset config of FEMTO bearing ``"1_1"`` etc.: ``acc_h``, ``acc_v`` (g, 25.6 kHz), ``temp`` (degC, 10 Hz)."""
    cond = int(bearing.split("_", maxsplit=1)[0])
    if cond not in FEMTO_CONDITIONS:
        raise SourceError(f"FEMTO bearing must be '<condition>_<n>' with condition 1-3, got {bearing!r}")
    rpm, load = FEMTO_CONDITIONS[cond]
    acc = {
        "quantity": Quantity.ACCELERATION,
        "unit": "g",
        "sample_rate_hz": FEMTO_RATE_HZ,
        "min_value": -100.0,
        "max_value": 100.0,
    }
    return AssetConfig(
        asset_id=f"femto-{bearing.replace('_', '-')}",
        name=f"PRONOSTIA Bearing{bearing}",
        kind=AssetKind.BEARING_RIG,
        site=site,
        machine_class="I",
        shaft_speed_rpm=rpm,
        bearing=pronostia_bearing(),
        channels=(
            ChannelConfig(name="acc_h", **acc),
            ChannelConfig(name="acc_v", **acc),
            ChannelConfig(
                name="temp",
                quantity=Quantity.TEMPERATURE,
                unit="degC",
                sample_rate_hz=FEMTO_TEMP_RATE_HZ,
                min_value=-40.0,
                max_value=200.0,
            ),
        ),
        notes=f"FEMTO/PRONOSTIA run-to-failure, {rpm:.0f} rpm, {load:.0f} N radial load",
    )


def _parse_csv(raw: bytes, columns: int) -> NDArray[np.float64]:
    # FEMTO files separate with ',' or ';' depending on the bearing; numpy's C parser is ~10x loadtxt.
    text = raw.replace(b";", b",").replace(b"\r", b"").replace(b"\n", b",").decode("ascii")
    flat = np.fromstring(text, dtype=np.float64, sep=",")
    if flat.size % columns:
        raise SourceError(f"FEMTO record has {flat.size} values, not a multiple of {columns} columns")
    return flat.reshape(-1, columns)


def _seconds_of_day(
    h: NDArray[np.float64], m: NDArray[np.float64], s: NDArray[np.float64], frac: NDArray[np.float64]
) -> NDArray[np.float64]:
    return np.asarray(h * 3600.0 + m * 60.0 + s + frac)


def iter_femto(archive: str | Path, *, temperature: bool = True, limit: int | None = None) -> Iterator[FemtoSnapshot]:
    """Records of a FEMTO ``.tar.xz`` archive in time order.

    Vibration files come before temperature files in the archive, so with ``temperature`` the
    archive is read twice (temperatures first, they are small) and the two streams merged.

    Args:
        archive: ``Learning_set_BearingX_Y.tar.xz``.
        temperature: include the temperature records.
        limit: stop after this many vibration snapshots.
    """
    path = Path(archive)
    if not path.is_file():
        raise SourceError(f"FEMTO archive {str(path)!r} does not exist")
    temps = _unwrapped(_femto_members(path, "temp", None), 60.0) if temperature else iter(())
    accs = _unwrapped(_femto_members(path, "acc", limit), 10.0)
    first_acc = next(accs, None)
    if first_acc is None:
        return
    pending_temp = next(temps, None)
    t0 = first_acc.t_s if pending_temp is None else min(first_acc.t_s, pending_temp.t_s)
    for snap in _chain(first_acc, accs):
        while pending_temp is not None and pending_temp.t_s <= snap.t_s:
            yield FemtoSnapshot("temp", pending_temp.index, pending_temp.t_s - t0, pending_temp.values)
            pending_temp = next(temps, None)
        yield FemtoSnapshot("acc", snap.index, snap.t_s - t0, snap.values)


def _chain(first: FemtoSnapshot, rest: Iterator[FemtoSnapshot]) -> Iterator[FemtoSnapshot]:
    yield first
    yield from rest


def _unwrapped(records: Iterator[FemtoSnapshot], cadence_s: float) -> Iterator[FemtoSnapshot]:
    """Times of day made strictly increasing: across midnight (the files carry no date) and across
    the recorder's clock glitches (Bearing1_1 jumps back 5.9 h at acc_02121 and repeats a stamp at
    acc_02122), where the nominal cadence is used instead."""
    day, last = 0.0, -np.inf
    for r in records:
        t = r.t_s + day
        if t < last - 43200.0:
            day += 86400.0
            t += 86400.0
        if t <= last:
            t = last + cadence_s
        last = t
        yield FemtoSnapshot(r.kind, r.index, t, r.values)


def _femto_members(path: Path, kind: str, limit: int | None) -> Iterator[FemtoSnapshot]:
    count = 0
    try:
        with tarfile.open(path, "r:xz") as tf:
            for member in tf:
                name = member.name.rsplit("/", 1)[-1]
                if not member.isfile() or not name.startswith(f"{kind}_") or not name.endswith(".csv"):
                    continue
                f = tf.extractfile(member)
                if f is None:
                    continue
                index = int(name[len(kind) + 1 : -4])
                if kind == "acc":
                    rows = _parse_csv(f.read(), 6)
                    t = float(_seconds_of_day(rows[0, 0], rows[0, 1], rows[0, 2], rows[0, 3] * 1e-6))
                    yield FemtoSnapshot("acc", index, t, rows[:, 4:6].copy())
                else:
                    rows = _parse_csv(f.read(), 5)
                    t = float(_seconds_of_day(rows[0, 0], rows[0, 1], rows[0, 2], rows[0, 3] * 0.1))
                    yield FemtoSnapshot("temp", index, t, rows[:, 4].copy())
                count += 1
                if limit is not None and count >= limit:
                    return
    except (tarfile.TarError, OSError, EOFError) as err:
        raise SourceError(f"cannot read FEMTO archive {str(path)!r}: {err}") from err


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


# ---------------------------------------------------------------------------------------- CWRU
@dataclass(frozen=True)
class CwruRecord:
    """One CWRU file: drive-end (and fan-end, base) acceleration in g at 12 kHz and the shaft rpm."""

    name: str
    de: NDArray[np.float64]
    fe: NDArray[np.float64] | None
    rpm: float
    fs: float = CWRU_RATE_HZ


def load_cwru(path: str | Path) -> CwruRecord:
    """Read a CWRU ``.mat`` file (variables ``X<nnn>_DE_time``, ``X<nnn>_FE_time``, ``X<nnn>RPM``)."""
    p = Path(path)
    try:
        mat = loadmat(str(p))
    except (OSError, ValueError) as err:
        raise SourceError(f"cannot read CWRU file {str(p)!r}: {err}") from err

    def var(suffix: str) -> NDArray[np.float64] | None:
        hits = [v for k, v in mat.items() if k.endswith(suffix) and not k.startswith("__")]
        return np.asarray(hits[0], dtype=np.float64).ravel() if hits else None

    de, rpm = var("_DE_time"), var("RPM")
    if de is None or rpm is None:
        raise SourceError(f"CWRU file {p.name!r} lacks a *_DE_time or *RPM variable; has {sorted(mat)}")
    return CwruRecord(name=p.stem, de=de, fe=var("_FE_time"), rpm=float(rpm[0]))


def cwru_asset(rpm: float = 1797.0, site: str = "plant1") -> AssetConfig:
    """The CWRU rig: ``de`` and ``fe`` acceleration (g, 12 kHz), SKF 6205 drive-end bearing."""
    acc = {
        "quantity": Quantity.ACCELERATION,
        "unit": "g",
        "sample_rate_hz": CWRU_RATE_HZ,
        "min_value": -100.0,
        "max_value": 100.0,
    }
    return AssetConfig(
        asset_id="cwru-rig",
        name="CWRU bearing test rig",
        kind=AssetKind.MOTOR,
        site=site,
        machine_class="I",
        shaft_speed_rpm=rpm,
        bearing=BearingGeometry.skf_6205(),
        channels=(ChannelConfig(name="de", **acc), ChannelConfig(name="fe", **acc)),
    )


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
            rec = load_cwru(path)
            n = int(self.snapshot_s * rec.fs)
            for i in range(0, rec.de.size - n + 1, n):
                await self.pacer.wait_until(t)
                start = self.pacer.stamp(t)
                truth: dict[str, float | None] = {"rpm": rec.rpm}
                yield RawBatch(self.asset, self.asset.channel("de"), start, rec.de[i : i + n], truth)
                if rec.fe is not None:
                    yield RawBatch(self.asset, self.asset.channel("fe"), start, rec.fe[i : i + n], truth)
                t += self.snapshot_s


# ------------------------------------------------------------------------------------- C-MAPSS
CMAPSS_CHANNELS = ("setting1", "setting2", "setting3", *(f"s{i}" for i in range(1, 22)))


def load_cmapss(path: str | Path) -> dict[int, NDArray[np.float64]]:
    """C-MAPSS ``train_FD00X.txt`` / ``test_FD00X.txt``: unit -> rows (cycle, 3 settings, 21 sensors)."""
    try:
        data = np.loadtxt(path)
    except (OSError, ValueError) as err:
        raise SourceError(f"cannot read C-MAPSS file {str(path)!r}: {err}") from err
    if data.ndim != 2 or data.shape[1] != 26:
        raise SourceError(f"C-MAPSS file must have 26 columns, got shape {data.shape}")
    return {int(u): data[data[:, 0] == u, 1:] for u in np.unique(data[:, 0])}


def cmapss_assets(subset: str, units: Sequence[int], *, cycle_s: float = 1.0, site: str = "plant1") -> list[AssetConfig]:
    """One engine asset per unit, 24 generic channels sampled once per cycle (``1 / cycle_s`` Hz)."""
    rate = 1.0 / cycle_s
    chans = tuple(
        ChannelConfig(name=c, quantity=Quantity.GENERIC, unit="1", sample_rate_hz=rate, min_value=-1e5, max_value=1e5)
        for c in CMAPSS_CHANNELS
    )
    return [
        AssetConfig(
            asset_id=f"engine-{subset.lower()}-{u:03d}",
            name=f"C-MAPSS {subset} unit {u}",
            kind=AssetKind.ENGINE,
            site=site,
            channels=chans,
        )
        for u in units
    ]


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
        self.data = load_cmapss(self.path)
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


# --------------------------------------------------------------------------------------- DCASE
def read_wav(path: str | Path, full_scale_pa: float = 1.0) -> tuple[float, NDArray[np.float64]]:
    """``(sample_rate, samples)`` of a PCM WAV file, scaled so that digital full scale is ``full_scale_pa``."""
    try:
        fs, data = wavfile.read(str(path))
    except (OSError, ValueError) as err:
        raise SourceError(f"cannot read WAV file {str(path)!r}: {err}") from err
    x = np.asarray(data, dtype=np.float64)
    if x.ndim > 1:
        x = x[:, 0]
    if np.issubdtype(data.dtype, np.integer):
        x /= float(np.iinfo(data.dtype).max)
    return float(fs), x * full_scale_pa


def dcase_asset(site: str = "plant1", sample_rate_hz: float = 16000.0) -> AssetConfig:
    """A machine with one microphone channel ``mic`` (Pa)."""
    return AssetConfig(
        asset_id="dcase-machine",
        name="DCASE 2020 task 2 machine (id_00)",
        kind=AssetKind.PUMP,
        site=site,
        channels=(
            ChannelConfig(
                name="mic",
                quantity=Quantity.SOUND_PRESSURE,
                unit="Pa",
                sample_rate_hz=sample_rate_hz,
                min_value=-200.0,
                max_value=200.0,
            ),
        ),
    )


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
