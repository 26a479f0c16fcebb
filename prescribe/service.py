"""What the demo calls: a threshold trigger and "prescribe for this asset and store the draft"."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from core.assets import AssetConfig
from prescribe.evidence import from_store
from prescribe.prescriber import Outcome, Prescriber
from prescribe.workorders import save_draft

__all__ = ["PrescriptionTrigger", "aprescribe_and_save", "prescribe_and_save"]


@dataclass
class PrescriptionTrigger:
    """Says when an asset's RUL or ISO zone has crossed a threshold since it was last asked.

    An asset triggers when its RUL lower bound first falls below one of ``rul_thresholds_h``
    (each threshold fires once, until the RUL rises above it again, e.g. after repair), or
    when its zone rises to ``zone_threshold`` or above (fires again only after it dropped below).

    Args:
        rul_thresholds_h: RUL lower bounds (hours) that trigger, e.g. one week, three days, one day.
        zone_threshold: ISO zone index (2 = C) that triggers.
    """

    rul_thresholds_h: tuple[float, ...] = (168.0, 72.0, 24.0)
    zone_threshold: int = 2
    _rul_level: dict[str, int] = field(default_factory=dict)
    _zone_high: dict[str, bool] = field(default_factory=dict)

    def update(self, asset_id: str, *, rul_lower_h: float | None = None, zone: int | None = None) -> bool:
        """Record the asset's latest RUL lower bound and zone; ``True`` if a threshold was crossed."""
        fired = False
        if rul_lower_h is not None:
            level = sum(1 for t in sorted(self.rul_thresholds_h, reverse=True) if rul_lower_h < t)
            fired = level > self._rul_level.get(asset_id, 0)
            self._rul_level[asset_id] = level
        if zone is not None:
            high = zone >= self.zone_threshold
            fired = fired or (high and not self._zone_high.get(asset_id, False))
            self._zone_high[asset_id] = high
        return fired


async def aprescribe_and_save(store: Any, prescriber: Prescriber, asset_id: str, *, asset: AssetConfig | None = None,
                              now: datetime | None = None, by: str = "prescriber") -> tuple[Outcome, Any | None]:
    """Gather the asset's evidence from the store, recommend, and store the work-order draft.

    Returns:
        The outcome and the stored ``WorkOrderView`` (``None`` when the recommendation is
        monitor-only or says the evidence is insufficient).

    Raises:
        GenEdgeError: unknown asset; ``StoreError`` when the store fails.
    """
    ev = from_store(store, asset_id, now=now, asset=asset)
    outcome = await prescriber.arun(ev)
    saved = save_draft(store, outcome.recommendation, by=by) if outcome.recommendation.work_order is not None else None
    return outcome, saved


def prescribe_and_save(store: Any, prescriber: Prescriber, asset_id: str, *, asset: AssetConfig | None = None,
                       now: datetime | None = None, by: str = "prescriber") -> tuple[Outcome, Any | None]:
    """Blocking :func:`aprescribe_and_save` (not from inside a running event loop)."""
    return asyncio.run(aprescribe_and_save(store, prescriber, asset_id, asset=asset, now=now, by=by))
