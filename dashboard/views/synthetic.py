"""Synthetic data (engineers): train a generator of sensor windows, read its quality gate, draw samples.

Everything heavy runs as ``genedge synth train / evaluate / sample`` in a background job
(:mod:`dashboard._jobs`); this page only starts the jobs and reads what they write: the gate's
``report.json`` with its PNG plots of real vs synthetic windows and envelope spectra, and the
sampled windows as ``.npy``.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import plotly.graph_objects as go
import streamlit as st

from dashboard import _context as ctx
from dashboard import _jobs
from dashboard._job_panel import job_panel
from dashboard._tables import single_typed
from dashboard.auth import Permission

TRAIN_KIND, SAMPLE_KIND = "synth-train", "synth-sample"
GENERATOR, REPORT_DIR, SAMPLES = "generator.pkl", "report", "samples.npy"
#: The CWRU classes ``genedge synth sample --label`` accepts (label 0..9 in this order).
CWRU_CLASSES = (
    "normal",
    "ball_007",
    "ball_014",
    "ball_021",
    "inner_007",
    "inner_014",
    "inner_021",
    "outer_007",
    "outer_014",
    "outer_021",
)


def _default_data_dir() -> str:
    models_data = ctx.settings().models.data_dir
    if models_data is not None:
        for candidate in (models_data / "cwru", models_data.parent / "cwru"):
            if candidate.is_dir():
                return str(candidate)
    return ""


def cwru_problem(folder: str) -> str | None:
    """What keeps ``folder`` from training a generator, or ``None`` when it holds CWRU ``.mat`` recordings."""
    text = folder.strip()
    if not text:
        return ("Training needs the CWRU bearing data set (12 kHz drive end): the `.mat` recordings "
                "normal_0_97.mat and 12k_Drive_End_*.mat, which the demo does not include. Give their folder "
                "below, or set `models.data_dir` to a folder holding `cwru/`.")
    path = Path(text).expanduser()
    if not path.is_dir():
        return f"`{text}` is not a folder: give the folder with the CWRU `.mat` recordings."
    if not any(path.glob("*.mat")):
        return (f"No CWRU `.mat` files in `{text}`: give the folder with normal_0_97.mat and the "
                "12k_Drive_End_* recordings.")
    return None


def _train_form() -> None:
    # Outside the form: the button is enabled only once the folder holds the recordings.
    data_text = st.text_input("Dataset folder (CWRU, 12 kHz drive end)", value=_default_data_dir(), key="synth-data-dir")
    problem = cwru_problem(data_text)
    if problem:
        st.warning(problem, icon=":material/dataset:")
    with st.form("synth-train", border=True):
        c = st.columns([1, 1, 1, 1, 1])
        model = c[0].selectbox(
            "Generator", ("vae", "gan"), key="synth-model", help="Conditional VAE or WGAN-GP over 1-channel vibration windows."
        )
        steps = c[1].number_input("Training steps", min_value=10, max_value=20_000, value=200, step=10, key="synth-steps")
        k = c[2].number_input(
            "Real windows per fault class",
            min_value=0,
            max_value=200,
            value=2,
            key="synth-k",
            help="Few-shot: the rare-failure case. 0 = every training window.",
        )
        snr = c[3].number_input("Noise SNR (dB)", min_value=-20.0, max_value=40.0, value=-4.0, step=1.0, key="synth-snr")
        per_class = c[4].number_input("Gate windows per class", min_value=5, max_value=200, value=20, key="synth-per-class")
        submitted = st.form_submit_button("Train and run the quality gate", icon=":material/science:", type="primary",
                                          disabled=problem is not None, help=problem)
    if not submitted:
        return
    problem = cwru_problem(data_text)  # the folder may have changed since the page was drawn
    if problem:
        st.error(problem)
        return
    data_dir = Path(data_text.strip()).expanduser()
    if any(j.running for j in _jobs.list_jobs(ctx.jobs_dir(), TRAIN_KIND)):
        st.warning("A generator is already training; wait for it or cancel it first.")
        return
    steps_cmd = [
        _jobs.genedge_cmd(
            "synth",
            "train",
            "--data-dir",
            str(data_dir),
            "--out",
            "{job}/" + GENERATOR,
            "--model",
            model,
            "--k",
            str(int(k)),
            "--snr",
            str(float(snr)),
            "--steps",
            str(int(steps)),
            "--progress",
            "--json",
        ),
        _jobs.genedge_cmd(
            "synth",
            "evaluate",
            "--model-path",
            "{job}/" + GENERATOR,
            "--data-dir",
            str(data_dir),
            "--report-dir",
            "{job}/" + REPORT_DIR,
            "--per-class",
            str(int(per_class)),
            "--json",
        ),
    ]
    _jobs.start_job(
        ctx.jobs_dir(),
        TRAIN_KIND,
        f"Train a {model.upper()} ({int(steps)} steps, k = {int(k)}, SNR {float(snr):g} dB) and run the quality gate",
        steps_cmd,
        ok_codes=[[0], [0, 2]],  # evaluate exits 2 when the gate rejects: a result, not an error
        meta={"model": model, "epochs": 1},
    )
    st.rerun()


def _report(job: _jobs.Job) -> None:
    path = job.path / REPORT_DIR / "report.json"
    if not path.is_file():
        return
    report: dict[str, Any] = json.loads(path.read_text(encoding="utf-8"))
    th = report.get("thresholds", {})
    if report.get("passed"):
        st.success("Quality gate **passed**: these synthetic windows may join training.", icon=":material/check:")
    else:
        st.error(
            "Quality gate **rejected** the generator: its windows do not join training. " + "; ".join(report.get("failures", [])),
            icon=":material/block:",
        )
    rows = [
        {
            "check": "discriminative score (|accuracy - 0.5| of a real-vs-synthetic classifier)",
            "value": report.get("discriminative_score"),
            "target": f"<= {th.get('max_discriminative')}",
        },
        {
            "check": "predictive score (train on synthetic, test on real)",
            "value": report.get("predictive_score"),
            "target": f">= {th.get('min_predictive')}",
        },
        {"check": "MMD real vs synthetic", "value": report.get("mmd"), "target": f"<= {th.get('max_mmd')}"},
        {
            "check": "defect-frequency peaks in the envelope spectrum",
            "value": report.get("spectral_passed"),
            "target": f"within {100 * float(th.get('spectral_tolerance', 0)):.0f} %",
        },
    ]
    st.dataframe(single_typed(pd.DataFrame(rows)), hide_index=True, key=f"gate-{job.job_id}")
    st.caption(f"{report.get('n_real')} real and {report.get('n_synthetic')} synthetic windows.")
    plots = [job.path / REPORT_DIR / name for name in ("windows.png", "envelope_spectra.png")]
    cols = st.columns(2)
    for col, plot, caption in zip(
        cols, plots, ("Real vs synthetic windows, per class", "Envelope spectra, real vs synthetic"), strict=True
    ):
        if plot.is_file():
            col.image(str(plot), caption=caption)
    spectral = report.get("spectral") or {}
    if spectral:
        with st.expander("Defect-frequency peaks per class"):
            st.dataframe(
                single_typed(pd.DataFrame(
                    [
                        {"class": CWRU_CLASSES[int(c)] if c.isdigit() and int(c) < len(CWRU_CLASSES) else c, **v}
                        for c, v in spectral.items()
                    ]
                )),
                hide_index=True,
            )


def _sample_form() -> None:
    generators = [j for j in _jobs.list_jobs(ctx.jobs_dir(), TRAIN_KIND) if (j.path / GENERATOR).is_file()]
    if not generators:
        st.caption("Train a generator first; then draw windows of any class from it here.")
        return
    with st.form("synth-sample", border=True):
        c = st.columns([3, 2, 1])
        chosen = c[0].selectbox("Generator", generators, format_func=lambda j: f"{j.title} · {j.job_id}", key="sample-generator")
        label = c[1].selectbox("Class", CWRU_CLASSES, index=CWRU_CLASSES.index("inner_014"), key="sample-class")
        n = c[2].number_input("Windows", min_value=1, max_value=10_000, value=50, key="sample-n")
        submitted = st.form_submit_button("Draw samples", icon=":material/casino:")
    if submitted and chosen is not None:
        cmd = _jobs.genedge_cmd(
            "synth",
            "sample",
            "--model-path",
            str(chosen.path / GENERATOR),
            "--out",
            "{job}/" + SAMPLES,
            "--n",
            str(int(n)),
            "--label",
            label,
            "--json",
        )
        _jobs.start_job(ctx.jobs_dir(), SAMPLE_KIND, f"Draw {int(n)} {label} windows from {chosen.job_id}", [cmd])
        st.rerun()


def _samples(job: _jobs.Job) -> None:
    path = job.path / SAMPLES
    if not path.is_file():
        return
    windows = np.load(path)
    st.caption(f"{windows.shape[0]} windows of {windows.shape[-1]} samples · `{path}`")
    fig = go.Figure()
    for i in range(min(3, windows.shape[0])):
        fig.add_scatter(y=windows[i, 0, :1024], mode="lines", name=f"window {i}", line={"width": 1})
    fig.update_layout(title="Synthetic windows (first 1024 samples)", height=260, margin={"t": 40, "b": 20})
    st.plotly_chart(fig, key=f"samples-{job.job_id}")
    st.download_button(
        "Download .npy",
        path.read_bytes(),
        file_name=f"{job.job_id}.npy",
        key=f"download-{job.job_id}",
        on_click="ignore",
        icon=":material/download:",
    )


ctx.require(Permission.SYNTH)
st.title("Synthetic data")
st.markdown(
    "Generative models of vibration windows for rare failures: a conditional **VAE** or **WGAN-GP** "
    "trained on few real fault windows (CWRU bearings). The quality gate decides whether its windows may "
    "join training: a classifier must not tell them from real ones, a model trained on them must work on "
    "real data, and the bearing defect frequencies must appear where physics puts them."
)
st.subheader("Train a generator", divider="gray")
_train_form()
job_panel(ctx.jobs_dir(), TRAIN_KIND, show=_report)
st.subheader("Sample", divider="gray")
_sample_form()
job_panel(ctx.jobs_dir(), SAMPLE_KIND, show=_samples, limit=2)
