"""Alarms in the spirit of ISA-18.2: active, acknowledged, shelved (reason, expiry), cleared."""

from __future__ import annotations

from datetime import timedelta

import pandas as pd
import streamlit as st

from core.errors import StoreError
from core.wire import utcnow
from dashboard import _context as ctx
from dashboard import _data, _ui
from dashboard.auth import Permission, User
from ingest.store import actions
from ingest.store.queries import AlarmView

SHELVE_FOR = {"1 h": timedelta(hours=1), "4 h": timedelta(hours=4), "8 h": timedelta(hours=8),
              "12 h (a shift)": timedelta(hours=12), "24 h": timedelta(hours=24), "3 days": timedelta(days=3),
              "7 days": timedelta(days=7)}


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


def _alarm_row(alarm: AlarmView, user: User) -> None:
    with st.container(border=True, key=f"alarm-{alarm.id}"):
        cols = st.columns([4, 2, 1.3, 1.3], vertical_alignment="center")
        cols[0].markdown(f"{_ui.SEVERITY_ICONS.get(alarm.severity, '')} **{alarm.asset_id}** · {alarm.kind} · "
                         f"*{alarm.severity}*  \n{alarm.message}")
        detail = f"raised {_ui.fmt_time(alarm.raised_at)} ({_ui.ago(alarm.raised_at)})"
        if alarm.acked_by:
            detail += f"  \nacknowledged by {alarm.acked_by} {_ui.ago(alarm.acked_at)}"
        if alarm.state == "shelved":
            detail += (f"  \nshelved by {alarm.shelved_by or '?'} until {_ui.fmt_time(alarm.shelved_until)}: "
                       f"{alarm.shelve_reason}")
        cols[1].caption(detail)
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
        "id": a.id, "asset": a.asset_id, "kind": a.kind, "severity": a.severity, "raised": a.raised_at,
        "cleared": a.cleared_at, "acknowledged by": a.acked_by, "acknowledged": a.acked_at,
        "last shelved by": a.shelved_by, "shelve reason": a.shelve_reason, "message": a.message,
    } for a in alarms]), hide_index=True, key="cleared_table")


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
asset_filter = st.selectbox("Asset", ["all"] + [a.asset_id for a in _data.load_assets(url)], key="alarm_asset")
asset_id = None if asset_filter == "all" else asset_filter
open_alarms = _data.load_alarms(url, ("active", "acknowledged", "shelved"), asset_id, 1000)
by_state = {s: [a for a in open_alarms if a.state == s] for s in ("active", "acknowledged", "shelved")}
cleared = _data.load_alarms(url, ("cleared",), asset_id, 200)

k = st.columns(4)
k[0].metric("Active (unacknowledged)", len(by_state["active"]))
k[1].metric("Acknowledged", len(by_state["acknowledged"]))
k[2].metric("Shelved", len(by_state["shelved"]))
k[3].metric("Cleared (latest 200)", len(cleared))

tabs = st.tabs([f"Active ({len(by_state['active'])})", f"Acknowledged ({len(by_state['acknowledged'])})",
                f"Shelved ({len(by_state['shelved'])})", "Cleared"])
empty = {"active": "No unacknowledged alarms.", "acknowledged": "No acknowledged alarms waiting to clear.",
         "shelved": "No shelved alarms."}
for tab, state in zip(tabs[:3], ("active", "acknowledged", "shelved"), strict=True):
    with tab:
        if not by_state[state]:
            st.caption(empty[state])
        for a in by_state[state]:
            _alarm_row(a, user)
with tabs[3]:
    if cleared:
        _table(cleared)
    else:
        st.caption("No cleared alarms yet.")
st.caption("Alarms clear when their condition returns to normal. Shelving hides an alarm for a limited time "
           "(at most 7 days) with a reason; it returns when the time is up.")
