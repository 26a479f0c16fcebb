"""The background-jobs panel the engineering pages share: status, progress bar, output, cancel."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import streamlit as st

from dashboard import _jobs

__all__ = ["job_panel"]

_STATUS_COLOURS = {"running": "blue", "done": "green", "failed": "red", "cancelled": "gray", "lost": "orange"}
_SEEN = "genedge.jobs_seen_done"


def _one(job: _jobs.Job, show: Callable[[_jobs.Job], None] | None) -> None:
    status = job.status
    with st.container(border=True, key=f"job-{job.job_id}"):
        head = st.columns([6, 2, 1], vertical_alignment="center")
        head[0].markdown(f"**{job.title}**  \n`{job.job_id}` · {job.elapsed_s():.0f} s")
        with head[1]:
            st.badge(status, color=_STATUS_COLOURS.get(status, "gray"))  # type: ignore[arg-type]
        if job.running and head[2].button("Cancel", key=f"cancel-{job.job_id}", icon=":material/stop:"):
            _jobs.cancel(job)
            st.rerun()
        progress = _jobs.parse_progress(job.log(), job.meta.get("epochs"))
        if job.running:
            if progress is not None and progress.fraction is not None:
                st.progress(
                    progress.fraction,
                    text=f"epoch {progress.epoch + 1}/{progress.epochs} · batch {progress.step}/{progress.steps}",
                )
            else:
                st.progress(0.0, text="starting (loading data and libraries)")
        tail = job.log_tail()
        with st.expander("Output", expanded=job.running or status == "failed"):
            st.code(tail or "(no output yet)", language=None)
        if show is not None and status in ("done", "failed"):
            show(job)


def job_panel(
    root: Path,
    kind: str,
    *,
    show: Callable[[_jobs.Job], None] | None = None,
    on_finished: Callable[[], None] | None = None,
    limit: int = 3,
) -> None:
    """The newest ``limit`` jobs of ``kind`` under ``root``; live while any of them runs.

    Args:
        root: the jobs folder.
        kind: which jobs to list.
        show: draws a finished job's outcome (e.g. the registered version, the report).
        on_finished: called once when a job this session watched finishes, then the whole page
            reruns (e.g. to list a newly registered model version).
        limit: how many jobs to show.
    """
    jobs = _jobs.list_jobs(root, kind)[:limit]
    running = any(j.running for j in jobs)

    def body() -> None:
        current = _jobs.list_jobs(root, kind)[:limit]
        seen: set[str] = st.session_state.setdefault(_SEEN, set())
        newly_done = [j for j in current if not j.running and j.job_id not in seen]
        seen.update(j.job_id for j in current if not j.running)
        if not current:
            st.caption("No jobs yet.")
        for job in current:
            _one(job, show)
        if running and newly_done:
            if on_finished is not None:
                on_finished()
            st.rerun(scope="app")

    # Poll only while something runs: an idle page does not rerun every second.
    st.fragment(body, run_every=1.0 if running else None)()
