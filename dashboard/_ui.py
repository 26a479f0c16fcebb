"""Small presentation helpers shared by the pages: colours, badges, formatting."""

from __future__ import annotations

from datetime import datetime

import streamlit as st

from core.wire import utcnow

__all__ = ["ALARM_COLOURS", "FAVICON_SVG", "QUALITY_COLOURS", "REFRESH_S", "ago", "alarm_badge", "anomaly_badge",
           "clock_text", "flash", "fmt_time", "page_style", "quality_badge", "rul_label", "rul_unit_text", "show_flash",
           "zone_badge"]

#: How often live parts of the pages (overview, work orders, the alarm strip) refresh.
REFRESH_S = 2.0

#: The browser tab's icon, inline: nothing is fetched from outside the dashboard (plants are often
#: air-gapped, and Streamlit fetches ``:material/...:`` page icons from fonts.gstatic.com).
FAVICON_SVG = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 24 24">'
    '<path fill="#37474f" d="M2 21V9l6 4V9l6 4V3h4l1 10h3v8z"/>'
    '<path fill="#fff" d="M6 16h2v2H6zm5 0h2v2h-2zm5 0h2v2h-2z"/></svg>'
)

#: Page-wide style. On a phone (<= 640 px) the header, title and counters shrink so that the first
#: asset card shows on the first screen.
_CSS = """<style>
.ge-strip{display:flex;flex-wrap:wrap;align-items:center;gap:4px 10px;font-size:.85rem;line-height:1.3}
.ge-kpis{display:flex;flex-wrap:wrap;gap:6px;margin:2px 0 8px}
.ge-kpi{border:1px solid #cfd8dc;border-radius:8px;padding:4px 10px;min-width:92px}
.ge-kpi b{display:block;font-size:1.35rem;line-height:1.2}
.ge-kpi span{font-size:.72rem;color:#607d8b}
@media (max-width: 640px){
  [data-testid="stMainBlockContainer"]{padding:3.2rem .6rem 1rem !important}
  h1{font-size:1.35rem !important;padding:.1rem 0 .2rem !important}
  .ge-kpis{gap:4px;margin:0 0 4px}
  .ge-kpi{min-width:0;padding:1px 6px;border-radius:6px}
  .ge-kpi b{display:inline;font-size:.95rem;margin-right:3px}
  .ge-kpi span{font-size:.68rem}
  .ge-strip{font-size:.78rem;gap:2px 8px}
}
</style>"""


def page_style() -> None:
    """The dashboard's page-wide CSS (sent as a style-only element: it takes no room on the page)."""
    st.html(_CSS)

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


def alarm_badge(state: str, severity: str | None = None) -> None:
    label = "normal" if state == "normal" else f"{state}" + (f" · {severity}" if severity else "")
    icon = ":material/check_circle:" if state == "normal" else ":material/notifications_active:"
    st.badge(label, icon=icon, color=ALARM_COLOURS.get(state, "gray"))  # type: ignore[arg-type]


def quality_badge(quality: str) -> None:
    st.badge(f"data {quality}", icon=":material/sensors:", color=QUALITY_COLOURS.get(quality, "gray"))  # type: ignore[arg-type]


def zone_badge(zone: str | None, velocity: float | None, hint: str | None = None) -> None:
    """The ISO 10816/20816 zone; ``hint`` explains a zone that looks better than the machine is."""
    if zone is None:
        st.badge("ISO zone —", color="gray", help="The edge features carry no ISO 10816/20816 zone: the agent "
                 "computes velocity RMS and the zone only from vibration windows of at least 0.2 s.")
        return
    text = f"ISO zone {zone}" + (f" · {velocity:.2f} mm/s" if velocity is not None else "")
    st.badge(text, color=ZONE_BADGE[zone], help=hint)  # type: ignore[arg-type]


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


#: Plant time per wall second, in the dashboard's units (hours at most, like every duration it shows).
_CLOCK_UNITS = ((3600.0, "h"), (60.0, "min"), (1.0, "s"))


def clock_text(acceleration: float) -> str:
    """The simulated plant's clock in words: ``'1 s = 1 h of plant time'`` for 3600, ``'real time'`` for 1.

    Args:
        acceleration: plant seconds per wall second (``sim.time_acceleration``).

    Raises:
        ValueError: ``acceleration`` is not a positive finite number.
    """
    if not 0 < acceleration < float("inf"):
        raise ValueError(f"acceleration must be a positive finite number of plant seconds per second, got {acceleration}")
    if acceleration == 1:
        return "real time"
    seconds = float(acceleration)
    size, unit = next(((s, u) for s, u in _CLOCK_UNITS if seconds >= s), (1.0, "s"))
    amount = seconds / size
    return f"1 s = {amount:.3g} {unit} of plant time"
