"""A stand-in for the kept-back C-MAPSS test set: training units truncated like the test set."""

from __future__ import annotations

from collections.abc import Iterable
from pathlib import Path

import numpy as np

from core.datasets.cmapss import load_cmapss


def write_test_layout(cmapss_dir: Path, units: Iterable[int], out: Path, *, subset: str = "FD001", seed: int = 0) -> np.ndarray:
    """Cut each unit at a random cycle (keeping 25 .. n-6 cycles) and write ``test_``/``RUL_`` files.

    Returns the true RUL at each unit's last kept cycle, in file order.
    """
    rng = np.random.default_rng(seed)
    df = load_cmapss(cmapss_dir, subset, "train")
    parts, truth = [], []
    for unit in units:
        g = df[df["unit"] == unit]
        keep = int(rng.integers(25, len(g) - 5))
        parts.append(g.iloc[:keep].to_numpy())
        truth.append(len(g) - keep)
    np.savetxt(out / f"test_{subset}.txt", np.concatenate(parts), fmt="%.6g")
    np.savetxt(out / f"RUL_{subset}.txt", np.asarray(truth), fmt="%d")
    return np.asarray(truth)
