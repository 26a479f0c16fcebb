"""What the demo calls: "prescribe for this asset and store the draft", and a watcher that drafts
a work order each time an asset's decision state escalates (healthy -> plan -> urgent -> stop now).

Given the settings, both attach the what-if twin's choice (:func:`attach_whatif`) to an asset
whose fault is developing, so its work order cites the chosen option's simulated risk and cost.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Awaitable, Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

from core.assets import AssetConfig
from core.errors import GenEdgeError
from core.settings import Settings
from ingest.store import queries
from prescribe.evidence import from_store
from prescribe.policy import DeadlinePolicy, assess
from prescribe.prescriber import Outcome, Prescriber
from prescribe.schema import Evidence, State
from prescribe.whatif import whatif_fact, whatif_for_evidence
from prescribe.workorders import reject, save_draft, work_order_number

__all__ = ["STATE_RANK", "DecisionWatcher", "WatchEvent", "aprescribe_and_save", "attach_whatif",
           "prescribe_and_save"]

log = logging.getLogger(__name__)

#: How far each decision state asks for work; a work order is drafted when an asset's rank rises
#: into the states that work on the machine (plan and above).
STATE_RANK: dict[str, int] = {"healthy": 0, "watch": 1, "insufficient_evidence": 1, "plan": 2, "urgent": 3,
                                "stop_now": 4}
_WORK_RANK = STATE_RANK["plan"]


def attach_whatif(store: Any, ev: Evidence, settings: Settings, *, asset: AssetConfig | None = None,
                  policy: DeadlinePolicy | None = None,
                  registry_dirs: Sequence[str | Path] | None = None) -> Evidence:
    """``ev`` with the what-if twin's choice (:class:`~prescribe.schema.WhatIfFact`) when its fault is developing.

    Only evidence with a RUL prediction whose decision works on the machine (plan, urgent, stop
    now) gets one: the futures start from the RUL, and only work orders cite it. The what-if runs
    on ``ev`` as gathered (:func:`prescribe.whatif.whatif_for_evidence`), with the analog library
    of the predicting model from ``registry_dirs`` (default: the configured registry, then the
    shipped models). A what-if that fails is logged and ``ev`` comes back unchanged: it informs a
    work order and must never stop one being drafted.
    """
    if ev.rul is None or not assess(ev, policy).works_on_machine:
        return ev
    try:
        wi = whatif_for_evidence(store, ev, settings, asset=asset, registry_dirs=registry_dirs, policy=policy)
        fact = whatif_fact(wi)
    except Exception:  # a model library, a setting or a store read that fails: draft without the what-if
        log.exception("what-if for %s failed; the work order is drafted without it", ev.asset.asset_id)
        return ev
    return ev if fact is None else ev.model_copy(update={"whatif": fact})


async def aprescribe_and_save(store: Any, prescriber: Prescriber, asset_id: str, *, asset: AssetConfig | None = None,
                              now: datetime | None = None, by: str = "prescriber", time_scale: float | None = None,
                              settings: Settings | None = None,
                              registry_dirs: Sequence[str | Path] | None = None) -> tuple[Outcome, Any | None]:
    """Gather the asset's evidence from the store, recommend, and store the work-order draft.

    ``time_scale`` is the store's plant hours per wall-clock hour (``None``: what the store records).
    With ``settings`` (its ``[plant]`` calendar, costs and risk limit), a developing fault's work
    order cites the what-if twin's choice (:func:`attach_whatif`, with ``registry_dirs``).

    Returns:
        The outcome and the stored ``WorkOrderView`` (``None`` when the recommendation is
        monitor-only or says the evidence is insufficient).

    Raises:
        GenEdgeError: unknown asset; ``StoreError`` when the store fails.
    """
    ev = from_store(store, asset_id, now=now, asset=asset, time_scale=time_scale)
    if settings is not None:
        ev = attach_whatif(store, ev, settings, asset=asset, policy=prescriber.policy, registry_dirs=registry_dirs)
    outcome = await prescriber.arun(ev)
    saved = save_draft(store, outcome.recommendation, by=by) if outcome.recommendation.work_order is not None else None
    return outcome, saved


def prescribe_and_save(store: Any, prescriber: Prescriber, asset_id: str, *, asset: AssetConfig | None = None,
                       now: datetime | None = None, by: str = "prescriber") -> tuple[Outcome, Any | None]:
    """Blocking :func:`aprescribe_and_save` (not from inside a running event loop)."""
    return asyncio.run(aprescribe_and_save(store, prescriber, asset_id, asset=asset, now=now, by=by))


@dataclass(frozen=True)
class WatchEvent:
    """One state change the watcher acted on."""

    asset_id: str
    state: State
    previous: State | None
    work_order_id: int | None
    superseded: tuple[int, ...] = ()


def _open_rank(store: Any, asset_id: str) -> tuple[int, list[Any]]:
    """The highest decision rank among the asset's open (draft or approved) work orders, and its drafts."""
    rank, drafts = -1, []
    for wo in queries.work_orders(store, statuses=("draft", "approved"), asset_id=asset_id, limit=50):
        state = (wo.body.get("recommendation") or {}).get("state") if isinstance(wo.body, dict) else None
        # A work order stored without a state (by hand, or before states existed) counts as planned work.
        rank = max(rank, STATE_RANK.get(state, _WORK_RANK) if isinstance(state, str) else _WORK_RANK)
        if wo.status == "draft":
            drafts.append(wo)
    return rank, drafts


@dataclass
class DecisionWatcher:
    """Drafts a work order whenever an asset's decision state escalates into work.

    Each :meth:`step` judges every asset's evidence from the store with the decision policy (no
    language model: cheap). When the state asks for work (plan, urgent, stop now) and ranks above
    every open work order of the asset, the prescriber drafts a new one; the older *drafts* of the
    asset are rejected as superseded (approved work orders are left to the planner, and the new
    draft says the state escalated). A de-escalation (repair, a better prediction) drafts nothing.

    Args:
        store: an ``ingest.store.Store``.
        assets: the watched assets by id.
        prescriber: a factory giving the prescriber on first use (the local model loads only when
            something needs a work order).
        policy: the decision policy (default parameters when ``None``).
        by: who the drafts are recorded as.
        time_scale: the store's plant hours per wall-clock hour (``None``: what the store records).
        settings: the settings whose ``[plant]`` section the what-if twin uses; ``None``: work
            orders without a what-if.
        registry_dirs: where the RUL models' analog libraries are looked up (default: the
            configured registry, then the shipped models).
    """

    store: Any
    assets: Mapping[str, AssetConfig]
    prescriber: Callable[[], Awaitable[Prescriber]]
    policy: DeadlinePolicy = field(default_factory=DeadlinePolicy)
    by: str = "prescriber"
    time_scale: float | None = None
    settings: Settings | None = None
    registry_dirs: Sequence[str | Path] | None = None
    states: dict[str, State] = field(default_factory=dict)
    _prescriber: Prescriber | None = None

    async def step(self, now: datetime | None = None) -> list[WatchEvent]:
        """Judge every asset once; draft for those that escalated.

        An asset whose evidence cannot be gathered, or whose prescription fails, is skipped with a
        log line and judged again at the next step; store errors while reading the plant propagate.
        """
        events = []
        if self.time_scale is None:  # the store records it once, at start: read it once, not per asset and step
            self.time_scale = queries.time_scale(self.store)
        for asset_id, asset in self.assets.items():
            try:
                ev = from_store(self.store, asset_id, now=now, asset=asset, time_scale=self.time_scale)
            except GenEdgeError as err:
                log.warning("decision watcher: no evidence for %s: %s", asset_id, err)
                continue
            decision = assess(ev, self.policy)
            previous = self.states.get(asset_id)
            self.states[asset_id] = decision.state
            rank = STATE_RANK[decision.state]
            if rank < _WORK_RANK:
                continue
            open_rank, drafts = _open_rank(self.store, asset_id)
            if rank <= open_rank:
                continue
            try:
                if self._prescriber is None:
                    self._prescriber = await self.prescriber()
                outcome, saved = await aprescribe_and_save(self.store, self._prescriber, asset_id, asset=asset,
                                                           now=now, by=self.by, time_scale=self.time_scale,
                                                           settings=self.settings, registry_dirs=self.registry_dirs)
            except Exception:  # one asset's failed prescription must not stop the plant being watched
                log.exception("decision watcher: prescribing for %s (%s) failed; retried next step", asset_id,
                              decision.state)
                continue
            if saved is None:  # the full prescription judged differently (e.g. a stale prediction by then)
                log.info("decision watcher: %s is %s but the prescription drafted nothing (%s)", asset_id,
                         decision.state, outcome.recommendation.status)
                continue
            superseded = []
            for old in drafts:
                reject(self.store, old.id, self.by,
                       f"superseded by {work_order_number(saved.id)}: the decision escalated to {decision.state}")
                superseded.append(old.id)
            events.append(WatchEvent(asset_id, decision.state, previous, saved.id, tuple(superseded)))
        return events

    async def aclose(self) -> None:
        """Release the prescriber (stops the local model's worker)."""
        if self._prescriber is not None:
            await self._prescriber.aclose()
            self._prescriber = None
