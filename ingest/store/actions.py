"""State changes of alarms and work orders, each recorded with who and when.

Alarms follow ISA-18.2 in a reduced form (the states the ``alarms`` table holds)::

    raise ──> active ──ack──> acknowledged ──┐
                 │                 │          ├──clear──> cleared
                 └──shelve──> shelved <──────┘     (clear: the condition returned to normal)
                              │ unshelve / expiry: back to active, or to acknowledged if it was

A cleared alarm that nobody acknowledged (ISA-18.2's "return to normal, unacknowledged")
may still be acknowledged; it stays cleared. Raising an alarm whose asset already has an
open alarm of the same kind returns that alarm instead of a duplicate.

Escalating an open alarm (its condition got worse: a higher priority) re-annunciates it: it
returns to active, unacknowledged, from acknowledged or shelved (ISA-18.2: the operator must see
it again). The escalation is recorded (``escalated_at``, ``escalated_by``, ``escalated_from``);
the earlier acknowledgement is kept, and an alarm counts as acknowledged only if acknowledged
after its latest escalation.

Work orders go ``draft -> approved -> done`` or ``draft -> rejected``; every change is
appended to ``body["history"]`` as ``{"action", "by", "at", "note"}``.

Every transition is one conditional ``UPDATE ... WHERE state = <expected>``, so two people
acting on the same alarm at once cannot both win: the second gets a :class:`StoreError`.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import and_, case, or_, select, update
from sqlalchemy.exc import SQLAlchemyError

from core.errors import StoreError
from core.maintenance import PRIORITIES
from core.wire import utcnow
from ingest.store.models import Alarm, Asset, WorkOrder
from ingest.store.queries import AlarmView, WorkOrderView, alarm_view, work_order_view
from ingest.store.repo import Store

__all__ = [
    "ALARM_STATES",
    "MAX_SHELVE",
    "SEVERITIES",
    "WORK_ORDER_STATUSES",
    "acknowledge_alarm",
    "approve_work_order",
    "clear_alarm",
    "complete_work_order",
    "create_work_order",
    "escalate_alarm",
    "raise_alarm",
    "reject_work_order",
    "shelve_alarm",
    "unshelve_alarm",
    "unshelve_expired",
]

ALARM_STATES = ("active", "acknowledged", "shelved", "cleared")
SEVERITIES = ("low", "medium", "high", "critical")
WORK_ORDER_STATUSES = ("draft", "approved", "rejected", "done")
#: ISA-18.2 asks for time-limited shelving; longer needs "out of service", which is not modelled.
MAX_SHELVE = timedelta(days=7)
_USER = re.compile(r"^[A-Za-z0-9_.@\-]{1,64}$")


# ------------------------------------------------------------------------------ helpers
def _now(at: datetime | None) -> datetime:
    if at is None:
        return utcnow()
    if at.tzinfo is None:
        raise StoreError(f"at must be timezone-aware, got naive {at.isoformat()}")
    return at


def _who(by: str) -> str:
    if not isinstance(by, str) or not _USER.match(by):
        raise StoreError(f"by must be a user name of 1-64 letters, digits or '_.@-', got {by!r}")
    return by


def _text(name: str, value: str, *, max_len: int = 2000) -> str:
    value = (value or "").strip()
    if not value:
        raise StoreError(f"{name} must not be empty")
    if len(value) > max_len:
        raise StoreError(f"{name} must be at most {max_len} characters, got {len(value)}")
    return value


def _one_of(name: str, value: str, allowed: Sequence[str]) -> str:
    if value not in allowed:
        raise StoreError(f"{name} must be one of {list(allowed)}, got {value!r}")
    return value


def _wrap(what: str, err: SQLAlchemyError) -> StoreError:
    return StoreError(f"{what} failed: {err}")


def _alarm_transition(store: Store, alarm_id: int, verb: str, *, allowed: Any, allowed_text: str,
                      values: dict[str, Any]) -> AlarmView:
    """Apply ``values`` to alarm ``alarm_id`` if it satisfies ``allowed``; explain otherwise."""
    try:
        with store._sessions.begin() as s:
            changed = s.execute(update(Alarm).where(Alarm.id == alarm_id, allowed).values(**values)).rowcount  # type: ignore[attr-defined]
            row = s.get(Alarm, alarm_id)
            if row is None:
                raise StoreError(f"cannot {verb} alarm {alarm_id}: no such alarm")
            if changed != 1:
                acked = f" (acknowledged by {row.acked_by})" if row.acked_by and row.state == "cleared" else ""
                raise StoreError(f"cannot {verb} alarm {alarm_id}: it is {row.state}{acked}; {allowed_text}")
            s.refresh(row)
            return alarm_view(row)
    except SQLAlchemyError as err:
        raise _wrap(f"{verb} alarm {alarm_id}", err) from err


#: Not acknowledged since it was raised or last escalated.
_UNACKED = or_(Alarm.acked_at.is_(None), and_(Alarm.escalated_at.is_not(None), Alarm.escalated_at > Alarm.acked_at))
#: After unshelving, an alarm is acknowledged again if it had been (since its latest escalation), else active.
_STATE_AFTER_SHELVING = case((_UNACKED, "active"), else_="acknowledged")


# -------------------------------------------------------------------------------- alarms
def raise_alarm(store: Store, asset_id: str, kind: str, severity: str, message: str = "", *,
                at: datetime | None = None) -> AlarmView:
    """Raise an alarm, or return the open alarm of the same ``kind`` the asset already has.

    Args:
        store: the store.
        asset_id: a registered asset.
        kind: the alarm condition, e.g. ``vibration_high``, ``rul_low``.
        severity: one of :data:`SEVERITIES`.
        message: what the operator should know.
        at: time the condition was detected (default now).

    Raises:
        StoreError: unknown asset, bad severity or kind, or the database failed.
    """
    now = _now(at)
    kind = _text("kind", kind, max_len=64)
    _one_of("severity", severity, SEVERITIES)
    try:
        with store._sessions.begin() as s:
            if s.get(Asset, asset_id) is None:
                raise StoreError(f"cannot raise alarm: unknown asset {asset_id!r}")
            existing = s.scalars(select(Alarm).where(Alarm.asset_id == asset_id, Alarm.kind == kind,
                                                     Alarm.state != "cleared").order_by(Alarm.id).limit(1)).first()
            if existing is not None:
                return alarm_view(existing)
            row = Alarm(asset_id=asset_id, kind=kind, severity=severity, state="active", message=message[:4000],
                        raised_at=now)
            s.add(row)
            s.flush()
            return alarm_view(row)
    except SQLAlchemyError as err:
        raise _wrap(f"raise alarm {kind!r} on {asset_id!r}", err) from err


def acknowledge_alarm(store: Store, alarm_id: int, by: str, *, at: datetime | None = None) -> AlarmView:
    """Acknowledge an active alarm (or a cleared one nobody acknowledged); records who and when.

    Raises:
        StoreError: no such alarm, or it is acknowledged, shelved, or cleared and acknowledged.
    """
    now, by = _now(at), _who(by)
    allowed = or_(Alarm.state == "active", and_(Alarm.state == "cleared", _UNACKED))
    # A cleared alarm stays cleared (ISA-18.2 "return to normal, unacknowledged" becomes normal).
    new_state = case((Alarm.state == "active", "acknowledged"), else_=Alarm.state)
    return _alarm_transition(
        store, alarm_id, "acknowledge", allowed=allowed,
        allowed_text="only an active alarm, or a cleared one not yet acknowledged, can be acknowledged",
        values={"state": new_state, "acked_by": by, "acked_at": now})


def shelve_alarm(store: Store, alarm_id: int, by: str, reason: str, until: datetime, *,
                 at: datetime | None = None, max_duration: timedelta = MAX_SHELVE) -> AlarmView:
    """Shelve an active or acknowledged alarm until ``until``, with a reason; records who and when.

    Raises:
        StoreError: empty reason, ``until`` not in the future or beyond ``max_duration``,
            no such alarm, or it is shelved or cleared.
    """
    now, by = _now(at), _who(by)
    reason = _text("reason", reason)
    if until.tzinfo is None:
        raise StoreError(f"until must be timezone-aware, got naive {until.isoformat()}")
    if until <= now:
        raise StoreError(f"until must be after now ({now.isoformat()}), got {until.isoformat()}")
    if until - now > max_duration:
        raise StoreError(f"alarms may be shelved for at most {max_duration}, asked for {until - now}")
    return _alarm_transition(store, alarm_id, "shelve", allowed=Alarm.state.in_(("active", "acknowledged")),
                             allowed_text="only an active or acknowledged alarm can be shelved",
                             values={"state": "shelved", "shelved_until": until, "shelve_reason": reason,
                                     "shelved_by": by, "shelved_at": now})


def unshelve_alarm(store: Store, alarm_id: int) -> AlarmView:
    """Return a shelved alarm to acknowledged (if it had been) or active.

    The shelving record (reason, who, when) is kept; ``shelved_until`` is cleared.

    Raises:
        StoreError: no such alarm, or it is not shelved.
    """
    return _alarm_transition(store, alarm_id, "unshelve", allowed=Alarm.state == "shelved",
                             allowed_text="only a shelved alarm can be unshelved",
                             values={"state": _STATE_AFTER_SHELVING, "shelved_until": None})


def unshelve_expired(store: Store, *, at: datetime | None = None) -> int:
    """Unshelve every alarm whose shelving expired at ``at`` (default now); return how many."""
    now = _now(at)
    try:
        with store._sessions.begin() as s:
            res = s.execute(update(Alarm).where(Alarm.state == "shelved", Alarm.shelved_until <= now)
                            .values(state=_STATE_AFTER_SHELVING, shelved_until=None))
            return int(res.rowcount)  # type: ignore[attr-defined]
    except SQLAlchemyError as err:
        raise _wrap("unshelve expired alarms", err) from err


def escalate_alarm(store: Store, alarm_id: int, severity: str, message: str | None = None, *, by: str = "ingest",
                   at: datetime | None = None) -> AlarmView:
    """Raise an open alarm's priority to ``severity`` and re-annunciate it (back to active, unacknowledged).

    An acknowledged or shelved alarm returns to active; the shelving record and the earlier
    acknowledgement are kept, and who escalated it, when and from which priority are recorded.

    Args:
        store: the store.
        alarm_id: an open alarm.
        severity: one of :data:`SEVERITIES`, higher than the alarm's.
        message: the alarm's new text (default: keep it).
        by: who escalated it (the service, e.g. ``ingest``).
        at: time of the escalation (default now).

    Raises:
        StoreError: bad severity or user name, no such alarm, it is cleared, or ``severity`` is not
            higher than its priority.
    """
    now, by = _now(at), _who(by)
    _one_of("severity", severity, SEVERITIES)
    lower = list(SEVERITIES[: SEVERITIES.index(severity)])
    values: dict[str, Any] = {"state": "active", "severity": severity, "escalated_from": Alarm.severity,
                              "escalated_at": now, "escalated_by": by, "shelved_until": None}
    if message is not None:
        values["message"] = message[:4000]
    return _alarm_transition(store, alarm_id, "escalate",
                             allowed=and_(Alarm.state.in_(("active", "acknowledged", "shelved")),
                                          Alarm.severity.in_(lower)),
                             allowed_text=f"only an open alarm of a priority below {severity} can be escalated to it",
                             values=values)


def clear_alarm(store: Store, alarm_id: int, *, at: datetime | None = None) -> AlarmView:
    """The alarm's condition returned to normal: mark it cleared (from any open state).

    Raises:
        StoreError: no such alarm, or it is cleared already.
    """
    now = _now(at)
    return _alarm_transition(store, alarm_id, "clear", allowed=Alarm.state.in_(("active", "acknowledged", "shelved")),
                             allowed_text="only an open alarm can be cleared",
                             values={"state": "cleared", "cleared_at": now, "shelved_until": None})


# --------------------------------------------------------------------------- work orders
def _history_entry(action: str, by: str, at: datetime, note: str = "") -> dict[str, Any]:
    return {"action": action, "by": by, "at": at.isoformat(), "note": note}


def create_work_order(store: Store, asset_id: str, title: str, *, by: str, priority: str = "medium",
                      due_by: datetime | None = None, body: Mapping[str, Any] | None = None,
                      at: datetime | None = None) -> WorkOrderView:
    """Create a draft work order.

    Args:
        store: the store.
        asset_id: a registered asset.
        title: one line saying what to do.
        by: who (or which service, e.g. ``prescriber``) drafted it.
        priority: one of :data:`PRIORITIES`.
        due_by: when it should be done.
        body: JSON-serialisable details: the recommendation, its evidence, parts ...
        at: creation time (default now).

    Raises:
        StoreError: unknown asset, bad priority, empty title, a body that is not JSON, or the
            database failed.
    """
    now, by = _now(at), _who(by)
    title = _text("title", title, max_len=200)
    _one_of("priority", priority, PRIORITIES)
    data = dict(body or {})
    if "history" in data:
        raise StoreError("body must not contain 'history': it is kept by the work-order actions")
    data["history"] = [_history_entry("created", by, now)]
    try:
        json.dumps(data)
    except (TypeError, ValueError) as err:
        raise StoreError(f"body must be JSON-serialisable: {err}") from err
    try:
        with store._sessions.begin() as s:
            if s.get(Asset, asset_id) is None:
                raise StoreError(f"cannot create work order: unknown asset {asset_id!r}")
            row = WorkOrder(asset_id=asset_id, status="draft", title=title, priority=priority, due_by=due_by,
                            body=data, created_at=now, updated_at=now, updated_by=by)
            s.add(row)
            s.flush()
            return work_order_view(row)
    except SQLAlchemyError as err:
        raise _wrap(f"create work order for {asset_id!r}", err) from err


def _work_order_transition(store: Store, wo_id: int, verb: str, *, from_status: str, to_status: str, by: str,
                           at: datetime | None, note: str, outcome: str | None = None) -> WorkOrderView:
    now, by = _now(at), _who(by)
    try:
        with store._sessions.begin() as s:
            row = s.get(WorkOrder, wo_id)
            if row is None:
                raise StoreError(f"cannot {verb} work order {wo_id}: no such work order")
            if row.status != from_status:
                raise StoreError(f"cannot {verb} work order {wo_id}: it is {row.status}, it must be {from_status}")
            body = dict(row.body or {})
            history = list(body.get("history", []))
            history.append(_history_entry(verb, by, now, note))
            body["history"] = history
            values: dict[str, Any] = {"status": to_status, "body": body, "updated_at": now, "updated_by": by}
            if outcome is not None:
                values["outcome"] = outcome
            changed = s.execute(update(WorkOrder).where(WorkOrder.id == wo_id, WorkOrder.status == from_status)
                                .values(**values)).rowcount  # type: ignore[attr-defined]
            if changed != 1:
                raise StoreError(f"cannot {verb} work order {wo_id}: someone changed it at the same time")
            s.refresh(row)
            return work_order_view(row)
    except SQLAlchemyError as err:
        raise _wrap(f"{verb} work order {wo_id}", err) from err


def approve_work_order(store: Store, work_order_id: int, by: str, *, note: str = "",
                       at: datetime | None = None) -> WorkOrderView:
    """Approve a draft work order.

    Raises:
        StoreError: no such work order, or it is not a draft.
    """
    return _work_order_transition(store, work_order_id, "approve", from_status="draft", to_status="approved", by=by,
                                  at=at, note=note.strip())


def reject_work_order(store: Store, work_order_id: int, by: str, reason: str, *,
                      at: datetime | None = None) -> WorkOrderView:
    """Reject a draft work order, saying why.

    Raises:
        StoreError: empty reason, no such work order, or it is not a draft.
    """
    return _work_order_transition(store, work_order_id, "reject", from_status="draft", to_status="rejected", by=by,
                                  at=at, note=_text("reason", reason))


def complete_work_order(store: Store, work_order_id: int, by: str, outcome: str, *,
                        at: datetime | None = None) -> WorkOrderView:
    """Close an approved work order with what was found and done.

    Raises:
        StoreError: empty outcome, no such work order, or it is not approved.
    """
    outcome = _text("outcome", outcome, max_len=4000)
    return _work_order_transition(store, work_order_id, "complete", from_status="approved", to_status="done", by=by,
                                  at=at, note=outcome, outcome=outcome)
