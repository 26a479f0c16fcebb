"""The ablation runner's merge pairs runs by seed (the same split, truncations and initialisation)."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks.rul_ablation import merge


def test_merge_reports_paired_differences_and_wins(tmp_path: Path) -> None:
    parts = tmp_path / "parts"
    parts.mkdir()
    rmse = {"L": [14.0, 16.0, 12.0], "T": [13.0, 16.5, 11.0]}
    for variant, values in rmse.items():
        for seed, v in enumerate(values):
            row = {"variant": variant, "subset": "FD001", "seed": seed, "val_rmse": v}
            (parts / f"FD001_{variant}_s{seed}.json").write_text(json.dumps(row), encoding="utf-8")
    # a seed the reference lacks is counted in the variant's mean but not paired
    (parts / "FD001_T_s3.json").write_text(json.dumps({"variant": "T", "subset": "FD001", "seed": 3, "val_rmse": 20.0}))

    res = merge(parts, "L", tmp_path / "ablation.json")

    t = res["summary"]["FD001"]["T"]
    assert t["n"] == 4 and t["paired_n"] == 3
    assert t["paired_mean"] == pytest.approx((-1.0 + 0.5 - 1.0) / 3)
    assert t["wins"] == 2
    assert "| FD001 | T | 4 |" in (tmp_path / "ablation.md").read_text(encoding="utf-8")
    assert json.loads((tmp_path / "ablation.json").read_text(encoding="utf-8"))["reference"] == "L"
