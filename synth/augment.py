"""Classical time-series augmentation of windows: jitter, scaling, circular shifts, time warp
(Um et al., "Data augmentation of wearable sensor data...", ICMI 2017; Iwana & Uchida,
"An empirical survey of data augmentation for time series classification", PLoS ONE 16 (2021))."""

# ruff: noqa: N803, N806

from __future__ import annotations

from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy.interpolate import CubicSpline

from core.errors import ModelError

__all__ = ["ClassicalAugmenter"]


class ClassicalAugmenter:
    """Random copies of given windows by jitter, scaling, circular shift and smooth time warp.

    Every copy gets all four transforms: a random circular shift, a smooth random time warp
    (cubic interpolation of a monotone warp with ``warp_knots`` knots, relative speed within
    ``1 +- warp_strength``), a per-channel scaling ``N(1, scale_sigma)``, and white jitter with
    standard deviation ``jitter_sigma`` times the window's RMS.

    Args:
        n_per_class: copies drawn per class (spread evenly over that class's windows).
        jitter_sigma: jitter standard deviation relative to each window's RMS.
        scale_sigma: standard deviation of the scaling factor.
        warp_strength: maximum relative speed change of the time warp.
        warp_knots: knots of the warp curve.
        random_state: seed.
    """

    def __init__(self, *, n_per_class: int = 50, jitter_sigma: float = 0.3, scale_sigma: float = 0.1,
                 warp_strength: float = 0.05, warp_knots: int = 4, random_state: int | None = 0) -> None:
        self.n_per_class = n_per_class
        self.jitter_sigma = jitter_sigma
        self.scale_sigma = scale_sigma
        self.warp_strength = warp_strength
        self.warp_knots = warp_knots
        self.random_state = random_state

    def get_params(self) -> dict[str, Any]:
        """Hyper-parameters as passed to ``__init__``."""
        return dict(vars(self))

    def augment(
        self, X: ArrayLike, y: ArrayLike, classes: ArrayLike | None = None,
    ) -> tuple[NDArray[np.float32], NDArray[np.int64]]:
        """``n_per_class`` new windows for each class in ``classes`` (default: all of ``y``).

        Returns:
            ``(X_aug, y_aug)``, the new windows only.
        """
        Xa = np.asarray(X, dtype=np.float64)
        ya = np.asarray(y)
        if Xa.ndim != 3 or ya.shape != (Xa.shape[0],):
            raise ModelError(f"X must be (n, channels, length) and y (n,), got {Xa.shape} and {ya.shape}")
        rng = np.random.default_rng(self.random_state)
        todo = np.unique(ya) if classes is None else np.asarray(classes)
        out_x, out_y = [], []
        for label in todo:
            idx = np.flatnonzero(ya == label)
            if idx.size == 0:
                raise ModelError(f"no windows of class {label} to augment")
            src = idx[np.arange(self.n_per_class) % idx.size]
            out_x.append(self._transform(Xa[src], rng))
            out_y.append(np.full(src.size, label, dtype=np.int64))
        if not out_x:
            return np.empty((0, *Xa.shape[1:]), dtype=np.float32), np.empty(0, dtype=np.int64)
        return np.concatenate(out_x).astype(np.float32), np.concatenate(out_y)

    def _transform(self, X: NDArray[np.float64], rng: np.random.Generator) -> NDArray[np.float64]:
        n, c, length = X.shape
        shifts = rng.integers(0, length, (n,))  # size as a tuple: the same draws, typed as an array
        idx = (np.arange(length)[None, :] + shifts[:, None]) % length
        X = np.take_along_axis(X, idx[:, None, :], axis=2)
        X = self._time_warp(X, rng)
        X = X * rng.normal(1.0, self.scale_sigma, (n, c, 1))
        rms = np.sqrt(np.mean(X**2, axis=-1, keepdims=True))
        out: NDArray[np.float64] = X + self.jitter_sigma * rms * rng.standard_normal(X.shape)
        return out

    def _time_warp(self, X: NDArray[np.float64], rng: np.random.Generator) -> NDArray[np.float64]:
        if self.warp_strength <= 0:
            return X

        n, _, length = X.shape
        t = np.arange(length, dtype=np.float64)
        knots = np.linspace(0, length - 1, self.warp_knots + 2)
        out = np.empty_like(X)
        for i in range(n):
            speed = CubicSpline(knots, rng.uniform(1 - self.warp_strength, 1 + self.warp_strength, knots.size))(t)
            warped = np.cumsum(speed)
            warped = (warped - warped[0]) / (warped[-1] - warped[0]) * (length - 1)
            for ch in range(X.shape[1]):
                out[i, ch] = np.interp(warped, t, X[i, ch])
        return out
