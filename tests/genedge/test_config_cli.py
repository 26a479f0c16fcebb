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
