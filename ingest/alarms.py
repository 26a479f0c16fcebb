"""Alarm evaluation on stored feature frames (ISA-18.2 style: raise, then clear on return to normal).

The edge agent decides anomalies (adaptive health threshold) and computes the ISO 20816 zone; this
module turns those conditions into alarms in the store, once per condition: an open alarm of the
same kind is not raised again, and it clears when its condition returns to normal.
"""

from __future__ import annotations

import logging
from collections.abc import Iterable
from dataclasses import dataclass

from core.errors import StoreError
from core.wire import FeatureFrame, Message
from ingest.store import Store, actions, queries

__all__ = ["AlarmEvaluator", "Condition"]

log = logging.getLogger(__name__)

ISO_ZONES = "ABCD"


@dataclass(frozen=True)
class Condition:
    """One alarm condition of one asset in one frame: on (raise) or off (clear)."""

    asset_id: str
    kind: str
    on: bool
    severity: str
    message: str


def conditions(frame: FeatureFrame) -> list[Condition]:
    """The alarm conditions a feature frame speaks about."""
    out: list[Condition] = []
    health = frame.features.get("health", {})
    if "alarm" in health and not health.get("learning", 0.0):
        hi, thr = health.get("hi"), health.get("threshold")
        detail = f"health indicator {hi:.3f} above its learned threshold {thr:.3f}" if hi is not None and thr is not None else ""
        out.append(Condition(frame.asset_id, "health_anomaly", health["alarm"] >= 0.5, "high",
                             f"Anomaly: {detail} (adaptive threshold learned on this asset's healthy period)"))
    zones = [(ch, int(f["iso_zone"])) for ch, f in frame.features.items() if "iso_zone" in f]
    if zones:
        ch, zone = max(zones, key=lambda z: z[1])
        vel = frame.features[ch].get("vel_rms_mm_s")
        speed = f" ({vel:.2f} mm/s)" if vel is not None else ""
        out.append(Condition(frame.asset_id, "iso_zone_D", zone >= 3, "critical",
                             f"ISO 20816 zone D on {ch}{speed}: vibration may damage the machine"))
        out.append(Condition(frame.asset_id, "iso_zone_C", zone == 2, "medium",
                             f"ISO 20816 zone C on {ch}{speed}: not fit for long-term operation"))
    return out


class AlarmEvaluator:
    """Raise and clear alarms from the feature frames ingest has just committed."""

    def __init__(self, store: Store) -> None:
        self.store = store
        self.raised = 0
        self.cleared = 0

    def evaluate(self, messages: Iterable[Message]) -> None:
        latest: dict[tuple[str, str], Condition] = {}
        for m in messages:  # in arrival order: the newest frame of each asset decides
            if isinstance(m, FeatureFrame):
                for c in conditions(m):
                    latest[(c.asset_id, c.kind)] = c
        if not latest:
            return
        try:
            open_alarms = {(a.asset_id, a.kind): a for a in queries.alarms(self.store, states=queries.OPEN_ALARM_STATES)}
            for key, c in latest.items():
                if c.on and key not in open_alarms:
                    actions.raise_alarm(self.store, c.asset_id, c.kind, c.severity, c.message)
                    self.raised += 1
                elif not c.on and key in open_alarms:
                    actions.clear_alarm(self.store, open_alarms[key].id)
                    self.cleared += 1
        except StoreError as err:  # alarms must never stop data ingest; the next frame retries
            log.error("alarm evaluation failed: %s", err)
