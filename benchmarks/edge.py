"""Edge agent benchmark -> benchmarks/results/edge.json.

* Real-time factor of the feature pipeline on 25.6 kHz vibration, one core: seconds of signal
  processed per second of CPU, i.e. how many such channels one core keeps up with.
* Bytes sent upstream by the agent (features, status, slow-channel readings) versus the raw
  ReadingBatch JSON of every batch it consumed, for the demo plant and for FEMTO replay.

Run: ``.venv/bin/python -m benchmarks.edge [--data-dir ../shared/datasets]``.
"""

from __future__ import annotations

import argparse
import asyncio
import itertools
import json
import os
import platform
import time
from pathlib import Path
from typing import Any

import numpy as np

from core.settings import EdgeSettings, Settings
from core.signal import FeaturePipeline
from core.sim import PlantSimulator, default_faults, default_plant
from edge_agent.agent import EdgeAgent
from edge_agent.sources.replay import FemtoReplaySource
from edge_agent.sources.simulator import SimulatorSource

OUT = Path(__file__).parent / "results" / "edge.json"


class _CountingSink:
    def __init__(self) -> None:
        self._seq = itertools.count()

    def next_seq(self) -> int:
        return next(self._seq)

    def send(self, message: Any) -> bool:
        return True


def realtime_factor(window_s: float = 1.0, repeats: int = 30) -> dict[str, float]:
    """CPU time of the full vibration feature set per window of 25.6 kHz signal (one thread)."""
    assets = default_plant()
    sim = PlantSimulator(assets, default_faults(assets, 7), seed=7)
    asset = assets[0]
    ch = asset.channel("vib_de")
    n = int(window_s * ch.sample_rate_hz)
    windows = [np.asarray(sim.snapshot(asset.asset_id, ch, 10.0 + i, n), dtype=np.float64) for i in range(repeats)]
    pipe = FeaturePipeline(asset)
    pipe.vibration(ch, windows[0], asset.shaft_hz)  # warm caches
    t0 = time.process_time()
    for w in windows:
        pipe.vibration(ch, w, asset.shaft_hz)
    cpu = (time.process_time() - t0) / repeats
    return {"window_s": window_s, "sample_rate_hz": ch.sample_rate_hz, "cpu_ms_per_window": round(cpu * 1e3, 2),
            "realtime_factor": round(window_s / cpu, 1), "channels_per_core": int(window_s / cpu)}


def _reduction(agent: EdgeAgent) -> dict[str, Any]:
    st = agent.stats
    return {"windows": st.windows, "raw_bytes": st.bytes_raw, "upstream_bytes": st.bytes_sent,
            "reduction_pct": round(100.0 * (1 - st.bytes_sent / st.bytes_raw), 2) if st.bytes_raw else None,
            "messages": dict(st.by_type)}


def demo_plant_bytes(ticks: int = 40) -> dict[str, Any]:
    settings = Settings(edge=EdgeSettings(agent_id="bench"))
    assets = default_plant()
    agent = EdgeAgent(settings, assets, _CountingSink(), measure_bytes=True)
    source = SimulatorSource(assets, default_faults(assets, 7), seed=7, interval_s=0.0,
                             snapshot_samples=settings.sim.vibration_samples, max_ticks=ticks)
    asyncio.run(agent.run(source))
    return {"assets": len(assets), "ticks": ticks, "vibration_samples": settings.sim.vibration_samples,
            **_reduction(agent)}


def femto_bytes(data_dir: Path, snapshots: int = 600) -> dict[str, Any]:
    settings = Settings(edge=EdgeSettings(agent_id="bench"))
    source = FemtoReplaySource(data_dir / "femto" / "Learning_set_Bearing1_1.tar.xz", speed=None, limit=snapshots)
    agent = EdgeAgent(settings, [source.asset], _CountingSink(), measure_bytes=True)
    asyncio.run(agent.run(source))
    return {"bearing": "1_1", "snapshots": snapshots, **_reduction(agent)}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-dir", type=Path, default=Path(__file__).resolve().parents[2] / "shared" / "datasets")
    args = parser.parse_args()
    result = {
        "machine": {"python": platform.python_version(), "cpu_count": os.cpu_count(),
                    "load_avg_1m": round(os.getloadavg()[0], 2)},
        "pipeline_25k6": [realtime_factor(1.0), realtime_factor(0.1, 100)],
        "demo_plant": demo_plant_bytes(),
        "femto_replay": femto_bytes(args.data_dir) if (args.data_dir / "femto").is_dir() else None,
    }
    OUT.parent.mkdir(parents=True, exist_ok=True)
    OUT.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()
