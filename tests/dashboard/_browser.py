"""Helpers of the real-browser dashboard tests (headless Chromium through Playwright)."""

from __future__ import annotations

import time
from collections.abc import Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

from core.mqtt import is_loopback_host

#: Screenshots of the browser tests (``test-artifacts/`` is ignored by git).
ARTIFACTS = Path(__file__).resolve().parents[2] / "test-artifacts" / "dashboard"
CHROMIUM = "/usr/bin/chromium"
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
#: A shared CI machine: the first page load imports scipy, training runs beside the plant.
TIMEOUT_MS = 30_000
VIEWPORT = {"width": 1500, "height": 1350}


def loopback_url(url: str) -> bool:
    """Whether the browser fetched ``url`` from this machine (or from no network at all: data:, blob:)."""
    parts = urlsplit(url)
    return parts.scheme in ("data", "blob", "about") or is_loopback_host(parts.hostname or "")


def wait_for(check: Callable[[], bool], timeout: float = 20.0, what: str = "condition") -> None:
    end = time.monotonic() + timeout
    while time.monotonic() < end:
        if check():
            return
        time.sleep(0.25)
    raise AssertionError(f"{what} not met within {timeout} s")


def idle(page: Any) -> None:
    """Wait until the script run is over and lazy widgets (tables, charts) have drawn."""
    busy = "[data-testid='stStatusWidget'], [data-testid='stSkeleton']"
    wait_for(lambda: page.locator(busy).count() == 0, 30, "page idle")
    page.wait_for_timeout(500)


def shot(page: Any, name: str) -> Path:
    """Screenshot (full page) once the page is idle; returns its path."""
    idle(page)
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    path = ARTIFACTS / f"{name}.png"
    page.screenshot(path=str(path), full_page=True)
    return path


def sign_in(page: Any, url: str, user: str, password: str) -> None:
    from playwright.sync_api import expect

    page.goto(url)
    page.get_by_role("textbox", name="User").fill(user)
    page.get_by_role("textbox", name="Password").fill(password)
    page.get_by_role("button", name="Sign in").click()
    expect(page.get_by_role("heading", name="Plant overview")).to_be_visible(timeout=TIMEOUT_MS)
