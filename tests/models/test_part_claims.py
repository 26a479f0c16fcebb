"""Resumable benchmark parts: one worker claims a run; a finished or claimed part is skipped."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from benchmarks._rul_harness import claim_part, write_part


def test_a_part_is_claimed_once_and_released_after_a_failure(tmp_path: Path) -> None:
    part = tmp_path / "FD001_T_s0.json"
    with claim_part(part) as first:
        assert first
        with claim_part(part) as second:
            assert not second, "another worker holds the lock"
    assert not part.with_suffix(".lock").exists()
    with pytest.raises(RuntimeError), claim_part(part) as again:
        assert again
        raise RuntimeError("training failed")
    assert not part.with_suffix(".lock").exists(), "a failed run leaves no stale lock"
    write_part(part, {"val_rmse": 12.5})
    assert json.loads(part.read_text(encoding="utf-8")) == {"val_rmse": 12.5}
    with claim_part(part) as done:
        assert not done, "a finished part is not run again"


def test_the_ablation_claims_nothing_after_its_deadline(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    """A time-boxed worker (``--deadline``) stops before claiming; no part, no lock is left behind."""
    import time

    from benchmarks.rul_ablation import run

    run(tmp_path / "no-data", tmp_path / "parts", ["FD001"], ["T_w80", "L_w80"], [0, 1], deadline=time.time() - 1)
    assert list((tmp_path / "parts").iterdir()) == []
    assert "deadline reached" in capsys.readouterr().out


def test_an_archived_part_is_not_run_again(tmp_path: Path) -> None:
    """A part packed into its directory's archive (benchmarks/_archive.py) counts as finished."""
    from benchmarks._archive import pack

    parts = tmp_path / "x_parts"
    parts.mkdir()
    write_part(parts / "FD001_T_s0.json", {"val_rmse": 12.5})
    pack(parts, remove=True)
    parts.mkdir()
    with claim_part(parts / "FD001_T_s0.json") as done:
        assert not done
    with claim_part(parts / "FD001_T_s1.json") as mine:
        assert mine
