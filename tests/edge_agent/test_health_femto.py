"""Health index and adaptive threshold on real FEMTO run-to-failure bearings, replayed from the archives."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from core.sim import default_plant
from edge_agent.features import FeatureConfig
from edge_agent.health import HealthConfig, HealthMonitor
from edge_agent.processor import AssetProcessor
from edge_agent.sources.replay import FemtoReplaySource


async def replay_health(archive: Path) -> tuple[np.ndarray, list[int]]:
    """HI per vibration snapshot and the indices where an alarm started (one HI config for every bearing)."""
    source = FemtoReplaySource(archive, speed=None, temperature=False)
    # The HI is built on the RMS only; the envelope features are skipped to keep the test inside its budget.
    proc = AssetProcessor(source.asset, features=FeatureConfig(envelope=False), health=HealthConfig())
    his: list[float] = []
    starts: list[int] = []

    def take(result: object) -> None:
        alarm = result.alarm  # type: ignore[attr-defined]
        assert alarm is not None
        if alarm.alarm_started:
            starts.append(len(his))
        his.append(alarm.hi)

    async with source:
        async for batch in source.batches():
            for result in proc.add(batch):
                take(result)
    last = proc.flush()
    if last is not None:
        take(last)
    return np.asarray(his), starts


@pytest.mark.parametrize("bearing", ["1_1", "2_1", "3_1"])
def test_femto_health_index_and_alarm(bearing: str, datasets: Path, record_property: pytest.RecordProperty) -> None:
    his, starts = asyncio.run(replay_health(datasets / "femto" / f"Learning_set_Bearing{bearing}.tar.xz"))
    n = his.size
    rho = float(stats.spearmanr(np.arange(n), his)[0])
    first = starts[0] / n if starts else None
    record_property("spearman", round(rho, 3))
    record_property("first_alarm_life_fraction", None if first is None else round(first, 3))
    print(f"Bearing{bearing}: {n} snapshots, HI Spearman vs time {rho:.3f}, first alarm at "
          f"{'none' if first is None else f'{first:.1%}'} of life")
    assert first is not None and first < 1.0, "the alarm must fire before failure"
    if bearing == "1_1":
        assert n == 2803
        assert rho >= 0.85
        assert 0.5 <= first <= 0.7, f"first alarm at {first:.1%} of life"


def test_threshold_is_learned_per_asset_and_needs_persistence() -> None:
    asset = default_plant()[0]
    cfg = HealthConfig(warmup_windows=2, baseline_windows=20, smooth_windows=1, k=4.0, persistence=3)
    monitor = HealthMonitor(asset, cfg)
    rng = np.random.default_rng(1)
    states = [monitor.update({"vib_de": {"rms": float(0.1 * np.exp(rng.normal(0, 0.02)))}}) for _ in range(22)]
    assert all(s is not None and s.learning for s in states) and monitor.fitted
    spike = [monitor.update({"vib_de": {"rms": 0.3}}), monitor.update({"vib_de": {"rms": 0.1}})]
    assert not any(s.alarm for s in spike if s is not None), "one high window is not an alarm"
    run = [monitor.update({"vib_de": {"rms": 0.3}}) for _ in range(3)]
    assert [s.alarm_started for s in run if s is not None] == [False, False, True]
    assert monitor.update({"temp_de": {"mean": 40.0}}) is None, "a window without the primary channel is skipped"
