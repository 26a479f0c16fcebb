"""Per-asset feature pipeline: one window of every channel in, one features mapping out."""

from __future__ import annotations

import itertools
import math
from collections import deque
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import numpy as np
from numpy.typing import NDArray

from core.assets import AssetConfig, ChannelConfig, Quantity
from core.edge_config import FeatureConfig
from core.iso import iso_zone
from core.signal._envelope import defect_amplitudes, envelope_spectrum
from core.signal._spectral import band_energies, octave_bands, power_spectrum, velocity_rms_mm_s
from core.signal._stats import time_stats

__all__ = ["ChannelWindow", "FeatureConfig", "FeaturePipeline"]

#: Envelope analysis needs the bearing resonances, which sit in the kHz range.
_MIN_ENVELOPE_RATE_HZ = 2000.0
_P_REF = 20e-6


@dataclass(frozen=True)
class ChannelWindow:
    """The samples of one channel inside one window, with the time of the first sample."""

    start: datetime
    values: NDArray[np.float64]


class FeaturePipeline:
    """Computes the features of one asset, window after window.

    Stateless per window except for the temperature slope, which fits a line through the last
    ``temperature_horizon_s`` of readings.

    Args:
        asset: the asset (channels, bearing geometry, shaft speed, ISO machine class).
        config: what to compute.
    """

    def __init__(self, asset: AssetConfig, config: FeatureConfig | None = None) -> None:
        self.asset = asset
        self.config = config or FeatureConfig()
        self._temp_history: dict[str, deque[tuple[float, float]]] = {}

    def compute(self, window: Mapping[str, ChannelWindow]) -> dict[str, dict[str, float]]:
        """Features of every channel present in ``window`` (channel name -> feature name -> value)."""
        shaft_hz = self._shaft_hz(window)
        out: dict[str, dict[str, float]] = {}
        for name, cw in window.items():
            ch = self.asset.channel(name)
            values = np.asarray(cw.values, dtype=np.float64)
            if values.size == 0:
                continue
            feats = self._channel_features(ch, cw.start, values, shaft_hz)
            out[name] = {k: v for k, v in feats.items() if math.isfinite(v)}
        return out

    # ----------------------------------------------------------------- per quantity
    def _channel_features(self, ch: ChannelConfig, start: datetime, x: NDArray[np.float64], shaft_hz: float) -> dict[str, float]:
        if ch.quantity == Quantity.ACCELERATION and x.size >= 64:
            return self.vibration(ch, x, shaft_hz)
        if ch.quantity == Quantity.SOUND_PRESSURE and x.size >= 64:
            return self.acoustic(ch, x)
        if ch.quantity == Quantity.TEMPERATURE:
            return self.temperature(ch, start, x)
        return _level_stats(x)

    def vibration(self, ch: ChannelConfig, x: NDArray[np.float64], shaft_hz: float) -> dict[str, float]:
        """Time statistics, band energies, velocity RMS + ISO zone and envelope defect amplitudes."""
        cfg, fs = self.config, ch.sample_rate_hz
        feats = {k: float(v) for k, v in time_stats(x).items()}
        spectrum = power_spectrum(x, fs)
        edges = [e for e in cfg.vib_bands_hz if e < fs / 2] + [fs / 2]
        bands = list(itertools.pairwise(edges))
        for (lo, hi), energy in zip(bands, band_energies(x, fs, bands, spectrum=spectrum), strict=True):
            feats[f"band_{lo:.0f}_{hi:.0f}"] = float(energy)
        v_lo, v_hi = cfg.velocity_band_hz
        if x.size / fs >= 2.0 / v_lo:  # need two periods of the lowest frequency to resolve it
            v = float(velocity_rms_mm_s(x, fs, ch.unit, v_lo, v_hi, spectrum=spectrum))
            feats["vel_rms_mm_s"] = v
            feats["iso_zone"] = float(iso_zone(v, self.asset.machine_class, cfg.zone_limits))
        if cfg.envelope and fs >= _MIN_ENVELOPE_RATE_HZ:
            feats.update(self._envelope(x, fs, shaft_hz))
        return feats

    def _envelope(self, x: NDArray[np.float64], fs: float, shaft_hz: float) -> dict[str, float]:
        cfg = self.config
        defects = self.asset.bearing.defect_frequencies(shaft_hz).as_dict()
        spec = envelope_spectrum(x, fs, f_min_band=3.0 * max(defects.values()))
        feats = {
            f"env_{k}": v
            for k, v in defect_amplitudes(spec, defects, harmonics=cfg.envelope_harmonics, tol=cfg.envelope_tol).items()
        }
        feats["sk_max"] = spec.kurtosis
        feats["sk_band_lo_hz"], feats["sk_band_hi_hz"] = spec.band
        feats["shaft_hz"] = shaft_hz
        return feats

    def acoustic(self, ch: ChannelConfig, x: NDArray[np.float64]) -> dict[str, float]:
        """Sound level (dB SPL), kurtosis and (fractional-)octave band levels."""
        fs = ch.sample_rate_hz
        stats = time_stats(x)
        rms = float(stats["rms"])
        feats = {"rms": rms, "spl_db": _db(rms**2), "kurtosis": float(stats["kurtosis"]), "crest": float(stats["crest"])}
        bands = octave_bands(fs, 31.5 if x.size / fs >= 0.1 else 125.0, self.config.acoustic_fraction)
        for (lo, hi), energy in zip(bands, band_energies(x, fs, bands), strict=True):
            feats[f"band_{math.sqrt(lo * hi):.0f}_db"] = _db(float(energy))
        return feats

    def temperature(self, ch: ChannelConfig, start: datetime, x: NDArray[np.float64]) -> dict[str, float]:
        """Level and slope (degC/min, least squares over the trailing horizon)."""
        t0 = start.timestamp()
        hist = self._temp_history.setdefault(ch.name, deque())
        t = t0 + np.arange(x.size) / ch.sample_rate_hz
        # Bound the history by count too: a fast temperature channel must not grow it without end.
        step = max(1, x.size // 64)
        hist.extend(zip(t[::step].tolist(), x[::step].tolist(), strict=True))
        horizon = self.config.temperature_horizon_s
        while hist and hist[0][0] < t[-1] - horizon:
            hist.popleft()
        while len(hist) > 4096:
            hist.popleft()
        feats = {"mean": float(x.mean()), "max": float(x.max()), "last": float(x[-1])}
        if len(hist) >= 3:
            ts, vs = np.array(hist).T
            if np.ptp(ts) > 0:
                slope = np.polyfit(ts - ts[0], vs, 1)[0]
                feats["slope_per_min"] = float(slope * 60.0)
        return feats

    # ----------------------------------------------------------------- helpers
    def _shaft_hz(self, window: Mapping[str, ChannelWindow]) -> float:
        """Live speed from a ``speed`` channel of the asset when present, else the configured speed."""
        for name, cw in window.items():
            ch = self.asset.channel(name)
            if ch.quantity == Quantity.SPEED and np.size(cw.values) and float(np.mean(cw.values)) > 0:
                return float(np.mean(cw.values)) / 60.0
        return self.asset.shaft_hz


def _level_stats(x: NDArray[np.float64]) -> dict[str, float]:
    return {"mean": float(x.mean()), "min": float(x.min()), "max": float(x.max()), "std": float(x.std())}


def _db(power: float) -> float:
    return 10.0 * math.log10(max(power, 1e-30) / _P_REF**2)
