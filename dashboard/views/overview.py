"""Plant overview: every asset, most urgent first, refreshed live.

Assets are ordered by the prescriber's decision state (stop now, urgent, plan, insufficient
evidence, watch, healthy), then by the severity of their worst open alarm. Each card links to the
asset's details and to its open work order.
"""

from __future__ import annotations

import streamlit as st

from dashboard import _context as ctx
from dashboard import _data, _ui
from dashboard._cards import card_html, kpis_html
from dashboard._status import AssetDecision, urgency_key
from ingest.store.queries import AssetOverview, WorkOrderView
from prescribe.workorders import work_order_number

CARDS_PER_ROW = 4


def _card(a: AssetOverview, decision: AssetDecision | None, order: WorkOrderView | None) -> None:
    with st.container(border=True, key=f"asset-card-{a.asset.asset_id}"):
        st.markdown(card_html(a, decision), unsafe_allow_html=True)
        foot = st.columns([3, 2], vertical_alignment="center")
        foot[0].caption(f"updated {_ui.ago(a.last_update)}")
        with foot[1]:
            st.page_link("views/asset.py", label="Details", icon=":material/arrow_forward:",
                         query_params={"asset": a.asset.asset_id})
        if order is not None:
            st.page_link("views/work_orders.py", label=f"{work_order_number(order.id)} · {order.status}",
                         icon=":material/build:", query_params={"asset": a.asset.asset_id},
                         help=f"Open work order: {order.title} (priority {order.priority})")


def _open_orders(url: str) -> dict[str, WorkOrderView]:
    """The newest open (draft or approved) work order of each asset."""
    out: dict[str, WorkOrderView] = {}
    for w in _data.load_work_orders(url, ("draft", "approved"), None, 500):  # newest first
        out.setdefault(w.asset_id, w)
    return out


@st.fragment(run_every=_ui.REFRESH_S)
def _live() -> None:
    url = ctx.store_url()
    rows = [r for r in _data.load_overview(url) if r.monitored]
    if not rows:
        st.info("No assets are registered yet. They appear when the edge agent or `genedge demo` registers "
                "them and readings arrive.")
        return
    decisions = _data.load_decisions(url, tuple(sorted(r.asset.asset_id for r in rows)), ctx.settings().store.time_scale)
    orders = _open_orders(url)
    rows.sort(key=lambda r: urgency_key(r, decisions.get(r.asset.asset_id)))
    st.markdown(kpis_html(rows, decisions), unsafe_allow_html=True)
    for i in range(0, len(rows), CARDS_PER_ROW):
        cols = st.columns(CARDS_PER_ROW)
        for col, a in zip(cols, rows[i:i + CARDS_PER_ROW], strict=False):
            with col:
                _card(a, decisions.get(a.asset.asset_id), orders.get(a.asset.asset_id))
    st.caption(f"Live: refreshes every {_ui.REFRESH_S:g} s. Most urgent first: the decision state the prescriber "
               "acts on (docs/decisions.md), then the worst open alarm. Values come from the edge agent's newest "
               f"feature window (temperature from its raw readings); stale means no data for "
               f"{_data.STALE_AFTER.seconds} s. Velocity and ISO zone need windows of at least 0.2 s of vibration.")


ctx.require()
st.title("Plant overview")
_live()
