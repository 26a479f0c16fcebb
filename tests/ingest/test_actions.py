"""Alarm (ISA-18.2) and work-order lifecycles, including the transitions that must be refused."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from core.errors import StoreError
from core.sim import default_plant
from ingest.store import Store, actions, queries

T0 = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)


@pytest.fixture
def store(tmp_path: Path) -> Iterator[Store]:
    with Store(f"sqlite:///{tmp_path / 'actions.db'}") as s:
        s.upsert_assets(default_plant())
        yield s


# ------------------------------------------------------------------------------- alarms
def test_alarm_ack_then_clear_records_who_and_when(store: Store) -> None:
    a = actions.raise_alarm(store, "P-101", "vibration_high", "high", "RMS 4x baseline", at=T0)
    assert (a.state, a.raised_at, a.acked_by) == ("active", T0, None)

    acked = actions.acknowledge_alarm(store, a.id, "olga", at=T0 + timedelta(minutes=3))
    assert (acked.state, acked.acked_by, acked.acked_at) == ("acknowledged", "olga", T0 + timedelta(minutes=3))

    cleared = actions.clear_alarm(store, a.id, at=T0 + timedelta(hours=1))
    assert (cleared.state, cleared.cleared_at, cleared.acked_by) == ("cleared", T0 + timedelta(hours=1), "olga")
    assert queries.alarm(store, a.id) == cleared


def test_raise_returns_the_open_alarm_of_the_same_kind(store: Store) -> None:
    first = actions.raise_alarm(store, "P-101", "vibration_high", "high", at=T0)
    again = actions.raise_alarm(store, "P-101", "vibration_high", "critical", at=T0 + timedelta(minutes=1))
    assert again.id == first.id
    other = actions.raise_alarm(store, "P-101", "temperature_high", "medium", at=T0)
    assert other.id != first.id
    actions.clear_alarm(store, first.id, at=T0 + timedelta(minutes=5))
    assert actions.raise_alarm(store, "P-101", "vibration_high", "high", at=T0 + timedelta(minutes=6)).id != first.id


def test_shelve_records_reason_who_when_and_expires_back_to_prior_state(store: Store) -> None:
    a = actions.raise_alarm(store, "F-201", "vibration_high", "medium", at=T0)
    b = actions.raise_alarm(store, "F-201", "temperature_high", "low", at=T0)
    actions.acknowledge_alarm(store, b.id, "olga", at=T0)

    until = T0 + timedelta(hours=4)
    s = actions.shelve_alarm(store, a.id, "olga", "sensor cable being replaced", until, at=T0 + timedelta(minutes=1))
    assert (s.state, s.shelve_reason, s.shelved_until) == ("shelved", "sensor cable being replaced", until)
    assert (s.shelved_by, s.shelved_at) == ("olga", T0 + timedelta(minutes=1))
    actions.shelve_alarm(store, b.id, "olga", "known, planned stop", until, at=T0 + timedelta(minutes=1))

    assert actions.unshelve_expired(store, at=until - timedelta(seconds=1)) == 0
    assert actions.unshelve_expired(store, at=until) == 2
    a2, b2 = queries.alarm(store, a.id), queries.alarm(store, b.id)
    assert a2 is not None and b2 is not None
    assert (a2.state, a2.shelved_until, a2.shelve_reason) == ("active", None, "sensor cable being replaced")
    assert b2.state == "acknowledged"  # it had been acknowledged before shelving


def test_manual_unshelve(store: Store) -> None:
    a = actions.raise_alarm(store, "M-101", "rul_low", "high", at=T0)
    actions.shelve_alarm(store, a.id, "eve", "maintenance window", T0 + timedelta(hours=2), at=T0)
    assert actions.unshelve_alarm(store, a.id).state == "active"
    with pytest.raises(StoreError, match="only a shelved alarm can be unshelved"):
        actions.unshelve_alarm(store, a.id)


def test_cleared_unacknowledged_alarm_can_still_be_acknowledged(store: Store) -> None:
    a = actions.raise_alarm(store, "P-102", "vibration_high", "low", at=T0)
    actions.clear_alarm(store, a.id, at=T0 + timedelta(minutes=1))
    acked = actions.acknowledge_alarm(store, a.id, "olga", at=T0 + timedelta(minutes=2))
    assert (acked.state, acked.acked_by) == ("cleared", "olga")
    with pytest.raises(StoreError, match=r"it is cleared \(acknowledged by olga\)"):
        actions.acknowledge_alarm(store, a.id, "eve")


@pytest.mark.parametrize(
    ("setup", "act", "message"),
    [
        ("acknowledged", lambda s, i: actions.acknowledge_alarm(s, i, "eve"), "it is acknowledged"),
        ("shelved", lambda s, i: actions.acknowledge_alarm(s, i, "eve"), "it is shelved"),
        ("shelved", lambda s, i: actions.shelve_alarm(s, i, "eve", "again", T0 + timedelta(hours=1), at=T0),
         "only an active or acknowledged alarm can be shelved"),
        ("cleared", lambda s, i: actions.shelve_alarm(s, i, "eve", "late", T0 + timedelta(hours=1), at=T0),
         "it is cleared"),
        ("cleared", actions.clear_alarm, "only an open alarm can be cleared"),
    ],
)
def test_invalid_alarm_transitions_are_refused(store: Store, setup: str, act: object, message: str) -> None:
    a = actions.raise_alarm(store, "P-201", "vibration_high", "high", at=T0)
    if setup == "acknowledged":
        actions.acknowledge_alarm(store, a.id, "olga", at=T0)
    elif setup == "shelved":
        actions.shelve_alarm(store, a.id, "olga", "planned", T0 + timedelta(hours=1), at=T0)
    elif setup == "cleared":
        actions.acknowledge_alarm(store, a.id, "olga", at=T0)
        actions.clear_alarm(store, a.id, at=T0)
    before = queries.alarm(store, a.id)
    with pytest.raises(StoreError, match=message):
        act(store, a.id)  # type: ignore[operator]
    assert queries.alarm(store, a.id) == before  # nothing changed


def test_alarm_arguments_are_checked(store: Store) -> None:
    with pytest.raises(StoreError, match="unknown asset 'X-999'"):
        actions.raise_alarm(store, "X-999", "vibration_high", "high")
    with pytest.raises(StoreError, match=r"severity must be one of \['low', 'medium', 'high', 'critical'\], got 'bad'"):
        actions.raise_alarm(store, "P-101", "vibration_high", "bad")
    with pytest.raises(StoreError, match="no such alarm"):
        actions.acknowledge_alarm(store, 4242, "olga")
    a = actions.raise_alarm(store, "P-101", "vibration_high", "high", at=T0)
    with pytest.raises(StoreError, match="reason must not be empty"):
        actions.shelve_alarm(store, a.id, "olga", "  ", T0 + timedelta(hours=1), at=T0)
    with pytest.raises(StoreError, match="until must be after now"):
        actions.shelve_alarm(store, a.id, "olga", "why", T0, at=T0)
    with pytest.raises(StoreError, match="at most 7 days"):
        actions.shelve_alarm(store, a.id, "olga", "why", T0 + timedelta(days=8), at=T0)
    with pytest.raises(StoreError, match="user name"):
        actions.acknowledge_alarm(store, a.id, "")
    assert queries.alarm(store, a.id).state == "active"  # type: ignore[union-attr]


# -------------------------------------------------------------------------- work orders
def test_work_order_approve_complete_keeps_history(store: Store) -> None:
    body = {"recommendation": "Replace DE bearing SKF 6310", "evidence": {"bpfo_amplitude_g": 0.8}}
    wo = actions.create_work_order(store, "P-101", "Replace drive-end bearing", by="prescriber", priority="high",
                                   due_by=T0 + timedelta(days=2), body=body, at=T0)
    assert (wo.status, wo.priority, wo.body["recommendation"]) == ("draft", "high", body["recommendation"])

    ok = actions.approve_work_order(store, wo.id, "eve", note="parts in stock", at=T0 + timedelta(hours=1))
    assert (ok.status, ok.updated_by, ok.updated_at) == ("approved", "eve", T0 + timedelta(hours=1))

    done = actions.complete_work_order(store, wo.id, "eve", "Outer race spall found; bearing replaced",
                                       at=T0 + timedelta(days=1))
    assert (done.status, done.outcome) == ("done", "Outer race spall found; bearing replaced")
    assert [(h["action"], h["by"]) for h in done.history] == [("created", "prescriber"), ("approve", "eve"),
                                                              ("complete", "eve")]
    assert done.history[1]["note"] == "parts in stock"
    assert done.history[2]["at"] == (T0 + timedelta(days=1)).isoformat()
    assert queries.work_order(store, wo.id) == done


def test_work_order_reject_needs_a_reason(store: Store) -> None:
    wo = actions.create_work_order(store, "F-101", "Re-tension belts", by="prescriber", at=T0)
    with pytest.raises(StoreError, match="reason must not be empty"):
        actions.reject_work_order(store, wo.id, "eve", "")
    rej = actions.reject_work_order(store, wo.id, "eve", "belts replaced last week", at=T0)
    assert rej.status == "rejected"
    assert rej.history[-1] == {"action": "reject", "by": "eve", "at": T0.isoformat(),
                               "note": "belts replaced last week"}


@pytest.mark.parametrize(
    ("status", "act", "message"),
    [
        ("draft", lambda s, i: actions.complete_work_order(s, i, "eve", "done"),
         "cannot complete work order 1: it is draft, it must be approved"),
        ("approved", lambda s, i: actions.approve_work_order(s, i, "eve"), "it is approved"),
        ("approved", lambda s, i: actions.reject_work_order(s, i, "eve", "no"), "it is approved"),
        ("rejected", lambda s, i: actions.approve_work_order(s, i, "eve"), "it is rejected"),
        ("done", lambda s, i: actions.complete_work_order(s, i, "eve", "again"), "it is done"),
    ],
)
def test_invalid_work_order_transitions_are_refused(store: Store, status: str, act: object, message: str) -> None:
    wo = actions.create_work_order(store, "M-201", "Check coupling", by="prescriber", at=T0)
    if status in ("approved", "done"):
        actions.approve_work_order(store, wo.id, "eve", at=T0)
    if status == "done":
        actions.complete_work_order(store, wo.id, "eve", "ok", at=T0)
    if status == "rejected":
        actions.reject_work_order(store, wo.id, "eve", "duplicate", at=T0)
    before = queries.work_order(store, wo.id)
    with pytest.raises(StoreError, match=message):
        act(store, wo.id)  # type: ignore[operator]
    assert queries.work_order(store, wo.id) == before


def test_work_order_arguments_are_checked(store: Store) -> None:
    with pytest.raises(StoreError, match="unknown asset"):
        actions.create_work_order(store, "X-1", "t", by="eve")
    with pytest.raises(StoreError, match="priority must be one of"):
        actions.create_work_order(store, "P-101", "t", by="eve", priority="asap")
    with pytest.raises(StoreError, match="title must not be empty"):
        actions.create_work_order(store, "P-101", "", by="eve")
    with pytest.raises(StoreError, match="JSON-serialisable"):
        actions.create_work_order(store, "P-101", "t", by="eve", body={"x": object()})
    with pytest.raises(StoreError, match="no such work order"):
        actions.approve_work_order(store, 999, "eve")
    with pytest.raises(StoreError, match="outcome must not be empty"):
        actions.complete_work_order(store, 999, "eve", " ")
    assert queries.work_orders(store) == []
