"""`genedge rul calibrate-sim`: the shipped simulator model's interval recalibrated on fresh simulated units."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
from typer.testing import CliRunner

from core.inference.registry import SHIPPED_DIR, ModelRegistry
from core.inference.runtime import FeatureRULPredictor
from genedge.rul_cli import rul_app


def _registry(tmp_path: Path) -> Path:
    reg = tmp_path / "registry"
    src = ModelRegistry(SHIPPED_DIR).promoted("sim-bearing")
    shutil.copytree(src.path.parent, reg / "sim-bearing")
    return reg


def test_recalibration_registers_the_same_network_with_bins_from_fresh_units(tmp_path: Path) -> None:
    reg = _registry(tmp_path)
    before = ModelRegistry(reg).promoted("sim-bearing")
    result = CliRunner().invoke(rul_app, ["calibrate-sim", "--registry-dir", str(reg), "--units", "6",
                                          "--seeds", "2000", "--promote", "--json"])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output)
    after = ModelRegistry(reg).promoted("sim-bearing")
    assert out["version"] == after.version != before.version and out["recalibrated_from"] == before.version
    assert after.card.model_sha256 == before.card.model_sha256  # no training: the same ONNX file
    cal = after.card.calibration or {}
    assert cal["bins"] == [50.0, 120.0] and cal["scale"] == "none" and "seeds 2000" in cal["source"]
    assert after.card.metrics["calibration_n_units"] == 6
    assert "val_coverage_cross" not in after.card.metrics  # the old calibration's figures do not carry over
    assert after.card.metrics["val_rmse_onnx"] == before.card.metrics["val_rmse_onnx"]  # the network's do
    lo, hi = FeatureRULPredictor(after.model_path, after.card).interval(np.array([10.0, 80.0, 190.0]))
    assert np.all(lo <= [10.0, 80.0, 190.0]) and np.all(hi >= [10.0, 80.0, 190.0])


def test_recalibration_refuses_the_training_seed_and_bad_options(tmp_path: Path) -> None:
    reg = _registry(tmp_path)
    runner = CliRunner()
    refused = runner.invoke(rul_app, ["calibrate-sim", "--registry-dir", str(reg), "--units", "6", "--seeds", "0"])
    assert refused.exit_code != 0 and "training seed" in refused.output
    bad = runner.invoke(rul_app, ["calibrate-sim", "--registry-dir", str(reg), "--seeds", "two"])
    assert bad.exit_code != 0 and "comma-separated" in bad.output
    assert [v.version for v in ModelRegistry(reg).list("sim-bearing")] == [
        ModelRegistry(SHIPPED_DIR).promoted("sim-bearing").version]  # nothing registered
