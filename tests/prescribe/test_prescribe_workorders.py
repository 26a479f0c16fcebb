"""Work-order lifecycle from a recommendation, CMMS export, outcome labels."""

from __future__ import annotations

import csv
import io
import json
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path

import pytest

from core.errors import StoreError
from ingest.store import Store
from prescribe import workorders as wo
from prescribe.prescriber import Prescriber
from prescribe.schema import Evidence


@pytest.fixture
def store(tmp_path: Path, plant: dict) -> Iterator[Store]:  # type: ignore[type-arg]
    with Store(f"sqlite:///{tmp_path / 'wo.db'}") as s:
        s.upsert_assets(plant.values())
        yield s


def test_draft_approve_complete_export_and_label(store: Store, outer_race: Evidence) -> None:
    rec = Prescriber().recommend(outer_race)
    at = outer_race.at
    draft = wo.save_draft(store, rec, at=at)
    assert (draft.status, draft.priority, draft.due_by) == ("draft", rec.priority, rec.deadline)
    approved = wo.approve(store, draft.id, "olga", note="parts in stock", at=at + timedelta(hours=1))
    assert approved.status == "approved" and approved.updated_by == "olga"
    with pytest.raises(StoreError, match="it is approved, it must be draft"):
        wo.reject(store, draft.id, "eve", "too late")
    done = wo.complete(store, draft.id, "tom", found="outer_race", fault_confirmed=True,
                       note="spall 4 mm in the load zone", at=at + timedelta(hours=5))
    assert done.status == "done"
    with pytest.raises(StoreError):
        wo.complete(store, draft.id, "tom", found="none", fault_confirmed=False)

    records = json.loads(wo.export_json(wo.list_work_orders(store)))
    assert len(records) == 1
    r = records[0]
    assert r["work_order_number"] == f"WO-{draft.id:06d}" and r["asset_id"] == "P-101"
    assert (r["status"], r["priority"], r["due_date"]) == ("done", rec.priority, rec.deadline.isoformat())  # type: ignore[union-attr]
    assert rec.work_order is not None and r["tasks"] == [a.what for a in rec.actions] == list(rec.work_order.tasks)
    assert r["parts"] == ["SKF 6310-2Z", "mechanical seal 45 mm", "SKF LGMT 2/1 grease 1 kg"]
    assert (r["duration_h"], r["crew"]) == (4.0, "1 mechanic + 1 electrician")
    assert (r["created_by"], r["approved_by"], r["completed_by"]) == ("prescriber", "olga", "tom")
    assert r["outcome"] == {"found": "outer_race", "fault_confirmed": True, "note": "spall 4 mm in the load zone"}
    assert set(r["evidence"]) <= set(outer_race.ids()) and r["knowledge"]

    rows = list(csv.DictReader(io.StringIO(wo.export_csv(wo.list_work_orders(store)))))
    assert list(rows[0]) == list(wo.CSV_COLUMNS)
    assert rows[0]["work_order_number"] == r["work_order_number"] and rows[0]["tasks"] == "; ".join(r["tasks"])
    assert rows[0]["parts"] == "SKF 6310-2Z; mechanical seal 45 mm; SKF LGMT 2/1 grease 1 kg"
    assert json.loads(rows[0]["outcome"])["found"] == "outer_race" and rows[0]["crew"] == "1 mechanic + 1 electrician"
    stored = wo.list_work_orders(store)[0].body
    assert stored["steps"][0]["code"] == "loto" and stored["narrative"] == rec.narrative

    labels = wo.training_labels(store)
    assert len(labels) == 1
    lab = labels[0]
    assert (lab.asset_id, lab.predicted_fault, lab.found, lab.fault_confirmed) == ("P-101", "outer_race", "outer_race", True)
    assert outer_race.rul is not None and lab.rul_lower_h == pytest.approx(outer_race.rul.lower_h, abs=0.01)
    assert lab.completed_at is not None


def test_rejected_draft_records_reason_and_is_not_a_label(store: Store, outer_race: Evidence) -> None:
    draft = wo.save_draft(store, Prescriber().recommend(outer_race))
    rejected = wo.reject(store, draft.id, "eve", "already replaced last week")
    assert rejected.status == "rejected"
    assert rejected.body["history"][-1]["note"] == "already replaced last week"
    assert wo.training_labels(store) == []
    with pytest.raises(StoreError):
        wo.approve(store, draft.id, "olga")


def test_monitor_recommendation_has_no_work_order(store: Store, plant: dict) -> None:  # type: ignore[type-arg]
    from core.sim import FaultSpec
    from prescribe.evidence import from_simulator

    rec = Prescriber().recommend(from_simulator(plant["P-102"], FaultSpec.healthy(), 100.0))
    with pytest.raises(StoreError, match="no work order"):
        wo.save_draft(store, rec)


def test_prescribe_and_save_from_store(store: Store) -> None:
    from datetime import UTC, datetime

    from core.wire import Prediction
    from prescribe.service import prescribe_and_save

    now = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
    store.write([(Prediction(publisher="edge-01", seq=1, asset_id="P-201", model_name="rul", model_version="1",
                             at=now, rul_median=60, rul_lower=45, rul_upper=80, coverage=0.9), now)])
    outcome, saved = prescribe_and_save(store, Prescriber(), "P-201", now=now)
    rec = outcome.recommendation
    assert rec.status == "action" and saved is not None and saved.status == "draft"
    assert saved.due_by == rec.deadline and rec.deadline is not None
