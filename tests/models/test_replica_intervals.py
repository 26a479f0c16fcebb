"""The replica interval benchmark (``benchmarks/rul_replica_intervals.py``): groups, predictions, scoring.

The groups partition the shipped model's units with its own validation group first; a reduced run
on real data (one-epoch replicas) predicts every unit's every truncation out of group; the
leave-units-out scoring reads nominal coverage off exchangeable errors and catches a calibration
drawn from units easier than the rest; the shipped FD001/FD003 cards hold the committed calibration.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest

from benchmarks import rul_replica_intervals as rep
from core.datasets.cmapss import load_cmapss
from core.inference.calibration import SplitConformal
from core.inference.registry import SHIPPED_DIR, ModelRegistry
from core.inference.runtime import OnnxRULPredictor

N_UNITS = 100
RESULTS = rep.RESULTS / "rul_replica_intervals.json"


@pytest.mark.parametrize("subset", ["FD001", "FD003"])
def test_groups_partition_the_shipped_units_with_its_validation_group_first(subset: str) -> None:
    mv = rep.shipped(subset)
    groups = rep.unit_groups(mv)
    assert len(groups) == rep.N_GROUPS
    assert groups[0].tolist() == sorted(mv.card.dataset.val_units)
    every = np.concatenate(groups)
    assert sorted(every.tolist()) == sorted([*mv.card.dataset.train_units, *mv.card.dataset.val_units])
    assert np.unique(every).size == every.size
    assert {g.size for g in groups} == {20}
    assert all(a.tolist() == b.tolist() for a, b in zip(groups, rep.unit_groups(mv), strict=True))  # fixed seed


def _arrays(seed: int, val_scale: float = 1.0) -> rep.Arrays:
    """Every truncation of 100 units; errors: a per-unit offset plus per-cut noise, group 0 scaled by ``val_scale``."""
    rng = np.random.default_rng(seed)
    cols: dict[str, list[np.ndarray]] = {k: [] for k in ("y", "rul", "units", "group", "pred")}
    for u in range(1, N_UNITS + 1):
        group = (u - 1) // 20
        rul = np.arange(1, 151)
        y = np.minimum(rul, 125).astype(np.float64)
        scale = (3.0 + 0.06 * y) * (val_scale if group == 0 else 1.0)  # wider errors far from failure
        err = scale * (rng.normal() + rng.normal(size=rul.size))
        for k, v in (
            ("y", y),
            ("rul", rul),
            ("units", np.full(rul.size, u)),
            ("group", np.full(rul.size, group)),
            ("pred", y + err),
        ):
            cols[k].append(v)
    a = {k: np.concatenate(v) for k, v in cols.items()}
    val = (a["group"] == 0) & np.isin(a["rul"], [7, 33, 61, 94, 130])  # 5 cuts per validation unit
    a["val_y"], a["val_units"], a["val_pred"] = a["y"][val], a["units"][val], a["pred"][val]
    return a


def test_exchangeable_errors_give_nominal_coverage_over_unit_halvings() -> None:
    ev = rep.evaluate(_arrays(0), n_permutations=30)
    halves, louo = ev["halvings"], ev["louo"]
    assert 0.87 <= halves["coverage_mean"] <= 0.93
    assert 0.87 <= louo["coverage_mean"] <= 0.93
    assert halves["coverage_p10"] < halves["coverage_mean"] < 1.0
    # the Mondrian bins follow the error scale: narrower below the first bin edge (40 cycles)
    assert 0 < halves["width_near_failure"] < halves["width"]


def test_a_calibration_from_easier_units_is_caught_on_the_others() -> None:
    ev = rep.evaluate(_arrays(1, val_scale=0.5), n_permutations=10)
    card = ev["card_calibration_on_replica_units"]
    low, high = card["coverage_unit_ci95"]
    assert high < 0.85 and low <= card["coverage_mean"] <= high
    assert ev["louo"]["coverage_mean"] > card["coverage_mean"] + 0.05


def test_the_shipped_intervals_are_the_committed_all_unit_calibration() -> None:
    """FD001 and FD003 ship the calibration the committed table scores: the same version, bounds and figures."""
    rows = json.loads(RESULTS.read_text(encoding="utf-8"))["rows"]
    assert {r["subset"] for r in rows} == {"FD001", "FD003"}
    for r in rows:
        mv = rep.shipped(r["subset"])
        assert mv.version == r["version"] and mv.card.recalibrated_from is not None
        cal = mv.card.calibration
        assert cal is not None and "rul_replica_intervals.py" in cal["source"]
        conf = SplitConformal.from_dict(cal)
        assert conf.bins == rep.BINS
        # the card keeps the scores to 1e-4 cycles
        assert conf.bin_quantiles(rep.COVERAGE).tolist() == pytest.approx(r["bin_q90_all_units"], abs=1e-4)
        assert sum(len(b) for b in cal["bin_scores"]) == r["n_calibration_cuts_all_units"]
        m = mv.card.metrics
        assert m["interval_n_units"] == r["n_units"] == 100
        assert m["interval_coverage_halvings"] == pytest.approx(r["halvings"]["coverage_mean"])
        assert m["interval_coverage_halvings_p10"] == pytest.approx(r["halvings"]["coverage_p10"])
        assert m["interval_coverage_louo"] == pytest.approx(r["louo"]["coverage_mean"])
        assert "val_coverage_louo" not in m  # the replaced calibration's figures do not carry over


@pytest.fixture(scope="module")
def reduced(cmapss_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[rep.Arrays, Path]:
    """The benchmark's predictions on FD001 with one-epoch, one-member replicas, and its checkpoint folder."""
    ckpt = tmp_path_factory.mktemp("replicas")
    small = {"max_epochs": 1, "n_members": 1, "n_jobs": 1, "d_model": 16}
    return rep.subset_predictions(cmapss_dir, "FD001", rep.shipped("FD001"), ckpt, overrides=small), ckpt


def test_a_reduced_run_on_real_data_predicts_every_unit_out_of_group(reduced: tuple[rep.Arrays, Path], cmapss_dir: Path) -> None:
    """The shipped file on its validation units, a replica on each other group, every admissible
    truncation of every unit once."""
    from models.pipeline import card_datamodule

    a, ckpt = reduced
    assert not list(ckpt.glob("*.npz"))  # a reduced run is never cached as the recipe's predictions
    mv = rep.shipped("FD001")
    groups = rep.unit_groups(mv)
    for g, units in enumerate(groups):
        assert np.unique(a["units"][a["group"] == g]).tolist() == units.tolist()
    # every truncation RUL 1 .. min(150, life - 20) of each unit, once
    lives = load_cmapss(cmapss_dir, "FD001").groupby("unit")["cycle"].max()
    for unit in (int(groups[0][0]), int(groups[3][-1])):
        ruls = np.sort(a["rul"][a["units"] == unit])
        assert ruls.tolist() == list(range(1, min(150, int(lives[unit]) - 20) + 1))
    assert np.array_equal(a["y"], np.minimum(a["rul"], 125))
    # group 0 is the shipped file itself, on the same cuts as its card's validation
    dm = card_datamodule(mv.card, cmapss_dir)
    np.testing.assert_allclose(a["val_pred"], OnnxRULPredictor(mv.model_path, mv.card).predict_windows(dm.X_val))


def test_register_ships_the_same_file_with_the_all_unit_calibration(reduced: tuple[rep.Arrays, Path], tmp_path: Path) -> None:
    a, _ = reduced
    shutil.copytree(SHIPPED_DIR / "cmapss-FD001", tmp_path / "cmapss-FD001")
    before = rep.shipped("FD001", registry_dir=tmp_path)
    new = rep.register_calibration(before, a, tmp_path)
    reg = ModelRegistry(tmp_path)
    assert reg.promoted("cmapss-FD001").version == new.version != before.version
    assert new.card.model_sha256 == before.card.model_sha256 and new.card.recalibrated_from == before.version
    conf = SplitConformal.from_dict(new.card.calibration or {})
    assert conf.bin_quantiles(rep.COVERAGE).tolist() == pytest.approx(
        rep.calibrate(a, np.unique(a["units"])).bin_quantiles(rep.COVERAGE).tolist(), abs=1e-4
    )
    m = new.card.metrics
    assert m["interval_n_units"] == 100 and 0.0 < m["interval_coverage_halvings_p10"] <= m["interval_coverage_halvings"]
    assert m["val_rmse_onnx"] == before.card.metrics["val_rmse_onnx"]  # the file's own figures carry over
    # the edge runtime loads it and answers with the new bounds
    lo, hi = OnnxRULPredictor.from_registry(tmp_path, "cmapss-FD001").interval(np.array([20.0, 110.0]))
    assert np.all(lo < [20.0, 110.0]) and np.all(hi > [20.0, 110.0])
