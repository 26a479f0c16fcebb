"""A store filled with simulator data, alarms, work orders, dead letters and a model registry.

Readings, features and predictions all come from :mod:`core.sim` runs of the demo plant: the
feed pump P-101 (outer-race fault) degrades across the seeded history. Predictions are the
simulator's ground-truth RUL with a widening interval, published under a fixture model name,
for two assets only, so the pages show both "with data" and "no data yet".
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path

import numpy as np

from core.assets import AssetConfig, ChannelConfig, Quantity
from core.sim import PlantSimulator, default_faults, default_plant
from core.wire import FeatureFrame, Message, Prediction, ReadingBatch, utcnow
from dashboard.auth import hash_password
from ingest.store import DeadLetterIn, Store, actions
from tests._factories import bad_message

PUBLISHER = "sim-fixture"
PASSWORDS = {"olga": "operator-pw", "eve": "engineer-pw"}
ROLES = {"olga": "operator", "eve": "engineer"}
PREDICTED = ("P-101", "F-101")
#: The seeded history ends this far into P-101's life (outer-race fault well developed).
SEED_FRACTION = 0.92


@dataclass
class Seeded:
    url: str
    registry_dir: Path
    users_json: str
    next_seq: int = 0
    alarms: dict[str, int] = field(default_factory=dict)
    work_orders: dict[str, int] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {"GENEDGE_STORE__URL": self.url, "GENEDGE_DASHBOARD__USERS": self.users_json,
                "GENEDGE_MODELS__REGISTRY_DIR": str(self.registry_dir)}


def users_json() -> str:
    return json.dumps({u: {"role": ROLES[u], "password_hash": hash_password(pw)} for u, pw in PASSWORDS.items()})


def _velocity_rms(sim: PlantSimulator, asset_id: str, t_hours: float) -> float:
    vel = ChannelConfig(name="vel_de", quantity=Quantity.VELOCITY, unit="mm/s", sample_rate_hz=25600.0)
    v = sim[asset_id].sample(vel, t_hours, 2048)
    return float(np.sqrt(np.mean(np.square(v.astype(np.float64)))))


def _plant() -> tuple[list[AssetConfig], PlantSimulator, float]:
    plant = default_plant()
    faults = default_faults(plant, 7)
    return plant, PlantSimulator(plant, faults, seed=7), faults["P-101"].life_hours


def _tick(sim: PlantSimulator, plant: list[AssetConfig], t_h: float, at: datetime,
          seq: int) -> tuple[list[tuple[Message, datetime]], int]:
    """Every channel of every asset at simulated hour ``t_h``, stamped ``at``; predictions and features too."""
    out: list[tuple[Message, datetime]] = []
    for a in plant:
        for ch in a.channels:
            n = 2048 if ch.sample_rate_hz > 100 else 1
            values = sim.snapshot(a.asset_id, ch, t_h, n)
            out.append((ReadingBatch(publisher=PUBLISHER, seq=seq, asset_id=a.asset_id, channel=ch.name,
                                     quantity=ch.quantity, unit=ch.unit, sample_rate_hz=ch.sample_rate_hz,
                                     start=at, values=values.astype(float).tolist()), at))
            seq += 1
        state = sim.state(a.asset_id, t_h)
        if a.asset_id in PREDICTED and state.rul_hours is not None:
            rul = state.rul_hours
            spread = 0.1 * rul + 5.0
            out.append((Prediction(publisher=PUBLISHER, seq=seq, asset_id=a.asset_id, model_name="fixture-truth",
                                   model_version="v1", at=at, rul_median=rul, rul_lower=max(0.0, rul - spread),
                                   rul_upper=rul + spread, coverage=0.9, health_index=state.health_index), at))
            seq += 1
        if a.asset_id == "P-101":
            out.append((FeatureFrame(publisher=PUBLISHER, seq=seq, asset_id=a.asset_id, window_start=at,
                                     window_s=0.08, features={"vib_de": {
                                         "velocity_rms_mm_s": _velocity_rms(sim, a.asset_id, t_h),
                                         "temperature_c": state.temperature_c}}), at))
            seq += 1
    return out, seq


def seed(path: Path, *, ticks: int = 16, end: datetime | None = None) -> Seeded:
    """Create and fill ``path/store.db`` and ``path/registry``; the newest readings end at ``end`` (now)."""
    url = f"sqlite:///{path / 'store.db'}"
    plant, sim, life = _plant()
    end = end or utcnow()
    seq = 0
    messages: list[tuple[Message, datetime]] = []
    for i, t_h in enumerate(np.linspace(0.0, SEED_FRACTION * life, ticks)):
        batch, seq = _tick(sim, plant, float(t_h), end - timedelta(seconds=2.0 * (ticks - 1 - i)), seq)
        messages += batch
    dead = []
    for i in (0, 2, 3, 5, 6, 8):  # no oversize payload: keeps the fixture small
        topic, payload, reason = bad_message(i)
        dead.append(DeadLetterIn(topic=topic, payload=payload, reason=reason, detail=f"fixture {reason}"))
    with Store(url) as store:
        store.upsert_assets(plant)
        store.write(messages, dead)
        seeded = Seeded(url=url, registry_dir=path / "registry", users_json=users_json(), next_seq=seq)
        _alarms_and_orders(store, seeded, end)
    _registry(seeded.registry_dir)
    return seeded


def feed(seeded: Seeded, stop: threading.Event, interval_s: float = 1.0) -> None:
    """Keep the plant running: one tick a second, P-101 degrading further, until ``stop`` is set."""
    plant, sim, life = _plant()
    t_h, seq = SEED_FRACTION * life, seeded.next_seq
    with Store(seeded.url) as store:
        while not stop.wait(interval_s):
            t_h += 0.0005 * life
            batch, seq = _tick(sim, plant, t_h, utcnow(), seq)
            store.write(batch)


def _alarms_and_orders(store: Store, seeded: Seeded, now: datetime) -> None:
    a = actions.raise_alarm(store, "P-101", "vibration_high", "high",
                            "Vibration RMS above 4x baseline; BPFO in the envelope spectrum", at=now)
    seeded.alarms["active"] = a.id
    b = actions.raise_alarm(store, "F-101", "temperature_high", "medium", "Bearing temperature rising", at=now)
    actions.acknowledge_alarm(store, b.id, "olga", at=now)
    seeded.alarms["acknowledged"] = b.id
    c = actions.raise_alarm(store, "P-102", "vibration_high", "low", "1x shaft component rising", at=now)
    actions.shelve_alarm(store, c.id, "olga", "impeller balancing planned for Friday", now + timedelta(days=2),
                         at=now)
    seeded.alarms["shelved"] = c.id
    d = actions.raise_alarm(store, "M-201", "temperature_high", "low", "Brief overload", at=now - timedelta(hours=3))
    actions.acknowledge_alarm(store, d.id, "olga", at=now - timedelta(hours=2))
    actions.clear_alarm(store, d.id, at=now - timedelta(hours=1))
    seeded.alarms["cleared"] = d.id
    w = actions.create_work_order(
        store, "P-101", "Replace drive-end bearing SKF 6310", by="prescriber", priority="high",
        due_by=now + timedelta(days=3),
        body={"recommendation": "Replace the drive-end bearing at the next planned stop (outer-race defect).",
              "evidence": {"envelope_peak_at_bpfo": True, "vibration_rms_ratio": 4.2, "rul_h": 38.0},
              "parts": ["SKF 6310-2Z"]}, at=now)
    seeded.work_orders["draft"] = w.id
    w2 = actions.create_work_order(store, "F-101", "Inspect and re-grease fan bearing", by="prescriber", at=now)
    actions.approve_work_order(store, w2.id, "eve", note="during Tuesday stop", at=now)
    seeded.work_orders["approved"] = w2.id


def _registry(root: Path) -> None:
    from models.registry import ModelRegistry

    reg = ModelRegistry(root)
    onnx = root.parent / "fixture.onnx"
    onnx.write_bytes(b"not a real model: registry fixture")
    for i, rmse in enumerate((16.2, 14.9), start=1):
        reg.register("cmapss-FD001", onnx, {"model": "transformer", "variant": "int8-dynamic", "seed": i,
                                            "config": {"model": {"d_model": 32 * i}, "data": {"window": 30}},
                                            "metrics": {"val_rmse_onnx": rmse, "val_score_onnx": 300.0 + 10 * i}},
                     promote=i == 1)
