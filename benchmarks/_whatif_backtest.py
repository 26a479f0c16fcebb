"""Backtest of maintenance policies on simulated plants with known truth (the what-if twin's value).

A plant is the demo plant's eight machines over ``horizon_h`` plant hours. Each installed part
runs one simulated life (a fault kind, life, onset and growth drawn as for the RUL model's
training units; about 15 % of parts never fail in the horizon). Every ``step_h`` hours each
running machine is measured by the edge feature pipeline and the deployed simulator RUL model
(the shipped int8 ONNX file) predicts its RUL interval from the last frames: the policies see
what a plant would see, never the truth.

Costs follow ``core.twin.AssetCosts``: an unplanned failure costs the work, secondary damage and
the downtime until the machine runs again (waiting for the part if it is not on site); a repair
in a planned stop costs the work; a repair outside one adds its downtime; a derate loses its
share of production while it lasts. At the horizon each part still in service owes the share of
a planned repair its age has used (so no policy gains by leaving worn parts to the end).

Policies:

* ``run_to_failure``: repair only what fails.
* ``rul_threshold(h)``: repair as soon as the part is on site once the RUL lower bound is below ``h``.
* ``periodic(m)``: replace every part at every ``m``-th planned stop.
* ``deadline_policy``: GenEdge's decision policy without the twin (``core.maintenance.time_state``):
  stop now and urgent repair as soon as possible, plan repairs at the next planned stop.
* ``twin`` / ``twin_interval``: the what-if twin (``core.twin``) at every step, with the learned
  analog library or with the RUL model's interval alone; it follows the recommended option
  (derate, repair at the next stop, repair now, or run on) and re-judges at every step.
"""


from __future__ import annotations

import dataclasses
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from core.assets import AssetConfig
from core.inference.runtime import FeatureRULPredictor
from core.maintenance import time_state
from core.settings import PlantSettings
from core.sim import AssetSimulator, FaultSpec, default_plant
from core.twin import AnalogLibrary, AssetCosts, evaluate, interval_futures, make_options, recommend
from core.wire import AT_CAP_SHARE
from models.data.simulator import FAULT_KINDS, SimUnit, unit_frames

__all__ = ["POLICIES", "PlantConfig", "run_plant"]

#: The [plant] defaults: downtime cost per hour and risk limit, by criticality.
_PLANT = PlantSettings()


@dataclass(frozen=True)
class PlantConfig:
    """One simulated plant: seed, horizon, calendar and the decision step."""

    seed: int
    horizon_h: float = 1500.0
    step_h: float = 4.0
    stop_every_h: float = 168.0
    stop_h: float = 12.0
    derate_share: float = 0.3
    futures: int = 300


@dataclass
class _Machine:
    asset: AssetConfig
    costs: AssetCosts
    rng_seed: int
    part: int = 0
    install_h: float = 0.0
    fault: FaultSpec = field(default_factory=FaultSpec.healthy)
    unit_seed: int = 0
    ambient: float = 25.0
    down_until: float = -1.0
    rows: list[np.ndarray] = field(default_factory=list)
    ordered_at: float | None = None
    repair_at: float | None = None
    repair_in_stop: bool = False
    derate_from: float | None = None
    derate_share: float = 0.0
    last_periodic_stop: int = -1

    def draw_part(self, t: float) -> None:
        """Install part number ``self.part`` at ``t``: its life is drawn from (seed, asset, part), not from ``t``."""
        rng = np.random.default_rng([self.rng_seed, self.part, 0xBA5E])
        self.unit_seed = int(rng.integers(0, 2**31 - 1))
        self.ambient = float(rng.uniform(18.0, 32.0))
        self.install_h = t
        self.rows = []
        self.ordered_at = self.repair_at = self.derate_from = None
        self.derate_share = 0.0
        self.repair_in_stop = False
        if rng.random() < 0.15:
            self.fault = FaultSpec.healthy()
            return
        kind = FAULT_KINDS[int(rng.integers(len(FAULT_KINDS)))]
        life = float(rng.uniform(150.0, 1000.0))
        onset = life * float(rng.uniform(0.25, 0.6))
        self.fault = FaultSpec(kind=kind, onset_hours=round(t + onset, 1), life_hours=round(t + life, 1),
                               severity_growth=float(rng.uniform(2.5, 3.5)))

    def unit(self, t: float) -> SimUnit:
        return SimUnit(self.part, self.asset, self.fault, self.unit_seed, self.ambient, t, t)

    @property
    def failure_h(self) -> float:
        return self.fault.time_of_event

    def derate(self, t: float, share: float) -> None:
        self.derate_from, self.derate_share = t, share
        self.fault = self.fault.model_copy(update={"derate_from_hours": t, "derate_share": share})


@dataclass
class _Ledger:
    cost: float = 0.0
    failures: int = 0
    planned: int = 0
    unplanned_stops: int = 0
    derate_h: float = 0.0
    lost_h: float = 0.0
    terminal: float = 0.0

    def as_dict(self) -> dict[str, Any]:
        return dataclasses.asdict(self)


def _stops(cfg: PlantConfig) -> np.ndarray:
    phase = float(np.random.default_rng([cfg.seed, 0x5709]).uniform(0, cfg.stop_every_h))
    return np.arange(phase, cfg.horizon_h + cfg.stop_every_h, cfg.stop_every_h)


def _costs(asset: AssetConfig, rng: np.random.Generator, stop_h: float) -> AssetCosts:
    return AssetCosts(downtime_per_h=_PLANT.downtime_cost_per_h[asset.criticality] * float(rng.uniform(0.7, 1.3)),
                      repair_h=float(rng.choice([4.0, 6.0, 8.0])), parts_cost=float(rng.uniform(400, 1500)),
                      failure_extra_h=12.0, failure_extra_cost=float(rng.uniform(2000, 8000)),
                      lead_time_h=float(rng.choice([0.0, 0.0, 24.0, 72.0])), stop_h=stop_h)


class _Predictions:
    """The deployed model's RUL interval from a machine's last frames (the edge agent's view)."""

    def __init__(self, predictor: FeatureRULPredictor) -> None:
        self.p = predictor
        self.features = tuple((c, n, "none") for c, n in predictor.features)

    def measure(self, m: _Machine, t: float) -> None:
        _, raw = unit_frames(m.unit(t), self.features, step_hours=self.p.step_hours)
        if np.isfinite(raw).all():
            m.rows.append(raw[0])
            del m.rows[: -self.p.window]

    def predict(self, m: _Machine) -> tuple[float, float, float] | None:
        if len(m.rows) < self.p.window:
            return None
        pred = self.p.predict_unit(np.asarray(m.rows))
        return pred["rul"], pred["lower"], pred["upper"]


def _next_stop(stops: np.ndarray, t: float) -> float:
    later = stops[stops >= t]
    return float(later[0]) if later.size else math.inf


def _twin(policy: str, m: _Machine, t: float, pred: tuple[float, float, float], stops: np.ndarray, cfg: PlantConfig,
          library: AnalogLibrary | None, rng: np.random.Generator, arrival: float, order: Callable[[], None]) -> None:
    """The what-if twin's step for one machine: futures, options, the recommendation, and acting on it."""
    median, lower, upper = pred
    cap = 200.0
    lead = m.costs.lead_time_h
    # the twin, as the product runs it: only for a developing fault (the decision policy's RUL
    # states plan, urgent, stop now); otherwise run on and keep what is scheduled
    if time_state(lower, m.asset.criticality, at_cap=median >= AT_CAP_SHARE * cap) is None:
        return
    # futures at the current condition, the four options, the recommendation
    load = AssetSimulator(m.asset, m.fault, seed=m.unit_seed, ambient_c=m.ambient).state(t).load_pct / 100.0
    age = t - m.install_h
    if policy == "twin" and library is not None:
        fut = library.sample(median, lower, upper, cfg.futures, rng, load_share=load, age_h=age)
    else:
        fut = interval_futures(median, lower, upper, cfg.futures, rng)
    remaining_lead = max(arrival - t, 0.0) if m.ordered_at is not None else lead
    costs = dataclasses.replace(m.costs, lead_time_h=remaining_lead)
    next_stops = [s - t for s in stops if s >= t][:3]
    options = make_options(next_stops, costs, derate_share=cfg.derate_share)
    if m.derate_from is not None:  # already derated: the futures are at the derated load; no second derate
        options = [o for o in options if o.name != "derate"]
    outcomes = evaluate(fut, options, costs, age_h=age, next_stop_h=next_stops[0] if next_stops else math.inf,
                        stops_h=next_stops, review_h=cfg.step_h)
    choice = recommend(outcomes, _PLANT.risk_limit[m.asset.criticality]).choice.option
    if m.derate_from is not None and m.repair_at is not None and t + choice.repair_h >= m.repair_at:
        return  # a derate commits to its repair: only an earlier one replaces it
    if choice.name == "run_on":
        m.repair_at = None
        return
    order()
    if choice.name == "derate" and m.derate_from is None:
        m.derate(t, choice.derate_share)
    m.repair_at, m.repair_in_stop = t + choice.repair_h, choice.in_stop  # re-judged at every step


def _decide(policy: str, param: float, m: _Machine, t: float, pred: tuple[float, float, float] | None,
            stops: np.ndarray, cfg: PlantConfig, library: AnalogLibrary | None, rng: np.random.Generator,
            stop_index: int | None) -> None:
    """Set the machine's order, derate and repair schedule by the policy."""
    lead = m.costs.lead_time_h
    arrival = (m.ordered_at + lead) if m.ordered_at is not None else t + lead

    def order() -> None:
        if m.ordered_at is None:
            m.ordered_at = t

    if policy == "periodic":
        if stop_index is not None and (stop_index + 1) % int(param) == 0 and m.last_periodic_stop != stop_index:
            m.last_periodic_stop = stop_index
            m.ordered_at = t - lead  # planned long ahead: the part is on site
            m.repair_at, m.repair_in_stop = t, True
        return
    if pred is None or policy == "run_to_failure":
        return
    median, lower, _ = pred
    cap = 200.0
    if policy == "rul_threshold":
        if lower < param and m.repair_at is None:
            order()
            m.repair_at, m.repair_in_stop = max(t, arrival), False
        return
    if policy == "deadline_policy":
        state = time_state(lower, m.asset.criticality, at_cap=median >= AT_CAP_SHARE * cap)
        if state in ("stop_now", "urgent"):
            order()
            when = max(t, arrival)
            if m.repair_at is None or when < m.repair_at:
                m.repair_at, m.repair_in_stop = when, False
        elif state == "plan" and m.repair_at is None:
            order()
            m.repair_at, m.repair_in_stop = _next_stop(stops, arrival), True
        return
    _twin(policy, m, t, pred, stops, cfg, library, rng, arrival, order)


def run_plant(cfg: PlantConfig, policy: str, param: float, predictor: FeatureRULPredictor,
              library: AnalogLibrary | None) -> dict[str, Any]:
    """One plant under one policy: its cost ledger (totals over the machines)."""
    rng_cost = np.random.default_rng([cfg.seed, 0xC057])
    assets = default_plant()
    machines = [_Machine(a, _costs(a, rng_cost, cfg.stop_h), rng_seed=cfg.seed * 1000 + i) for i, a in enumerate(assets)]
    for m in machines:
        m.draw_part(0.0)
    stops = _stops(cfg)
    preds = _Predictions(predictor)
    rng = np.random.default_rng([cfg.seed, 0x7715])
    ledger = _Ledger()
    t = 0.0
    while t < cfg.horizon_h:
        hits = np.flatnonzero((stops <= t) & (t < stops + cfg.stop_h))
        stop_index = int(hits[0]) if hits.size else None
        for m in machines:
            if t < m.down_until:
                continue
            if m.derate_from is not None:
                ledger.derate_h += cfg.step_h
                ledger.cost += m.derate_share * m.costs.downtime_per_h * cfg.step_h
            repair_first = m.repair_at is not None and m.repair_at <= t and m.repair_at < m.failure_h
            if m.failure_h <= t and not repair_first:  # failed during the last step
                ledger.failures += 1
                part_at = (m.ordered_at + m.costs.lead_time_h) if m.ordered_at is not None else m.failure_h + m.costs.lead_time_h
                wait = max(part_at - m.failure_h, 0.0)
                ledger.cost += m.costs.failure_cost(wait)
                ledger.lost_h += wait + m.costs.repair_h + m.costs.failure_extra_h
                m.down_until = m.failure_h + wait + m.costs.repair_h + m.costs.failure_extra_h
                m.part += 1
                m.draw_part(m.down_until)
                continue
            if repair_first:
                in_stop = stop_index is not None  # any repair inside a planned stop costs no production
                ledger.cost += m.costs.planned_cost(in_stop)
                ledger.planned += 1
                if not in_stop:
                    ledger.unplanned_stops += 1
                    ledger.lost_h += m.costs.repair_h
                m.down_until = t + m.costs.repair_h
                m.part += 1
                m.draw_part(m.down_until)
                continue
            preds.measure(m, t)
            _decide(policy, param, m, t, preds.predict(m), stops, cfg, library, rng, stop_index)
        t += cfg.step_h
    for m in machines:  # the part still in service owes the share of a repair its age used
        life = m.failure_h - m.install_h
        if math.isfinite(life) and life > 0:
            used = min(max((cfg.horizon_h - m.install_h) / life, 0.0), 1.0)
            ledger.terminal += used * m.costs.work_cost
    ledger.cost += ledger.terminal
    return {"seed": cfg.seed, "policy": policy, "param": param, **ledger.as_dict()}


#: (policy, parameter grid): the fixed policies' parameters are chosen on tuning seeds.
POLICIES: dict[str, tuple[float, ...]] = {
    "run_to_failure": (0.0,),
    "rul_threshold": (24.0, 72.0, 150.0),
    "periodic": (1.0, 2.0, 4.0),
    "deadline_policy": (0.0,),
    "twin": (0.0,),
    "twin_interval": (0.0,),
}
