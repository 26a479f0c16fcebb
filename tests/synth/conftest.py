"""Fixtures of the synth tests: small real CWRU panels and toy panels."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests import _panels


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
    return _panels.toy_panel()
