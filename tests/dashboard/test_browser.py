"""The analysis charts in real headless Chromium, on a seeded store kept live by a feeder thread.

The end-to-end workflows (sign-in, acknowledge, approve, promote, retrain) run against a real
``genedge demo`` in ``test_e2e_demo.py``; this module covers what the demo does not produce in
its first minutes and must look right in a browser: the RUL history with its interval band and
the spectra of a developed outer-race fault with defect-frequency markers. It also checks what
only a browser shows: every request stays on the loopback address (plants are often air-gapped),
no page logs a traceback on the server, the work-order list refreshes by itself, and a phone's
first screen reaches the asset cards.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

import pytest

from dashboard.launch import start_dashboard, stop_dashboard, wait_ready
from genedge.localservices import free_port
from ingest.store import Store, actions
from tests.dashboard._browser import TIMEOUT_MS, VIEWPORT, idle, loopback_url, shot, sign_in, wait_for
from tests.dashboard._seed import PASSWORDS, Seeded, feed, seed

pytestmark = pytest.mark.browser

#: A phone held upright (CSS pixels).
PHONE = {"width": 390, "height": 844}


class Live(NamedTuple):
    """The dashboard under test: its address, its store, and its server log."""

    url: str
    seeded: Seeded
    log: Path


@pytest.fixture(scope="module")
def live(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Live]:
    """A seeded store kept live by a feeder thread, and the dashboard serving it (its log in ``log``)."""
    work = tmp_path_factory.mktemp("browser")
    seeded = seed(work)
    stop = threading.Event()
    feeder = threading.Thread(target=feed, args=(seeded, stop), name="feeder", daemon=True)
    feeder.start()
    port = free_port()
    with (work / "streamlit.log").open("wb") as log:
        env = {**seeded.env(), "GENEDGE_DASHBOARD__STATE_DIR": str(work / "dashboard-state")}
        proc = start_dashboard(None, "127.0.0.1", port, env, log=log)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, 60, proc=proc)
            yield Live(url, seeded, work / "streamlit.log")
        finally:
            stop.set()
            stop_dashboard(proc)
            feeder.join(10)


def test_asset_trends_rul_and_spectra(live: Live, browser: object) -> None:
    from playwright.sync_api import expect

    url = live.url
    page = browser.new_page(viewport=VIEWPORT)  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT_MS)
    sign_in(page, url, "olga", PASSWORDS["olga"])

    p101 = page.locator(".st-key-asset-card-P-101")
    expect(p101).to_contain_text(re.compile(r"\d\.\d{3} g"))
    before = p101.inner_text()
    wait_for(lambda: p101.inner_text() != before, what="the overview refreshing")  # the feeder writes
    expect(p101).to_contain_text("ACTIVE · high")
    expect(p101).to_contain_text(re.compile(r"RUL\s*\d+\s*h"))
    shot(page, "seeded-01-overview")

    p101.get_by_role("link", name="Details").click()
    expect(page.get_by_role("heading", name="P-101 · Feed pump 101")).to_be_visible()
    expect(page.locator(".js-plotly-plot", has_text="Vibration RMS")).to_be_visible()
    expect(page.locator(".js-plotly-plot", has_text="Envelope amplitude")).to_be_visible()
    expect(page.locator(".js-plotly-plot", has_text="adaptive threshold")).to_be_visible()
    shot(page, "seeded-02-asset-trends")
    page.get_by_role("tab", name="RUL").click()
    rul = page.locator(".js-plotly-plot", has_text="Remaining useful life")
    expect(rul).to_be_visible()
    expect(rul).to_contain_text("90% interval")
    expect(page.get_by_text(re.compile(r"Model fixture-truth v1 · latest \d+ h"))).to_be_visible()
    shot(page, "seeded-03-asset-rul")
    page.get_by_role("tab", name="Spectrum").click()
    envelope = page.locator(".js-plotly-plot", has_text="Envelope spectrum")
    expect(envelope).to_be_visible()
    expect(envelope).to_contain_text("BPFO")
    expect(page.get_by_text(re.compile(r"Raw snapshot received .* 8 batch\(es\)"))).to_be_visible()
    shot(page, "seeded-04-asset-spectrum")
    page.close()


def test_a_cookie_copied_before_sign_out_is_refused_after_it(live: Live, browser: object) -> None:
    """Real cookies in a real browser: the token signs in again after a reload, and not after sign-out."""
    from playwright.sync_api import expect

    url = live.url
    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    sign_in(page, url, "eve", PASSWORDS["eve"])
    wait_for(lambda: any(c["name"] == "genedge_session" for c in context.cookies()), what="the session cookie")
    (cookie,) = [c for c in context.cookies() if c["name"] == "genedge_session"]
    assert cookie["sameSite"] == "Strict" and not cookie["secure"]  # plain HTTP here: Secure needs HTTPS
    assert "eve" not in cookie["value"] and "engineer" not in cookie["value"]  # opaque
    page.reload()
    expect(page.get_by_text("Signed in as eve")).to_be_visible()

    thief = browser.new_context(viewport=VIEWPORT)  # type: ignore[attr-defined]
    thief.add_cookies([{k: cookie[k] for k in ("name", "value", "domain", "path")}])
    stolen = thief.new_page()
    stolen.goto(url)
    expect(stolen.get_by_text("Signed in as eve")).to_be_visible(timeout=TIMEOUT_MS)  # a live token works

    page.get_by_role("button", name="Sign out").click()
    expect(page.get_by_role("button", name="Sign in")).to_be_visible()
    stolen.goto(url)  # a new Streamlit session presenting the copied cookie
    expect(stolen.get_by_role("button", name="Sign in")).to_be_visible(timeout=TIMEOUT_MS)
    expect(stolen.get_by_text("Signed in as eve")).to_have_count(0)
    thief.close()
    context.close()


def test_no_request_leaves_loopback_and_no_page_logs_a_traceback(live: Live, browser: object) -> None:
    """Every page an engineer can open, in a browser: all it loads comes from the dashboard itself
    (the tab icon included), and the server logs no traceback (e.g. Arrow refusing a table)."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport=VIEWPORT)  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    urls: list[str] = []
    page.on("request", lambda request: urls.append(request.url))
    page.on("websocket", lambda ws: urls.append(ws.url))
    sign_in(page, live.url, "eve", PASSWORDS["eve"])
    idle(page)
    for title in ("Asset detail", "Alarms", "Prescriptions & work orders", "Data quality", "Models",
                  "Synthetic data"):
        page.get_by_role("link", name=title, exact=True).click()
        expect(page.get_by_role("heading", level=1)).not_to_have_text("Plant overview")
        idle(page)
        if title == "Models":
            page.get_by_text("Compare versions and read their cards").first.click()
            idle(page)
    page.get_by_role("link", name="Plant overview", exact=True).click()
    idle(page)
    assert urls and any("/_stcore/" in u for u in urls)
    assert [u for u in urls if not loopback_url(u)] == []
    favicon = page.locator("link[rel='shortcut icon']").get_attribute("href") or ""
    assert favicon.startswith("data:image/svg+xml")
    context.close()
    log = live.log.read_text(encoding="utf-8", errors="replace")
    assert "Traceback" not in log, log[-4000:]
    assert "Arrow" not in log, log[-4000:]


def test_a_phone_reaches_the_asset_cards_on_its_first_screen(live: Live, browser: object) -> None:
    """At 390 px wide the alarm strip, title and counters stay compact: the first card starts on screen."""
    from playwright.sync_api import expect

    context = browser.new_context(viewport=PHONE, is_mobile=True, has_touch=True)  # type: ignore[attr-defined]
    page = context.new_page()
    page.set_default_timeout(TIMEOUT_MS)
    sign_in(page, live.url, "olga", PASSWORDS["olga"])
    first = page.locator("[class*='st-key-asset-card-']").first
    expect(first).to_be_visible()
    expect(page.get_by_text(re.compile(r"\d+ unacknowledged alarm"))).to_be_visible()
    idle(page)
    box = first.bounding_box()
    assert box is not None
    # Its name, decision state and first values (about 120 px) show without scrolling.
    assert box["y"] + 120 <= PHONE["height"], box
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"] + 1  # nothing sideways
    shot(page, "seeded-05-phone-overview")
    context.close()


def test_work_orders_refresh_by_themselves(live: Live, browser: object) -> None:
    """A work order drafted while the page is open shows without a reload."""
    from playwright.sync_api import expect

    page = browser.new_page(viewport=VIEWPORT)  # type: ignore[attr-defined]
    page.set_default_timeout(TIMEOUT_MS)
    sign_in(page, live.url, "eve", PASSWORDS["eve"])
    page.get_by_role("link", name="Prescriptions & work orders", exact=True).click()
    expect(page.get_by_role("heading", name="Prescriptions & work orders")).to_be_visible()
    idle(page)
    store = Store(live.seeded.url)
    try:
        wo = actions.create_work_order(store, "M-202", "Browser test: drafted while the page is open",
                                       by="prescriber", body={"recommendation": "Check the coupling."})
        expect(page.locator(f".st-key-wo-{wo.id}")).to_be_visible(timeout=15_000)
        expect(page.locator(f".st-key-wo-{wo.id}")).to_contain_text("Check the coupling.")
        actions.reject_work_order(store, wo.id, "eve", "browser test cleanup")
        expect(page.locator(f".st-key-wo-{wo.id}")).to_have_count(0, timeout=15_000)
    finally:
        store.close()
        page.close()
