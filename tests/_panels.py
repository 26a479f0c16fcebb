"""Small synthetic panels for the estimator tests (RUL regressors and window generators)."""

# ruff: noqa: N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import numpy as np


def degradation_panel() -> tuple[np.ndarray, np.ndarray]:
    """A small panel whose signal drifts as RUL falls: ``(X (96, 3, 12) float32, y (96,) RUL in cycles)``."""
    rng = np.random.default_rng(0)
    n, c, t = 96, 3, 12
    y = rng.uniform(0, 125, size=n).astype(np.float32)
    steps = np.arange(t)[None, None, :]
    health = (1.0 - y / 125.0)[:, None, None]
    X = health * (1.0 + 0.05 * steps) * np.array([1.0, -0.5, 2.0])[None, :, None]
    X = X + 0.05 * rng.standard_normal((n, c, t))
    return X.astype(np.float32), y


def toy_panel() -> tuple[np.ndarray, np.ndarray]:
    """30 two-channel windows of 128 samples, 3 classes (tones of different frequency + noise)."""
    rng = np.random.default_rng(0)
    t = np.arange(128) / 128
    X, y = [], []
    for label, f in enumerate((4, 9, 17)):
        for _ in range(10):
            ph = rng.uniform(0, 2 * np.pi)
            X.append(np.stack([np.sin(2 * np.pi * f * t + ph), 0.5 * np.cos(2 * np.pi * f * t + ph)])
                     + 0.1 * rng.standard_normal((2, 128)))
            y.append(label)
    return np.asarray(X, dtype=np.float32), np.asarray(y, dtype=np.int64)
