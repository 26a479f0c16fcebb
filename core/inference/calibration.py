"""Split-conformal prediction intervals for RUL point predictions.

Split conformal (Vovk et al.; Lei et al. 2018): on calibration instances that took no part in
fitting, compute non-conformity scores ``s_i = |y_i - yhat_i| / sigma_i``; for coverage
``1 - alpha`` the interval is ``yhat +- q * sigma`` with ``q`` the
``ceil((n + 1)(1 - alpha)) / n`` empirical quantile of the scores. With exchangeable
calibration and test instances this covers at least ``1 - alpha`` of the test truths on average.

``scale="prediction"`` gives *normalised* conformal intervals with ``sigma = yhat + offset``:
C-MAPSS errors shrink near failure, so intervals become tighter for engines about to fail.

``bins`` gives *Mondrian* (category-wise) conformal intervals (Vovk et al. 2005, ch. 4): the
calibration instances are grouped by the bin of their *prediction* (edges in RUL units, e.g.
``(40, 90)``: below 40, 40-90, 90 and up) and each bin gets its own score quantile, so coverage holds
within each bin, not only on average: an engine predicted near failure gets the interval that
near-failure predictions earned, not the wide one of the mid-life engines, and the average coverage
does not depend on how a fleet's predictions are spread over the bins. A bin with fewer than
``min_bin_size`` calibration instances (or too few for the coverage asked) uses the pooled quantile.

This module imports only numpy: the edge runtime (:mod:`core.inference.runtime`) uses it too.
"""

from __future__ import annotations

import itertools
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
        bins: increasing edges on the prediction for Mondrian intervals (``()``: one pooled bin).
        min_bin_size: fewest calibration instances a bin needs for its own quantile.

    Attributes:
        scores_: sorted calibration non-conformity scores (all bins).
        bin_scores_: with ``bins``, the sorted scores of each of the ``len(bins) + 1`` bins.
    """

    scale: Scale = "none"
    offset: float = 10.0
    lower_bound: float = 0.0
    bins: tuple[float, ...] = ()
    min_bin_size: int = 20
    scores_: np.ndarray | None = field(default=None, repr=False)
    bin_scores_: list[np.ndarray] | None = field(default=None, repr=False)

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
        edges = tuple(float(b) for b in self.bins)
        if any(not math.isfinite(b) for b in edges) or any(b >= c for b, c in itertools.pairwise(edges)):
            raise ModelError(f"bins must be finite, strictly increasing edges, got {self.bins!r}")
        self.bins = edges
        t = np.asarray(y_true, dtype=np.float64).reshape(-1)
        p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
        if t.shape != p.shape or t.size == 0:
            raise ModelError(f"y_true and y_pred must be non-empty and of equal length, got {t.shape} and {p.shape}")
        scores = np.abs(t - p) / self._sigma(p)
        self.scores_ = np.sort(scores)
        if edges:
            which = self._bin_of(p)
            self.bin_scores_ = [np.sort(scores[which == b]) for b in range(len(edges) + 1)]
        else:
            self.bin_scores_ = None
        return self

    def _bin_of(self, y_pred: np.ndarray) -> np.ndarray:
        """Bin index of each prediction (0 below the first edge, ``len(bins)`` at or above the last)."""
        return np.searchsorted(np.asarray(self.bins, dtype=np.float64), y_pred, side="right")

    def unfitted(self) -> SplitConformal:
        """A new, uncalibrated calibrator with these settings (to calibrate on other instances)."""
        return SplitConformal(
            scale=self.scale, offset=self.offset, lower_bound=self.lower_bound, bins=self.bins, min_bin_size=self.min_bin_size
        )

    def _sigma(self, y_pred: np.ndarray) -> np.ndarray:
        if self.scale == "prediction":
            return np.asarray(np.maximum(y_pred, 0.0) + self.offset)
        return np.ones_like(y_pred)

    def quantile(self, coverage: float) -> float:
        """Return the pooled conformal score quantile for ``coverage`` (``inf`` if too few scores)."""
        if self.scores_ is None:
            raise NotFittedError("SplitConformal is not calibrated; call fit(y_true, y_pred)")
        return _rank_quantile(self.scores_, check_coverage(coverage))

    def bin_quantiles(self, coverage: float) -> np.ndarray:
        """The score quantile each bin uses for ``coverage`` (one value without ``bins``).

        A bin with fewer than ``min_bin_size`` scores, or too few for ``coverage`` (an infinite
        quantile), takes the pooled one.
        """
        pooled = self.quantile(coverage)
        if not self.bin_scores_:
            return np.array([pooled])
        out = []
        for scores in self.bin_scores_:
            q = _rank_quantile(scores, coverage) if scores.size >= self.min_bin_size else math.inf
            out.append(q if math.isfinite(q) else pooled)
        return np.array(out)

    def interval(self, y_pred: Any, coverage: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Return ``(lower, upper)`` around point predictions.

        Args:
            y_pred: point predictions, shape ``(n,)``.
            coverage: nominal coverage in ``(0, 1)``.

        Returns:
            Two arrays of shape ``(n,)`` with ``lower <= y_pred <= upper``.
        """
        p = np.asarray(y_pred, dtype=np.float64).reshape(-1)
        q = self.bin_quantiles(coverage)
        if not self.bin_scores_:
            return self._bounds(p, q[0])
        which = self._bin_of(p)
        lower, upper = self._bounds(p, q[which])
        # Each bin's own quantile makes the bounds jump at the edges, so a lower prediction could give a
        # later lower bound (or a higher one a sooner upper bound). The envelope takes the lowest lower
        # bound of every prediction at or above this one and the highest upper bound of every one at or
        # below: monotone bounds, only ever wider, so each bin's coverage still holds.
        floor_from, ceil_upto = self._envelopes(q)
        return np.minimum(lower, floor_from[which]), np.maximum(upper, ceil_upto[which])

    def _bounds(self, p: np.ndarray, q: Any) -> tuple[np.ndarray, np.ndarray]:
        """``(lower, upper)`` of predictions ``p`` with score quantile(s) ``q``, clipped as documented."""
        half = np.asarray(q) * self._sigma(p)
        return np.minimum(np.maximum(p - half, self.lower_bound), p), p + half

    def _envelopes(self, q: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Per bin ``b``: the least lower bound of the predictions above those of bin ``b`` up to its
        end and in every later bin, and the greatest upper bound of the predictions in earlier bins.

        Within a bin the bounds are linear in the prediction (then clipped), so their extremes over a
        bin lie at its ends: the lower bound's at either end, the upper bound's (always increasing) at
        the right end. The last bin has no right end: its lower bound grows without limit unless the
        normalised half-width grows faster than the prediction, then it falls to ``lower_bound``.
        """
        edges = np.asarray(self.bins, dtype=np.float64)
        n = len(q)
        at_end = np.full(n, math.inf)  # lower bound at the bin's right end (approached from inside)
        least = np.full(n, math.inf)  # least lower bound over the whole bin
        top = np.full(n, -math.inf)  # greatest upper bound over the whole bin
        for b in range(n):
            if b < n - 1:
                lo, hi = self._bounds(edges[b : b + 1], q[b])
                at_end[b], top[b] = float(lo[0]), float(hi[0])
            elif self.scale == "prediction" and q[b] > 1.0:
                at_end[b] = self.lower_bound
            least[b] = at_end[b]
            if b > 0:
                least[b] = min(least[b], float(self._bounds(edges[b - 1 : b], q[b])[0][0]))
        later = np.append(np.minimum.accumulate(least[::-1])[::-1][1:], math.inf)
        earlier = np.insert(np.maximum.accumulate(top)[:-1], 0, -math.inf)
        return np.minimum(at_end, later), earlier

    def to_dict(self) -> dict[str, Any]:
        """Serialise to JSON-compatible data (stored in the model card)."""
        if self.scores_ is None:
            raise NotFittedError("SplitConformal is not calibrated; call fit(y_true, y_pred)")
        out: dict[str, Any] = {
            "method": "split_conformal",
            "scale": self.scale,
            "offset": self.offset,
            "lower_bound": self.lower_bound,
            "scores": [float(s) for s in self.scores_],
            "q90": self.quantile(0.9),
        }
        if self.bin_scores_:
            out.update(
                {
                    "method": "mondrian_split_conformal",
                    "bins": list(self.bins),
                    "min_bin_size": self.min_bin_size,
                    "bin_scores": [[float(s) for s in b] for b in self.bin_scores_],
                    "bin_q90": [float(q) for q in self.bin_quantiles(0.9)],
                }
            )
        return out

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> SplitConformal:
        """Rebuild a calibrated instance from :meth:`to_dict` output."""
        obj = cls(
            scale=data.get("scale", "none"),
            offset=float(data.get("offset", 10.0)),
            lower_bound=float(data.get("lower_bound", 0.0)),
            bins=tuple(float(b) for b in data.get("bins", ())),
            min_bin_size=int(data.get("min_bin_size", 20)),
        )
        obj.scores_ = np.sort(np.asarray(data["scores"], dtype=np.float64))
        if obj.bins:
            bin_scores = data.get("bin_scores")
            if not isinstance(bin_scores, list) or len(bin_scores) != len(obj.bins) + 1:
                raise ModelError(f"a calibration with {len(obj.bins)} bin edges needs {len(obj.bins) + 1} 'bin_scores' lists")
            obj.bin_scores_ = [np.sort(np.asarray(b, dtype=np.float64)) for b in bin_scores]
        return obj


def _rank_quantile(scores: np.ndarray, coverage: float) -> float:
    """The ``ceil((n + 1) coverage)``-th smallest of sorted ``scores`` (``inf`` if past the end)."""
    n = scores.size
    rank = math.ceil((n + 1) * coverage)
    if rank > n:
        return math.inf
    return float(scores[rank - 1])


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
