"""Alarm limits drawn on trends, and ISO 10816 zones.

Limits come from the asset's config (``config["alarm_limits"][channel] = {"alert": x,
"alarm": y}``) when it has them. Until assets carry configured limits, the dashboard draws
relative limits from the channel's own baseline (the median of its first stored batches):
vibration RMS alert at 2x (+6 dB) and alarm at 4x (+12 dB) baseline, temperature alert at
+15 K and alarm at +25 K above baseline. They are labelled as such on the charts.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.iso import ISO_ZONE_LIMITS, ZONES
from core.iso import iso_zone as core_iso_zone

__all__ = ["ISO_10816_ZONES", "Limit", "channel_limits", "iso_zone"]

#: ISO 10816-1 zone boundaries A/B, B/C, C/D of velocity RMS (mm/s, 10-1000 Hz) by machine class
#: (the table of :mod:`core.iso`, under the name the dashboard's views use).
ISO_10816_ZONES = ISO_ZONE_LIMITS

_VIB_ALERT, _VIB_ALARM = 2.0, 4.0
_TEMP_ALERT_K, _TEMP_ALARM_K = 15.0, 25.0


@dataclass(frozen=True)
class Limit:
    label: str
    value: float
    level: str  # "alert" or "alarm"


def channel_limits(config: dict[str, Any], channel: str, quantity: str, baseline: float | None) -> list[Limit]:
    """Limits to draw on a channel's trend (configured, else relative to ``baseline``)."""
    configured = config.get("alarm_limits", {}).get(channel) if isinstance(config.get("alarm_limits"), dict) else None
    if isinstance(configured, dict):
        return [
            Limit(f"{lvl} (configured)", float(configured[lvl]), lvl)
            for lvl in ("alert", "alarm")
            if isinstance(configured.get(lvl), int | float)
        ]
    if baseline is None or baseline <= 0:
        return []
    if quantity in ("acceleration", "velocity"):
        return [
            Limit("alert: 2x baseline", _VIB_ALERT * baseline, "alert"),
            Limit("alarm: 4x baseline", _VIB_ALARM * baseline, "alarm"),
        ]
    if quantity == "temperature":
        return [
            Limit("alert: baseline +15 K", baseline + _TEMP_ALERT_K, "alert"),
            Limit("alarm: baseline +25 K", baseline + _TEMP_ALARM_K, "alarm"),
        ]
    return []


def iso_zone(velocity_rms_mm_s: float, machine_class: str) -> str:
    """ISO 10816-1 evaluation zone A-D of a velocity RMS for a machine class I-IV (unknown class: II)."""
    cls = machine_class if machine_class in ISO_ZONE_LIMITS else "II"
    return ZONES[core_iso_zone(velocity_rms_mm_s, cls)]
