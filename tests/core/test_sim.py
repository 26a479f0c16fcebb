"""Tests of the physics-based plant simulator (core.sim)."""

from __future__ import annotations

import math

import numpy as np
import pytest
from scipy import signal, stats

from core.assets import UNITS, AssetConfig, ChannelConfig, Quantity
from core.sim import AssetSimulator, FaultSpec, PlantSimulator, damage_at, default_faults, default_plant

FS = 25600.0


@pytest.fixture(scope="module")
def plant() -> dict[str, AssetConfig]:
    return {a.asset_id: a for a in default_plant()}


def _envelope_peak_hz(x: np.ndarray, fs: float, resonance_hz: float, shaft_hz: float) -> float:
    """Dominant envelope-spectrum line below 500 Hz, shaft harmonics excluded."""
    sos = signal.butter(4, [resonance_hz - 800.0, resonance_hz + 800.0], btype="bandpass", fs=fs, output="sos")
    env = np.abs(signal.hilbert(signal.sosfiltfilt(sos, x.astype(np.float64))))
    env -= env.mean()
    nfft = 8 * env.size  # zero padding: 1/16 Hz grid for a 2 s snapshot
    spec = np.abs(np.fft.rfft(env * np.hanning(env.size), nfft))
    f = np.fft.rfftfreq(nfft, 1.0 / fs)
    order = np.round(f / shaft_hz)
    near_shaft = (order >= 1) & (np.abs(f - order * shaft_hz) < 1.0)
    keep = (f > 3.0) & (f < 500.0) & ~near_shaft
    return float(f[np.argmax(np.where(keep, spec, 0.0))])


# --- reproducibility ---------------------------------------------------------------------------


def test_same_seed_gives_bit_identical_arrays(plant: dict[str, AssetConfig]) -> None:
    fault = FaultSpec(kind="inner_race", onset_hours=10.0, life_hours=100.0)
    a = AssetSimulator(plant["P-101"], fault, seed=7)
    b = AssetSimulator(plant["P-101"], fault, seed=7)
    b.vibration(12.0)  # call order must not matter
    for t in (0.0, 55.5, 99.0):
        assert a.vibration(t).tobytes() == b.vibration(t).tobytes()
        assert a.acoustic(t).tobytes() == b.acoustic(t).tobytes()
        assert a.state(t) == b.state(t)
    temp = plant["P-101"].channel("temp_de")
    assert a.sample(temp, 50.0, 10).tobytes() == b.sample(temp, 50.0, 10).tobytes()


def test_other_seed_time_or_asset_gives_other_arrays(plant: dict[str, AssetConfig]) -> None:
    a = AssetSimulator(plant["P-101"], seed=1)
    assert not np.array_equal(a.vibration(5.0), AssetSimulator(plant["P-101"], seed=2).vibration(5.0))
    assert not np.array_equal(a.vibration(5.0), a.vibration(5.0 + 1e-9))
    renamed = plant["P-101"].model_copy(update={"asset_id": "P-999"})
    assert not np.array_equal(a.vibration(5.0), AssetSimulator(renamed, seed=1).vibration(5.0))


def test_outputs_are_float32_with_requested_length(plant: dict[str, AssetConfig]) -> None:
    sim = AssetSimulator(plant["F-101"], FaultSpec(kind="ball", onset_hours=1.0, life_hours=10.0))
    for x, n in ((sim.vibration(8.0, 5000), 5000), (sim.acoustic(8.0, 1600), 1600)):
        assert x.dtype == np.float32
        assert x.shape == (n,)
        assert np.all(np.isfinite(x))


def test_before_onset_a_faulty_asset_equals_its_healthy_twin(plant: dict[str, AssetConfig]) -> None:
    faulty = AssetSimulator(plant["P-201"], FaultSpec(kind="outer_race", onset_hours=50.0, life_hours=90.0), seed=3)
    healthy = AssetSimulator(plant["P-201"], None, seed=3)
    assert np.array_equal(faulty.vibration(20.0), healthy.vibration(20.0))
    assert not np.array_equal(faulty.vibration(80.0), healthy.vibration(80.0))


# --- bearing physics -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("asset_id", "kind", "attr"),
    [
        ("P-101", "outer_race", "bpfo"),
        ("P-201", "outer_race", "bpfo"),
        ("F-201", "outer_race", "bpfo"),
        ("P-101", "inner_race", "bpfi"),
        ("P-201", "inner_race", "bpfi"),
        ("M-202", "inner_race", "bpfi"),
    ],
)
def test_envelope_spectrum_peaks_at_the_defect_frequency(
    plant: dict[str, AssetConfig], asset_id: str, kind: str, attr: str
) -> None:
    asset = plant[asset_id]
    sim = AssetSimulator(asset, FaultSpec(kind=kind, onset_hours=100.0, life_hours=300.0), seed=11)
    t = 280.0  # late in life
    speed_hz = sim.state(t).shaft_speed_rpm / 60.0
    expected = getattr(asset.bearing.defect_frequencies(speed_hz), attr)
    x = sim.vibration(t, n_samples=int(2 * FS), fs=FS)
    peak = _envelope_peak_hz(x, FS, sim.resonance_hz, speed_hz)
    assert abs(peak - expected) / expected < 0.01, f"{kind}: envelope peak {peak:.2f} Hz, expected {expected:.2f} Hz"


def test_ball_fault_shows_at_twice_ball_spin_frequency(plant: dict[str, AssetConfig]) -> None:
    asset = plant["F-201"]
    sim = AssetSimulator(asset, FaultSpec(kind="ball", onset_hours=10.0, life_hours=100.0), seed=5)
    speed_hz = sim.state(95.0).shaft_speed_rpm / 60.0
    bsf = asset.bearing.defect_frequencies(speed_hz).bsf
    peak = _envelope_peak_hz(sim.vibration(95.0, int(2 * FS)), FS, sim.resonance_hz, speed_hz)
    assert abs(peak - 2 * bsf) / (2 * bsf) < 0.01


def test_healthy_envelope_has_no_bearing_line(plant: dict[str, AssetConfig]) -> None:
    asset = plant["P-201"]
    sick = AssetSimulator(asset, FaultSpec(kind="outer_race", onset_hours=10.0, life_hours=100.0), seed=2)
    well = AssetSimulator(asset, None, seed=2)

    def line_to_median(sim: AssetSimulator) -> float:
        x = sim.vibration(90.0, int(2 * FS)).astype(np.float64)
        sos = signal.butter(4, [sim.resonance_hz - 800, sim.resonance_hz + 800], "bandpass", fs=FS, output="sos")
        env = np.abs(signal.hilbert(signal.sosfiltfilt(sos, x)))
        spec = np.abs(np.fft.rfft(env - env.mean()))
        f = np.fft.rfftfreq(env.size, 1 / FS)
        bpfo = asset.bearing.defect_frequencies(sim.state(90.0).shaft_speed_rpm / 60).bpfo
        band = (f > 10) & (f < 500)
        return float(spec[np.abs(f - bpfo) < 1.0].max() / np.median(spec[band]))

    assert line_to_median(sick) > 20.0
    assert line_to_median(well) < 8.0


def test_rms_flat_when_healthy_and_rms_kurtosis_rise_with_damage(plant: dict[str, AssetConfig]) -> None:
    asset = plant["P-201"]
    fault = FaultSpec(kind="outer_race", onset_hours=100.0, life_hours=400.0)
    sick = AssetSimulator(asset, fault, seed=4)
    well = AssetSimulator(asset, None, seed=4)
    times = [0.0, 150.0, 250.0, 330.0, 370.0, 399.0]
    well_rms = np.array([well.vibration(t).std() for t in times])
    sick_x = [sick.vibration(t).astype(np.float64) for t in times]
    sick_rms = np.array([x.std() for x in sick_x])
    sick_kurt = np.array([stats.kurtosis(x, fisher=False) for x in sick_x])
    damage = damage_at(fault, times)
    assert np.all(np.diff(damage) > 0)
    assert well_rms.max() / well_rms.min() < 1.25
    assert np.all(np.diff(sick_rms) > 0), sick_rms
    assert sick_rms[-1] > 5 * well_rms.mean()
    assert abs(sick_kurt[0] - 3.0) < 0.5  # healthy: near Gaussian
    assert np.all(sick_kurt[2:] > sick_kurt[0] + 2.0), sick_kurt


@pytest.mark.parametrize(("kind", "order"), [("imbalance", 1), ("misalignment", 2)])
def test_imbalance_and_misalignment_grow_their_shaft_harmonic(
    plant: dict[str, AssetConfig], kind: str, order: int
) -> None:
    asset = plant["P-102"]
    sim = AssetSimulator(asset, FaultSpec(kind=kind, onset_hours=0.0, life_hours=100.0), seed=1)

    def harmonic_g(t: float, axis: str = "radial") -> float:
        x = sim.vibration(t, int(4 * FS), axis=axis).astype(np.float64)
        spec = np.abs(np.fft.rfft(x * np.hanning(x.size))) * 4 / x.size
        f = np.fft.rfftfreq(x.size, 1 / FS)
        target = order * sim.state(t).shaft_speed_rpm / 60
        return float(spec[np.abs(f - target) < 0.5].max())

    assert harmonic_g(100.0) > 5 * harmonic_g(0.0)
    if kind == "misalignment":
        assert harmonic_g(100.0, "axial") > harmonic_g(100.0, "radial")


def test_acoustic_level_and_impacts_rise_with_bearing_damage(plant: dict[str, AssetConfig]) -> None:
    sim = AssetSimulator(plant["F-101"], FaultSpec(kind="inner_race", onset_hours=10.0, life_hours=100.0), seed=6)
    early, late = sim.acoustic(5.0), sim.acoustic(99.0)
    assert 0.05 < early.std() < 1.0  # ~80 dB SPL machine noise
    assert late.std() > 1.5 * early.std()
    assert stats.kurtosis(late) > stats.kurtosis(early) + 1.0


# --- degradation, RUL and process values -------------------------------------------------------------


def test_rul_is_monotone_and_zero_at_failure(plant: dict[str, AssetConfig]) -> None:
    fault = FaultSpec(kind="cage", onset_hours=40.0, life_hours=120.0)
    sim = AssetSimulator(plant["M-201"], fault)
    states = sim.trajectory(np.linspace(0.0, 150.0, 61))
    rul = np.array([s.rul_hours for s in states], dtype=float)
    damage = np.array([s.damage for s in states])
    assert np.all(np.diff(rul) <= 0) and np.all(np.diff(rul[rul > 0]) < 0)
    assert np.all(np.diff(damage) >= 0)
    at_failure = sim.state(120.0)
    assert at_failure.rul_hours == 0.0 and at_failure.failed and at_failure.damage == 1.0
    assert at_failure.health_index == 0.0
    before = sim.state(119.0)
    assert before.rul_hours == pytest.approx(1.0) and not before.failed
    assert sim.state(39.9).damage == 0.0 and not sim.state(39.9).fault_active
    assert sim.state(150.0).rul_hours == 0.0
    for s in states:
        assert s.health_index == pytest.approx(1.0 - s.damage)
        assert 0.0 <= s.damage <= 1.0


def test_damage_grows_exponentially_after_onset() -> None:
    fault = FaultSpec(kind="ball", onset_hours=100.0, life_hours=200.0, severity_growth=3.0)
    d = damage_at(fault, [100.0, 125.0, 150.0, 175.0, 200.0])
    assert d[0] == 0.0 and d[-1] == 1.0
    assert d[2] == pytest.approx(math.expm1(1.5) / math.expm1(3.0))
    assert np.all(np.diff(d, 2) > 0)  # convex: accelerating damage


def test_healthy_asset_has_no_rul(plant: dict[str, AssetConfig]) -> None:
    st = AssetSimulator(plant["M-101"]).state(1e4)
    assert st.rul_hours is None and not st.failed and st.health_index == 1.0 and st.fault_kind == "none"


def test_temperature_rises_with_damage_above_healthy_twin(plant: dict[str, AssetConfig]) -> None:
    asset = plant["P-101"]
    fault = FaultSpec(kind="inner_race", onset_hours=100.0, life_hours=300.0)
    sick = AssetSimulator(asset, fault, seed=9)
    well = AssetSimulator(asset, None, seed=9)
    times = [50.0, 200.0, 250.0, 280.0, 300.0]
    excess = np.array([sick.state(t).temperature_c - well.state(t).temperature_c for t in times])
    assert abs(excess[0]) < 1e-9
    assert np.all(np.diff(excess) > 0), excess
    assert excess[-1] > 15.0
    assert 25.0 < well.state(50.0).temperature_c < 60.0


def test_temperature_lags_the_load(plant: dict[str, AssetConfig]) -> None:
    sim = AssetSimulator(plant["P-201"], seed=0, ambient_c=20.0)
    t = np.linspace(0.0, 48.0, 481)
    load = np.array([sim.state(x).load_pct for x in t])
    temp = np.array([sim.state(x).temperature_c for x in t])
    lag = np.argmax(signal.correlate(temp - temp.mean(), load - load.mean(), mode="full")) - (t.size - 1)
    assert 0 < lag * (t[1] - t[0]) < 2.0  # first-order lag of ~0.5-1 h
    assert temp.min() > 20.0


def test_speed_and_load_vary_a_little(plant: dict[str, AssetConfig]) -> None:
    asset = plant["M-201"]
    sim = AssetSimulator(asset, seed=0)
    states = sim.trajectory(np.linspace(0, 100, 101))
    rpm = np.array([s.shaft_speed_rpm for s in states])
    load = np.array([s.load_pct for s in states])
    assert rpm.std() > 0 and np.all(np.abs(rpm / asset.shaft_speed_rpm - 1) < 0.02)
    assert load.std() > 1.0 and np.all((load >= 0) & (load <= 100))


# --- channels, plant, faults --------------------------------------------------------------------------


def test_sample_dispatches_by_quantity(plant: dict[str, AssetConfig]) -> None:
    asset = plant["P-101"]
    sim = AssetSimulator(asset, seed=1)
    st = sim.state(10.0)
    assert np.array_equal(sim.sample(asset.channel("vib_de"), 10.0, 2560), sim.vibration(10.0, 2560, 25600.0))
    assert np.array_equal(sim.sample(asset.channel("mic"), 10.0, 1600), sim.acoustic(10.0, 1600, 16000.0))
    temp = sim.sample(asset.channel("temp_de"), 10.0, 30)
    speed = sim.sample(asset.channel("speed"), 10.0, 30)
    load = sim.sample(asset.channel("load"), 10.0, 30)
    assert temp.shape == speed.shape == load.shape == (30,)
    assert abs(float(temp.mean()) - st.temperature_c) < 0.1 and temp.std() > 0
    assert abs(float(speed.mean()) - st.shaft_speed_rpm) < 2.0
    assert abs(float(load.mean()) - st.load_pct) < 1.0
    ms2 = ChannelConfig(name="vib_ms2", quantity=Quantity.ACCELERATION, unit="m/s2", sample_rate_hz=25600.0)
    assert np.allclose(sim.sample(ms2, 10.0, 256), sim.vibration(10.0, 256) * 9.80665, rtol=1e-5)
    vel = ChannelConfig(name="vel", quantity=Quantity.VELOCITY, unit="mm/s", sample_rate_hz=25600.0)
    assert 0.1 < float(sim.sample(vel, 10.0, 25600).std()) < 2.0  # zone A velocity RMS
    with pytest.raises(ValueError, match="not simulated"):
        sim.sample(ChannelConfig(name="p", quantity=Quantity.PRESSURE, unit="bar", sample_rate_hz=1.0), 1.0, 1)


def test_default_plant_is_valid(plant: dict[str, AssetConfig]) -> None:
    assets = list(plant.values())
    assert len(assets) >= 6 and len(plant) == len(assets)
    assert {a.line for a in assets} == {"line1", "line2"}
    assert {a.kind.value for a in assets} >= {"pump", "motor", "fan"}
    assert len({a.bearing.designation for a in assets}) >= 2
    assert len({a.shaft_speed_rpm for a in assets}) >= 3
    assert len({a.criticality for a in assets}) >= 2
    for a in assets:
        names = [c.name for c in a.channels]
        assert len(set(names)) == len(names)
        vib, temp = a.channel("vib_de"), a.channel("temp_de")
        assert (vib.quantity, vib.unit, vib.sample_rate_hz) == (Quantity.ACCELERATION, "g", 25600.0)
        assert (temp.quantity, temp.unit, temp.sample_rate_hz) == (Quantity.TEMPERATURE, "degC", 1.0)
        for c in a.channels:
            assert c.unit in UNITS[c.quantity]
            assert c.min_value < c.max_value
        assert a.site == "plant1"
    assert any("mic" in [c.name for c in a.channels] for a in assets)
    assert any("speed" in [c.name for c in a.channels] for a in assets)
    assert default_plant("plant9")[0].site == "plant9"


def test_default_faults_mix(plant: dict[str, AssetConfig]) -> None:
    assets = list(plant.values())
    faults = default_faults(assets, seed=0)
    assert set(faults) == set(plant)
    assert faults == default_faults(assets, seed=0)
    kinds = [f.kind for f in faults.values()]
    assert "none" in kinds and len({k for k in kinds if k != "none"}) >= 3
    early = min((f for f in faults.values() if f.kind != "none"), key=lambda f: f.life_hours)
    assert 200.0 <= early.life_hours <= 400.0
    assert 0.3 <= early.onset_hours / early.life_hours <= 0.5
    assert default_faults(assets, seed=1) != faults


def test_plant_simulator_clock_and_snapshot(plant: dict[str, AssetConfig]) -> None:
    sim = PlantSimulator(list(plant.values()), seed=3, time_acceleration=3600.0)
    assert sim.sim_hours(0.0) == 0.0 and sim.sim_hours(10.0) == pytest.approx(10.0)
    assert PlantSimulator(list(plant.values()), time_acceleration=60.0).sim_hours(60.0) == pytest.approx(1.0)
    x = sim.snapshot("P-101", "vib_de", 5.0)
    assert x.shape == (25600,) and x.dtype == np.float32
    assert np.array_equal(x, AssetSimulator(plant["P-101"], sim.faults["P-101"], seed=3).vibration(5.0))
    assert sim.snapshot("P-101", "temp_de", 5.0).shape == (1,)
    assert sim.snapshot("P-101", plant["P-101"].channel("mic"), 5.0, 800).shape == (800,)
    assert set(sim.states(5.0)) == set(plant)
    with pytest.raises(KeyError):
        sim.snapshot("nope", "vib_de", 1.0)


@pytest.mark.parametrize(
    "kwargs",
    [
        {"kind": "outer_race", "onset_hours": 10.0, "life_hours": 5.0},
        {"kind": "inner_race", "onset_hours": 0.0},
        {"kind": "bogus", "onset_hours": 0.0, "life_hours": 5.0},
        {"kind": "ball", "onset_hours": -1.0, "life_hours": 5.0},
    ],
)
def test_fault_spec_rejects_bad_input(kwargs: dict[str, object]) -> None:
    with pytest.raises(ValueError):
        FaultSpec(**kwargs)


def test_bad_arguments_are_rejected(plant: dict[str, AssetConfig]) -> None:
    sim = AssetSimulator(plant["P-101"])
    with pytest.raises(ValueError, match="t_hours"):
        sim.vibration(-1.0)
    with pytest.raises(ValueError, match="n_samples"):
        sim.vibration(1.0, 0)
    with pytest.raises(ValueError, match="seed"):
        AssetSimulator(plant["P-101"], seed=-1)
