"""``genedge config show``: the effective settings, edge options included, and the deprecated ``--agent-config``."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from genedge.cli import app

runner = CliRunner()


def test_config_show_prints_the_edge_options(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "settings.toml"
    cfg.write_text('[mqtt]\npassword = "s3cret"\n[edge.source]\nkind = "modbus"\nendpoint = "10.0.0.17:502"\n')
    monkeypatch.setenv("GENEDGE_EDGE__RUL_EVERY", "3")
    out = runner.invoke(app, ["config", "show", "--config", str(cfg)])
    assert out.exit_code == 0, out.output
    shown = json.loads(out.stdout)
    assert shown["edge"]["source"] == {**shown["edge"]["source"], "kind": "modbus", "endpoint": "10.0.0.17:502"}
    assert shown["edge"]["rul_every"] == 3 and "health" in shown["edge"] and "plc" in shown["edge"]
    assert "s3cret" not in out.stdout


def test_agent_config_is_a_deprecated_alias_of_edge(tmp_path: Path) -> None:
    old = tmp_path / "agent.toml"
    old.write_text('rul_every = 7\n[source]\nkind = "cmapss"\n[health]\nwarmup_windows = 10\n')
    out = runner.invoke(app, ["config", "show", "--agent-config", str(old)])
    assert out.exit_code == 0, out.output
    assert "--agent-config is deprecated" in out.stderr and len(out.stderr.strip().splitlines()) == 1
    edge = json.loads(out.stdout)["edge"]
    assert (edge["rul_every"], edge["source"]["kind"], edge["health"]["warmup_windows"]) == (7, "cmapss", 10)


def test_config_show_masks_every_secret_user_hashes_included(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """The real CLI output, with dashboard users, a session secret and every credential configured."""
    from dashboard.auth import hash_password

    eve_hash = hash_password("engineer-pw")
    secret = "session-secret-0123456789abcdef-xyz"
    cfg = tmp_path / "settings.toml"
    cfg.write_text(
        '[mqtt]\nusername = "agent"\npassword = "mqtt-s3cret"\n'
        '[store]\nurl = "postgresql+psycopg://genedge:db-s3cret@db.plant/genedge"\n'
        '[llm]\nopenai_url = "http://llm.plant:8080"\nopenai_key = "sk-llm-s3cret"\n'
        f'[dashboard]\nsession_secret = "{secret}"\n'
        f'[dashboard.users.eve]\nrole = "engineer"\npassword_hash = "{eve_hash}"\n'
    )
    out = runner.invoke(app, ["config", "show", "--config", str(cfg)])
    assert out.exit_code == 0, out.output
    for value in ("mqtt-s3cret", "db-s3cret", "sk-llm-s3cret", secret, eve_hash, eve_hash.split("$")[-1],
                  eve_hash.split("$")[-2]):
        assert value not in out.stdout
    shown = json.loads(out.stdout)
    assert shown["dashboard"]["users"] == {"eve": {"role": "engineer", "password_hash": "**********"}}
    assert shown["dashboard"]["session_secret"] == "**********" and shown["mqtt"]["username"] == "agent"


@pytest.mark.parametrize(
    ("setup", "expected"),
    [
        ({"env": {"GENEDGE_STORE__URL": "postgres://genedge:db-s3cret@db.plant/genedge"}}, "store.url"),
        ({"env": {"GENEDGE_DASHBOARD__USERS": '{"eve": {"password_hash": "db-s3cret"'}},
         "a GENEDGE_DASHBOARD__* environment variable is not valid JSON"),
        ({"env": {"GENEDGE_MQTT__PORT": "db-s3cret"}}, "mqtt.port"),
        ({"env": {"GENEDGE_DASHBOARD__SESSION_SECRET": "db-s3cret"}}, "dashboard.session_secret"),
        ({"toml": '[store]\nurl = "db-s3cret://x"\n'}, "store.url"),
        ({"toml": '[mqtt]\npassword = "db-s3cret\n'}, "not valid TOML"),
        ({"toml": '[mqttt]\npassword = "db-s3cret"\n'}, "mqttt: Extra inputs are not permitted"),
    ],
)
def test_configuration_errors_show_no_secret_value(setup: dict[str, object], expected: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Every way a configuration can be wrong, through the real console script: the message names
    the setting and never shows the value (a password, a database URL)."""
    import os
    import subprocess
    import sys

    env = {**os.environ, **setup.get("env", {})}  # type: ignore[dict-item]
    args = [sys.executable, "-m", "genedge.cli", "config", "show"]
    if "toml" in setup:
        cfg = tmp_path / "settings.toml"
        cfg.write_text(str(setup["toml"]))
        args += ["--config", str(cfg)]
    out = subprocess.run(args, capture_output=True, text=True, env=env, timeout=120, check=False)
    assert out.returncode == 2, out.stderr[-2000:]
    assert out.stderr.startswith("error: ") and expected in out.stderr
    assert "s3cret" not in out.stderr + out.stdout and "Traceback" not in out.stderr
