"""Fixtures of the prescriber tests: simulator evidence, a store, and the local model (once)."""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path

import pytest

from core.assets import AssetConfig
from core.sim import FaultSpec, default_plant
from prescribe.backends.local import DEFAULT_MODEL_PATH, LocalBackend
from prescribe.evidence import from_simulator
from prescribe.prompt import SYSTEM_PROMPT
from prescribe.schema import Evidence
from tests._factories import unavailable

REPO = Path(__file__).resolve().parents[2]
MODEL = REPO / DEFAULT_MODEL_PATH


@pytest.fixture(scope="session")
def plant() -> dict[str, AssetConfig]:
    return {a.asset_id: a for a in default_plant()}


@pytest.fixture(scope="session")
def outer_race(plant: dict[str, AssetConfig]) -> Evidence:
    """P-101 (criticality 3) with an outer-race defect at 80 % of the way to failure."""
    return from_simulator(plant["P-101"], FaultSpec(kind="outer_race", onset_hours=120, life_hours=400), 344.0, seed=3)


@pytest.fixture(scope="session")
def local_backend() -> Iterator[LocalBackend]:
    """The real local model, loaded once for the session (skipped when not installed)."""
    why = LocalBackend.available(MODEL)
    if why is not None:
        unavailable(f"local model not installed ({why}); run scripts/install_llm.sh")
    backend = LocalBackend(MODEL, threads=2, system_prompt=SYSTEM_PROMPT)
    backend.start()
    yield backend
    backend.close()
