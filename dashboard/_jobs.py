"""Background jobs of the dashboard: ``genedge`` CLI commands run in a detached process.

Training imports torch and Lightning; the Streamlit process must not, and a script run must
not block on it. A job is a folder with ``job.json`` (what to run), ``log.txt`` (everything the
commands print) and, once over, ``result.json`` (return codes). A small runner process
(``python -m dashboard._jobs DIR``) runs the steps one after another, so a job survives page
reloads and sessions, and any page can read its state from the folder. This module imports no
Streamlit.
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import signal
import subprocess
import sys
import uuid
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

__all__ = ["Job", "Progress", "cancel", "genedge_cmd", "list_jobs", "load_job", "parse_progress", "start_job"]

JOB_FILE, LOG_FILE, RESULT_FILE, PID_FILE = "job.json", "log.txt", "result.json", "runner.pid"
_ANSI = re.compile(r"\x1b\[[0-9;?]*[A-Za-z]")
_EPOCH = re.compile(r"Epoch (\d+)(?:/(\d+))?")
_STEP = re.compile(r"(\d+)/(\d+)")


def genedge_cmd(*args: str) -> list[str]:
    """The command line of ``genedge ARGS`` with this interpreter."""
    return [sys.executable, "-m", "genedge", *args]


@dataclass(frozen=True)
class Progress:
    """Where a Lightning training run is, read from its progress bar."""

    epoch: int
    epochs: int | None
    step: int
    steps: int

    @property
    def fraction(self) -> float | None:
        """0..1 over all epochs, ``None`` when the number of epochs is unknown."""
        if not self.epochs or not self.steps:
            return None
        return min(1.0, (self.epoch + self.step / self.steps) / self.epochs)


def parse_progress(log: str, epochs: int | None = None) -> Progress | None:
    """The newest ``Epoch N[/M] ... k/n`` of a TQDM or Rich progress bar in ``log``.

    Args:
        log: the job's output, carriage returns and ANSI codes included.
        epochs: the run's epoch limit when the bar does not show it (TQDM).
    """
    for segment in reversed(re.split(r"[\r\n]", _ANSI.sub("", log))):
        m = _EPOCH.search(segment)
        if m is None:
            continue
        step = _STEP.search(segment[m.end() :])
        last = int(m.group(2)) + 1 if m.group(2) is not None else epochs
        return Progress(int(m.group(1)), last, int(step.group(1)) if step else 0, int(step.group(2)) if step else 0)
    return None


@dataclass
class Job:
    """A background job as its folder describes it."""

    path: Path
    kind: str
    title: str
    steps: list[list[str]]
    ok_codes: list[list[int]]
    started_at: str
    meta: dict[str, Any] = field(default_factory=dict)
    result: dict[str, Any] | None = None
    pid: int | None = None

    @property
    def job_id(self) -> str:
        return self.path.name

    @property
    def status(self) -> str:
        """``running``, ``done``, ``failed``, ``cancelled`` or ``lost`` (the runner died without a result)."""
        if self.result is not None:
            return str(self.result.get("status", "failed"))
        return "running" if self.pid is not None and _alive(self.pid) else "lost"

    @property
    def running(self) -> bool:
        return self.status == "running"

    def log(self, max_chars: int = 200_000) -> str:
        """The end of the job's output."""
        path = self.path / LOG_FILE
        if not path.is_file():
            return ""
        with path.open("rb") as fh:
            size = fh.seek(0, os.SEEK_END)
            fh.seek(max(0, size - max_chars))
            return fh.read().decode("utf-8", "replace")

    def log_tail(self, lines: int = 15) -> str:
        """The last lines of output as a terminal would show them (progress-bar redraws collapsed)."""
        shown = [seg.split("\r")[-1].rstrip() for seg in _ANSI.sub("", self.log(50_000)).split("\n")]
        return "\n".join([s for s in shown if s.strip()][-lines:])

    def json_lines(self) -> list[dict[str, Any]]:
        """The one-line JSON outputs (``--json``) the steps printed."""
        out = []
        for raw in _ANSI.sub("", self.log()).splitlines():
            line = raw.split("\r")[-1].strip()  # after a progress bar's last redraw
            if line.startswith("{") and line.endswith("}"):
                try:
                    out.append(json.loads(line))
                except json.JSONDecodeError:
                    continue
        return out

    def elapsed_s(self) -> float:
        end = self.result.get("finished_at") if self.result else None
        t1 = dt.datetime.fromisoformat(end) if end else dt.datetime.now(dt.UTC)
        return (t1 - dt.datetime.fromisoformat(self.started_at)).total_seconds()


def _alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # a finished runner that nobody waited for stays a zombie child of this process
    try:
        done, _ = os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        return True
    return done == 0


def _reap(pid: int) -> None:
    """Collect a finished runner started by this process (else it stays a zombie)."""
    with contextlib.suppress(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)


def _read_json(path: Path) -> dict[str, Any] | None:
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, json.JSONDecodeError):
        return None
    return data if isinstance(data, dict) else None


def load_job(path: Path) -> Job | None:
    """The job in ``path``, ``None`` if it is not a job folder."""
    spec = _read_json(path / JOB_FILE)
    if spec is None:
        return None
    pid_text = (path / PID_FILE).read_text().strip() if (path / PID_FILE).is_file() else ""
    result = _read_json(path / RESULT_FILE)
    if result is not None and pid_text.isdigit():
        _reap(int(pid_text))
    return Job(
        path=path,
        kind=spec["kind"],
        title=spec["title"],
        steps=spec["steps"],
        ok_codes=spec["ok_codes"],
        started_at=spec["started_at"],
        meta=spec.get("meta", {}),
        result=result,
        pid=int(pid_text) if pid_text.isdigit() else None,
    )


def list_jobs(root: Path, kind: str | None = None) -> list[Job]:
    """Jobs under ``root`` (of one ``kind``), newest first."""
    if not root.is_dir():
        return []
    jobs = [j for p in root.iterdir() if p.is_dir() and (j := load_job(p)) is not None]
    return sorted((j for j in jobs if kind is None or j.kind == kind), key=lambda j: j.started_at, reverse=True)


def start_job(
    root: Path,
    kind: str,
    title: str,
    steps: list[list[str]],
    *,
    ok_codes: list[list[int]] | None = None,
    meta: dict[str, Any] | None = None,
    nice: int = 10,
) -> Job:
    """Start ``steps`` (command lines) one after another in a detached runner process.

    Args:
        root: folder of the jobs; the job gets a new folder in it.
        kind: what the job is, e.g. ``rul-train`` (pages list their own kinds).
        title: one line for people.
        steps: command lines; a step whose return code is not in its ``ok_codes`` ends the job.
            ``{job}`` in an argument becomes the job's folder (for the files it writes).
        ok_codes: per step, the return codes that mean success (default ``[0]``).
        meta: anything the page wants back with the job (e.g. the output paths).
        nice: niceness of the runner and its commands: training must not starve the plant.

    Returns:
        The started job.
    """
    now = dt.datetime.now(dt.UTC)
    path = root / f"{now:%Y%m%dT%H%M%S}-{kind}-{uuid.uuid4().hex[:6]}"
    path.mkdir(parents=True)
    codes = ok_codes or [[0] for _ in steps]
    if len(codes) != len(steps):
        raise ValueError(f"ok_codes must have one entry per step ({len(steps)}), got {len(codes)}")
    steps = [[arg.replace("{job}", str(path)) for arg in cmd] for cmd in steps]
    spec = {
        "kind": kind,
        "title": title,
        "steps": steps,
        "ok_codes": codes,
        "meta": meta or {},
        "started_at": now.isoformat(timespec="milliseconds"),
    }
    (path / JOB_FILE).write_text(json.dumps(spec, indent=2), encoding="utf-8")
    proc = subprocess.Popen(
        [sys.executable, "-m", "dashboard._jobs", str(path), str(int(nice))],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    (path / PID_FILE).write_text(str(proc.pid))
    job = load_job(path)
    assert job is not None
    return job


def cancel(job: Job) -> bool:
    """Stop a running job (its runner and the command it runs); ``False`` if it was not running."""
    if not job.running or job.pid is None:
        return False
    try:
        os.killpg(job.pid, signal.SIGTERM)  # the runner leads its own session: this stops its commands too
    except ProcessLookupError:
        return False
    return True


def _run(path: Path, nice: int = 0) -> int:
    spec = _read_json(path / JOB_FILE)
    if spec is None:
        return 2
    if nice:
        os.nice(nice)  # inherited by the commands
    cancelled = False

    def _stop(_sig: int, _frame: object) -> None:
        nonlocal cancelled
        cancelled = True

    signal.signal(signal.SIGTERM, _stop)
    codes: list[int] = []
    status = "done"
    # Rich draws live progress bars only on a terminal: make it think it has a wide one, without colours
    env = {**os.environ, "PYTHONUNBUFFERED": "1", "COLUMNS": "120", "FORCE_COLOR": "1", "NO_COLOR": "1"}
    with (path / LOG_FILE).open("ab", buffering=0) as log:
        for cmd, ok in zip(spec["steps"], spec["ok_codes"], strict=True):
            log.write(f"$ {' '.join(cmd)}\n".encode())
            proc = subprocess.Popen(cmd, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=env)
            while True:
                try:
                    rc = proc.wait()
                    break
                except InterruptedError:  # pragma: no cover - PEP 475 retries for us
                    continue
            codes.append(rc)
            if cancelled:
                status = "cancelled"
                break
            if rc not in ok:
                status = "failed"
                log.write(f"step ended with return code {rc}\n".encode())
                break
    result = {"status": status, "returncodes": codes, "finished_at": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds")}
    tmp = path / (RESULT_FILE + ".tmp")
    tmp.write_text(json.dumps(result), encoding="utf-8")
    os.replace(tmp, path / RESULT_FILE)
    return 0


if __name__ == "__main__":
    raise SystemExit(_run(Path(sys.argv[1]), int(sys.argv[2]) if len(sys.argv) > 2 else 0))
