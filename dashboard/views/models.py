"""Models (engineers): registered versions with metrics and cards, compare, promote, roll back."""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from core.errors import ModelError
from dashboard import _context as ctx
from dashboard import _data, _ui
from dashboard.auth import Permission


def _flat_metrics(card: dict[str, Any]) -> dict[str, Any]:
    metrics = card.get("metrics", {})
    return {k: v for k, v in metrics.items() if isinstance(v, int | float | str)} if isinstance(metrics, dict) else {}


def _flatten(d: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(d, dict):
        return {prefix: d} if prefix else {}
    out: dict[str, Any] = {}
    for k, v in d.items():
        out.update(_flatten(v, f"{prefix}.{k}" if prefix else str(k)) if isinstance(v, dict) else {
            f"{prefix}.{k}" if prefix else str(k): v})
    return out


def _versions_table(versions: list[dict[str, Any]]) -> None:
    rows = []
    for v in versions:
        card = v["card"]
        rows.append({"version": v["version"], "promoted": v["promoted"], "created": card.get("created_at"),
                     "model": card.get("model"), "variant": card.get("variant"),
                     "size (kB)": round(card["model_size_bytes"] / 1024, 1) if "model_size_bytes" in card else None,
                     **_flat_metrics(card)})
    st.dataframe(pd.DataFrame(rows), hide_index=True)


def _registry_action(fn_name: str, name: str, *args: str) -> None:
    from models.registry import ModelRegistry

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
    a = c[0].selectbox("Version A", labels, index=max(0, len(labels) - 2), key=f"cmp-a-{name}")
    b = c[1].selectbox("Version B", labels, index=len(labels) - 1, key=f"cmp-b-{name}")
    ca = next(v["card"] for v in versions if v["version"] == a)
    cb = next(v["card"] for v in versions if v["version"] == b)
    ma, mb = _flat_metrics(ca), _flat_metrics(cb)
    rows = [{"metric": k, a: ma.get(k), b: mb.get(k)} for k in sorted(set(ma) | set(mb))]
    if rows:
        st.dataframe(pd.DataFrame(rows).set_index("metric"))
    fa, fb = _flatten(ca.get("config", {})), _flatten(cb.get("config", {}))
    diff = [{"setting": k, a: json.dumps(fa.get(k)), b: json.dumps(fb.get(k))}
            for k in sorted(set(fa) | set(fb)) if fa.get(k) != fb.get(k)]
    if diff:
        st.markdown("**Configuration differences**")
        st.dataframe(pd.DataFrame(diff), hide_index=True)
    cards = st.columns(2)
    with cards[0]:
        st.markdown(f"**Card {a}**")
        st.json(ca, expanded=False)
    with cards[1]:
        st.markdown(f"**Card {b}**")
        st.json(cb, expanded=False)


ctx.require(Permission.MODELS)
st.title("Models")
registry_dir = ctx.settings().models.registry_dir
try:
    all_versions = _data.load_models(str(registry_dir))
except (ModelError, OSError, ValueError) as err:
    st.error(f"Cannot read the model registry at {registry_dir}: {err}")
    st.stop()
if not all_versions:
    st.info(f"No models yet in the registry at `{registry_dir}`. Train and register one with "
            "`genedge rul train`; its versions, metrics and cards then appear here.")
else:
    names = sorted({v["name"] for v in all_versions})
    for model_name in names:
        versions = [v for v in all_versions if v["name"] == model_name]
        promoted = next((v["version"] for v in versions if v["promoted"]), None)
        st.subheader(model_name, divider="gray")
        st.caption(f"{len(versions)} version(s) · promoted: {promoted or 'none'}")
        _versions_table(versions)
        act = st.columns([2, 1, 1, 3], vertical_alignment="bottom")
        choice = act[0].selectbox("Version", [v["version"] for v in versions], index=len(versions) - 1,
                                  key=f"promote-pick-{model_name}")
        if act[1].button("Promote", key=f"promote-{model_name}", type="primary", disabled=choice == promoted):
            _registry_action("promote", model_name, choice)
        if act[2].button("Roll back", key=f"rollback-{model_name}", disabled=promoted is None):
            _registry_action("rollback", model_name)
        with st.expander("Compare versions and read their cards"):
            _compare(model_name, versions)
st.caption("Retraining from the dashboard is not built yet: train with `genedge rul train` and the new version "
           "appears here. Edge agents load the promoted version.")
