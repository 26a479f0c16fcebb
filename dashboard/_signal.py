"""Spectra for the asset page: amplitude spectrum and envelope spectrum of a vibration batch.

The envelope spectrum follows the classic recipe (Randall & Antoni, MSSP 2011): band-pass
around the structural resonance that bearing impacts excite, take the Hilbert envelope, and
look at its spectrum, where a bearing defect shows at its characteristic frequency and harmonics.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
from numpy.typing import NDArray
from scipy import signal

from core.assets import BearingGeometry

__all__ = ["amplitude_spectrum", "averaged", "default_band", "defect_markers", "envelope_spectrum"]

FloatArray = NDArray[np.float64]


def amplitude_spectrum(x: NDArray[np.floating], fs: float) -> tuple[FloatArray, FloatArray]:
    """One-sided amplitude spectrum (peak amplitude, Hann window, mean removed).

    Returns:
        ``(frequencies in Hz, amplitude in the signal's unit)``.
    """
    v = np.asarray(x, dtype=np.float64)
    v = v - v.mean()
    w = np.hanning(v.size)
    amp: FloatArray = np.abs(np.fft.rfft(v * w)) * 2.0 / w.sum()
    freqs: FloatArray = np.fft.rfftfreq(v.size, 1.0 / fs).astype(np.float64)
    return freqs, amp


def default_band(fs: float) -> tuple[float, float]:
    """A wide band above the shaft harmonics and below Nyquist, where impact resonances ring."""
    return 0.08 * fs, 0.42 * fs


def envelope_spectrum(x: NDArray[np.floating], fs: float, band: tuple[float, float] | None = None,
                      *, order: int = 4) -> tuple[FloatArray, FloatArray]:
    """Amplitude spectrum of the Hilbert envelope of ``x`` band-passed to ``band``.

    Raises:
        ValueError: the band is not inside ``(0, fs/2)``.
    """
    lo, hi = band or default_band(fs)
    if not 0 < lo < hi < fs / 2:
        raise ValueError(f"band must satisfy 0 < low < high < fs/2 = {fs / 2:g} Hz, got ({lo:g}, {hi:g})")
    sos = signal.butter(order, [lo, hi], btype="bandpass", fs=fs, output="sos")
    filtered = signal.sosfiltfilt(sos, np.asarray(x, dtype=np.float64))
    envelope = np.abs(signal.hilbert(filtered))
    return amplitude_spectrum(envelope, fs)


def averaged(spectra: Sequence[tuple[FloatArray, FloatArray]]) -> tuple[FloatArray, FloatArray]:
    """Mean of spectra on the same frequency grid (batches of equal length and rate)."""
    freqs = spectra[0][0]
    same = [a for f, a in spectra if f.shape == freqs.shape and np.allclose(f, freqs)]
    return freqs, np.mean(same, axis=0)


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
