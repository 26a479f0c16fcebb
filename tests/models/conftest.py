"""Fixtures of the models tests: the C-MAPSS directory and small synthetic panels."""

# ruff: noqa: N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests._factories import unavailable

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
def cmapss_dir() -> Path:
    """C-MAPSS directory from ``GENEDGE_TEST_DATA_DIR`` (default ``<repo>/../shared/datasets``)."""
    root = Path(os.environ.get("GENEDGE_TEST_DATA_DIR", REPO.parent / "shared" / "datasets"))
    path = root / "cmapss"
    if not (path / "train_FD001.txt").is_file():
        unavailable(
            f"C-MAPSS data not found at {path}; set GENEDGE_TEST_DATA_DIR to the folder that holds cmapss/train_FD001.txt"
        )
    return path


@pytest.fixture(scope="session")
def degradation_panel() -> tuple[np.ndarray, np.ndarray]:
    """A small synthetic panel whose signal drifts as RUL falls: ``(X (n, 3, 12), y (n,))``."""
    rng = np.random.default_rng(0)
    n, c, t = 96, 3, 12
    y = rng.uniform(0, 125, size=n).astype(np.float32)
    steps = np.arange(t)[None, None, :]
    health = (1.0 - y / 125.0)[:, None, None]
    X = health * (1.0 + 0.05 * steps) * np.array([1.0, -0.5, 2.0])[None, :, None]
    X = X + 0.05 * rng.standard_normal((n, c, t))
    return X.astype(np.float32), y
