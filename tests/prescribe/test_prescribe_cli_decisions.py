"""The issue's two ends through ``genedge prescribe`` on a store, as the demo leaves it: edge feature
windows of the simulated plant and a RUL prediction per asset. P-101 at its failure (RUL 0 h
[0-7 h], outer-race defect) is a stop, not "insufficient evidence"; M-101 and P-201, healthy with
the RUL at the model's 200 h cap, get no work order and no maintenance action."""

from __future__ import annotations

import json
from datetime import UTC, datetime, timedelta

import numpy as np
import pytest
from typer.testing import CliRunner

from core.assets import AssetConfig, Quantity
from core.signal import FeaturePipeline
from core.sim import AssetSimulator, FaultSpec
from core.wire import FeatureFrame, Prediction
from genedge.prescribe_cli import prescribe_app
from ingest.store import Store

runner = CliRunner()


def _store_plant_state(store: Store, asset: AssetConfig, fault: FaultSpec, t_hours: float,
                       rul: tuple[float, float, float], health: float, now: datetime) -> None:
    """Feature windows over the last 48 simulated hours (ending now) and one prediction, as the edge sends them."""
    sim, pipe = AssetSimulator(asset, fault, seed=3), FeaturePipeline(asset)
    vib = next(c for c in asset.channels if c.quantity == Quantity.ACCELERATION)
    temp = next(c for c in asset.channels if c.quantity == Quantity.TEMPERATURE)
    frames = []
    for k, t in enumerate(np.linspace(t_hours - 47.0, t_hours, 3)):
        st = sim.state(float(t))
        x = sim.sample(vib, float(t), int(min(vib.sample_rate_hz, 25600))).astype(np.float64)
        feats = {vib.name: pipe.vibration(vib, x, st.shaft_speed_rpm / 60.0), temp.name: {"mean": st.temperature_c}}
        start = now - timedelta(hours=t_hours - float(t), minutes=1)
        frames.append((FeatureFrame(publisher="edge-01", seq=10 + k, asset_id=asset.asset_id, window_start=start,
                                    window_s=1.0, features=feats), start))
    median, lower, upper = rul
    at = now - timedelta(minutes=1)
    frames.append((Prediction(publisher="edge-01", seq=20, asset_id=asset.asset_id, model_name="rul-demo",
                              model_version="1", at=at, rul_unit="h", rul_median=median, rul_lower=lower,
                              rul_upper=upper, coverage=0.9, health_index=health, rul_cap=200.0), at))
    store.write(frames)


@pytest.fixture(scope="module")
def demo_db(tmp_path_factory: pytest.TempPathFactory, plant: dict[str, AssetConfig]) -> str:
    db = f"sqlite:///{tmp_path_factory.mktemp('decisions') / 'demo.db'}"
    now = datetime.now(UTC)
    with Store(db) as s:
        s.upsert_assets(list(plant.values()))
        life = 400.0
        _store_plant_state(s, plant["P-101"], FaultSpec(kind="outer_race", onset_hours=120, life_hours=life), life,
                           (0.0, 0.0, 7.0), 0.0, now)
        for asset_id in ("M-101", "P-201"):
            _store_plant_state(s, plant[asset_id], FaultSpec.healthy(), 300.0, (200.0, 140.0, 270.0), 1.0, now)
    return db


def _prescribe(db: str, asset: str) -> dict:  # type: ignore[type-arg]
    res = runner.invoke(prescribe_app, ["--asset", asset, "--backend", "rules", "--json", "--db", db, "--save"])
    assert res.exit_code == 0, res.output
    return json.loads(res.output)  # type: ignore[no-any-return]


def test_p101_at_failure_is_stop_now(demo_db: str) -> None:
    """Before: ``insufficient_evidence``, "RUL interval too wide: 0 to 7 h around 0 h"."""
    data = _prescribe(demo_db, "P-101")
    assert (data["status"], data["state"], data["priority"]) == ("action", "stop_now", "urgent"), data
    assert not data["reasons"]
    assert data["deadline"] == data["created_at"]  # due now
    assert data["actions"][0]["what"].startswith("Stop the machine now")
    assert any(a["what"].startswith("Replace the drive-end bearing SKF 6310 with spare SKF 6310-2Z now")
               for a in data["actions"])
    steps = data["work_order"]["steps"]
    assert steps[0]["code"] == "loto" and steps[-1]["code"] == "baseline_reset"
    assert data["_meta"]["saved_work_order"] is not None
    peak = next(e for e in data["evidence"] if e["id"] == "peak:bpfo")
    assert peak["values"]["snr"] >= 10  # the strong envelope evidence the decision rests on


@pytest.mark.parametrize("asset", ["M-101", "P-201"])
def test_healthy_asset_at_the_rul_cap_gets_no_work_order(demo_db: str, asset: str) -> None:
    """Before: a "high" / "medium" maintenance action from a RUL at the cap read as "RUL 8.2 d"."""
    data = _prescribe(demo_db, asset)
    assert (data["status"], data["state"], data["priority"], data["deadline"]) == ("monitor", "healthy", "low", None)
    assert data["work_order"] is None and data["_meta"]["saved_work_order"] is None
    assert data["actions"][0]["what"].startswith("Continue monitoring")
    rul = next(e for e in data["evidence"] if e["id"] == "rul:latest")
    assert rul["summary"].startswith("RUL >= 200 h") and " d," not in rul["summary"]
    assert "RUL >= 200 h" in data["actions"][0]["why"]
