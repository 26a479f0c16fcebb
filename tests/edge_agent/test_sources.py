"""Dataset replays on the real files: channels, sample rates, units, ordering, accelerated speed.

Expected values are read independently of the sources (``wave`` for the WAV clips, plain text
parsing for C-MAPSS), so a source that reorders, rescales or drops samples is caught.
"""

from __future__ import annotations

import asyncio
import itertools
import time
import wave
from datetime import UTC, datetime, timedelta
from pathlib import Path

import numpy as np
import pytest

from core.assets import AssetConfig, ChannelConfig, Quantity
from core.datasets.cmapss import CMAPSS_CHANNELS
from core.datasets.dcase import dcase_asset
from core.edge_config import SourceConfig
from core.errors import ConfigError, SourceError
from core.settings import EdgeSettings, Settings
from core.wire import FeatureFrame, ReadingBatch
from edge_agent.agent import EdgeAgent
from edge_agent.sources.base import RawBatch
from edge_agent.sources.replay import CmapssReplaySource, DcaseReplaySource
from tests._factories import ListSink

ORIGIN = datetime(2026, 1, 1, tzinfo=UTC)


async def collect(source: object) -> list[RawBatch]:
    async with source:  # type: ignore[attr-defined]
        return [b async for b in source.batches()]  # type: ignore[attr-defined]


def timed_collect(source: object) -> tuple[list[RawBatch], float]:
    t0 = time.monotonic()
    batches = asyncio.run(collect(source))
    return batches, time.monotonic() - t0


# --------------------------------------------------------------------------------------- DCASE
def dcase_clips(datasets: Path) -> list[Path]:
    root = datasets / "dcase2020_task2_sample"
    return [*sorted((root / "train").glob("normal_id_00_*.wav"))[:2], root / "test" / "anomaly_id_00_00000000.wav"]


def pcm16(path: Path) -> tuple[int, np.ndarray]:
    with wave.open(str(path)) as w:
        assert (w.getnchannels(), w.getsampwidth()) == (1, 2)
        return w.getframerate(), np.frombuffer(w.readframes(w.getnframes()), dtype="<i2")


def test_dcase_clips_become_an_ordered_16k_microphone_channel(datasets: Path) -> None:
    clips = dcase_clips(datasets)
    source = DcaseReplaySource(clips, chunk_s=1.0, full_scale_pa=2.0, speed=None, origin=ORIGIN)
    batches, _ = timed_collect(source)

    mic = source.asset.channel("mic")
    assert (mic.quantity, mic.unit, mic.sample_rate_hz) == (Quantity.SOUND_PRESSURE, "Pa", 16000.0)
    assert [c.name for c in source.asset.channels] == ["mic"]
    assert all(b.channel == mic and b.values.size == 16000 for b in batches), "1 s chunks of the 16 kHz channel"
    expected = [pcm16(p) for p in clips]
    assert {fs for fs, _ in expected} == {16000}
    assert len(batches) == sum(x.size // 16000 for _, x in expected) == 30
    assert [b.truth["clip"] for b in batches if b.truth] == [float(i) for i in range(3) for _ in range(10)]
    # Samples in file order, clip after clip; digital full scale is full_scale_pa.
    replayed = np.concatenate([b.values for b in batches])
    np.testing.assert_allclose(replayed, np.concatenate([x for _, x in expected]) / 32767.0 * 2.0)
    assert float(np.abs(replayed).max()) <= 2.0
    starts = [b.start for b in batches]
    assert starts == [ORIGIN + timedelta(seconds=i) for i in range(30)], "contiguous 1 s chunks from the origin"


def test_dcase_accelerated_replay_and_acoustic_features(datasets: Path) -> None:
    clips = dcase_clips(datasets)[:2]  # 20 s of sound
    speed = 40.0
    source = DcaseReplaySource(clips, chunk_s=0.5, speed=speed, origin=ORIGIN)
    sink = ListSink()
    agent = EdgeAgent(Settings(edge=EdgeSettings(agent_id="edge-dcase")), [source.asset], sink)
    t0 = time.monotonic()
    stats = asyncio.run(agent.run(source))
    wall = time.monotonic() - t0
    # Paced: the last chunk (data time 19.5 s) is not due before 19.5 / speed wall seconds.
    assert wall >= 19.5 / speed * 0.95
    frames = [m for m in sink.messages if isinstance(m, FeatureFrame) and "mic" in m.features]
    assert stats.windows == len(frames) == 40
    gaps = {round((b.window_start - a.window_start).total_seconds(), 6) for a, b in itertools.pairwise(frames)}
    assert gaps == {0.5 / speed}, "timestamps compress with the speed, never run ahead of the wall clock"
    assert not [m for m in sink.messages if isinstance(m, ReadingBatch)], "16 kHz sound goes upstream as features"
    mic = frames[0].features["mic"]
    assert {"spl_db", "kurtosis", "band_32_db", "band_1008_db", "band_4032_db"} <= set(mic), "octave bands from 31.5 Hz"
    assert 0.0 < mic["rms"] < 1.0 and mic["spl_db"] == pytest.approx(20 * np.log10(mic["rms"] / 20e-6), abs=1e-6)


def test_dcase_rejects_a_channel_at_another_sample_rate(datasets: Path) -> None:
    source = DcaseReplaySource(dcase_clips(datasets)[:1], dcase_asset(sample_rate_hz=8000.0), speed=None)
    with pytest.raises(SourceError, match="16000"):
        asyncio.run(collect(source))


# ------------------------------------------------------------------------------------- C-MAPSS
def cmapss_rows(path: Path) -> dict[int, list[list[float]]]:
    out: dict[int, list[list[float]]] = {}
    for line in path.read_text().splitlines():
        if line.strip():
            cols = [float(v) for v in line.split()]
            out.setdefault(int(cols[0]), []).append(cols[1:])
    return out


def test_cmapss_engines_are_multi_sensor_assets_replayed_cycle_by_cycle(datasets: Path) -> None:
    path = datasets / "cmapss" / "train_FD001.txt"
    units = [3, 1]
    source = CmapssReplaySource(path, units, cycle_s=10.0, speed=None, origin=ORIGIN)
    batches, _ = timed_collect(source)
    truth = cmapss_rows(path)

    assert [a.asset_id for a in source.assets] == ["engine-fd001-003", "engine-fd001-001"]
    for asset in source.assets:
        assert tuple(c.name for c in asset.channels) == CMAPSS_CHANNELS
        assert {(c.quantity, c.unit, c.sample_rate_hz) for c in asset.channels} == {(Quantity.GENERIC, "1", 0.1)}
    assert all(b.values.shape == (1,) for b in batches)
    for unit, asset in zip(units, source.assets, strict=True):
        mine = [b for b in batches if b.asset.asset_id == asset.asset_id]
        rows = truth[unit]
        assert len(mine) == 24 * len(rows)
        got = np.array([b.values[0] for b in mine]).reshape(len(rows), 24)
        np.testing.assert_array_equal(got, np.array(rows)[:, 1:], "every sensor of every cycle, in order")
        assert [b.channel.name for b in mine[:24]] == list(CMAPSS_CHANNELS)
        per_cycle = mine[::24]
        assert [b.truth["cycle"] for b in per_cycle if b.truth] == [r[0] for r in rows]
        assert [b.truth["rul_cycles"] for b in per_cycle if b.truth] == list(range(len(rows) - 1, -1, -1)), (
            "run-to-failure: the last cycle has RUL 0"
        )
        assert [b.start for b in per_cycle] == [ORIGIN + timedelta(seconds=10.0 * c) for c in range(len(rows))]
    # Engines run side by side: the batches' timestamps never go back.
    assert all(a.start <= b.start for a, b in itertools.pairwise(batches))
    assert len(truth[1]) == 192 and len(truth[3]) == 179


def test_cmapss_test_file_has_no_rul_and_accelerated_speed_paces(datasets: Path) -> None:
    speed = 100.0
    source = CmapssReplaySource(datasets / "cmapss" / "test_FD001.txt", [1], speed=speed, origin=ORIGIN)
    batches, wall = timed_collect(source)
    cycles = len(cmapss_rows(datasets / "cmapss" / "test_FD001.txt")[1])
    assert len(batches) == 24 * cycles
    assert all(b.truth is not None and b.truth["rul_cycles"] is None for b in batches), "cut-off runs: RUL unknown"
    assert wall >= (cycles - 1) / speed * 0.95, "paced at speed x real time"
    assert batches[-1].start - batches[0].start == timedelta(seconds=(cycles - 1) / speed)


def test_cmapss_asset_from_the_settings_file(datasets: Path) -> None:
    """A ``[[assets]]`` entry with a replayed engine's id describes it (site, name) instead of the default."""
    from edge_agent.sources import build_source

    default = CmapssReplaySource(datasets / "cmapss" / "train_FD001.txt", [2]).assets[0]
    configured = default.model_copy(update={"site": "hangar3", "name": "ESN 874-002"})
    other = AssetConfig(
        asset_id="pump-9", channels=(ChannelConfig(name="t", quantity=Quantity.TEMPERATURE, unit="degC", sample_rate_hz=1.0),)
    )
    source = SourceConfig(kind="cmapss", paths=[datasets / "cmapss" / "train_FD001.txt"], units=[1, 2], speed=None)
    edge = EdgeSettings(source=source)
    _, assets = build_source(Settings(edge=edge, assets=[configured, other]))
    assert [(a.asset_id, a.site) for a in assets] == [("engine-fd001-001", "plant1"), ("engine-fd001-002", "hangar3")]
    wrong = configured.model_copy(update={"channels": configured.channels[:3]})
    with pytest.raises(ConfigError, match="channel 's1'"):
        build_source(Settings(edge=edge, assets=[wrong]))


def test_femto_bearing_geometry_and_speed_from_the_settings_file(datasets: Path) -> None:
    from core.datasets.femto import femto_asset
    from edge_agent.sources import build_source

    recorded = femto_asset("1_1")
    geometry = recorded.bearing.model_copy(update={"contact_angle_deg": 5.0})
    entry = recorded.model_copy(update={"shaft_speed_rpm": 1790.0, "bearing": geometry, "machine_class": "II"})
    edge = EdgeSettings(source=SourceConfig(kind="femto", paths=[datasets / "femto" / "Learning_set_Bearing1_1.tar.xz"],
                                            speed=None))
    source, assets = build_source(Settings(edge=edge, assets=[entry]))
    assert assets == [entry] and source.asset is entry
    assert build_source(Settings(edge=edge))[1] == [recorded], "without an entry: the dataset's own description"
    as_50hz = entry.model_copy(
        update={
            "channels": tuple(c.model_copy(update={"sample_rate_hz": 50.0}) if c.name == "temp" else c for c in entry.channels)
        }
    )
    with pytest.raises(ConfigError, match=r"channel 'temp' must be temperature in 'degC' at 10\.0 Hz"):
        build_source(Settings(edge=edge, assets=[as_50hz]))
