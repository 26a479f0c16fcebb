"""Alarms in the spirit of ISA-18.2: active, acknowledged, shelved (reason, expiry), cleared.

The page refreshes by itself. Each alarm shows its priority in a colour that does not depend on
whether it was acknowledged (the state is shown beside it), its diagnosis, and a link to the
asset's open work order. Above the lists, the alarm system's performance as EEMUA 191 counts it.
"""

from __future__ import annotations

from datetime import timedelta
from typing import Literal

import pandas as pd
import streamlit as st

from core.errors import StoreError
from core.wire import utcnow
from dashboard import _context as ctx
from dashboard import _data, _ui
from dashboard._context import _open_store
from dashboard._text import escape_markdown
from dashboard.auth import Permission, User
from ingest.store import actions, queries
from ingest.store.queries import AlarmKpis, AlarmView, WorkOrderView

REFRESH_S = 5.0
SHELVE_FOR = {"1 h": timedelta(hours=1), "4 h": timedelta(hours=4), "8 h": timedelta(hours=8),
              "12 h (a shift)": timedelta(hours=12), "24 h": timedelta(hours=24), "3 days": timedelta(days=3),
              "7 days": timedelta(days=7)}
KPI_WINDOWS = {"last 24 h": 24, "last 7 days": 24 * 7, "last 30 days": 24 * 30}
#: Priority colours: the urgency of an alarm, the same whether or not it was acknowledged.
PRIORITY_COLOURS: dict[str, Literal["red", "orange", "yellow", "blue", "gray"]] = {
    "critical": "red", "high": "orange", "medium": "yellow", "low": "blue"}
#: EEMUA 191 benchmarks per operator: average new alarms per 10 minutes, and the peak.
EEMUA_AVG_ACCEPTABLE, EEMUA_AVG_MANAGEABLE, EEMUA_PEAK = 1.0, 2.0, 10


@st.cache_data(ttl=timedelta(seconds=10), show_spinner=False)
def _load_kpis(url: str, hours: int, operators: int) -> AlarmKpis:
    return queries.alarm_kpis(_open_store(url), since=utcnow() - timedelta(hours=hours), operators=operators)


@st.cache_data(ttl=timedelta(seconds=5), show_spinner=False)
def _load_open_work_orders(url: str) -> dict[str, WorkOrderView]:
    return queries.open_work_orders_by_asset(_open_store(url))


def _done(message: str) -> None:
    _data.invalidate()
    _ui.flash(message)
    st.rerun()


def _acknowledge(alarm: AlarmView, user: User) -> None:
    try:
        actions.acknowledge_alarm(ctx.store(), alarm.id, user.name)
    except StoreError as err:
        st.error(str(err))
        return
    _done(f"Alarm {alarm.id} on {alarm.asset_id} acknowledged by {user.name}")


def _shelve_form(alarm: AlarmView, user: User) -> None:
    with st.popover("Shelve", icon=":material/snooze:", key=f"shelve-pop-{alarm.id}"), \
            st.form(f"shelve-{alarm.id}", border=False):
        reason = st.text_input("Reason (required)", key=f"shelve-reason-{alarm.id}",
                               placeholder="e.g. sensor cable being replaced")
        duration = st.selectbox("For", list(SHELVE_FOR), index=3, key=f"shelve-for-{alarm.id}")
        if st.form_submit_button("Shelve alarm", type="primary"):
            until = utcnow() + SHELVE_FOR[duration]
            try:
                actions.shelve_alarm(ctx.store(), alarm.id, user.name, reason, until)
            except StoreError as err:
                st.error(str(err))
                return
            _done(f"Alarm {alarm.id} shelved until {_ui.fmt_time(until)}")


def _work_order_link(alarm: AlarmView, work_orders: dict[str, WorkOrderView]) -> None:
    wo = work_orders.get(alarm.asset_id)
    if wo is None:
        st.caption("No open work order for this asset.")
        return
    st.page_link("views/work_orders.py", label=f"Work order #{wo.id} · {wo.status} · {escape_markdown(wo.title[:100])}",
                 icon=":material/build:", query_params={"wo": str(wo.id), "asset": alarm.asset_id})


def _history(alarm: AlarmView) -> str:
    detail = f"raised {_ui.fmt_time(alarm.raised_at)} ({_ui.ago(alarm.raised_at)})"
    if alarm.escalated_at is not None:
        detail += (f"  \nescalated from {alarm.escalated_from or '?'} {_ui.ago(alarm.escalated_at)}"
                   f" by {escape_markdown(alarm.escalated_by or '?')}")
    if alarm.acked_by:
        before = "" if alarm.acknowledged else ", before the escalation"
        detail += f"  \nacknowledged by {escape_markdown(alarm.acked_by)} {_ui.ago(alarm.acked_at)}{before}"
    if alarm.state == "shelved":
        detail += (f"  \nshelved by {escape_markdown(alarm.shelved_by or '?')} until "
                   f"{_ui.fmt_time(alarm.shelved_until)}: {escape_markdown(alarm.shelve_reason or '')}")
    return detail


def _alarm_row(alarm: AlarmView, user: User, work_orders: dict[str, WorkOrderView]) -> None:
    with st.container(border=True, key=f"alarm-{alarm.id}"):
        cols = st.columns([4, 2, 1.3, 1.3], vertical_alignment="center")
        with cols[0]:
            st.badge(alarm.severity, icon=_ui.SEVERITY_ICONS.get(alarm.severity),
                     color=PRIORITY_COLOURS.get(alarm.severity, "gray"))
            st.markdown(f"**{escape_markdown(alarm.asset_id)}** · {escape_markdown(alarm.kind)} · *{alarm.state}*  \n"
                        f"{escape_markdown(alarm.message) or 'No diagnosis recorded.'}")
            _work_order_link(alarm, work_orders)
        cols[1].caption(_history(alarm))
        if alarm.state == "active" and user.can(Permission.ACKNOWLEDGE) and cols[2].button(
                "Acknowledge", key=f"ack-{alarm.id}", type="primary", icon=":material/done:"):
            _acknowledge(alarm, user)
        if alarm.state in ("active", "acknowledged") and user.can(Permission.SHELVE):
            with cols[3]:
                _shelve_form(alarm, user)
        if alarm.state == "shelved" and user.can(Permission.UNSHELVE) and cols[3].button(
                "Unshelve", key=f"unshelve-{alarm.id}", icon=":material/alarm_on:"):
            try:
                actions.unshelve_alarm(ctx.store(), alarm.id)
            except StoreError as err:
                st.error(str(err))
            else:
                _done(f"Alarm {alarm.id} unshelved")


def _table(alarms: list[AlarmView]) -> None:
    st.dataframe(pd.DataFrame([{
        "id": a.id, "asset": a.asset_id, "kind": a.kind, "priority": a.severity, "raised": a.raised_at,
        "cleared": a.cleared_at, "acknowledged by": a.acked_by, "acknowledged": a.acked_at,
        "escalated from": a.escalated_from, "last shelved by": a.shelved_by, "shelve reason": a.shelve_reason,
        "diagnosis": a.message,
    } for a in alarms]), hide_index=True, key="cleared_table")


def _kpi_view(url: str, hours: int, operators: int) -> None:
    try:
        k = _load_kpis(url, hours, operators)
    except StoreError as err:
        st.error(f"Cannot compute the alarm KPIs: {err}")
        return
    m = st.columns(6)
    rating = ("very likely acceptable" if k.avg_per_10min <= EEMUA_AVG_ACCEPTABLE
              else "manageable" if k.avg_per_10min <= EEMUA_AVG_MANAGEABLE else "likely over-demanding")
    m[0].metric("Alarms per 10 min (average)", f"{k.avg_per_10min:.2f}",
                help=f"New alarms per operator per 10 minutes. EEMUA 191: about {EEMUA_AVG_ACCEPTABLE:g} is very "
                     f"likely acceptable, {EEMUA_AVG_MANAGEABLE:g} manageable. Here: {rating}.")
    m[1].metric("Peak per 10 min", f"{k.peak_per_10min:g}",
                help=f"The busiest 10 minutes ({_ui.fmt_time(k.peak_at)}); EEMUA 191: under {EEMUA_PEAK}.")
    m[2].metric("Floods", k.floods, help=f"10-minute windows with more than {queries.FLOOD_PER_10_MIN} new alarms "
                                        f"per operator: {k.flood_share:.0%} of the {k.windows} windows.")
    m[3].metric("Chattering", len(k.chattering),
                help=f"Alarms (asset and kind) raised {queries.CHATTER_COUNT} times or more within "
                     f"{queries.CHATTER_WITHIN.seconds} s.")
    m[4].metric("Stale", len(k.stale_ids), help=f"Alarms standing (not cleared, not shelved) for more than "
                                               f"{queries.STALE_AFTER.total_seconds() / 3600:.0f} h.")
    m[5].metric("Raised", k.raised, help="Alarms raised in the window.")
    st.caption("By priority: " + " · ".join(f"{p} {n}" for p, n in k.by_priority.items()))
    if k.chattering:
        st.caption("Chattering: " + ", ".join(f"{escape_markdown(a)} {escape_markdown(kind)} ({n}x)"
                                              for a, kind, n in k.chattering[:10]))


def _live(url: str, asset_id: str | None, user: User, hours: int, operators: int) -> None:
    with st.expander("Alarm system performance (EEMUA 191)", expanded=True):
        _kpi_view(url, hours, operators)
    open_alarms = _data.load_alarms(url, ("active", "acknowledged", "shelved"), asset_id, 1000)
    by_state = {s: [a for a in open_alarms if a.state == s] for s in ("active", "acknowledged", "shelved")}
    cleared = _data.load_alarms(url, ("cleared",), asset_id, 200)
    try:
        work_orders = _load_open_work_orders(url)
    except StoreError as err:
        st.error(f"Cannot read the work orders: {err}")
        work_orders = {}

    k = st.columns(4)
    k[0].metric("Active (unacknowledged)", len(by_state["active"]))
    k[1].metric("Acknowledged", len(by_state["acknowledged"]))
    k[2].metric("Shelved", len(by_state["shelved"]))
    k[3].metric("Cleared (latest 200)", len(cleared))

    tabs = st.tabs([f"Active ({len(by_state['active'])})", f"Acknowledged ({len(by_state['acknowledged'])})",
                    f"Shelved ({len(by_state['shelved'])})", "Cleared"])
    empty = {"active": "No unacknowledged alarms.", "acknowledged": "No acknowledged alarms waiting to clear.",
             "shelved": "No shelved alarms."}
    rank = {s: i for i, s in enumerate(reversed(actions.SEVERITIES))}
    for tab, state in zip(tabs[:3], ("active", "acknowledged", "shelved"), strict=True):
        with tab:
            if not by_state[state]:
                st.caption(empty[state])
            for a in sorted(by_state[state], key=lambda a: rank.get(a.severity, len(rank))):  # most urgent first
                _alarm_row(a, user, work_orders)
    with tabs[3]:
        if cleared:
            _table(cleared)
        else:
            st.caption("No cleared alarms yet.")
    st.caption(f"Live: refreshes every {REFRESH_S:g} s. An alarm raises once its condition has held for the "
               "on-delay and clears once back to normal (below its limit minus the deadband) for the off-delay; "
               "an escalation to a higher priority makes it active again. Shelving hides an alarm for a limited "
               "time (at most 7 days) with a reason; it returns when the time is up.")


user = ctx.require()
st.title("Alarms")
try:
    expired = actions.unshelve_expired(ctx.store())
except StoreError as err:
    st.error(str(err))
    expired = 0
if expired:
    _data.invalidate()
    st.toast(f"{expired} shelved alarm(s) reached their expiry and returned", icon=":material/alarm_on:")

url = ctx.store_url()
f = st.columns([2, 1, 1])
asset_filter = f[0].selectbox("Asset", ["all"] + [a.asset_id for a in _data.load_assets(url)], key="alarm_asset")
window = f[1].selectbox("KPI window", list(KPI_WINDOWS), key="alarm_kpi_window")
operators = int(f[2].number_input("Operators", min_value=1, max_value=50, value=1, step=1, key="alarm_operators",
                                  help="Operator positions sharing these alarms: rates are per operator."))
st.fragment(_live, run_every=REFRESH_S)(url, None if asset_filter == "all" else asset_filter, user,
                                        KPI_WINDOWS[window], operators)
