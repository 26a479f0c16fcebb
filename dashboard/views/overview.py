"""Plant overview: every asset by site and line, refreshed live."""

from __future__ import annotations

import html
from itertools import groupby

import streamlit as st

from dashboard import _context as ctx
from dashboard import _data, _ui
from dashboard._limits import zone_from_features
from ingest.store.queries import AssetOverview

REFRESH_S = 2.0
CARDS_PER_ROW = 4
ALARM_HEX = {"active": "#c62828", "acknowledged": "#ef6c00", "shelved": "#6a1b9a", "normal": "#b0bec5"}
QUALITY_HEX = {"stale": "#ef6c00", "suspect": "#ef6c00", "flatline": "#c62828", "silent": "#c62828",
               "no data": "#78909c"}
ZONE_HEX = {"A": "#2e7d32", "B": "#7cb342", "C": "#ef6c00", "D": "#c62828"}
_PILL = "display:inline-block;font-size:.72rem;padding:1px 7px;border-radius:9px;white-space:nowrap;"


def _pill(text: str, colour: str | None) -> str:
    """A small label; muted unless ``colour`` marks an abnormal state (ISA-101: colour means abnormal)."""
    if colour is None:
        return f'<span style="{_PILL}color:#546e7a;border:1px solid #cfd8dc">{html.escape(text)}</span>'
    return f'<span style="{_PILL}color:#fff;background:{colour}">{html.escape(text)}</span>'


def _value(label: str, value: str, unit: str, sub: str = "") -> str:
    sub_html = f'<div style="font-size:.72rem;color:#78909c">{html.escape(sub)}</div>' if sub else ""
    return (f'<div><div style="font-size:.72rem;color:#78909c">{html.escape(label)}</div>'
            f'<div style="font-size:1.25rem;font-weight:600;line-height:1.2">{html.escape(value)}'
            f'<span style="font-size:.75rem;font-weight:400;color:#78909c"> {html.escape(unit)}</span></div>'
            f"{sub_html}</div>")


def _card_html(a: AssetOverview) -> str:
    info, vib, temp, p = a.asset, a.vibration, a.temperature, a.prediction
    state = a.alarm_state
    short = {"active": "ACTIVE", "acknowledged": "ACKED", "shelved": "SHELVED"}
    alarm = "normal" if state == "normal" else f"{short.get(state, state.upper())} · {a.worst_severity}"
    zone = zone_from_features(a.features, str(info.config.get("machine_class", "II")))
    pills = [_pill(f"data {a.quality}", None if a.quality == "good" else QUALITY_HEX.get(a.quality, "#ef6c00"))]
    if zone is not None:
        pills.append(_pill(f"ISO {zone[0]}" + (f" · {zone[1]:.2f} mm/s" if zone[1] is not None else ""),
                           ZONE_HEX[zone[0]] if zone[0] in "CD" else None))
    if p is not None and p.health_index is not None:
        pills.append(_pill(f"health {p.health_index:.2f}", None))
    rul = (_value("RUL", f"{p.rul_median:.0f}", p.rul_unit,
                  f"{p.rul_lower:.0f}–{p.rul_upper:.0f} {p.rul_unit} · {p.coverage:.0%}") if p is not None
           else _value("RUL", "—", "", "none yet"))
    kind = f"{info.kind or 'asset'} · criticality {info.criticality}" + (
        f" · class {info.config['machine_class']}" if info.config.get("machine_class") else "")
    return (
        f'<div style="border-left:6px solid {ALARM_HEX[state]};padding:0 0 0 10px">'
        '<div style="display:flex;justify-content:space-between;align-items:flex-start;gap:6px">'
        f'<div style="line-height:1.25"><span style="font-weight:700;font-size:1.05rem">{html.escape(info.asset_id)}'
        f'</span><br><span style="font-size:.85rem">{html.escape(info.name)}</span></div>'
        f"{_pill(alarm, None if state == 'normal' else ALARM_HEX[state])}</div>"
        f'<div style="font-size:.72rem;color:#78909c;margin:2px 0 6px">{html.escape(kind)}</div>'
        '<div style="display:grid;grid-template-columns:1fr 1fr 1fr;gap:4px">'
        + _value("Vib RMS", f"{vib.v_rms:.3f}" if vib else "—", vib.unit if vib else "")
        + _value("Temp", f"{temp.v_mean:.1f}" if temp else "—", "°C" if temp else "")
        + rul + "</div>"
        f'<div style="margin-top:6px;display:flex;flex-wrap:wrap;gap:4px">{"".join(pills)}</div></div>'
    )


def _card(a: AssetOverview) -> None:
    with st.container(border=True, key=f"asset-card-{a.asset.asset_id}"):
        st.markdown(_card_html(a), unsafe_allow_html=True)
        foot = st.columns([3, 2], vertical_alignment="center")
        foot[0].caption(f"updated {_ui.ago(a.last_update)}")
        with foot[1]:
            st.page_link("views/asset.py", label="Details", icon=":material/arrow_forward:",
                         query_params={"asset": a.asset.asset_id})


def _kpis(rows: list[AssetOverview]) -> None:
    open_alarms = [al for r in rows for al in r.open_alarms]
    k = st.columns(5)
    k[0].metric("Assets", len(rows))
    k[1].metric("Reporting", sum(r.quality == "good" for r in rows),
                help="Assets whose newest data is fresh and of good quality.")
    k[2].metric("Unacknowledged alarms", sum(al.state == "active" for al in open_alarms))
    k[3].metric("Acknowledged / shelved", f"{sum(al.state == 'acknowledged' for al in open_alarms)} / "
                                          f"{sum(al.state == 'shelved' for al in open_alarms)}")
    k[4].metric("With RUL prediction", sum(r.prediction is not None for r in rows))


@st.fragment(run_every=REFRESH_S)
def _live() -> None:
    rows = _data.load_overview(ctx.store_url())
    if not rows:
        st.info("No assets are registered yet. They appear when the edge agent or `genedge demo` registers "
                "them and readings arrive.")
        return
    _kpis(rows)
    for site, by_site in groupby(rows, key=lambda r: r.asset.site or "(no site)"):
        st.subheader(f"Site {site}", divider="gray")
        for line, by_line in groupby(list(by_site), key=lambda r: r.asset.line or "(no line)"):
            st.markdown(f"##### {line}")
            assets = list(by_line)
            for i in range(0, len(assets), CARDS_PER_ROW):
                cols = st.columns(CARDS_PER_ROW)
                for col, a in zip(cols, assets[i:i + CARDS_PER_ROW], strict=False):
                    with col:
                        _card(a)
    st.caption(f"Live: refreshes every {REFRESH_S:g} s. Stale means no data for {_data.STALE_AFTER.seconds} s.")


ctx.require()
st.title("Plant overview")
_live()
