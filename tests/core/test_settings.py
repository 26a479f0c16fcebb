"""Settings: defaults, TOML file, environment, validation and masking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from core.errors import ConfigError
from core.settings import Settings


def test_defaults_are_the_embedded_demo() -> None:
    s = Settings.load()
    assert s.mqtt.embedded and s.store.url.get_secret_value().startswith("sqlite")


def test_toml_then_env_then_overrides(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    cfg = tmp_path / "genedge.toml"
    cfg.write_text('[mqtt]\nhost = "broker.plant"\nport = 8883\npassword = "s3cret"\n[store]\nbatch_size = 42\n')
    s = Settings.load(cfg)
    assert (s.mqtt.host, s.mqtt.port, s.store.batch_size) == ("broker.plant", 8883, 42)
    monkeypatch.setenv("GENEDGE_MQTT__PORT", "1999")
    assert Settings.load(cfg).mqtt.port == 1999
    shown = json.dumps(Settings.load(cfg).masked())
    assert "s3cret" not in shown and "**********" in shown


def test_bad_values_name_the_setting(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("GENEDGE_MQTT__PORT", "70000")
    with pytest.raises(ConfigError, match="port"):
        Settings.load()


def test_missing_or_broken_file(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="does not exist"):
        Settings.load(tmp_path / "nope.toml")
    bad = tmp_path / "bad.toml"
    bad.write_text("[mqtt\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        Settings.load(bad)


def test_assets_from_file(tmp_path: Path) -> None:
    cfg = tmp_path / "plant.toml"
    cfg.write_text(
        '[[assets]]\nasset_id = "P-1"\nshaft_speed_rpm = 1480\n'
        '[assets.bearing]\nn_balls = 9\nball_diameter_mm = 7.94\npitch_diameter_mm = 39.04\n'
        '[[assets.channels]]\nname = "vib"\nquantity = "acceleration"\nunit = "g"\nsample_rate_hz = 25600\n'
    )
    s = Settings.load(cfg)
    assert s.assets[0].channel("vib").sample_rate_hz == 25600
    f = s.assets[0].bearing.defect_frequencies(s.assets[0].shaft_hz)
    assert f.bpfo == pytest.approx(3.5848 * 1480 / 60, rel=1e-3)  # SKF 6205 BPFO ratio
