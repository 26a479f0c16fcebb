"""Evidence for one asset: gathered from the store, or built from the plant simulator.

Both sources end in the same typed :class:`~prescribe.schema.Evidence`; edge feature windows
(``features[channel][name]``, as ``core.signal.FeaturePipeline`` computes them and the
store keeps them) are read by one function, :func:`vibration_and_temperature`, whichever
source they come from. :func:`prescribe.schema.evidence_items` turns the evidence into citable
items with stable ids.
"""

from __future__ import annotations

import math
import zlib
from collections.abc import Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any

import numpy as np
from scipy.special import stdtrit

from core.assets import AssetConfig, Quantity
from core.errors import GenEdgeError
from core.iso import ZONES
from core.maintenance import DEFECT_FAULT, PEAK_SNR, envelope_peaks, peak_fault
from core.signal import FeaturePipeline
from core.sim import AssetSimulator
from ingest.store import queries
from prescribe.schema import (
    AlarmFact,
    AssetFacts,
    Evidence,
    FaultCall,
    LifeShare,
    PastWorkOrder,
    PeakMatch,
    RulEstimate,
    TemperatureTrend,
    ZoneState,
)
from prescribe.workorders import training_labels

__all__ = [
    "DEFECT_FAULT",
    "PEAK_SNR",
    "FeatureWindow",
    "asset_facts",
    "asset_from_info",
    "diagnose_peaks",
    "from_simulator",
    "from_store",
    "rul_text",
    "running_share",
    "share_to_hours",
    "vibration_and_temperature",
]


#: One feature window: (window start, channel -> feature name -> value).
FeatureWindow = tuple[datetime, Mapping[str, Mapping[str, float]]]


# ---------------------------------------------------------------------------- features
def _vibration_channel(asset: AssetConfig | None, windows: Sequence[FeatureWindow]) -> str | None:
    names = [c.name for c in asset.channels if c.quantity == Quantity.ACCELERATION] if asset else []
    for w in windows[::-1]:
        for ch in [*names, *w[1]]:
            if "iso_zone" in w[1].get(ch, {}) or "env_bpfo_snr" in w[1].get(ch, {}):
                return ch
    return None


def _temperature_channel(asset: AssetConfig | None, windows: Sequence[FeatureWindow]) -> str | None:
    names = [c.name for c in asset.channels if c.quantity == Quantity.TEMPERATURE] if asset else []
    for w in windows[::-1]:
        for ch in names or [c for c in w[1] if c.startswith("temp")]:
            if "mean" in w[1].get(ch, {}):
                return ch
    return None


def _peaks(feats: Mapping[str, float], threshold: float) -> tuple[PeakMatch, ...]:
    return tuple(PeakMatch(defect=p.defect, frequency_hz=p.frequency_hz, snr=p.snr, harmonics=p.harmonics)
                 for p in envelope_peaks(feats, threshold) if p.frequency_hz is not None)


#: Envelope peaks and the ISO zone are judged on the newest this many feature windows ...
CONFIRM_WINDOWS = 3
#: ... and must show in at least this many of them.
CONFIRM_IN = 2


def _confirming(windows: Sequence[Mapping[str, float]], key: str) -> Mapping[str, float]:
    """Of the last :data:`CONFIRM_WINDOWS` of ``windows``, the one whose ``key`` is the
    :data:`CONFIRM_IN`-th largest: what that many windows reach (the only window, if only one)."""
    recent = sorted(windows[-CONFIRM_WINDOWS:], key=lambda f: _finite(f.get(key, 0.0)), reverse=True)
    return recent[min(CONFIRM_IN, len(recent)) - 1]


def confirmed_envelope(envelopes: Sequence[Mapping[str, float]]) -> dict[str, float] | None:
    """One channel's envelope features as the peaks that persist show them (windows oldest first).

    A healthy bearing's envelope spectrum has four defect frequencies and their harmonics to stand
    out by chance, and now and then one window's does (above 6 times the floor on the demo's
    healthy machines), which would flip a healthy asset to ``watch`` for one window. So each defect
    frequency takes the features of the window where it is the :data:`CONFIRM_IN`-th strongest
    of the newest :data:`CONFIRM_WINDOWS`: it is a peak only when that many windows show it, at the
    weaker one's SNR. ``None`` with fewer than :data:`CONFIRM_IN` windows.
    """
    if len(envelopes) < CONFIRM_IN:
        return None
    prefixes = tuple(f"env_{defect}_" for defect in DEFECT_FAULT)
    out = {k: v for k, v in envelopes[-1].items() if not k.startswith(prefixes)}
    for prefix in prefixes:
        out.update((k, v) for k, v in _confirming(envelopes, f"{prefix}snr").items() if k.startswith(prefix))
    return out


def _finite(x: float) -> float:
    x = float(x)
    return x if math.isfinite(x) else 0.0


def vibration_and_temperature(
    windows: Sequence[FeatureWindow], *, asset: AssetConfig | None = None, machine_class: str = "II",
    peak_snr: float = PEAK_SNR, time_scale: float = 1.0,
) -> tuple[ZoneState | None, tuple[PeakMatch, ...], TemperatureTrend | None]:
    """ISO zone and its trend, envelope peaks and the temperature trend from edge feature windows.

    Args:
        windows: feature windows, oldest first.
        asset: the asset (picks the vibration and temperature channels; gives bearing orders).
        machine_class: ISO machine class when no asset is given.
        peak_snr: envelope SNR from which a defect frequency counts as a peak (in
            :data:`CONFIRM_IN` of the newest :data:`CONFIRM_WINDOWS` windows: :func:`confirmed_envelope`).
        time_scale: plant hours per hour of the windows' timestamps (1 for a real plant; the
            demo's accelerated simulator clock, e.g. 3600, makes a wall-clock second an hour).
    """
    zone = temp = None
    peaks: tuple[PeakMatch, ...] = ()
    if not windows:
        return None, (), None
    vib = _vibration_channel(asset, windows)
    if vib is not None:
        series = [(t, f[vib]) for t, f in windows if vib in f and "vel_rms_mm_s" in f[vib] and "iso_zone" in f[vib]]
        if series:
            t0, t1 = series[0][0], series[-1][0]
            has_prev = t1 > t0
            # the zone follows the velocity: the level CONFIRM_IN of the newest windows reach. The
            # trend compares it with the level the oldest windows before those reach the same way
            # (so one noisy window at either end of a long look-back makes no trend), or with the
            # oldest window while there are no others
            frames = [f for _, f in series]
            level = _confirming(frames, "vel_rms_mm_s")
            older = frames[:-CONFIRM_WINDOWS] or frames[:1]
            first = _confirming(older[:CONFIRM_WINDOWS], "vel_rms_mm_s")
            zone = ZoneState(
                zone=int(level["iso_zone"]), velocity_mm_s=float(level["vel_rms_mm_s"]),
                previous_zone=int(first["iso_zone"]) if has_prev else None,
                previous_velocity_mm_s=float(first["vel_rms_mm_s"]) if has_prev else None,
                lookback_h=(t1 - t0).total_seconds() / 3600.0 * time_scale if has_prev else None,
                machine_class=asset.machine_class if asset else machine_class)
        feats = confirmed_envelope([f[vib] for _, f in windows if vib in f and "env_bpfo_snr" in f[vib]])
        if feats is not None:
            if asset is not None:
                shaft = float(feats.get("shaft_hz", asset.shaft_hz)) or asset.shaft_hz
                for name, hz in asset.bearing.defect_frequencies(shaft).as_dict().items():
                    feats.setdefault(f"env_{name}_hz", hz)
            peaks = _peaks(feats, peak_snr)
    tch = _temperature_channel(asset, windows)
    if tch is not None:
        pts = [(t.timestamp() / 3600.0 * time_scale, float(f[tch]["mean"])) for t, f in windows
               if tch in f and "mean" in f[tch]]
        if pts:
            hours, values = np.array(pts).T
            temp = temperature_trend(hours, values)
    return zone, peaks, temp


def temperature_trend(hours: np.ndarray, values: np.ndarray) -> TemperatureTrend:
    """The latest temperature and its least-squares slope over ``hours``, with the slope's one-sided
    95 % lower confidence bound (Student t on the residual scatter).

    A trend needs three readings at distinct times: a line through two has no scatter to judge its
    noise by, and two readings an hour apart differ by the sensor noise alone, which can read as
    a rise of 1 K/h or more.
    """
    latest = float(values[-1])
    x = hours - hours.mean()
    sxx = float(x @ x)
    if len(hours) < 3 or sxx <= 0.0:
        return TemperatureTrend(latest_c=latest)
    slope = float(x @ (values - values.mean())) / sxx
    resid = values - values.mean() - slope * x
    se = math.sqrt(float(resid @ resid) / (len(hours) - 2) / sxx)
    low = slope - float(stdtrit(len(hours) - 2, 0.95)) * se  # Student t quantile
    return TemperatureTrend(latest_c=latest, slope_c_per_h=slope, lookback_h=float(np.ptp(hours)), slope_low_c_per_h=low)


def diagnose_peaks(peaks: Sequence[PeakMatch]) -> FaultCall | None:
    """A bearing fault call from envelope peaks alone (until a fault classifier publishes one).

    The strongest defect frequency names the fault, except that BSF with FTF sidebands is a
    rolling element defect; confidence grows with the peak's SNR and harmonics.
    """
    if not peaks:
        return None
    best = max(peaks, key=lambda p: p.snr)
    kind = peak_fault((p.defect for p in peaks), best.defect)
    confidence = min(0.95, 0.45 + 0.012 * best.snr + 0.05 * (best.harmonics - 1))
    return FaultCall(kind=kind, confidence=round(confidence, 3), source="envelope peaks")


# ----------------------------------------------------------------------------- asset facts
def asset_facts(asset: AssetConfig) -> AssetFacts:
    """The prescriber's view of a configured asset."""
    return AssetFacts(asset_id=asset.asset_id, name=asset.name[:200], kind=asset.kind.value,
                      criticality=asset.criticality, machine_class=asset.machine_class,
                      bearing=asset.bearing.designation[:64], spare_parts=tuple(s[:120] for s in asset.spare_parts),
                      notes=asset.notes[:4000])


# ------------------------------------------------------------------------------ store
def from_store(store: Any, asset_id: str, *, now: datetime | None = None, asset: AssetConfig | None = None,
               lookback_h: float = 48.0, max_alarms: int = 5, max_work_orders: int = 3,
               time_scale: float | None = None) -> Evidence:
    """Gather an asset's evidence from the store.

    Args:
        store: an ``ingest.store.Store``.
        asset_id: the asset.
        now: the time the evidence is judged at (default now).
        asset: its configuration; default the one registered in the store.
        lookback_h: feature windows newer than ``now - lookback_h`` make the trends.
        max_alarms: the newest open alarms (and alarms cleared within the look-back) kept.
        max_work_orders: the newest past work orders kept.
        time_scale: plant hours per wall-clock hour of the stored timestamps (trends and look-back
            are in plant hours); ``None``: what the store records (:func:`ingest.store.queries.time_scale`).

    Raises:
        GenEdgeError: the asset is unknown (``StoreError`` from the store passes through).
    """
    now = now or datetime.now(UTC)
    info = queries.asset(store, asset_id)
    if asset is None:
        if info is None:
            known = [a.asset_id for a in queries.assets(store)][:20]
            raise GenEdgeError(f"asset {asset_id!r} is not registered in the store; known: {known}")
        asset = asset_from_info(info)
    facts = asset_facts(asset)
    time_scale = queries.time_scale(store, time_scale)
    if not (time_scale > 0 and np.isfinite(time_scale)):
        raise ValueError(f"time_scale must be a finite number > 0, got {time_scale!r}")
    since = now - timedelta(hours=lookback_h / time_scale)

    windows: list[FeatureWindow] = [(f.window_start, f.features) for f in queries.features(store, asset_id, limit=500)
                                    if since <= f.window_start <= now and f.quality == "good"]
    preds = [p for p in queries.predictions(store, asset_id, limit=20) if p.at <= now]
    rul = life = None
    if preds:
        p = preds[-1]
        model = f"{p.model_name}:{p.model_version}"[:160]
        if p.rul_unit == "h":
            rul = RulEstimate(median_h=p.rul_median, lower_h=p.rul_lower, upper_h=p.rul_upper, coverage=p.coverage,
                              at=p.at, model=model, health_index=p.health_index, cap_h=p.rul_cap)
        elif p.rul_unit == "%":
            life, rul = _life_share(store, asset, p, model, _vibration_channel(asset, windows), time_scale)
    zone, peaks, temp = vibration_and_temperature(windows, asset=asset, time_scale=time_scale)

    alarms = [a for a in queries.alarms(store, asset_id=asset_id, limit=50)
              if a.raised_at <= now and (a.is_open or (a.cleared_at is not None and a.cleared_at >= since))]
    alarm_facts = tuple(AlarmFact(id=a.id, kind=a.kind, severity=a.severity, state=a.state, raised_at=a.raised_at,
                                  message=a.message[:4000]) for a in alarms[:max_alarms])
    wos = [w for w in queries.work_orders(store, asset_id=asset_id, limit=20) if w.created_at <= now]
    past = tuple(PastWorkOrder(id=w.id, title=w.title[:200], status=w.status, created_at=w.created_at,
                               outcome=(w.outcome or None) and w.outcome[:4000]) for w in wos[:max_work_orders])
    return Evidence(asset=facts, at=now, source="store", rul=rul, life_share=life, fault=diagnose_peaks(peaks), zone=zone,
                    peaks=peaks, alarms=alarm_facts, temperature=temp, work_orders=past, time_scale=time_scale)


#: A share of life left above this reads as "as new": the hours it implies are bounded by this share.
_MAX_SHARE = 99.0


def share_to_hours(pct: float, in_service_h: float) -> float:
    """Hours left from the share of life left and the hours the part has run.

    The share is of the part's running time (the FEMTO model's target is the remaining share of
    the run), so a part that has run ``t`` hours with ``p`` % left has a life of
    ``t / (1 - p/100)`` and ``t * p / (100 - p)`` hours left. ``t`` must count running hours: for a
    machine that stood idle part of the time calendar hours are too long and the hours come out
    late (:func:`from_store` scales them by :func:`running_share`). Shares above 99 % count as
    99 %. A ``t`` that is too short errs early.
    """
    p = min(max(pct, 0.0), _MAX_SHARE)
    return in_service_h * p / (100.0 - p)


def rul_text(ev: Evidence, *, coverage: bool = False, when_none: str = "no RUL prediction yet") -> str:
    """The remaining life in words, one phrasing for summaries and action reasons.

    ``RUL 120-300 h`` (with ``(90%)`` when ``coverage``), then ``, life left 40 %`` when the model
    predicts a share; a share without hours says what is missing to turn it into hours.
    """
    share = ev.life_share
    if ev.rul is None:
        if share is not None:
            return f"life left {share.median_pct:.0f} %, hours in service unknown"
        return when_none
    if ev.rul.at_cap and ev.rul.cap_h is not None:
        # a median at the model's cap says "at least this long", never a finite time of failure
        text = f"RUL >= {ev.rul.cap_h:.0f} h (model cap)"
    else:
        text = f"RUL {ev.rul.lower_h:.0f}-{ev.rul.upper_h:.0f} h"
        text += f" ({ev.rul.coverage:.0%})" if coverage else ""
    return text + (f", life left {share.median_pct:.0f} %" if share is not None else "")


def _in_service_since(store: Any, asset: AssetConfig, at: datetime) -> tuple[datetime | None, str]:
    """When the part was last fitted or renewed: the newest of the asset's ``in_service_since``
    and the completion of a work order that confirmed a fault (its repair renewed the part)."""
    found: list[tuple[datetime, str]] = []
    if asset.in_service_since is not None and asset.in_service_since <= at:
        found.append((asset.in_service_since, "config"))
    for label in training_labels(store, asset_id=asset.asset_id):
        if label.fault_confirmed and label.completed_at:
            done = datetime.fromisoformat(label.completed_at)
            done = done if done.tzinfo is not None else done.replace(tzinfo=UTC)
            if done <= at:
                found.append((done, "work_order"))
    if not found:
        return None, ""
    return max(found, key=lambda f: f[0])


#: Fewest stored windows with a vibration level from which their running share scales the hours.
MIN_RUNNING_WINDOWS = 12
#: Most stored windows read for the running share (the newest since the part went in service).
_MAX_RUNNING_WINDOWS = 20_000


def running_share(store: Any, asset: AssetConfig, channel: str | None, since: datetime,
                  at: datetime) -> tuple[float | None, int]:
    """Share of the stored feature windows between ``since`` and ``at`` in which the machine ran.

    A window counts as running when the broadband velocity RMS of ``channel`` is at or above the
    asset's ``standstill_mm_s``. Returns ``(share, windows counted)``; the share is ``None`` when
    fewer than :data:`MIN_RUNNING_WINDOWS` windows carry the level (nothing is known about stops)
    or show the machine running (a machine that stood still all along gives no hours to scale).
    """
    if channel is None:
        return None, 0
    key = f"{channel}.vel_rms_mm_s"
    series = queries.feature_series(store, asset.asset_id, [key], since=since, limit=_MAX_RUNNING_WINDOWS)
    levels = [v for t, q, v in zip(series.times, series.quality, series.values[key], strict=True)
              if v is not None and q == "good" and t <= at]
    running = sum(v >= asset.standstill_mm_s for v in levels)
    if running < MIN_RUNNING_WINDOWS:
        return None, len(levels)
    return running / len(levels), len(levels)


def _life_share(store: Any, asset: AssetConfig, p: Any, model: str,
                channel: str | None, time_scale: float = 1.0) -> tuple[LifeShare, RulEstimate | None]:
    since, source = _in_service_since(store, asset, p.at)
    calendar_h = run_h = None if since is None else (p.at - since).total_seconds() / 3600.0 * time_scale
    share, n = (None, 0) if since is None else running_share(store, asset, channel, since, p.at)
    if run_h is not None and share is not None:
        run_h *= share
    life = LifeShare(median_pct=p.rul_median, lower_pct=p.rul_lower, upper_pct=p.rul_upper, coverage=p.coverage,
                     at=p.at, model=model, since=since, since_source=source, in_service_h=run_h,
                     calendar_h=calendar_h, running_share=share, running_windows=n)
    if run_h is None:
        return life, None
    rul = RulEstimate(median_h=share_to_hours(p.rul_median, run_h), lower_h=share_to_hours(p.rul_lower, run_h),
                      upper_h=share_to_hours(p.rul_upper, run_h), coverage=p.coverage, at=p.at, model=model,
                      health_index=p.health_index, basis="share_of_life")
    return life, rul


def asset_from_info(info: Any) -> AssetConfig:
    """The configuration an asset was registered with in the store (its columns when that is partial)."""
    config = dict(info.config or {})
    if config:
        try:
            return AssetConfig.model_validate(config)
        except ValueError:
            pass  # an older or partial config: fall back to the columns
    return AssetConfig(asset_id=info.asset_id, name=info.name or "", criticality=int(info.criticality or 2))


# -------------------------------------------------------------------------- simulator
#: Wall-clock time the simulator's hour zero maps to in scenarios (any fixed instant works).
SIM_EPOCH = datetime(2025, 1, 6, 6, 0, tzinfo=UTC)


def from_simulator(
    asset: AssetConfig,
    fault: Any,
    t_hours: float,
    *,
    seed: int = 0,
    epoch: datetime = SIM_EPOCH,
    lookback_h: float = 48.0,
    n_windows: int = 3,
    rul_rel_width: float = 0.3,
    rul_bias: float = 0.0,
    rul_noise: float = 0.1,
    rul_cap_h: float | None = None,
    fault_call: FaultCall | None = None,
    alarms: Sequence[AlarmFact] | None = None,
    work_orders: Sequence[PastWorkOrder] = (),
    include: frozenset[str] = frozenset({"rul", "fault", "features", "alarms"}),
) -> Evidence:
    """Evidence of a simulated asset at simulated hour ``t_hours``, for scenarios and tests.

    Vibration windows are synthesised by :class:`core.sim.AssetSimulator` and analysed by the
    edge feature pipeline (velocity RMS, ISO zone, envelope spectrum), exactly as on a gateway.
    Until RUL models and a fault classifier publish, the RUL prediction and the fault call come
    from the simulator's ground truth: the RUL median is the true RUL times a seeded log-normal
    error (``rul_bias``, ``rul_noise``) with a relative interval half-width ``rul_rel_width``;
    the fault class is the true one with a confidence growing with damage.

    Args:
        asset: the machine.
        fault: its injected :class:`core.sim.FaultSpec`.
        t_hours: simulated time of the evidence.
        seed: seed of the simulator and the prediction error.
        epoch: wall-clock time of simulated hour zero.
        lookback_h: span of the feature windows (trends).
        n_windows: feature windows in the span (the last at ``t_hours``).
        rul_rel_width: half-width of the RUL interval relative to its median.
        rul_bias: mean of the log error of the RUL median (negative: pessimistic).
        rul_noise: standard deviation of the log error of the RUL median.
        rul_cap_h: the RUL model's training cap; when given, a prediction is made for a healthy
            asset too, as a deployed model does, and medians beyond the cap sit at the cap.
        fault_call: a fault call to use instead of the ground truth (e.g. a wrong one).
        alarms: alarms to use instead of the ones derived from zone, temperature and RUL.
        work_orders: past work orders of the asset.
        include: which sources are present: ``rul``, ``fault``, ``features``, ``alarms``.
    """
    if n_windows < 1:
        raise ValueError(f"n_windows must be >= 1, got {n_windows}")
    sim = AssetSimulator(asset, fault, seed=seed)
    state = sim.state(t_hours)
    now = epoch + timedelta(hours=t_hours)
    rng = np.random.default_rng([seed, zlib.crc32(f"{asset.asset_id}/{t_hours:.3f}".encode())])

    windows: list[FeatureWindow] = []
    if "features" in include:
        pipe = FeaturePipeline(asset)
        vib = next((c for c in asset.channels if c.quantity == Quantity.ACCELERATION), None)
        temp = next((c for c in asset.channels if c.quantity == Quantity.TEMPERATURE), None)
        times = np.linspace(max(t_hours - lookback_h, 0.0), t_hours, n_windows) if n_windows > 1 else np.array([t_hours])
        for t in np.unique(times):
            feats: dict[str, dict[str, float]] = {}
            st = sim.state(float(t))
            if vib is not None:
                n = int(min(vib.sample_rate_hz, 25600))
                x = sim.sample(vib, float(t), n).astype(np.float64)
                feats[vib.name] = pipe.vibration(vib, x, st.shaft_speed_rpm / 60.0)
            if temp is not None:
                feats[temp.name] = {"mean": st.temperature_c}
            windows.append((epoch + timedelta(hours=float(t)), feats))
    zone, peaks, temp_trend = vibration_and_temperature(windows, asset=asset)

    rul = None
    faulty = state.rul_hours is not None and state.fault_active
    if "rul" in include and (faulty or rul_cap_h is not None):
        true_h = state.rul_hours if faulty and state.rul_hours is not None else math.inf
        median = max(true_h * math.exp(rng.normal(rul_bias, rul_noise)), 0.0)
        if rul_cap_h is not None:
            median = min(median, rul_cap_h)
        rul = RulEstimate(median_h=median, lower_h=median * max(1 - rul_rel_width, 0.0),
                          upper_h=median * (1 + rul_rel_width), coverage=0.9, at=now,
                          model="simulator-truth", health_index=round(state.health_index, 4), cap_h=rul_cap_h)
    call = fault_call
    if call is None and "fault" in include:
        if state.fault_active:
            confidence = min(0.97, 0.55 + 0.6 * state.damage + float(rng.uniform(-0.05, 0.05)))
            call = FaultCall(kind=state.fault_kind, confidence=round(max(confidence, 0.0), 3),
                             source="simulator ground truth")
        else:
            call = FaultCall(kind="none", confidence=0.9, source="simulator ground truth")
    if alarms is None:
        alarms = _derived_alarms(now, zone, temp_trend, rul) if "alarms" in include else ()
    return Evidence(asset=asset_facts(asset), at=now, source="simulator", rul=rul, fault=call, zone=zone, peaks=peaks,
                    alarms=tuple(alarms), temperature=temp_trend, work_orders=tuple(work_orders))


def _derived_alarms(now: datetime, zone: ZoneState | None, temp: TemperatureTrend | None,
                    rul: RulEstimate | None) -> list[AlarmFact]:
    """The alarms the demo's alarm rules would have raised."""
    out: list[AlarmFact] = []

    def add(kind: str, severity: str, message: str) -> None:
        out.append(AlarmFact(id=len(out) + 1, kind=kind, severity=severity, state="active",
                             raised_at=now - timedelta(hours=1), message=message))

    if zone is not None and zone.zone >= 2:
        add("vibration_high", "high" if zone.zone == 3 else "medium",
            f"velocity {zone.velocity_mm_s:.1f} mm/s in zone {ZONES[zone.zone]}")
    if temp is not None and temp.latest_c >= 70.0:
        add("temperature_high", "high", f"bearing at {temp.latest_c:.0f} degC")
    if rul is not None and rul.lower_h < 72.0:
        add("rul_low", "high", f"RUL lower bound {rul.lower_h:.0f} h")
    return out
