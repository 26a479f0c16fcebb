"""The what-if twin for one asset: its evidence, costs and the plant calendar into options, risks and a choice.

:func:`run_whatif` takes an asset's :class:`~prescribe.schema.Evidence` (the RUL model's latest
interval), its configuration and the ``[plant]`` settings, draws futures with the RUL model's
analog library (:class:`core.twin.AnalogLibrary`; the model's interval alone when it has none)
and judges the four options with :mod:`core.twin`. :func:`whatif_from_store` gathers what it
needs from the store (:func:`whatif_for_evidence` from evidence already gathered), and
:func:`whatif_fact` turns the result into the :class:`~prescribe.schema.WhatIfFact` a work order
cites. An asset the decision policy finds without a developing fault (healthy, watch, insufficient
evidence) is told to run on, whatever the futures say.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from core.assets import AssetConfig, Quantity
from core.inference.registry import SHIPPED_DIR
from core.settings import PlantSettings, Settings
from core.twin import (
    QUANTILES,
    AnalogLibrary,
    AssetCosts,
    Futures,
    OptionOutcome,
    Recommendation,
    evaluate,
    find_library,
    health_fan,
    interval_futures,
    make_options,
    recommend,
)
from ingest.store import queries
from prescribe.evidence import asset_from_info, from_store
from prescribe.policy import DeadlinePolicy, assess
from prescribe.schema import Evidence, WhatIfFact

__all__ = ["WhatIf", "asset_costs", "next_stops_h", "run_whatif", "whatif_fact", "whatif_for_evidence",
           "whatif_from_store"]

#: Load share assumed when no load channel reports one.
DEFAULT_LOAD_SHARE = 0.75
#: Fewest runs an analog library needs before its futures are used: with fewer, the neighbours
#: cannot show how runs differ (on the FEMTO bearings, two runs per library covered 22 % of the
#: truth with a 90 % interval; benchmarks/results/whatif.md), and the model's interval stands in.
MIN_LIBRARY_RUNS = 20


@dataclass
class WhatIf:
    """The what-if of one asset at one moment.

    Attributes:
        asset_id: the asset.
        at: when it was judged.
        state: the decision policy's state for the same evidence.
        developing: whether the policy sees a developing fault (plan, urgent or stop now).
        generator: ``"analogs"`` (learned) or ``"interval"`` (the RUL model's interval alone).
        model: the RUL model whose prediction started the futures.
        outcomes: risk and cost per option (empty without a RUL prediction).
        choice: the recommended option's name.
        reason: why, in plain words.
        costs: the asset's costs.
        currency: the costs' currency.
        next_stop_h: plant hours to the next planned stop (``None``: none in the calendar).
        time_scale: plant hours per wall-clock hour.
        age_h: running hours since the part was new (or since the asset was first watched).
        load_share: the load the futures start from, as a share of rating.
        futures: the futures at the current condition (``None`` without a RUL prediction).
        risk_limit: the plant's accepted risk of failing before a repair.
    """

    asset_id: str
    at: datetime
    state: str
    developing: bool
    generator: str
    model: str
    outcomes: list[OptionOutcome]
    choice: str
    reason: str
    costs: AssetCosts
    currency: str
    next_stop_h: float | None
    time_scale: float
    age_h: float
    load_share: float
    risk_limit: float
    futures: Futures | None = field(default=None, repr=False)

    def outcome(self, name: str) -> OptionOutcome | None:
        """The outcome of one option."""
        return next((o for o in self.outcomes if o.option.name == name), None)

    @property
    def chosen(self) -> OptionOutcome | None:
        """The recommended option's outcome (``None`` without futures)."""
        return self.outcome(self.choice)

    def due_at(self, hours: float) -> datetime | None:
        """Wall-clock time ``hours`` plant hours after :attr:`at`."""
        return self.at + timedelta(hours=hours / self.time_scale) if math.isfinite(hours) else None

    def fan(self, name: str, horizon_h: float | None = None, points: int = 60) -> tuple[np.ndarray, np.ndarray]:
        """``(times_h, quantiles)`` of the health index under one option (see :func:`core.twin.health_fan`)."""
        o = self.outcome(name)
        if o is None or self.futures is None:
            raise ValueError(f"no futures for option {name!r}")
        if horizon_h is None:
            finite = [q for oc in self.outcomes for q in oc.failure_quantiles_h if math.isfinite(q)]
            horizon_h = max([*finite, self.next_stop_h or 0.0, 24.0]) * 1.1
        times = np.linspace(0.0, horizon_h, points)
        return times, health_fan(self.futures, o, times)

    def as_dict(self) -> dict[str, Any]:
        """Plain data for JSON."""
        return {
            "asset_id": self.asset_id, "at": self.at.isoformat(), "state": self.state, "developing": self.developing,
            "generator": self.generator, "model": self.model, "futures": self.futures.n if self.futures else 0,
            "choice": self.choice, "reason": self.reason, "currency": self.currency, "risk_limit": self.risk_limit,
            "next_stop_h": None if self.next_stop_h is None else round(self.next_stop_h, 2),
            "age_h": round(self.age_h, 1), "load_share": round(self.load_share, 3), "time_scale": self.time_scale,
            "costs": self.costs.__dict__, "quantiles": list(QUANTILES),
            "options": [o.as_dict() for o in self.outcomes],
        }


def asset_costs(asset: AssetConfig, plant: PlantSettings) -> AssetCosts:
    """The asset's costs: its own ``[[assets]]`` values over the ``[plant]`` defaults."""
    return AssetCosts(
        downtime_per_h=asset.downtime_cost_per_h if asset.downtime_cost_per_h is not None
        else plant.downtime_cost_per_h[asset.criticality],
        repair_h=asset.repair_h or plant.repair_h,
        parts_cost=asset.parts_cost if asset.parts_cost is not None else plant.parts_cost,
        labour_per_h=plant.labour_per_h,
        failure_extra_h=plant.failure_extra_h,
        failure_extra_cost=asset.failure_cost if asset.failure_cost is not None else plant.failure_cost,
        lead_time_h=asset.spare_lead_time_h,
        stop_h=plant.planned_stop_h,
    )


def next_stops_h(now: datetime, plant: PlantSettings, *, time_scale: float = 1.0, count: int = 3) -> list[float]:
    """Plant hours from ``now`` to the next ``count`` planned stops (a stop under way counts as 0)."""
    stops: list[float] = []
    if plant.planned_stop_every_h > 0:
        period = plant.planned_stop_every_h
        to_anchor = (plant.planned_stop_anchor - now).total_seconds() / 3600.0 * time_scale
        j = math.ceil((-to_anchor - plant.planned_stop_h) / period)
        stops += [max(to_anchor + (j + i) * period, 0.0) for i in range(count + 1)]
    for s in plant.planned_stops:
        h = (s - now).total_seconds() / 3600.0 * time_scale
        if h > -plant.planned_stop_h:
            stops.append(max(h, 0.0))
    return sorted(stops)[:count]


def _futures(ev: Evidence, library: AnalogLibrary | None, n: int, rng: np.random.Generator, *, load_share: float,
             age_h: float) -> Futures | None:
    r = ev.rul
    if r is None:
        return None
    kind = ev.fault.kind if ev.fault is not None else "outer_race"
    if library is not None:
        return library.sample(r.median_h, r.lower_h, r.upper_h, n, rng, load_share=load_share, age_h=age_h)
    damage = 1.0 - r.health_index if r.health_index is not None else 0.5
    return interval_futures(r.median_h, r.lower_h, r.upper_h, n, rng, coverage=r.coverage, damage=damage, kind=kind)


def run_whatif(ev: Evidence, asset: AssetConfig, plant: PlantSettings, *, library: AnalogLibrary | None = None,
               load_share: float = DEFAULT_LOAD_SHARE, age_h: float = 0.0, derate_share: float | None = None,
               repair_in_h: float | None = None, seed: int = 0, policy: DeadlinePolicy | None = None) -> WhatIf:
    """Futures, options, risks and the recommendation for one asset.

    Args:
        ev: the asset's evidence (its ``rul`` starts the futures).
        asset: its configuration (costs, lead time).
        plant: the calendar, cost defaults and limits.
        library: the RUL model's analog library; ``None``: the model's interval alone.
        load_share: the current load as a share of rating.
        age_h: running hours since the part was new.
        derate_share: the derate option's share (default ``plant.derate_share``).
        repair_in_h: plant hours to the repair of the "next planned stop" option when the engineer
            picks another date (default: the calendar's next stop after the part arrives).
        seed: seed of the futures (the same inputs give the same answer).
        policy: the decision policy (default parameters).
    """
    decision = assess(ev, policy)
    developing = decision.works_on_machine
    costs = asset_costs(asset, plant)
    stops = next_stops_h(ev.at, plant, time_scale=ev.time_scale)
    next_stop = stops[0] if stops else None
    if repair_in_h is not None:
        if not (math.isfinite(repair_in_h) and repair_in_h >= 0):
            raise ValueError(f"repair_in_h must be a finite number of hours >= 0, got {repair_in_h!r}")
        stops = sorted({repair_in_h, *(s for s in stops if s > repair_in_h)})
    share = plant.derate_share if derate_share is None else derate_share
    if not 0 < share <= 0.9:
        raise ValueError(f"derate_share must be in (0, 0.9], got {share!r}")
    rng = np.random.default_rng([seed, 0x3A7])
    lib = (library if library is not None and ev.rul is not None and library.model == ev.rul.model
           and np.unique(library.unit).size >= MIN_LIBRARY_RUNS else None)
    futures = _futures(ev, lib, plant.futures, rng, load_share=load_share, age_h=age_h)
    model = ev.rul.model if ev.rul is not None else ""
    common: dict[str, Any] = {"asset_id": ev.asset.asset_id, "at": ev.at, "state": decision.state, "developing": developing,
              "model": model, "costs": costs, "currency": plant.currency, "next_stop_h": next_stop,
              "time_scale": ev.time_scale, "age_h": age_h, "load_share": load_share,
                              "risk_limit": plant.risk_limit[asset.criticality]}
    if futures is None:
        reason = ("no RUL prediction to start futures from; run on and follow the decision policy" if not developing
                  else "no RUL prediction to start futures from; follow the work order's deadline")
        return WhatIf(generator="none", outcomes=[], choice="run_on", reason=reason, **common)
    outcomes = evaluate(futures, make_options(stops, costs, derate_share=share), costs, age_h=age_h,
                        next_stop_h=next_stop if next_stop is not None else math.inf, stops_h=stops,
                        review_h=plant.review_h)
    if developing:
        rec: Recommendation = recommend(outcomes, plant.risk_limit[asset.criticality])
        choice, reason = rec.choice.option.name, rec.reason
    else:
        choice = "run_on"
        reason = f"no developing fault ({decision.state}: {decision.why}); run on, no intervention"
    if lib is None and ev.rul is not None:
        why = "its analog library has too few runs" if library is not None and library.model == model else (
            "no analog library for " + (model or "this model"))
        reason += f"; futures from the RUL model's interval ({why})"
    return WhatIf(generator=futures.source, outcomes=outcomes, choice=choice, reason=reason, futures=futures, **common)


def _load_share(store: Any, asset: AssetConfig) -> float:
    """The latest load reading as a share of rating (a ``%`` load channel's mean), else the default."""
    names = [c.name for c in asset.channels if c.quantity == Quantity.LOAD and c.unit == "%"]
    if not names:
        return DEFAULT_LOAD_SHARE
    for f in reversed(queries.features(store, asset.asset_id, limit=5)):
        value = f.features.get(names[0], {}).get("mean")
        if value is not None and math.isfinite(value):
            return float(np.clip(value / 100.0, 0.0, 1.5))
    return DEFAULT_LOAD_SHARE


def whatif_from_store(store: Any, asset_id: str, settings: Settings, *, now: datetime | None = None,
                      registry_dirs: Sequence[str | Path] | None = None, derate_share: float | None = None,
                      repair_in_h: float | None = None, seed: int = 0) -> WhatIf:
    """:func:`run_whatif` on the asset's evidence from the store.

    The age is the hours since the asset's ``in_service_since`` (else since its first stored
    window), in plant hours; the analog library is the one beside the predicting model's version
    in ``registry_dirs`` (default: the configured registry, then the shipped models).
    """
    ev = from_store(store, asset_id, now=now, time_scale=settings.store.time_scale)
    return whatif_for_evidence(store, ev, settings, registry_dirs=registry_dirs, derate_share=derate_share,
                               repair_in_h=repair_in_h, seed=seed)


def whatif_for_evidence(store: Any, ev: Evidence, settings: Settings, *, asset: AssetConfig | None = None,
                        registry_dirs: Sequence[str | Path] | None = None, derate_share: float | None = None,
                        repair_in_h: float | None = None, seed: int = 0,
                        policy: DeadlinePolicy | None = None) -> WhatIf:
    """:func:`run_whatif` on evidence already gathered from ``store`` (it is not read again).

    The store gives only what the evidence lacks: the asset's first stored window (its age when
    the configuration has no ``in_service_since``) and its latest load. ``asset`` is the asset's
    configuration (default: from ``settings``, else the store's); ``policy`` the decision policy
    that judges whether the fault is developing (default parameters).
    """
    asset_id = ev.asset.asset_id
    if asset is None:
        asset = next((a for a in settings.assets if a.asset_id == asset_id), None)
    if asset is None:
        info = queries.asset(store, asset_id)
        asset = asset_from_info(info) if info is not None else AssetConfig(asset_id=asset_id,
                                                                            criticality=ev.asset.criticality)
    since = asset.in_service_since or queries.first_window(store, asset_id)
    age_h = max((ev.at - since).total_seconds() / 3600.0 * ev.time_scale, 0.0) if since is not None else 0.0
    dirs = list(registry_dirs) if registry_dirs is not None else [settings.models.registry_dir, SHIPPED_DIR]
    library = find_library(ev.rul.model, dirs) if ev.rul is not None else None
    return run_whatif(ev, asset, settings.plant, library=library, load_share=_load_share(store, asset), age_h=age_h,
                      derate_share=derate_share, repair_in_h=repair_in_h, seed=seed, policy=policy)


def _finite(value: float) -> float | None:
    return float(value) if math.isfinite(value) else None


def whatif_fact(wi: WhatIf) -> WhatIfFact | None:
    """The what-if as the fact a work order cites: the chosen option's risk and cost, and the best
    alternative's (the other option with the lowest expected cost per hour).

    ``None`` when the what-if has no futures (no RUL prediction), so there is nothing to cite.
    """
    c = wi.chosen
    if c is None:
        return None
    others = sorted((o for o in wi.outcomes if o is not c), key=lambda o: o.cost_per_h)
    alt = others[0] if others else None
    return WhatIfFact(
        option=c.option.name, label=c.option.label, p_fail_before_repair=c.p_fail_before_repair,
        p_fail_before_stop=c.p_fail_before_stop if wi.next_stop_h is not None else None,
        expected_cost=c.expected_cost, currency=wi.currency, repair_in_h=_finite(c.option.repair_h),
        futures=wi.futures.n if wi.futures is not None else len(c.failure_h), generator=wi.generator,
        risk_limit=wi.risk_limit,
        alternative=alt.option.name if alt is not None else None,
        alternative_label=alt.option.label if alt is not None else "",
        alternative_p_fail=alt.p_fail_before_repair if alt is not None else None,
        alternative_cost=alt.expected_cost if alt is not None else None,
    )
