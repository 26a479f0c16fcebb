"""Case Western Reserve University bearing data: the one reader of the ``.mat`` recordings.

Each file holds drive-end (``X<nnn>_DE_time``) and usually fan-end (``X<nnn>_FE_time``)
acceleration in g at 12 kHz, and the motor speed (``X<nnn>RPM``).
"""

from __future__ import annotations

import subprocess
import sys
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import NDArray

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
    mat = _load_mat_isolated(p)
    try:
        return _record(p, mat)
    except (TypeError, ValueError) as err:
        raise DatasetError(f"cannot read CWRU file {str(p)!r}: {err}") from err


# Run in a child process: scipy's MAT reader is C code that a corrupt file can crash outright
# (a segmentation fault, measured by benchmarks/hostile.py), which no exception handler survives.
# The child writes the numeric variables to an .npz file that the parent reads without pickle.
_CHILD = """
import sys
import numpy as np
from scipy.io import loadmat
try:
    mat = loadmat(sys.argv[1])
except Exception as err:
    sys.stderr.write(f"{type(err).__name__}: {err}"[:500])
    sys.exit(3)
arrays = {k: np.asarray(v) for k, v in mat.items() if not k.startswith("__") and isinstance(v, np.ndarray)}
np.savez(sys.argv[2], **{k: v for k, v in arrays.items() if v.dtype.kind in "biuf"})
"""


def _load_mat_isolated(p: Path, timeout_s: float = 120.0) -> dict[str, Any]:
    """The numeric variables of a MAT file, read by scipy in a child process (see ``_CHILD``).

    Raises:
        DatasetError: the file is not a readable MAT file, or reading it crashed or hung the reader.
    """
    with tempfile.TemporaryDirectory() as tmp:
        out = Path(tmp) / "vars.npz"
        try:
            done = subprocess.run([sys.executable, "-I", "-c", _CHILD, str(p), str(out)], capture_output=True,
                                  text=True, timeout=timeout_s, check=False)
        except subprocess.TimeoutExpired:
            raise DatasetError(f"cannot read CWRU file {str(p)!r}: the MAT reader took over {timeout_s:.0f} s") from None
        if done.returncode == 3:
            raise DatasetError(f"cannot read CWRU file {str(p)!r}: {done.stderr.strip()}")
        if done.returncode != 0 or not out.is_file():
            raise DatasetError(f"cannot read CWRU file {str(p)!r}: the MAT reader failed (exit {done.returncode}); "
                               "the file is corrupt")
        with np.load(out, allow_pickle=False) as npz:
            return {k: npz[k] for k in npz.files}



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
