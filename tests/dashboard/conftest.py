"""Fixtures of the dashboard tests: a seeded store and the environment the app reads it from."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dashboard._seed import Seeded, seed


@pytest.fixture(scope="session")
def seeded(tmp_path_factory: pytest.TempPathFactory) -> Seeded:
    """One store of simulator data shared by the read-mostly page tests."""
    return seed(tmp_path_factory.mktemp("dashboard"))


@pytest.fixture
def app_env(seeded: Seeded, monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> Iterator[Seeded]:
    """Point the app (``Settings.load``) at the seeded store, users and registry, with sign-in
    state (session key, sessions, failed sign-ins) of its own per test."""
    import streamlit as st

    for key, value in seeded.env().items():
        monkeypatch.setenv(key, value)
    monkeypatch.setenv("GENEDGE_DASHBOARD__STATE_DIR", str(tmp_path / "dashboard-state"))
    from dashboard._context import _load_settings

    st.cache_data.clear()  # loaders live for seconds; tests change the store faster than that
    _load_settings.clear()  # the server loads its settings once; each test sets its own environment
    yield seeded


@pytest.fixture(scope="module")
def browser() -> Iterator[object]:
    """One headless Chromium (the Debian package, no browser download) per browser-test module.

    Module scope: Playwright's sync API drives an asyncio loop in this thread while it is open,
    so it must be closed before other packages' tests call ``asyncio.run``.
    """
    from playwright.sync_api import expect, sync_playwright

    from tests.dashboard._browser import CHROMIUM, CHROMIUM_ARGS, TIMEOUT_MS

    expect.set_options(timeout=TIMEOUT_MS)
    try:
        with sync_playwright() as p:
            b = p.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
            yield b
            b.close()
    finally:
        # Playwright's sync API leaves its finished loop registered as this thread's running loop;
        # without this every later asyncio.run() in the session fails ("cannot be called from a
        # running event loop").
        asyncio.events._set_running_loop(None)


@pytest.fixture
def empty_registry(tmp_path: Path, monkeypatch: pytest.MonkeyPatch, app_env: Seeded) -> Path:
    from dashboard._context import _load_settings

    monkeypatch.setenv("GENEDGE_MODELS__REGISTRY_DIR", str(tmp_path / "no-registry"))
    _load_settings.clear()
    return tmp_path / "no-registry"
