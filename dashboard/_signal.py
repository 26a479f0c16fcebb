"""Spectra for the asset page: amplitude spectrum and envelope spectrum of vibration batches.

Both are :mod:`core.signal`'s, the edge agent's own (the envelope spectrum band-passes around the
structural resonance that bearing impacts excite, takes the Hilbert envelope and looks at its
spectrum, where a bearing defect shows at its characteristic frequency and harmonics: Randall &
Antoni, MSSP 2011). Here they read in peak amplitude, for a fixed band the engineer can move, over
one batch or the mean of several.
"""

from __future__ import annotations

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core import signal as core_signal
from core.assets import BearingGeometry

__all__ = ["amplitude_spectrum", "default_band", "defect_markers", "envelope_spectrum"]

FloatArray = NDArray[np.float64]


def amplitude_spectrum(x: ArrayLike, fs: float) -> tuple[FloatArray, FloatArray]:
    """One-sided amplitude spectrum (peak amplitude, Hann window, mean removed) of a batch, or the
    mean spectrum of equally long batches ``(batches, n)``.

    Returns:
        ``(frequencies in Hz, amplitude in the signal's unit)``.
    """
    freqs, amp = core_signal.amplitude_spectrum(x, fs, scaling="peak")
    return freqs, _mean(amp)


def default_band(fs: float) -> tuple[float, float]:
    """A wide band above the shaft harmonics and below Nyquist, where impact resonances ring."""
    return 0.08 * fs, 0.42 * fs


def envelope_spectrum(x: ArrayLike, fs: float, band: tuple[float, float] | None = None) -> tuple[FloatArray, FloatArray]:
    """Amplitude spectrum (peak amplitude) of the Hilbert envelope of ``x`` band-passed to ``band``; for
    equally long batches ``(batches, n)``, their mean.

    Raises:
        ValueError: the band is not inside ``(0, fs/2)``.
    """
    lo, hi = band or default_band(fs)
    if not 0 < lo < hi < fs / 2:
        raise ValueError(f"band must satisfy 0 < low < high < fs/2 = {fs / 2:g} Hz, got ({lo:g}, {hi:g})")
    spec = core_signal.envelope_spectrum(x, fs, (lo, hi), scaling="peak")
    return spec.freqs, _mean(spec.amplitude)


def _mean(amplitude: FloatArray) -> FloatArray:
    return np.asarray(amplitude.mean(axis=0)) if amplitude.ndim > 1 else amplitude


#: Harmonics marked per family: 2x BSF is the ball-spin signature; FTF is marked once.
_HARMONICS = {"shaft": 3, "BPFO": 3, "BPFI": 3, "BSF": 2, "FTF": 1}


def defect_markers(bearing: BearingGeometry, shaft_hz: float) -> list[tuple[str, float, str]]:
    """``(label, frequency, family)`` to mark: shaft orders, and BPFO, BPFI, BSF, FTF with harmonics."""
    f = bearing.defect_frequencies(shaft_hz)
    marks = []
    for name, base in (("shaft", f.shaft), ("BPFO", f.bpfo), ("BPFI", f.bpfi), ("BSF", f.bsf), ("FTF", f.ftf)):
        for k in range(1, _HARMONICS[name] + 1):
            label = f"{k}x" if name == "shaft" else (name if k == 1 else f"{k}x{name}")
            marks.append((label, k * base, name))
    return marks
