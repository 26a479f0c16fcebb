"""Plant overview: the fleet by site, worst site first, every asset most urgent first, refreshed live.

At the top, a summary row per site (assets per decision state, open work orders, unacknowledged
alarms, how old its newest data is and how many assets are stale) and a fleet total when there is
more than one site. Below it, the asset cards grouped by site in the same order. Sites rank by
their worst decision state, then the number of assets in it, then stale assets (:mod:`dashboard._fleet`);
inside a site, assets are ordered by the prescriber's decision state (stop now, urgent, plan,
insufficient evidence, watch, healthy), then by the severity of their worst open alarm. Each card
links to the asset's details and to its open work order.
"""

from __future__ import annotations

from collections import Counter
from datetime import timedelta

import streamlit as st

from core.wire import utcnow
from dashboard import _context as ctx
from dashboard import _data, _fleet, _ui
from dashboard._cards import card_html, kpis_html
from dashboard._status import AssetDecision
from ingest.store.queries import AssetOverview, WorkOrderView
from prescribe.workorders import work_order_number

CARDS_PER_ROW = 4
#: Open work orders read for the cards' links and the summary's counts (the store's per-asset queries use the same).
OPEN_ORDERS_LIMIT = 10_000


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


def _open_orders(url: str) -> tuple[dict[str, WorkOrderView], Counter[str]]:
    """The newest open (draft or approved) work order of each asset, and how many each asset has open."""
    newest: dict[str, WorkOrderView] = {}
    count: Counter[str] = Counter()
    for w in _data.load_work_orders(url, ("draft", "approved"), None, OPEN_ORDERS_LIMIT):  # newest first
        newest.setdefault(w.asset_id, w)
        count[w.asset_id] += 1
    return newest, count


def _group(group: _fleet.SiteGroup, decisions: dict[str, AssetDecision], orders: dict[str, WorkOrderView]) -> None:
    """A site's heading and its asset cards, most urgent first."""
    st.subheader(group.site, anchor=False)
    st.caption(_fleet.site_line(group.summary))
    rows = group.rows
    for i in range(0, len(rows), CARDS_PER_ROW):
        cols = st.columns(CARDS_PER_ROW)
        for col, a in zip(cols, rows[i:i + CARDS_PER_ROW], strict=False):
            with col:
                _card(a, decisions.get(a.asset.asset_id), orders.get(a.asset.asset_id))


@st.fragment(run_every=_ui.REFRESH_S)
def _live() -> None:
    url = ctx.store_url()
    rows = [r for r in _data.load_overview(url) if r.monitored]
    if not rows:
        st.info("No assets are registered yet. They appear when the edge agent or `genedge demo` registers "
                "them and readings arrive.")
        return
    decisions = _data.load_decisions(url, tuple(sorted(r.asset.asset_id for r in rows)), ctx.settings().store.time_scale)
    orders, order_counts = _open_orders(url)
    now = utcnow()
    stale_after = timedelta(seconds=ctx.settings().dashboard.stale_after_s)
    groups = _fleet.group_by_site(rows, decisions, order_counts, now=now, stale_after=stale_after)
    st.markdown(kpis_html(rows, decisions), unsafe_allow_html=True)
    st.dataframe(_fleet.summary_frame([g.summary for g in groups], now=now), hide_index=True, key="fleet-summary")
    for group in groups:
        _group(group, decisions, orders)
    st.caption(f"Live: refreshes every {_ui.REFRESH_S:g} s. Sites worst first: the most severe decision state among "
               "their assets, then how many assets are in it, then how many have stale data. Inside a site, most "
               "urgent first: the decision state the prescriber acts on (docs/decisions.md), then the worst open "
               "alarm. Values come from the edge agent's newest feature window (temperature from its raw readings); "
               f"stale means no data for {stale_after.total_seconds():g} s (dashboard.stale_after_s). Velocity and "
               "ISO zone need windows of at least 0.2 s of vibration.")


ctx.require()
st.title("Plant overview")
_live()
