"""What the dashboard reads out of the edge agent's feature frames. Pure functions: no Streamlit, no store.

The agent publishes one frame per asset and window: ``features[channel][name]``. Vibration
channels carry ``rms`` (broadband, in the channel's unit), ``vel_rms_mm_s`` and ``iso_zone``
(0-3 = A-D) when the window is long enough to resolve 10 Hz, and envelope amplitudes at the
bearing defect frequencies (``env_bpfo_h1`` ... and ``env_bpfo_snr``). Temperature channels carry
``mean`` and ``slope_per_min``; the ``health`` group carries the health index and the state of
the adaptive anomaly alarm.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

from dashboard._limits import iso_zone
from ingest.store.queries import ChannelLatest, FeatureView

__all__ = [
    "ENVELOPE_FAMILIES",
    "Vitals",
    "envelope_keys",
    "health_keys",
    "temperature_channel",
    "vibration_channel",
    "vitals",
]

HEALTH = "health"
#: Temperature level and slope names, the agent's first.
TEMPERATURE_LEVEL = ("mean", "level", "last")
TEMPERATURE_SLOPE = ("slope_per_min", "slope")
#: Bearing defect families of the envelope features, in the agent's names.
ENVELOPE_FAMILIES = {"BPFO": "bpfo", "BPFI": "bpfi", "BSF": "bsf", "FTF": "ftf"}
_VIBRATION_QUANTITIES = ("acceleration", "velocity")


@dataclass(frozen=True)
class Vitals:
    """The few numbers an operator looks at first, from the newest window (and raw temperature)."""

    vib_channel: str | None = None
    vib_rms: float | None = None
    vib_unit: str = ""
    velocity_mm_s: float | None = None
    zone: str | None = None  # ISO 10816/20816 zone A-D
    health_index: float | None = None  # (0, 1], 1 = as healthy as the learned baseline
    hi: float | None = None
    threshold: float | None = None
    anomaly: bool = False
    learning: bool = False
    temperature_c: float | None = None
    temperature_slope_per_min: float | None = None
    temperature_source: str = ""  # "readings" or "features"


def _channels(config: Mapping[str, Any]) -> list[dict[str, Any]]:
    return [c for c in config.get("channels", []) if isinstance(c, dict) and "name" in c]


def vibration_channel(config: Mapping[str, Any], frame: FeatureView | None = None) -> tuple[str, str] | None:
    """``(channel, unit)`` of the asset's primary vibration channel: its first acceleration channel.

    This is the channel the agent builds the health index on. For an asset without a config,
    the first channel of ``frame`` that has an ``rms`` and a ``crest`` (vibration, not sound).
    """
    for quantity in _VIBRATION_QUANTITIES:
        for c in _channels(config):
            if c.get("quantity") == quantity:
                return str(c["name"]), str(c.get("unit", ""))
    if frame is not None:
        for name, values in frame.features.items():
            if name != HEALTH and "rms" in values and "crest" in values and "spl_db" not in values:
                return name, ""
    return None


def temperature_channel(config: Mapping[str, Any], frame: FeatureView | None = None) -> str | None:
    """The asset's first temperature channel (config first, else a frame channel with a temperature slope)."""
    for c in _channels(config):
        if c.get("quantity") == "temperature":
            return str(c["name"])
    if frame is not None:
        for name, values in frame.features.items():
            if any(k in values for k in TEMPERATURE_SLOPE):
                return name
    return None


def _first(values: Mapping[str, float], names: Sequence[str]) -> float | None:
    return next((float(values[n]) for n in names if n in values), None)


def _worst_zone(feats: Mapping[str, Mapping[str, float]], machine_class: str) -> tuple[float | None, str | None]:
    """Velocity RMS and ISO zone of the worst vibration channel (the zone the edge computed, else from velocity)."""
    worst: tuple[float | None, str | None] = (None, None)
    for name, values in feats.items():
        if name == HEALTH:
            continue
        velocity = values.get("vel_rms_mm_s")
        zone: str | None = None
        if "iso_zone" in values and 0 <= int(values["iso_zone"]) <= 3:
            zone = "ABCD"[int(values["iso_zone"])]
        elif velocity is not None:
            zone = iso_zone(velocity, machine_class)
        if zone is not None and (worst[1] is None or zone > worst[1]):
            worst = (velocity, zone)
    return worst


def vitals(config: Mapping[str, Any], frame: FeatureView | None,
           temperature: ChannelLatest | None = None) -> Vitals:
    """The asset's vitals from its newest feature window; temperature from its newest raw batch if given.

    Args:
        config: the asset's config (``AssetInfo.config``): channels and ISO machine class.
        frame: the newest feature window (``None``: nothing published yet).
        temperature: the newest raw batch of the temperature channel, preferred to the features.
    """
    feats = frame.features if frame is not None else {}
    vib = vibration_channel(config, frame)
    v = feats.get(vib[0], {}) if vib else {}
    velocity, zone = _worst_zone(feats, str(config.get("machine_class", "II")))
    h = feats.get(HEALTH, {})
    t_name = temperature_channel(config, frame)
    t = feats.get(t_name, {}) if t_name else {}
    temp: float | None
    if temperature is not None:
        temp, source = temperature.v_mean, "readings"
    else:
        temp = _first(t, TEMPERATURE_LEVEL)
        source = "features" if temp is not None else ""
    return Vitals(
        vib_channel=vib[0] if vib else None, vib_rms=v.get("rms"), vib_unit=vib[1] if vib else "",
        velocity_mm_s=velocity, zone=zone, health_index=h.get("health_index"), hi=h.get("hi"),
        threshold=h.get("threshold"), anomaly=h.get("alarm", 0.0) >= 0.5, learning=h.get("learning", 0.0) >= 0.5,
        temperature_c=temp, temperature_slope_per_min=_first(t, TEMPERATURE_SLOPE), temperature_source=source,
    )


def health_keys() -> list[str]:
    return [f"{HEALTH}.health_index", f"{HEALTH}.hi", f"{HEALTH}.threshold", f"{HEALTH}.alarm", f"{HEALTH}.learning"]


def envelope_keys(channel: str, families: Sequence[str], measure: str = "h1") -> dict[str, str]:
    """``family label -> feature key`` of envelope features, e.g. ``{"BPFO": "vib_de.env_bpfo_h1"}``.

    Args:
        channel: the vibration channel.
        families: labels of :data:`ENVELOPE_FAMILIES`.
        measure: ``h1``, ``h2``, ``h3`` (amplitude at that harmonic) or ``snr`` (h1 over the envelope floor).
    """
    return {f: f"{channel}.env_{ENVELOPE_FAMILIES[f]}_{measure}" for f in families if f in ENVELOPE_FAMILIES}
