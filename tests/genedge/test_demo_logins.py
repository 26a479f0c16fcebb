"""The demo's well-known logins (operator/operator, engineer/engineer) exist only on a loopback dashboard."""

from __future__ import annotations

import os
import subprocess
import sys
import time
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import Settings
from genedge.demo import check_demo_logins


@pytest.mark.parametrize("host", ["0.0.0.0", "::", "10.20.0.5", "dashboard.plant.local"])
def test_default_users_are_refused_on_an_address_others_reach(host: str) -> None:
    with pytest.raises(ConfigError, match=rf"dashboard.host is '{host}', reachable from other machines"):
        check_demo_logins(Settings.load(dashboard={"host": host}))


@pytest.mark.parametrize("host", ["127.0.0.1", "127.0.0.5", "::1", "localhost"])
def test_default_users_are_allowed_on_loopback(host: str) -> None:
    check_demo_logins(Settings.load(dashboard={"host": host}))


def test_configured_users_may_listen_anywhere() -> None:
    users = {"eve": {"role": "engineer", "password_hash": "scrypt$16384$8$1$c2FsdA$aGFzaA"}}
    check_demo_logins(Settings.load(dashboard={"host": "0.0.0.0", "users": users}))


def test_demo_on_all_interfaces_without_users_exits_before_starting_anything(tmp_path: Path) -> None:
    """The real console script: a clear message, exit status 2, nothing started (no broker, no store)."""
    env = {**os.environ, "GENEDGE_DASHBOARD__HOST": "0.0.0.0", "GENEDGE_STORE__URL": f"sqlite:///{tmp_path}/demo.db",
           "GENEDGE_MQTT__PORT": "1"}
    t0 = time.monotonic()
    out = subprocess.run([sys.executable, "-m", "genedge.cli", "demo"], capture_output=True, text=True, env=env,
                         timeout=120, check=False)
    assert out.returncode == 2, out.stderr[-2000:]
    assert "error: dashboard.host is '0.0.0.0', reachable from other machines" in out.stderr
    assert "genedge dashboard add-user NAME" in out.stderr
    assert not (tmp_path / "demo.db").exists()
    assert time.monotonic() - t0 < 60
