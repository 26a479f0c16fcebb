"""FEMTO/PRONOSTIA bearings (IEEE PHM 2012): the one reader of the ``Learning_set_BearingX_Y.tar.xz`` archives.

Two-axis 25.6 kHz vibration snapshots (every 10 s) and 10 Hz temperature records, read straight
from the archive (no extraction), in time order.
"""

from __future__ import annotations

import lzma
import tarfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from numpy.typing import NDArray

from core.assets import AssetConfig, AssetKind, BearingGeometry, ChannelConfig, Quantity
from core.errors import DatasetError

__all__ = [
    "FEMTO_CONDITIONS",
    "FEMTO_RATE_HZ",
    "FEMTO_TEMP_RATE_HZ",
    "FemtoSnapshot",
    "bearing_archive",
    "femto_asset",
    "iter_femto",
    "pronostia_bearing",
]

#: Operating condition of each FEMTO bearing: (shaft rpm, radial load N).
FEMTO_CONDITIONS: dict[int, tuple[float, float]] = {1: (1800.0, 4000.0), 2: (1650.0, 4200.0), 3: (1500.0, 5000.0)}
FEMTO_RATE_HZ = 25600.0
FEMTO_TEMP_RATE_HZ = 10.0


def pronostia_bearing() -> BearingGeometry:
    """The PRONOSTIA test bearing (Nectoux et al. 2012): 13 rollers of 3.5 mm on a 25.6 mm pitch circle."""
    return BearingGeometry(designation="NSK 6804DD", n_balls=13, ball_diameter_mm=3.5, pitch_diameter_mm=25.6)


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
        raise DatasetError(f"FEMTO bearing must be '<condition>_<n>' with condition 1-3, got {bearing!r}")
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
    text = raw.replace(b";", b",").replace(b"\r", b"").replace(b"\n", b",").decode("ascii").strip(",")
    flat = np.fromstring(text, dtype=np.float64, sep=",")
    if flat.size == 0:
        raise DatasetError("FEMTO record is empty")
    if flat.size % columns:
        raise DatasetError(f"FEMTO record has {flat.size} values, not a multiple of {columns} columns")
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
        raise DatasetError(f"FEMTO archive {str(path)!r} does not exist")
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
                try:
                    snap = _snapshot(kind, name, f.read())
                except (DatasetError, ValueError, UnicodeDecodeError) as err:
                    raise DatasetError(f"FEMTO archive {str(path)!r}, member {member.name!r}: {err}") from err
                yield snap
                count += 1
                if limit is not None and count >= limit:
                    return
    except (tarfile.TarError, OSError, EOFError, lzma.LZMAError) as err:
        raise DatasetError(f"cannot read FEMTO archive {str(path)!r}: {err}") from err


def _snapshot(kind: str, name: str, raw: bytes) -> FemtoSnapshot:
    """One ``acc_NNNNN.csv`` (h, m, s, us, horizontal, vertical) or ``temp_NNNNN.csv`` (h, m, s, 0.1 s, degC)."""
    index = int(name[len(kind) + 1 : -4])
    if kind == "acc":
        rows = _parse_csv(raw, 6)
        t = float(_seconds_of_day(rows[0, 0], rows[0, 1], rows[0, 2], rows[0, 3] * 1e-6))
        return FemtoSnapshot("acc", index, t, rows[:, 4:6].copy())
    rows = _parse_csv(raw, 5)
    t = float(_seconds_of_day(rows[0, 0], rows[0, 1], rows[0, 2], rows[0, 3] * 0.1))
    return FemtoSnapshot("temp", index, t, rows[:, 4].copy())


def bearing_archive(data_dir: str | Path, bearing: str) -> Path:
    """``Learning_set_Bearing{bearing}.tar.xz`` in ``data_dir`` or in its ``femto/`` folder."""
    name = f"Learning_set_Bearing{bearing}.tar.xz"
    base = Path(data_dir)
    for path in (base / name, base / "femto" / name):
        if path.is_file():
            return path
    raise DatasetError(f"FEMTO archive not found: expected {base / name} or {base / 'femto' / name}")
