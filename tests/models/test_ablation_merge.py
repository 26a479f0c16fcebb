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


RESULTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results"


@pytest.mark.parametrize(("reference", "summary"), [("L_w50", "rul_ablation"), ("L_w80", "rul_ablation_w80")])
def test_the_committed_summaries_merge_again_from_the_archived_parts(reference: str, summary: str, tmp_path: Path) -> None:
    """`rul_ablation.py --merge --reference ...` gives the committed files back byte for byte, from the archive alone."""
    parts = RESULTS / "rul_ablation_parts"
    assert not parts.exists() and (RESULTS / "archive" / "rul_ablation_parts.jsonl").is_file()

    merge(parts, reference, tmp_path / "out.json")

    for suffix in (".json", ".md"):
        assert (tmp_path / f"out{suffix}").read_bytes() == (RESULTS / f"{summary}{suffix}").read_bytes(), suffix


@pytest.mark.parametrize("name", ["rul_cmapss", "rul_cmapss_w30"])
def test_the_baseline_tables_merge_again_from_the_archived_parts(name: str) -> None:
    """`rul.py --parts-dir results/<name>_parts --merge`: the same runs, summary and table as committed."""
    from benchmarks._rul_harness import markdown_table, merge_parts

    committed = json.loads((RESULTS / f"{name}.json").read_text(encoding="utf-8"))

    res = merge_parts(RESULTS / f"{name}_parts")

    assert res["runs"] == committed["runs"] and res["summary"] == committed["summary"]
    assert markdown_table(res["summary"]) == (RESULTS / f"{name}.md").read_text(encoding="utf-8")


def test_parts_in_the_directory_join_and_replace_the_archived_ones(tmp_path: Path) -> None:
    from benchmarks._archive import archive_of, pack, read_parts

    parts = tmp_path / "x_parts"
    parts.mkdir()
    for name, value in (("a", 1), ("b", 2)):
        (parts / f"FD001_{name}_s0.json").write_text(json.dumps({"v": value}), encoding="utf-8")
    assert pack(parts, remove=True) == archive_of(parts) and not parts.exists()
    assert [json.loads(t)["v"] for _, t in read_parts(parts)] == [1, 2]
    parts.mkdir()
    (parts / "FD001_b_s0.json").write_text(json.dumps({"v": 20}), encoding="utf-8")
    (parts / "FD001_c_s0.json").write_text(json.dumps({"v": 3}), encoding="utf-8")
    assert [(n, json.loads(t)["v"]) for n, t in read_parts(parts)] == [
        ("FD001_a_s0.json", 1),
        ("FD001_b_s0.json", 20),
        ("FD001_c_s0.json", 3),
    ]
    first = archive_of(parts).read_bytes()
    pack(parts)
    assert archive_of(parts).read_bytes() != first and len(read_parts(parts)) == 3
