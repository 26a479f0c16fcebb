"""End to end in real headless Chromium against a running ``genedge demo``.

The fixture starts ``genedge demo`` as a newcomer would (embedded broker, simulated plant, edge
agent, ingest, prescriber, dashboard with the demo users), on free ports with its own store,
registry and jobs folder, with the clock at two simulated hours per wall second and a shorter
healthy-baseline period of the edge agent, so P-101's outer-race fault turns into an alarm and a
drafted work order within about a minute. The rule-template prescriber keeps the CPU for the
plant and the browser (the local LLM has its own tests and benchmark).

While P-101's fault develops (its work order at plan or urgent), the engineer reads the what-if twin: the
drafted work order's "What-if:" line and evidence cite the chosen option's risk and cost, and the
asset page's What-if tab draws the recommendation, the futures from the analog library of the
model the demo's agent predicts with, the four options' cost/risk table and their fan charts.

Timings (dashboard ready, first live values in the browser, first alarm, first work order, what-if shown) go to
``test-artifacts/dashboard/e2e-timings.json`` with the screenshots.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any

import pytest

from core.inference.registry import ModelRegistry
from core.maintenance import ALARM_SEVERITY_OF_STATE
from core.settings import PlantSettings
from core.sim import default_plant
from core.twin import OPTION_LABELS, find_library
from core.wire import utcnow
from dashboard import _jobs
from dashboard.launch import wait_ready
from genedge.localservices import free_port
from ingest.store import Store, actions, queries
from prescribe.evidence import from_store
from prescribe.policy import assess
from prescribe.schema import risk_text
from tests.conftest import data_dir
from tests.dashboard._browser import ARTIFACTS, TIMEOUT_MS, VIEWPORT, idle, loopback_url, shot, sign_in, wait_for

pytestmark = pytest.mark.browser

#: Two simulated hours per second: P-101's fault starts 85 simulated hours in (about 43 s).
ACCELERATION = 7200
#: The edge agent learns each asset's healthy baseline on 30 windows after 10 of run-in (15 s + 5 s at
#: 0.5 s a window) instead of the default 100 after 60, so the baseline is learned before the fault starts.
ALARM_WAIT_S = 150
#: The demo runs without a config file: the [plant] section's default currency.
CURRENCY = PlantSettings().currency
#: The decision states of a developing fault before it stops the machine.
DEVELOPING = ("plan", "urgent")


@dataclass(frozen=True)
class Sample:
    """P-101 at one moment of the demo, read from its store."""

    t: float
    decision: str | None  # the decision policy's state on the stored evidence (None: no prediction yet)
    work_order: str | None  # the decision state of P-101's newest open work order (None: none open)
    rul_alarm: str | None  # the priority of P-101's open rul_low alarm (None: none open)


@dataclass
class RunningDemo:
    url: str
    store_url: str
    registry: Path
    jobs: Path
    started: float
    started_at: datetime
    timings: dict[str, float] = field(default_factory=dict)
    timeline: list[Sample] = field(default_factory=list)

    def mark(self, what: str, at: datetime | None = None) -> float:
        """Record seconds from starting ``genedge demo`` to now (or ``at``), the first time only."""
        since = (at - self.started_at).total_seconds() if at is not None else time.monotonic() - self.started
        self.timings.setdefault(what, round(since, 1))
        return self.timings[what]

    def first(self, what: str, fetch: Any, at: str, timeout: float = ALARM_WAIT_S) -> Any:
        """Poll the demo's store until ``fetch(store)`` returns rows; record the oldest row's time ``at``."""
        found: list[Any] = []
        with Store(self.store_url) as store:

            def check() -> bool:
                found[:] = fetch(store)
                return bool(found)

            wait_for(check, timeout, what)
        oldest = min(found, key=lambda row: getattr(row, at))
        self.mark(what, getattr(oldest, at))
        return oldest


def _watch_p101(demo: RunningDemo, stop: threading.Event) -> None:
    """Sample P-101's decision, newest open work order and RUL alarm every second into ``demo.timeline``."""
    asset = next(a for a in default_plant() if a.asset_id == "P-101")
    with Store(demo.store_url) as store:
        while not stop.wait(1.0):
            try:
                ev = from_store(store, "P-101", asset=asset, time_scale=ACCELERATION)
                orders = queries.work_orders(store, statuses=("draft", "approved"), asset_id="P-101")
                alarms = queries.alarms(store, states=queries.OPEN_ALARM_STATES, asset_id="P-101")
            except Exception:  # the store is still being created; sample again in a second
                continue
            newest = orders[0].body.get("recommendation", {}).get("state") if orders else None
            rul = next((a.severity for a in alarms if a.kind == "rul_low"), None)
            demo.timeline.append(Sample(round(time.monotonic() - demo.started, 1),
                                        assess(ev).state if ev.rul is not None else None, newest, rul))


@pytest.fixture(scope="module")
def demo(tmp_path_factory: pytest.TempPathFactory) -> Iterator[RunningDemo]:
    work = tmp_path_factory.mktemp("demo")
    port = free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("GENEDGE_")}
    env.update(
        {
            "GENEDGE_MQTT__PORT": str(free_port()),
            "GENEDGE_DASHBOARD__PORT": str(port),
            "GENEDGE_SIM__TIME_ACCELERATION": str(ACCELERATION),
            "GENEDGE_LLM__BACKEND": "rules",
            "GENEDGE_EDGE__HEALTH__WARMUP_WINDOWS": "10",
            "GENEDGE_EDGE__HEALTH__BASELINE_WINDOWS": "30",
            "GENEDGE_MODELS__REGISTRY_DIR": str(work / "registry"),
        }
    )
    if (data_dir() / "cmapss").is_dir():
        env["GENEDGE_MODELS__DATA_DIR"] = str(data_dir() / "cmapss")
    store_url = f"sqlite:///{work / 'store.db'}"
    started, started_at = time.monotonic(), utcnow()
    with (work / "demo.log").open("wb") as log:
        proc = subprocess.Popen(
            [sys.executable, "-m", "genedge", "demo", "--db", store_url],
            cwd=work,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        running = RunningDemo(f"http://127.0.0.1:{port}", store_url, work / "registry", work / "jobs", started, started_at)
        stop_watch = threading.Event()
        watcher = threading.Thread(target=_watch_p101, args=(running, stop_watch), name="watch-P-101", daemon=True)
        watcher.start()
        try:
            wait_ready(running.url, 120, proc=proc)
            running.mark("dashboard ready")
            yield running
        finally:
            stop_watch.set()
            watcher.join(10)
            for job in _jobs.list_jobs(running.jobs):  # started by this test's dashboard: stop what still runs
                _jobs.cancel(job)
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(90)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)
            ARTIFACTS.mkdir(parents=True, exist_ok=True)
            (ARTIFACTS / "e2e-timings.json").write_text(json.dumps(running.timings, indent=2) + "\n")
            (ARTIFACTS / "e2e-p101-timeline.json").write_text(
                json.dumps([s.__dict__ for s in running.timeline], indent=1) + "\n")
            print(f"\ngenedge demo timings (s since start): {running.timings}")
    log_text = (work / "demo.log").read_text(errors="replace")
    assert proc.returncode == 0, log_text[-3000:]
    assert "Traceback" not in log_text, log_text[log_text.index("Traceback") - 500:][:4000]


def _live_plant(page: Any, demo: RunningDemo) -> None:
    """At least 6 asset cards with live vibration values, and P-101's updating."""
    cards = page.locator("[class*='st-key-asset-card-']")
    live = cards.filter(has_text=re.compile(r"Vib RMS\s*\d+\.\d{3}\s*g"))
    wait_for(lambda: live.count() >= 6, 60, ">= 6 assets with a vibration value")
    demo.mark("plant live in the browser")
    p101 = page.locator(".st-key-asset-card-P-101")
    before = p101.inner_text()
    wait_for(lambda: p101.inner_text() != before, 20, "P-101's card updating")
    assert cards.count() == 8


def _page(browser: Any, requests: list[str] | None = None) -> Any:
    """A new page; every URL it requests goes to ``requests`` when given."""
    page = browser.new_page(viewport=VIEWPORT)
    page.set_default_timeout(TIMEOUT_MS)
    if requests is not None:
        page.on("request", lambda r: requests.append(r.url))
    return page


def _only_loopback(requests: list[str]) -> None:
    """The page requested something, and nothing outside this machine."""
    outside = sorted({u for u in requests if not loopback_url(u)})
    assert requests and not outside, outside


def _developing(demo: RunningDemo) -> None:
    """Fails unless P-101's fault is developing: its newest work order at plan or urgent, none yet at stop now."""
    with Store(demo.store_url) as store:
        orders = queries.work_orders(store, asset_id="P-101")  # newest first, superseded drafts too
    states = [(w.body.get("recommendation") or {}).get("state") for w in orders]
    assert states and states[0] in DEVELOPING and "stop_now" not in states, states


def _whatif_in_work_order(page: Any, demo: RunningDemo, work_order_id: int) -> None:
    """The work order (P-101's newest) cites the what-if's chosen option: in the store, its description's
    "What-if:" line gives that option's risk (%) and expected cost (currency) and its steps cite
    ``whatif:choice``; on the page (open at the work order), its evidence and details show the same."""
    from playwright.sync_api import expect

    _developing(demo)
    with Store(demo.store_url) as store:
        newest = queries.work_orders(store, asset_id="P-101", limit=1)
    assert newest and newest[0].id == work_order_id, [w.id for w in newest]
    body = newest[0].body
    lines = [ln for ln in body["description"].splitlines() if ln.startswith("What-if:")]
    assert len(lines) == 1, body["description"]
    assert "whatif:choice" in body["evidence"], body["evidence"]  # the work order's steps cite it
    fact = next(i for i in body["recommendation"]["evidence"] if i["id"] == "whatif:choice")["values"]
    assert fact["generator"] == "analogs" and fact["currency"] == CURRENCY, fact  # futures from the analog library
    line = re.search(r"^What-if: .*?(under 1 %|over 99 %|\d+ %) risk of failing .*?expected cost ([\d,]+) ([A-Z]{3})",
                     lines[0])
    assert line is not None, lines[0]
    risk, amount, currency = line.groups()
    # the stored fact is rounded (risk to 4 decimals, cost to cents): the line may round the unrounded value
    p = fact["p_fail_before_repair"]
    assert risk in {risk_text(max(p - 5e-5, 0.0)), risk_text(p), risk_text(min(p + 5e-5, 1.0))}, (lines[0], p)
    assert abs(int(amount.replace(",", "")) - fact["expected_cost"]) < 1 and currency == CURRENCY, (lines[0], fact)
    cost = f"{amount} {currency}"

    wo = page.locator(f".st-key-wo-{work_order_id}")
    cited = wo.locator("[data-testid='stTable'] tr", has_text="whatif:choice")
    expect(cited).to_contain_text(f"{risk} risk of failing")
    expect(cited).to_contain_text(f"expected cost {cost}")
    details = wo.get_by_text("Other details")
    details.click()  # the body beyond the recommendation, its description among it
    line_shown = wo.locator("[data-testid='stJson']").get_by_text(re.compile(rf"What-if: .*{risk} risk of failing"))
    expect(line_shown).to_be_visible()
    line_shown.scroll_into_view_if_needed()
    shot(page, "e2e-eng-2-work-order-whatif")
    details.click()  # closed again: the draft's decision forms come back into view


def _whatif_on_asset_page(browser: Any, demo: RunningDemo) -> None:
    """P-101's What-if tab, in a second window reached from its card: the recommendation, the futures
    of the analog library of the model the demo's agent predicts with, the cost/risk table of the four
    options, a fan chart each; nothing fetched from outside this machine."""
    from playwright.sync_api import expect

    asset = next(a for a in default_plant() if a.asset_id == "P-101")
    with Store(demo.store_url) as store:
        rul = from_store(store, "P-101", asset=asset, time_scale=ACCELERATION).rul
    assert rul is not None
    assert find_library(rul.model, [demo.registry]) is not None, f"no analog library of {rul.model} in the registry"
    requests: list[str] = []
    page = _page(browser, requests)
    sign_in(page, demo.url, "engineer", "engineer")
    page.locator(".st-key-asset-card-P-101").get_by_role("link", name="Details").click()
    expect(page.get_by_role("heading", name="P-101 · Feed pump 101")).to_be_visible()
    page.get_by_role("tab", name="What-if").click()
    # hundreds of futures from 500 stored windows, beside the plant and the retraining in the background
    rec = page.locator("[data-testid='stAlertContainer']").get_by_text(re.compile(r"^Recommended: "))
    expect(rec).to_be_visible(timeout=90_000)
    expect(rec).to_contain_text(re.compile(rf"expected cost [\d,]+ {CURRENCY}\.$"))
    expect(page.get_by_text(re.compile(rf"Decision state ({'|'.join(DEVELOPING)})\.$"))).to_be_visible()
    futures = re.compile(rf"^\d+ simulated futures from the analog library of {re.escape(rul.model)}: ")
    expect(page.get_by_text(futures)).to_be_visible()
    rows = page.locator("[data-testid='stTable']", has_text=f"Expected cost ({CURRENCY})").locator("tbody tr")
    expect(rows).to_have_count(len(OPTION_LABELS))
    for label in OPTION_LABELS.values():
        expect(rows.filter(has_text=label)).to_have_count(1)
        fan = page.locator(".js-plotly-plot", has_text=f"Health index · {label}")
        expect(fan).to_be_visible()
        expect(fan).to_contain_text("25–75 % of futures")
    shot(page, "e2e-eng-3-asset-whatif")
    _developing(demo)  # all of it shown before P-101 stopped
    demo.mark("what-if shown")
    page.close()
    _only_loopback(requests)


def test_engineer_approves_the_prescription_retrains_and_promotes(demo: RunningDemo, browser: Any, datasets: Path) -> None:
    from playwright.sync_api import expect

    page = _page(browser)
    sign_in(page, demo.url, "engineer", "engineer")
    _live_plant(page, demo)

    # Retrain first: it runs in the background while the engineer reviews the work order.
    page.get_by_role("link", name="Models").click()
    expect(page.get_by_role("heading", name="cmapss-FD001")).to_be_visible()  # the shipped models, copied in
    shipped = [v.version for v in ModelRegistry(demo.registry).list("cmapss-FD001")]
    assert shipped, "the shipped FD001 versions are copied in"
    promoted = ModelRegistry(demo.registry).promoted("cmapss-FD001").version
    new, count = f"v{int(shipped[-1][1:]) + 1}", len(shipped) + 1  # the next number after the newest, gaps or not
    form = page.locator("[data-testid='stForm']", has_text="Start training")
    folder = form.get_by_role("textbox", name="Dataset folder (C-MAPSS layout)")
    expect(folder).to_have_value(str((datasets / "cmapss").resolve()))
    form.get_by_role("spinbutton", name="Max epochs").fill("1")
    form.get_by_role("button", name="Start training").click()
    progress = page.get_by_text(re.compile(r"epoch 1/1 · batch \d+/\d+"))
    expect(progress).to_be_visible(timeout=90_000)  # imports torch and loads the data first
    shot(page, "e2e-eng-1-models-training")

    work_order = demo.first(
        "first work order", lambda s: queries.work_orders(s, statuses=("draft",), asset_id="P-101"), "created_at"
    )
    page.get_by_role("link", name="Prescriptions & work orders").click()
    wo = page.locator(f".st-key-wo-{work_order.id}")
    expect(wo.get_by_role("button", name="Approve")).to_be_visible()
    _whatif_in_work_order(page, demo, work_order.id)  # while P-101's fault develops
    wo.get_by_role("textbox", name="Note (optional)").fill("bearing in stores, fit at the next stop")
    shot(page, "e2e-eng-2-work-order-draft")
    wo.get_by_role("button", name="Approve").click()
    with Store(demo.store_url) as store:
        wait_for(lambda: getattr(queries.work_order(store, work_order.id), "status", None) == "approved", 20, "the approval")
        approved = queries.work_order(store, work_order.id)
    assert approved is not None and approved.updated_by == "engineer"
    assert approved.history[-1]["note"] == "bearing in stores, fit at the next stop"
    idle(page)  # the approval reruns the page; a click during that rerun is lost

    _whatif_on_asset_page(browser, demo)  # the engineer weighs when to repair on the asset's what-if

    page.get_by_role("link", name="Models").click()
    registered = re.compile(rf"Registered cmapss-FD001 {new} · validation RMSE \d+\.\d\d")
    expect(page.get_by_text(registered)).to_be_visible(timeout=150_000)
    demo.mark("retrain done")
    expect(page.get_by_text(f"cmapss-FD001: {count} version(s) · promoted: {promoted}")).to_be_visible()
    page.get_by_text("Compare versions and read their cards").first.click()
    expect(page.get_by_text(f"Card {new}").first).to_be_visible()
    shot(page, "e2e-eng-4-models-compare")
    page.locator(".st-key-promote-cmapss-FD001 button").click()  # the picker defaults to the newest version
    wait_for(lambda: ModelRegistry(demo.registry).promoted("cmapss-FD001").version == new, 20, "the promotion")
    expect(page.get_by_text(f"cmapss-FD001: {count} version(s) · promoted: {new}")).to_be_visible()
    shot(page, "e2e-eng-5-models-promoted")
    idle(page)
    page.locator(".st-key-rollback-cmapss-FD001 button").click()
    wait_for(lambda: ModelRegistry(demo.registry).promoted("cmapss-FD001").version == promoted, 20, "the roll-back")
    expect(page.get_by_text(f"cmapss-FD001: {count} version(s) · promoted: {promoted}")).to_be_visible()
    page.close()


def test_operator_watches_the_plant_and_acknowledges_an_alarm(demo: RunningDemo, browser: Any) -> None:
    from playwright.sync_api import expect

    page = _page(browser)
    sign_in(page, demo.url, "operator", "operator")
    _live_plant(page, demo)
    shot(page, "e2e-op-1-overview")

    page.reload()  # a reload opens a new Streamlit session: the signed session cookie signs in again
    expect(page.get_by_role("heading", name="Plant overview")).to_be_visible()
    expect(page.get_by_text("Signed in as operator")).to_be_visible()
    expect(page.get_by_role("link", name="Models")).to_have_count(0)  # no engineering pages for operators

    page.locator(".st-key-asset-card-P-101").get_by_role("link", name="Details").click()
    expect(page.get_by_role("heading", name="P-101 · Feed pump 101")).to_be_visible()
    expect(page.locator(".js-plotly-plot", has_text="Vibration RMS")).to_be_visible()
    page.get_by_role("tab", name="Spectrum").click()
    idle(page)
    page.get_by_role("button", name="Request raw snapshot").click()  # ask the edge agent for raw vibration over MQTT
    expect(page.get_by_text("Raw snapshot of P-101 received")).to_be_visible()  # the requested one, through ingest
    page.mouse.move(0, 0)
    spectrum = page.locator(".js-plotly-plot", has_text="Envelope spectrum")
    expect(spectrum).to_be_visible()
    expect(spectrum).to_contain_text("BPFO")
    expect(page.locator(".js-plotly-plot", has_text="Spectrum · vib_de")).to_be_visible()
    shot(page, "e2e-op-2-asset-spectrum")

    alarm = demo.first("first alarm", lambda s: queries.alarms(s, states=("active",), asset_id="P-101"), "raised_at")
    page.get_by_role("link", name="Alarms").click()
    ack = page.locator(f".st-key-ack-{alarm.id} button")
    expect(ack).to_be_visible()
    shot(page, "e2e-op-3-alarms-before-ack")
    ack.click()
    with Store(demo.store_url) as store:
        wait_for(lambda: getattr(queries.alarm(store, alarm.id), "state", None) == "acknowledged", 20, "the ack")
        acked = queries.alarm(store, alarm.id)
    assert acked is not None and acked.acked_by == "operator"
    expect(page.get_by_role("tab", name=re.compile(r"Acknowledged \([1-9]"))).to_be_visible()
    shot(page, "e2e-op-4-alarms-after-ack")

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    page.reload()  # signing out deleted the session cookie
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    expect(page.get_by_role("heading", name="Plant overview")).to_have_count(0)
    page.close()


def test_p101_escalates_healthy_plan_urgent_stop_now_and_the_alarm_priority_follows(demo: RunningDemo,
                                                                                     browser: Any) -> None:
    from playwright.sync_api import expect

    def reached_stop_now() -> bool:
        return any(s.work_order == "stop_now" and s.rul_alarm == "critical" for s in demo.timeline)

    wait_for(reached_stop_now, 240, "P-101's stop-now work order and critical RUL alarm")
    demo.mark("P-101 stop now")
    timeline = list(demo.timeline)
    judged = [s for s in timeline if s.decision is not None]
    assert judged and judged[0].decision == "healthy" and judged[0].work_order is None, judged[:3]
    # the work orders follow the escalation in order, one state each, never back
    states = [s.work_order for s in timeline if s.work_order is not None]
    assert [st for i, st in enumerate(states) if i == 0 or st != states[i - 1]] == ["plan", "urgent", "stop_now"]
    # while each work order was the newest, its RUL alarm showed the matching priority
    for state in ("plan", "urgent", "stop_now"):
        assert any(s.work_order == state and s.rul_alarm == ALARM_SEVERITY_OF_STATE[state] for s in timeline), state
    with Store(demo.store_url) as store:
        for healthy in ("M-101", "P-201"):  # no fault injected: never a work order
            assert not queries.work_orders(store, asset_id=healthy), healthy

        requests: list[str] = []
        page = _page(browser, requests)
        sign_in(page, demo.url, "operator", "operator")
        page.get_by_role("link", name="Alarms").click()
        idle(page)
        # an alarm stored after the page was drawn shows up without a reload
        new = actions.raise_alarm(store, "M-101", "manual_check", "low", "Operator round: unusual noise reported.")
        expect(page.get_by_text("Operator round: unusual noise reported.").first).to_be_visible(timeout=20_000)
        shot(page, "e2e-op-5-alarms-live")
        actions.clear_alarm(store, new.id)
        for link in ("Prescriptions & work orders", "Plant overview"):
            page.get_by_role("link", name=link).click()
            idle(page)
        page.close()
    _only_loopback(requests)
