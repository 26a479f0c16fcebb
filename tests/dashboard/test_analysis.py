"""The dashboard's pure helpers: spectra on simulator data, ISO zones, limits, arguments, launch command."""

from __future__ import annotations

from datetime import UTC, datetime
from pathlib import Path

import numpy as np
import pytest

from core.errors import ConfigError
from core.sim import PlantSimulator, default_faults, default_plant
from dashboard._limits import channel_limits, iso_zone, zone_from_features
from dashboard._signal import amplitude_spectrum, defect_markers, envelope_spectrum
from dashboard.auth import authenticate, hash_password, parse_users
from ingest.store.queries import FeatureView


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


def test_zone_comes_from_features_only() -> None:
    def frame(features: dict[str, dict[str, float]]) -> FeatureView:
        return FeatureView("P-101", "edge", datetime(2025, 1, 1, tzinfo=UTC), 1.0, features, "good")

    assert zone_from_features(None, "II") is None
    assert zone_from_features(frame({"vib_de": {"kurtosis": 3.1}}), "II") is None
    assert zone_from_features(frame({"vib_de": {"velocity_rms_mm_s": 3.0}}), "II") == ("C", 3.0)
    assert zone_from_features(frame({"vib_de": {"iso_zone": 3.0}, "vib_nde": {"velocity_rms_mm_s": 0.5}}),
                              "II") == ("D", None)


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
