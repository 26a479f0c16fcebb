"""Spectra and spectral features: power and amplitude spectra, band energies, velocity RMS by
frequency-domain integration.

All of them work along the last axis, so a panel of windows takes one call. The ISO zones of the
velocity RMS are in :mod:`core.iso`.
"""

from __future__ import annotations

from collections.abc import Sequence
from functools import lru_cache
from typing import Literal

import numpy as np
from numpy.lib.stride_tricks import sliding_window_view
from numpy.typing import ArrayLike, NDArray
from scipy import signal

__all__ = [
    "amplitude_spectrum",
    "band_energies",
    "octave_bands",
    "power_spectrum",
    "velocity_rms_mm_s",
]

G = 9.80665


def _power_spectrum(x: NDArray[np.float64]) -> NDArray[np.float64]:
    """One-sided power per rfft bin such that the bins sum to the mean square of ``x``."""
    n = x.shape[-1]
    spec = np.abs(np.fft.rfft(x, axis=-1)) ** 2 / n**2
    spec[..., 1:] *= 2.0
    if n % 2 == 0:
        spec[..., -1] /= 2.0
    return np.asarray(spec, dtype=np.float64)


def power_spectrum(x: ArrayLike, fs: float) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(freqs, power)`` of ``x`` with its mean removed; the bins sum to its variance (Parseval)."""
    a = np.asarray(x, dtype=np.float64)
    freqs = np.asarray(np.fft.rfftfreq(a.shape[-1], 1.0 / fs), dtype=np.float64)
    return freqs, _power_spectrum(a - a.mean(axis=-1, keepdims=True))


def amplitude_spectrum(
    x: ArrayLike, fs: float, *, nperseg: int | None = None, nfft: int | None = None,
    scaling: Literal["rms", "peak"] = "rms",
) -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """``(freqs, amplitude)`` of ``x`` (mean removed) along its last axis: Hann window, Welch-averaged.

    Args:
        x: samples, shape ``(..., n)``.
        fs: sample rate in Hz.
        nperseg: segment length (50 % overlap); default the whole window.
        nfft: FFT length, zero-padding each segment (a finer grid, not a finer resolution);
            default the segment length.
        scaling: ``rms``: a sine of amplitude A peaks near A / sqrt(2); ``peak``: near A.
    """
    a = np.asarray(x, dtype=np.float64)
    a = a - a.mean(axis=-1, keepdims=True)
    seg = a.shape[-1] if nperseg is None else min(nperseg, a.shape[-1])
    return _amplitude_spectrum(a, fs, seg, nfft=nfft, scaling=scaling)


@lru_cache(maxsize=64)
def _hann(n: int) -> NDArray[np.float64]:
    return np.asarray(signal.get_window("hann", n), dtype=np.float64)


def _frames_rfft(a: NDArray[np.float64], n: int, hop: int, nfft: int | None = None) -> NDArray[np.complex128]:
    """Spectra of Hann-windowed frames of length ``n`` every ``hop`` samples along the last axis, zero-padded to
    ``nfft``: shape ``(..., frames, nfft // 2 + 1)``."""
    frames = sliding_window_view(a, n, axis=-1)[..., ::hop, :]
    return np.fft.rfft(frames * _hann(n), n=nfft, axis=-1)


def _amplitude_spectrum(x: NDArray[np.float64], fs: float, seg: int, *, nfft: int | None = None,
                        scaling: str = "rms") -> tuple[NDArray[np.float64], NDArray[np.float64]]:
    """Welch-averaged amplitude spectrum (Hann, 50 % overlap) of ``x`` whose mean is already removed."""
    if scaling not in ("rms", "peak"):
        raise ValueError(f"scaling must be 'rms' or 'peak', got {scaling!r}")
    n = seg if nfft is None else max(nfft, seg)
    w = _hann(seg)
    power = (np.abs(_frames_rfft(x, seg, max(1, seg // 2), n)) ** 2).mean(axis=-2) / w.sum() ** 2
    if scaling == "peak":
        amplitude = 2.0 * np.sqrt(power)
    else:
        power[..., 1:] *= 2.0
        if n % 2 == 0:
            power[..., -1] /= 2.0
        amplitude = np.sqrt(power)
    return np.asarray(np.fft.rfftfreq(n, 1.0 / fs), dtype=np.float64), np.asarray(amplitude, dtype=np.float64)


def band_energies(
    x: ArrayLike,
    fs: float,
    bands: Sequence[tuple[float, float]],
    *,
    spectrum: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
) -> NDArray[np.float64]:
    """Mean-square energy of ``x`` (mean removed) in each ``[lo, hi)`` band, shape ``(..., len(bands))``.

    ``spectrum`` (from :func:`power_spectrum`) saves the FFT when the caller has it already.
    """
    freqs, spec = spectrum if spectrum is not None else power_spectrum(x, fs)
    edges = np.asarray(bands, dtype=np.float64).reshape(-1, 2)
    masks = (freqs[None, :] >= edges[:, :1]) & (freqs[None, :] < edges[:, 1:])
    return np.asarray(spec @ masks.T.astype(np.float64))


def velocity_rms_mm_s(
    acc: ArrayLike,
    fs: float,
    unit: str = "g",
    f_lo: float = 10.0,
    f_hi: float = 1000.0,
    *,
    spectrum: tuple[NDArray[np.float64], NDArray[np.float64]] | None = None,
) -> NDArray[np.float64]:
    """Velocity RMS in mm/s of an acceleration window, integrated in the frequency domain over ``[f_lo, f_hi]``.

    Each rfft bin is divided by ``j 2 pi f``; bins outside the band are dropped (the band-pass
    of ISO 20816 broadband velocity). Parseval's theorem gives the RMS without an inverse FFT.
    ``spectrum`` (from :func:`power_spectrum` of ``acc`` in its own unit) saves the FFT.
    """
    if unit not in ("g", "m/s2"):
        raise ValueError(f"unit must be 'g' or 'm/s2', got {unit!r}")
    freqs, spec = spectrum if spectrum is not None else power_spectrum(acc, fs)
    band = (freqs >= f_lo) & (freqs <= min(f_hi, fs / 2))
    weights = np.zeros_like(freqs)
    weights[band] = 1.0 / (2 * np.pi * freqs[band]) ** 2
    scale = G if unit == "g" else 1.0
    return np.asarray(np.sqrt(spec @ weights) * scale * 1000.0)


def octave_bands(fs: float, f_min: float = 31.5, fraction: int = 1) -> list[tuple[float, float]]:
    """Base-2 (1/``fraction``) octave bands from ``f_min`` up to Nyquist, as ``(lo, hi)`` edges."""
    out: list[tuple[float, float]] = []
    centre = f_min
    half = 2 ** (1 / (2 * fraction))
    while centre * half <= fs / 2:
        out.append((centre / half, centre * half))
        centre *= 2 ** (1 / fraction)
    return out
