"""The asset page's What-if view: its pure helpers, the tab in the app (AppTest), and a real browser run.

The helpers are judged on what-ifs the twin computes (:func:`prescribe.whatif.run_whatif`) from
evidence built here, on a plant calendar with one planned stop 100 h ahead. The browser test seeds
a store whose P-101 is predicted by the shipped ``sim-bearing`` model, so its futures come from
the shipped analog library.
"""

from __future__ import annotations

import json
import math
import re
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta, timezone
from pathlib import Path
from typing import Any, NamedTuple

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

from core.assets import AssetConfig
from core.inference.registry import SHIPPED_DIR, ModelRegistry
from core.settings import PlantSettings, Settings
from core.twin import OPTION_LABELS, QUANTILES, find_library
from core.wire import Prediction, utcnow
from dashboard._whatif import (
    DERATE_RANGE_PCT,
    default_derate_pct,
    default_repair_at,
    fan_figure,
    generator_text,
    option_rows,
    recommendation_text,
    repair_choice,
    repair_hours,
    whatif_table,
)
from prescribe.schema import AssetFacts, Evidence, FaultCall, PeakMatch, RulEstimate, ZoneState
from prescribe.whatif import WhatIf, run_whatif
from tests.dashboard._seed import PASSWORDS, ROLES, Seeded, seed

NOW = datetime(2025, 3, 1, 8, 0, tzinfo=UTC)
#: One planned stop, 100 h and 30 s ahead: the date input shows it cut to the minute.
STOP = NOW + timedelta(hours=100, seconds=30)
PLANT = PlantSettings(currency="CHF", planned_stop_every_h=0, planned_stops=[STOP], futures=400)
ASSET = AssetConfig(asset_id="P-1", criticality=2)
UNIT = re.compile(r"\((%|% of load|plant h|h|UTC|CHF|CHF/h|EUR|EUR/h)\)$")


#: The shipped simulator model, ``name:version`` (its analog library ships beside it).
SIM_MODEL = f"sim-bearing:{ModelRegistry(SHIPPED_DIR).promoted('sim-bearing').version}"


def evidence(median: float, lower: float, upper: float, *, model: str = "fixture:v1", developing: bool = True) -> Evidence:
    """An outer-race fault (a strong BPFO peak, a 0.9 fault call, zone rising) or, not developing, a calm asset."""
    return Evidence(
        asset=AssetFacts(asset_id="P-1", criticality=2, spare_parts=("SKF 6205-2RS",), bearing="SKF 6205"),
        at=NOW,
        rul=RulEstimate(median_h=median, lower_h=lower, upper_h=upper, coverage=0.9, at=NOW, model=model,
                        health_index=0.4 if developing else 1.0, cap_h=200.0),
        fault=FaultCall(kind="outer_race", confidence=0.9) if developing else None,
        zone=ZoneState(zone=2, velocity_mm_s=3.0, previous_zone=1, previous_velocity_mm_s=2.0, lookback_h=48)
        if developing else None,
        peaks=(PeakMatch(defect="bpfo", frequency_hz=107.0, snr=20.0, harmonics=3),) if developing else (),
    )


@pytest.fixture(scope="module")
def planned() -> WhatIf:
    """A developing fault, RUL 90 h (60-125 h), futures from the model's interval."""
    return run_whatif(evidence(90.0, 60.0, 125.0), ASSET, PLANT)


# ---------------------------------------------------------------------------- pure helpers
def test_repair_hours_converts_a_wall_clock_date_to_plant_hours() -> None:
    assert repair_hours(datetime(2025, 3, 1, 10, 0), NOW, 1.0) == pytest.approx(2.0)  # naive reads as UTC
    assert repair_hours(datetime(2025, 3, 1, 10, 0, tzinfo=timezone(timedelta(hours=2))), NOW, 1.0) == 0.0
    # the demo's clock: one wall-clock second is one plant hour
    assert repair_hours(NOW + timedelta(seconds=10), NOW, 3600.0) == pytest.approx(10.0)
    with pytest.raises(ValueError, match=r"repair date 2025-03-01 07:00 UTC is in the past"):
        repair_hours(datetime(2025, 3, 1, 7, 0), NOW, 1.0)
    for bad in (0.0, -1.0, math.nan, math.inf):
        with pytest.raises(ValueError, match="time_scale must be a finite number > 0"):
            repair_hours(NOW, NOW, bad)


def test_repair_choice_keeps_the_calendar_unless_another_date_is_picked() -> None:
    shown = datetime(2025, 3, 5, 12, 0)
    assert repair_choice(None, shown, NOW, 1.0) is None
    assert repair_choice(shown, shown, NOW, 1.0) is None  # the date shown first: the calendar's own stop
    assert repair_choice(shown.replace(tzinfo=UTC), shown, NOW, 1.0) is None
    assert repair_choice(datetime(2025, 3, 3, 8, 0), shown, NOW, 1.0) == pytest.approx(48.0)
    assert repair_choice(datetime(2025, 3, 3, 8, 0), None, NOW, 1.0) == pytest.approx(48.0)
    with pytest.raises(ValueError, match="in the past"):
        repair_choice(datetime(2025, 2, 28, 8, 0), shown, NOW, 1.0)


@pytest.mark.parametrize(("share", "pct"), [(0.3, 30), (0.33, 33), (0.05, DERATE_RANGE_PCT[0]),
                                            (0.9, DERATE_RANGE_PCT[1])])
def test_the_derate_slider_starts_at_the_plants_share_within_its_range(share: float, pct: int) -> None:
    assert default_derate_pct(share) == pct


def test_the_repair_date_starts_at_the_next_planned_stop(planned: WhatIf) -> None:
    shown = default_repair_at(planned)
    assert shown == datetime(2025, 3, 5, 12, 0)  # STOP cut to the minute, naive UTC as the input shows it
    assert repair_hours(shown, planned.at, planned.time_scale) == pytest.approx(100.0, abs=1 / 60)
    no_stops = run_whatif(evidence(90.0, 60.0, 125.0), ASSET, PLANT.model_copy(update={"planned_stops": []}))
    assert default_repair_at(no_stops) is None


def test_the_table_has_one_single_typed_row_per_option_with_units(planned: WhatIf) -> None:
    df = whatif_table(planned)
    assert list(df["Option"]) == list(OPTION_LABELS.values())
    pa.Table.from_pandas(df)  # what Streamlit does with it: a column mixing types would raise here
    for col in df.columns:
        assert pd.api.types.is_float_dtype(df[col]) or all(isinstance(v, str) for v in df[col]), col
        if col not in ("Option", "Choice"):
            assert UNIT.search(col), col
    assert "Expected cost (CHF)" in df.columns and "Cost per hour (CHF/h)" in df.columns
    chosen = df[df["Choice"] == "recommended"]
    assert list(chosen["Option"]) == [planned.chosen.option.label]  # type: ignore[union-attr]
    rows = df.set_index("Option")
    run_on = rows.loc[OPTION_LABELS["run_on"]]
    assert math.isnan(run_on["Repair in (plant h)"]) and run_on["Due (UTC)"] == ""  # run on repairs nothing
    nxt = rows.loc[OPTION_LABELS["repair_next_stop"]]
    assert nxt["Repair in (plant h)"] == pytest.approx(100.0, abs=0.05)
    assert nxt["Due (UTC)"] == "2025-03-05 12:00"
    assert rows.loc[OPTION_LABELS["derate"], "Derate (% of load)"] == pytest.approx(100 * PLANT.derate_share)
    for o in planned.outcomes:
        row = rows.loc[o.option.label]
        assert row["P(fail before repair) (%)"] == pytest.approx(100 * o.p_fail_before_repair, abs=0.05)
        assert row["P(fail in 24 h) (%)"] == pytest.approx(100 * o.p_fail_24h, abs=0.05)
        assert row["P(fail before next stop) (%)"] == pytest.approx(100 * o.p_fail_before_stop, abs=0.05)
        assert row["Expected cost (CHF)"] == pytest.approx(o.expected_cost, abs=0.5)
        p5, p50, p95 = (o.failure_quantiles_h[QUANTILES.index(q)] for q in (0.05, 0.5, 0.95))
        assert row["RUL p5 (h)"] <= row["RUL p50 (h)"] <= row["RUL p95 (h)"]
        assert row["RUL p50 (h)"] == pytest.approx(p50, abs=0.05)
        assert (p5, p95) == pytest.approx((row["RUL p5 (h)"], row["RUL p95 (h)"]), abs=0.05)


def test_a_stronger_derate_shows_in_the_table() -> None:
    rows = {share: {r["Option"]: r for r in option_rows(run_whatif(evidence(90.0, 60.0, 125.0), ASSET, PLANT,
                                                                    derate_share=share))}
            for share in (0.1, 0.6)}
    label = OPTION_LABELS["derate"]
    assert rows[0.1][label]["Derate (% of load)"] == 10.0 and rows[0.6][label]["Derate (% of load)"] == 60.0
    # the load-life law: the fault grows slower under a deeper derate, so fewer futures fail first
    assert rows[0.6][label]["P(fail before repair) (%)"] < rows[0.1][label]["P(fail before repair) (%)"]
    assert rows[0.6][label]["RUL p50 (h)"] > rows[0.1][label]["RUL p50 (h)"]


def test_a_failure_time_beyond_reach_is_a_blank_cell(planned: WhatIf) -> None:
    o = planned.outcomes[0]
    beyond = replace(o, failure_quantiles_h=(*o.failure_quantiles_h[:-1], math.inf))
    rows = option_rows(replace(planned, outcomes=[beyond, *planned.outcomes[1:]]))
    assert rows[0]["RUL p95 (h)"] is None and rows[0]["RUL p5 (h)"] is not None


def test_the_recommendation_names_choice_due_time_risk_against_the_limit_and_cost(planned: WhatIf) -> None:
    c = planned.chosen
    assert c is not None
    text = recommendation_text(planned)
    assert text.startswith(f"Recommended: **{c.option.label}**")
    assert f"{c.p_fail_before_repair:.0%}, within the plant's limit of {planned.risk_limit:.0%}" in text
    assert f"expected cost {c.expected_cost:,.0f} CHF." in text
    if c.option.name != "run_on":
        assert f"due {planned.due_at(c.option.repair_h):%Y-%m-%d %H:%M} UTC" in text


def test_a_choice_above_the_risk_limit_says_so() -> None:
    # The spare part arrives in 500 h, far after every future's failure: no option keeps the risk low.
    slow_part = ASSET.model_copy(update={"spare_lead_time_h": 500.0})
    w = run_whatif(evidence(20.0, 13.0, 27.0), slow_part, PLANT)
    assert w.developing and w.chosen is not None and w.chosen.p_fail_before_repair > w.risk_limit
    assert f"above the plant's limit of {w.risk_limit:.0%}" in recommendation_text(w)
    assert f"no option keeps the failure risk within {w.risk_limit:.0%}" in w.reason


def test_an_asset_without_a_developing_fault_is_told_to_run_on() -> None:
    w = run_whatif(evidence(200.0, 150.0, 260.0, developing=False), ASSET, PLANT)
    assert not w.developing and w.choice == "run_on"
    assert recommendation_text(w).startswith("Recommended: **Run on as is**. Risk of failing before the horizon")
    assert [r["Choice"] for r in option_rows(w)] == ["recommended", "", "", ""]


def test_the_generator_and_the_number_of_futures_are_named(planned: WhatIf) -> None:
    assert generator_text(planned) == ("400 simulated futures from the RUL model's interval (log-normal through it): "
                                       "fixture:v1 has no analog library.")
    library = find_library(SIM_MODEL, [SHIPPED_DIR])
    assert library is not None
    analog = run_whatif(evidence(90.0, 60.0, 125.0, model=SIM_MODEL), ASSET, PLANT, library=library)
    assert analog.generator == "analogs" and analog.futures is not None
    text = generator_text(analog)
    assert text.startswith(f"400 simulated futures from the analog library of {SIM_MODEL}")
    assert f"the {analog.futures.neighbours} run-to-failure cases" in text and analog.futures.neighbours > 0


def test_without_a_rul_prediction_there_are_no_rows() -> None:
    w = run_whatif(evidence(90.0, 60.0, 125.0).model_copy(update={"rul": None}), ASSET, PLANT)
    assert option_rows(w) == [] and w.chosen is None
    assert generator_text(w) == "No simulated futures."
    assert recommendation_text(w).startswith("Recommended: **No RUL prediction to start futures from")


def test_the_fan_chart_draws_both_bands_the_median_and_the_repair(planned: WhatIf) -> None:
    times, q = planned.fan("derate")
    assert np.all(q[0] <= q[2] + 1e-12) and np.all(q[2] <= q[4] + 1e-12)
    repair = planned.outcome("derate").option.repair_h  # type: ignore[union-attr]
    fig = fan_figure(times, q, "Health index · derate", repair_h=repair)
    named = {t.name: t for t in fig.data if t.name}
    assert set(named) == {"5–95 % of futures", "25–75 % of futures", "median"}
    assert named["median"].y == pytest.approx(q[2].tolist())
    assert named["5–95 % of futures"].y == pytest.approx(q[0].tolist())  # filled up to the 95 % line before it
    assert [t.y for t in fig.data if t.fill == "tonexty"] and fig.data[0].y == pytest.approx(q[4].tolist())
    assert named["median"].x == pytest.approx(times.tolist()) and times[0] == 0.0
    assert [s.x0 for s in fig.layout.shapes] == [pytest.approx(repair)]
    assert list(fig.layout.yaxis.range) == [0, 1.05] and fig.layout.xaxis.title.text == "plant hours from now"
    assert not fan_figure(times, q, "run on", repair_h=None).layout.shapes
    with pytest.raises(ValueError, match=r"quantiles must have shape \(5, 60\)"):
        fan_figure(times, q[:3], "bad")


# ---------------------------------------------------------------------------- the tab in the app (AppTest)
APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"


def _asset_page(asset_id: str) -> Any:
    """The asset page of ``asset_id``, signed in as the engineer."""
    from streamlit.testing.v1 import AppTest

    from dashboard._sessions import SessionStore, load_session_key
    from dashboard.auth import Role, User

    s = Settings.load()
    sessions = SessionStore(s.dashboard.state_dir.resolve(), load_session_key(s.dashboard.state_dir.resolve(), None))
    at = AppTest.from_file(str(APP), default_timeout=60)
    at.session_state["genedge.session_token"] = sessions.issue(s.dashboard.users, User("eve", Role(ROLES["eve"])))
    at.run()
    at.query_params["asset"] = asset_id
    at.switch_page("views/asset.py").run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _fans(at: Any) -> list[str]:
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    return [t for t in titles if t.startswith("Health index · ")]


def _rerun(at: Any) -> None:
    next(b for b in at.button if b.label == "Rerun").click().run()
    assert not at.exception, [e.value for e in at.exception]


def test_the_whatif_tab_shows_the_choice_table_and_fans_and_reruns(app_env: Seeded) -> None:
    at = _asset_page("P-101")
    (rec,) = [s.value for s in at.success if s.value.startswith("Recommended:")] or [
        w.value for w in at.warning if w.value.startswith("Recommended:")]
    assert re.search(r"Risk of failing before .*: \d+%, (within|above) the plant's limit of 5%; expected cost "
                     r"[\d,]+ EUR\.$", rec)
    captions = [c.value for c in at.caption]
    # the seeded predictions come from a fixture model without an analog library: the fallback is named
    assert "500 simulated futures from the RUL model's interval (log-normal through it): fixture-truth:v1 has no " \
           "analog library." in captions
    (table,) = at.table
    df = table.value
    assert list(df["Option"]) == list(OPTION_LABELS.values())
    assert _fans(at) == [f"Health index · {label}" for label in
                         (OPTION_LABELS["run_on"], OPTION_LABELS["repair_next_stop"], OPTION_LABELS["derate"],
                          OPTION_LABELS["repair_now"])]  # two columns, filled one after the other
    derate = OPTION_LABELS["derate"]
    before = df.set_index("Option").loc[derate]
    assert before["Derate (% of load)"] == 30.0

    at.slider(key="whatif-derate-P-101").set_value(60)
    (picker,) = at.datetime_input
    shown = picker.value
    picker.set_value(shown + timedelta(hours=24))
    _rerun(at)
    after = at.table[0].value.set_index("Option")
    assert after.loc[derate, "Derate (% of load)"] == 60.0
    assert after.loc[derate, "P(fail before repair) (%)"] <= before["P(fail before repair) (%)"]
    assert after.loc[derate, "RUL p50 (h)"] > before["RUL p50 (h)"]  # the fault grows slower under more derate
    moved = after.loc[OPTION_LABELS["repair_next_stop"], "Repair in (plant h)"]
    assert abs(moved - before["Repair in (plant h)"]) == pytest.approx(24.0, abs=1.0)


def test_a_repair_date_in_the_past_keeps_the_calendar_and_says_so(app_env: Seeded) -> None:
    at = _asset_page("P-101")
    before = at.table[0].value
    at.datetime_input[0].set_value(datetime(2020, 1, 1, 8, 0))
    _rerun(at)
    assert any("repair date 2020-01-01 08:00 UTC is in the past" in w.value and "calendar's next stop" in w.value
               for w in at.warning)
    pd.testing.assert_series_equal(at.table[0].value["Repair in (plant h)"], before["Repair in (plant h)"],
                                   atol=0.2)


def test_an_asset_without_a_rul_prediction_gets_one_line(app_env: Seeded) -> None:
    at = _asset_page("M-202")
    assert "No RUL prediction for M-202 yet: the what-if needs one to start its futures from." in [
        i.value for i in at.info]
    assert not at.table and not _fans(at) and not at.error


def test_a_failing_whatif_is_an_error_message_and_the_page_stays(app_env: Seeded, tmp_path: Path,
                                                                 monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard._context import _load_settings

    broken = tmp_path / "registry" / "fixture-truth" / "v1" / "analogs.json"
    broken.parent.mkdir(parents=True)
    broken.write_text("{not json", encoding="utf-8")
    monkeypatch.setenv("GENEDGE_MODELS__REGISTRY_DIR", str(broken.parents[2]))
    _load_settings.clear()
    at = _asset_page("P-101")
    errors = [e.value for e in at.error]
    assert any(e.startswith("The what-if could not be computed: ") and "analogs.json" in e for e in errors), errors
    assert not at.table and not _fans(at)
    assert at.title[0].value == "P-101 · Feed pump 101"  # the rest of the page is drawn
    titles = [json.loads(c.proto.spec)["layout"]["title"]["text"] for c in at.get("plotly_chart")]
    assert "Remaining useful life" in titles


# ---------------------------------------------------------------------------- in a real browser
class Live(NamedTuple):
    url: str
    seeded: Seeded
    log: Path


def _sim_bearing_predictions(seeded: Seeded, at: datetime) -> None:
    """P-101's newest predictions from the shipped simulator model, whose analog library ships beside it."""
    from ingest.store import Store

    with Store(seeded.url) as store:
        store.write([(Prediction(publisher="rul-fixture", seq=100_000 + i, asset_id="P-101", model_name="sim-bearing",
                                 model_version=SIM_MODEL.partition(":")[2], at=at + timedelta(seconds=i), rul_median=90.0 - i,
                                 rul_lower=60.0 - i, rul_upper=125.0 - i, coverage=0.9, health_index=0.4,
                                 rul_cap=200.0), at + timedelta(seconds=i)) for i in range(3)])


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """The dashboard on a seeded store (no feeder: P-101's newest prediction stays the sim-bearing one),
    with a plant calendar of one planned stop 120 h ahead."""
    from dashboard.launch import start_dashboard, stop_dashboard, wait_ready
    from genedge.localservices import free_port

    work = tmp_path_factory.mktemp("whatif-browser")
    now = utcnow()
    seeded = seed(work, end=now - timedelta(seconds=5))
    _sim_bearing_predictions(seeded, now - timedelta(seconds=4))
    port = free_port()
    env = {**seeded.env(), "GENEDGE_DASHBOARD__STATE_DIR": str(work / "dashboard-state"),
           "GENEDGE_PLANT__PLANNED_STOP_EVERY_H": "0",
           "GENEDGE_PLANT__PLANNED_STOPS": json.dumps([(now + timedelta(hours=120)).isoformat()])}
    with (work / "streamlit.log").open("wb") as log:
        proc = start_dashboard(None, "127.0.0.1", port, env, log=log)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, 60, proc=proc)
            yield Live(url, seeded, work / "streamlit.log")
        finally:
            stop_dashboard(proc)


def _row(page: Any, label: str) -> list[str]:
    row = page.locator("[data-testid='stTable'] tbody tr", has_text=label)
    return [c.strip() for c in row.locator("td, th").all_inner_texts()]


@pytest.mark.browser
def test_the_whatif_view_in_a_browser(live: Live, browser: object) -> None:
    from playwright.sync_api import expect

    from tests.dashboard._browser import TIMEOUT_MS, VIEWPORT, idle, loopback_url, shot, sign_in

    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    sign_in(page, live.url, "eve", PASSWORDS["eve"])
    page.goto(f"{live.url}/asset?asset=P-101")  # the session cookie signs the new page in
    expect(page.get_by_role("heading", name="P-101 · Feed pump 101")).to_be_visible()
    page.get_by_role("tab", name="What-if").click()

    rec = page.locator("[data-testid='stAlertContainer']", has_text="Recommended:")
    expect(rec).to_be_visible()
    expect(rec).to_contain_text(re.compile(r"Risk of failing before .*: \d+%, (within|above) the plant's limit of 5%; "
                                           r"expected cost [\d,]+ EUR"))
    expect(page.get_by_text(re.compile(rf"^\d+ simulated futures from the analog library of {SIM_MODEL}"))).to_be_visible()
    rows = page.locator("[data-testid='stTable'] tbody tr")
    expect(rows).to_have_count(4)
    for label in OPTION_LABELS.values():
        expect(rows.filter(has_text=label)).to_have_count(1)
        expect(page.locator(".js-plotly-plot", has_text=f"Health index · {label}")).to_be_visible()
    fan = page.locator(".js-plotly-plot", has_text=f"Health index · {OPTION_LABELS['derate']}")
    expect(fan).to_contain_text("25–75 % of futures")
    expect(fan).to_contain_text("plant hours from now")
    idle(page)
    derate = OPTION_LABELS["derate"]
    before = _row(page, derate)
    assert "30.0" in before, before
    shot(page, "whatif-01-default")

    slider = page.locator(".st-key-whatif-derate-P-101").get_by_role("slider", name="Derate: load taken off (%)")
    slider.focus()
    slider.press("End")  # the top of the range: 60 %
    expect(slider).to_have_value("60")
    page.get_by_role("button", name="Rerun").click()
    expect(rows.filter(has_text=derate)).to_contain_text("60.0")
    idle(page)
    after = _row(page, derate)
    assert after != before and "60.0" in after, (before, after)
    expect(rows).to_have_count(4)
    shot(page, "whatif-02-derate-60")
    assert [u for u in urls if not loopback_url(u)] == []
    context.close()
    log = live.log.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log, log[-4000:]
