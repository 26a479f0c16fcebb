"""Split-conformal prediction intervals for RUL point predictions.

Split conformal (Vovk et al.; Lei et al. 2018): on calibration instances that took no part in
fitting, compute non-conformity scores ``s_i = |y_i - yhat_i| / sigma_i``; for coverage
``1 - alpha`` the interval is ``yhat +- q * sigma`` with ``q`` the
``ceil((n + 1)(1 - alpha)) / n`` empirical quantile of the scores. With exchangeable
calibration and test instances this covers at least ``1 - alpha`` of the test truths on average.

``scale="prediction"`` gives *normalised* conformal intervals with ``sigma = yhat + offset``:
C-MAPSS errors shrink near failure, so intervals become tighter for engines about to fail.

This module imports only numpy: the edge runtime (:mod:`models.runtime`) uses it too.
"""

from __future__ import annotations

import math
from dataclasses import dataclass, field
from typing import Any, Literal, Self

import numpy as np

from core.errors import ModelError, NotFittedError

__all__ = ["SplitConformal", "check_coverage", "empirical_coverage", "interval_width"]

Scale = Literal["none", "prediction"]


@dataclass
class SplitConformal:
    """Split-conformal interval calibrator.

    Args:
        scale: ``"none"`` for absolute residuals, ``"prediction"`` for residuals divided by
            ``max(yhat, 0) + offset``.
        offset: added to the prediction in the normalising scale, in cycles.
        lower_bound: intervals are clipped below at this value (RUL cannot be negative).

    Attributes:
        scores_: sorted calibration non-conformity scores.
    """

    scale: Scale = "none"
    offset: float = 10.0
    lower_bound: float = 0.0
    scores_: np.ndarray | None = field(default=None, repr=False)

    def fit(self, y_true: Any, y_pred: Any) -> Self:
        """Calibrate on held-out truths and predictions.

        Args:
            y_true: true RUL of calibration instances, shape ``(n,)``.
            y_pred: point predictions for them, shape ``(n,)``.

        Returns:
            ``self``.

        Raises:
            ModelError: if shapes differ, are empty, or ``scale`` is unknown.
        """
        if self.scale not in ("none", "prediction"):
            raise ModelError(f"scale must be 'none' or 'prediction', got {self.scale!r}")
        t = np.asarray(y_true, dtype=np.float64).reshape(-1)
        p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
        if t.shape != p.shape or t.size == 0:
            raise ModelError(f"y_true and y_pred must be non-empty and of equal length, got {t.shape} and {p.shape}")
        self.scores_ = np.sort(np.abs(t - p) / self._sigma(p))
        return self

    def _sigma(self, y_pred: np.ndarray) -> np.ndarray:
        if self.scale == "prediction":
            return np.asarray(np.maximum(y_pred, 0.0) + self.offset)
        return np.ones_like(y_pred)

    def quantile(self, coverage: float) -> float:
        """Return the conformal score quantile for ``coverage`` (``inf`` if too few scores)."""
        if self.scores_ is None:
            raise NotFittedError("SplitConformal is not calibrated; call fit(y_true, y_pred)")
        coverage = check_coverage(coverage)
        n = self.scores_.size
        rank = math.ceil((n + 1) * coverage)
        if rank > n:
            return math.inf
        return float(self.scores_[rank - 1])

    def interval(self, y_pred: Any, coverage: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(lower, upper)`` around point predictions.

        Args:
            y_pred: point predictions, shape ``(n,)``.
            coverage: nominal coverage in ``(0, 1)``.

        Returns:
            Two arrays of shape ``(n,)`` with ``lower <= y_pred <= upper``.
        """
        p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
        half = self.quantile(coverage) * self._sigma(p)
        lower = np.minimum(np.maximum(p - half, self.lower_bound), p)
        return lower, p + half

    def to_dict(self) -> dict[str, Any]:
        """Serialise to JSON-compatible data (stored in the model card)."""
        if self.scores_ is None:
            raise NotFittedError("SplitConformal is not calibrated; call fit(y_true, y_pred)")
        return {
            "method": "split_conformal",
            "scale": self.scale,
            "offset": self.offset,
            "lower_bound": self.lower_bound,
            "scores": [float(s) for s in self.scores_],
            "q90": self.quantile(0.9),
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitConformal:
        """Rebuild a calibrated instance from :meth:`to_dict` output."""
        obj = cls(
            scale=data.get("scale", "none"),
            offset=float(data.get("offset", 10.0)),
            lower_bound=float(data.get("lower_bound", 0.0)),
        )
        obj.scores_ = np.sort(np.asarray(data["scores"], dtype=np.float64))
        return obj


def empirical_coverage(y_true: Any, lower: Any, upper: Any) -> float:
    """Fraction of truths inside ``[lower, upper]``."""
    t = np.asarray(y_true, dtype=np.float64).reshape(-1)
    return float(np.mean((t >= np.asarray(lower)) & (t <= np.asarray(upper))))


def check_coverage(coverage: Any) -> float:
    """``coverage`` as a float, or a :class:`ModelError` unless it is a number in ``(0, 1)``."""
    if isinstance(coverage, bool) or not isinstance(coverage, (float, int)) or not 0.0 < float(coverage) < 1.0:
        raise ModelError(f"coverage must be a float in (0, 1), got {coverage!r}")
    return float(coverage)


def interval_width(lower: Any, upper: Any) -> float:
    """Mean interval width."""
    return float(np.mean(np.asarray(upper, dtype=np.float64) - np.asarray(lower)))
