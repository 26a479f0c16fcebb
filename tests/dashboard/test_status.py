"""What the cards and tables say: decision state and its order and colour, RUL text, the zone-A hint,
units, single-typed tables and the plant clock. Pure functions, no Streamlit."""

from __future__ import annotations

import re

import pandas as pd
import pyarrow as pa
import pytest

from core.sim import FaultSpec, default_plant
from core.wire import utcnow
from dashboard._cards import alarm_strip_html, card_html, kpis_html
from dashboard._status import STATE_HEX, STATES, AssetDecision, judge, rul_line, rul_text, urgency_hex, urgency_key
from dashboard._tables import dashboard_units, evidence_rows, fmt_value, single_typed
from dashboard._ui import FAVICON_SVG, clock_text
from ingest.store.queries import AlarmView, AssetInfo, AssetOverview, PredictionView
from prescribe.evidence import from_simulator
from prescribe.schema import Evidence, PeakMatch, RulEstimate, ZoneState

NOW = utcnow().replace(microsecond=0)
PLANT = {a.asset_id: a for a in default_plant()}


def _prediction(median: float, lower: float, upper: float, cap: float | None = 200.0,
                health: float | None = 1.0) -> PredictionView:
    return PredictionView(asset_id="M-101", model_name="sim-bearing", model_version="v1", at=NOW, rul_unit="h",
                          rul_median=median, rul_lower=lower, rul_upper=upper, coverage=0.9, health_index=health,
                          rul_cap=cap)


def _alarm(i: int, asset_id: str, severity: str, state: str) -> AlarmView:
    return AlarmView(id=i, asset_id=asset_id, kind="vibration_high", severity=severity, state=state, message="",
                     raised_at=NOW, acked_by="olga" if state == "acknowledged" else None, acked_at=None,
                     shelved_by=None, shelved_at=None, shelve_reason=None, shelved_until=None, cleared_at=None)


def _overview(asset_id: str, alarms: tuple[AlarmView, ...] = (), prediction: PredictionView | None = None,
              features: object = None) -> AssetOverview:
    info = AssetInfo(asset_id=asset_id, site="plant1", line="line1", name=asset_id, kind="pump", criticality=2,
                     config={}, last_seen=NOW)
    return AssetOverview(asset=info, features=features, readings={}, prediction=prediction,  # type: ignore[arg-type]
                         open_alarms=alarms, quality="good", last_update=NOW)


def _healthy_evidence(median: float) -> Evidence:
    """M-101 healthy (no fault), with a capped model's prediction of ``median`` hours."""
    ev = from_simulator(PLANT["M-101"], FaultSpec.healthy(), 300.0, seed=3, rul_cap_h=200.0)
    rul = RulEstimate(median_h=median, lower_h=median * 0.62, upper_h=median * 1.38, coverage=0.9, at=ev.at,
                      model="sim-bearing:v1", health_index=1.0, cap_h=200.0)
    return ev.model_copy(update={"rul": rul})


# ------------------------------------------------------------------------- decisions
def test_the_dashboard_decides_as_the_prescriber() -> None:
    healthy = judge(_healthy_evidence(196.0))
    assert (healthy.state, healthy.label, healthy.healthy) == ("healthy", "healthy", True)
    failing = judge(from_simulator(PLANT["P-101"], FaultSpec(kind="outer_race", onset_hours=120, life_hours=400),
                                   399.5, seed=3))
    assert failing.state == "stop_now" and failing.label == "stop now" and failing.priority == "urgent"
    assert failing.bearing_fault is not None and "envelope" in failing.bearing_fault


def test_healthy_rul_reads_at_least_the_cap_whether_the_median_is_196_or_200() -> None:
    """The figure must not flip between '>= 200 h' and '196 h [122-270]' (8 days) on a healthy machine."""
    for median in (196.0, 200.0):
        decision = judge(_healthy_evidence(median))
        p = _prediction(median, median * 0.62, median * 1.38)
        text = rul_text(p, healthy=decision.healthy)
        assert (text.value, text.unit, text.sub) == ("≥ 200", "h", "no degradation")
        assert rul_line(p, healthy=decision.healthy) == "no degradation, ≥ 200 h"
    # At the cap with degradation signs: still "at least", and no lower bound below it.
    capped = rul_text(_prediction(200.0, 124.0, 276.0), healthy=False)
    assert (capped.value, capped.sub) == ("≥ 200", "model cap") and "124" not in capped.sub
    # A degrading machine keeps its finite figure and interval.
    finite = rul_text(_prediction(60.0, 40.0, 90.0, health=0.4), healthy=False)
    assert (finite.value, finite.sub) == ("60", "40–90 h")
    assert rul_text(None).value == "—"


def test_a_bearing_fault_in_zone_a_carries_the_envelope_hint() -> None:
    ev = _healthy_evidence(120.0).model_copy(update={
        "zone": ZoneState(zone=0, velocity_mm_s=0.9),
        "peaks": (PeakMatch(defect="bpfo", frequency_hz=107.0, snr=17.0, harmonics=3),)})
    decision = judge(ev)
    assert decision.zone == "A" and decision.bearing_fault == "BPFO peak in the envelope (17x floor)"
    info = _overview("M-101", prediction=_prediction(120.0, 80.0, 160.0))
    html = card_html(info, decision)
    assert "BPFO peak in the envelope (17x floor) while ISO zone A" in html
    assert "early bearing defects show in the envelope spectrum before the velocity rises" in html
    assert "while ISO zone A" not in card_html(info, judge(_healthy_evidence(196.0)))  # no fault: no hint


def test_overview_order_is_by_decision_state_then_alarm_severity() -> None:
    decisions = {s: AssetDecision(asset_id=s, state=s, why="", priority="low") for s in STATES}
    rows = [_overview(s) for s in reversed(STATES)]
    ordered = sorted(rows, key=lambda r: urgency_key(r, decisions[r.asset.asset_id]))
    assert [r.asset.asset_id for r in ordered] == list(STATES)
    # Same state: the worse alarm first; a shelved alarm counts as none; acknowledging changes nothing.
    watch = AssetDecision(asset_id="x", state="watch", why="", priority="low")
    high_acked = _overview("A-1", (_alarm(1, "A-1", "high", "acknowledged"),))
    medium_active = _overview("A-2", (_alarm(2, "A-2", "medium", "active"),))
    critical_shelved = _overview("A-3", (_alarm(3, "A-3", "critical", "shelved"),))
    got = sorted([critical_shelved, medium_active, high_acked], key=lambda r: urgency_key(r, watch))
    assert [r.asset.asset_id for r in got] == ["A-1", "A-2", "A-3"]


def test_acknowledging_never_changes_how_urgent_a_card_looks() -> None:
    """P-101 at RUL 0 turned orange when acknowledged while a healthier asset stayed red."""
    stop = AssetDecision(asset_id="P-101", state="stop_now", why="RUL lower bound 0 h", priority="urgent")
    healthy = AssetDecision(asset_id="M-101", state="healthy", why="", priority="low")
    active = _overview("P-101", (_alarm(1, "P-101", "high", "active"),))
    acked = _overview("P-101", (_alarm(1, "P-101", "high", "acknowledged"),))
    other = _overview("M-101", (_alarm(2, "M-101", "high", "active"),))
    assert urgency_hex(active, stop) == urgency_hex(acked, stop) == STATE_HEX["stop_now"]
    assert urgency_hex(other, healthy) == STATE_HEX["healthy"]
    edge = re.compile(r"border-left:6px solid (#[0-9a-f]{6})")
    assert edge.findall(card_html(acked, stop))[0] == edge.findall(card_html(active, stop))[0] == STATE_HEX["stop_now"]
    assert "ACKED · high" in card_html(acked, stop) and "ACTIVE · high" in card_html(active, stop)
    assert urgency_key(acked, stop) < urgency_key(other, healthy)
    # Without a decision the edge follows the worst unshelved alarm's severity, acknowledged or not.
    assert urgency_hex(active, None) == urgency_hex(acked, None) != urgency_hex(_overview("X"), None)


def test_counters_and_alarm_strip() -> None:
    rows = [_overview("P-101", (_alarm(1, "P-101", "high", "active"),)), _overview("M-101")]
    decisions = {"P-101": AssetDecision(asset_id="P-101", state="urgent", why="", priority="high"),
                 "M-101": AssetDecision(asset_id="M-101", state="healthy", why="", priority="low")}
    text = re.sub(r"<[^>]+>", " ", kpis_html(rows, decisions))
    for shown in ("2 assets", "1 urgent", "1 healthy", "1 unacknowledged alarms", "2 / 2 reporting"):
        assert shown in " ".join(text.split()), text
    strip = " ".join(re.sub(r"<[^>]+>", " ", alarm_strip_html(
        [_alarm(1, "P-101", "high", "active"), _alarm(2, "P-101", "critical", "active"),
         _alarm(3, "F-101", "low", "acknowledged")], clock_text(3600))).split())
    assert "2 unacknowledged alarms 1 critical, 1 high 1 acknowledged · 0 shelved" in strip
    assert "simulated plant: 1 s = 1 h of plant time" in strip
    assert "no unacknowledged alarm" in alarm_strip_html([])


def test_plant_clock_in_words() -> None:
    assert clock_text(3600) == "1 s = 1 h of plant time"
    assert clock_text(60) == "1 s = 1 min of plant time"
    assert clock_text(86400) == "1 s = 24 h of plant time"  # hours, like every duration on the dashboard
    assert clock_text(0.5) == "1 s = 0.5 s of plant time"
    assert clock_text(1) == "real time"
    for bad in (0.0, -1.0, float("inf"), float("nan")):
        with pytest.raises(ValueError, match="acceleration must be a positive finite number"):
            clock_text(bad)


def test_favicon_is_inline_svg() -> None:
    assert FAVICON_SVG.startswith("<svg") and "http" not in FAVICON_SVG.replace("http://www.w3.org/2000/svg", "")


# ------------------------------------------------------------------------------ tables
def test_one_unit_per_quantity() -> None:
    assert dashboard_units("RUL 7.2 d, 90 % interval 5.0 d to 9.5 d") == "RUL 173 h, 90 % interval 120 h to 228 h"
    assert dashboard_units("rising, +1.20 degC/h") == "rising, +1.20 K/h"
    assert dashboard_units("rising +0.05 K/min") == "rising +3.00 K/h"
    assert dashboard_units("bearing temperature 61 degC") == "bearing temperature 61 °C"
    assert dashboard_units("updated 4 d ago · 3d model · grade 2 do") == "updated 4 d ago · 3d model · grade 2 do"


def test_evidence_reads_as_facts_in_the_dashboards_units() -> None:
    ev = from_simulator(PLANT["P-101"], FaultSpec(kind="outer_race", onset_hours=120, life_hours=400), 300.0,
                        seed=3, lookback_h=96.0)
    items = [i.model_dump(mode="json") for i in ev.items()]
    rows = evidence_rows(items)
    assert len(rows) == len(items) and {"Evidence", "Reading", "Details"} <= set(rows[0])
    rul = next(r for r in rows if r["Evidence"] == "Remaining life (rul:latest)")
    assert re.fullmatch(r"RUL \d+ h, 90% interval \d+–\d+ h", rul["Reading"]), rul
    shown = " ".join(r["Reading"] + " " + r["Details"] for r in rows)
    assert "degC" not in shown and not re.search(r"\d d\b", shown) and "{" not in shown
    assert any(r["Evidence"] == "Envelope peak (peak:bpfo)" for r in rows)
    legacy = evidence_rows({"envelope_peak_at_bpfo": True, "rul_h": 38.0})
    assert legacy == [{"Evidence": "envelope peak at bpfo", "Reading": "yes", "Details": ""},
                      {"Evidence": "rul h", "Reading": "38", "Details": ""}]
    assert evidence_rows(["a line"]) == [{"Evidence": "", "Reading": "a line", "Details": ""}]
    assert evidence_rows(None) == [] and evidence_rows(42) == []


def test_tables_are_single_typed_for_arrow() -> None:
    """A column of numbers and text (a card's ``rul_unit`` beside its RMSE) made Arrow log ArrowInvalid."""
    df = pd.DataFrame([{"metric": "rul_unit", "v1": "h", "v2": None}, {"metric": "val_rmse", "v1": 14.93, "v2": 15.0},
                       {"metric": "passed", "v1": True, "v2": 3}])
    with pytest.raises((pa.ArrowInvalid, pa.ArrowTypeError)):
        pa.Table.from_pandas(df)
    fixed = single_typed(df)
    pa.Table.from_pandas(fixed)
    assert list(fixed["v1"]) == ["h", "14.93", "yes"]
    assert fixed["v2"].dtype.kind == "f" and fixed["v2"].isna().iloc[0]
    assert fmt_value(None) == "" and fmt_value(0.000123456) == "0.0001235" and fmt_value([1, "a"]) == "1, a"


def test_an_asset_without_a_decision_still_gets_its_card() -> None:
    """An asset whose decision is unknown still gets a card (no state, muted unless it has alarms)."""
    html = card_html(_overview("Q-1", prediction=_prediction(50.0, 30.0, 80.0)), None)
    assert "state —" in html and "50" in html and "30–80 h" in html
    assert re.search(r"border-left:6px solid #b0bec5", html)  # no alarm, no decision: muted


def test_rul_chart_band_never_reaches_below_the_cap() -> None:
    from dashboard._charts import rul_figure

    fig = rul_figure([_prediction(60.0, 40.0, 90.0, health=0.5), _prediction(200.0, 124.0, 276.0)])
    band_top, band_bottom = fig.data[0].y, fig.data[1].y
    assert list(band_bottom) == [40.0, 200.0]  # at the cap the model says "at least 200 h"
    assert list(band_top) == [90.0, 276.0]
