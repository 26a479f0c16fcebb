"""The plant overview's asset cards as HTML. Pure: no Streamlit, no store.

ISA-101 style: normal is muted and colour marks what is abnormal; the ISO zone keeps the colours
engineers know, outlined while the zone is normal (A, B) and filled from C on.
"""

from __future__ import annotations

import html

from dashboard._features import Vitals, vitals
from dashboard._ui import rul_label, rul_median_text
from ingest.store.queries import AssetOverview

__all__ = ["ALARM_HEX", "QUALITY_HEX", "ZONE_HEX", "card_html"]

ALARM_HEX = {"active": "#c62828", "acknowledged": "#ef6c00", "shelved": "#6a1b9a", "normal": "#b0bec5"}
QUALITY_HEX = {"stale": "#ef6c00", "suspect": "#ef6c00", "flatline": "#c62828", "silent": "#c62828",
               "no data": "#78909c"}
ZONE_HEX = {"A": "#2e7d32", "B": "#7cb342", "C": "#ef6c00", "D": "#c62828"}
_PILL = "display:inline-block;font-size:.72rem;padding:1px 7px;border-radius:9px;white-space:nowrap;"


def _pill(text: str, colour: str | None, *, outline: bool = False) -> str:
    """A small label; muted unless ``colour`` marks an abnormal state (ISA-101: colour means abnormal).

    ``outline`` draws the colour as text and border only: ISO zones A and B are normal, but keep
    the zone colour engineers know.
    """
    if colour is None:
        return f'<span style="{_PILL}color:#546e7a;border:1px solid #cfd8dc">{html.escape(text)}</span>'
    if outline:
        return f'<span style="{_PILL}color:{colour};border:1px solid {colour}">{html.escape(text)}</span>'
    return f'<span style="{_PILL}color:#fff;background:{colour}">{html.escape(text)}</span>'


def _value(label: str, value: str, unit: str, sub: str = "", *, colour: str | None = None) -> str:
    sub_html = f'<div style="font-size:.72rem;color:#78909c">{html.escape(sub)}</div>' if sub else ""
    style = f";color:{colour}" if colour else ""
    return (f'<div><div style="font-size:.72rem;color:#78909c">{html.escape(label)}</div>'
            f'<div style="font-size:1.25rem;font-weight:600;line-height:1.2{style}">{html.escape(value)}'
            f'<span style="font-size:.75rem;font-weight:400;color:#78909c"> {html.escape(unit)}</span></div>'
            f"{sub_html}</div>")


def _fmt(x: float | None, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def _values_html(a: AssetOverview, v: Vitals) -> str:
    p = a.prediction
    zone_colour = ZONE_HEX[v.zone] if v.zone in ("C", "D") else None
    short = "window too short" if v.vib_rms is not None and v.velocity_mm_s is None else ""
    velocity = _value("Velocity", _fmt(v.velocity_mm_s, ".2f"), "mm/s" if v.velocity_mm_s is not None else "",
                      f"ISO zone {v.zone}" if v.zone else short, colour=zone_colour)
    slope = (f"{v.temperature_slope_per_min:+.2f} K/min" if v.temperature_slope_per_min is not None else "")
    health_sub = ("learning baseline" if v.learning else "anomaly" if v.anomaly else "") if v.health_index is not None \
        else ""
    if p is None:
        rul = _value("RUL", "—", "", "none yet")
    elif p.rul_unit == "%":  # a share-of-life model: the share of the bearing's life still left
        rul = _value(rul_label(p.rul_unit), f"{p.rul_median:.0f}", "%", f"{p.rul_lower:.0f}–{p.rul_upper:.0f} %")
    else:
        rul = _value("RUL", rul_median_text(p), p.rul_unit,
                     "model cap" if p.at_cap else f"{p.rul_lower:.0f}–{p.rul_upper:.0f} {p.rul_unit}")
    return ('<div style="display:grid;grid-template-columns:1fr 1fr 1fr;gap:4px 6px">'
            + _value("Vib RMS", _fmt(v.vib_rms, ".3f"), v.vib_unit if v.vib_rms is not None else "")
            + velocity
            + _value("Temp", _fmt(v.temperature_c, ".1f"), "°C" if v.temperature_c is not None else "", slope)
            + _value("Health", _fmt(v.health_index, ".2f"), "", health_sub,
                     colour=ALARM_HEX["active"] if v.anomaly else None)
            + rul + "</div>")


def card_html(a: AssetOverview) -> str:
    """The HTML of an asset's card: alarm state, vitals from the newest feature window, RUL, pills."""
    info = a.asset
    v = vitals(info.config, a.features, a.temperature)
    state = a.alarm_state
    short = {"active": "ACTIVE", "acknowledged": "ACKED", "shelved": "SHELVED"}
    alarm = "normal" if state == "normal" else f"{short.get(state, state.upper())} · {a.worst_severity}"
    pills = [_pill(f"data {a.quality}", None if a.quality == "good" else QUALITY_HEX.get(a.quality, "#ef6c00"))]
    if v.zone is not None:
        pills.append(_pill(f"ISO {v.zone}", ZONE_HEX[v.zone], outline=v.zone in "AB"))
    if v.anomaly:
        pills.append(_pill("anomaly", ALARM_HEX["active"]))
    kind = f"{info.kind or 'asset'} · criticality {info.criticality}" + (
        f" · class {info.config['machine_class']}" if info.config.get("machine_class") else "")
    return (
        f'<div style="border-left:6px solid {ALARM_HEX[state]};padding:0 0 0 10px">'
        '<div style="display:flex;justify-content:space-between;align-items:flex-start;gap:6px">'
        f'<div style="line-height:1.25"><span style="font-weight:700;font-size:1.05rem">{html.escape(info.asset_id)}'
        f'</span><br><span style="font-size:.85rem">{html.escape(info.name)}</span></div>'
        f"{_pill(alarm, None if state == 'normal' else ALARM_HEX[state])}</div>"
        f'<div style="font-size:.72rem;color:#78909c;margin:2px 0 6px">{html.escape(kind)}</div>'
        + _values_html(a, v)
        + f'<div style="margin-top:6px;display:flex;flex-wrap:wrap;gap:4px">{"".join(pills)}</div></div>'
    )
