"""Asset detail: trends with limits, spectrum and envelope spectrum, RUL history, features."""

from __future__ import annotations

import pandas as pd
import streamlit as st
from pydantic import ValidationError

from core.assets import AssetConfig
from dashboard import _charts, _data, _ui
from dashboard import _context as ctx
from dashboard._limits import channel_limits, zone_from_features
from dashboard._signal import amplitude_spectrum, averaged, default_band, defect_markers, envelope_spectrum
from ingest.store.queries import AssetInfo, ChannelLatest


def _pick_asset(url: str) -> AssetInfo | None:
    assets = _data.load_assets(url)
    if not assets:
        st.info("No assets are registered yet.")
        return None
    ids = [a.asset_id for a in assets]
    wanted = st.query_params.get("asset")
    index = ids.index(wanted) if wanted in ids else 0
    names = {a.asset_id: a.name for a in assets}
    chosen = st.selectbox("Asset", ids, index=index, format_func=lambda i: f"{i} · {names[i]}", key="asset_pick")
    if chosen != wanted:
        st.query_params["asset"] = chosen
    return next(a for a in assets if a.asset_id == chosen)


def _config(info: AssetInfo) -> AssetConfig | None:
    try:
        return AssetConfig.model_validate(info.config) if info.config else None
    except ValidationError:
        return None


def _channel(latest: dict[str, ChannelLatest], quantities: tuple[str, ...]) -> ChannelLatest | None:
    return next((c for c in latest.values() if c.quantity in quantities), None)


def _header(info: AssetInfo, cfg: AssetConfig | None, latest: dict[str, ChannelLatest], url: str) -> None:
    st.title(f"{info.asset_id} · {info.name}")
    parts = [info.kind or "asset", f"site {info.site or '?'}", info.line or "?", f"criticality {info.criticality}"]
    if cfg is not None:
        parts += [f"ISO class {cfg.machine_class}", f"bearing {cfg.bearing.designation}",
                  f"{cfg.shaft_speed_rpm:.0f} rpm rated"]
    st.caption(" · ".join(parts))
    overview = next((o for o in _data.load_overview(url) if o.asset.asset_id == info.asset_id), None)
    if overview is None:
        return
    b = st.columns([1, 1, 1, 3])
    with b[0]:
        _ui.alarm_badge(overview.alarm_state, overview.worst_severity)
    with b[1]:
        _ui.quality_badge(overview.quality)
    with b[2]:
        zone = zone_from_features(overview.features, cfg.machine_class if cfg else "II")
        _ui.zone_badge(*(zone or (None, None)))
    b[3].caption(f"last update {_ui.fmt_time(overview.last_update)} ({_ui.ago(overview.last_update)})")
    vib, temp, p = overview.vibration, overview.temperature, overview.prediction
    m = st.columns(4)
    m[0].metric("Vibration RMS", f"{vib.v_rms:.3f} {vib.unit}" if vib else "—")
    m[1].metric("Temperature", f"{temp.v_mean:.1f} °C" if temp else "—")
    m[2].metric("RUL", f"{p.rul_median:.0f} {p.rul_unit}" if p else "—",
                help=None if p else "No RUL prediction for this asset yet.")
    m[3].metric("Model", f"{p.model_name} {p.model_version}" if p else "—",
                help=None if p else "Shown once an edge agent with a promoted model publishes predictions.")
    if p is not None:
        m[2].caption(f"{p.coverage:.0%} interval {p.rul_lower:.0f}–{p.rul_upper:.0f} {p.rul_unit}"
                     + (f" · health index {p.health_index:.2f}" if p.health_index is not None else ""))


def _trends(info: AssetInfo, latest: dict[str, ChannelLatest], url: str) -> None:
    n = st.select_slider("Batches shown", options=[100, 300, 1000, 3000], value=300, key="trend_n")
    c1, c2 = st.columns(2)
    for col, quantities, value, title in (
        (c1, ("acceleration", "velocity"), "v_rms", "Vibration RMS"),
        (c2, ("temperature",), "v_mean", "Temperature"),
    ):
        ch = _channel(latest, quantities)
        with col:
            if ch is None:
                st.info(f"No {title.lower()} channel has reported for this asset.")
                continue
            points = _data.load_trend(url, info.asset_id, ch.channel, n)
            baseline = _data.load_baseline(url, info.asset_id, ch.channel, value)
            limits = channel_limits(info.config, ch.channel, ch.quantity, baseline)
            unit = "°C" if ch.unit == "degC" else ch.unit
            st.plotly_chart(_charts.trend_figure(points, value, f"{title} · {ch.channel}", unit, limits),
                            key=f"trend-{ch.channel}")
    if "alarm_limits" not in info.config:
        st.caption("Limits are relative to each channel's baseline (median of its first stored batches) until "
                   "alarm limits are configured for the asset.")


def _spectra(info: AssetInfo, cfg: AssetConfig | None, latest: dict[str, ChannelLatest], url: str) -> None:
    vib = _channel(latest, ("acceleration", "velocity"))
    if vib is None:
        st.info("No vibration channel has reported for this asset.")
        return
    controls = st.columns([1, 2, 1, 1])
    n_avg = controls[0].select_slider("Batches averaged", options=[1, 2, 4, 8, 16], value=4, key="spec_avg")
    waves = _data.load_waveforms(url, info.asset_id, vib.channel, n_avg)
    if not waves:
        st.info("No multi-sample vibration batch stored yet.")
        return
    fs = waves[0].sample_rate_hz
    lo, hi = default_band(fs)
    band = controls[1].slider("Envelope band (Hz)", 0.0, fs / 2, (float(round(lo)), float(round(hi))),
                              step=100.0, format="%.0f", key="env_band")
    speed = _channel(latest, ("speed",))
    shaft_hz = speed.v_mean / 60.0 if speed is not None and speed.v_mean > 0 else (cfg.shaft_hz if cfg else None)
    fmax_env = controls[2].select_slider("Envelope f max (Hz)", options=[250, 500, 1000, 2000], value=1000,
                                         key="env_fmax")
    fmax_raw = controls[3].select_slider("Spectrum f max (Hz)", options=[500, 1000, 2000, 5000, int(fs / 2)],
                                         value=int(fs / 2), key="spec_fmax")
    same = [w for w in waves if w.sample_rate_hz == fs and w.values.size == waves[0].values.size]
    spec = averaged([amplitude_spectrum(w.values, fs) for w in same])
    try:
        env = averaged([envelope_spectrum(w.values, fs, (band[0], band[1])) for w in same])
    except ValueError as err:
        st.warning(f"Envelope band: {err}")
        env = None
    families = st.pills("Markers", ["shaft", "BPFO", "BPFI", "BSF", "FTF"], selection_mode="multi",
                        default=["BPFO", "BPFI", "BSF", "FTF"], key="marker_families")
    markers = [m for m in (defect_markers(cfg.bearing, shaft_hz) if cfg is not None and shaft_hz else [])
               if m[2] in families]
    w0 = waves[0]
    st.caption(f"Latest batch {_ui.fmt_time(w0.start)} · {w0.values.size} samples at {fs:g} Hz "
               f"({w0.values.size / fs * 1000:.0f} ms, resolution {fs / w0.values.size:.1f} Hz) · "
               f"averaged over {len(same)} batch(es) · quality {w0.quality}"
               + (f" · shaft {shaft_hz * 60:.0f} rpm ({'measured' if speed else 'rated'})" if shaft_hz else ""))
    if not markers:
        st.caption("No bearing geometry in the asset config: defect frequency markers are not shown.")
    c1, c2 = st.columns(2)
    with c1:
        # Defect lines crowd a wide spectrum; mark them once it is zoomed in.
        raw_marks = markers if fmax_raw <= 2000 else []
        st.plotly_chart(_charts.spectrum_figure(spec[0], spec[1], f"Spectrum · {vib.channel}", vib.unit,
                                                markers=raw_marks, fmax=float(fmax_raw)), key="spectrum")
    with c2:
        if env is not None:
            title = f"Envelope spectrum · {band[0]:.0f}–{band[1]:.0f} Hz"
            st.plotly_chart(_charts.spectrum_figure(env[0], env[1], title, vib.unit, markers=markers,
                                                    fmax=float(fmax_env), colour=_charts.COLOURS["envelope"]),
                            key="envelope")
    if cfg is not None and shaft_hz:
        f = cfg.bearing.defect_frequencies(shaft_hz)
        st.caption(f"{cfg.bearing.designation} at {shaft_hz:.2f} Hz: BPFO {f.bpfo:.1f} Hz · BPFI {f.bpfi:.1f} Hz · "
                   f"BSF {f.bsf:.1f} Hz · FTF {f.ftf:.1f} Hz")
    st.button("Request raw snapshot", icon=":material/download:", disabled=True, key="snapshot",
              help="The edge agent cannot take snapshots on request yet.")
    st.caption("On-demand raw snapshots need edge-agent support that is not built yet; the spectra use the "
               "batches the agent stores routinely.")


def _rul(info: AssetInfo, url: str) -> None:
    preds = _data.load_predictions(url, info.asset_id)
    if not preds:
        st.info("No RUL predictions for this asset yet. They appear here once an edge agent with a promoted "
                "model publishes prediction messages for it.")
        return
    last = preds[-1]
    st.plotly_chart(_charts.rul_figure(preds), key="rul")
    st.caption(f"Model {last.model_name} {last.model_version} · latest {_ui.fmt_rul(last)} at {_ui.fmt_time(last.at)}"
               + (f" · health index {last.health_index:.2f}" if last.health_index is not None else ""))
    versions = sorted({(p.model_name, p.model_version) for p in preds})
    if len(versions) > 1:
        st.caption("Model versions in this history: " + ", ".join(f"{n} {v}" for n, v in versions))


def _features(info: AssetInfo, url: str) -> None:
    frames = _data.load_features(url, info.asset_id)
    if not frames:
        st.info("No edge features for this asset yet. They appear once the edge agent publishes feature frames.")
        return
    last = frames[-1]
    rows = [{"channel": ch, "feature": k, "value": v} for ch, vals in last.features.items() for k, v in vals.items()]
    st.caption(f"Window {_ui.fmt_time(last.window_start)}, {last.window_s:g} s, quality {last.quality}")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="features_table")
    names = sorted({f"{r['channel']}.{r['feature']}" for r in rows})
    pick = st.selectbox("Trend of", names, key="feature_pick")
    if pick:
        ch, _, name = pick.partition(".")
        pts = [(f.window_start, f.features[ch][name]) for f in frames if name in f.features.get(ch, {})]
        st.plotly_chart(_charts.feature_trend_figure([p[0] for p in pts], [p[1] for p in pts], pick),
                        key="feature_trend")


def _events(info: AssetInfo, url: str) -> None:
    alarms = _data.load_alarms(url, None, info.asset_id, 100)
    st.markdown("**Alarms**")
    if alarms:
        st.dataframe(pd.DataFrame([{"raised": a.raised_at, "kind": a.kind, "severity": a.severity, "state": a.state,
                                    "message": a.message, "acknowledged by": a.acked_by} for a in alarms]),
                     hide_index=True, key="asset_alarms")
    else:
        st.caption("No alarms for this asset.")
    st.markdown("**Work orders**")
    orders = _data.load_work_orders(url, None, info.asset_id, 100)
    if orders:
        st.dataframe(pd.DataFrame([{"id": w.id, "created": w.created_at, "title": w.title, "status": w.status,
                                    "priority": w.priority} for w in orders]), hide_index=True, key="asset_wos")
    else:
        st.caption("No work orders for this asset.")


ctx.require()
_url = ctx.store_url()
_info = _pick_asset(_url)
if _info is not None:
    _cfg = _config(_info)
    _latest = _data.load_latest_readings(_url, _info.asset_id).get(_info.asset_id, {})
    _header(_info, _cfg, _latest, _url)
    t_trend, t_spec, t_rul, t_feat, t_events = st.tabs(
        ["Trends", "Spectrum", "RUL", "Features", "Alarms & work orders"])
    with t_trend:
        _trends(_info, _latest, _url)
    with t_spec:
        _spectra(_info, _cfg, _latest, _url)
    with t_rul:
        _rul(_info, _url)
    with t_feat:
        _features(_info, _url)
    with t_events:
        _events(_info, _url)
