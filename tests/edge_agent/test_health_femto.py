"""Health index and adaptive threshold on real FEMTO run-to-failure bearings, replayed from the archives
through the agent."""

from __future__ import annotations

import asyncio
from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from core.edge_config import FeatureConfig, HealthConfig
from core.settings import EdgeSettings, Settings
from core.sim import default_plant
from core.wire import FeatureFrame, ReadingBatch, StatusReport
from edge_agent.agent import EdgeAgent
from edge_agent.health import HealthMonitor
from edge_agent.sources.replay import FemtoReplaySource
from tests._factories import ListSink


def replay_health(archive: Path) -> tuple[np.ndarray, list[int], ListSink]:
    """Replay a bearing through the agent: HI per published frame, the frame indices where an alarm
    started (one HI config for every bearing), and everything the agent sent."""
    source = FemtoReplaySource(archive, speed=None, temperature=False)
    # The HI is built on the RMS only; the envelope features are skipped to keep the test inside its budget.
    edge = EdgeSettings(agent_id="edge-femto", features=FeatureConfig(envelope=False), health=HealthConfig())
    sink = ListSink()
    agent = EdgeAgent(Settings(edge=edge), [source.asset], sink)
    asyncio.run(agent.run(source))
    his: list[float] = []
    starts: list[int] = []
    for m in sink.messages:
        if isinstance(m, FeatureFrame) and "health" in m.features:
            his.append(m.features["health"]["hi"])
        elif isinstance(m, StatusReport) and m.detail.startswith("anomaly:"):
            starts.append(len(his) - 1)  # sent right after the frame of the window that started it
    assert agent.stats.alarms == len(starts)
    return np.asarray(his), starts, sink


@pytest.mark.parametrize("bearing", ["1_1", "2_1", "3_1"])
def test_femto_health_index_and_alarm(bearing: str, datasets: Path, record_property: pytest.RecordProperty) -> None:
    his, starts, sink = replay_health(datasets / "femto" / f"Learning_set_Bearing{bearing}.tar.xz")
    n = his.size
    rho = float(stats.spearmanr(np.arange(n), his)[0])
    first = starts[0] / n if starts else None
    record_property("spearman", round(rho, 3))
    record_property("first_alarm_life_fraction", None if first is None else round(first, 3))
    print(
        f"Bearing{bearing}: {n} snapshots, HI Spearman vs time {rho:.3f}, first alarm at "
        f"{'none' if first is None else f'{first:.1%}'} of life"
    )
    assert first is not None and first < 1.0, "the alarm must fire before failure"
    # Features go upstream, not raw data; the raw ring buffer is sent once, when the anomaly starts.
    raw = [m for m in sink.messages if isinstance(m, ReadingBatch)]
    assert raw and {m.channel for m in raw} == {"acc_h", "acc_v"} and all(m.sample_rate_hz == 25600.0 for m in raw)
    assert len(raw) <= 2 * EdgeSettings().ring_capacity * len(starts)
    alarm_at = next(i for i, m in enumerate(sink.messages) if isinstance(m, StatusReport) and "anomaly" in m.detail)
    first_raw = next(i for i, m in enumerate(sink.messages) if isinstance(m, ReadingBatch))
    assert first_raw == alarm_at + 1, "the snapshot follows the anomaly's status report"
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
