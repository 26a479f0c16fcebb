"""The dashboard in real headless Chromium: a running Streamlit server on a live, seeded store."""

from __future__ import annotations

import re
import threading
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from dashboard.launch import start_dashboard, stop_dashboard, wait_ready
from genedge.localservices import free_port
from ingest.store import Store, queries
from tests.dashboard._seed import PASSWORDS, Seeded, feed, seed

pytestmark = pytest.mark.browser

ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
TIMEOUT_MS = 30_000


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[str, Seeded]]:
    """A seeded store kept live by a feeder thread, and the dashboard serving it."""
    work = tmp_path_factory.mktemp("browser")
    seeded = seed(work)
    stop = threading.Event()
    feeder = threading.Thread(target=feed, args=(seeded, stop), name="feeder", daemon=True)
    feeder.start()
    port = free_port()
    with (work / "streamlit.log").open("wb") as log:
        proc = start_dashboard(None, "127.0.0.1", port, seeded.env(), log=log)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, 60, proc=proc)
            yield url, seeded
        finally:
            stop.set()
            stop_dashboard(proc)
            feeder.join(10)


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    from playwright.sync_api import expect, sync_playwright

    expect.set_options(timeout=TIMEOUT_MS)  # a shared CI machine: the first page load imports scipy
    with sync_playwright() as p:
        b = p.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
        yield b
        b.close()


def _wait_for(check: Callable[[], bool], timeout: float = 20.0) -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"condition not met within {timeout} s")


def _idle(page: object) -> None:
    """Wait until the script run is over and lazy widgets (tables, charts) have drawn."""
    busy = "[data-testid='stStatusWidget'], [data-testid='stSkeleton']"
    _wait_for(lambda: page.locator(busy).count() == 0)  # type: ignore[attr-defined]
    page.wait_for_timeout(500)  # type: ignore[attr-defined]


def _shot(page: object, name: str) -> None:
    """Screenshot once the page is idle."""
    _idle(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / f"{name}.png"), full_page=True)  # type: ignore[attr-defined]


def _sign_in(page: object, url: str, user: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)  # type: ignore[attr-defined]
    page.get_by_role("textbox", name="User").fill(user)  # type: ignore[attr-defined]
    page.get_by_role("textbox", name="Password").fill(PASSWORDS[user])  # type: ignore[attr-defined]
    page.get_by_role("button", name="Sign in").click()  # type: ignore[attr-defined]
    expect(page.get_by_role("heading", name="Plant overview")).to_be_visible(timeout=TIMEOUT_MS)  # type: ignore[attr-defined]


def test_operator_sees_the_live_plant_and_acknowledges(live: tuple[str, Seeded], browser: object) -> None:
    from playwright.sync_api import expect

    url, seeded = live
    page = browser.new_page(viewport={"width": 1500, "height": 1350})  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT_MS)
    _sign_in(page, url, "olga")

    cards = page.locator("[class*='st-key-asset-card-']")
    expect(cards.first).to_be_visible()
    _wait_for(lambda: cards.count() >= 8)
    p101 = page.locator(".st-key-asset-card-P-101")
    expect(p101).to_contain_text("Vib RMS")
    expect(p101).to_contain_text(re.compile(r"\d\.\d{3} g"))
    before = p101.inner_text()
    _wait_for(lambda: p101.inner_text() != before)  # live: the feeder writes, the fragment refreshes
    expect(p101).to_contain_text("ACTIVE · high")
    _shot(page, "01-overview-operator")

    p101.get_by_role("link", name="Details").click()
    expect(page.get_by_role("heading", name="P-101 · Feed pump 101")).to_be_visible()
    expect(page.locator(".js-plotly-plot", has_text="Vibration RMS")).to_be_visible()
    expect(page.locator(".js-plotly-plot", has_text="Envelope amplitude")).to_be_visible()
    expect(page.locator(".js-plotly-plot", has_text="adaptive threshold")).to_be_visible()
    _shot(page, "02-asset-trends")
    page.get_by_role("tab", name="RUL").click()
    expect(page.locator(".js-plotly-plot", has_text="Remaining useful life")).to_be_visible()
    _shot(page, "03-asset-rul")
    page.get_by_role("tab", name="Spectrum").click()
    envelope = page.locator(".js-plotly-plot", has_text="Envelope spectrum")
    expect(envelope).to_be_visible()
    expect(envelope).to_contain_text("BPFO")
    expect(page.get_by_text(re.compile(r"Raw snapshot received .* 8 batch\(es\)"))).to_be_visible()
    _shot(page, "04-asset-spectrum")

    _idle(page)
    page.get_by_role("link", name="Alarms").click()
    ack = page.locator(f".st-key-ack-{seeded.alarms['active']} button")
    expect(ack).to_be_visible()
    _shot(page, "05-alarms-before-ack")
    ack.click()
    with Store(seeded.url) as store:
        _wait_for(lambda: (queries.alarm(store, seeded.alarms["active"]) or _none()).state == "acknowledged")
        acked = queries.alarm(store, seeded.alarms["active"])
    assert acked is not None and acked.acked_by == "olga"
    expect(page.get_by_role("tab", name=re.compile(r"Acknowledged \(2\)"))).to_be_visible()
    _shot(page, "06-alarms-after-ack")
    page.close()


def test_engineer_approves_a_work_order(live: tuple[str, Seeded], browser: object) -> None:
    from playwright.sync_api import expect

    url, seeded = live
    page = browser.new_page(viewport={"width": 1500, "height": 1350})  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT_MS)
    _sign_in(page, url, "eve")
    expect(page.get_by_role("link", name="Models")).to_be_visible()  # engineering pages for engineers
    page.get_by_role("link", name="Prescriptions & work orders").click()
    draft = seeded.work_orders["draft"]
    form = page.locator(f".st-key-wo-{draft}")  # the work order's expander, open for drafts
    expect(form.get_by_role("button", name="Approve")).to_be_visible()
    expect(page.get_by_text("Replace the drive-end bearing at the next planned stop")).to_be_visible()
    form.get_by_role("textbox", name="Note (optional)").fill("bearing in stores, fit on Thursday")
    _shot(page, "07-work-orders-engineer")
    form.get_by_role("button", name="Approve").click()
    with Store(seeded.url) as store:
        _wait_for(lambda: (queries.work_order(store, draft) or _none()).status == "approved")
        wo = queries.work_order(store, draft)
    assert wo is not None and wo.updated_by == "eve" and wo.history[-1]["note"] == "bearing in stores, fit on Thursday"
    _idle(page)  # the approval reruns the page; a click during that rerun is lost
    page.get_by_role("link", name="Models").click()
    expect(page.get_by_role("heading", name="cmapss-FD001")).to_be_visible()
    _shot(page, "08-models-engineer")
    page.close()


def _none() -> object:
    class _Missing:
        state = status = None

    return _Missing()
