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


SECRET = "hunter2-db-password"


@pytest.mark.parametrize(
    ("env", "toml", "field"),
    [
        ({"GENEDGE_STORE__URL": f"postgres://genedge:{SECRET}@db.plant/genedge"}, None, "store.url"),
        ({"GENEDGE_STORE__URL": f"genedge{SECRET}@db.plant/genedge"}, None, "store.url"),  # no scheme at all
        ({"GENEDGE_MQTT__PORT": SECRET}, None, "mqtt.port"),
        ({"GENEDGE_DASHBOARD__USERS": f'{{"eve": {{"password_hash": "{SECRET}"'}, None, "dashboard"),
        ({"GENEDGE_DASHBOARD__SESSION_SECRET": SECRET}, None, "dashboard.session_secret"),
        ({}, f'[store]\nurl = "mysql://root:{SECRET}@db/x"\n', "store.url"),
        ({}, f'[llm]\nopenai_key = "{SECRET}"\nbackend = "{SECRET}"\n', "llm.backend"),
        ({}, f'[mqttt]\npassword = "{SECRET}"\n', "mqttt: Extra inputs are not permitted"),
        ({}, f'[mqtt]\npassword = "{SECRET}\n', "not valid TOML"),
    ],
)
def test_configuration_errors_never_echo_the_value(env: dict[str, str], toml: str | None, field: str, tmp_path: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    """Bad URL, bad environment variable (value or JSON), bad TOML value, unknown key, broken TOML:
    the error names the setting, never the value; its cause (which holds the value) is not attached."""
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    cfg = None
    if toml is not None:
        cfg = tmp_path / "settings.toml"
        cfg.write_text(toml)
    with pytest.raises(ConfigError) as err:
        Settings.load(cfg)
    assert field in str(err.value)
    chain = [str(err.value), repr(err.value.__cause__), repr(err.value.__context__)]
    assert not [text for text in chain if SECRET in text], chain
    assert "db.plant" not in str(err.value)


def test_masked_hides_user_hashes_and_every_secret_looking_key() -> None:
    s = Settings.load(dashboard={"users": {"eve": {"role": "engineer", "password_hash": "scrypt$1$2$3$salt$hash"}},
                                 "session_secret": "x" * 40})
    shown = s.masked()
    assert shown["dashboard"]["users"]["eve"] == {"role": "engineer", "password_hash": "**********"}
    assert shown["dashboard"]["session_secret"] == "**********"
    assert "scrypt" not in json.dumps(shown) and "x" * 40 not in json.dumps(shown)
    assert shown["dashboard"]["tls_key_file"] is None  # a path to a key is not itself masked
