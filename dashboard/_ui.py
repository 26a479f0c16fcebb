"""Small presentation helpers shared by the pages: colours, badges, formatting."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from core.wire import utcnow
from ingest.store.queries import PredictionView

__all__ = ["ALARM_COLOURS", "QUALITY_COLOURS", "ago", "alarm_badge", "anomaly_badge", "flash", "fmt_rul", "fmt_time",
           "quality_badge", "show_flash", "zone_badge"]

# ISA-101 style: normal is muted, colour marks what is abnormal.
ALARM_COLOURS = {"active": "red", "acknowledged": "orange", "shelved": "violet", "cleared": "gray", "normal": "gray"}
QUALITY_COLOURS = {"good": "gray", "stale": "orange", "flatline": "red", "silent": "red", "suspect": "orange",
                   "no data": "gray"}
ZONE_BADGE = {"A": "green", "B": "green", "C": "orange", "D": "red"}
SEVERITY_ICONS = {"critical": ":material/error:", "high": ":material/warning:", "medium": ":material/info:",
                  "low": ":material/info:"}


_FLASH = "genedge.flash"


def flash(message: str) -> None:
    """Show ``message`` as a toast on the next run (a toast raised just before ``st.rerun`` is lost)."""
    st.session_state.setdefault(_FLASH, []).append(message)


def show_flash() -> None:
    for message in st.session_state.pop(_FLASH, []):
        st.toast(message, icon=":material/check:")


def ago(t: datetime | None, now: datetime | None = None) -> str:
    """``'12 s ago'``, ``'3 min ago'``, ``'2 h ago'``, ``'4 d ago'`` or ``'never'``."""
    if t is None:
        return "never"
    s = max(0.0, ((now or utcnow()) - t).total_seconds())
    if s < 90:
        return f"{s:.0f} s ago"
    if s < 5400:
        return f"{s / 60:.0f} min ago"
    return f"{s / 3600:.0f} h ago" if s < 172_800 else f"{s / 86400:.0f} d ago"


def fmt_time(t: datetime | None) -> str:
    return "" if t is None else t.strftime("%Y-%m-%d %H:%M:%S UTC")


#: How each wire RUL unit reads next to a number.
RUL_UNIT_TEXT = {"h": "h", "cycles": "cycles", "%": "% of life left"}


def rul_unit_text(unit: str) -> str:
    """``'h'``, ``'cycles'``, or ``'% of life left'`` for a share-of-life model."""
    return RUL_UNIT_TEXT.get(unit, unit)


def rul_label(unit: str) -> str:
    """What a RUL figure is called: ``'Life left'`` for a share-of-life model (``%``), else ``'RUL'``."""
    return "Life left" if unit == "%" else "RUL"


def rul_median_text(p: PredictionView) -> str:
    """``'120'``, or ``'≥ 200'`` when the median sits at the model's cap (it only knows "at least")."""
    if p.at_cap and p.rul_cap is not None:
        return f"≥ {p.rul_cap:.0f}"
    return f"{p.rul_median:.0f}"


def fmt_rul(p: PredictionView | None) -> str:
    """``'120 h [95-160] (90 %)'``, ``'≥ 200 h (model cap)'`` or ``'no prediction yet'``."""
    if p is None:
        return "no prediction yet"
    unit = rul_unit_text(p.rul_unit)
    if p.at_cap:
        return f"{rul_median_text(p)} {unit} (model cap; lower bound {p.rul_lower:.0f}, {p.coverage:.0%})"
    return f"{p.rul_median:.0f} {unit} [{p.rul_lower:.0f}–{p.rul_upper:.0f}] ({p.coverage:.0%})"


def alarm_badge(state: str, severity: str | None = None) -> None:
    label = "normal" if state == "normal" else f"{state}" + (f" · {severity}" if severity else "")
    icon = ":material/check_circle:" if state == "normal" else ":material/notifications_active:"
    st.badge(label, icon=icon, color=ALARM_COLOURS.get(state, "gray"))  # type: ignore[arg-type]


def quality_badge(quality: str) -> None:
    st.badge(f"data {quality}", icon=":material/sensors:", color=QUALITY_COLOURS.get(quality, "gray"))  # type: ignore[arg-type]


def zone_badge(zone: str | None, velocity: float | None) -> None:
    if zone is None:
        st.badge("ISO zone —", color="gray", help="The edge features carry no ISO 10816/20816 zone: the agent "
                 "computes velocity RMS and the zone only from vibration windows of at least 0.2 s.")
        return
    text = f"ISO zone {zone}" + (f" · {velocity:.2f} mm/s" if velocity is not None else "")
    st.badge(text, color=ZONE_BADGE[zone])  # type: ignore[arg-type]


def anomaly_badge(anomaly: bool, learning: bool, known: bool) -> None:
    """The edge agent's adaptive anomaly alarm: on, off, or still learning the healthy baseline."""
    if not known:
        st.badge("health —", color="gray", help="No health index from the edge agent yet.")
    elif learning:
        st.badge("learning baseline", icon=":material/school:", color="gray",
                 help="The edge agent is learning this asset's healthy baseline; no anomaly alarm until it has.")
    elif anomaly:
        st.badge("anomaly", icon=":material/warning:", color="red",
                 help="The health indicator is above the threshold the edge agent learned on this asset.")
    else:
        st.badge("no anomaly", icon=":material/check_circle:", color="gray")
