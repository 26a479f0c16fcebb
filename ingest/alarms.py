"""Alarm evaluation on stored feature frames and RUL predictions, in the spirit of ISA-18.2.

Alarm kinds, one open alarm per asset and kind:

- ``vibration_high`` / ``temperature_high``: a channel's vibration RMS or temperature above its
  limit (:mod:`core.alarm_limits`, the limits the dashboard draws, on the same baseline:
  ``queries.channel_baseline``). Alert level: medium (low on a criticality-1 asset); alarm
  level: high. Relative limits arm once the channel's baseline is complete.
- ``iso_zone_C`` (medium) / ``iso_zone_D`` (critical): the ISO 20816 zone the edge computed.
- ``health_anomaly`` (high): the edge's adaptive anomaly flag. Its priority stays high: the time
  to failure is carried by ``rul_low``, so one cause does not escalate two alarms.
- ``rul_low``: the RUL lower bound (hours) in the decision policy's time bands
  (:func:`core.maintenance.time_state`): planning horizon -> medium, urgent -> high, safety margin
  -> critical; none at the model's cap or beyond the horizon. It escalates as the bound shrinks,
  and an escalation returns the alarm to active, unacknowledged (:func:`actions.escalate_alarm`).

Against chattering, a condition must hold for an on-delay (consecutive frames, and seconds of
data time) before it raises or escalates, and an alarm clears only after an off-delay, and for
an analog value only once it is below its lowest limit minus a deadband
(:class:`core.settings.AlarmSettings`). A priority never drops while the alarm stands: it
clears when its condition returns to normal.

Each alarm's text says what was measured against which limit, the diagnosis when the frame's
envelope peaks point to a bearing defect, and the recommended action, in at most
:data:`MAX_MESSAGE` printable characters.
"""

from __future__ import annotations

import logging
import math
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from pydantic import ValidationError

from core.alarm_limits import (
    RMS_KEY,
    TEMPERATURE_KEYS,
    TEMPERATURE_QUANTITIES,
    VIBRATION_QUANTITIES,
    Limit,
    back_to_normal,
    channel_limits,
    channel_quantity,
    configured_limits,
    exceeded,
    level_severity,
)
from core.assets import BearingGeometry
from core.errors import StoreError
from core.maintenance import ALARM_SEVERITY_OF_STATE, DEFECT_FAULT, DeadlinePolicy, envelope_peaks, peak_fault, time_state
from core.settings import AlarmSettings
from core.wire import FeatureFrame, Message, Prediction, printable
from ingest.store import Store, actions, queries
from ingest.store.queries import AlarmView, AssetInfo, Baseline

__all__ = ["MAX_MESSAGE", "AlarmEvaluator", "Condition", "Diagnosis", "diagnose"]

log = logging.getLogger(__name__)

#: Longest alarm text, in characters.
MAX_MESSAGE = 500
_RANK = {s: i for i, s in enumerate(actions.SEVERITIES)}
_HEALTH = "health"
#: Words for each bearing fault and what to do about it.
_FAULT_WORDS = {"outer_race": "Bearing outer-race defect", "inner_race": "Bearing inner-race defect",
                "ball": "Bearing rolling-element defect", "cage": "Bearing cage defect"}
_SEE_WO = "see the asset's work order"


@dataclass(frozen=True)
class Condition:
    """What one frame or prediction says about one alarm of one asset.

    Attributes:
        asset_id: the asset.
        kind: the alarm kind (module docstring).
        severity: the priority the condition calls for; ``None``: not in alarm.
        clear: back to normal (for an analog value: below the limit minus the deadband); an alarm
            may clear after the off-delay. ``severity is None and not clear`` is the deadband: the
            alarm keeps its state.
        message: the alarm text for this observation.
        at: data time of the observation.
    """

    asset_id: str
    kind: str
    severity: str | None
    clear: bool
    message: str
    at: datetime


@dataclass(frozen=True)
class Diagnosis:
    """A bearing defect the envelope peaks of a frame point to."""

    fault: str  # key of core.maintenance.DEFECT_FAULT's values, e.g. "outer_race"
    defect: str  # "bpfo", "bpfi", "bsf", "ftf"
    snr: float  # amplitude at the defect frequency over the envelope's noise floor
    frequency_hz: float | None

    @property
    def text(self) -> str:
        """e.g. ``Bearing outer-race defect: BPFO 107 Hz at 17x the noise floor``."""
        freq = f" {self.frequency_hz:.0f} Hz" if self.frequency_hz else ""
        return f"{_FAULT_WORDS[self.fault]}: {self.defect.upper()}{freq} at {self.snr:.0f}x the noise floor"


def _defect_hz(config: Mapping[str, Any], feats: Mapping[str, float], defect: str) -> float | None:
    """The defect frequency: sent by the edge, else from the stored bearing geometry and shaft speed."""
    sent = feats.get(f"env_{defect}_hz")
    if sent is not None and sent > 0:
        return float(sent)
    shaft = feats.get("shaft_hz")
    if shaft is None:
        rpm = config.get("shaft_speed_rpm")
        shaft = float(rpm) / 60.0 if isinstance(rpm, int | float) and not isinstance(rpm, bool) else None
    bearing = config.get("bearing")
    if shaft is None or shaft <= 0 or not isinstance(bearing, Mapping):
        return None
    try:
        return float(BearingGeometry.model_validate(bearing).defect_frequencies(shaft).as_dict()[defect])
    except ValidationError:
        return None


def diagnose(features: Mapping[str, Mapping[str, float]], config: Mapping[str, Any] | None = None) -> Diagnosis | None:
    """The strongest envelope peak at a bearing defect frequency in a frame, if one is at
    :data:`core.maintenance.PEAK_SNR` times the floor or more; else ``None``."""
    config = config or {}
    found = [(peaks, ch) for ch, feats in features.items() if ch != _HEALTH and (peaks := envelope_peaks(feats))]
    if not found:
        return None
    peaks, ch = max(found, key=lambda f: f[0][0].snr)  # the channel with the strongest peak
    best = peaks[0]
    # the same naming as the prescriber's fault call, so alarm and work order name one fault
    fault = peak_fault((p.defect for p in peaks), best.defect)
    return Diagnosis(fault, best.defect, best.snr, _defect_hz(config, features[ch], best.defect))


def _has_envelope(features: Mapping[str, Mapping[str, float]]) -> bool:
    return any(f"env_{d}_snr" in feats for feats in features.values() for d in DEFECT_FAULT)


def _fmt(x: float) -> str:
    return f"{x:.3g}"


def _text(*parts: str) -> str:
    """The alarm text: its parts as sentences, printable and at most :data:`MAX_MESSAGE` characters."""
    text = " ".join(p.strip() for p in parts if p and p.strip())
    return printable(text, MAX_MESSAGE)


def _unit(config: Mapping[str, Any], channel: str) -> str:
    for c in config.get("channels", []) or []:
        if isinstance(c, Mapping) and c.get("name") == channel:
            return str(c.get("unit", ""))
    return ""


@dataclass
class _Debounce:
    """On/off-delay state of one alarm (asset and kind).

    ``runs[r]`` counts the consecutive observations calling for priority rank ``r`` or higher,
    ``since[r]`` the data time the run began; ``off_run``/``off_since`` the same for "back to normal".
    """

    runs: list[int] = field(default_factory=lambda: [0] * len(actions.SEVERITIES))
    since: list[datetime | None] = field(default_factory=lambda: [None] * len(actions.SEVERITIES))
    off_run: int = 0
    off_since: datetime | None = None

    def observe(self, c: Condition) -> None:
        top = _RANK[c.severity] if c.severity is not None else -1
        for r in range(len(self.runs)):
            if r <= top:
                self.runs[r] += 1
                self.since[r] = self.since[r] or c.at
            else:
                self.runs[r], self.since[r] = 0, None
        if c.clear:
            self.off_run += 1
            self.off_since = self.off_since or c.at
        else:
            self.off_run, self.off_since = 0, None

    def confirmed(self, frames: int, seconds: float, at: datetime) -> int:
        """The highest priority rank held for the on-delay, or -1."""
        for r in reversed(range(len(self.runs))):
            start = self.since[r]
            if self.runs[r] >= frames and start is not None and (at - start).total_seconds() >= seconds:
                return r
        return -1

    def back_to_normal(self, frames: int, seconds: float, at: datetime) -> bool:
        """Whether the condition has been back to normal for the off-delay."""
        return (self.off_run >= frames and self.off_since is not None
                and (at - self.off_since).total_seconds() >= seconds)


class AlarmEvaluator:
    """Raise, escalate and clear alarms from the feature frames and predictions ingest has just committed.

    Args:
        store: the store.
        settings: on/off delays and deadband (default :class:`AlarmSettings`).
        policy: the decision policy's time bands for ``rul_low`` (default :class:`DeadlinePolicy`).
    """

    def __init__(self, store: Store, settings: AlarmSettings | None = None, *,
                 policy: DeadlinePolicy | None = None) -> None:
        self.store = store
        self.settings = settings or AlarmSettings()
        self.policy = policy or DeadlinePolicy()
        self.raised = 0
        self.cleared = 0
        self.escalated = 0
        self._debounce: dict[tuple[str, str], _Debounce] = {}
        self._baselines: dict[tuple[str, str, str], Baseline] = {}  # complete baselines never change
        self._diagnosis: dict[str, Diagnosis] = {}  # the newest diagnosis of each asset, for rul_low's text
        self._scale: float | None = None  # the store's time scale, read on first use

    # ------------------------------------------------------------------ entry point
    def evaluate(self, messages: Iterable[Message]) -> None:
        """Judge ``messages`` in arrival order and change the stored alarms they call for.

        Store failures are logged, never raised: alarms must not stop data ingest.
        """
        todo = [m for m in messages if isinstance(m, FeatureFrame | Prediction)]
        if not todo:
            return
        try:
            open_alarms = {(a.asset_id, a.kind): a
                           for a in queries.alarms(self.store, states=queries.OPEN_ALARM_STATES, limit=100_000)}
            infos: dict[str, AssetInfo | None] = {}
            for m in todo:
                if m.asset_id not in infos:
                    infos[m.asset_id] = queries.asset(self.store, m.asset_id)
                info = infos[m.asset_id]
                if info is None:
                    continue
                conds = self.frame_conditions(m, info) if isinstance(m, FeatureFrame) else self.rul_conditions(m, info)
                for c in conds:
                    self._apply(c, open_alarms)
        except StoreError as err:  # the next batch retries
            log.error("alarm evaluation failed: %s", err)

    def _delays(self, kind: str) -> tuple[int, float, int, float]:
        s = self.settings
        if kind == "rul_low":
            return s.rul_on_delay, 0.0, s.rul_off_delay, 0.0
        return s.on_delay_frames, s.on_delay_s, s.off_delay_frames, s.off_delay_s

    def _apply(self, c: Condition, open_alarms: dict[tuple[str, str], AlarmView]) -> None:
        key = (c.asset_id, c.kind)
        state = self._debounce.setdefault(key, _Debounce())
        state.observe(c)
        on_n, on_s, off_n, off_s = self._delays(c.kind)
        alarm = open_alarms.get(key)
        rank = state.confirmed(on_n, on_s, c.at)
        if c.kind == "rul_low" and alarm is not None and c.severity is not None:
            # A standing RUL alarm escalates on the first prediction in a shorter band, as the decision
            # watcher escalates the work order: its priority then always shows the decision state. The
            # on-delay guards raising, and a priority never drops while the alarm stands.
            rank = max(rank, _RANK[c.severity])
        try:
            if rank >= 0 and alarm is None:
                open_alarms[key] = actions.raise_alarm(self.store, c.asset_id, c.kind, actions.SEVERITIES[rank],
                                                       c.message, at=c.at)
                self.raised += 1
            elif rank >= 0 and alarm is not None and rank > _RANK.get(alarm.severity, len(_RANK)):
                # Stamped with the wall clock, like the acknowledgements it overrides (data time may lag).
                open_alarms[key] = actions.escalate_alarm(self.store, alarm.id, actions.SEVERITIES[rank], c.message)
                self.escalated += 1
            elif rank < 0 and alarm is not None and state.back_to_normal(off_n, off_s, c.at):
                actions.clear_alarm(self.store, alarm.id, at=c.at)
                del open_alarms[key]
                self.cleared += 1
        except StoreError as err:  # someone changed the alarm meanwhile: re-read on the next batch
            log.warning("alarm %s of %s not updated: %s", c.kind, c.asset_id, err)
            open_alarms.pop(key, None)
            refreshed = queries.alarms(self.store, states=queries.OPEN_ALARM_STATES, asset_id=c.asset_id)
            open_alarms.update({(a.asset_id, a.kind): a for a in refreshed if a.kind == c.kind})

    def _time_scale(self) -> float:
        """Plant hours per wall-clock hour of the store's timestamps, read once (the demo records it)."""
        if self._scale is None:
            self._scale = queries.time_scale(self.store)
        return self._scale

    # ------------------------------------------------------------------ conditions
    def frame_conditions(self, frame: FeatureFrame, info: AssetInfo) -> list[Condition]:
        """The conditions a feature frame speaks about (anomaly, ISO zones, vibration, temperature)."""
        at = frame.window_start + timedelta(seconds=frame.window_s)
        feats = frame.features
        diag = diagnose(feats, info.config)
        if diag is not None:
            self._diagnosis[frame.asset_id] = diag
        elif _has_envelope(feats):  # the envelope was measured and shows no defect
            self._diagnosis.pop(frame.asset_id, None)
        return [*self._anomaly(frame.asset_id, feats, diag, at), *self._zones(frame.asset_id, feats, diag, at),
                *self._analog(frame.asset_id, feats, info, diag, at)]

    @staticmethod
    def _anomaly(asset_id: str, feats: Mapping[str, Mapping[str, float]], diag: Diagnosis | None,
                 at: datetime) -> list[Condition]:
        health = feats.get(_HEALTH, {})
        if "alarm" not in health or health.get("learning", 0.0):
            return []
        on = health["alarm"] >= 0.5
        hi, thr = health.get("hi"), health.get("threshold")
        measured = (f"Anomaly: health indicator {hi:.3f} above the threshold {thr:.3f} learned on this asset's "
                    "healthy period." if hi is not None and thr is not None else "Anomaly on the health indicator.")
        action = ("Plan bearing replacement" if diag is not None
                  else "Inspect the machine and compare its trends with its healthy period")
        text = _text(f"{diag.text}." if diag else "", measured, f"{action}; {_SEE_WO}.")
        return [Condition(asset_id, "health_anomaly", "high" if on else None, not on, text, at)]

    @staticmethod
    def _zones(asset_id: str, feats: Mapping[str, Mapping[str, float]], diag: Diagnosis | None,
               at: datetime) -> list[Condition]:
        zones = [(ch, int(f["iso_zone"])) for ch, f in feats.items() if "iso_zone" in f]
        if not zones:
            return []
        ch, zone = max(zones, key=lambda z: z[1])
        vel = feats[ch].get("vel_rms_mm_s")
        speed = f" (velocity RMS {vel:.2f} mm/s)" if vel is not None else ""
        cause = f"{diag.text}." if diag else ""
        d_text = _text(cause, f"ISO 20816 zone D on {ch}{speed}: vibration may damage the machine.",
                       f"Stop the machine and inspect; {_SEE_WO}.")
        c_text = _text(cause, f"ISO 20816 zone C on {ch}{speed}: not fit for long-term operation.",
                       f"Plan maintenance at the next planned stop; {_SEE_WO}.")
        return [Condition(asset_id, "iso_zone_D", "critical" if zone >= 3 else None, zone < 3, d_text, at),
                Condition(asset_id, "iso_zone_C", "medium" if zone == 2 else None, zone != 2, c_text, at)]

    def _baseline(self, asset_id: str, channel: str, quantity: str) -> Baseline | None:
        """The channel's complete baseline (``queries.channel_baseline``), cached once complete."""
        key = (asset_id, channel, quantity)
        if key in self._baselines:
            return self._baselines[key]
        found = queries.channel_baseline(self.store, asset_id, channel, quantity)
        if found is None or not found.complete:
            return None
        self._baselines[key] = found
        return found

    def _analog(self, asset_id: str, feats: Mapping[str, Mapping[str, float]], info: AssetInfo,
                diag: Diagnosis | None, at: datetime) -> list[Condition]:
        """``vibration_high`` and ``temperature_high``: the worst channel of each against its limits."""
        config = info.config
        judged: dict[str, list[tuple[str, float, list[Limit]]]] = {"vibration_high": [], "temperature_high": []}
        for ch, values in feats.items():
            if ch == _HEALTH:
                continue
            quantity = channel_quantity(config, ch, values)
            if quantity in VIBRATION_QUANTITIES and RMS_KEY in values:
                kind, value = "vibration_high", values[RMS_KEY]
            elif quantity in TEMPERATURE_QUANTITIES and any(k in values for k in TEMPERATURE_KEYS):
                kind, value = "temperature_high", next(values[k] for k in TEMPERATURE_KEYS if k in values)
            else:
                continue
            base = None if configured_limits(config, ch) is not None else self._baseline(asset_id, ch, str(quantity))
            limits = channel_limits(config, ch, str(quantity), base)
            if limits:
                judged[kind].append((ch, float(value), limits))
        out = []
        for kind, channels in judged.items():
            if not channels:
                continue
            hits = [(ch, v, lim) for ch, v, lims in channels if (lim := exceeded(v, lims)) is not None]
            clear = all(back_to_normal(v, lims, self.settings.deadband_pct) for _, v, lims in channels)
            if not hits:
                out.append(Condition(asset_id, kind, None, clear, "", at))
                continue
            # the worst channel: the highest level, then the furthest above its limit
            ch, v, lim = max(hits, key=lambda h: (_RANK[level_severity(h[2].level, info.criticality)],
                                                  h[1] / h[2].value if h[2].value > 0 else math.inf))
            severity = level_severity(lim.level, info.criticality)
            out.append(Condition(asset_id, kind, severity, False,
                                 self._analog_text(kind, ch, v, lim, _unit(config, ch), diag), at))
        return out

    @staticmethod
    def _analog_text(kind: str, channel: str, value: float, limit: Limit, unit: str, diag: Diagnosis | None) -> str:
        u = f" {unit}" if unit else ""
        if kind == "vibration_high":
            measured = f"RMS {_fmt(value)}{u} on {channel} above the {_fmt(limit.value)}{u} {limit.level} limit."
            action = "Plan bearing replacement" if diag is not None else "Check balance, alignment, looseness and mounting"
            return _text(f"{diag.text};" if diag else "", measured, f"{action}; {_SEE_WO}.")
        measured = f"Temperature {_fmt(value)}{u} on {channel} above the {_fmt(limit.value)}{u} {limit.level} limit."
        cause = f"{diag.text}." if diag else ""
        return _text(measured, cause, f"Check lubrication, cooling and load; {_SEE_WO}.")

    def rul_conditions(self, p: Prediction, info: AssetInfo) -> list[Condition]:
        """``rul_low`` from a prediction in hours: its priority is the decision policy's time band."""
        if p.rul_unit != "h":  # cycles and shares of life need the asset's history to become hours
            return []
        crit = info.criticality if info.criticality in self.policy.margin_min_h else 2
        state = time_state(p.rul_lower, crit, at_cap=p.at_cap, policy=self.policy)
        if state is None:
            return [Condition(p.asset_id, "rul_low", None, True, "", p.at)]
        due, margin, window = self.policy.deadline(p.at, p.rul_lower, crit, time_scale=self._time_scale())
        when = due.strftime("%Y-%m-%d %H:%M UTC")
        measured = (f"RUL lower bound {p.rul_lower:.0f} h (median {p.rul_median:.0f} h, "
                    f"{p.coverage:.0%} interval {p.rul_lower:.0f}-{p.rul_upper:.0f} h)")
        band = {"plan": f"within the {self.policy.planning_horizon_h:.0f} h planning horizon",
                "urgent": f"{window:.0f} h left before the lower bound minus the {margin:.0f} h safety margin",
                "stop_now": f"within the {margin:.0f} h safety margin"}[state]
        action = {"plan": f"Plan the work for the next planned stop, before {when}",
                  "urgent": f"Do the work before {when}, without waiting for a planned stop",
                  "stop_now": "Stop, lock out and repair now"}[state]
        diag = self._diagnosis.get(p.asset_id)
        return [Condition(p.asset_id, "rul_low", ALARM_SEVERITY_OF_STATE[state], False,
                          _text(f"{diag.text}." if diag else "", f"{measured} {band}.", f"{action}; {_SEE_WO}."),
                          p.at)]
