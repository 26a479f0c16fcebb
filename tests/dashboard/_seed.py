"""A store filled with what the edge agent publishes, plus alarms, work orders, dead letters and a registry.

The demo plant runs through the real edge agent (:class:`edge_agent.agent.EdgeAgent`): simulator
ticks go in, and what the agent would publish comes out: a feature frame per asset and window
(vibration, envelope amplitudes, temperature, health), raw readings of the slow channels only,
status reports, and raw vibration snapshots when an anomaly starts (P-101, outer-race fault) or
when asked (F-101). The agent learns its health baselines faster than in the demo (fewer windows),
so a short seeded history already holds P-101's anomaly. Predictions are the simulator's
ground-truth RUL with a widening interval, under a fixture model name, for two assets only, so the
pages show both "with data" and "no data yet".
"""

from __future__ import annotations

import json
import threading
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from core.assets import AssetConfig
from core.edge_config import HealthConfig
from core.settings import EdgeSettings, Settings
from core.sim import default_faults, default_plant
from core.wire import Message, Prediction, utcnow
from dashboard.auth import hash_password
from edge_agent.agent import EdgeAgent
from edge_agent.sources.simulator import SimulatorSource
from ingest.store import DeadLetterIn, Store, actions
from tests._factories import bad_message

PUBLISHER = "edge-fixture"
PASSWORDS = {"olga": "operator-pw", "eve": "engineer-pw"}
ROLES = {"olga": "operator", "eve": "engineer"}
PREDICTED = ("P-101", "F-101")
#: The seeded history ends this far into P-101's life (outer-race fault well developed).
SEED_FRACTION = 0.92
#: Healthy ticks (before P-101's fault starts at 85 h) and ticks of its degradation.
HEALTHY_TICKS, DEGRADING_TICKS = 24, 30
#: Learns each asset's baseline on 20 windows after 4 of run-in (the demo: 100 after 60).
SEED_HEALTH = HealthConfig(warmup_windows=4, baseline_windows=20, smooth_windows=5, persistence=3)


@dataclass
class Seeded:
    url: str
    registry_dir: Path
    users_json: str
    run: PlantRun
    alarms: dict[str, int] = field(default_factory=dict)
    work_orders: dict[str, int] = field(default_factory=dict)

    def env(self) -> dict[str, str]:
        return {"GENEDGE_STORE__URL": self.url, "GENEDGE_DASHBOARD__USERS": self.users_json,
                "GENEDGE_MODELS__REGISTRY_DIR": str(self.registry_dir)}


def users_json() -> str:
    return json.dumps({u: {"role": ROLES[u], "password_hash": hash_password(pw)} for u, pw in PASSWORDS.items()})


class _Collect:
    """The agent's sink: keeps what it would publish."""

    def __init__(self) -> None:
        self.seq = 0
        self.sent: list[Any] = []

    def next_seq(self) -> int:
        self.seq += 1
        return self.seq

    def send(self, message: Any) -> bool:
        self.sent.append(message)
        return True

    def take(self) -> list[Any]:
        out, self.sent = self.sent, []
        return out


class PlantRun:
    """The demo plant through the real edge agent, one simulator tick at a time."""

    def __init__(self) -> None:
        self.plant: list[AssetConfig] = default_plant()
        faults = default_faults(self.plant, 7)
        self.life_hours = faults["P-101"].life_hours
        self.source = SimulatorSource(self.plant, faults, seed=7)
        self.sink = _Collect()
        settings = Settings(edge=EdgeSettings(agent_id=PUBLISHER, health=SEED_HEALTH))
        self.agent = EdgeAgent(settings, self.plant, self.sink)
        self.t_hours = 0.0
        self._pred_seq = 0

    def tick(self, t_hours: float, at: datetime) -> list[tuple[Message, datetime]]:
        """Every channel of every asset at simulated hour ``t_hours``, stamped ``at``, through the agent.

        Returns what the agent published (a window closes when the next tick's batch arrives)
        and the fixture predictions, each received at ``at``.
        """
        self.t_hours = t_hours
        for batch in self.source.tick(t_hours, at):
            self.agent.handle_batch(batch)
        return [(m, at) for m in self.sink.take()] + self._predictions(t_hours, at)

    def flush(self, at: datetime) -> list[tuple[Message, datetime]]:
        """Close the open windows (the agent does this when it stops)."""
        self.agent.flush()
        return [(m, at) for m in self.sink.take()]

    def command(self, asset_id: str, payload: bytes, at: datetime) -> list[tuple[Message, datetime]]:
        """A command as it arrives on the asset's command topic, e.g. ``{"action": "raw"}``."""
        self.agent.command(asset_id, payload)
        self.agent.handle_commands()
        return [(m, at) for m in self.sink.take()]

    def _predictions(self, t_hours: float, at: datetime) -> list[tuple[Message, datetime]]:
        out: list[tuple[Message, datetime]] = []
        for asset_id in PREDICTED:
            state = self.source.plant.state(asset_id, t_hours)
            if state.rul_hours is None:
                continue
            rul, spread = state.rul_hours, 0.1 * state.rul_hours + 5.0
            self._pred_seq += 1
            out.append((Prediction(publisher="rul-fixture", seq=self._pred_seq, asset_id=asset_id,
                                   model_name="fixture-truth", model_version="v1", at=at, rul_median=rul,
                                   rul_lower=max(0.0, rul - spread), rul_upper=rul + spread, coverage=0.9,
                                   health_index=state.health_index), at))
        return out


def _schedule(life: float) -> list[float]:
    healthy = np.linspace(0.0, 80.0, HEALTHY_TICKS, endpoint=False)
    degrading = np.linspace(80.0, SEED_FRACTION * life, DEGRADING_TICKS)
    return [float(t) for t in (*healthy, *degrading)]


def seed(path: Path, *, end: datetime | None = None) -> Seeded:
    """Create and fill ``path/store.db`` and ``path/registry``; the newest data ends at ``end`` (now)."""
    url = f"sqlite:///{path / 'store.db'}"
    run = PlantRun()
    end = end or utcnow()
    hours = _schedule(run.life_hours)
    messages: list[tuple[Message, datetime]] = []
    for i, t_h in enumerate(hours):
        messages += run.tick(t_h, end - timedelta(seconds=2.0 * (len(hours) - 1 - i)))
    messages += run.command("F-101", b'{"action": "raw"}', end)
    dead = []
    for i in (0, 2, 3, 5, 6, 8):  # no oversize payload: keeps the fixture small
        topic, payload, reason = bad_message(i)
        dead.append(DeadLetterIn(topic=topic, payload=payload, reason=reason, detail=f"fixture {reason}"))
    with Store(url) as store:
        store.upsert_assets(run.plant)
        store.write(messages, dead)
        seeded = Seeded(url=url, registry_dir=path / "registry", users_json=users_json(), run=run)
        _alarms_and_orders(store, seeded, end)
    _registry(seeded.registry_dir)
    return seeded


def feed(seeded: Seeded, stop: threading.Event, interval_s: float = 1.0) -> None:
    """Keep the plant running through the agent: one tick a second, P-101 degrading further, until ``stop``."""
    run = seeded.run
    with Store(seeded.url) as store:
        while not stop.wait(interval_s):
            t_h = min(run.t_hours + 0.0005 * run.life_hours, 0.999 * run.life_hours)
            store.write(run.tick(t_h, utcnow()))


def _alarms_and_orders(store: Store, seeded: Seeded, now: datetime) -> None:
    a = actions.raise_alarm(store, "P-101", "health_anomaly", "high",
                            "Anomaly: health indicator above its learned threshold; BPFO in the envelope", at=now)
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
    from core.inference.registry import ModelRegistry
    from tests._factories import minimal_card

    reg = ModelRegistry(root)
    onnx = root.parent / "fixture.onnx"
    onnx.write_bytes(b"not a real model: registry fixture")
    for i, rmse in enumerate((16.2, 14.9), start=1):
        card = minimal_card(variant="int8-dynamic", seed=i,
                            config={"model": {"d_model": 32 * i}, "data": {"window": 30}},
                            metrics={"val_rmse_onnx": rmse, "val_score_onnx": 300.0 + 10 * i})
        reg.register("cmapss-FD001", onnx, card, promote=i == 1)
