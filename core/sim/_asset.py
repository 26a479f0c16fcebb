"""One simulated machine: ground-truth state and sensor waveforms at any simulated instant."""

from __future__ import annotations

import math
from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from pydantic import BaseModel, ConfigDict

from core.assets import AssetConfig, ChannelConfig, Quantity
from core.sim._faults import FaultKind, FaultSpec
from core.sim._process import (
    TAG_ACOUSTIC,
    TAG_EVENTS,
    TAG_LOAD,
    TAG_SPEED,
    TAG_TEMPERATURE,
    TAG_VIB,
    G,
    ProcessModel,
    asset_key,
    derive_params,
    rng_for,
)
from core.sim._signals import Snapshot, bearing_impacts, synth_acoustic, synth_vibration, to_velocity_mm_s

__all__ = ["AssetSimulator", "AssetState"]

#: Measurement noise (1 sigma) of the slow channels.
_TEMPERATURE_NOISE_C = 0.05
_SPEED_NOISE_RPM = 0.5
_LOAD_NOISE_PCT = 0.3


class AssetState(BaseModel):
    """Ground truth of one asset at one simulated instant.

    Attributes:
        asset_id: the asset.
        t_hours: simulated time in hours.
        fault_kind: injected fault mode (``"none"`` if healthy).
        fault_active: whether the fault has initiated (``t >= onset``).
        damage: damage index in [0, 1]; 1 is failure.
        health_index: ``1 - damage``.
        rul_hours: remaining useful life (time of event minus ``t``, floored at 0);
            ``None`` for an asset with no fault.
        failed: whether the asset has reached its time of event.
        shaft_speed_rpm: shaft speed.
        load_pct: load in percent of rating.
        temperature_c: bearing-housing temperature.
    """

    model_config = ConfigDict(frozen=True)

    asset_id: str
    t_hours: float
    fault_kind: FaultKind
    fault_active: bool
    damage: float
    health_index: float
    rul_hours: float | None
    failed: bool
    shaft_speed_rpm: float
    load_pct: float
    temperature_c: float


def _check_time(t_hours: float) -> float:
    t = float(t_hours)
    if not math.isfinite(t) or t < 0.0:
        raise ValueError(f"t_hours must be a finite number >= 0; got {t_hours!r}")
    return t


def _check_rate(n_samples: int, fs: float) -> None:
    if int(n_samples) < 1:
        raise ValueError(f"n_samples must be >= 1; got {n_samples!r}")
    if not (math.isfinite(fs) and fs > 0):
        raise ValueError(f"fs must be a positive sample rate in Hz; got {fs!r}")


class AssetSimulator:
    """Physics-based simulator of one rotating machine with rolling element bearings.

    Every output is a pure function of ``(asset, fault, seed, ambient_c, t_hours)`` and the
    requested length: the same arguments give bit-identical arrays, in any call order.

    Args:
        asset: the machine (speed, bearing geometry, class, channels).
        fault: the injected fault; ``None`` is a healthy asset.
        seed: non-negative seed of every random draw.
        ambient_c: ambient temperature in degC.
    """

    def __init__(
        self, asset: AssetConfig, fault: FaultSpec | None = None, *, seed: int = 0, ambient_c: float = 25.0
    ) -> None:
        if int(seed) < 0:
            raise ValueError(f"seed must be a non-negative integer; got {seed!r}")
        self.asset = asset
        self.fault = fault if fault is not None else FaultSpec.healthy()
        self.seed = int(seed)
        self.ambient_c = float(ambient_c)
        self._key = asset_key(asset.asset_id)
        self._params = derive_params(asset, self.fault, self.seed)
        self._process = ProcessModel(asset, self.fault, self._params, self.ambient_c)

    def __repr__(self) -> str:
        return f"AssetSimulator({self.asset.asset_id!r}, fault={self.fault.kind!r}, seed={self.seed})"

    @property
    def resonance_hz(self) -> float:
        """Structural resonance excited by bearing impacts (ground truth, for analysis bands)."""
        return self._params.resonance_hz

    @property
    def time_of_event_hours(self) -> float | None:
        """Simulated hour of failure, or ``None`` for a healthy asset."""
        return None if self.fault.kind == "none" else self.fault.time_of_event

    def state(self, t_hours: float) -> AssetState:
        """Ground-truth state at ``t_hours``."""
        t = _check_time(t_hours)
        damage = float(self._process.damage(t))
        healthy = self.fault.kind == "none"
        return AssetState(
            asset_id=self.asset.asset_id,
            t_hours=t,
            fault_kind=self.fault.kind,
            fault_active=not healthy and t >= self.fault.onset_hours,
            damage=damage,
            health_index=1.0 - damage,
            rul_hours=None if healthy else max(self.fault.time_of_event - t, 0.0),
            failed=not healthy and t >= self.fault.time_of_event,
            shaft_speed_rpm=float(self._process.speed_rpm(t)),
            load_pct=float(self._process.load_pct(t)),
            temperature_c=self._process.temperature_c(t),
        )

    def trajectory(self, t_hours: Sequence[float] | NDArray[np.float64]) -> list[AssetState]:
        """Ground-truth states at several instants (e.g. a run-to-failure grid)."""
        return [self.state(float(t)) for t in np.asarray(t_hours, dtype=np.float64).ravel()]

    def _snapshot(self, t: float, duration_s: float) -> Snapshot:
        damage = float(self._process.damage(t))
        shaft_hz = float(self._process.speed_rpm(t)) / 60.0
        freqs = self.asset.bearing.defect_frequencies(shaft_hz)
        rng_angles = rng_for(self.seed, self._key, TAG_EVENTS, t, sub=0)
        theta0, cage_phase = (float(v) for v in rng_angles.uniform(0.0, 2 * math.pi, 2))
        times, amps = bearing_impacts(
            self.fault.kind,
            damage,
            freqs,
            theta0=theta0,
            cage_phase=cage_phase,
            load_zone_phase=self._params.load_zone_phase,
            modulation_depth=self._params.modulation_depth,
            rng_times=rng_for(self.seed, self._key, TAG_EVENTS, t, sub=1),
            rng_amps=rng_for(self.seed, self._key, TAG_EVENTS, t, sub=2),
            duration_s=duration_s,
        )
        load = float(self._process.load_pct(t))
        return Snapshot(self.fault.kind, damage, shaft_hz, load, freqs, theta0, cage_phase, times, amps)

    def vibration(
        self, t_hours: float, n_samples: int = 25600, fs: float = 25600.0, *, axis: str = "radial"
    ) -> NDArray[np.float32]:
        """Acceleration snapshot in g starting at ``t_hours``.

        Args:
            t_hours: simulated time of the snapshot start.
            n_samples: number of samples.
            fs: sample rate in Hz (resonances above ``0.42 fs`` are moved below it).
            axis: ``"radial"`` or ``"axial"``.

        Returns:
            ``float32`` array of shape ``(n_samples,)``.
        """
        t = _check_time(t_hours)
        _check_rate(n_samples, fs)
        if axis not in ("radial", "axial"):
            raise ValueError(f"axis must be 'radial' or 'axial'; got {axis!r}")
        snap = self._snapshot(t, n_samples / fs)
        rng = rng_for(self.seed, self._key, TAG_VIB, t, sub=1 if axis == "axial" else 0)
        return synth_vibration(snap, self._params, rng, n=int(n_samples), fs=float(fs), axis=axis)

    def acoustic(self, t_hours: float, n_samples: int = 16000, fs: float = 16000.0) -> NDArray[np.float32]:
        """Sound pressure snapshot in Pa; its bearing impacts coincide with :meth:`vibration`'s."""
        t = _check_time(t_hours)
        _check_rate(n_samples, fs)
        snap = self._snapshot(t, n_samples / fs)
        rng = rng_for(self.seed, self._key, TAG_ACOUSTIC, t)
        return synth_acoustic(snap, self._params, rng, n=int(n_samples), fs=float(fs))

    def _slow_channel(self, tag: int, t: float, n: int, fs: float, noise: float) -> NDArray[np.float32]:
        times = t + np.arange(n) / fs / 3600.0
        if tag == TAG_SPEED:
            values = self._process.speed_rpm(times)
        elif tag == TAG_LOAD:
            values = self._process.load_pct(times)
        else:  # temperature moves on a time scale of tens of minutes: hold it over the block
            values = np.full(n, self._process.temperature_c(t))
        values = values + noise * rng_for(self.seed, self._key, tag, t).standard_normal(n)
        return values.astype(np.float32)

    def sample(self, channel: ChannelConfig, t_hours: float, n_samples: int) -> NDArray[np.float32]:
        """Samples of one configured channel, at its rate and in its unit, from ``t_hours``.

        Args:
            channel: the channel; its quantity picks the model and its unit the scale.
            t_hours: simulated time of the first sample.
            n_samples: number of samples.

        Returns:
            ``float32`` array of shape ``(n_samples,)``.

        Raises:
            ValueError: the quantity (pressure, current, generic) is not simulated.
        """
        t = _check_time(t_hours)
        fs = channel.sample_rate_hz
        _check_rate(n_samples, fs)
        n = int(n_samples)
        axis = "axial" if "ax" in channel.name.lower().split("_") or "axial" in channel.name.lower() else "radial"
        match channel.quantity:
            case Quantity.ACCELERATION:
                accel = self.vibration(t, n, fs, axis=axis)
                return accel if channel.unit == "g" else (accel * np.float32(G)).astype(np.float32)
            case Quantity.VELOCITY:
                return to_velocity_mm_s(self.vibration(t, n, fs, axis=axis), fs)
            case Quantity.SOUND_PRESSURE:
                return self.acoustic(t, n, fs)
            case Quantity.TEMPERATURE:
                return self._slow_channel(TAG_TEMPERATURE, t, n, fs, _TEMPERATURE_NOISE_C)
            case Quantity.SPEED:
                return self._slow_channel(TAG_SPEED, t, n, fs, _SPEED_NOISE_RPM)
            case Quantity.LOAD:
                if channel.unit != "%":
                    raise ValueError(f"load channel {channel.name!r}: only unit '%' is simulated; got {channel.unit!r}")
                return self._slow_channel(TAG_LOAD, t, n, fs, _LOAD_NOISE_PCT)
            case _:
                raise ValueError(
                    f"channel {channel.name!r}: quantity {channel.quantity.value!r} is not simulated; expected one of "
                    "acceleration, velocity, sound_pressure, temperature, speed, load"
                )
