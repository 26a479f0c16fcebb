"""Waveform synthesis: bearing impacts, structural resonance, shaft tones, noise.

Rolling element bearing faults follow the model of McFadden & Smith (1984) and Randall &
Antoni (2011): each rolling element passing a defect gives a short impulse that excites a
structural resonance (a decaying sinusoid), the impulses repeat at the characteristic defect
frequency with a small random slip, and their amplitude is modulated by the passage through
the load zone (shaft rate for an inner-race defect, cage rate for a rolling-element defect).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from core.assets import DefectFrequencies
from core.sim._faults import BEARING_FAULTS
from core.sim._process import AssetParams, G

__all__ = ["Snapshot", "bearing_impacts", "synth_acoustic", "synth_vibration", "to_velocity_mm_s"]

#: Standard deviation of the impulse spacing, as a fraction of the mean (rolling element slip).
SLIP_JITTER = 0.015
#: Impulses before the snapshot start whose ringing reaches into it, in seconds.
PRE_ROLL_S = 0.02

F64 = NDArray[np.float64]


@dataclass(frozen=True, slots=True)
class Snapshot:
    """What a waveform at one instant depends on; shared by every channel of the asset.

    Attributes:
        fault_kind: the fault mode.
        damage: damage index in [0, 1].
        shaft_hz: shaft frequency during the snapshot.
        load_pct: load during the snapshot.
        freqs: bearing defect frequencies at that speed.
        theta0: shaft angle at the snapshot start (rad).
        cage_phase: cage angle at the snapshot start (rad).
        impact_times: bearing impact times in s from the snapshot start (may be negative).
        impact_amps: relative impact amplitudes (1 = nominal impact at failure).
    """

    fault_kind: str
    damage: float
    shaft_hz: float
    load_pct: float
    freqs: DefectFrequencies
    theta0: float
    cage_phase: float
    impact_times: F64
    impact_amps: F64


def _pulse_train(rng_times: np.random.Generator, rate_hz: float, duration_s: float) -> F64:
    """Impulse times with random slip, from ``-PRE_ROLL_S`` to ``duration_s``.

    Draws are made in a fixed order so the first impulses are the same whatever the
    duration: a vibration and an acoustic snapshot at the same instant share their impacts.
    """
    period = 1.0 / rate_hz
    first = -PRE_ROLL_S + rng_times.random() * period
    count = math.ceil((duration_s + PRE_ROLL_S) / period * 1.1) + 4
    spacing = period * (1.0 + SLIP_JITTER * rng_times.standard_normal(count))
    np.maximum(spacing, 0.5 * period, out=spacing)
    times = first + np.concatenate(([0.0], np.cumsum(spacing[:-1])))
    return times[times < duration_s]


def bearing_impacts(
    fault_kind: str,
    damage: float,
    freqs: DefectFrequencies,
    *,
    theta0: float,
    cage_phase: float,
    load_zone_phase: float,
    modulation_depth: tuple[float, float],
    rng_times: np.random.Generator,
    rng_amps: np.random.Generator,
    duration_s: float,
) -> tuple[F64, F64]:
    """Times and relative amplitudes of the bearing impacts of one snapshot.

    Args:
        fault_kind: fault mode; non-bearing modes give no impacts.
        damage: damage index; sets the modulation depth (the amplitude is scaled later).
        freqs: defect frequencies at the snapshot's shaft speed.
        theta0: shaft angle at the snapshot start.
        cage_phase: cage angle at the snapshot start.
        load_zone_phase: angle of the load zone relative to the shaft reference.
        modulation_depth: depth at onset and at failure.
        rng_times: stream for the impulse spacing.
        rng_amps: stream for the impulse-to-impulse amplitude scatter.
        duration_s: snapshot length.

    Returns:
        ``(times_s, relative_amplitudes)``.
    """
    empty = np.empty(0)
    shaft_hz = freqs.shaft
    if damage <= 0.0:
        return empty, empty
    rate = {
        "outer_race": freqs.bpfo,
        "inner_race": freqs.bpfi,
        # A spalled ball strikes both races once per spin: two impacts per ball-spin period.
        "ball": 2.0 * freqs.bsf,
        "cage": freqs.ftf,
    }.get(fault_kind)
    if rate is None:
        return empty, empty
    times = _pulse_train(rng_times, rate, duration_s)
    amps = np.exp(0.12 * rng_amps.standard_normal(times.size))
    depth = modulation_depth[0] + (modulation_depth[1] - modulation_depth[0]) * damage
    if fault_kind == "inner_race":
        # The defect turns with the shaft through the stationary load zone.
        amps *= 1.0 + depth * np.cos(2 * np.pi * shaft_hz * times + theta0 - load_zone_phase)
    elif fault_kind == "ball":
        # The ball is carried through the load zone at cage speed; the inner-race strike is weaker.
        amps *= 1.0 + depth * np.cos(2 * np.pi * freqs.ftf * times + cage_phase)
        amps[1::2] *= 0.55
    elif fault_kind == "outer_race":
        # Stationary defect: only the small 1x load variation of the rotor modulates it.
        amps *= 1.0 + 0.15 * damage * np.cos(2 * np.pi * shaft_hz * times + theta0)
    else:  # cage: weak knocks of the worn cage against the rolling elements
        amps *= 0.35
    return times, amps


def _resonator(f_hz: float, zeta: float, fs: float) -> tuple[F64, F64, float]:
    """Two-pole filter whose impulse response is ``r**n sin(w n)`` (peak about 1).

    Returns:
        ``(b, a, rms_gain)`` where ``rms_gain`` is the output RMS for unit white noise in.
    """
    f_hz = min(f_hz, 0.42 * fs)
    r = math.exp(-zeta * 2 * math.pi * f_hz / fs)
    w = 2 * math.pi * f_hz * math.sqrt(1 - zeta**2) / fs
    b = np.array([0.0, r * math.sin(w)])
    a = np.array([1.0, -2 * r * math.cos(w), r * r])
    r2 = r * r
    energy = 0.5 * (1.0 / (1 - r2) - (1.0 / (1 - r2 * complex(math.cos(2 * w), math.sin(2 * w)))).real)
    return b, a, math.sqrt(energy)


def _pre_roll_samples(f_hz: float, zeta: float, fs: float) -> int:
    decay_s = 1.0 / (zeta * 2 * math.pi * min(f_hz, 0.42 * fs))
    return math.ceil(min(6 * decay_s, PRE_ROLL_S) * fs)


def _impulse_sequence(times: F64, amps: F64, pad: int, n: int, fs: float) -> F64:
    """Place impulses at fractional sample positions by splitting each over two samples."""
    pos = (times * fs) + pad
    keep = pos >= 0
    pos, amps = pos[keep], amps[keep]
    idx = np.floor(pos).astype(np.intp)
    frac = pos - idx
    total = n + pad + 1
    seq = np.bincount(idx, weights=amps * (1 - frac), minlength=total).astype(np.float64)
    seq += np.bincount(idx + 1, weights=amps * frac, minlength=total)
    return seq[: n + pad]


def _ringing(
    snap: Snapshot,
    params: AssetParams,
    rng: np.random.Generator,
    *,
    impact_scale: float,
    noise_rms: float,
    noise_mod: float,
    n: int,
    fs: float,
) -> F64:
    """Resonance response to the bearing impacts plus random (flow, friction) excitation."""
    b, a, gain = _resonator(params.resonance_hz, params.damping_ratio, fs)
    pad = _pre_roll_samples(params.resonance_hz, params.damping_ratio, fs)
    excitation = rng.standard_normal(n + pad) * (noise_rms / gain) if noise_rms > 0.0 else np.zeros(n + pad)
    if noise_mod > 0.0:
        t = (np.arange(n + pad) - pad) / fs
        excitation *= 1.0 + noise_mod * np.cos(2 * np.pi * snap.freqs.ftf * t + snap.cage_phase)
    if impact_scale > 0.0 and snap.impact_times.size:
        excitation += impact_scale * _impulse_sequence(snap.impact_times, snap.impact_amps, pad, n, fs)
    out: F64 = signal.lfilter(b, a, excitation)[pad:]
    return out


def _shaft_tones(snap: Snapshot, amps: tuple[float, float, float], phases: tuple[float, ...], t: F64) -> F64:
    theta = 2 * np.pi * snap.shaft_hz * t + snap.theta0
    out = amps[0] * np.sin(theta + phases[0])
    out += amps[1] * np.sin(2 * theta + phases[1])
    out += amps[2] * np.sin(3 * theta + phases[2])
    return out


def _velocity_rms_to_g_peak(v_rms_mm_s: float, f_hz: float) -> float:
    return v_rms_mm_s * math.sqrt(2) * 1e-3 * 2 * math.pi * f_hz / G


def synth_vibration(
    snap: Snapshot, params: AssetParams, rng: np.random.Generator, *, n: int, fs: float, axis: str = "radial"
) -> NDArray[np.float32]:
    """Acceleration snapshot in g.

    Args:
        snap: the instant's shared state (damage, speed, impacts).
        params: the machine's constants.
        rng: noise stream for this channel and instant.
        n: number of samples.
        fs: sample rate in Hz.
        axis: ``"radial"`` or ``"axial"``; misalignment shows mostly axially at 2x.

    Returns:
        ``float32`` array of length ``n``.
    """
    d = snap.damage
    kind = snap.fault_kind
    axial = axis == "axial"
    v1, v2, v3 = (v * (0.5 if axial else 1.0) for v in params.harmonic_mm_s)
    # At failure the fault's lines reach ISO 10816 zone D (velocity RMS above the C/D boundary).
    cd = params.zone_cd_mm_s
    if kind == "imbalance":
        v1 += (0.4 if axial else 1.25) * cd * d
    elif kind == "misalignment":
        v1 += (0.5 if axial else 0.3) * cd * d
        v2 += (1.1 if axial else 0.8) * cd * d
        v3 += (0.3 if axial else 0.25) * cd * d
    a1, a2, a3 = (_velocity_rms_to_g_peak(v, h * snap.shaft_hz) for h, v in ((1, v1), (2, v2), (3, v3)))
    bearing = kind in BEARING_FAULTS
    # Flow and friction excitation rise a little with load, and a lot with bearing wear.
    noise_growth = (0.85 + 0.3 * snap.load_pct / 100.0) * (1.0 + (3.0 * d * d if bearing else 0.5 * d))
    impact_scale = params.impact_peak_g * d**0.7 * (0.6 if axial else 1.0)
    noise_mod = 0.6 * d if kind == "cage" else 0.0
    t = np.arange(n) / fs
    x = _shaft_tones(snap, (a1, a2, a3), params.harmonic_phase, t)
    x += _ringing(
        snap,
        params,
        rng,
        impact_scale=impact_scale,
        noise_rms=params.structural_noise_g * noise_growth,
        noise_mod=noise_mod,
        n=n,
        fs=fs,
    )
    x += params.sensor_noise_g * rng.standard_normal(n)
    return x.astype(np.float32)


def synth_acoustic(
    snap: Snapshot, params: AssetParams, rng: np.random.Generator, *, n: int, fs: float
) -> NDArray[np.float32]:
    """Airborne sound pressure snapshot in Pa near the machine.

    Broadband flow/fan noise, tones at 1x, blade/vane pass and magnetic hum (twice line
    frequency), and the housing's radiation of the bearing impacts.
    """
    d = snap.damage
    kind = snap.fault_kind
    bearing = kind in BEARING_FAULTS
    t = np.arange(n) / fs
    theta = 2 * np.pi * snap.shaft_hz * t + snap.theta0
    tone_1x = 0.02 * (1.0 + (5.0 * d if kind == "imbalance" else 0.0))
    tone_2x = 0.01 * (1.0 + (8.0 * d if kind == "misalignment" else 0.0))
    x = tone_1x * np.sin(theta) + tone_2x * np.sin(2 * theta + params.harmonic_phase[1])
    blade = params.blades * theta
    x += params.blade_tone_pa * (np.sin(blade) + 0.4 * np.sin(2 * blade + params.harmonic_phase[2]))
    x += params.hum_pa * np.sin(2 * np.pi * 2 * params.line_hz * t + params.harmonic_phase[1])
    # Pink-ish broadband: low-passed white noise with a white floor.
    white = rng.standard_normal(n)
    alpha = math.exp(-2 * math.pi * 800.0 / fs)
    low = signal.lfilter([1 - alpha], [1.0, -alpha], white)
    low *= 1.0 / math.sqrt((1 - alpha) / (1 + alpha))
    broadband = params.acoustic_noise_pa * (1.0 + (1.5 * d * d if bearing else 0.3 * d))
    x += broadband * (0.9 * low + 0.436 * rng.standard_normal(n))
    if bearing and d > 0.0:
        impact_scale = params.impact_peak_pa * d**0.7
        x += _ringing(snap, params, rng, impact_scale=impact_scale, noise_rms=0.0, noise_mod=0.0, n=n, fs=fs)
    return x.astype(np.float32)


def to_velocity_mm_s(accel_g: NDArray[np.float32], fs: float, f_low_hz: float = 2.0) -> NDArray[np.float32]:
    """Integrate an acceleration snapshot (g) to velocity (mm/s) in the frequency domain."""
    n = accel_g.size
    spec = np.fft.rfft(accel_g.astype(np.float64) * G * 1000.0)
    f = np.fft.rfftfreq(n, 1.0 / fs)
    scale = np.zeros_like(f, dtype=np.complex128)
    keep = f >= f_low_hz
    scale[keep] = 1.0 / (2j * np.pi * f[keep])
    return np.fft.irfft(spec * scale, n).astype(np.float32)
