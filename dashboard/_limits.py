"""Alarm limits drawn on trends, and ISO 10816 zones: the dashboard's names for :mod:`core.alarm_limits`.

The limits and the baseline they are relative to are defined once, in :mod:`core.alarm_limits`
(limits) and ``ingest.store.queries.channel_baseline`` (baseline), so the lines the charts draw
are the limits ingest raises ``vibration_high`` and ``temperature_high`` alarms on.
"""

from __future__ import annotations

from core.alarm_limits import Limit, channel_limits
from core.iso import ISO_ZONE_LIMITS, ZONES
from core.iso import iso_zone as core_iso_zone

__all__ = ["ISO_10816_ZONES", "Limit", "channel_limits", "iso_zone"]

#: ISO 10816-1 zone boundaries A/B, B/C, C/D of velocity RMS (mm/s, 10-1000 Hz) by machine class
#: (the table of :mod:`core.iso`, under the name the dashboard's views use).
ISO_10816_ZONES = ISO_ZONE_LIMITS


def iso_zone(velocity_rms_mm_s: float, machine_class: str) -> str:
    """ISO 10816-1 evaluation zone A-D of a velocity RMS for a machine class I-IV (unknown class: II)."""
    cls = machine_class if machine_class in ISO_ZONE_LIMITS else "II"
    return ZONES[core_iso_zone(velocity_rms_mm_s, cls)]
