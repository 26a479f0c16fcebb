"""`genedge demo` as a user meets it: the whole plant, the dashboard it starts, real headless Chromium.

The demo runs as a subprocess against a real Mosquitto. An operator signs in, watches the live
plant, asks P-101's edge agent for a raw snapshot and sees its spectra, then acknowledges the
anomaly alarm that ingest raises from the agent's feature frames. The demo must stop cleanly on
SIGINT. Screenshots go to ``test-artifacts/demo/``.
"""

from __future__ import annotations

import json
import os
import re
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from dashboard.launch import wait_ready
from genedge.localservices import Mosquitto, free_port
from ingest.store import Store, queries

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "demo"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 30_000
#: Two simulated hours a second, a tick every 0.25 s: the agent learns P-101's healthy baseline
#: (160 windows) before its outer-race fault starts (85 h) and flags the anomaly about 50 s in.
DEMO_ENV = {"GENEDGE_SIM__TIME_ACCELERATION": "7200", "GENEDGE_SIM__PUBLISH_INTERVAL_S": "0.25"}
#: From the demo's start: the anomaly alarm is due at about 50 s.
ALARM_WITHIN_S = 150.0


@pytest.fixture
def demo(broker: Mosquitto, tmp_path: Path) -> Iterator[dict[str, Any]]:
    """``genedge demo`` (with its dashboard) on the broker; stopped with SIGINT, which must exit 0."""
    port = free_port()
    db = f"sqlite:///{tmp_path / 'demo.db'}"
    env = {**os.environ, **DEMO_ENV, "GENEDGE_DASHBOARD__PORT": str(port)}
    out_path, err_path = tmp_path / "demo.out", tmp_path / "demo.err"
    started = time.monotonic()
    with out_path.open("w") as out, err_path.open("w") as err:
        proc = subprocess.Popen([sys.executable, "-m", "genedge", "demo", "--db", db,
                                 "--broker", f"127.0.0.1:{broker.port}"], stdout=out, stderr=err, text=True, env=env)
    info: dict[str, Any] = {"url": f"http://127.0.0.1:{port}", "db": db, "proc": proc, "started": started,
                            "stdout": out_path, "stderr": err_path}
    try:
        wait_ready(info["url"], 120, proc=proc)  # type: ignore[arg-type]
        yield info
    finally:
        if proc.poll() is None:  # the test failed before it stopped the demo
            proc.send_signal(signal.SIGINT)
            try:
                proc.wait(120)
            except subprocess.TimeoutExpired:
                proc.kill()
                proc.wait(10)


@pytest.fixture
def chromium() -> Iterator[Any]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


def _wait_for(check: Callable[[], bool], timeout: float = 30.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} not met within {timeout:.0f} s")


def _idle(page: Any) -> None:
    busy = "[data-testid='stStatusWidget'], [data-testid='stSkeleton']"
    _wait_for(lambda: page.locator(busy).count() == 0, what="page idle")
    page.wait_for_timeout(500)


def _shot(page: Any, name: str, locator: Any = None) -> None:
    page.mouse.move(0, 0)  # no tooltip over the picture
    _idle(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    if locator is not None:  # the app scrolls inside its own container: shoot the part that matters
        locator.scroll_into_view_if_needed()
        locator.screenshot(path=str(ARTIFACTS / f"{name}.png"))
    else:
        page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)


def _received_at(caption: str) -> datetime:
    found = re.search(r"Raw snapshot received (\d{4}-\d\d-\d\d \d\d:\d\d:\d\d) UTC", caption)
    assert found, caption
    return datetime.strptime(found.group(1), "%Y-%m-%d %H:%M:%S").replace(tzinfo=UTC)


def _sign_in_and_watch_the_plant(page: Any, url: str) -> Any:
    """Sign in as the demo operator; >= 6 asset cards with values from the agent's features, changing."""
    from playwright.sync_api import expect

    page.goto(url)
    page.get_by_role("textbox", name="User").fill("operator")
    page.get_by_role("textbox", name="Password").fill("operator")
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Plant overview")).to_be_visible()
    cards = page.locator("[class*='st-key-asset-card-']")
    _wait_for(lambda: cards.count() >= 6, what=">= 6 asset cards")
    p101 = page.locator(".st-key-asset-card-P-101")
    expect(p101).to_contain_text(re.compile(r"Vib RMS\s*\d\.\d{3}\s*g"))
    expect(p101).to_contain_text(re.compile(r"Temp\s*\d+\.\d\s*°C"))
    expect(p101).to_contain_text(re.compile(r"Health\s*[01]\.\d\d"))
    with_values = [c for c in cards.all() if re.search(r"Vib RMS\s*\d\.\d{3}", c.inner_text())]
    assert len(with_values) >= 6
    before = {c.get_attribute("class"): c.inner_text() for c in with_values}
    _wait_for(lambda: sum(c.inner_text() != before[c.get_attribute("class")] for c in with_values) >= 6,
              what="values of >= 6 assets changing")
    _shot(page, "01-overview")
    return p101


def _request_a_snapshot_and_see_its_spectra(page: Any, db: str) -> None:
    """On P-101's spectrum tab: the button publishes the command, the agent answers, the spectra show."""
    from playwright.sync_api import expect

    expect(page.get_by_role("heading", name="P-101 · Feed pump 101")).to_be_visible()
    page.get_by_role("tab", name="Spectrum").click()
    _idle(page)
    clicked = datetime.now(UTC).replace(microsecond=0)
    page.get_by_role("button", name="Request raw snapshot").click()
    expect(page.get_by_text("Snapshot requested from the edge agent on genedge/v1/plant1/P-101/cmd")).to_be_visible()
    caption = page.get_by_text(re.compile(r"Raw snapshot received"))
    _wait_for(lambda: caption.count() == 1 and _received_at(caption.inner_text()) >= clicked, 45,
              "a snapshot received after the request")
    envelope = page.locator(".js-plotly-plot", has_text="Envelope spectrum")
    expect(envelope).to_be_visible()
    expect(envelope).to_contain_text("BPFO")
    expect(page.locator(".js-plotly-plot", has_text="Spectrum · vib_de")).to_be_visible()
    with Store(db) as store:
        snap = queries.latest_snapshot(store, "P-101", "vib_de")
    assert snap is not None and snap.received_at >= clicked and len(snap.batches) >= 1
    _shot(page, "02-asset-spectrum")


def _acknowledge_the_alarm(page: Any, db: str, started: float) -> None:
    """The anomaly alarm ingest raises from the agent's ``health.alarm``, acknowledged by the operator."""
    from playwright.sync_api import expect

    with Store(db) as store:
        remaining = ALARM_WITHIN_S - (time.monotonic() - started)
        _wait_for(lambda: bool(queries.alarms(store, states=("active",))), max(remaining, 5.0),
                  "an active alarm from the live demo")
        alarm = queries.alarms(store, states=("active",))[0]
    _idle(page)
    page.get_by_role("link", name="Alarms").click()
    ack = page.locator(f".st-key-ack-{alarm.id} button")
    expect(ack).to_be_visible()
    expect(page.locator(f".st-key-alarm-{alarm.id}")).to_contain_text(alarm.asset_id)
    _shot(page, "05-alarms-before-ack")
    ack.click()
    with Store(db) as store:
        _wait_for(lambda: getattr(queries.alarm(store, alarm.id), "acked_by", None) == "operator",
                  what="the alarm acknowledged by operator")
    expect(page.get_by_text(f"Alarm {alarm.id} on {alarm.asset_id} acknowledged by operator")).to_be_visible()
    _shot(page, "06-alarms-after-ack")


def test_operator_runs_the_demo_in_a_browser(demo: dict[str, Any], chromium: Any) -> None:
    from playwright.sync_api import expect

    page = chromium.new_page(viewport={"width": 1500, "height": 1350})
    page.set_default_timeout(TIMEOUT_MS)
    p101 = _sign_in_and_watch_the_plant(page, demo["url"])
    p101.get_by_role("link", name="Details").click()
    _request_a_snapshot_and_see_its_spectra(page, demo["db"])

    page.get_by_role("tab", name="Trends").click()
    expect(page.locator(".js-plotly-plot", has_text="Vibration RMS")).to_be_visible()
    env_trend = page.locator(".js-plotly-plot", has_text="Envelope amplitude")
    expect(env_trend).to_be_visible()
    _shot(page, "03-asset-trends")
    _shot(page, "04-asset-envelope-trend", env_trend)

    _acknowledge_the_alarm(page, demo["db"], demo["started"])
    page.close()

    proc: subprocess.Popen[str] = demo["proc"]
    proc.send_signal(signal.SIGINT)
    assert proc.wait(120) == 0, demo["stderr"].read_text()[-3000:]
    summary = json.loads(demo["stdout"].read_text().strip().splitlines()[-1])
    assert summary["stored"] == summary["published"] > 0 and summary["duplicates"] == 0, summary
