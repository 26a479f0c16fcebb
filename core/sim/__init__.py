"""Physics-based plant simulator: the demo's plant and the tests' data source.

Rotating machines (pumps, motors, fans) with rolling element bearings produce vibration
(shaft harmonics, bearing impacts ringing a structural resonance, noise), bearing
temperature with a thermal lag, sound pressure, speed and load. Injected faults grow from
onset to failure along a known law, so every sample comes with its ground-truth health
index and remaining useful life. Pure numpy/scipy: no I/O.
"""

from __future__ import annotations

from core.sim._asset import AssetSimulator, AssetState
from core.sim._faults import BEARING_FAULTS, LOAD_LIFE_EXPONENT, FaultKind, FaultSpec, damage_at, growth_multiplier
from core.sim._plant import PlantSimulator, default_faults, default_plant

__all__ = [
    "BEARING_FAULTS",
    "LOAD_LIFE_EXPONENT",
    "AssetSimulator",
    "AssetState",
    "FaultKind",
    "FaultSpec",
    "PlantSimulator",
    "damage_at",
    "default_faults",
    "default_plant",
    "growth_multiplier",
]
