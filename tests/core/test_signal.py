"""Edge features: analytic checks and the CWRU envelope benchmark on real data."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
from scipy import stats

from core.assets import BearingGeometry
from core.datasets.cwru import read_cwru
from core.signal import (
    ChannelWindow,
    FeatureConfig,
    FeaturePipeline,
    dominant_peak,
    envelope_spectrum,
    iso_zone,
    time_stats,
    velocity_rms_mm_s,
)
from core.sim import PlantSimulator, default_faults, default_plant
from core.wire import utcnow

FS = 25600.0


def test_time_stats_match_scipy() -> None:
    x = np.random.default_rng(0).standard_t(5, size=(3, 4096))
    got = time_stats(x)
    np.testing.assert_allclose(got["rms"], np.sqrt((x**2).mean(-1)))
    np.testing.assert_allclose(got["kurtosis"], stats.kurtosis(x, axis=-1, fisher=False), rtol=1e-10)
    np.testing.assert_allclose(got["skewness"], stats.skew(x, axis=-1), rtol=1e-10)
    np.testing.assert_allclose(got["crest"], np.abs(x).max(-1) / np.sqrt((x**2).mean(-1)))


def test_velocity_rms_of_a_sine_and_band_limits() -> None:
    t = np.arange(int(FS)) / FS
    amp = 10.0  # m/s2 peak at 100 Hz -> v_rms = amp / (2 pi f) / sqrt(2)
    expected = amp / (2 * np.pi * 100) / np.sqrt(2) * 1000
    assert velocity_rms_mm_s(amp * np.sin(2 * np.pi * 100 * t), FS, "m/s2") == pytest.approx(expected, rel=1e-6)
    in_g = velocity_rms_mm_s(amp / 9.80665 * np.sin(2 * np.pi * 100 * t), FS, "g")
    assert in_g == pytest.approx(expected, rel=1e-6)
    outside = amp * (np.sin(2 * np.pi * 5 * t) + np.sin(2 * np.pi * 3000 * t))  # both outside 10-1000 Hz
    assert velocity_rms_mm_s(outside, FS, "m/s2") < 1e-6


@pytest.mark.parametrize(
    ("v", "cls", "zone"),
    [(0.5, "I", 0), (0.71, "I", 1), (2.0, "II", 1), (2.8, "II", 2), (11.0, "III", 2), (18.0, "IV", 3), (30.0, "I", 3)],
)
def test_iso_zone_boundaries(v: float, cls: str, zone: int) -> None:
    assert iso_zone(v, cls) == zone


def test_pipeline_on_simulated_outer_race_fault() -> None:
    """The simulator's P-101 carries an outer-race fault: its BPFO envelope line must stand out."""
    assets = default_plant()
    sim = PlantSimulator(assets, default_faults(assets, 7), seed=7)
    asset = assets[0]
    window = {
        ch.name: ChannelWindow(utcnow(), sim.snapshot(asset.asset_id, ch, 250.0, 25600 if ch.sample_rate_hz > 100 else 1))
        for ch in asset.channels
    }
    feats = FeaturePipeline(asset).compute(window)
    assert set(feats) == {c.name for c in asset.channels}
    vib = feats["vib_de"]
    assert vib["env_bpfo_snr"] > 3 * max(vib["env_bpfi_snr"], vib["env_bsf_snr"])
    assert vib["iso_zone"] in (0.0, 1.0, 2.0, 3.0)
    assert {"spl_db", "band_1008_db"} <= set(feats["mic"])
    assert feats["temp_de"]["mean"] == pytest.approx(float(window["temp_de"].values[0]))


# --------------------------------------------------------------------------------------- CWRU
#: file stem -> the defect whose frequency must be the dominant envelope peak (None: reported only).
CWRU_CASES = {
    "12k_Drive_End_OR007@6_0_130": "bpfo",
    "12k_Drive_End_OR021@6_0_234": "bpfo",
    "12k_Drive_End_IR007_0_105": "bpfi",
    "12k_Drive_End_IR014_0_169": "bpfi",
    "12k_Drive_End_IR021_0_209": "bpfi",
    "12k_Drive_End_OR014@6_0_197": None,  # known hard case (Smith & Randall 2015): reported, not asserted
}


def cwru_dominant_peak(path: Path) -> tuple[float, dict[str, float]]:
    """Dominant envelope peak (shaft harmonics excluded) of a whole CWRU drive-end record."""
    rec = read_cwru(path)
    assert rec.rpm is not None
    defects = BearingGeometry.skf_6205().defect_frequencies(rec.rpm / 60.0).as_dict()
    spec = envelope_spectrum(rec.de, rec.fs, f_min_band=3.0 * max(defects.values()), nperseg=2**14)
    peak = dominant_peak(spec, defects["shaft"], f_lo=defects["ftf"], f_hi=1.2 * defects["bpfi"])
    return peak, defects


@pytest.mark.parametrize("stem", list(CWRU_CASES))
def test_cwru_dominant_envelope_peak(stem: str, datasets: Path, record_property: pytest.RecordProperty) -> None:
    peak, defects = cwru_dominant_peak(datasets / "cwru" / f"{stem}.mat")
    errors = {k: 100.0 * (peak / defects[k] - 1.0) for k in ("bpfo", "bpfi", "bsf")}
    record_property("cwru_peak_hz", round(peak, 2))
    record_property("cwru_errors_pct", {k: round(v, 2) for k, v in errors.items()})
    print(
        f"{stem}: dominant envelope peak {peak:.2f} Hz; error vs BPFO {errors['bpfo']:+.2f} %, "
        f"BPFI {errors['bpfi']:+.2f} %, BSF {errors['bsf']:+.2f} %"
    )
    expected = CWRU_CASES[stem]
    if expected is not None:
        assert abs(errors[expected]) < 1.0, f"{stem}: peak {peak:.2f} Hz is not within 1 % of {expected}"


def test_the_edge_uses_the_one_iso_table() -> None:
    import core.iso
    import core.signal

    assert core.signal.ISO_ZONE_LIMITS is core.iso.ISO_ZONE_LIMITS
    assert FeatureConfig().zone_limits == dict(core.iso.ISO_ZONE_LIMITS), "settings default to the standard's table"
