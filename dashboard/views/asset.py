"""Asset detail: trends of the edge features, spectra of the latest raw snapshot, RUL history, the what-if, features.

The edge agent publishes a feature window per asset every tick, raw readings only of slow
channels (temperature, speed, load), and raw vibration only as snapshots: when an anomaly starts,
or when someone asks for one here.
"""

from __future__ import annotations

import re
from datetime import datetime, timedelta

import numpy as np
import pandas as pd
import streamlit as st
from pydantic import ValidationError

from core.assets import AssetConfig
from core.errors import GenEdgeError
from core.wire import utcnow
from dashboard import _charts, _data, _ui
from dashboard import _context as ctx
from dashboard._commands import request_raw_snapshot
from dashboard._features import (
    ENVELOPE_FAMILIES,
    TEMPERATURE_LEVEL,
    Vitals,
    envelope_keys,
    health_keys,
    temperature_channel,
    vibration_channel,
    vitals,
)
from dashboard._limits import ISO_10816_ZONES, channel_limits
from dashboard._signal import amplitude_spectrum, default_band, defect_markers, envelope_spectrum
from dashboard._status import STATE_HELP, AssetDecision, rul_line, rul_text, zone_a_hint
from dashboard._whatif import show_whatif
from ingest.store.queries import AssetInfo, AssetOverview, FeatureView, Snapshot

#: How long the page waits for a requested snapshot before it says that none came.
SNAPSHOT_WAIT = timedelta(seconds=60)
_REQUESTED = "genedge.snapshot_requested"

#: The Features tab's resolutions: raw windows, or the stored aggregates of each bucket size.
_RESOLUTIONS = {"windows": "window", "hourly": "hour", "daily": "day"}


def _pick_asset(url: str) -> AssetInfo | None:
    monitored = {o.asset.asset_id for o in _data.load_overview(url) if o.monitored}
    assets = [a for a in _data.load_assets(url) if a.asset_id in monitored]
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


def _fmt(x: float | None, spec: str, unit: str = "") -> str:
    return "—" if x is None else f"{format(x, spec)}{' ' + unit if unit else ''}"


# ------------------------------------------------------------------------------ header
_STATE_BADGE = {"stop_now": "red", "urgent": "red", "plan": "orange", "insufficient_evidence": "violet",
                "watch": "yellow", "healthy": "gray"}


def _decision_line(decision: AssetDecision | None) -> None:
    if decision is None:
        st.caption("No decision state: the asset's evidence could not be gathered from the store.")
        return
    c = st.columns([1, 5], vertical_alignment="center")
    with c[0]:
        st.badge(decision.label, color=_STATE_BADGE.get(decision.state, "gray"),  # type: ignore[arg-type]
                 help=STATE_HELP.get(decision.state))
    because = "; ".join(decision.reasons) if decision.reasons else decision.why
    c[1].caption(f"Decision (docs/decisions.md): {because} · priority {decision.priority}")


def _header(info: AssetInfo, cfg: AssetConfig | None, overview: AssetOverview | None, v: Vitals,
            decision: AssetDecision | None) -> None:
    st.title(f"{info.asset_id} · {info.name}")
    parts = [info.kind or "asset", f"site {info.site or '?'}", info.line or "?", f"criticality {info.criticality}"]
    if cfg is not None:
        parts += [f"ISO class {cfg.machine_class}", f"bearing {cfg.bearing.designation}",
                  f"{cfg.shaft_speed_rpm:.0f} rpm rated"]
        if cfg.in_service_since is not None:
            parts.append(f"in service since {cfg.in_service_since:%Y-%m-%d}")
        if cfg.cycles_at_start:
            parts.append(f"{cfg.cycles_at_start} cycles before monitoring")
    st.caption(" · ".join(parts))
    _decision_line(decision)
    if overview is None:
        return
    hint = zone_a_hint(v.zone, decision)
    b = st.columns([1, 1, 1.5, 1.1, 2.4])
    with b[0]:
        _ui.alarm_badge(overview.alarm_state, overview.worst_severity)
    with b[1]:
        _ui.quality_badge(overview.quality)
    with b[2]:
        _ui.zone_badge(v.zone, v.velocity_mm_s, hint)
    with b[3]:
        _ui.anomaly_badge(v.anomaly, v.learning, v.health_index is not None)
    b[4].caption(f"last update {_ui.fmt_time(overview.last_update)} ({_ui.ago(overview.last_update)})")
    if hint:
        st.info(hint, icon=":material/info:")
    p = overview.prediction
    healthy = decision is not None and decision.healthy
    r = rul_text(p, healthy=healthy)
    m = st.columns(6)
    m[0].metric("Vibration RMS", _fmt(v.vib_rms, ".3f", v.vib_unit),
                help=f"Broadband RMS of {v.vib_channel} in the newest feature window." if v.vib_channel else None)
    m[1].metric("Velocity RMS", _fmt(v.velocity_mm_s, ".2f", "mm/s"),
                help="10-1000 Hz velocity RMS; the edge computes it only from windows of at least 0.2 s.")
    m[2].metric("Temperature", _fmt(v.temperature_c, ".1f", "°C"),
                help=f"From the {v.temperature_source}." if v.temperature_source else None)
    rate = decision.temperature_rate_k_h if decision is not None else None
    if rate is not None:  # the trend the decision policy judges, in K per plant hour
        m[2].caption(f"{rate:+.1f} K/h over the look-back")
    m[3].metric("Health index", _fmt(v.health_index, ".2f"),
                help="1 = as healthy as the baseline the edge learned on this asset; lower is worse.")
    share = p is not None and p.rul_unit == "%"
    m[4].metric(_ui.rul_label(p.rul_unit) if p else "RUL", f"{r.value} {r.unit}" if p else "—",
                help=("The model was trained with RUL capped here: it only says 'at least this long'."
                      if p and r.value.startswith("≥") else
                      "The share of the machine's life still left (100 % new, 0 % failed), from a model trained on "
                      "runs of unlike length." if share else None if p else "No RUL prediction for this asset yet."))
    m[5].metric("Model", f"{p.model_name} {p.model_version}" if p else "—",
                help=None if p else "Shown once an edge agent with a promoted model publishes predictions.")
    if p is not None:
        # at the cap the figure is a lower bound: an interval reaching below it would contradict it
        m[4].caption(r.sub if r.value.startswith("≥") else
                     f"{p.coverage:.0%} interval {p.rul_lower:.0f}–{p.rul_upper:.0f} {p.rul_unit}"
                     + (f" · health index {p.health_index:.2f}" if p.health_index is not None else ""))


# ------------------------------------------------------------------------------ trends
def _vibration_trend(info: AssetInfo, vib: str, unit: str, series_keys: tuple[str, ...], n: int, url: str) -> None:
    series = _data.load_feature_series(url, info.asset_id, series_keys, n)
    times, rms = series.present(f"{vib}.rms")
    if not rms:
        st.info(f"No vibration features of {vib} yet.")
        return
    baseline = _data.load_channel_baseline(url, info.asset_id, vib, "acceleration")
    limits = channel_limits(info.config, vib, "acceleration", baseline)
    bad = [(t, x) for t, x, q in zip(series.times, series.values[f"{vib}.rms"], series.quality, strict=True)
           if x is not None and q != "good"]
    st.plotly_chart(_charts.series_figure(times, rms, f"Vibration RMS · {vib}", unit, limits=limits, bad=bad),
                    key="trend-vib")


def _velocity_trend(info: AssetInfo, cfg: AssetConfig | None, vib: str, series_keys: tuple[str, ...], n: int,
                    url: str) -> None:
    series = _data.load_feature_series(url, info.asset_id, series_keys, n)
    times, vel = series.present(f"{vib}.vel_rms_mm_s")
    if not vel:
        st.info(f"The feature windows of {vib} carry no velocity RMS: the edge computes it (and the ISO zone) only "
                "from windows of at least 0.2 s of vibration, longer than the snapshots this agent takes.")
        return
    machine_class = cfg.machine_class if cfg else str(info.config.get("machine_class", "II"))
    st.plotly_chart(_charts.velocity_figure(times, vel, f"Velocity RMS · {vib}",
                                            ISO_10816_ZONES.get(machine_class, ISO_10816_ZONES["II"]), machine_class),
                    key="trend-velocity")


def _temperature_trend(info: AssetInfo, frame: FeatureView | None, n: int, url: str) -> None:
    name = temperature_channel(info.config, frame)
    if name is None:
        st.info("This asset has no temperature channel.")
        return
    points = _data.load_trend(url, info.asset_id, name, n)
    if points:
        baseline = _data.load_channel_baseline(url, info.asset_id, name, "temperature")
        limits = channel_limits(info.config, name, "temperature", baseline)
        st.plotly_chart(_charts.trend_figure(points, "v_mean", f"Temperature · {name}", "°C", limits),
                        key="trend-temp")
        return
    keys = tuple(f"{name}.{k}" for k in TEMPERATURE_LEVEL)
    series = _data.load_feature_series(url, info.asset_id, keys, n)
    found = next(((k, series.present(k)) for k in keys if series.present(k)[1]), None)
    if found is None:
        st.info(f"No temperature of {name} has reported for this asset.")
        return
    baseline = _data.load_channel_baseline(url, info.asset_id, name, "temperature")
    limits = channel_limits(info.config, name, "temperature", baseline)
    st.plotly_chart(_charts.series_figure(*found[1], f"Temperature · {name} (features)", "°C", limits=limits,
                                          from_zero=False), key="trend-temp")


def _health_trend(info: AssetInfo, n: int, url: str) -> None:
    series = _data.load_feature_series(url, info.asset_id, tuple(health_keys()), n)
    v = series.values
    if not any(x is not None for x in v["health.hi"]):
        st.info("No health index yet: the edge agent computes it once the asset's vibration features arrive.")
        return
    st.plotly_chart(_charts.health_figure(series.times, v["health.health_index"], v["health.hi"],
                                          v["health.threshold"], v["health.alarm"]), key="trend-health")
    if any(x is not None and x >= 0.5 for x in v["health.learning"][-1:]):
        st.caption("The edge agent is still learning this asset's healthy baseline: no threshold, no anomaly alarm yet.")


def _envelope_trend(info: AssetInfo, vib: str, n: int, url: str) -> None:
    c = st.columns([3, 3, 1])
    families = c[0].pills("Defect frequencies", list(ENVELOPE_FAMILIES), selection_mode="multi",
                          default=["BPFO", "BPFI"], key="env_trend_families")
    smooth = c[2].selectbox("Median of", [1, 5, 15], index=1, key="env_trend_smooth",
                            format_func=lambda k: "no smoothing" if k == 1 else f"{k} windows",
                            help="A running median over windows: single noisy windows drop out, a defect stays.")
    measure = c[1].segmented_control("Measure", ["h1", "h2", "h3", "snr"], default="h1", key="env_trend_measure",
                                     format_func={"h1": "1x amplitude", "h2": "2x amplitude", "h3": "3x amplitude",
                                                  "snr": "1x over floor"}.__getitem__) or "h1"
    keys = envelope_keys(vib, families or [], measure)
    if not keys:
        st.caption("Pick a defect frequency.")
        return
    series = _data.load_feature_series(url, info.asset_id, tuple(keys.values()), n)
    if not any(x is not None for k in keys.values() for x in series.values[k]):
        st.info(f"The feature windows of {vib} carry no envelope amplitudes (the edge computes them for "
                "acceleration sampled at 2 kHz or more).")
        return
    unit = "ratio" if measure == "snr" else _channel_unit(info, vib)
    what = "over the envelope floor" if measure == "snr" else f"at {measure[1]}x the defect frequency"
    lines = {f: _running_median(series.values[k], smooth) for f, k in keys.items()}
    st.plotly_chart(_charts.envelope_trend_figure(series.times, lines, f"Envelope amplitude {what} · {vib}", unit),
                    key="trend-envelope")
    st.caption("Envelope amplitudes at the bearing defect frequencies of the measured shaft speed, one value per "
               "feature window: an outer-race defect raises BPFO, an inner-race defect BPFI, well before the "
               "broadband RMS moves.")


def _running_median(values: tuple[float | None, ...], n: int) -> list[float | None]:
    if n <= 1:
        return list(values)
    smoothed = pd.Series(values, dtype="float64").rolling(n, min_periods=1).median()
    return [None if pd.isna(x) else float(x) for x in smoothed]


def _channel_unit(info: AssetInfo, channel: str) -> str:
    return next((str(c.get("unit", "")) for c in info.config.get("channels", [])
                 if isinstance(c, dict) and c.get("name") == channel), "")


def _trends(info: AssetInfo, cfg: AssetConfig | None, frame: FeatureView | None, url: str) -> None:
    n = st.select_slider("Windows shown", options=[120, 600, 2400, 7200], value=600, key="trend_n",
                         help="Feature windows (one per asset and tick of the edge agent).")
    vib = vibration_channel(info.config, frame)
    series_keys = (f"{vib[0]}.rms", f"{vib[0]}.vel_rms_mm_s") if vib else ()
    c1, c2 = st.columns(2)
    with c1:
        if vib is None:
            st.info("This asset has no vibration channel.")
        else:
            _vibration_trend(info, vib[0], vib[1], series_keys, n, url)
    with c2:
        if vib is not None:
            _velocity_trend(info, cfg, vib[0], series_keys, n, url)
    c3, c4 = st.columns(2)
    with c3:
        _temperature_trend(info, frame, n, url)
    with c4:
        _health_trend(info, n, url)
    if vib is not None:
        _envelope_trend(info, vib[0], n, url)
    if "alarm_limits" not in info.config:
        st.caption("Limits are relative to each channel's baseline (median of its first stored windows or batches) "
                   "until alarm limits are configured for the asset.")


# ------------------------------------------------------------------------------ spectra
def _requested_at(asset_id: str) -> datetime | None:
    at = st.session_state.get(_REQUESTED, {}).get(asset_id)
    return at if isinstance(at, datetime) else None


def _request_button(info: AssetInfo, vib: str) -> None:
    pending = _requested_at(info.asset_id)
    clicked = st.button("Request raw snapshot", icon=":material/download:", key="snapshot",
                        help="Ask the asset's edge agent to send the raw vibration it holds (its newest batches).")
    if clicked:
        s = ctx.settings()
        user = ctx.current_user()
        # the agent rate-limits each requester: each signed-in user is one (names made into an id)
        requester = re.sub(r"[^A-Za-z0-9_-]", "_", f"dashboard-{user.name if user else 'anonymous'}")[:64]
        try:
            topic = request_raw_snapshot(s.mqtt, info.site or s.mqtt.site, info.asset_id, requester=requester)
        except GenEdgeError as err:
            st.error(f"The snapshot request did not go out: {err}", icon=":material/error:")
            return
        pending = utcnow()
        st.session_state.setdefault(_REQUESTED, {})[info.asset_id] = pending
        st.success(f"Snapshot requested from the edge agent on `{topic}` at {_ui.fmt_time(pending)}. The spectra "
                   "update here when it arrives (usually within seconds).", icon=":material/check_circle:")
    elif pending is not None:
        st.caption(f"Snapshot of {vib} requested at {_ui.fmt_time(pending)}; waiting for it.")


def _snapshot_arrived(info: AssetInfo, snap: Snapshot | None) -> None:
    """Stop waiting once the requested snapshot is in (or too long has passed), with a full rerun."""
    requested = _requested_at(info.asset_id)
    if requested is None:
        return
    if snap is not None and snap.received_at >= requested:
        st.session_state[_REQUESTED].pop(info.asset_id, None)
        _ui.flash(f"Raw snapshot of {info.asset_id} received")
        st.rerun()
    elif utcnow() - requested > SNAPSHOT_WAIT:
        st.session_state[_REQUESTED].pop(info.asset_id, None)
        _ui.flash(f"No snapshot of {info.asset_id} arrived within {SNAPSHOT_WAIT.seconds} s: is its edge agent "
                  "online? (See Data quality.)")
        st.rerun()


def _shaft_hz(overview: AssetOverview | None, cfg: AssetConfig | None, vib: str) -> tuple[float | None, str]:
    speed = next((c for c in (overview.readings.values() if overview else ()) if c.quantity == "speed"), None)
    if speed is not None and speed.v_mean > 0:
        return speed.v_mean / 60.0, "measured"
    measured = overview.features.features.get(vib, {}).get("shaft_hz") if overview and overview.features else None
    if measured:
        return float(measured), "edge"
    return (cfg.shaft_hz, "rated") if cfg else (None, "")


def _spectrum_body(info: AssetInfo, cfg: AssetConfig | None, overview: AssetOverview | None, vib: str,
                   unit: str, url: str) -> None:
    snap = _data.load_snapshot(url, info.asset_id, vib)
    _snapshot_arrived(info, snap)
    if snap is None:
        st.info(f"No raw vibration snapshot of {info.asset_id} yet. The edge agent sends features, not raw "
                "vibration; it sends a raw snapshot when an anomaly starts, or when you request one.",
                icon=":material/graphic_eq:")
        return
    batches = snap.batches
    fs = batches[0].sample_rate_hz
    same = [w for w in batches if w.sample_rate_hz == fs and w.values.size == batches[0].values.size]
    controls = st.columns([1, 2, 1, 1])
    n_avg = (controls[0].select_slider("Batches averaged", options=list(range(1, len(same) + 1)), value=len(same),
                                       key="spec_avg") if len(same) > 1 else 1)
    lo, hi = default_band(fs)
    band = controls[1].slider("Envelope band (Hz)", 0.0, fs / 2, (float(round(lo)), float(round(hi))),
                              step=100.0, format="%.0f", key="env_band")
    fmax_env = controls[2].select_slider("Envelope f max (Hz)", options=[250, 500, 1000, 2000], value=1000,
                                         key="env_fmax")
    fmax_raw = controls[3].select_slider("Spectrum f max (Hz)", options=sorted({500, 1000, 2000, 5000, int(fs / 2)}),
                                         value=int(fs / 2), key="spec_fmax")
    used = same[:n_avg]
    batches_used = np.stack([w.values for w in used])
    spec = amplitude_spectrum(batches_used, fs)
    try:
        env = envelope_spectrum(batches_used, fs, (band[0], band[1]))
    except ValueError as err:
        st.warning(f"Envelope band: {err}")
        env = None
    families = st.pills("Markers", ["shaft", "BPFO", "BPFI", "BSF", "FTF"], selection_mode="multi",
                        default=["BPFO", "BPFI", "BSF", "FTF"], key="marker_families")
    shaft_hz, shaft_source = _shaft_hz(overview, cfg, vib)
    markers = [m for m in (defect_markers(cfg.bearing, shaft_hz) if cfg is not None and shaft_hz else [])
               if m[2] in (families or [])]
    w0 = batches[0]
    st.caption(f"Raw snapshot received {_ui.fmt_time(snap.received_at)} ({_ui.ago(snap.received_at)}) · "
               f"{len(batches)} batch(es) from {_ui.fmt_time(snap.oldest_start)} to {_ui.fmt_time(snap.newest_start)} · "
               f"{w0.values.size} samples at {fs:g} Hz ({w0.values.size / fs * 1000:.0f} ms, resolution "
               f"{fs / w0.values.size:.1f} Hz) · averaged over {len(used)} · quality {w0.quality}"
               + (f" · shaft {shaft_hz * 60:.0f} rpm ({shaft_source})" if shaft_hz else ""))
    if cfg is None:
        st.caption("No bearing geometry in the asset config: defect frequency markers are not shown.")
    c1, c2 = st.columns(2)
    with c1:
        # Defect lines crowd a wide spectrum; mark them once it is zoomed in.
        raw_marks = markers if fmax_raw <= 2000 else []
        st.plotly_chart(_charts.spectrum_figure(spec[0], spec[1], f"Spectrum · {vib}", unit, markers=raw_marks,
                                                fmax=float(fmax_raw)), key="spectrum")
    with c2:
        if env is not None:
            title = f"Envelope spectrum · {band[0]:.0f}–{band[1]:.0f} Hz"
            st.plotly_chart(_charts.spectrum_figure(env[0], env[1], title, unit, markers=markers,
                                                    fmax=float(fmax_env), colour=_charts.COLOURS["envelope"]),
                            key="envelope")
    if cfg is not None and shaft_hz:
        f = cfg.bearing.defect_frequencies(shaft_hz)
        st.caption(f"{cfg.bearing.designation} at {shaft_hz:.2f} Hz: BPFO {f.bpfo:.1f} Hz · BPFI {f.bpfi:.1f} Hz · "
                   f"BSF {f.bsf:.1f} Hz · FTF {f.ftf:.1f} Hz")


def _spectra(info: AssetInfo, cfg: AssetConfig | None, overview: AssetOverview | None, url: str) -> None:
    vib = vibration_channel(info.config, overview.features if overview else None)
    if vib is None:
        st.info("This asset has no vibration channel.")
        return
    _request_button(info, vib[0])
    if _requested_at(info.asset_id) is not None:
        # Poll for the snapshot while one is on its way; a full rerun ends the polling.
        st.fragment(_spectrum_body, run_every=2.0)(info, cfg, overview, vib[0], vib[1] or _channel_unit(info, vib[0]), url)
    else:
        _spectrum_body(info, cfg, overview, vib[0], vib[1] or _channel_unit(info, vib[0]), url)


# ------------------------------------------------------------------------------ other tabs
def _rul(info: AssetInfo, url: str, decision: AssetDecision | None) -> None:
    preds = _data.load_predictions(url, info.asset_id)
    if not preds:
        st.info("No RUL predictions for this asset yet. They appear here once an edge agent with a promoted "
                "model publishes prediction messages for it.")
        return
    last = preds[-1]
    st.plotly_chart(_charts.rul_figure(preds), key="rul")
    latest = rul_line(last, healthy=decision is not None and decision.healthy)
    st.caption(f"Model {last.model_name} {last.model_version} · latest {latest} at {_ui.fmt_time(last.at)}"
               + (f" · health index {last.health_index:.2f}" if last.health_index is not None else ""))
    versions = sorted({(p.model_name, p.model_version) for p in preds})
    if len(versions) > 1:
        st.caption("Model versions in this history: " + ", ".join(f"{n} {v}" for n, v in versions))


def _features(info: AssetInfo, frame: FeatureView | None, url: str) -> None:
    if frame is None:
        st.info("No edge features for this asset yet. They appear once the edge agent publishes feature frames.")
        return
    rows = [{"channel": ch, "feature": k, "value": v} for ch, vals in frame.features.items() for k, v in vals.items()]
    st.caption(f"Newest window {_ui.fmt_time(frame.window_start)}, {frame.window_s:g} s, quality {frame.quality}, "
               f"from {frame.publisher}")
    st.dataframe(pd.DataFrame(rows), hide_index=True, key="features_table")
    names = sorted({f"{r['channel']}.{r['feature']}" for r in rows})
    pick = st.selectbox("Trend of", names, key="feature_pick")
    resolution = st.radio("Resolution", list(_RESOLUTIONS), horizontal=True, key="feature_resolution",
                          help="Windows: the newest 2,400 edge windows. Hourly and daily: the aggregates "
                               "`genedge ingest maintain` keeps for good, after the raw windows expire.")
    if not pick:
        return
    if resolution == "windows":
        times, values = _data.load_feature_series(url, info.asset_id, (pick,), 2400).present(pick)
        st.plotly_chart(_charts.feature_trend_figure(times, values, pick), key="feature_trend")
        return
    points = _data.load_feature_history(url, info.asset_id, pick, _RESOLUTIONS[resolution])
    if not points:
        st.info(f"No {resolution} aggregates of {pick} yet. `genedge ingest maintain` builds them from "
                "complete hours and days; run it from a timer (see the deployment guide).")
        return
    st.plotly_chart(_charts.feature_history_figure([p.bucket_start for p in points], [p.mean for p in points],
                                                   [p.min for p in points], [p.max for p in points],
                                                   f"{pick} · {resolution}"), key="feature_history")
    st.caption(f"{len(points)} {resolution} buckets from {_ui.fmt_time(points[0].bucket_start)} to "
               f"{_ui.fmt_time(points[-1].bucket_start)}; {sum(p.n for p in points):,} windows in all")


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
    _overview = next((o for o in _data.load_overview(_url) if o.asset.asset_id == _info.asset_id), None)
    _frame = _overview.features if _overview else None
    _vitals = vitals(_info.config, _frame, _overview.temperature if _overview else None)
    _decision = _data.load_decisions(_url, (_info.asset_id,), ctx.settings().store.time_scale).get(_info.asset_id)
    # The header is one element however many banners it holds, so the tabs below keep their place in the
    # page, and with it the tab the operator chose, when a rerun adds or removes a banner.
    with st.container():
        _header(_info, _cfg, _overview, _vitals, _decision)
    t_trend, t_spec, t_rul, t_whatif, t_feat, t_events = st.tabs(
        ["Trends", "Spectrum", "RUL", "What-if", "Features", "Alarms & work orders"])
    with t_trend:
        _trends(_info, _cfg, _frame, _url)
    with t_spec:
        _spectra(_info, _cfg, _overview, _url)
    with t_rul:
        _rul(_info, _url, _decision)
    with t_whatif:
        show_whatif(_url, _info.asset_id)
    with t_feat:
        _features(_info, _frame, _url)
    with t_events:
        _events(_info, _url)
