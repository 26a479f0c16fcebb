"""Plant overview: every asset by site and line, refreshed live."""

from __future__ import annotations

from itertools import groupby

import streamlit as st

from dashboard import _context as ctx
from dashboard import _data, _ui
from dashboard._limits import zone_from_features
from ingest.store.queries import AssetOverview

REFRESH_S = 2.0
CARDS_PER_ROW = 4


def _card(a: AssetOverview) -> None:
    info = a.asset
    with st.container(border=True, key=f"asset-card-{info.asset_id}"):
        top = st.columns([3, 2], vertical_alignment="center")
        top[0].markdown(f"**{info.asset_id}** · {info.name}")
        with top[1]:
            _ui.alarm_badge(a.alarm_state, a.worst_severity)
        st.caption(f"{info.kind or 'asset'} · criticality {info.criticality}"
                   + (f" · class {info.config['machine_class']}" if info.config.get("machine_class") else ""))
        m = st.columns(3)
        vib, temp = a.vibration, a.temperature
        m[0].metric("Vibration RMS", f"{vib.v_rms:.3f} {vib.unit}" if vib else "—")
        m[1].metric("Temperature", f"{temp.v_mean:.1f} °C" if temp else "—")
        p = a.prediction
        if p is None:
            m[2].metric("RUL", "—", help="No RUL prediction for this asset yet.")
        else:
            m[2].metric("RUL", f"{p.rul_median:.0f} {p.rul_unit}",
                        help=f"{p.coverage:.0%} interval {p.rul_lower:.0f}–{p.rul_upper:.0f} {p.rul_unit}; "
                             f"model {p.model_name} {p.model_version}")
        detail = []
        if p is not None:
            detail.append(f"interval {p.rul_lower:.0f}–{p.rul_upper:.0f} {p.rul_unit}")
            if p.health_index is not None:
                detail.append(f"health index {p.health_index:.2f}")
        if detail:
            st.caption(" · ".join(detail))
        b = st.columns([1, 1], vertical_alignment="center")
        with b[0]:
            _ui.quality_badge(a.quality)
        with b[1]:
            zone = zone_from_features(a.features, str(info.config.get("machine_class", "II")))
            _ui.zone_badge(*(zone or (None, None)))
        foot = st.columns([3, 2], vertical_alignment="center")
        foot[0].caption(f"updated {_ui.ago(a.last_update)}")
        with foot[1]:
            st.page_link("views/asset.py", label="Details", icon=":material/arrow_forward:",
                         query_params={"asset": info.asset_id})


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
