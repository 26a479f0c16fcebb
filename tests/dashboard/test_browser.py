"""The analysis charts in real headless Chromium, on a seeded store kept live by a feeder thread.

The end-to-end workflows (sign-in, acknowledge, approve, promote, retrain) run against a real
``genedge demo`` in ``test_e2e_demo.py``; this module covers what the demo does not produce in
its first minutes and must look right in a browser: the RUL history with its interval band and
the spectra of a developed outer-race fault with defect-frequency markers.
"""

from __future__ import annotations

import re
import threading
from collections.abc import Iterator

import pytest

from dashboard.launch import start_dashboard, stop_dashboard, wait_ready
from genedge.localservices import free_port
from tests.dashboard._browser import TIMEOUT_MS, VIEWPORT, shot, sign_in, wait_for
from tests.dashboard._seed import PASSWORDS, Seeded, feed, seed

pytestmark = pytest.mark.browser


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
        env = {**seeded.env(), "GENEDGE_DASHBOARD__STATE_DIR": str(work / "dashboard-state")}
        proc = start_dashboard(None, "127.0.0.1", port, env, log=log)
        try:
            url = f"http://127.0.0.1:{port}"
            wait_ready(url, 60, proc=proc)
            yield url, seeded
        finally:
            stop.set()
            stop_dashboard(proc)
            feeder.join(10)


def test_asset_trends_rul_and_spectra(live: tuple[str, Seeded], browser: object) -> None:
    from playwright.sync_api import expect

    url, _seeded = live
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


def test_a_cookie_copied_before_sign_out_is_refused_after_it(live: tuple[str, Seeded], browser: object) -> None:
    """Real cookies in a real browser: the token signs in again after a reload, and not after sign-out."""
    from playwright.sync_api import expect

    url, _seeded = live
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
