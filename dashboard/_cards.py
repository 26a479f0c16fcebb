"""The plant overview's asset cards, its counters and the alarm strip of every page, as HTML.
Pure: no Streamlit, no store.

ISA-101 style: normal is muted and colour marks what is abnormal; the ISO zone keeps the colours
engineers know, outlined while the zone is normal (A, B) and filled from C on. A card's edge and
state label take the colour of the asset's decision state (how urgent it is); an alarm's label
takes its severity's colour, filled while unacknowledged and outlined once acknowledged, so
acknowledging never makes an asset look less urgent than a healthier one.
"""

from __future__ import annotations

import html
from collections.abc import Sequence

from dashboard._features import Vitals, vitals
from dashboard._status import STATE_HELP, STATE_HEX, STATE_LABEL, STATES, AssetDecision, rul_text, urgency_hex, zone_a_hint
from dashboard._ui import rul_label
from ingest.store.queries import AlarmView, AssetOverview

__all__ = ["ALARM_HEX", "QUALITY_HEX", "SEVERITY_HEX", "ZONE_HEX", "alarm_strip_html", "card_html", "kpis_html"]

ALARM_HEX = {"active": "#c62828", "acknowledged": "#ef6c00", "shelved": "#6a1b9a", "normal": "#b0bec5"}
QUALITY_HEX = {"stale": "#ef6c00", "suspect": "#ef6c00", "flatline": "#c62828", "silent": "#c62828",
               "no data": "#78909c"}
ZONE_HEX = {"A": "#2e7d32", "B": "#7cb342", "C": "#ef6c00", "D": "#c62828"}
SEVERITY_HEX = {"critical": "#b71c1c", "high": "#e53935", "medium": "#ef6c00", "low": "#f9a825"}
_SEVERITY_ORDER = ("critical", "high", "medium", "low")
_PILL = "display:inline-block;font-size:.72rem;padding:1px 7px;border-radius:9px;white-space:nowrap;"


def _pill(text: str, colour: str | None, *, outline: bool = False, title: str = "") -> str:
    """A small label; muted unless ``colour`` marks an abnormal state (ISA-101: colour means abnormal).

    ``outline`` draws the colour as text and border only: ISO zones A and B are normal, but keep
    the zone colour engineers know.
    """
    tip = f' title="{html.escape(title)}"' if title else ""
    if colour is None:
        return f'<span{tip} style="{_PILL}color:#546e7a;border:1px solid #cfd8dc">{html.escape(text)}</span>'
    if outline:
        return f'<span{tip} style="{_PILL}color:{colour};border:1px solid {colour}">{html.escape(text)}</span>'
    return f'<span{tip} style="{_PILL}color:#fff;background:{colour}">{html.escape(text)}</span>'


def _value(label: str, value: str, unit: str, sub: str = "", *, colour: str | None = None) -> str:
    sub_html = f'<div style="font-size:.72rem;color:#78909c">{html.escape(sub)}</div>' if sub else ""
    style = f";color:{colour}" if colour else ""
    return (f'<div><div style="font-size:.72rem;color:#78909c">{html.escape(label)}</div>'
            f'<div style="font-size:1.25rem;font-weight:600;line-height:1.2{style}">{html.escape(value)}'
            f'<span style="font-size:.75rem;font-weight:400;color:#78909c"> {html.escape(unit)}</span></div>'
            f"{sub_html}</div>")


def _fmt(x: float | None, spec: str) -> str:
    return "—" if x is None else format(x, spec)


def _values_html(a: AssetOverview, v: Vitals, decision: AssetDecision | None) -> str:
    p = a.prediction
    zone_colour = ZONE_HEX[v.zone] if v.zone in ("C", "D") else None
    short = "window too short" if v.vib_rms is not None and v.velocity_mm_s is None else ""
    velocity = _value("Velocity", _fmt(v.velocity_mm_s, ".2f"), "mm/s" if v.velocity_mm_s is not None else "",
                      f"ISO zone {v.zone}" if v.zone else short, colour=zone_colour)
    # The trend the decision policy judges (over its look-back, in K per plant hour), not the slope inside
    # one short window, which on a healthy machine is mostly noise.
    rate = decision.temperature_rate_k_h if decision is not None else None
    slope = f"{rate:+.1f} K/h" if rate is not None else ""
    health_sub = ("learning baseline" if v.learning else "anomaly" if v.anomaly else "") if v.health_index is not None \
        else ""
    r = rul_text(p, healthy=decision is not None and decision.healthy)
    rul = _value(rul_label(p.rul_unit) if p is not None else "RUL", r.value, r.unit, r.sub)
    return ('<div style="display:grid;grid-template-columns:1fr 1fr 1fr;gap:4px 6px">'
            + _value("Vib RMS", _fmt(v.vib_rms, ".3f"), v.vib_unit if v.vib_rms is not None else "")
            + velocity
            + _value("Temp", _fmt(v.temperature_c, ".1f"), "°C" if v.temperature_c is not None else "", slope)
            + _value("Health", _fmt(v.health_index, ".2f"), "", health_sub,
                     colour=ALARM_HEX["active"] if v.anomaly else None)
            + rul + "</div>")


def _alarm_pill(a: AssetOverview) -> str:
    """The most pressing open alarm: its severity's colour, filled while unacknowledged, outlined once
    acknowledged, muted while shelved."""
    state = a.alarm_state
    if state == "normal":
        return _pill("normal", None)
    short = {"active": "ACTIVE", "acknowledged": "ACKED", "shelved": "SHELVED"}
    severity = a.worst_severity or ""
    text = f"{short.get(state, state.upper())} · {severity}"
    if state == "shelved":
        return _pill(text, ALARM_HEX["shelved"], outline=True)
    colour = SEVERITY_HEX.get(severity, ALARM_HEX["active"])
    return _pill(text, colour, outline=state != "active")


def _state_pill(decision: AssetDecision | None) -> str:
    if decision is None:
        return _pill("state —", None, title="No decision: the asset's evidence could not be gathered.")
    colour = None if decision.healthy else STATE_HEX.get(decision.state)
    return _pill(decision.label, colour, title=STATE_HELP.get(decision.state, ""))


def card_html(a: AssetOverview, decision: AssetDecision | None = None) -> str:
    """The HTML of an asset's card: decision state, alarm, vitals from the newest feature window, RUL, pills.

    Args:
        a: the asset's overview row.
        decision: its decision (``None``: unknown; the edge then takes the worst alarm's severity).
    """
    info = a.asset
    v = vitals(info.config, a.features, a.temperature)
    pills = [_alarm_pill(a),
             _pill(f"data {a.quality}", None if a.quality == "good" else QUALITY_HEX.get(a.quality, "#ef6c00"))]
    if v.zone is not None:
        pills.append(_pill(f"ISO {v.zone}", ZONE_HEX[v.zone], outline=v.zone in "AB"))
    if v.anomaly:
        pills.append(_pill("anomaly", ALARM_HEX["active"]))
    where = " · ".join(x for x in (info.line, info.kind or "asset") if x)
    kind = f"{where} · criticality {info.criticality}" + (
        f" · class {info.config['machine_class']}" if info.config.get("machine_class") else "")
    why = ""
    if decision is not None and not decision.healthy:
        because = decision.reasons[0] if decision.reasons else decision.why
        why = f'<div style="font-size:.75rem;margin:0 0 4px">{html.escape(because)}</div>'
    hint = zone_a_hint(v.zone, decision)
    hint_html = (f'<div style="font-size:.72rem;color:#6a1b9a;margin-top:4px">{html.escape(hint)}</div>'
                 if hint else "")
    return (
        f'<div style="border-left:6px solid {urgency_hex(a, decision)};padding:0 0 0 10px">'
        '<div style="display:flex;justify-content:space-between;align-items:flex-start;gap:6px">'
        f'<div style="line-height:1.25"><span style="font-weight:700;font-size:1.05rem">{html.escape(info.asset_id)}'
        f'</span><br><span style="font-size:.85rem">{html.escape(info.name)}</span></div>'
        f"{_state_pill(decision)}</div>"
        f'<div style="font-size:.72rem;color:#78909c;margin:2px 0 4px">{html.escape(kind)}</div>'
        + why
        + _values_html(a, v, decision)
        + f'<div style="margin-top:6px;display:flex;flex-wrap:wrap;gap:4px">{"".join(pills)}</div>'
        + hint_html + "</div>"
    )


def _kpi(value: str, label: str, colour: str | None = None, title: str = "") -> str:
    style = f' style="border-color:{colour};color:{colour}"' if colour else ""
    tip = f' title="{html.escape(title)}"' if title else ""
    return f'<div class="ge-kpi"{style}{tip}><b>{html.escape(value)}</b><span>{html.escape(label)}</span></div>'


def kpis_html(rows: Sequence[AssetOverview], decisions: dict[str, AssetDecision]) -> str:
    """The overview's counters in one wrapping row: assets by decision state (the non-empty ones,
    most severe first), then alarms, data and predictions."""
    open_alarms = [al for r in rows for al in r.open_alarms]
    states = [decisions[r.asset.asset_id].state for r in rows if r.asset.asset_id in decisions]
    parts = [_kpi(str(len(rows)), "assets")]
    for state in STATES:
        n = states.count(state)
        if n and state != "healthy":
            parts.append(_kpi(str(n), STATE_LABEL[state], STATE_HEX[state], STATE_HELP[state]))
    parts.append(_kpi(str(states.count("healthy")), "healthy", None, STATE_HELP["healthy"]))
    unacked = sum(al.state == "active" for al in open_alarms)
    parts += [
        _kpi(str(unacked), "unacknowledged alarms", ALARM_HEX["active"] if unacked else None),
        _kpi(f"{sum(al.state == 'acknowledged' for al in open_alarms)} / "
             f"{sum(al.state == 'shelved' for al in open_alarms)}", "acked / shelved"),
        _kpi(str(sum(vitals(r.asset.config, r.features).anomaly for r in rows)), "anomaly on", None,
             "Assets whose edge agent reports its adaptive anomaly alarm on (health indicator above the threshold "
             "it learned on the asset's healthy start)."),
        _kpi(f"{sum(r.quality == 'good' for r in rows)} / {len(rows)}", "reporting", None,
             "Assets whose newest data is fresh and of good quality."),
        _kpi(str(sum(r.prediction is not None for r in rows)), "with RUL"),
    ]
    return f'<div class="ge-kpis">{"".join(parts)}</div>'


def alarm_strip_html(alarms: Sequence[AlarmView], clock: str | None = None) -> str:
    """The line at the top of every page: open alarms by state and severity, and the plant's clock.

    Args:
        alarms: the open alarms (active, acknowledged, shelved).
        clock: the simulated plant's clock in words, when the plant is simulated.
    """
    active = [a for a in alarms if a.state == "active"]
    parts = []
    if active:
        by_severity = [f"{n} {s}" for s in _SEVERITY_ORDER if (n := sum(a.severity == s for a in active))]
        worst = next((s for s in _SEVERITY_ORDER if any(a.severity == s for a in active)), "high")
        parts.append(_pill(f"{len(active)} unacknowledged alarm{'s' if len(active) != 1 else ''}",
                           SEVERITY_HEX[worst]) + f"<span>{html.escape(', '.join(by_severity))}</span>")
    else:
        parts.append(_pill("no unacknowledged alarm", None))
    acked = sum(a.state == "acknowledged" for a in alarms)
    shelved = sum(a.state == "shelved" for a in alarms)
    parts.append(f"<span>{acked} acknowledged · {shelved} shelved</span>")
    if clock:
        parts.append(f'<span title="sim.time_acceleration" style="color:#546e7a">simulated plant: '
                     f"{html.escape(clock)}</span>")
    return f'<div class="ge-strip">{"".join(parts)}</div>'
