"""Start the dashboard as a Streamlit server process and wait until it answers."""

from __future__ import annotations

import os
import ssl
import subprocess
import sys
import time
import urllib.error
import urllib.request
from pathlib import Path
from typing import IO

__all__ = ["APP", "dashboard_url", "start_dashboard", "stop_dashboard", "wait_ready"]

#: The Streamlit entry script.
APP = Path(__file__).resolve().with_name("app.py")


def dashboard_url(host: str, port: int, *, tls: bool = False) -> str:
    """The address a browser opens (``https`` when the server has a TLS certificate)."""
    shown = f"[{host}]" if ":" in host else host
    return f"{'https' if tls else 'http'}://{shown}:{int(port)}"


def start_dashboard(config_file: Path | None, host: str, port: int, env: dict[str, str], *,
                    log: IO[bytes] | None = None, tls_cert_file: Path | None = None,
                    tls_key_file: Path | None = None) -> subprocess.Popen[bytes]:
    """Run ``streamlit run dashboard/app.py`` headless on ``host:port``.

    Args:
        config_file: TOML settings file passed to the app as ``--config`` (``None``: defaults).
        host: address to listen on.
        port: port to listen on.
        env: variables added to this process's environment for the server, e.g.
            ``GENEDGE_STORE__URL`` and ``GENEDGE_DASHBOARD__USERS`` (JSON).
        log: where the server's stdout and stderr go (default: inherited).
        tls_cert_file: PEM certificate: serve HTTPS (Streamlit's ``server.sslCertFile``).
        tls_key_file: PEM private key of ``tls_cert_file`` (``server.sslKeyFile``).

    Returns:
        The server process; stop it with :func:`stop_dashboard`.
    """
    cmd = [
        sys.executable, "-m", "streamlit", "run", str(APP),
        "--server.headless", "true",
        "--server.port", str(int(port)),
        "--server.address", host,
        "--browser.gatherUsageStats", "false",
        "--server.fileWatcherType", "none",  # a plant display does not hot-reload its source
        "--server.runOnSave", "false",
        "--client.toolbarMode", "viewer",
    ]
    if (tls_cert_file is None) != (tls_key_file is None):
        raise ValueError("tls_cert_file and tls_key_file come together")
    if tls_cert_file is not None and tls_key_file is not None:
        cmd += ["--server.sslCertFile", str(tls_cert_file), "--server.sslKeyFile", str(tls_key_file)]
    if config_file is not None:
        cmd += ["--", "--config", str(config_file)]
    return subprocess.Popen(cmd, env={**os.environ, **env}, stdout=log, stderr=subprocess.STDOUT if log else None)


def wait_ready(url: str, timeout: float = 60.0, *, proc: subprocess.Popen[bytes] | None = None) -> None:
    """Wait until the server at ``url`` answers its health check.

    Raises:
        TimeoutError: it did not answer within ``timeout`` seconds.
        RuntimeError: ``proc`` exited before it answered.
    """
    health = url.rstrip("/") + "/_stcore/health"
    # The readiness probe sends nothing secret and reads only "ok": a self-signed certificate is
    # accepted here (browsers still verify it).
    probe_tls = ssl._create_unverified_context() if health.startswith("https:") else None
    deadline = time.monotonic() + timeout
    last = "no answer"
    while time.monotonic() < deadline:
        if proc is not None and proc.poll() is not None:
            raise RuntimeError(f"dashboard process exited with code {proc.returncode} before {health} answered")
        try:
            with urllib.request.urlopen(health, timeout=2, context=probe_tls) as resp:
                if resp.status == 200:
                    return
                last = f"HTTP {resp.status}"
        except (urllib.error.URLError, OSError) as err:
            last = str(err)
        time.sleep(0.25)
    raise TimeoutError(f"dashboard at {url} not ready after {timeout:.0f} s (last: {last})")


def stop_dashboard(proc: subprocess.Popen[bytes], timeout: float = 10.0) -> None:
    """Terminate the server, killing it if it does not exit within ``timeout`` seconds."""
    if proc.poll() is not None:
        return
    proc.terminate()
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(timeout)
