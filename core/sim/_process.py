"""Per-asset physical parameters and the slow process variables: speed, load, temperature.

Everything here is a deterministic function of the simulated time, so any instant can be
evaluated without stepping a state from the start.
"""

from __future__ import annotations

import math
import zlib
from dataclasses import dataclass

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.assets import AssetConfig, AssetKind
from core.iso import ISO_ZONE_LIMITS
from core.sim._faults import FaultSpec, damage_at

__all__ = ["AssetParams", "ProcessModel", "asset_key", "derive_params", "rng_for"]

G = 9.80665  # m/s^2 per g


#: Bearing-housing temperature rise at failure by fault kind (degC above the healthy value).
_FAULT_HEAT_C = {
    "none": 0.0,
    "outer_race": 30.0,
    "inner_race": 35.0,
    "ball": 30.0,
    "cage": 38.0,
    "imbalance": 8.0,
    "misalignment": 16.0,
}

# Random-stream tags; the stream of a quantity never depends on another quantity's draws.
TAG_PARAMS = 1
TAG_EVENTS = 2
TAG_VIB = 3
TAG_ACOUSTIC = 4
TAG_TEMPERATURE = 5
TAG_SPEED = 6
TAG_LOAD = 7


def asset_key(asset_id: str) -> int:
    """Stable 32-bit key of an asset id (``hash()`` is salted per process, so not used)."""
    return zlib.crc32(asset_id.encode("utf-8"))


def rng_for(seed: int, key: int, tag: int, t_hours: float | None = None, sub: int = 0) -> np.random.Generator:
    """Independent, reproducible random stream for one (seed, asset, quantity, instant).

    The instant enters through the exact bits of its float64, so two calls with the same
    ``t_hours`` give bit-identical draws and any other instant gives an unrelated stream.
    """
    entropy = [seed, key, tag, sub]
    if t_hours is not None:
        bits = int(np.float64(t_hours).view(np.uint64))
        entropy += [bits & 0xFFFFFFFF, bits >> 32]
    return np.random.Generator(np.random.PCG64(np.random.SeedSequence(entropy)))


@dataclass(frozen=True, slots=True)
class AssetParams:
    """Physical constants of one simulated machine, drawn once per (asset, seed).

    Amplitudes of vibration are in g (peak for tones, RMS for noise), acoustic in Pa.
    """

    resonance_hz: float
    damping_ratio: float
    harmonic_mm_s: tuple[float, float, float]
    zone_cd_mm_s: float
    harmonic_phase: tuple[float, float, float]
    sensor_noise_g: float
    structural_noise_g: float
    impact_peak_g: float
    modulation_depth: tuple[float, float]  # (at onset, at failure)
    load_zone_phase: float
    blades: int
    line_hz: float
    acoustic_noise_pa: float
    blade_tone_pa: float
    hum_pa: float
    impact_peak_pa: float
    load_base_pct: float
    load_daily_pct: float
    load_phase: float
    wander_phases: tuple[float, ...]
    slip_per_load: float
    heat_load_c: float
    heat_fault_c: float
    thermal_tau_hours: float


def derive_params(asset: AssetConfig, fault: FaultSpec, seed: int) -> AssetParams:
    """Draw the machine's physical constants from its configuration and the seed."""
    rng = rng_for(seed, asset_key(asset.asset_id), TAG_PARAMS)
    # Smaller bearings in stiffer housings ring higher; keep in the usual 2-5 kHz band.
    f_res = 3800.0 * math.sqrt(39.04 / asset.bearing.pitch_diameter_mm) * rng.uniform(0.9, 1.1)
    f_res = float(np.clip(f_res, 2000.0, 5000.0))
    # Healthy overall velocity well inside zone A, split over 1x/2x/3x (RMS, mm/s).
    zone_ab_mm_s, _, zone_cd_mm_s = ISO_ZONE_LIMITS[asset.machine_class]
    v_rms = zone_ab_mm_s * rng.uniform(0.45, 0.7)
    shares = (0.9, 0.3 * rng.uniform(0.7, 1.3), 0.15 * rng.uniform(0.7, 1.3))
    blades = {
        AssetKind.PUMP: int(rng.integers(5, 8)),
        AssetKind.FAN: int(rng.integers(6, 13)),
    }.get(asset.kind, 10)
    base_load = {AssetKind.FAN: rng.uniform(60, 75), AssetKind.MOTOR: rng.uniform(55, 85)}.get(asset.kind, rng.uniform(65, 85))
    return AssetParams(
        resonance_hz=f_res,
        damping_ratio=float(rng.uniform(0.03, 0.05)),
        harmonic_mm_s=(v_rms * shares[0], v_rms * shares[1], v_rms * shares[2]),
        zone_cd_mm_s=zone_cd_mm_s,
        harmonic_phase=(0.0, float(rng.uniform(0, 2 * math.pi)), float(rng.uniform(0, 2 * math.pi))),
        sensor_noise_g=float(rng.uniform(0.004, 0.008)),
        structural_noise_g=float(rng.uniform(0.02, 0.04)),
        impact_peak_g=float(rng.uniform(3.0, 5.0)),
        modulation_depth=(0.3, 0.75),
        load_zone_phase=float(rng.uniform(0, 2 * math.pi)),
        blades=blades,
        line_hz=50.0,
        acoustic_noise_pa=float(rng.uniform(0.15, 0.3)),
        blade_tone_pa=float(rng.uniform(0.08, 0.2)) if asset.kind != AssetKind.MOTOR else 0.03,
        hum_pa=0.08 if asset.kind == AssetKind.MOTOR else 0.02,
        impact_peak_pa=float(rng.uniform(1.0, 2.0)),
        load_base_pct=float(base_load),
        load_daily_pct=float(rng.uniform(5, 12)),
        load_phase=float(rng.uniform(0, 2 * math.pi)),
        wander_phases=tuple(float(p) for p in rng.uniform(0, 2 * math.pi, 6)),
        slip_per_load=0.012,
        heat_load_c=float(rng.uniform(18, 28)),
        heat_fault_c=_FAULT_HEAT_C[fault.kind] * float(rng.uniform(0.9, 1.1)),
        thermal_tau_hours=float(rng.uniform(0.5, 1.0)),
    )


class ProcessModel:
    """Speed, load and bearing temperature of one asset as functions of simulated time.

    Args:
        asset: the machine.
        fault: the injected fault.
        params: its physical constants.
        ambient_c: ambient temperature.
    """

    _WINDOW_TAUS = 8.0
    _QUAD_POINTS = 129

    def __init__(self, asset: AssetConfig, fault: FaultSpec, params: AssetParams, ambient_c: float) -> None:
        self._asset = asset
        self._fault = fault
        self._p = params
        self._ambient_c = ambient_c

    def damage(self, t_hours: ArrayLike) -> NDArray[np.float64]:
        """Damage index in [0, 1]."""
        return damage_at(self._fault, t_hours)

    def load_pct(self, t_hours: ArrayLike) -> NDArray[np.float64]:
        """Load in percent of rating: daily cycle plus slow wander around a base load."""
        t = np.asarray(t_hours, dtype=np.float64)
        p = self._p
        ph = p.wander_phases
        wander = (
            0.5 * np.sin(2 * np.pi * t / 0.73 + ph[0])
            + 0.3 * np.sin(2 * np.pi * t / 3.1 + ph[1])
            + 0.2 * np.sin(2 * np.pi * t / 11.3 + ph[2])
        )
        load = p.load_base_pct + p.load_daily_pct * np.sin(2 * np.pi * t / 24.0 + p.load_phase) + 6.0 * wander
        return np.clip(load, 0.0, 100.0) * self._fault.load_factor(t)

    def speed_rpm(self, t_hours: ArrayLike) -> NDArray[np.float64]:
        """Shaft speed: induction-motor slip with load plus a small supply/process wander."""
        t = np.asarray(t_hours, dtype=np.float64)
        ph = self._p.wander_phases
        wander = 0.6 * np.sin(2 * np.pi * t / 0.37 + ph[3]) + 0.4 * np.sin(2 * np.pi * t / 5.3 + ph[4])
        slip = self._p.slip_per_load * (0.75 - self.load_pct(t) / 100.0)
        return self._asset.shaft_speed_rpm * (1.0 + slip + 0.002 * wander)

    def _steady_temperature(self, t_hours: NDArray[np.float64]) -> NDArray[np.float64]:
        load = self.load_pct(t_hours) / 100.0
        fault_heat = self._p.heat_fault_c * self.damage(t_hours) ** 1.5
        return self._ambient_c + self._p.heat_load_c * load**1.5 + fault_heat

    def temperature_c(self, t_hours: float) -> float:
        """Bearing-housing temperature: first-order lag of the steady-state rise.

        Solves ``tau dT/dt = T_ss(t) - T`` as the convolution of ``T_ss`` with the
        exponential kernel over the last few time constants (the machine is taken to run
        in thermal equilibrium at ``t = 0``), so any instant is evaluated directly.
        """
        tau = self._p.thermal_tau_hours
        start = max(0.0, t_hours - self._WINDOW_TAUS * tau)
        s = np.linspace(start, t_hours, self._QUAD_POINTS)
        if t_hours <= start:
            return float(self._steady_temperature(s[-1:])[0])
        kernel = np.exp(-(t_hours - s) / tau) / tau
        integral = float(np.trapezoid(kernel * self._steady_temperature(s), s))
        initial = float(self._steady_temperature(s[:1])[0]) * math.exp(-(t_hours - start) / tau)
        return initial + integral
