"""Alarm limits of measured channels: one definition for the dashboard's charts and ingest's alarms.

Limits come from the asset's config (``config["alarm_limits"][channel] = {"alert": x, "alarm":
y}``) when it has them. Otherwise they are relative to the channel's baseline: vibration RMS
alert at 2x (+6 dB) and alarm at 4x (+12 dB) baseline, temperature alert at +15 K and alarm at
+25 K above baseline.

The baseline of a channel is the median of its first :data:`BASELINE_WINDOWS` stored values: the
broadband ``rms`` feature of a vibration channel's windows; for a temperature channel the mean of
its raw batches when it sends raw readings, else its level feature (the first of
:data:`TEMPERATURE_KEYS` it carries). The store computes it (``ingest.store.queries.channel_baseline``)
so that the charts and the alarms read one number.

An alarm raises when the value is above a limit and clears only when it is back below the lowest
limit minus a deadband (:func:`back_to_normal`).
"""

from __future__ import annotations

import math
from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any, Literal, Protocol

__all__ = [
    "BASELINE_WINDOWS",
    "LEVELS",
    "RMS_KEY",
    "TEMPERATURE_KEYS",
    "TEMPERATURE_QUANTITIES",
    "VIBRATION_QUANTITIES",
    "HasBaseline",
    "Level",
    "Limit",
    "back_to_normal",
    "channel_limits",
    "channel_quantity",
    "configured_limits",
    "exceeded",
    "level_severity",
]

#: Windows (or raw batches) whose median is a channel's baseline.
BASELINE_WINDOWS = 20
#: The feature of a vibration channel the limits apply to: broadband RMS, in the channel's unit.
RMS_KEY = "rms"
#: Level features of a temperature channel, the edge agent's first.
TEMPERATURE_KEYS = ("mean", "level", "last")
#: Quantities whose limits are multiples of the baseline, and those with limits in kelvin above it.
VIBRATION_QUANTITIES = ("acceleration", "velocity")
TEMPERATURE_QUANTITIES = ("temperature",)

Level = Literal["alert", "alarm"]
#: Limit levels, lowest first.
LEVELS: tuple[Level, ...] = ("alert", "alarm")

_VIB_FACTOR: dict[Level, float] = {"alert": 2.0, "alarm": 4.0}
_TEMP_DELTA_K: dict[Level, float] = {"alert": 15.0, "alarm": 25.0}


class HasBaseline(Protocol):
    """A baseline with its value (``ingest.store.queries.Baseline``)."""

    @property
    def value(self) -> float: ...


@dataclass(frozen=True)
class Limit:
    """One limit line: its label on a chart, its value in the channel's unit and its level."""

    label: str
    value: float
    level: Level


def _number(x: Any) -> float | None:
    if isinstance(x, bool) or not isinstance(x, int | float) or not math.isfinite(x):
        return None
    return float(x)


def configured_limits(config: Mapping[str, Any], channel: str) -> list[Limit] | None:
    """The limits configured for ``channel`` in the asset's config, or ``None`` when it has none.

    Entries that are not finite numbers are left out, so a half-configured channel has only the
    levels given.
    """
    table = config.get("alarm_limits")
    configured = table.get(channel) if isinstance(table, Mapping) else None
    if not isinstance(configured, Mapping):
        return None
    out = []
    for lvl in LEVELS:
        value = _number(configured.get(lvl))
        if value is not None:
            out.append(Limit(f"{lvl} (configured)", value, lvl))
    return out


def channel_limits(config: Mapping[str, Any], channel: str, quantity: str,
                   baseline: float | HasBaseline | None) -> list[Limit]:
    """Limits of a channel: configured, else relative to ``baseline``; lowest level first.

    Args:
        config: the asset's config (``AssetInfo.config``); may be empty.
        channel: the channel's name.
        quantity: the channel's quantity (``acceleration``, ``velocity``, ``temperature`` ...).
        baseline: the channel's baseline (a number, or a store ``Baseline``); ``None`` or not
            positive: no relative limits.

    Returns:
        The limits, empty when there are none for this channel (another quantity, no baseline).
    """
    configured = configured_limits(config, channel)
    if configured is not None:
        return configured
    base = _number(baseline if baseline is None or isinstance(baseline, int | float) else baseline.value)
    if base is None or base <= 0:
        return []
    if quantity in VIBRATION_QUANTITIES:
        return [Limit(f"{lvl}: {_VIB_FACTOR[lvl]:g}x baseline", _VIB_FACTOR[lvl] * base, lvl) for lvl in LEVELS]
    if quantity in TEMPERATURE_QUANTITIES:
        return [Limit(f"{lvl}: baseline +{_TEMP_DELTA_K[lvl]:g} K", base + _TEMP_DELTA_K[lvl], lvl) for lvl in LEVELS]
    return []


def exceeded(value: float, limits: list[Limit]) -> Limit | None:
    """The highest level whose limit ``value`` is above (the alarm before the alert), or ``None``."""
    if not math.isfinite(value):
        return None
    above = [lim for lim in limits if value > lim.value]
    if not above:
        return None
    return max(above, key=lambda lim: (LEVELS.index(lim.level), lim.value))


def back_to_normal(value: float, limits: list[Limit], deadband_pct: float) -> bool:
    """Whether ``value`` is below every limit by the deadband: an alarm on it may clear.

    The deadband is ``deadband_pct`` percent of the lowest limit's magnitude, so a value that
    dithers just under the limit keeps the alarm standing instead of clearing and raising again.

    Raises:
        ValueError: ``deadband_pct`` negative or not finite.
    """
    if not math.isfinite(deadband_pct) or deadband_pct < 0:
        raise ValueError(f"deadband_pct must be a finite percentage >= 0, got {deadband_pct!r}")
    if not limits or not math.isfinite(value):
        return not limits
    lowest = min(lim.value for lim in limits)
    return value < lowest - abs(lowest) * deadband_pct / 100.0


def level_severity(level: Level, criticality: int) -> str:
    """Alarm severity of a limit level: alarm -> high; alert -> medium (low on a criticality-1 asset)."""
    if level == "alarm":
        return "high"
    return "low" if criticality <= 1 else "medium"


def channel_quantity(config: Mapping[str, Any], channel: str,
                     features: Mapping[str, float] | None = None) -> str | None:
    """The quantity of ``channel``: from the asset's configured channels, else guessed from its features.

    Without a configured channel, a feature window's channel with ``rms`` and ``crest`` but no
    ``spl_db`` is vibration (``acceleration``) and one with a temperature slope is ``temperature``.
    """
    for c in config.get("channels", []) or []:
        if isinstance(c, Mapping) and c.get("name") == channel and isinstance(c.get("quantity"), str):
            return str(c["quantity"])
    if features is None:
        return None
    if RMS_KEY in features and "crest" in features and "spl_db" not in features:
        return "acceleration"
    if "slope_per_min" in features or "slope" in features:
        return "temperature"
    return None
