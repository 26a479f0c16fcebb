"""Plant overview: every asset by site and line, refreshed live."""

from __future__ import annotations

from itertools import groupby

import streamlit as st

from dashboard import _context as ctx
from dashboard import _data, _ui
from dashboard._cards import card_html
from dashboard._features import vitals
from ingest.store.queries import AssetOverview

REFRESH_S = 2.0
CARDS_PER_ROW = 4


def _card(a: AssetOverview) -> None:
    with st.container(border=True, key=f"asset-card-{a.asset.asset_id}"):
        st.markdown(card_html(a), unsafe_allow_html=True)
        foot = st.columns([3, 2], vertical_alignment="center")
        foot[0].caption(f"updated {_ui.ago(a.last_update)}")
        with foot[1]:
            st.page_link("views/asset.py", label="Details", icon=":material/arrow_forward:",
                         query_params={"asset": a.asset.asset_id})


def _kpis(rows: list[AssetOverview]) -> None:
    open_alarms = [al for r in rows for al in r.open_alarms]
    anomalies = sum(vitals(r.asset.config, r.features).anomaly for r in rows)
    k = st.columns(6)
    k[0].metric("Assets", len(rows))
    k[1].metric("Reporting", sum(r.quality == "good" for r in rows),
                help="Assets whose newest data is fresh and of good quality.")
    k[2].metric("Unacknowledged alarms", sum(al.state == "active" for al in open_alarms))
    k[3].metric("Acknowledged / shelved", f"{sum(al.state == 'acknowledged' for al in open_alarms)} / "
                                          f"{sum(al.state == 'shelved' for al in open_alarms)}")
    k[4].metric("Anomaly on", anomalies,
                help="Assets whose edge agent reports its adaptive anomaly alarm on (health indicator above the "
                     "threshold it learned on the asset's healthy start).")
    k[5].metric("With RUL prediction", sum(r.prediction is not None for r in rows))


@st.fragment(run_every=REFRESH_S)
def _live() -> None:
    rows = [r for r in _data.load_overview(ctx.store_url()) if r.monitored]
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
    st.caption(f"Live: refreshes every {REFRESH_S:g} s. Values come from the edge agent's newest feature window "
               f"(temperature from its raw readings); stale means no data for {_data.STALE_AFTER.seconds} s. "
               "Velocity and ISO zone need windows of at least 0.2 s of vibration.")


ctx.require()
st.title("Plant overview")
_live()
