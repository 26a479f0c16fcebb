"""The dashboard's pure helpers: spectra on simulator data, ISO zones, limits, arguments, launch command."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from core.sim import PlantSimulator, default_faults, default_plant
from dashboard._cards import card_html
from dashboard._features import Vitals, envelope_keys, vitals
from dashboard._limits import channel_limits, iso_zone
from dashboard._signal import amplitude_spectrum, defect_markers, envelope_spectrum
from dashboard.auth import authenticate, hash_password, parse_users
from ingest.store.queries import AssetInfo, AssetOverview, ChannelLatest, FeatureView


def _p101() -> tuple[PlantSimulator, float]:
    plant = default_plant()
    faults = default_faults(plant, 7)
    return PlantSimulator(plant, faults, seed=7), faults["P-101"].life_hours


def test_envelope_spectrum_finds_the_outer_race_defect() -> None:
    sim, life = _p101()
    asset = sim["P-101"].asset
    bpfo = dict((m[0], m[1]) for m in defect_markers(asset.bearing, asset.shaft_hz))["BPFO"]
    freqs, amp = envelope_spectrum(sim.snapshot("P-101", "vib_de", 0.9 * life, 8192), 25600.0)
    band = (freqs > 20) & (freqs < 1000)
    peak = freqs[band][np.argmax(amp[band])]
    assert abs(peak - bpfo) < 2 * 25600.0 / 8192, (peak, bpfo)

    healthy = envelope_spectrum(sim.snapshot("P-101", "vib_de", 1.0, 8192), 25600.0)[1]
    assert amp[band].max() > 5 * healthy[band].max()


def test_amplitude_spectrum_reads_a_sine_amplitude() -> None:
    fs, n = 25600.0, 25600
    t = np.arange(n) / fs
    freqs, amp = amplitude_spectrum(0.5 * np.sin(2 * np.pi * 1000.0 * t), fs)
    assert freqs[np.argmax(amp)] == pytest.approx(1000.0)
    assert amp.max() == pytest.approx(0.5, rel=0.01)


def test_envelope_band_is_checked() -> None:
    with pytest.raises(ValueError, match="band must satisfy 0 < low < high < fs/2"):
        envelope_spectrum(np.zeros(1024), 1000.0, (100.0, 600.0))


def test_iso_zones_follow_iso_10816_1() -> None:
    assert [iso_zone(v, "II") for v in (1.0, 1.12, 2.8, 7.1)] == ["A", "B", "C", "D"]
    assert [iso_zone(v, "IV") for v in (2.7, 2.8, 17.9, 18.0)] == ["A", "B", "C", "D"]


def _frame(features: dict[str, dict[str, float]], quality: str = "good") -> FeatureView:
    return FeatureView("P-101", "edge", datetime(2025, 1, 1, tzinfo=UTC), 1.0, features, quality)


def test_vitals_come_from_the_agents_features() -> None:
    config = default_plant()[0].model_dump(mode="json")  # P-101: vib_de, temp_de, mic, speed, load; class II
    assert vitals(config, None) == Vitals(vib_channel="vib_de", vib_unit="g")
    v = vitals(config, _frame({"vib_de": {"rms": 0.5, "crest": 3.0, "vel_rms_mm_s": 3.0, "iso_zone": 2.0},
                               "temp_de": {"mean": 61.5, "slope_per_min": 0.4},
                               "mic": {"rms": 0.2, "crest": 3.0, "spl_db": 80.0},
                               "health": {"hi": 0.7, "health_index": 0.5, "alarm": 1.0, "learning": 0.0,
                                          "threshold": 0.2}}))
    assert (v.vib_channel, v.vib_rms, v.vib_unit, v.velocity_mm_s, v.zone) == ("vib_de", 0.5, "g", 3.0, "C")
    assert (v.temperature_c, v.temperature_slope_per_min, v.temperature_source) == (61.5, 0.4, "features")
    assert (v.health_index, v.hi, v.threshold, v.anomaly, v.learning) == (0.5, 0.7, 0.2, True, False)
    # No zone from the edge: from the velocity and the machine class; the worst channel counts.
    v = vitals(config, _frame({"vib_de": {"rms": 0.1, "vel_rms_mm_s": 1.0},
                               "vib_nde": {"rms": 0.2, "vel_rms_mm_s": 7.5}}))
    assert (v.zone, v.velocity_mm_s, v.vib_rms) == ("D", 7.5, 0.1)
    # The demo's 80 ms windows: no velocity, no zone; raw temperature wins over the features.
    raw = ChannelLatest("P-101", "temp_de", "temperature", "degC", 1.0, _frame({}).window_start,
                        _frame({}).window_start, 1, 48.0, 48.0, 48.0, 48.0, "good")
    v = vitals(config, _frame({"vib_de": {"rms": 0.04, "crest": 3.0}, "temp_de": {"mean": 47.0},
                               "health": {"hi": 0.0, "health_index": 1.0, "alarm": 0.0, "learning": 1.0}}), raw)
    assert (v.velocity_mm_s, v.zone, v.temperature_c, v.temperature_source, v.learning) == (None, None, 48.0,
                                                                                            "readings", True)
    # An asset without config: its vibration channel is the one with rms and crest that is not sound.
    v = vitals({}, _frame({"mic": {"rms": 0.2, "crest": 3.0, "spl_db": 80.0}, "acc": {"rms": 0.3, "crest": 4.0}}))
    assert (v.vib_channel, v.vib_rms) == ("acc", 0.3)


def test_envelope_keys_name_the_agents_features() -> None:
    assert envelope_keys("vib_de", ["BPFO", "BPFI"]) == {"BPFO": "vib_de.env_bpfo_h1", "BPFI": "vib_de.env_bpfi_h1"}
    assert envelope_keys("vib_de", ["FTF"], "snr") == {"FTF": "vib_de.env_ftf_snr"}


def test_overview_card_colours_the_iso_zone() -> None:
    plant = default_plant()[0]
    info = AssetInfo(asset_id="P-101", site="plant1", line="line1", name="Feed pump 101", kind="pump", criticality=3,
                     config=plant.model_dump(mode="json"), last_seen=None)

    def card(zone: float, velocity: float) -> str:
        frame = _frame({"vib_de": {"rms": 0.5, "crest": 3.0, "vel_rms_mm_s": velocity, "iso_zone": zone}})
        return card_html(AssetOverview(asset=info, features=frame, readings={}, prediction=None, open_alarms=(),
                                       quality="good", last_update=frame.window_start))

    assert 'background:#c62828">ISO D' in card(3.0, 8.0)  # abnormal: filled
    assert 'color:#2e7d32;border:1px solid #2e7d32">ISO A' in card(0.0, 0.5)  # normal: zone colour, outlined
    assert "8.00" in card(3.0, 8.0) and "ISO zone D" in card(3.0, 8.0)


def test_limits_configured_or_relative_to_baseline() -> None:
    rel = channel_limits({}, "vib_de", "acceleration", 0.05)
    assert [(lim.level, lim.value) for lim in rel] == [("alert", 0.1), ("alarm", 0.2)]
    temp = channel_limits({}, "temp_de", "temperature", 40.0)
    assert [lim.value for lim in temp] == [55.0, 65.0]
    conf = channel_limits({"alarm_limits": {"vib_de": {"alert": 0.3, "alarm": 0.6}}}, "vib_de", "acceleration", 0.05)
    assert [(lim.label, lim.value) for lim in conf] == [("alert (configured)", 0.3), ("alarm (configured)", 0.6)]
    assert channel_limits({}, "speed", "speed", 1500.0) == []
    assert channel_limits({}, "vib_de", "acceleration", None) == []


def test_users_are_checked_and_authenticated() -> None:
    users = {"olga": {"role": "operator", "password_hash": hash_password("pw-olga")}}
    user = authenticate(users, "olga", "pw-olga")
    assert user is not None and user.role.value == "operator"
    assert authenticate(users, "olga", "nope") is None
    assert authenticate(users, "nobody", "pw-olga") is None
    with pytest.raises(ConfigError, match="user 'x': password_hash must look like"):
        parse_users({"x": {"role": "engineer", "password_hash": "plain"}})


def test_config_path_is_read_from_the_script_arguments() -> None:
    from dashboard._context import config_path

    assert config_path(["--config", "plant.toml"]) == Path("plant.toml")
    assert config_path(["tests/dashboard", "-q"]) is None


def test_start_dashboard_runs_streamlit_headless(monkeypatch: pytest.MonkeyPatch) -> None:
    import subprocess

    from dashboard import launch

    seen: dict[str, object] = {}

    def fake_popen(cmd: list[str], **kwargs: object) -> object:
        seen.update(cmd=cmd, **kwargs)
        return object()

    monkeypatch.setattr(subprocess, "Popen", fake_popen)
    launch.start_dashboard(Path("demo.toml"), "0.0.0.0", 8600, {"GENEDGE_STORE__URL": "sqlite:///x.db"})
    cmd = seen["cmd"]
    assert isinstance(cmd, list)
    assert cmd[1:4] == ["-m", "streamlit", "run"] and cmd[4].endswith("dashboard/app.py")
    for flag, value in (("--server.headless", "true"), ("--server.port", "8600"), ("--server.address", "0.0.0.0"),
                        ("--browser.gatherUsageStats", "false")):
        assert cmd[cmd.index(flag) + 1] == value
    assert cmd[-3:] == ["--", "--config", "demo.toml"]
    env = seen["env"]
    assert isinstance(env, dict) and env["GENEDGE_STORE__URL"] == "sqlite:///x.db"
