"""RUL metrics of the C-MAPSS protocol (numpy only)."""

from __future__ import annotations

from typing import Any

import numpy as np

__all__ = ["phm08_score", "rmse"]


def rmse(y_true: Any, y_pred: Any) -> float:
    """Root-mean-square error in cycles."""
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
    return float(np.sqrt(np.mean((p - t) ** 2)))


def phm08_score(y_true: Any, y_pred: Any) -> float:
    """PHM08 challenge score: asymmetric exponential penalty, late predictions cost more.

    ``d = pred - true``; ``s = sum(exp(-d / 13) - 1)`` for ``d < 0`` and
    ``sum(exp(d / 10) - 1)`` for ``d >= 0`` (Saxena et al. 2008). Lower is better.
    """
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    d = np.asarray(y_pred, dtype=np.float64).reshape(-1) - t
    return float(np.sum(np.where(d < 0, np.exp(-d / 13.0) - 1.0, np.exp(d / 10.0) - 1.0)))
