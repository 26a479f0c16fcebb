"""The dashboard served over HTTPS from ``dashboard.tls_cert_file`` / ``tls_key_file`` (a real Streamlit server)."""

from __future__ import annotations

import ssl
import subprocess
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from dashboard.launch import dashboard_url, start_dashboard, stop_dashboard, wait_ready
from genedge.localservices import free_port
from tests.dashboard._seed import Seeded


def _self_signed(tmp_path: Path) -> tuple[Path, Path]:
    cert, key = tmp_path / "dashboard.crt", tmp_path / "dashboard.key"
    subprocess.run(["openssl", "req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes",
                    "-keyout", str(key), "-out", str(cert), "-days", "1", "-subj", "/CN=127.0.0.1",
                    "-addext", "subjectAltName=IP:127.0.0.1"], check=True, capture_output=True, timeout=60)
    return cert, key


def test_dashboard_serves_https_with_the_configured_certificate(app_env: Seeded, tmp_path: Path) -> None:
    cert, key = _self_signed(tmp_path)
    port = free_port()
    url = dashboard_url("127.0.0.1", port, tls=True)
    assert url == f"https://127.0.0.1:{port}"
    with (tmp_path / "streamlit.log").open("wb") as log:
        proc = start_dashboard(None, "127.0.0.1", port, app_env.env(), log=log, tls_cert_file=cert, tls_key_file=key)
        try:
            wait_ready(url, 60, proc=proc)
            verified = ssl.create_default_context(cafile=str(cert))  # a client that trusts this certificate
            with urllib.request.urlopen(f"{url}/_stcore/health", timeout=10, context=verified) as resp:
                assert resp.status == 200 and resp.read() == b"ok"
            with pytest.raises((urllib.error.URLError, ConnectionError)):  # no plain HTTP on the same port
                urllib.request.urlopen(f"http://127.0.0.1:{port}/_stcore/health", timeout=10).read()
        finally:
            stop_dashboard(proc)


def test_certificate_without_key_is_refused() -> None:
    with pytest.raises(ValueError, match="tls_cert_file and tls_key_file come together"):
        start_dashboard(None, "127.0.0.1", free_port(), {}, tls_cert_file=Path("x.crt"))
