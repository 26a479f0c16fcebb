"""``genedge rul calibrate``: a registered model's intervals recalibrated by bin, on real C-MAPSS data."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from benchmarks._archive import card_path
from core.errors import ModelError
from core.inference.calibration import SplitConformal
from core.inference.card import read_card
from core.inference.registry import SHIPPED_DIR, ModelRegistry
from core.inference.runtime import OnnxRULPredictor
from genedge.rul_cli import rul_app
from models.pipeline import recalibrate_version


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """The shipped FD001 model, with a pooled-quantile version promoted, in a scratch registry.

    The pooled version is the first the shipped version was recalibrated from (``recalibrated_from``,
    followed back past the versions calibrated by bin): its archived card with the shipped ONNX file,
    which is the same file (the cards' hashes agree).
    """
    reg_dir = tmp_path / "registry"
    shutil.copytree(SHIPPED_DIR / "cmapss-FD001", reg_dir / "cmapss-FD001")
    reg = ModelRegistry(reg_dir)
    shipped = reg.promoted("cmapss-FD001")
    source = shipped.card.recalibrated_from
    assert source is not None, "the shipped FD001 model is a recalibrated one"
    while "bins" in ((earlier := read_card(card_path(SHIPPED_DIR, "cmapss-FD001", source))).calibration or {}):
        assert earlier.recalibrated_from is not None and earlier.model_sha256 == shipped.card.model_sha256
        source = earlier.recalibrated_from
    pooled_dir = reg_dir / "cmapss-FD001" / source
    pooled_dir.mkdir()
    shutil.copyfile(card_path(SHIPPED_DIR, "cmapss-FD001", source), pooled_dir / "card.json")
    shutil.copyfile(shipped.model_path, pooled_dir / "model.onnx")
    pooled = reg.get("cmapss-FD001", source)
    assert pooled.card.model_sha256 == shipped.card.model_sha256
    assert pooled.card.calibration is not None and "bins" not in pooled.card.calibration
    reg.promote("cmapss-FD001", pooled.version)
    return reg_dir


def test_calibrate_registers_the_same_network_with_intervals_by_bin(registry: Path, cmapss_dir: Path) -> None:
    reg = ModelRegistry(registry)
    before = reg.promoted("cmapss-FD001")
    res = CliRunner().invoke(
        rul_app,
        ["calibrate", "--data-dir", str(cmapss_dir), "--subset", "FD001", "--registry-dir", str(registry), "--promote", "--json"],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.output.strip().splitlines()[-1])
    after = reg.promoted("cmapss-FD001")
    assert out["version"] == after.version != before.version and out["recalibrated_from"] == before.version
    assert after.card.model_sha256 is not None
    assert after.card.model_sha256 == before.card.model_sha256  # no training, the same ONNX file
    assert after.card.metrics["val_rmse_onnx"] == before.card.metrics["val_rmse_onnx"]
    cal = after.card.calibration
    assert cal is not None
    assert cal["method"] == "mondrian_split_conformal" and cal["bins"] == [40.0, 90.0]
    assert sum(len(b) for b in cal["bin_scores"]) == len(cal["scores"]) == after.card.metrics["val_n_cuts"]
    # leave-one-unit-out coverage of the binned intervals stays near the nominal 0.9
    assert 0.85 <= after.card.metrics["val_coverage_louo"] <= 0.95
    # what the edge runtime reads: an engine predicted near failure gets a far tighter interval than
    # the pooled quantile's, one predicted far from failure about the same or wider
    old, new = OnnxRULPredictor(before.model_path, before.card), OnnxRULPredictor(after.model_path, after.card)
    probe = np.array([15.0, 110.0])
    (_, hi_old), (_, hi_new) = old.interval(probe), new.interval(probe)
    assert hi_new[0] - probe[0] < 0.6 * (hi_old[0] - probe[0])
    assert hi_new[1] - probe[1] >= 0.9 * (hi_old[1] - probe[1])
    assert after.card.metrics["val_interval_width_near_failure"] < 0.6 * after.card.metrics["val_interval_width"]
    # --bins "" gives one pooled quantile back, and its scores are the shipped file's own residuals
    res = CliRunner().invoke(
        rul_app,
        [
            "calibrate",
            "--data-dir",
            str(cmapss_dir),
            "--subset",
            "FD001",
            "--registry-dir",
            str(registry),
            "--bins",
            "",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    pooled = ModelRegistry(registry).get("cmapss-FD001", json.loads(res.output.strip().splitlines()[-1])["version"])
    assert pooled.card.calibration is not None
    conf = SplitConformal.from_dict(pooled.card.calibration)
    assert conf.bins == () and conf.scores_ is not None and conf.scores_.tolist() == sorted(cal["scores"])


def test_calibrate_refuses_other_data_with_a_clear_error(registry: Path, cmapss_dir: Path, tmp_path: Path) -> None:
    other = tmp_path / "other"
    other.mkdir()
    shutil.copyfile(cmapss_dir / "train_FD003.txt", other / "train_FD001.txt")
    n = len(ModelRegistry(registry).list("cmapss-FD001"))
    with pytest.raises(ModelError, match="hash differs"):
        recalibrate_version(registry, "cmapss-FD001", other)
    res = CliRunner().invoke(rul_app, ["calibrate", "--data-dir", str(other), "--registry-dir", str(registry), "--bins", "90,40"])
    assert res.exit_code != 0 and "hash differs" in res.output
    res = CliRunner().invoke(
        rul_app, ["calibrate", "--data-dir", str(cmapss_dir), "--registry-dir", str(registry), "--bins", "90,40"]
    )
    assert res.exit_code != 0 and "increasing" in res.output
    with pytest.raises(ModelError, match="not found"):
        recalibrate_version(registry, "cmapss-FD001", tmp_path)
    assert len(ModelRegistry(registry).list("cmapss-FD001")) == n  # nothing registered


def test_interval_benchmark_reproduces_its_committed_fd001_row(cmapss_dir: Path) -> None:
    """benchmarks/rul_intervals.py (the README's interval figures) gives its committed FD001 row back."""
    from benchmarks.rul_intervals import RESULTS, run_subset

    committed = next(
        r for r in json.loads((RESULTS / "rul_intervals.json").read_text(encoding="utf-8"))["rows"] if r["subset"] == "FD001"
    )
    row = run_subset(cmapss_dir, "FD001")
    assert row["version"] == committed["version"] and row["n_cuts"] == committed["n_cuts"]
    for name, m in committed["methods"].items():
        for key in ("coverage_louo", "coverage_halvings_mean", "width", "width_near_failure"):
            assert row["methods"][name][key] == pytest.approx(m[key], abs=1e-9), (name, key)
    pooled, binned = committed["methods"]["pooled"], committed["methods"]["mondrian"]
    assert binned["width_near_failure"] < 0.6 * pooled["width_near_failure"]
    assert abs(binned["coverage_louo"] - 0.9) <= 0.05
