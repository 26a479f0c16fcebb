"""Calibration of the what-if twin's futures on the FEMTO bearings left out of training: the scores
on futures whose truth is known, bad arguments, and a reduced real run (the full one is
``benchmarks/whatif.py``)."""

from __future__ import annotations

import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks._whatif_femto import CENTRAL, FUTURES, GENERATORS, femto_calibration, score_futures
from core.errors import DatasetError, ModelError
from models.data.femto import FEMTO_BEARINGS
from tests._factories import unavailable

#: Snapshots of each bearing's archive (SOURCES.md): one window ends at each.
SNAPSHOTS = {"1_1": 2803, "2_1": 911, "3_1": 515}
SCORES = (
    "coverage_50",
    "coverage_90",
    "width_50",
    "width_90",
    "point_intervals_50",
    "pit_mean",
    "pit_ks",
    "pit_histogram",
    "crps",
)


@pytest.fixture(scope="module")
def femto_dir(datasets: Path) -> Path:
    path = datasets / "femto"
    if not all((path / f"Learning_set_Bearing{b}.tar.xz").is_file() for b in FEMTO_BEARINGS):
        unavailable(f"FEMTO archives Learning_set_Bearing{{1_1,2_1,3_1}}.tar.xz not found in {path}")
    return path


def test_futures_from_the_truths_own_law_are_calibrated_and_shifted_ones_are_not() -> None:
    rng = np.random.default_rng(3)
    truth = rng.normal(50.0, 10.0, 4000)
    futures = rng.normal(50.0, 10.0, (4000, FUTURES))
    good = score_futures(futures, truth)
    assert good["coverage_50"] == pytest.approx(0.5, abs=0.03)
    assert good["coverage_90"] == pytest.approx(0.9, abs=0.02)
    # central 50 % of N(50, 10): 2 x 0.674 x 10; central 90 %: 2 x 1.645 x 10
    assert good["width_50"] == pytest.approx(13.49, rel=0.03) and good["width_90"] == pytest.approx(32.9, rel=0.03)
    assert good["pit_mean"] == pytest.approx(0.5, abs=0.02) and good["pit_ks"] < 0.04
    assert sum(good["pit_histogram"]) == 4000 and good["point_intervals_50"] == 0.0
    # CRPS of N(mu, s) at its mean: s (2 phi(0) - 1/sqrt(pi)); over truths from the law: s / sqrt(pi)
    at_mean = score_futures(futures[:200], np.full(200, 50.0))
    assert at_mean["crps"] == pytest.approx(10 * (2 / math.sqrt(2 * math.pi) - 1 / math.sqrt(math.pi)), rel=0.08)
    assert good["crps"] == pytest.approx(10 / math.sqrt(math.pi), rel=0.03)
    # futures 30 points (3 sd) too high: the truth sits low in them (mean PIT 0.017), the 90 % interval
    # [63.6, 96.4] holds 8.7 % of the truths, the score worsens
    high = score_futures(futures + 30.0, truth)
    assert high["pit_mean"] < 0.03 and high["coverage_90"] == pytest.approx(0.087, abs=0.02) and high["pit_ks"] > 0.8
    assert high["crps"] > 4 * good["crps"]
    # every future the same value: point intervals (ties count half in the PIT)
    point = score_futures(np.full((10, 5), 40.0), np.full(10, 40.0))
    assert point["point_intervals_50"] == 1.0 and point["width_90"] == 0.0 and point["pit_mean"] == 0.5
    assert point["coverage_50"] == 1.0


def test_bad_arguments_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="seed"):
        femto_calibration(tmp_path, seed=-1)
    with pytest.raises(ModelError, match="three different bearings"):
        femto_calibration(tmp_path, bearings=("1_1", "2_1"))
    with pytest.raises(ModelError, match="three different bearings"):
        femto_calibration(tmp_path, bearings=("1_1", "1_1", "2_1"))
    with pytest.raises(ModelError, match="condition"):
        femto_calibration(tmp_path, bearings=("1_1", "2_1", "9_1"))
    with pytest.raises(DatasetError, match=r"Learning_set_Bearing1_1\.tar\.xz"):
        femto_calibration(tmp_path, quick=True)
    with pytest.raises(ModelError, match="futures"):
        score_futures(np.zeros((3, 4)), np.zeros(2))
    with pytest.raises(ModelError, match="finite"):
        score_futures(np.full((2, 4), np.nan), np.zeros(2))


@pytest.mark.slow
def test_quick_calibration_on_the_real_bearings(femto_dir: Path) -> None:
    """Three epochs, every 5th held-out window: the structure and what must hold of any run."""
    r = femto_calibration(femto_dir, quick=True)
    assert r["quick"] is True and r["epochs"] == 3 and r["score_every"] == 5 and r["futures_per_window"] == FUTURES
    assert r["central_intervals"] == list(CENTRAL) and set(r["generators"]) == set(GENERATORS)
    assert list(r["bearings"]) == list(FEMTO_BEARINGS)
    for b, v in r["bearings"].items():
        assert v["windows"] == -(-SNAPSHOTS[b] // 5)
        # the library holds the two other bearings' every window, never the held-out one's
        assert sorted(v["library"]["bearings"]) == sorted(set(FEMTO_BEARINGS) - {b})
        assert v["library"]["cases"] == sum(n for x, n in SNAPSHOTS.items() if x != b)
        # one case per run: two runs, two analogs per query
        assert v["library"]["analogs_per_query"] == 2
        assert v["load_share"] == pytest.approx(v["load_n"] / 5000.0) and 0.7 < v["load_share"] <= 1.0
        for g in GENERATORS:
            s = v[g]
            assert set(s) == set(SCORES), (b, g)
            assert 0.0 <= s["coverage_50"] <= s["coverage_90"] <= 1.0, (b, g)  # the 50 % interval lies in the 90 %
            assert 0.0 < s["width_50"] <= s["width_90"] <= 100.0, (b, g)
            assert 0.0 <= s["pit_mean"] <= 1.0 and 0.0 <= s["pit_ks"] <= 1.0, (b, g)
            assert sum(s["pit_histogram"]) == v["windows"], (b, g)
            assert s["crps"] > 0.0, (b, g)
        # the log-normal through the model's interval is continuous and spreads: its 90 % is strictly wider
        assert v["interval"]["point_intervals_50"] == 0.0
        assert v["interval"]["width_90"] > 1.5 * v["interval"]["width_50"]
    pooled = r["pooled"]
    n = {b: v["windows"] for b, v in r["bearings"].items()}
    assert pooled["windows"] == sum(n.values())
    for g in GENERATORS:
        # the pooled scores are the window-weighted means of the bearings'
        for key in ("coverage_50", "coverage_90", "width_90", "pit_mean", "crps"):
            weighted = sum(r["bearings"][b][g][key] * n[b] for b in n) / pooled["windows"]
            assert pooled[g][key] == pytest.approx(weighted), (g, key)
        assert sum(pooled[g]["pit_histogram"]) == pooled["windows"]
    assert all(t >= 0.0 for t in r["seconds"].values()) and r["seconds"]["total"] >= r["seconds"]["training"]
