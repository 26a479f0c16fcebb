"""Models (engineers): registered versions with metrics and cards, compare, promote, roll back, retrain.

Retraining runs ``genedge rul train`` (C-MAPSS folders) or ``genedge rul train-sim --from-store``
(the plant's model, with the plant's runs to confirmed faults) as a background job
(:mod:`dashboard._jobs`): torch and Lightning never load into the Streamlit process, and the page
stays responsive while it trains. The store's URL reaches the job through the environment the
dashboard runs in, never on a command line.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pandas as pd
import streamlit as st

from core.errors import ModelError
from core.inference.card import ModelCard
from core.inference.registry import ModelRegistry
from dashboard import _context as ctx
from dashboard import _data, _jobs, _ui
from dashboard._job_panel import job_panel
from dashboard._tables import single_typed
from dashboard.auth import Permission

SUBSETS = ("FD001", "FD002", "FD003", "FD004")
ARCHITECTURES = ("transformer", "lstm")
JOB_KIND = "rul-train"


def _flat_metrics(card: ModelCard) -> dict[str, Any]:
    return {k: v for k, v in card.metrics.items() if isinstance(v, int | float | str)}


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)) if isinstance(v, dict) else {
            f"{prefix}.{k}" if prefix else str(k): v})
    return out


def _trained(card: ModelCard) -> str:
    """How a version was trained: on the plant's own data, or federated (plants, rounds, privacy budget)."""
    fed = (card.model_extra or {}).get("federation")
    if not isinstance(fed, dict):
        return "own data"
    privacy = fed.get("privacy")
    budget = "no DP"
    if isinstance(privacy, dict) and privacy.get("epsilon_spent") is not None:
        budget = f"DP ε = {float(privacy['epsilon_spent']):.2g}, δ = {float(privacy.get('delta', 0)):.0e}"
    secagg = ", SecAgg+" if fed.get("secure_aggregation") else ""
    return f"federated: {len(fed.get('plants') or [])} plants, {fed.get('rounds')} rounds, {budget}{secagg}"


def _versions_table(versions: list[dict[str, Any]]) -> None:
    rows = []
    for v in versions:
        card: ModelCard = v["card"]
        size = card.model_size_bytes
        rows.append({"version": v["version"], "promoted": v["promoted"], "created": card.created_at,
                     "model": card.model, "variant": card.variant, "trained": _trained(card),
                     "size (kB)": round(size / 1024, 1) if size is not None else None,
                     **_flat_metrics(card)})
    st.dataframe(single_typed(pd.DataFrame(rows)), hide_index=True)


def _registry_action(fn_name: str, name: str, *args: str) -> None:
    registry = ModelRegistry(ctx.settings().models.registry_dir)
    try:
        mv = getattr(registry, fn_name)(name, *args)
    except ModelError as err:
        st.error(str(err))
        return
    _data.invalidate()
    _ui.flash(f"{name} {mv.version} is now promoted")
    st.rerun()


def _compare(name: str, versions: list[dict[str, Any]]) -> None:
    labels = [v["version"] for v in versions]
    c = st.columns(2)
    # keyed by the number of versions too: a newly registered version resets the pickers to the newest two
    a = c[0].selectbox("Version A", labels, index=max(0, len(labels) - 2), key=f"cmp-a-{name}-{len(labels)}")
    b = c[1].selectbox("Version B", labels, index=len(labels) - 1, key=f"cmp-b-{name}-{len(labels)}")
    ca = next(v["card"] for v in versions if v["version"] == a)
    cb = next(v["card"] for v in versions if v["version"] == b)
    ma, mb = _flat_metrics(ca), _flat_metrics(cb)
    rows = [{"metric": k, a: ma.get(k), b: mb.get(k)} for k in sorted(set(ma) | set(mb))]
    if rows:
        # a column holds every metric of one version: numbers and text (e.g. rul_unit) together
        st.dataframe(single_typed(pd.DataFrame(rows)).set_index("metric"))
    fa, fb = _flatten(ca.config), _flatten(cb.config)
    diff = [{"setting": k, a: json.dumps(fa.get(k)), b: json.dumps(fb.get(k))}
            for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
    if diff:
        st.markdown("**Configuration differences**")
        st.dataframe(pd.DataFrame(diff), hide_index=True)
    cards = st.columns(2)
    with cards[0]:
        st.markdown(f"**Card {a}**")
        st.json(ca.to_dict(), expanded=False)
    with cards[1]:
        st.markdown(f"**Card {b}**")
        st.json(cb.to_dict(), expanded=False)


def _check_data_dir(text: str, subset: str) -> Path | None:
    if not text.strip():
        st.error("Give the folder with the C-MAPSS files (train_FD001.txt ...), or set `models.data_dir`.")
        return None
    path = Path(text.strip()).expanduser()
    if not (path / f"train_{subset}.txt").is_file():
        st.error(f"No `train_{subset}.txt` in `{path}`: expected a C-MAPSS folder (train_FD00X.txt, test_FD00X.txt).")
        return None
    return path


def _retrain_form(registry: Path) -> None:
    default_dir = ctx.settings().models.data_dir
    with st.form("retrain", border=True):
        c = st.columns([1, 1, 1, 3])
        subset = c[0].selectbox("Subset", SUBSETS, key="retrain-subset")
        arch = c[1].selectbox("Architecture", ARCHITECTURES, key="retrain-model")
        epochs = c[2].number_input("Max epochs", min_value=1, max_value=200, value=2, step=1, key="retrain-epochs",
                                   help="Small for a quick check; the shipped models used 20 with early stopping.")
        data_text = c[3].text_input("Dataset folder (C-MAPSS layout)", value=str(default_dir or ""),
                                    key="retrain-data-dir")
        submitted = st.form_submit_button("Start training", icon=":material/model_training:", type="primary")
    st.caption("Trains on a dataset folder with the standard C-MAPSS protocol (validation split by unit, RUL cap "
               "125, conformal interval), exports int8 ONNX and registers it as a new version; nothing is promoted "
               "until you promote it.")
    if not submitted:
        return
    data_dir = _check_data_dir(data_text, subset)
    if data_dir is None:
        return
    if any(j.running for j in _jobs.list_jobs(ctx.jobs_dir(), JOB_KIND)):
        st.warning("A training job is already running; wait for it or cancel it first.")
        return
    cmd = _jobs.genedge_cmd("rul", "train", "--data-dir", str(data_dir.resolve()), "--subset", subset, "--model", arch,
                            "--max-epochs", str(int(epochs)), "--registry-dir", str(registry.resolve()), "--progress",
                            "--json")
    _jobs.start_job(ctx.jobs_dir(), JOB_KIND, f"Train {arch} on C-MAPSS {subset}, {int(epochs)} epoch(s)", [cmd],
                    meta={"epochs": int(epochs), "subset": subset, "model": arch})
    st.rerun()


def _plant_retrain_form(registry: Path) -> None:
    with st.form("retrain-plant", border=True):
        c = st.columns([1, 1, 1, 3])
        units = c[0].number_input("Simulated units", min_value=20, max_value=2000, value=200, step=20,
                                  key="plant-units")
        epochs = c[1].number_input("Max epochs", min_value=1, max_value=200, value=30, step=1, key="plant-epochs",
                                   help="The shipped sim-bearing used 30 with early stopping.")
        scale = c[2].number_input("Asset hours per stored hour", min_value=0.001,
                                  value=_data.load_time_scale(ctx.store_url()), key="plant-time-scale",
                                  help="1 in a plant; the demo's simulated plant runs sim.time_acceleration times "
                                       "faster than the clock its frames are stored by (the store records it).")
        submitted = st.form_submit_button("Train sim-bearing with the plant's history", icon=":material/factory:")
    st.caption("Trains the plant's bearing RUL model (hours) on simulated run-to-failure units plus the plant's own "
               "runs: every work order completed with the fault confirmed ends a run of that asset's stored feature "
               "frames; one that found no fault marks the frames at least the model's RUL cap before it as "
               "healthy. Validation stays on simulated units; the new version's card lists the plant runs it used.")
    if not submitted:
        return
    if any(j.running for j in _jobs.list_jobs(ctx.jobs_dir(), JOB_KIND)):
        st.warning("A training job is already running; wait for it or cancel it first.")
        return
    cmd = _jobs.genedge_cmd("rul", "train-sim", "--from-store", "--units", str(int(units)), "--max-epochs",
                            str(int(epochs)), "--time-scale", repr(float(scale)), "--registry-dir",
                            str(registry.resolve()), "--json")
    _jobs.start_job(ctx.jobs_dir(), JOB_KIND, f"Train sim-bearing with the plant's history, {int(epochs)} epoch(s)",
                    [cmd], meta={"epochs": int(epochs), "units": int(units), "model": "sim-bearing"})
    st.rerun()


def _training_outcome(job: _jobs.Job) -> None:
    out = next((r for r in reversed(job.json_lines()) if "version" in r), None)
    if out is None:
        return
    st.success(f"Registered **{out['name']} {out['version']}** · validation RMSE {out['val_rmse_onnx']:.2f} "
               f"(ONNX) · interval coverage {out.get('val_coverage_cross', float('nan')):.2f}. Promote it above "
               "when it is better than the promoted version."
               + (f" Trained with {out['plant_runs']} plant run(s), {out.get('plant_runs_censored', 0)} of them "
                  "to an inspection that found the machine healthy." if "plant_runs" in out else ""),
               icon=":material/check:")


ctx.require(Permission.MODELS)
st.title("Models")
registry_dir = ctx.settings().models.registry_dir
try:
    all_versions = _data.load_models(str(registry_dir))
except (ModelError, OSError, ValueError) as err:
    st.error(f"Cannot read the model registry at {registry_dir}: {err}")
    st.stop()
if not all_versions:
    st.info(f"No models yet in the registry at `{registry_dir}`. Train one below (or with "
            "`genedge rul train`); its versions, metrics and cards then appear here.")
else:
    names = sorted({v["name"] for v in all_versions})
    for model_name in names:
        versions = [v for v in all_versions if v["name"] == model_name]
        promoted = next((v["version"] for v in versions if v["promoted"]), None)
        st.subheader(model_name, divider="gray")
        st.caption(f"{model_name}: {len(versions)} version(s) · promoted: {promoted or 'none'}")
        _versions_table(versions)
        act = st.columns([2, 1, 1, 3], vertical_alignment="bottom")
        choice = act[0].selectbox("Version", [v["version"] for v in versions], index=len(versions) - 1,
                                  key=f"promote-pick-{model_name}-{len(versions)}")
        if act[1].button("Promote", key=f"promote-{model_name}", type="primary", disabled=choice == promoted):
            _registry_action("promote", model_name, choice)
        rollback_to = versions[0].get("rollback_to")
        # enabled only when an earlier promotion exists to go back to
        if act[2].button("Roll back", key=f"rollback-{model_name}", disabled=rollback_to is None):
            _registry_action("rollback", model_name)
        with st.expander("Compare versions and read their cards"):
            _compare(model_name, versions)
st.caption("Edge agents load the promoted version.")
st.subheader("Retrain", divider="gray")
_retrain_form(registry_dir)
_plant_retrain_form(registry_dir)
job_panel(ctx.jobs_dir(), JOB_KIND, show=_training_outcome, on_finished=_data.invalidate)
