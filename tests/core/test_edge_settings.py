"""The edge agent's options in the one Settings: ``[edge.*]`` TOML sections, environment, errors, the old file."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.edge_config import HealthConfig, PlcTarget, SourceConfig
from core.errors import ConfigError
from core.settings import EdgeSettings, Settings

SETTINGS_TOML = """
[mqtt]
password = "s3cret"

[edge]
agent_id = "gw-7"
rul_model = "/opt/genedge/registry/sim-bearing"
rul_every = 20
status_interval_s = 5.0

[edge.source]
kind = "opcua"
endpoint = "opc.tcp://plc1.plant.local:4840"

[[edge.source.opcua_tags]]
node_id = "ns=2;s=P101.BearingTemp"
asset_id = "P-101"
channel = "temp_de"

[edge.health]
warmup_windows = 10
baseline_windows = 30

[edge.features]
envelope = false

[edge.plc]
modbus_endpoint = "10.0.0.17:502"

[[edge.plc.targets]]
asset_id = "P-101"
modbus_registers = { health_index = 400, alarm_bits = 403 }
"""

#: The layout of the deprecated ``--agent-config`` file: the edge options at the top level.
OLD_AGENT_TOML = """
rul_model = "/opt/genedge/registry/cmapss-FD001"
rul_every = 7

[source]
kind = "cmapss"
paths = ["/data/train_FD001.txt"]
units = [3]

[[plc.targets]]
asset_id = "engine-fd001-003"
modbus_registers = { rul_cycles = 500 }
"""


@pytest.fixture
def settings_file(tmp_path: Path) -> Path:
    path = tmp_path / "settings.toml"
    path.write_text(SETTINGS_TOML)
    return path


def test_defaults_are_the_agent_defaults() -> None:
    edge = Settings.load().edge
    assert edge.source == SourceConfig() and edge.health == HealthConfig() and edge.rul_model is None
    assert (edge.rul_every, edge.ring_capacity, edge.raw_below_hz, edge.plc.targets) == (10, 8, 100.0, [])


def test_edge_sections_load_from_the_toml_file(settings_file: Path) -> None:
    edge = Settings.load(settings_file).edge
    assert (edge.agent_id, edge.rul_every, edge.status_interval_s) == ("gw-7", 20, 5.0)
    assert edge.rul_model == Path("/opt/genedge/registry/sim-bearing")
    assert edge.source.kind == "opcua" and edge.source.opcua_tags[0].channel == "temp_de"
    assert (edge.health.warmup_windows, edge.health.baseline_windows, edge.health.k) == (10, 30, 5.0)
    assert edge.features.envelope is False
    assert edge.plc.targets == [PlcTarget(asset_id="P-101", modbus_registers={"health_index": 400, "alarm_bits": 403})]


def test_environment_overrides_nested_edge_options(settings_file: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENEDGE_EDGE__RUL_EVERY", "3")
    monkeypatch.setenv("GENEDGE_EDGE__SOURCE__KIND", "cmapss")
    monkeypatch.setenv("GENEDGE_EDGE__SOURCE__PATHS", '["/data/train_FD001.txt"]')
    monkeypatch.setenv("GENEDGE_EDGE__HEALTH__K", "4.5")
    monkeypatch.setenv("GENEDGE_EDGE__RUL_MODEL", "/models/cmapss-FD001")
    edge = Settings.load(settings_file).edge
    assert (edge.rul_every, edge.source.kind, edge.source.paths) == (3, "cmapss", [Path("/data/train_FD001.txt")])
    assert edge.rul_model == Path("/models/cmapss-FD001")
    assert edge.health.k == 4.5 and edge.health.baseline_windows == 30, "the file's other health options stay"
    assert edge.source.endpoint == "opc.tcp://plc1.plant.local:4840" and edge.agent_id == "gw-7"
    assert Settings.load().edge.source.kind == "cmapss", "without a file too"


@pytest.mark.parametrize(
    ("env", "field"),
    [
        ({"GENEDGE_EDGE__RUL_EVERY": "0"}, "edge.rul_every"),
        ({"GENEDGE_EDGE__SOURCE__KIND": "profibus"}, "edge.source.kind"),
        ({"GENEDGE_EDGE__HEALTH__BASELINE_WINDOWS": "2"}, "edge.health.baseline_windows"),
        ({"GENEDGE_EDGE__RUL_COVERAGE": "1.5"}, "edge.rul_coverage"),
        ({"GENEDGE_EDGE__RUL_EVRY": "3"}, "edge.rul_evry"),
    ],
)
def test_bad_edge_values_name_the_field(env: dict[str, str], field: str, monkeypatch: pytest.MonkeyPatch) -> None:
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    with pytest.raises(ConfigError, match=field.replace(".", r"\.")):
        Settings.load()


def test_bad_value_in_the_file_names_the_field(tmp_path: Path) -> None:
    path = tmp_path / "bad.toml"
    path.write_text('[edge.plc]\nmodbus_unit_id = 300\n')
    with pytest.raises(ConfigError, match=r"edge\.plc\.modbus_unit_id"):
        Settings.load(path)


def test_config_show_includes_the_edge_options_with_secrets_masked(settings_file: Path) -> None:
    shown = Settings.load(settings_file).masked()
    assert shown["edge"]["rul_every"] == 20 and shown["edge"]["source"]["kind"] == "opcua"
    assert shown["edge"]["plc"]["targets"][0]["asset_id"] == "P-101"
    text = json.dumps(shown)
    assert "s3cret" not in text and "**********" in text


def test_old_agent_config_file_still_loads_as_edge(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    """``--agent-config`` (deprecated): the old top-level layout becomes ``[edge]``, ranked above ``--config``."""
    old = tmp_path / "agent.toml"
    old.write_text(OLD_AGENT_TOML)
    edge = Settings.load(agent_config_file=old).edge
    assert edge.rul_model == Path("/opt/genedge/registry/cmapss-FD001") and edge.rul_every == 7
    assert edge.source.kind == "cmapss" and edge.source.units == [3]
    assert edge.plc.targets[0].modbus_registers == {"rul_cycles": 500}

    settings = tmp_path / "settings.toml"
    settings.write_text('[edge]\nagent_id = "gw-2"\nrul_every = 50\n[edge.health]\nk = 3.0\n')
    merged = Settings.load(settings, agent_config_file=old).edge
    assert (merged.agent_id, merged.rul_every, merged.health.k, merged.source.kind) == ("gw-2", 7, 3.0, "cmapss")
    monkeypatch.setenv("GENEDGE_EDGE__RUL_EVERY", "4")
    assert Settings.load(settings, agent_config_file=old).edge.rul_every == 4, "the environment ranks above both files"


def test_old_agent_config_file_errors(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"agent config .* does not exist"):
        Settings.load(agent_config_file=tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("rul_every = 0\n")
    with pytest.raises(ConfigError, match=r"edge\.rul_every"):
        Settings.load(agent_config_file=bad)


def test_edge_settings_forbid_unknown_options() -> None:
    with pytest.raises(ValueError, match="rul_modle"):
        EdgeSettings.model_validate({"rul_modle": "/x"})
