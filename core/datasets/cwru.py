"""Case Western Reserve University bearing data: the one reader of the ``.mat`` recordings.

Each file holds drive-end (``X<nnn>_DE_time``) and usually fan-end (``X<nnn>_FE_time``)
acceleration in g at 12 kHz, and the motor speed (``X<nnn>RPM``).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray
from scipy.io import loadmat

from core.assets import AssetConfig, AssetKind, BearingGeometry, ChannelConfig, Quantity
from core.errors import DatasetError

__all__ = ["CWRU_RATE_HZ", "CwruRecord", "cwru_asset", "read_cwru"]

CWRU_RATE_HZ = 12000.0


@dataclass(frozen=True)
class CwruRecord:
    """One CWRU file: drive-end (and fan-end) acceleration in g at 12 kHz and the shaft rpm, where recorded."""

    name: str
    de: NDArray[np.float64]
    fe: NDArray[np.float64] | None
    rpm: float | None
    fs: float = CWRU_RATE_HZ

    def channel(self, name: str) -> NDArray[np.float64]:
        """The ``"DE"`` or ``"FE"`` signal.

        Raises:
            DatasetError: the file has no such channel.
        """
        signal = {"DE": self.de, "FE": self.fe}.get(name.upper())
        if signal is None:
            raise DatasetError(f"{self.name}: no '*_{name}_time' variable (channels are DE and FE)")
        return signal


def read_cwru(path: str | Path) -> CwruRecord:
    """Read a CWRU ``.mat`` file.

    Some mirrors store a neighbouring recording in the same file (``97.mat`` holding ``X097`` and
    ``X098``): the lowest-numbered variable, the file's own, is taken.

    Raises:
        DatasetError: the file is missing, not a MATLAB file, or has no drive-end signal.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"CWRU file missing: expected {p}")
    try:
        mat = loadmat(str(p))
    except Exception as err:  # scipy's MAT reader raises a zoo of types on a corrupt file; wrapped once here
        raise DatasetError(f"cannot read CWRU file {str(p)!r}: {err}") from err
    try:
        return _record(p, mat)
    except (TypeError, ValueError) as err:
        raise DatasetError(f"cannot read CWRU file {str(p)!r}: {err}") from err



def _record(p: Path, mat: dict[str, Any]) -> CwruRecord:
    def var(suffix: str) -> NDArray[np.float64] | None:
        hits = sorted(k for k in mat if k.endswith(suffix) and not k.startswith("__"))
        return np.asarray(mat[hits[0]], dtype=np.float64).ravel() if hits else None

    de, rpm = var("_DE_time"), var("RPM")
    if de is None:
        found = sorted(k for k in mat if not k.startswith("__"))
        raise DatasetError(f"CWRU file {p.name!r} has no '*_DE_time' variable; has {found}")
    return CwruRecord(name=p.stem, de=de, fe=var("_FE_time"), rpm=float(rpm[0]) if rpm is not None and rpm.size else None)


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
