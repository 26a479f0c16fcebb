"""Edge feature frames of a simulated P-101 outer-race fault, as the store receives them (shared test data)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta

from core.assets import AssetConfig
from core.signal import FeaturePipeline
from core.sim import AssetSimulator, FaultSpec
from core.wire import FeatureFrame


def outer_race_frames(asset: AssetConfig, at: datetime, hours: Sequence[float] = (300.0, 324.0, 348.0), *,
                      extra: Mapping[str, Mapping[str, float]] | None = None) -> list[tuple[FeatureFrame, datetime]]:
    """One frame per simulated hour of an outer-race fault (onset 100 h, failure 400 h, seed 1), the
    last one at ``at``; ``extra`` channels (e.g. a load) are added to every frame."""
    sim = AssetSimulator(asset, FaultSpec(kind="outer_race", onset_hours=100, life_hours=400), seed=1)
    pipe = FeaturePipeline(asset)
    vib = asset.channel("vib_de")
    out = []
    for k, t in enumerate(hours):
        x = sim.sample(vib, t, 25600).astype(float)
        feats = {"vib_de": pipe.vibration(vib, x, asset.shaft_hz), "temp_de": {"mean": sim.state(t).temperature_c},
                 **(extra or {})}
        out.append((FeatureFrame(publisher="edge-01", seq=k, asset_id=asset.asset_id,
                                 window_start=at + timedelta(hours=t - hours[-1]), window_s=1.0, features=feats), at))
    return out
