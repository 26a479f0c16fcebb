"""Work orders from recommendations: store the draft, move it through its lifecycle, export it,
and turn recorded outcomes into labels for retraining.

The lifecycle itself (``draft -> approved | rejected``, ``approved -> done``, each step with
who and when in ``body["history"]``) is :mod:`ingest.store.actions`; this module adds what
the prescriber knows: the recommendation in the body, CMMS numbering and layout, and a
structured outcome (what was found, whether the predicted fault was confirmed).
"""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from datetime import datetime
from typing import Any

from core.errors import StoreError
from ingest.store import actions, queries
from prescribe.schema import Recommendation

__all__ = [
    "CSV_COLUMNS",
    "OutcomeLabel",
    "approve",
    "cmms_record",
    "complete",
    "export_csv",
    "export_json",
    "list_work_orders",
    "reject",
    "save_draft",
    "training_labels",
    "work_order_number",
]

#: Columns of the CMMS export, in order.
CSV_COLUMNS = ("work_order_number", "asset_id", "status", "priority", "due_date", "title", "description", "tasks",
               "parts", "duration_h", "crew", "created_at", "created_by", "approved_by", "approved_at", "completed_by",
               "completed_at", "outcome", "evidence", "knowledge")


def work_order_number(work_order_id: int) -> str:
    """The CMMS-style number of a stored work order, e.g. ``WO-000017``."""
    return f"WO-{work_order_id:06d}"


def save_draft(store: Any, rec: Recommendation, *, by: str = "prescriber", at: datetime | None = None) -> Any:
    """Store the recommendation's work-order draft.

    Returns:
        The stored ``WorkOrderView`` (status ``draft``).

    Raises:
        StoreError: the recommendation has no work order (monitor or insufficient evidence),
            the asset is unknown, or the store failed.
    """
    wo = rec.work_order
    if wo is None:
        raise StoreError(f"recommendation for {rec.asset_id} is {rec.status}: it has no work order to store")
    body = {
        "description": wo.description,
        "tasks": list(wo.tasks),
        "parts": list(wo.parts),
        "parts_missing": list(wo.parts_missing),
        "steps": [s.model_dump(mode="json") for s in wo.steps],
        "duration_h": wo.duration_h,
        "crew": wo.crew,
        "narrative": wo.narrative,
        "evidence": list(wo.evidence),
        "kb": list(wo.kb),
        "backend": rec.backend,
        "recommendation": rec.model_dump(mode="json"),
    }
    return actions.create_work_order(store, wo.asset_id, wo.title, by=by, priority=wo.priority, due_by=wo.due_by,
                                     body=body, at=at)


def approve(store: Any, work_order_id: int, by: str, *, note: str = "", at: datetime | None = None) -> Any:
    """Approve a draft (``ingest.store.actions.approve_work_order``)."""
    return actions.approve_work_order(store, work_order_id, by, note=note, at=at)


def reject(store: Any, work_order_id: int, by: str, reason: str, *, at: datetime | None = None) -> Any:
    """Reject a draft, saying why."""
    return actions.reject_work_order(store, work_order_id, by, reason, at=at)


def complete(store: Any, work_order_id: int, by: str, *, found: str, fault_confirmed: bool, note: str = "",
             at: datetime | None = None) -> Any:
    """Close an approved work order with a structured outcome (stored as JSON text).

    Args:
        store: the store.
        work_order_id: the work order.
        by: who did the work.
        found: the fault actually found (``outer_race``, ``none`` ...).
        fault_confirmed: whether the recommended fault was confirmed.
        note: free text.
        at: completion time (default now).
    """
    outcome = json.dumps({"found": found, "fault_confirmed": fault_confirmed, "note": note})
    return actions.complete_work_order(store, work_order_id, by, outcome, at=at)


def list_work_orders(store: Any, *, asset_id: str | None = None, statuses: Sequence[str] | None = None,
                     limit: int = 500) -> list[Any]:
    """Stored work orders, newest first."""
    return queries.work_orders(store, asset_id=asset_id, statuses=statuses, limit=limit)


def _history(view: Any, action: str) -> dict[str, Any]:
    history = view.history or tuple(view.body.get("history", ()))
    found = [h for h in history if h.get("action") == action]
    return found[-1] if found else {}


def _outcome(view: Any) -> dict[str, Any] | None:
    if not view.outcome:
        return None
    try:
        data = json.loads(view.outcome)
    except ValueError:
        return {"note": view.outcome}
    return data if isinstance(data, dict) else {"note": view.outcome}


def cmms_record(view: Any) -> dict[str, Any]:
    """One work order in the CMMS layout (plain JSON-able values)."""
    body = view.body or {}
    created, approved, completed = _history(view, "created"), _history(view, "approve"), _history(view, "complete")
    outcome = _outcome(view)
    return {
        "work_order_number": work_order_number(view.id),
        "asset_id": view.asset_id,
        "status": view.status,
        "priority": view.priority,
        "due_date": view.due_by.isoformat() if view.due_by else None,
        "title": view.title,
        "description": body.get("description", ""),
        "tasks": list(body.get("tasks", [])),
        "parts": list(body.get("parts", [])),
        "duration_h": body.get("duration_h"),
        "crew": body.get("crew", ""),
        "created_at": view.created_at.isoformat(),
        "created_by": created.get("by"),
        "approved_by": approved.get("by"),
        "approved_at": approved.get("at"),
        "completed_by": completed.get("by"),
        "completed_at": completed.get("at"),
        "outcome": outcome,
        "evidence": list(body.get("evidence", [])),
        "knowledge": list(body.get("kb", [])),
    }


def export_json(views: Sequence[Any]) -> str:
    """Work orders as a JSON array in the CMMS layout."""
    return json.dumps([cmms_record(v) for v in views], indent=2)


def export_csv(views: Sequence[Any]) -> str:
    """Work orders as CSV in the CMMS layout; list fields joined with ``"; "``."""
    buf = io.StringIO()
    writer = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    writer.writeheader()
    for v in views:
        rec = cmms_record(v)
        row = {k: ("; ".join(rec[k]) if isinstance(rec[k], list) else rec[k]) for k in CSV_COLUMNS}
        row["outcome"] = json.dumps(rec["outcome"]) if rec["outcome"] is not None else ""
        writer.writerow({k: "" if val is None else val for k, val in row.items()})
    return buf.getvalue()


@dataclass(frozen=True)
class OutcomeLabel:
    """A completed work order as a training label: what was predicted, what was found, when.

    ``completed_at - predicted_at`` bounds the time of event from below when the fault was
    confirmed but had not failed the machine; ``found`` is the fault-class label.
    """

    asset_id: str
    work_order_number: str
    predicted_fault: str | None
    found: str | None
    fault_confirmed: bool | None
    predicted_at: str | None
    rul_lower_h: float | None
    rul_median_h: float | None
    rul_upper_h: float | None
    completed_at: str | None
    note: str

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def training_labels(store: Any, *, asset_id: str | None = None) -> list[OutcomeLabel]:
    """Labels from every completed work order the prescriber drafted."""
    out = []
    for v in list_work_orders(store, asset_id=asset_id, statuses=("done",), limit=10_000):
        rec = (v.body or {}).get("recommendation") or {}
        items = {e["id"]: e for e in rec.get("evidence", [])}
        rul = items.get("rul:latest", {}).get("values", {})
        fault = items.get("fault:class", {}).get("values", {})
        outcome = _outcome(v) or {}
        out.append(OutcomeLabel(
            asset_id=v.asset_id, work_order_number=work_order_number(v.id),
            predicted_fault=fault.get("kind"), found=outcome.get("found"), fault_confirmed=outcome.get("fault_confirmed"),
            predicted_at=rec.get("created_at"), rul_lower_h=rul.get("lower_h"), rul_median_h=rul.get("median_h"),
            rul_upper_h=rul.get("upper_h"), completed_at=_history(v, "complete").get("at"),
            note=str(outcome.get("note", ""))))
    return out
