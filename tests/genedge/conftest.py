"""Fixtures of the genedge command tests."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.genedge._store_runs import build_plant_store


@pytest.fixture
def plant_store(tmp_path: Path) -> tuple[str, np.ndarray, np.ndarray]:
    """A SQLite store with P-101's frames up to and past a repair that confirmed its fault (:func:`build_plant_store`)."""
    return build_plant_store(tmp_path)
