"""Fixtures of the synth tests: small real CWRU panels and toy panels."""

# ruff: noqa: N806

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest


@pytest.fixture(scope="session")
def cwru_dir(datasets: Path) -> Path:
    path = datasets / "cwru"
    if not (path / "normal_0_97.mat").is_file():
        pytest.skip(f"CWRU data not found at {path}; set GENEDGE_TEST_DATA_DIR")
    return path


@pytest.fixture(scope="session")
def cwru_clean(cwru_dir: Path):
    from synth import load_cwru

    return load_cwru(cwru_dir, max_normal_train=120)


@pytest.fixture(scope="session")
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
