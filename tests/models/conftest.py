"""Fixtures of the models tests: the C-MAPSS directory and small synthetic panels."""

from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from tests import _panels
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
    return _panels.degradation_panel()
