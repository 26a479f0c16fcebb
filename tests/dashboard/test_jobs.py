"""Background jobs of the dashboard: real runner processes, progress read from real bar output."""

from __future__ import annotations

import contextlib
import os
import sys
import time
from pathlib import Path

import pytest

from dashboard import _jobs
from dashboard._jobs import Job, Progress, parse_progress


def _wait(job: Job, timeout: float = 30.0) -> Job:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        fresh = _jobs.load_job(job.path)
        assert fresh is not None
        if not fresh.running:
            return fresh
        time.sleep(0.1)
    raise AssertionError(f"job {job.job_id} still running after {timeout} s")


def _py(code: str) -> list[str]:
    return [sys.executable, "-c", code]


def test_progress_of_rich_and_tqdm_bars() -> None:
    rich = (
        "\x1b[?25l\r\x1b[2KEpoch 0/1 \u2501\u2501\u2501  12/66 0:00:02"
        "\r\x1b[2KEpoch 1/1 \u2501\u2501 33/66 0:00:05 val_rmse: 20.1"
    )
    assert parse_progress(rich) == Progress(epoch=1, epochs=2, step=33, steps=66)
    assert parse_progress(rich).fraction == pytest.approx(0.75)  # type: ignore[union-attr]
    tqdm = (
        "Epoch 0:  10%|#         | 7/70 [00:01<00:09]\rEpoch 0:  50%|#####     | 35/70 [00:04<00:04]\n"
        "Validation DataLoader 0: 100%|##########| 2/2\n"
    )
    assert parse_progress(tqdm, epochs=4) == Progress(epoch=0, epochs=4, step=35, steps=70)
    assert parse_progress(tqdm).fraction is None  # type: ignore[union-attr]  # epochs unknown
    assert parse_progress("loading data\n") is None


def test_steps_run_in_order_and_their_output_is_kept(tmp_path: Path) -> None:
    job = _jobs.start_job(
        tmp_path,
        "demo-kind",
        "two steps",
        [
            _py("import json; print('first'); print(json.dumps({'version': 'v2', 'path': '{job}/x'}))"),
            _py("import sys; print('second', file=sys.stderr); sys.exit(2)"),
        ],
        ok_codes=[[0], [0, 2]],
        meta={"epochs": 3},
    )
    assert job.running and job.pid is not None
    done = _wait(job)
    assert done.status == "done" and done.result is not None and done.result["returncodes"] == [0, 2]
    assert done.json_lines() == [{"version": "v2", "path": f"{job.path}/x"}]  # {job} became the job's folder
    assert "first" in done.log_tail() and "second" in done.log_tail()
    assert done.meta == {"epochs": 3} and done.elapsed_s() > 0
    assert [j.job_id for j in _jobs.list_jobs(tmp_path, "demo-kind")] == [job.job_id]
    assert _jobs.list_jobs(tmp_path, "other-kind") == []


def test_a_failing_step_ends_the_job(tmp_path: Path) -> None:
    job = _jobs.start_job(tmp_path, "k", "fails", [_py("raise SystemExit(3)"), _py("print('never')")])
    done = _wait(job)
    assert done.status == "failed" and done.result is not None and done.result["returncodes"] == [3]
    assert "never" not in done.log() and "step ended with return code 3" in done.log()


def test_cancel_stops_the_running_command(tmp_path: Path) -> None:
    job = _jobs.start_job(tmp_path, "k", "sleeps", [_py("import time; print('started', flush=True); time.sleep(60)")])
    end = time.monotonic() + 20
    while "started" not in job.log() and time.monotonic() < end:
        time.sleep(0.1)
    assert _jobs.cancel(job)
    done = _wait(job, 10)
    assert done.status == "cancelled"
    assert not _jobs.cancel(done)


def test_a_runner_that_died_without_a_result_is_lost(tmp_path: Path) -> None:
    job = _jobs.start_job(tmp_path, "k", "quick", [_py("pass")])
    done = _wait(job)
    assert done.pid is not None
    with contextlib.suppress(ChildProcessError):  # let the runner exit after writing its result
        os.waitpid(done.pid, 0)
    (done.path / _jobs.RESULT_FILE).unlink()
    lost = _jobs.load_job(done.path)
    assert lost is not None and lost.status == "lost"
