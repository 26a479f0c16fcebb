"""The fleet view of the overview: sites worst first, the summary per site and for the fleet, and the page
with two sites. The helpers are pure; one AppTest renders the overview from a store with two sites."""

from __future__ import annotations

import re
from collections.abc import Sequence
from datetime import datetime, timedelta
from pathlib import Path

import pyarrow as pa
import pytest
from streamlit.testing.v1 import AppTest

from core.assets import AssetConfig
from core.settings import Settings
from core.wire import Message, new_msg_id, utcnow
from dashboard._fleet import (
    ALL_SITES,
    NO_DECISION,
    NO_SITE,
    SiteSummary,
    age_unit,
    fleet_total,
    group_by_site,
    site_line,
    summarise,
    summary_frame,
)
from dashboard._sessions import SessionStore, load_session_key
from dashboard._status import STATES, AssetDecision
from dashboard.auth import Role, User
from ingest.store import Store, actions
from ingest.store.queries import AlarmView, AssetInfo, AssetOverview
from tests.dashboard._seed import ROLES, PlantRun, Seeded, seed
from tests.dashboard._seed import _schedule as schedule

NOW = utcnow().replace(microsecond=0)
STALE = timedelta(seconds=30)


def _alarm(i: int, asset_id: str, state: str) -> AlarmView:
    return AlarmView(id=i, asset_id=asset_id, kind="vibration_high", severity="high", state=state, message="",
                     raised_at=NOW, acked_by=None, acked_at=None, shelved_by=None, shelved_at=None, shelve_reason=None,
                     shelved_until=None, cleared_at=None)


def _row(asset_id: str, site: str, age_s: float | None = 1.0, alarms: Sequence[AlarmView] = ()) -> AssetOverview:
    info = AssetInfo(asset_id=asset_id, site=site, line="line1", name=asset_id, kind="pump", criticality=2,
                     config={"asset_id": asset_id}, last_seen=NOW)
    last = None if age_s is None else NOW - timedelta(seconds=age_s)
    return AssetOverview(asset=info, features=None, readings={}, prediction=None, open_alarms=tuple(alarms),
                         quality="good", last_update=last)


def _decisions(states: dict[str, str]) -> dict[str, AssetDecision]:
    return {a: AssetDecision(asset_id=a, state=s, why="", priority="normal") for a, s in states.items()}


def _groups(rows: Sequence[AssetOverview], states: dict[str, str],
            orders: dict[str, int] | None = None) -> list[tuple[str, list[str]]]:
    groups = group_by_site(rows, _decisions(states), orders or {}, now=NOW, stale_after=STALE)
    return [(g.site, [r.asset.asset_id for r in g.rows]) for g in groups]


# ------------------------------------------------------------------------------- ranking
def test_sites_rank_by_worst_state_then_its_count_then_stale_data() -> None:
    rows = [_row("a1", "alpha"), _row("a2", "alpha"), _row("a3", "alpha"),
            _row("b1", "bravo"), _row("b2", "bravo"),
            _row("c1", "charlie"),
            _row("d1", "delta"), _row("d2", "delta", age_s=31.0),
            _row("e1", "echo"),
            _row("f1", "foxtrot")]
    states = {"a1": "plan", "a2": "healthy", "a3": "healthy", "b1": "plan", "b2": "plan", "c1": "urgent",
              "d1": "plan", "d2": "plan", "e1": "watch", "f1": "insufficient_evidence"}
    order = [site for site, _ in _groups(rows, states)]
    # urgent; then two assets to plan, the one with stale data first; then one to plan; then insufficient
    # evidence before watch (the prescriber's order, STATES).
    assert order == ["charlie", "delta", "bravo", "alpha", "foxtrot", "echo"]


def test_equal_sites_rank_by_name_and_undecided_assets_rank_last() -> None:
    rows = [_row("z1", "zulu"), _row("y1", "yankee"), _row("x1", "xray"), _row("w1", "whiskey")]
    states = {"z1": "watch", "y1": "watch", "w1": "healthy"}  # x1: no decision (its evidence could not be read)
    assert [site for site, _ in _groups(rows, states)] == ["yankee", "zulu", "whiskey", "xray"]


def test_inside_a_site_assets_keep_the_urgency_order() -> None:
    rows = [_row("P-3", "plant1"), _row("P-1", "plant1", alarms=[_alarm(1, "P-1", "active")]),
            _row("P-2", "plant1"), _row("P-0", "plant1")]
    states = {"P-3": "healthy", "P-1": "watch", "P-2": "stop_now", "P-0": "watch"}
    # stop now, then watch (the one with an alarm first), then healthy.
    assert _groups(rows, states) == [("plant1", ["P-2", "P-1", "P-0", "P-3"])]


def test_assets_without_a_site_form_one_group() -> None:
    groups = _groups([_row("a", ""), _row("b", "plant1"), _row("c", "")], {"a": "urgent", "c": "plan"})
    assert groups == [(NO_SITE, ["a", "c"]), ("plant1", ["b"])]


# ------------------------------------------------------------------------------ summary
def test_summary_counts_states_orders_alarms_and_stale_data_at_a_fixed_time() -> None:
    rows = [_row("P-1", "plant1", age_s=5.0, alarms=[_alarm(1, "P-1", "active"), _alarm(2, "P-1", "acknowledged")]),
            _row("P-2", "plant1", age_s=30.0, alarms=[_alarm(3, "P-2", "shelved")]),  # exactly the limit: fresh
            _row("P-3", "plant1", age_s=30.5),
            _row("P-4", "plant1", age_s=None, alarms=[_alarm(4, "P-4", "active")])]  # no data ever: stale
    states = {"P-1": "stop_now", "P-2": "healthy", "P-3": "healthy"}
    [s] = summarise(rows, _decisions(states), {"P-1": 2, "P-3": 1, "X-9": 5}, now=NOW, stale_after=STALE)
    assert (s.site, s.assets, s.open_work_orders, s.unacked_alarms, s.stale) == ("plant1", 4, 3, 2, 2)
    assert dict(s.states) == {**dict.fromkeys(STATES, 0), "stop_now": 1, "healthy": 2, NO_DECISION: 1}
    assert s.worst_state == "stop_now"
    assert s.newest_data == NOW - timedelta(seconds=5) and s.age_s(NOW) == 5.0
    assert s.age_s(NOW - timedelta(seconds=60)) == 0.0  # data stamped ahead of the clock reads as just now
    # a later clock: everything is stale
    [later] = summarise(rows, _decisions(states), {}, now=NOW + timedelta(minutes=5), stale_after=STALE)
    assert later.stale == 4 and later.open_work_orders == 0
    assert site_line(s) == "4 assets · 1 stop now · 2 healthy · 1 no decision · 2 stale"


def test_the_fleet_total_adds_sites_up() -> None:
    a = SiteSummary("a", 3, {"urgent": 1, "healthy": 2}, open_work_orders=1, unacked_alarms=2,
                    newest_data=NOW - timedelta(hours=1), stale=1)
    b = SiteSummary("b", 1, {"healthy": 1}, newest_data=NOW - timedelta(seconds=3))
    c = SiteSummary("c", 1, {NO_DECISION: 1}, stale=1)
    total = fleet_total([a, b, c])
    assert (total.site, total.assets, total.open_work_orders, total.unacked_alarms, total.stale) == (ALL_SITES, 5, 1,
                                                                                                     2, 2)
    assert total.states["healthy"] == 3 and total.states["urgent"] == 1 and total.states[NO_DECISION] == 1
    assert total.newest_data == NOW - timedelta(seconds=3)
    assert site_line(b) == "1 asset · 1 healthy"


@pytest.mark.parametrize(("ages", "unit"), [([None], ("s", 1.0)), ([3.0, 120.0], ("s", 1.0)),
                                            ([3.0, 121.0], ("min", 60.0)), ([7200.0, None], ("min", 60.0)),
                                            ([5.0, 7201.0], ("h", 3600.0))])
def test_data_ages_read_in_the_unit_of_the_oldest(ages: list[float | None], unit: tuple[str, float]) -> None:
    assert age_unit(ages) == unit


def test_the_summary_table_has_a_row_per_site_worst_first_then_the_fleet() -> None:
    rows = [_row("N-1", "north", age_s=600.0), _row("N-2", "north", age_s=900.0),
            _row("S-1", "south", age_s=2.0, alarms=[_alarm(1, "S-1", "active")]), _row("S-2", "south", age_s=None)]
    states = {"N-1": "watch", "N-2": "watch", "S-1": "urgent"}
    frame = summary_frame(summarise(rows, _decisions(states), {"S-1": 1}, now=NOW, stale_after=STALE), now=NOW)
    assert list(frame.columns) == ["site", "assets", "stop now", "urgent", "plan", "insufficient evidence", "watch",
                                   "healthy", "no decision", "open work orders", "unacknowledged alarms",
                                   "newest data age (min)", "stale assets"]
    assert frame["site"].tolist() == ["south", "north", ALL_SITES]
    assert frame["assets"].tolist() == [2, 2, 4]
    assert frame["urgent"].tolist() == [1, 0, 1] and frame["watch"].tolist() == [0, 2, 2]
    assert frame["no decision"].tolist() == [1, 0, 1]
    assert frame["open work orders"].tolist() == [1, 0, 1] and frame["unacknowledged alarms"].tolist() == [1, 0, 1]
    assert frame["newest data age (min)"].tolist() == [0.0, 10.0, 0.0]
    assert frame["stale assets"].tolist() == [1, 2, 3]
    pa.Table.from_pandas(frame)  # single-typed: Arrow (what Streamlit hands tables to) takes every column


def test_one_site_is_one_row_without_a_total() -> None:
    rows = [_row("P-1", "plant1", age_s=4.0), _row("P-2", "plant1", age_s=None)]
    frame = summary_frame(summarise(rows, _decisions({"P-1": "plan", "P-2": "healthy"}), {}, now=NOW,
                                    stale_after=STALE), now=NOW)
    assert frame["site"].tolist() == ["plant1"]
    assert "no decision" not in frame.columns  # every asset has a decision: no empty column
    assert frame["newest data age (s)"].tolist() == [4.0] and frame["stale assets"].tolist() == [1]
    no_data = summary_frame(summarise([_row("P-2", "plant1", age_s=None)], {}, {}, now=NOW, stale_after=STALE),
                            now=NOW)
    assert no_data["newest data age (s)"].isna().all()  # no data yet: a blank cell, not zero
    pa.Table.from_pandas(no_data)
    assert summary_frame([], now=NOW).empty


def test_bad_limits_are_refused_with_a_clear_message() -> None:
    rows = [_row("P-1", "plant1")]
    with pytest.raises(ValueError, match=r"stale_after must be a positive duration, got datetime\.timedelta\(0\)"):
        group_by_site(rows, {}, {}, now=NOW, stale_after=timedelta(0))
    with pytest.raises(ValueError, match=r"open_orders must count work orders \(>= 0\), got \{'P-1': -1\}"):
        group_by_site(rows, {}, {"P-1": -1}, now=NOW, stale_after=STALE)


# --------------------------------------------------------------------------- the page
def add_site(url: str, site: str, templates: Sequence[str], *, end: datetime) -> list[str]:
    """Register one asset at ``site`` per id in ``templates``, each a copy of that demo-plant asset with its
    data (the edge agent's windows, raw slow channels, fixture predictions), the newest ending at ``end``.

    Returns:
        The new assets' ids, ``site-template-i`` in the order of ``templates``.
    """
    run = PlantRun()
    base = {a.asset_id: a for a in run.plant}
    unknown = sorted(set(templates) - set(base))
    if unknown:
        raise ValueError(f"templates must be demo-plant assets {sorted(base)}, got {unknown}")
    hours = schedule(run.life_hours)
    messages: dict[str, list[tuple[Message, datetime]]] = {}
    for i, t_h in enumerate(hours):
        for m, at in run.tick(t_h, end - timedelta(seconds=2.0 * (len(hours) - 1 - i))):
            messages.setdefault(m.asset_id, []).append((m, at))
    configs: list[AssetConfig] = []
    copies: list[tuple[Message, datetime]] = []
    for i, template in enumerate(templates):
        new_id = f"{site}-{template}-{i}"
        configs.append(base[template].model_copy(update={"asset_id": new_id, "site": site}))
        copies += [(m.model_copy(update={"asset_id": new_id, "msg_id": new_msg_id()}), at)
                   for m, at in messages.get(template, [])]
    with Store(url) as store:
        store.upsert_assets(configs)
        for k in range(0, len(copies), 5000):
            store.write(copies[k:k + 5000])
    return [c.asset_id for c in configs]


@pytest.fixture
def two_sites(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app_env: Seeded) -> list[str]:
    """The demo plant (plant1) and a second site, ``north``, whose data stopped ten minutes ago: copies of
    M-101 and F-101, the first with an unacknowledged alarm and an open work order. Returns north's ids."""
    from dashboard._context import _load_settings

    own = seed(tmp_path / "own")
    north = add_site(own.url, "north", ["M-101", "F-101"], end=utcnow() - timedelta(minutes=10))
    with Store(own.url) as store:
        actions.raise_alarm(store, north[0], "vibration_high", "medium", "1x shaft component rising")
        actions.create_work_order(store, north[0], "Check the coupling", by="prescriber")
    monkeypatch.setenv("GENEDGE_STORE__URL", own.url)
    _load_settings.clear()
    return north


APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


def _overview() -> AppTest:
    """The plant overview (the first page), signed in as the operator."""
    s = Settings.load()
    sessions = SessionStore(s.dashboard.state_dir.resolve(), load_session_key(s.dashboard.state_dir.resolve(), None))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["genedge.session_token"] = sessions.issue(s.dashboard.users, User("olga", Role(ROLES["olga"])))
    at.run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def test_the_overview_groups_two_sites_worst_first(two_sites: list[str]) -> None:
    at = _overview()
    # plant1 holds P-101 (stop now): it comes first, although north sorts first by name.
    assert [h.value for h in at.subheader] == ["plant1", "north"]
    [summary] = [d.value for d in at.dataframe if "stale assets" in d.value.columns]
    assert summary["site"].tolist() == ["plant1", "north", ALL_SITES]
    assert summary["assets"].tolist() == [8, 2, 10]
    assert summary["stop now"].tolist() == [1, 0, 1]
    assert summary["insufficient evidence"].tolist() == [6, 1, 7] and summary["healthy"].tolist() == [1, 1, 2]
    assert summary["open work orders"].tolist() == [2, 1, 3]
    assert summary["unacknowledged alarms"].tolist() == [1, 1, 2]
    assert summary["stale assets"].tolist() == [0, 2, 2]
    ages = summary["newest data age (min)"].tolist()
    assert ages[0] < 1.0 and 9.5 <= ages[1] <= 11.0 and ages[2] == ages[0]
    # Under each heading, the site's counts, then its cards (each with its "updated" line): plant1's eight, then
    # north's two, ten minutes old.
    captions = [e.value for e in at.caption]
    assert captions[0] == "8 assets · 1 stop now · 6 insufficient evidence · 1 healthy"
    assert all(c.startswith("updated ") and "min" not in c for c in captions[1:9])
    assert captions[9] == "2 assets · 1 insufficient evidence · 1 healthy · 2 stale"
    assert captions[10:12] == ["updated 10 min ago"] * 2
    cards = [m.group(1) for e in at.markdown if (m := re.search(r">([\w-]+)</span><br>", str(e.value)))]
    assert cards[0] == "P-101" and set(cards[:8]) == {a.asset_id for a in PlantRun().plant}
    assert cards[8:] == two_sites  # the M-101 copy (insufficient evidence) before the F-101 copy (healthy)
