"""Prescriptions and work orders: the recommendation with its evidence; approve, reject, complete; export.

The list refreshes by itself (a drafted or approved work order shows within seconds); the filters
stay as chosen, and ``?asset=P-101`` (the overview cards' link) opens the page on one asset.
Evidence reads as a table of facts in the dashboard's units (RUL in hours, temperature rates in K/h).
"""

from __future__ import annotations

import json
from typing import Any

import pandas as pd
import streamlit as st

from core.errors import StoreError
from dashboard import _context as ctx
from dashboard import _data, _ui
from dashboard._tables import dashboard_units, evidence_rows, single_typed
from dashboard._text import escape_markdown
from dashboard.auth import Permission, User
from ingest.store import actions
from ingest.store.queries import WorkOrderView

STATUS_COLOURS = {"draft": "blue", "approved": "orange", "rejected": "gray", "done": "green"}
_SHOWN_KEYS = ("recommendation", "evidence", "history", "tasks", "parts", "duration_h", "crew")


def _record(w: WorkOrderView) -> dict[str, Any]:
    return {"id": w.id, "asset_id": w.asset_id, "status": w.status, "title": w.title, "priority": w.priority,
            "due_by": w.due_by.isoformat() if w.due_by else None, "created_at": w.created_at.isoformat(),
            "updated_at": w.updated_at.isoformat(), "updated_by": w.updated_by, "outcome": w.outcome, "body": w.body}


def _exports(orders: list[WorkOrderView]) -> None:
    records = [_record(w) for w in orders]
    flat = pd.DataFrame([{**{k: v for k, v in r.items() if k != "body"},
                          "recommendation": r["body"].get("recommendation", ""),
                          "body_json": json.dumps(r["body"], sort_keys=True)} for r in records])
    c = st.columns([1, 1, 4])
    c[0].download_button("Export JSON", json.dumps(records, indent=2), file_name="work_orders.json",
                         mime="application/json", icon=":material/download:", key="export_json",
                         disabled=not records, on_click="ignore")
    c[1].download_button("Export CSV", flat.to_csv(index=False), file_name="work_orders.csv", mime="text/csv",
                         icon=":material/download:", key="export_csv", disabled=not records, on_click="ignore")


def _act(fn: Any, message: str, *args: Any, **kwargs: Any) -> None:
    try:
        fn(ctx.store(), *args, **kwargs)
    except StoreError as err:
        st.error(str(err))
        return
    _data.invalidate()
    _ui.flash(message)
    st.rerun()


def _evidence_items(evidence: Any) -> None:
    """Evidence as a table of facts: a list of items (id, kind, summary, values), a mapping, or lines.

    Cells are escaped: ``st.table`` renders Markdown, and evidence may quote alarm messages.
    """
    rows = evidence_rows(evidence)
    if not rows:
        st.text(str(evidence))
        return
    if all(not r["Evidence"] and not r["Details"] for r in rows):  # plain lines (or ids): literal text
        st.text("\n".join(f"- {r['Reading']}" for r in rows))
        return
    shown = [{k: escape_markdown(v) for k, v in r.items()} for r in rows]
    if not any(r["Details"] for r in rows):
        shown = [{k: v for k, v in r.items() if k != "Details"} for r in shown]
    st.table(pd.DataFrame(shown), hide_index=True, border="horizontal")


def _body(body: dict[str, Any]) -> None:
    """The prescription behind a work order: recommendation, tasks, parts, evidence; the rest as JSON.

    Its text (a language model's or a person's) is shown with ``st.text``, never as Markdown.
    """
    rec = body.get("recommendation")
    if isinstance(rec, str) and rec:
        st.markdown("**Recommendation**")
        st.text(dashboard_units(rec))
    elif isinstance(rec, dict):
        if rec.get("summary"):
            st.markdown("**Recommendation**")
            st.text(dashboard_units(str(rec["summary"])))
        if rec.get("state"):
            st.caption(f"Decision state: {escape_markdown(str(rec['state']).replace('_', ' '))}")
        acts = rec.get("actions")
        if isinstance(acts, list) and acts:
            st.text("\n".join(dashboard_units(f"{i}. {a.get('what', '')} — {a.get('why', '')}")
                               for i, a in enumerate(acts, 1) if isinstance(a, dict)))
    steps_shown = isinstance(rec, dict) and isinstance(rec.get("actions"), list) and bool(rec["actions"])
    estimate = [f"{float(body['duration_h']):.1f} h" if isinstance(body.get("duration_h"), int | float) else "",
                str(body["crew"]) if isinstance(body.get("crew"), str) else ""]
    if any(estimate):
        st.caption(escape_markdown("Estimate: " + " · ".join(e for e in estimate if e)))
    if isinstance(body.get("description"), str) and body["description"] and not isinstance(rec, dict):
        st.text(dashboard_units(body["description"]))  # the prescriber's description repeats its recommendation
    for key, title in (("tasks", "Tasks"), ("parts", "Parts")):
        if key == "tasks" and steps_shown:
            continue  # the numbered steps above are the tasks, with their reasons
        items = body.get(key)
        if isinstance(items, list) and items:
            st.markdown(f"**{title}**")
            st.text("\n".join(f"- {t}" for t in items))
    # The recommendation's evidence items (id, kind, summary, values) say more than the body's list of ids.
    evidence = (rec.get("evidence") if isinstance(rec, dict) else None) or body.get("evidence")
    if evidence:
        st.markdown("**Evidence**")
        _evidence_items(evidence)
    rest = {k: v for k, v in body.items() if k not in _SHOWN_KEYS}
    if rest:
        with st.expander("Other details"):
            st.json(rest)


def _decide(w: WorkOrderView, user: User) -> None:
    if w.status == "draft":
        c = st.columns(2)
        with c[0].form(f"approve-{w.id}", border=True):
            note = st.text_input("Note (optional)", key=f"approve-note-{w.id}")
            if st.form_submit_button("Approve", type="primary", icon=":material/thumb_up:"):
                _act(actions.approve_work_order, f"Work order {w.id} approved", w.id, user.name, note=note)
        with c[1].form(f"reject-{w.id}", border=True):
            reason = st.text_input("Reason for rejecting (required)", key=f"reject-reason-{w.id}")
            if st.form_submit_button("Reject", icon=":material/thumb_down:"):
                _act(actions.reject_work_order, f"Work order {w.id} rejected", w.id, user.name, reason)
    elif w.status == "approved":
        with st.form(f"complete-{w.id}", border=True):
            outcome = st.text_area("Outcome: what was found and done (required)", key=f"outcome-{w.id}")
            if st.form_submit_button("Complete", type="primary", icon=":material/task_alt:"):
                _act(actions.complete_work_order, f"Work order {w.id} completed", w.id, user.name, outcome)


def _work_order(w: WorkOrderView, user: User) -> None:
    # expander labels are Markdown: the title is escaped to show literally
    label = escape_markdown(f"#{w.id} · {w.asset_id} · {w.title} · {w.status} · {w.priority}")
    with st.expander(label, expanded=w.status == "draft", key=f"wo-{w.id}"):
        top = st.columns([1, 5])
        with top[0]:
            st.badge(w.status, color=STATUS_COLOURS.get(w.status, "gray"))  # type: ignore[arg-type]
        top[1].caption(f"priority {w.priority} · created {_ui.fmt_time(w.created_at)}"
                       + (f" · due {_ui.fmt_time(w.due_by)}" if w.due_by else "")
                       + (f" · last change by {escape_markdown(w.updated_by)} {_ui.ago(w.updated_at)}"
                          if w.updated_by else ""))
        _body(w.body)
        if w.outcome:
            st.markdown("**Outcome**")
            st.text(w.outcome)
        if w.history:
            st.markdown("**History**")
            st.dataframe(single_typed(pd.DataFrame(list(w.history))), hide_index=True)
        if user.can(Permission.APPROVE):
            _decide(w, user)
        elif w.status in ("draft", "approved"):
            st.caption("Approving, rejecting and completing work orders needs the engineer role.")


def _asset_filter(url: str) -> str:
    """The asset picker, starting on ``?asset=`` when the page was opened from an asset's card."""
    ids = ["all"] + [a.asset_id for a in _data.load_assets(url)]
    wanted = st.query_params.get("asset")
    chosen = st.selectbox("Asset", ids, index=ids.index(wanted) if wanted in ids else 0, key="wo_asset")
    if chosen == "all":
        st.query_params.pop("asset", None)
    elif chosen != wanted:
        st.query_params["asset"] = chosen
    return str(chosen)


@st.fragment(run_every=_ui.REFRESH_S)
def _orders(url: str, statuses: tuple[str, ...], asset_id: str, user: User) -> None:
    """The work orders of the filter, live: new drafts and decisions by others show without a reload."""
    orders = _data.load_work_orders(url, statuses or None, None if asset_id == "all" else asset_id, 500)
    orders = sorted(orders, key=lambda w: w.status != "draft")  # decisions first, newest first within
    drafts = [w for w in orders if w.status == "draft"]
    st.caption(f"{len(orders)} work order(s) shown; {len(drafts)} prescription(s) awaiting a decision. "
               f"Live: refreshes every {_ui.REFRESH_S:g} s.")
    _exports(orders)
    if not orders:
        st.info("No work orders match. The prescriber drafts work orders here, with its recommendation and "
                "evidence, for an engineer to approve or reject; none have been drafted yet for this selection.")
    for w in orders:
        _work_order(w, user)


user = ctx.require()
st.title("Prescriptions & work orders")
url = ctx.store_url()
f = st.columns([2, 1])
statuses = f[0].multiselect("Status", list(actions.WORK_ORDER_STATUSES), default=["draft", "approved"],
                            key="wo_status")
with f[1]:
    asset_filter = _asset_filter(url)
_orders(url, tuple(statuses), asset_filter, user)
