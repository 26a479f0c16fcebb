"""NASA C-MAPSS turbofan files (Saxena et al. 2008): the one reader of ``train_/test_/RUL_FD00X.txt``.

Each row of a ``train_FD00X.txt`` or ``test_FD00X.txt`` file is one engine cycle: unit, cycle,
three operating settings and 21 sensors, whitespace separated. ``RUL_FD00X.txt`` holds the true
RUL at the last test cycle of each unit.
"""

from __future__ import annotations

import hashlib
import warnings
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from core.assets import AssetConfig, AssetKind, ChannelConfig, Quantity
from core.errors import DatasetError

__all__ = [
    "CMAPSS_CHANNELS",
    "COLUMNS",
    "DEFAULT_CONDITIONS",
    "N_SENSORS",
    "N_SETTINGS",
    "SENSOR_COLUMNS",
    "SETTING_COLUMNS",
    "SUBSETS",
    "check_subset",
    "cmapss_assets",
    "data_hash",
    "load_cmapss",
    "load_rul_truth",
    "read_cmapss_file",
    "units_of",
]

N_SETTINGS = 3
N_SENSORS = 21
SUBSETS = ("FD001", "FD002", "FD003", "FD004")
SETTING_COLUMNS = [f"setting{i}" for i in range(1, N_SETTINGS + 1)]
SENSOR_COLUMNS = [f"s{i}" for i in range(1, N_SENSORS + 1)]
COLUMNS = ["unit", "cycle", *SETTING_COLUMNS, *SENSOR_COLUMNS]
#: the channels of a replayed engine: the three settings, then the 21 sensors
CMAPSS_CHANNELS = (*SETTING_COLUMNS, *SENSOR_COLUMNS)
#: operating conditions of each subset (Saxena et al. 2008)
DEFAULT_CONDITIONS = {"FD001": 1, "FD002": 6, "FD003": 1, "FD004": 6}


def check_subset(subset: str) -> str:
    """``subset`` if it is one of :data:`SUBSETS`, else a :class:`DatasetError`."""
    if subset not in SUBSETS:
        raise DatasetError(f"subset must be one of {SUBSETS}, got {subset!r}")
    return subset


def read_cmapss_file(path: str | Path) -> NDArray[np.float64]:
    """The rows of one ``train_FD00X.txt`` / ``test_FD00X.txt`` file, shape ``(n, 26)``.

    Raises:
        DatasetError: the file is missing, unreadable or not 26 numeric columns.
    """
    p = Path(path)
    if not p.is_file():
        raise DatasetError(f"C-MAPSS file not found: expected {p}")
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)  # numpy warns on an empty file; refused below instead
            arr = np.loadtxt(p, dtype=np.float64, ndmin=2)
    except (OSError, ValueError) as err:
        raise DatasetError(f"cannot read C-MAPSS file {str(p)!r}: {err}") from err
    if arr.size == 0:
        raise DatasetError(f"C-MAPSS file {str(p)!r} has no rows")
    if arr.shape[1] != len(COLUMNS):
        raise DatasetError(f"C-MAPSS file {str(p)!r} must have {len(COLUMNS)} columns, got shape {arr.shape}")
    return arr


def load_cmapss(data_dir: str | Path, subset: str, split: str = "train") -> pd.DataFrame:
    """Load ``{split}_{subset}.txt`` as a DataFrame with columns :data:`COLUMNS`.

    Args:
        data_dir: directory with the C-MAPSS text files.
        subset: ``"FD001"`` .. ``"FD004"``.
        split: ``"train"`` or ``"test"``.

    Returns:
        DataFrame with columns :data:`COLUMNS`; ``unit`` and ``cycle`` are integers.

    Raises:
        DatasetError: if the subset, split or file is wrong.
    """
    check_subset(subset)
    if split not in ("train", "test"):
        raise DatasetError(f"split must be 'train' or 'test', got {split!r}")
    arr = read_cmapss_file(Path(data_dir) / f"{split}_{subset}.txt")
    df = pd.DataFrame(arr, columns=COLUMNS)
    df["unit"] = df["unit"].astype(np.int64)
    df["cycle"] = df["cycle"].astype(np.int64)
    return df


def units_of(rows: NDArray[np.float64]) -> dict[int, NDArray[np.float64]]:
    """Rows of a C-MAPSS file by unit: unit -> ``(cycles, 25)`` (cycle, 3 settings, 21 sensors)."""
    return {int(u): rows[rows[:, 0] == u, 1:] for u in np.unique(rows[:, 0])}


def load_rul_truth(data_dir: str | Path, subset: str) -> NDArray[np.float64]:
    """Load ``RUL_{subset}.txt``: the true RUL at the last test cycle of each unit (uncapped).

    Raises:
        DatasetError: if the file is missing or malformed.
    """
    path = Path(data_dir) / f"RUL_{check_subset(subset)}.txt"
    if not path.is_file():
        raise DatasetError(f"RUL truth file not found: expected {path}")
    try:
        return np.loadtxt(path, dtype=np.float64).reshape(-1)
    except ValueError as err:
        raise DatasetError(f"cannot read RUL truth file {str(path)!r}: {err}") from err


def data_hash(data_dir: str | Path, subset: str) -> str:
    """SHA-256 of the training file of ``subset`` (recorded in model cards)."""
    path = Path(data_dir) / f"train_{check_subset(subset)}.txt"
    return hashlib.sha256(path.read_bytes()).hexdigest()


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
