"""Time-domain statistics of a window, vectorised over the last axis."""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

__all__ = ["time_stats"]

_EPS = 1e-12


def time_stats(x: ArrayLike) -> dict[str, NDArray[np.float64]]:
    """RMS, peak, crest factor, kurtosis (Pearson, normal = 3) and skewness along the last axis.

    Args:
        x: samples, shape ``(..., n)``; the mean is removed for kurtosis and skewness only.

    Returns:
        name -> array of shape ``x.shape[:-1]`` (a 0-d array for a 1-D window).
    """
    a = np.asarray(x, dtype=np.float64)
    rms = np.sqrt(np.mean(a * a, axis=-1))
    peak = np.max(np.abs(a), axis=-1)
    centred = a - a.mean(axis=-1, keepdims=True)
    m2 = np.mean(centred**2, axis=-1)
    m3 = np.mean(centred**3, axis=-1)
    m4 = np.mean(centred**4, axis=-1)
    flat = m2 <= _EPS
    safe_m2 = np.where(flat, 1.0, m2)
    return {
        "rms": rms,
        "peak": peak,
        "crest": np.where(rms > _EPS, peak / np.where(rms > _EPS, rms, 1.0), 0.0),
        "kurtosis": np.where(flat, 0.0, m4 / safe_m2**2),
        "skewness": np.where(flat, 0.0, m3 / safe_m2**1.5),
        "std": np.sqrt(m2),
    }
