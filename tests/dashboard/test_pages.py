"""AppTest smoke tests: every page renders from a seeded store, behind sign-in, per role."""

from __future__ import annotations

import json
import logging
import os
import re
import subprocess
import sys
import threading
import time
from datetime import timedelta
from pathlib import Path

import pandas as pd
import pytest
import streamlit as st
from streamlit.testing.v1 import AppTest

from core.settings import Settings
from dashboard import _jobs, _status
from dashboard._context import _load_settings
from dashboard._sessions import SessionStore, load_session_key
from dashboard._text import escape_markdown
from dashboard.auth import Role, User, hash_password, verify_password
from genedge.localservices import Mosquitto, free_port
from ingest.store import Store, actions, queries
from tests.dashboard._seed import PASSWORDS, PUBLISHER, ROLES, Seeded

APP = Path(__file__).resolve().parents[2] / "dashboard" / "app.py"
TIMEOUT = 60


def _app() -> AppTest:
    return AppTest.from_file(str(APP), default_timeout=TIMEOUT)


def _sessions() -> tuple[SessionStore, dict[str, dict[str, str]]]:
    """The app's session store (same state folder and key as the app under test) and its users."""
    s = Settings.load()
    key = load_session_key(s.dashboard.state_dir.resolve(), None)
    return SessionStore(s.dashboard.state_dir.resolve(), key), s.dashboard.users


def _token(user: str) -> str:
    """A live server-side session of ``user``, as signing in creates it."""
    sessions, users = _sessions()
    return sessions.issue(users, User(user, Role(ROLES[user])))


def _signed_in(user: str, page: str | None = None, **query: str) -> AppTest:
    at = _app()
    at.session_state["genedge.session_token"] = _token(user)
    at.run()
    if page is not None:
        at.query_params.update(query)
        at.switch_page(page).run()
    assert not at.exception, [e.value for e in at.exception]
    return at


def _text(at: AppTest) -> str:
    parts = [e.value for kind in ("markdown", "caption", "title", "subheader", "header", "info", "warning",
                                  "error", "success", "text") for e in getattr(at, kind)]
    parts += [str(m.label) + " " + str(m.value) for m in at.metric]
    text = re.sub(r"<[^>]+>", " ", "\n".join(str(p) for p in parts))  # the overview cards are HTML
    return re.sub(r"[ \t]+", " ", text)


def _frames(at: AppTest) -> str:
    return "\n".join(df.value.to_csv() for df in at.dataframe)


def _tables(at: AppTest) -> list[pd.DataFrame]:
    return [t.value for t in at.table]


# ---------------------------------------------------------------------------- sign in
def test_passwords_are_salted_and_verified() -> None:
    h1, h2 = hash_password("s3cret"), hash_password("s3cret")
    assert h1 != h2 and h1.startswith("scrypt$")
    assert verify_password("s3cret", h1) and not verify_password("S3cret", h1)
    assert not verify_password("s3cret", "scrypt$garbage") and not verify_password("x", "")


def test_nothing_but_sign_in_without_login(app_env: Seeded) -> None:
    at = _app().run()
    assert not at.exception
    assert [t.value for t in at.title] == ["GenEdge plant dashboard"]
    assert "P-101" not in _text(at)
    with pytest.raises(ValueError, match="Could not find a navigation page"):
        at.switch_page("views/overview.py")


def test_sign_in_form_checks_the_password(app_env: Seeded) -> None:
    at = _app().run()
    at.text_input(key="sign_in_user").input("olga")
    at.text_input(key="sign_in_password").input("wrong")
    at.button[0].click().run()
    assert "Unknown user or wrong password." in [e.value for e in at.error]
    at.text_input(key="sign_in_password").input(PASSWORDS["olga"])
    at.button[0].click().run()
    assert not at.exception
    sessions, users = _sessions()
    assert sessions.verify(users, at.session_state["genedge.session_token"]) == User("olga", Role.OPERATOR)
    assert "Plant overview" in [t.value for t in at.title]


def test_no_users_tells_how_to_add_one(app_env: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENEDGE_DASHBOARD__USERS", "{}")
    _load_settings.clear()
    at = _app().run()
    assert not at.exception
    assert "No dashboard users are configured" in at.warning[0].value
    assert "python -m dashboard.auth" in _text(at)


def test_invalid_users_are_reported(app_env: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENEDGE_DASHBOARD__USERS", json.dumps({"bob": {"role": "boss", "password_hash": "x"}}))
    _load_settings.clear()
    at = _app().run()
    assert "user 'bob': role must be one of ['operator', 'engineer'], got 'boss'" in at.error[0].value


# ------------------------------------------------------------------------------ pages
def _links(at: AppTest) -> dict[str, str]:
    """Page links on the page: label -> target page (the script's name)."""
    return {link.proto.label: link.proto.page for link in at.get("page_link")}


def test_overview_shows_every_asset_most_urgent_first(app_env: Seeded) -> None:
    at = _signed_in("olga")
    text = _text(at)
    for asset_id in ("P-101", "M-101", "F-101", "P-102", "P-201", "M-201", "F-201", "M-202"):
        assert f" {asset_id} " in text
    assert PUBLISHER not in text  # the edge agent reports status under its own id: not a plant asset
    # Degraded, from the agent's features: broadband RMS up, health index down, anomaly on; raw temperature,
    # its rate in K/h; the decision state the prescriber acts on, and why.
    assert re.search(r"P-101 Feed pump 101 stop now line1 · pump · criticality 3 · class II [^\n]*Vib RMS 0\.[3-9]\d\d g "
                     r"Velocity — window too short Temp [5-7]\d\.\d °C [+-]\d+\.\d K/h Health 0\.[0-4]\d anomaly "
                     r"RUL 20 h 13–27 h ACTIVE · high data good anomaly", text)
    assert re.search(r"M-202 Mixer drive motor 202 insufficient evidence .* Vib RMS 0\.0\d\d g .* Health (1\.00|0\.9\d) "
                     r"RUL — none yet normal data good", text)
    assert "K/min" not in text and "degC" not in text
    # Most urgent first: stop now (P-101) > insufficient evidence (in id order) > healthy (F-101: its
    # temperature readings span two minutes of wall clock, too short a look-back to prove a rise).
    order = sorted(("P-101", "F-201", "M-101", "M-201", "M-202", "P-102", "P-201", "F-101"),
                   key=lambda a: text.index(f" {a} "))
    assert order == ["P-101", "F-201", "M-101", "M-201", "M-202", "P-102", "P-201", "F-101"]
    compact = " ".join(text.split())
    for counter in ("8 assets", "1 stop now", "6 insufficient evidence", "1 healthy",
                    "1 unacknowledged alarms", "1 / 1 acked / shelved", "1 anomaly on", "2 with RUL"):
        assert counter in compact, counter
    # Each card links to the asset's details, and to its open work order where it has one.
    links = {(link.proto.page, link.proto.label, link.proto.query_string) for link in at.get("page_link")}
    assert {lk for lk in links if lk[0] == "work_orders"} == {("work_orders", "WO-000001 · draft", "asset=P-101"),
                                                              ("work_orders", "WO-000002 · approved", "asset=F-101")}
    assert ("asset", "Details", "asset=M-202") in links
    assert not any("Models" in str(p) for p in at.sidebar)  # operators have no engineering pages


def test_alarm_strip_and_plant_clock_on_every_page(app_env: Seeded) -> None:
    for page in (None, "views/asset.py", "views/work_orders.py", "views/data_quality.py"):
        at = _signed_in("olga", page)
        compact = " ".join(_text(at).split())
        assert "1 unacknowledged alarm 1 high 1 acknowledged · 1 shelved" in compact, page
        assert "simulated plant: 1 s = 1 h of plant time" in compact
        assert _links(at)["Open the alarm list"] == "alarms"
        assert any(c.value.startswith("Simulated plant: 1 s = 1 h of plant time (sim.time_acceleration 3600). RUL "
                                      "figures count plant hours") for c in at.sidebar.caption)


def test_plant_clock_follows_the_settings(app_env: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENEDGE_SIM__TIME_ACCELERATION", "60")
    _load_settings.clear()
    assert "simulated plant: 1 s = 1 min of plant time" in _text(_signed_in("olga"))
    monkeypatch.setenv("GENEDGE_EDGE__SOURCE__KIND", "opcua")  # a real plant: no simulator clock
    _load_settings.clear()
    assert "simulated plant" not in _text(_signed_in("olga")).lower()


@pytest.fixture
def fresh_store(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app_env: Seeded) -> Seeded:
    """A store of its own, for tests that change alarm states (they cannot be undone)."""
    from tests.dashboard._seed import seed

    own = seed(tmp_path / "own")
    monkeypatch.setenv("GENEDGE_STORE__URL", own.url)
    _load_settings.clear()
    return own


def _edge(at: AppTest, asset_id: str) -> str:
    card = next(m.value for m in at.markdown if f">{asset_id}</span>" in str(m.value))
    found = re.search(r"border-left:6px solid (#[0-9a-f]{6})", card)
    assert found is not None
    return found.group(1)


def test_acknowledging_keeps_the_asset_first_and_its_colour(fresh_store: Seeded) -> None:
    store = Store(fresh_store.url)
    try:
        # A watched asset in critical alarm still ranks below P-101, which the policy says to stop now.
        noisy = actions.raise_alarm(store, "F-101", "vibration_high", "critical", "raised by the test")
        at = _signed_in("olga")
        before = _edge(at, "P-101")
        text = _text(at)
        assert text.index(" P-101 ") < text.index(" F-101 ")
        actions.acknowledge_alarm(store, fresh_store.alarms["active"], "olga")
        st.cache_data.clear()  # as the alarm page's action does (its loaders keep values for seconds)
        at = _signed_in("olga")
        text = _text(at)
        assert "P-101 Feed pump 101 stop now" in text and "ACKED · high" in text
        assert text.index(" P-101 ") < text.index(" F-101 ")
        assert _edge(at, "P-101") == before != _edge(at, "F-101")
        assert "1 unacknowledged alarm 1 critical" in " ".join(text.split())
        actions.clear_alarm(store, noisy.id)
    finally:
        store.close()


def _chart_titles(at: AppTest) -> dict[str, dict[str, object]]:
    specs = [json.loads(c.proto.spec) for c in at.get("plotly_chart")]
    return {spec["layout"]["title"]["text"]: spec for spec in specs}


def test_asset_page_shows_feature_trends_snapshot_spectra_and_rul(app_env: Seeded) -> None:
    at = _signed_in("olga", "views/asset.py", asset="P-101")
    assert at.title[0].value == "P-101 · Feed pump 101"
    charts = _chart_titles(at)
    titles = list(charts)
    for prefix in ("Vibration RMS · vib_de", "Temperature · temp_de", "Health", "Envelope amplitude at 1x",
                   "Spectrum · vib_de", "Envelope spectrum", "Remaining useful life"):
        assert any(t.startswith(prefix) for t in titles), (prefix, titles)
    # Envelope trend from the features: BPFO (outer race) grows well above BPFI as P-101's fault develops.
    env_trend = next(spec for t, spec in charts.items() if t.startswith("Envelope amplitude"))
    lines = {tr["name"]: [y for y in tr["y"] if y is not None] for tr in env_trend["data"]}  # type: ignore[index]
    assert set(lines) == {"BPFO", "BPFI"}
    assert lines["BPFO"][-1] > 5 * lines["BPFO"][0] and lines["BPFO"][-1] > 3 * lines["BPFI"][-1]
    # The health indicator crosses the threshold the agent learned, and the alarm shows.
    health = next(spec for t, spec in charts.items() if t == "Health")
    assert "anomaly alarm on" in [tr.get("name") for tr in health["data"]]  # type: ignore[union-attr]
    # Spectra of the snapshot the agent sent when the anomaly started, with defect markers.
    envelope = next(spec for t, spec in charts.items() if t.startswith("Envelope spectrum"))
    assert any(tr.get("name") == "BPFO" for tr in envelope["data"])  # type: ignore[union-attr]
    text = _text(at)
    assert re.search(r"Raw snapshot received .* · 8 batch\(es\) from .* 2048 samples at 25600 Hz", text)
    assert "fixture-truth v1" in text
    assert not at.button(key="snapshot").disabled


def test_feature_history_reads_the_hourly_and_daily_aggregates(fresh_store: Seeded) -> None:
    from core.settings import RetentionSettings
    from core.wire import FeatureFrame, utcnow
    from ingest.store.retention import maintain

    store = Store(fresh_store.url)
    try:
        newest = queries.latest_features(store, ["P-101"])["P-101"]
        channel, feats = next(iter(newest.features.items()))
        key = f"{channel}.{next(iter(feats))}"
        # Two days of hourly windows, ending three days ago: complete hours and days to aggregate.
        start = (utcnow() - timedelta(days=5)).replace(minute=0, second=0, microsecond=0)
        frames = [(FeatureFrame(publisher="history", seq=i, asset_id="P-101", window_start=start + timedelta(hours=i),
                                window_s=1.0, features={channel: {key.split(".", 1)[1]: float(i)}}), utcnow())
                  for i in range(48)]
        store.write(frames)
        maintain(store, RetentionSettings())
    finally:
        store.close()
    at = _signed_in("olga", "views/asset.py", asset="P-101")
    at.selectbox(key="feature_pick").set_value(key).run()
    at.radio(key="feature_resolution").set_value("hourly").run()
    assert not at.exception, [e.value for e in at.exception]
    hourly = _chart_titles(at)[f"{key} · hourly"]
    mean = next(tr for tr in hourly["data"] if tr.get("name") == "mean")  # type: ignore[union-attr]
    assert mean["y"][:48] == [float(i) for i in range(48)]  # one window per hour: the mean is that window
    at.radio(key="feature_resolution").set_value("daily").run()
    daily = _chart_titles(at)[f"{key} · daily"]
    assert len(next(tr for tr in daily["data"] if tr.get("name") == "mean")["y"]) >= 2  # type: ignore[union-attr]
    assert "daily buckets from" in _text(at)


def test_feature_history_without_aggregates_says_how_to_get_them(app_env: Seeded) -> None:
    at = _signed_in("olga", "views/asset.py", asset="M-202")
    at.radio(key="feature_resolution").set_value("daily").run()
    assert "genedge ingest maintain" in _text(at)


def test_asset_tabs_keep_their_place_when_a_banner_comes(app_env: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    # The browser keeps the operator's chosen tab only while the tabs stay at the same place in the
    # page: a banner appearing in the header between two reruns (here the zone-A hint of a developing
    # bearing fault) must not move them.
    places = set()
    for hint in (None, "bearing outer race fault while ISO zone A"):
        monkeypatch.setattr(_status, "zone_a_hint", lambda _zone, _decision, hint=hint: hint)
        at = _signed_in("olga", "views/asset.py", asset="P-101")
        assert hint is None or hint in _text(at)
        places.add(next(i for i, node in at.main.children.items() if getattr(node, "type", None) == "tab_container"))
    assert len(places) == 1, places


def test_asset_without_snapshot_or_predictions_says_so(app_env: Seeded) -> None:
    at = _signed_in("olga", "views/asset.py", asset="M-202")
    text = _text(at)
    assert "No RUL predictions for this asset yet" in text
    assert "No raw vibration snapshot of M-202 yet" in text
    assert "carry no velocity RMS" in text  # the demo's 80 ms snapshots are too short for 10 Hz
    assert not at.button(key="snapshot").disabled
    assert any(t.startswith("Vibration RMS") for t in _chart_titles(at))  # its features still trend


def test_requested_snapshot_shows_when_it_was_taken(app_env: Seeded) -> None:
    at = _signed_in("olga", "views/asset.py", asset="F-101")  # the seed asked F-101's agent for one
    assert re.search(r"Raw snapshot received \d{4}-\d\d-\d\d \d\d:\d\d:\d\d UTC \(\d+ s ago\)", _text(at))
    assert any(t.startswith("Spectrum · vib_de") for t in _chart_titles(at))


def test_snapshot_request_is_published_on_the_cmd_topic(app_env: Seeded, broker: Mosquitto,
                                                        monkeypatch: pytest.MonkeyPatch) -> None:
    import paho.mqtt.client as mqtt
    from paho.mqtt.enums import CallbackAPIVersion

    from dashboard._context import _load_settings

    monkeypatch.setenv("GENEDGE_MQTT__PORT", str(broker.port))
    _load_settings.clear()
    got: list[tuple[str, bytes]] = []
    subscribed = threading.Event()
    sub = mqtt.Client(CallbackAPIVersion.VERSION2, client_id="cmd-listener")
    sub.on_subscribe = lambda *_a: subscribed.set()
    sub.on_message = lambda _c, _u, m: got.append((m.topic, bytes(m.payload)))
    sub.connect("127.0.0.1", broker.port)
    sub.subscribe("genedge/v1/+/+/cmd", qos=1)
    sub.loop_start()
    try:
        assert subscribed.wait(10)
        at = _signed_in("olga", "views/asset.py", asset="M-202")
        at.button(key="snapshot").click().run()
        assert not at.exception
        assert "Snapshot requested from the edge agent on `genedge/v1/plant1/M-202/cmd`" in _text(at)
        end = time.monotonic() + 10
        while not got and time.monotonic() < end:
            time.sleep(0.05)
        assert [topic for topic, _ in got] == ["genedge/v1/plant1/M-202/cmd"]
        assert json.loads(got[0][1])["action"] == "raw"
    finally:
        sub.loop_stop()
        sub.disconnect()


def test_snapshot_request_failure_is_shown(app_env: Seeded, monkeypatch: pytest.MonkeyPatch) -> None:
    from dashboard._context import _load_settings

    monkeypatch.setenv("GENEDGE_MQTT__PORT", str(free_port()))  # nothing listens there
    _load_settings.clear()
    at = _signed_in("olga", "views/asset.py", asset="M-202")
    at.button(key="snapshot").click().run()
    assert not at.exception
    errors = [e.value for e in at.error]
    assert any(e.startswith("The snapshot request did not go out: cannot reach the MQTT broker at 127.0.0.1:")
               for e in errors), errors


def test_operator_acknowledges_and_shelves(app_env: Seeded) -> None:
    store = Store(app_env.url)
    fresh = actions.raise_alarm(store, "M-202", "test_ack", "medium", "raised by the test")
    other = actions.raise_alarm(store, "M-202", "test_shelve", "low", "raised by the test")
    at = _signed_in("olga", "views/alarms.py")
    assert "shelved by olga" in _text(at)
    at.button(key=f"ack-{fresh.id}").click().run()
    assert not at.exception
    acked = queries.alarm(store, fresh.id)
    assert acked is not None and (acked.state, acked.acked_by) == ("acknowledged", "olga")
    assert f"Alarm {fresh.id} on M-202 acknowledged by olga" in [t.value for t in at.toast]

    at.text_input(key=f"shelve-reason-{other.id}").input("test: sensor swap")
    next(b for b in at.button if b.label == "Shelve alarm" and b.form_id == f"shelve-{other.id}").click().run()
    assert not at.exception
    shelved = queries.alarm(store, other.id)
    assert shelved is not None and (shelved.state, shelved.shelved_by, shelved.shelve_reason) == (
        "shelved", "olga", "test: sensor swap")
    assert "Cleared" in [t.label for t in at.tabs][-1]
    for a in (fresh, other):
        actions.clear_alarm(store, a.id)
    store.close()


def test_work_orders_for_operator_are_read_only(app_env: Seeded) -> None:
    at = _signed_in("olga", "views/work_orders.py")
    text = _text(at)
    assert "Replace the drive-end bearing" in text
    assert "needs the engineer role" in text
    assert not [b for b in at.button if b.label in ("Approve", "Reject", "Complete")]
    assert {d.label for d in at.get("download_button")} == {"Export JSON", "Export CSV"}


def test_engineer_approves_a_prescription(app_env: Seeded) -> None:
    store = Store(app_env.url)
    body = {"recommendation": {"summary": "M-202: misalignment suspected", "actions": [
                {"what": "Check the coupling alignment", "why": "2x shaft component rising [peak:2x]"}]},
            "description": "M-202: misalignment suspected.", "tasks": ["Check the coupling alignment"],
            "parts": ["flexible coupling insert"], "duration_h": 3.0, "crew": "1 mechanic",
            "evidence": [{"id": "peak:2x", "kind": "peak", "summary": "2x shaft at 0.21 g", "values": {"g": 0.21}}]}
    wo = actions.create_work_order(store, "M-202", "Test: check coupling", by="prescriber", body=body)
    at = _signed_in("eve", "views/work_orders.py")
    assert "1. Check the coupling alignment — 2x shaft component rising [peak:2x]" in [t.value for t in at.text]
    assert "- Check the coupling alignment" not in [t.value for t in at.text]  # the numbered steps are the tasks
    assert "Estimate: 3.0 h · 1 mechanic" in _text(at).replace("\\", "")
    evidence = next(t for t in _tables(at) if "Evidence" in t.columns)
    assert list(evidence["Evidence"]) == [r"Envelope peak \(peak\:2x\)"]  # Markdown-escaped: shown as written
    assert "flexible coupling insert" in _text(at)
    at.text_input(key=f"approve-note-{wo.id}").input("ok")
    next(b for b in at.button if b.label == "Approve" and b.form_id == f"approve-{wo.id}").click().run()
    assert not at.exception
    done = queries.work_order(store, wo.id)
    assert done is not None and (done.status, done.updated_by, done.history[-1]["note"]) == ("approved", "eve", "ok")
    actions.complete_work_order(store, wo.id, "eve", "test cleanup")
    store.close()


def test_work_order_evidence_is_a_table_in_hours_and_kelvin_per_hour(app_env: Seeded) -> None:
    """Prescriber evidence: a table of facts (not cut-off JSON), RUL in hours and rates in K/h, never days."""
    store = Store(app_env.url)
    evidence = [
        {"id": "rul:latest", "kind": "rul", "summary": "RUL 7.2 d, 90% interval 5.0 d to 9.5 d",
         "values": {"median_h": 172.8, "lower_h": 120.0, "upper_h": 228.0, "coverage": 0.9, "cap_h": 200.0,
                    "at_cap": False}},
        {"id": "temp:trend", "kind": "temperature", "summary": "rising, +1.20 degC/h",
         "values": {"slope_c_per_h": 1.2, "trend": "rising"}},
        {"id": "peak:bpfo", "kind": "peak", "summary": "BPFO 107 Hz in envelope, 17x floor, 3 harmonics",
         "values": {"defect": "bpfo", "frequency_hz": 107.2, "snr": 17.0, "harmonics": 3}},
    ]
    body = {"recommendation": {"summary": "M-202: outer race, RUL 7.2 d", "state": "plan", "evidence": evidence,
                               "actions": [{"what": "Replace the bearing", "why": "RUL 7.2 d [rul:latest]"}]},
            "evidence": ["rul:latest", "temp:trend", "peak:bpfo"]}
    wo = actions.create_work_order(store, "M-202", "Test: replace bearing", by="prescriber", body=body)
    try:
        at = _signed_in("olga", "views/work_orders.py", asset="M-202")  # as the card's work-order link opens it
        assert at.selectbox(key="wo_asset").value == "M-202"
        assert [e.label for e in at.expander if e.label.startswith("\\#")] == [
            escape_markdown(f"#{wo.id} · M-202 · Test: replace bearing · draft · medium")]
        table = next(t for t in _tables(at) if "Evidence" in t.columns)
        readings = [r.replace("\\", "") for r in table["Reading"]]
        assert readings == ["RUL 173 h, 90% interval 120–228 h", "rising, +1.20 K/h",
                            "BPFO 107 Hz in envelope, 17x floor, 3 harmonics"]
        assert "snr 17 · harmonics 3" in table["Details"].iloc[2].replace("\\", "")
        texts = " ".join(t.value for t in at.text)
        assert "RUL 173 h" in texts and "7.2 d" not in texts
        assert "Decision state: plan" in _text(at)
    finally:
        actions.reject_work_order(store, wo.id, "eve", "test cleanup")
        store.close()


def test_work_order_text_is_shown_literally_never_as_markdown(app_env: Seeded) -> None:
    """An image in a title, recommendation, task or outcome would make every browser fetch it (a beacon)."""
    beacon = "![x](http://beacon.invalid/t.png)"
    store = Store(app_env.url)
    body = {"recommendation": {"summary": f"summary {beacon}", "actions": [
                {"what": f"what {beacon}", "why": "why <img src=http://beacon.invalid/i.png>"}]},
            "tasks": [f"task {beacon}"], "parts": ["part [link](http://beacon.invalid/l)"],
            "evidence": [f"evidence {beacon}"]}
    wo = actions.create_work_order(store, "M-202", f"Title {beacon}", by="prescriber", body=body)
    actions.approve_work_order(store, wo.id, "eve")
    actions.complete_work_order(store, wo.id, "eve", f"outcome {beacon}")
    try:
        at = _signed_in("eve", "views/work_orders.py")
        at.multiselect(key="wo_status").set_value(["done"]).run()
        assert not at.exception
        texts = [t.value for t in at.text]
        # the numbered steps stand for the body's tasks (the same steps), so the tasks are not listed again
        for shown in (f"summary {beacon}", f"1. what {beacon} — why <img src=http://beacon.invalid/i.png>",
                      "- part [link](http://beacon.invalid/l)", f"- evidence {beacon}",
                      f"outcome {beacon}"):
            assert shown in texts, (shown, texts)
        label = next(e.label for e in at.expander if e.label.startswith(f"\\#{wo.id}"))
        assert r"Title \!\[x\]\(http\://beacon\.invalid/t\.png\)" in label  # escaped: shown as typed
        markdown = [e.value for kind in ("markdown", "caption") for e in getattr(at, kind)] + [e.label for e in at.expander]
        assert not [m for m in markdown if re.search(r"(?<!\\)!\[|(?<!\\)\]\(|<img", m)], markdown
    finally:
        store.close()


def test_models_page_lists_versions_and_promotes(app_env: Seeded) -> None:
    at = _signed_in("eve", "views/models.py")
    assert "cmapss-FD001" in [s.value for s in at.subheader]
    assert "promoted: v1" in _text(at)
    assert "val_rmse_onnx" in _frames(at)
    at.button(key="promote-cmapss-FD001").click().run()
    assert not at.exception
    assert "promoted: v2" in _text(at)
    at.button(key="rollback-cmapss-FD001").click().run()
    assert "promoted: v1" in _text(at)


def test_models_page_tables_are_single_typed(app_env: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch,
                                            caplog: pytest.LogCaptureFixture) -> None:
    """A card with a text metric (``rul_unit``) beside numbers: no ArrowInvalid fix-up logged on a visit."""
    from core.inference.registry import ModelRegistry
    from tests._factories import minimal_card

    reg = ModelRegistry(tmp_path / "registry")
    onnx = tmp_path / "fixture.onnx"
    onnx.write_bytes(b"not a real model: registry fixture")
    for i in (1, 2):
        reg.register("sim-bearing", onnx, minimal_card(seed=i, metrics={"val_rmse_onnx": 10.0 + i, "rul_unit": "h",
                                                                        "val_n_units": 20 * i}), promote=i == 1)
    monkeypatch.setenv("GENEDGE_MODELS__REGISTRY_DIR", str(tmp_path / "registry"))
    _load_settings.clear()
    # Streamlit logs the fix-up (with the ArrowInvalid traceback) on its own logger, which does not propagate.
    arrow_log = logging.getLogger("streamlit.dataframe_util")
    monkeypatch.setattr(arrow_log, "level", logging.INFO)
    arrow_log.addHandler(caplog.handler)
    try:
        at = _signed_in("eve", "views/models.py")
    finally:
        arrow_log.removeHandler(caplog.handler)
    logged = [r.getMessage() for r in caplog.records if r.name == "streamlit.dataframe_util"]
    assert not logged, logged
    assert "sim-bearing: 2 version(s) · promoted: v1" in _text(at)
    compare = next(df.value for df in at.dataframe if df.value.index.name == "metric")
    assert compare.loc["rul_unit"].tolist() == ["h", "h"] and compare.loc["val_rmse_onnx"].tolist() == ["11", "12"]


def test_models_page_says_which_versions_are_federated_and_their_privacy_budget(
        app_env: Seeded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    from core.inference.registry import ModelRegistry
    from tests._factories import minimal_card

    reg = ModelRegistry(tmp_path / "registry")
    onnx = tmp_path / "fixture.onnx"
    onnx.write_bytes(b"not a real model: registry fixture")
    reg.register("cmapss-FD003", onnx, minimal_card(seed=1), promote=True)
    federation = {"rounds": 30, "plants": ["FD001-a", "FD001-b", "FD003-a"], "strategy": "fedprox",
                  "secure_aggregation": {"num_shares": 3}, "privacy": {"epsilon_spent": 2.96, "delta": 1e-5}}
    reg.register("cmapss-FD003", onnx, minimal_card(seed=2, federation=federation), promote=False)
    monkeypatch.setenv("GENEDGE_MODELS__REGISTRY_DIR", str(tmp_path / "registry"))
    _load_settings.clear()
    at = _signed_in("eve", "views/models.py")
    assert not at.exception
    table = next(df.value for df in at.dataframe if "trained" in df.value.columns)
    assert table["trained"].tolist() == ["own data", "federated: 3 plants, 30 rounds, DP ε = 3, δ = 1e-05, SecAgg+"]


def test_models_page_without_models(empty_registry: Path) -> None:
    at = _signed_in("eve", "views/models.py")
    assert "No models yet" in _text(at)


def test_operator_cannot_open_engineering_pages(app_env: Seeded) -> None:
    at = _signed_in("olga")
    for page in ("views/models.py", "views/synthetic.py"):
        with pytest.raises(ValueError, match="Could not find a navigation page"):
            at.switch_page(page)


def _wait_for_jobs(root: Path, kind: str, timeout: float = 240.0) -> list[_jobs.Job]:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        jobs = _jobs.list_jobs(root, kind)
        if jobs and not any(j.running for j in jobs):
            return jobs
        time.sleep(0.5)
    raise AssertionError(f"{kind} jobs still running after {timeout} s")


def _train_button(at: AppTest) -> object:
    return next(b for b in at.button if b.label == "Train and run the quality gate")


def test_synthetic_page_says_what_training_needs_before_the_button(app_env: Seeded, tmp_path: Path) -> None:
    """Out of the box (no CWRU data) the button is disabled and the page says what it needs."""
    at = _signed_in("eve", "views/synthetic.py")
    assert at.text_input(key="synth-data-dir").value == ""
    assert _train_button(at).disabled
    assert "Training needs the CWRU bearing data set" in at.warning[0].value
    at.text_input(key="synth-data-dir").input(str(tmp_path)).run()
    assert _train_button(at).disabled and "No CWRU `.mat` files in" in at.warning[0].value
    at.text_input(key="synth-data-dir").input(str(tmp_path / "nowhere")).run()
    assert _train_button(at).disabled and "is not a folder" in at.warning[0].value
    (tmp_path / "normal_0_97.mat").write_bytes(b"")
    at.text_input(key="synth-data-dir").input(str(tmp_path)).run()
    assert not _train_button(at).disabled and not at.warning
    assert _jobs.list_jobs(app_env.registry_dir.parent / "jobs", "synth-train") == []


@pytest.mark.slow
def test_synthetic_page_trains_gates_and_samples(app_env: Seeded, datasets: Path) -> None:
    """Real ``genedge synth`` subprocesses, few steps: the gate's verdict, numbers and PNG plots show."""
    jobs_dir = app_env.registry_dir.parent / "jobs"
    at = _signed_in("eve", "views/synthetic.py")
    at.text_input(key="synth-data-dir").input(str(datasets / "cwru")).run()  # the folder enables the button
    at.number_input(key="synth-steps").set_value(20)
    at.number_input(key="synth-per-class").set_value(5)
    next(b for b in at.button if b.label == "Train and run the quality gate").click().run()
    assert not at.exception
    assert "running" in _text(at) or _jobs.list_jobs(jobs_dir, "synth-train")[0].running
    (job,) = _wait_for_jobs(jobs_dir, "synth-train")
    assert job.status == "done", job.log_tail(40)
    at.run()
    text = _text(at)
    assert "Quality gate **rejected**" in text or "Quality gate **passed**" in text
    gate = next(df.value for df in at.dataframe if "check" in df.value.columns)
    assert gate["check"].str.startswith("discriminative score").any()
    captions = [img.proto.imgs[0].caption for img in at.get("image")]
    assert captions == ["Real vs synthetic windows, per class", "Envelope spectra, real vs synthetic"]
    assert (job.path / "report" / "windows.png").is_file() and (job.path / "report" / "envelope_spectra.png").is_file()

    at.number_input(key="sample-n").set_value(8)
    next(b for b in at.button if b.label == "Draw samples").click().run()
    (sample,) = _wait_for_jobs(jobs_dir, "synth-sample", 120)
    assert sample.status == "done", sample.log_tail(40)
    at.run()
    assert re.search(r"8 windows of \d+ samples", _text(at))
    assert "Synthetic windows (first 1024 samples)" in _chart_titles(at)


def test_engineering_pages_load_no_training_code(app_env: Seeded) -> None:
    """Models and Synthetic data render without torch or Lightning in the dashboard's process."""
    script = (
        "import sys\n"
        "from streamlit.testing.v1 import AppTest\n"
        "from core.settings import Settings\n"
        "from dashboard._sessions import SessionStore, load_session_key\n"
        "from dashboard.auth import Role, User\n"
        "d = Settings.load().dashboard\n"
        "token = SessionStore(d.state_dir, load_session_key(d.state_dir)).issue(d.users, User('eve', Role.ENGINEER))\n"
        f"at = AppTest.from_file({str(APP)!r}, default_timeout=60)\n"
        "at.session_state['genedge.session_token'] = token\n"
        "at.run()\n"
        "for page in ('views/models.py', 'views/synthetic.py'):\n"
        "    at.switch_page(page).run()\n"
        "    assert not at.exception, [e.value for e in at.exception]\n"
        "    assert at.title[0].value in ('Models', 'Synthetic data')\n"
        "heavy = sorted(m for m in ('torch', 'lightning', 'pytorch_lightning', 'synth') if m in sys.modules)\n"
        "print('HEAVY', heavy)\n"
    )
    out = subprocess.run([sys.executable, "-c", script], capture_output=True, text=True, timeout=120, check=False,
                         env={**os.environ, **app_env.env()})
    assert out.returncode == 0, out.stderr[-2000:]
    assert "HEAVY []" in out.stdout


def test_retrain_needs_a_cmapss_folder(app_env: Seeded, tmp_path: Path) -> None:
    at = _signed_in("eve", "views/models.py")
    at.text_input(key="retrain-data-dir").input(str(tmp_path))
    next(b for b in at.button if b.label == "Start training").click().run()
    assert any("No `train_FD001.txt`" in e.value for e in at.error)
    assert _jobs.list_jobs(app_env.registry_dir.parent / "jobs", "rul-train") == []


def test_plant_retrain_starts_train_sim_from_the_store_without_its_url(app_env: Seeded) -> None:
    at = _signed_in("eve", "views/models.py")
    at.number_input(key="plant-units").set_value(20)
    at.number_input(key="plant-epochs").set_value(1)
    next(b for b in at.button if b.label == "Train sim-bearing with the plant's history").click().run()
    jobs = _jobs.list_jobs(app_env.registry_dir.parent / "jobs", "rul-train")
    try:
        assert len(jobs) == 1
        (cmd,) = jobs[0].steps
        assert cmd[-11:] == ["train-sim", "--from-store", "--units", "20", "--max-epochs", "1", "--time-scale", "1.0",
                             "--registry-dir", str(app_env.registry_dir.resolve()), "--json"]
        # the job reads the store from the environment it inherits: no URL (and no password) in its files
        url = app_env.env()["GENEDGE_STORE__URL"]
        assert not any(url in arg for arg in cmd)
    finally:
        for job in jobs:
            _jobs.cancel(job)


def test_data_quality_lists_dead_letters_and_channel_freshness(app_env: Seeded) -> None:
    at = _signed_in("olga", "views/data_quality.py")
    frames = _frames(at)
    for reason in ("malformed", "invalid", "out_of_range", "unknown_topic", "topic_mismatch"):
        assert reason in frames
    assert "genedge/v1/plant1/fan-09/readings" in frames
    channels = next(df.value for df in at.dataframe if "in features" in df.value.columns)
    p101 = channels[channels["asset"] == "P-101"].set_index("channel")
    assert set(p101.index) == {"vib_de", "temp_de", "mic", "speed", "load"}
    assert p101.loc["vib_de", "raw samples"] == 2048  # the anomaly snapshot
    assert p101.loc["temp_de", "raw samples"] == 1  # slow channels go raw every tick
    assert p101["in features"].notna().all()
    assert PUBLISHER in frames  # the agent's status reports
