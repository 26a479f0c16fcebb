"""ISO 10816-1 / 20816-1 evaluation zones of broadband vibration velocity: the one table.

The edge agent, the simulator and the dashboard all read it from here.
"""

from __future__ import annotations

import bisect
from collections.abc import Mapping
from types import MappingProxyType

__all__ = ["ISO_ZONE_LIMITS", "MACHINE_CLASSES", "ZONES", "iso_zone", "zone_letter"]

#: Zone boundaries A/B, B/C, C/D of velocity RMS in mm/s (10-1000 Hz) per machine class
#: (ISO 10816-1:1995 Annex B, carried into ISO 20816-1:2016 Annex B as the generic guidance
#: for classes I-IV).
ISO_ZONE_LIMITS: Mapping[str, tuple[float, float, float]] = MappingProxyType(
    {
        "I": (0.71, 1.8, 4.5),
        "II": (1.12, 2.8, 7.1),
        "III": (1.8, 4.5, 11.2),
        "IV": (2.8, 7.1, 18.0),
    }
)
MACHINE_CLASSES = tuple(ISO_ZONE_LIMITS)
#: Zone names by index: 0 = A (new machine) ... 3 = D (damage likely).
ZONES = ("A", "B", "C", "D")


def iso_zone(v_rms_mm_s: float, machine_class: str = "II", limits: Mapping[str, tuple[float, float, float]] | None = None) -> int:
    """Evaluation zone index of a velocity RMS: 0 = A, 1 = B, 2 = C, 3 = D.

    A value on a boundary belongs to the upper zone (2.8 mm/s is zone C for class II).

    Args:
        v_rms_mm_s: broadband velocity RMS in mm/s.
        machine_class: ISO class ``I``-``IV``.
        limits: boundaries to use instead of :data:`ISO_ZONE_LIMITS` (per-plant settings).

    Raises:
        ValueError: ``machine_class`` is not in the table.
    """
    table = ISO_ZONE_LIMITS if limits is None else limits
    if machine_class not in table:
        raise ValueError(f"machine_class must be one of {sorted(table)}, got {machine_class!r}")
    return bisect.bisect_right(table[machine_class], v_rms_mm_s)


def zone_letter(index: int) -> str:
    """``"A"``-``"D"`` for a zone index 0-3."""
    if not 0 <= index < len(ZONES):
        raise ValueError(f"zone index must be 0-3, got {index}")
    return ZONES[index]
