"""The fleet view of the plant overview: assets grouped by site, sites worst first, and a summary per site.
Pure: no Streamlit, no store.

A site's rank is its worst decision state present (the order of :data:`dashboard._status.STATES`),
then how many of its assets are in that state, then how many of its assets have stale data: the site
an operator should look at first comes first. Inside a site, assets keep the overview's urgency
order (:func:`dashboard._status.urgency_key`). The summary reuses the decisions the page already
judged, so nothing is read or decided twice.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta

import pandas as pd

from dashboard._status import STATE_LABEL, STATES, AssetDecision, urgency_key
from ingest.store.queries import AssetOverview

__all__ = [
    "ALL_SITES",
    "NO_DECISION",
    "NO_SITE",
    "SiteGroup",
    "SiteSummary",
    "age_unit",
    "fleet_total",
    "group_by_site",
    "site_line",
    "site_of",
    "summarise",
    "summary_frame",
]

#: The site label of an asset registered without a site.
NO_SITE = "(no site)"
#: The site label of the fleet total row.
ALL_SITES = "all sites"
#: The state key of an asset whose decision could not be judged (its card shows no state).
NO_DECISION = "no_decision"
#: Every state key a summary counts, most severe first; an asset without a decision ranks last, as on the cards.
_RANKED = (*STATES, NO_DECISION)
_LABEL = {**STATE_LABEL, NO_DECISION: "no decision"}
#: Data-age units: (name, seconds per unit, the largest age shown in it).
_AGE_UNITS = (("s", 1.0, 120.0), ("min", 60.0, 7200.0), ("h", 3600.0, float("inf")))


def site_of(a: AssetOverview) -> str:
    """The site ``a`` belongs to (:data:`NO_SITE` when it was registered without one)."""
    return a.asset.site or NO_SITE


def _state_of(a: AssetOverview, decisions: Mapping[str, AssetDecision]) -> str:
    d = decisions.get(a.asset.asset_id)
    return d.state if d is not None and d.state in STATES else NO_DECISION


def _stale(a: AssetOverview, now: datetime, stale_after: timedelta) -> bool:
    """No data for longer than ``stale_after`` (or never any)."""
    return a.last_update is None or now - a.last_update > stale_after


@dataclass(frozen=True)
class SiteSummary:
    """What the fleet summary shows for one site (or for the whole fleet).

    Attributes:
        site: the site.
        assets: how many monitored assets it has.
        states: assets per decision state (every key of :data:`STATES` and :data:`NO_DECISION`).
        open_work_orders: open (draft or approved) work orders of its assets.
        unacked_alarms: open alarms nobody has acknowledged yet (state ``active``).
        newest_data: when its newest data (raw reading or feature window) ended; ``None``: no data yet.
        stale: assets with no data for longer than the stale limit, or none ever.
    """

    site: str
    assets: int
    states: Mapping[str, int] = field(default_factory=dict)
    open_work_orders: int = 0
    unacked_alarms: int = 0
    newest_data: datetime | None = None
    stale: int = 0

    @property
    def worst_state(self) -> str:
        """The most severe state any of its assets is in (:data:`NO_DECISION` when none was judged)."""
        return next((s for s in _RANKED if self.states.get(s, 0)), NO_DECISION)

    def rank_key(self) -> tuple[int, int, int, str]:
        """Sort key, worst first: worst state present, more assets in it, more stale assets, then the name."""
        worst = self.worst_state
        return _RANKED.index(worst), -self.states.get(worst, 0), -self.stale, self.site

    def age_s(self, now: datetime) -> float | None:
        """Seconds since its newest data ended (never negative); ``None`` without data."""
        return None if self.newest_data is None else max(0.0, (now - self.newest_data).total_seconds())


@dataclass(frozen=True)
class SiteGroup:
    """One site's assets as the overview lays them out: the site's summary and its assets, most urgent first."""

    summary: SiteSummary
    rows: tuple[AssetOverview, ...]

    @property
    def site(self) -> str:
        return self.summary.site


def _summary(site: str, rows: Sequence[AssetOverview], decisions: Mapping[str, AssetDecision],
             open_orders: Mapping[str, int], now: datetime, stale_after: timedelta) -> SiteSummary:
    states = dict.fromkeys(_RANKED, 0)
    for a in rows:
        states[_state_of(a, decisions)] += 1
    updates = [a.last_update for a in rows if a.last_update is not None]
    return SiteSummary(
        site=site, assets=len(rows), states=states,
        open_work_orders=sum(open_orders.get(a.asset.asset_id, 0) for a in rows),
        unacked_alarms=sum(al.state == "active" for a in rows for al in a.open_alarms),
        newest_data=max(updates, default=None),
        stale=sum(_stale(a, now, stale_after) for a in rows),
    )


def _check(stale_after: timedelta, open_orders: Mapping[str, int]) -> None:
    if stale_after <= timedelta(0):
        raise ValueError(f"stale_after must be a positive duration, got {stale_after!r}")
    negative = {k: v for k, v in open_orders.items() if v < 0}
    if negative:
        raise ValueError(f"open_orders must count work orders (>= 0), got {negative!r}")


def group_by_site(rows: Sequence[AssetOverview], decisions: Mapping[str, AssetDecision],
                  open_orders: Mapping[str, int], *, now: datetime, stale_after: timedelta) -> list[SiteGroup]:
    """The assets grouped by site, sites worst first (:meth:`SiteSummary.rank_key`), each site's assets
    most urgent first (:func:`dashboard._status.urgency_key`).

    Args:
        rows: the overview's rows (one per monitored asset).
        decisions: the decision of each asset that has one, by asset id (the ones the page judged).
        open_orders: how many open work orders each asset has, by asset id (missing: none).
        now: the time data ages are judged against.
        stale_after: data older than this makes an asset stale (``dashboard.stale_after_s``).

    Raises:
        ValueError: ``stale_after`` is not positive, or a work-order count is negative.
    """
    _check(stale_after, open_orders)
    by_site: dict[str, list[AssetOverview]] = {}
    for a in rows:
        by_site.setdefault(site_of(a), []).append(a)
    groups = [SiteGroup(_summary(site, members, decisions, open_orders, now, stale_after),
                        tuple(sorted(members, key=lambda a: urgency_key(a, decisions.get(a.asset.asset_id)))))
              for site, members in by_site.items()]
    return sorted(groups, key=lambda g: g.summary.rank_key())


def summarise(rows: Sequence[AssetOverview], decisions: Mapping[str, AssetDecision],
              open_orders: Mapping[str, int], *, now: datetime, stale_after: timedelta) -> list[SiteSummary]:
    """One :class:`SiteSummary` per site, worst first (the arguments of :func:`group_by_site`)."""
    return [g.summary for g in group_by_site(rows, decisions, open_orders, now=now, stale_after=stale_after)]


def fleet_total(summaries: Sequence[SiteSummary]) -> SiteSummary:
    """The sum of ``summaries`` as one row named :data:`ALL_SITES`: counts add up, the newest data is the newest."""
    updates = [s.newest_data for s in summaries if s.newest_data is not None]
    return SiteSummary(
        site=ALL_SITES, assets=sum(s.assets for s in summaries),
        states={k: sum(s.states.get(k, 0) for s in summaries) for k in _RANKED},
        open_work_orders=sum(s.open_work_orders for s in summaries),
        unacked_alarms=sum(s.unacked_alarms for s in summaries),
        newest_data=max(updates, default=None), stale=sum(s.stale for s in summaries),
    )


def site_line(summary: SiteSummary) -> str:
    """A site's counts in one line, for the heading of its group of cards: assets, the non-empty
    decision states most severe first, and stale assets, e.g. ``'8 assets · 1 stop now · 7 watch · 2 stale'``."""
    parts = [f"{summary.assets} asset{'s' if summary.assets != 1 else ''}"]
    parts += [f"{n} {_LABEL[s]}" for s in _RANKED if (n := summary.states.get(s, 0))]
    if summary.stale:
        parts.append(f"{summary.stale} stale")
    return " · ".join(parts)


def age_unit(ages_s: Sequence[float | None]) -> tuple[str, float]:
    """The unit one column of data ages reads in, from the oldest of them: seconds up to 2 min,
    minutes up to 2 h, hours beyond. Returns the unit's name and its length in seconds."""
    oldest = max((a for a in ages_s if a is not None), default=0.0)
    name, seconds, _ = next(u for u in _AGE_UNITS if oldest <= u[2])
    return name, seconds


def summary_frame(summaries: Sequence[SiteSummary], *, now: datetime) -> pd.DataFrame:
    """The fleet summary as a table: a row per site in the given order, then a fleet total row when
    there is more than one site. Every column is of one type, units in the headers; the "no
    decision" column shows only when some asset has no decision.

    Args:
        summaries: the sites, worst first (:func:`summarise`).
        now: the time data ages are judged against.
    """
    shown = [*summaries, fleet_total(summaries)] if len(summaries) > 1 else list(summaries)
    states = [s for s in _RANKED if s != NO_DECISION or any(x.states.get(NO_DECISION, 0) for x in shown)]
    ages = [x.age_s(now) for x in shown]
    unit, per = age_unit(ages)
    digits = 0 if unit == "s" else 1
    age_col = f"newest data age ({unit})"
    columns = ["site", "assets", *(_LABEL[s] for s in states), "open work orders", "unacknowledged alarms", age_col,
               "stale assets"]
    records = [[x.site, x.assets, *(x.states.get(s, 0) for s in states), x.open_work_orders, x.unacked_alarms,
                None if age is None else round(age / per, digits), x.stale]
               for x, age in zip(shown, ages, strict=True)]
    return pd.DataFrame.from_records(records, columns=columns).astype({age_col: "float64"})
