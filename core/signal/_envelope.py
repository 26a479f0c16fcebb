"""Envelope analysis for rolling element bearings.

Spectral kurtosis picks the resonance band that bearing impacts excite (a short-time-Fourier
"kurtogram-lite": Antoni's spectral kurtosis evaluated for a few window lengths instead of the
full filter-bank tree); the signal is band-passed there and its Hilbert envelope taken (both
in the frequency domain, one FFT pair), and the envelope spectrum searched for the defect
frequencies and their harmonics (Randall & Antoni,
"Rolling element bearing diagnostics - a tutorial", MSSP 25 (2011) 485-520).

The edge pipeline analyses one window at a time in its spectral-kurtosis band; with a fixed band
:func:`envelope_spectrum` takes a whole panel of windows in one call (the dashboard's spectra, the
synthetic-data features), and :func:`spectral_peak` finds a line in any spectrum.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray
from scipy import signal

from core.signal._spectral import _amplitude_spectrum, _frames_rfft

__all__ = [
    "EnvelopeSpectrum",
    "defect_amplitudes",
    "dominant_peak",
    "envelope_spectrum",
    "spectral_kurtosis_band",
    "spectral_peak",
]


@dataclass(frozen=True)
class EnvelopeSpectrum:
    """Amplitude spectrum of the Hilbert envelope of the band-passed signal.

    ``amplitude`` has the shape of the analysed samples with the last axis replaced by ``freqs``.
    """

    freqs: NDArray[np.float64]
    amplitude: NDArray[np.float64]
    band: tuple[float, float]
    kurtosis: float

    @property
    def resolution(self) -> float:
        return float(self.freqs[1] - self.freqs[0])


def spectral_kurtosis_band(
    x: ArrayLike, fs: float, *, npersegs: Sequence[int] = (16, 32, 64), f_min: float = 0.0,
    f_max: float | None = None,
) -> tuple[float, float, float]:
    """The band of highest spectral kurtosis.

    For each STFT window length ``n`` (Hann, 75 % overlap) the spectral kurtosis of every bin is
    ``<|X|^4> / <|X|^2>^2 - 2``; the band is the bin's centre +- ``fs / n`` (the Hann main lobe).
    Bands reaching below ``f_min`` (keep the carrier above the defect harmonics) or above ``f_max``
    (default 0.45 fs: the anti-alias roll-off breeds false kurtosis near Nyquist) are skipped.

    Returns:
        ``(low_hz, high_hz, spectral_kurtosis)``.
    """
    a = np.asarray(x, dtype=np.float64)
    a = a - a.mean()
    top = 0.45 * fs if f_max is None else f_max
    best = (-np.inf, 0.0, 0.0)
    for n in npersegs:
        if n > a.size // 4:
            continue
        power = np.abs(_frames_rfft(a, n, n // 4)) ** 2
        freqs = np.fft.rfftfreq(n, 1.0 / fs)
        mean_p = power.mean(axis=0)
        sk = np.full(freqs.shape, -np.inf)
        live = mean_p > 0
        sk[live] = (power[:, live] ** 2).mean(axis=0) / mean_p[live] ** 2 - 2.0
        half_bw = fs / n
        sk[(freqs - half_bw < f_min) | (freqs + half_bw > top)] = -np.inf
        i = int(np.argmax(sk))
        if sk[i] > best[0]:
            best = (float(sk[i]), float(freqs[i] - half_bw), float(freqs[i] + half_bw))
    if not np.isfinite(best[0]):  # window too short or band constraints too tight: use the upper half
        return fs / 4, top, 0.0
    return best[1], best[2], best[0]


def envelope_spectrum(
    x: ArrayLike, fs: float, band: tuple[float, float] | None = None, *, f_min_band: float = 0.0,
    nperseg: int | None = None, nfft: int | None = None, scaling: Literal["rms", "peak"] = "rms",
    bandpass: Literal["ideal", "butter"] = "ideal",
) -> EnvelopeSpectrum:
    """Envelope amplitude spectrum of ``x`` band-passed in ``band`` (spectral kurtosis band if ``None``).

    Args:
        x: one window of acceleration; with a fixed ``band``, any number of windows ``(..., n)``.
        fs: sample rate in Hz.
        band: ``(low, high)`` Hz of the band-pass (clipped to ``[0.001 fs, 0.499 fs]``); chosen by
            :func:`spectral_kurtosis_band` when ``None``.
        f_min_band: lowest band edge allowed when the band is chosen automatically.
        nperseg: envelope segment length for Welch averaging (Hann, 50 % overlap); default the
            whole window.
        nfft: FFT length, zero-padding each segment; default the segment length.
        scaling: ``rms`` (a sine of amplitude A peaks near A / sqrt(2)) or ``peak`` (near A).
        bandpass: ``ideal``: band-pass and Hilbert transform in one FFT pair (the edge pipeline's);
            ``butter``: a zero-phase 4th-order Butterworth band-pass, then the Hilbert transform.
            Their skirts differ, and so do features that sum the envelope's energy (the synthetic-data
            quality gate is calibrated on ``butter``).

    Raises:
        ValueError: no ``band`` for more than one window (the kurtosis band is chosen per window).
    """
    a = np.asarray(x, dtype=np.float64)
    a = a - a.mean(axis=-1, keepdims=True)
    sk = 0.0
    if band is None:
        if a.ndim != 1:
            raise ValueError(f"without a band x must be one window (the band is chosen per window), got shape {a.shape}")
        lo, hi, sk = spectral_kurtosis_band(a, fs, f_min=f_min_band)
    else:
        lo, hi = band
    lo, hi = max(lo, 1e-3 * fs), min(hi, 0.499 * fs)
    if bandpass == "butter":
        sos = signal.butter(4, (lo, hi), btype="bandpass", fs=fs, output="sos")
        env = np.abs(signal.hilbert(signal.sosfiltfilt(sos, a, axis=-1), axis=-1))
    elif bandpass == "ideal":
        env = _band_envelope(a, fs, lo, hi)
    else:
        raise ValueError(f"bandpass must be 'ideal' or 'butter', got {bandpass!r}")
    env -= env.mean(axis=-1, keepdims=True)
    seg = env.shape[-1] if nperseg is None else min(nperseg, env.shape[-1])
    freqs, amplitude = _amplitude_spectrum(env, fs, seg, nfft=nfft, scaling=scaling)
    return EnvelopeSpectrum(freqs=freqs, amplitude=amplitude, band=(lo, hi), kurtosis=sk)


def _band_envelope(a: NDArray[np.float64], fs: float, lo: float, hi: float) -> NDArray[np.float64]:
    """Envelope of ``a`` band-passed to ``[lo, hi]`` along the last axis: an ideal band-pass and the Hilbert
    transform in one step, by keeping only the band's positive-frequency bins (doubled) and inverting the FFT."""
    n = a.shape[-1]
    spec = np.fft.rfft(a, axis=-1)
    freqs = np.fft.rfftfreq(n, 1.0 / fs)
    band = np.flatnonzero((freqs >= lo) & (freqs <= hi))
    analytic = np.zeros(a.shape, dtype=np.complex128)
    analytic[..., band] = 2.0 * spec[..., band]
    return np.asarray(np.abs(np.fft.ifft(analytic, axis=-1)))


def _peak_near(spec: EnvelopeSpectrum, f: float, tol: float) -> float:
    width = max(tol * f, 1.5 * spec.resolution)
    sel = (spec.freqs >= f - width) & (spec.freqs <= f + width)
    return float(spec.amplitude[sel].max()) if sel.any() else 0.0


def defect_amplitudes(
    spec: EnvelopeSpectrum, defects: Mapping[str, float], *, harmonics: int = 3, tol: float = 0.02,
) -> dict[str, float]:
    """Envelope amplitude at each defect frequency and its harmonics, and the first one over the floor.

    Returns:
        ``{"<name>_h<k>": amplitude, "<name>_snr": h1 / median envelope amplitude}`` for each defect,
        the median taken up to just beyond the highest harmonic searched.
    """
    top = max(defects.values()) * (harmonics + 0.5)
    floor_sel = (spec.freqs > 0) & (spec.freqs <= top)
    floor = float(np.median(spec.amplitude[floor_sel])) if floor_sel.any() else 0.0
    out: dict[str, float] = {}
    for name, f in defects.items():
        for k in range(1, harmonics + 1):
            out[f"{name}_h{k}"] = _peak_near(spec, k * f, tol)
        out[f"{name}_snr"] = out[f"{name}_h1"] / floor if floor > 0 else 0.0
    return out


def dominant_peak(spec: EnvelopeSpectrum, shaft_hz: float, f_lo: float, f_hi: float,
                  exclude_tol: float = 0.02) -> float:
    """Frequency of the largest envelope peak in ``[f_lo, f_hi]`` that is not a shaft harmonic.

    Bins within ``exclude_tol * shaft_hz`` (at least one bin) of ``k * shaft_hz`` are skipped;
    the peak is refined by a parabola through the log amplitudes of its three bins.
    """
    f = spec.freqs
    k = np.round(f / shaft_hz)
    near_shaft = (k >= 1) & (np.abs(f - k * shaft_hz) <= exclude_tol * shaft_hz + spec.resolution)
    return spectral_peak(f, spec.amplitude, f_lo, f_hi, skip=near_shaft)[0]


def spectral_peak(freqs: NDArray[np.float64], amplitude: NDArray[np.float64], f_lo: float, f_hi: float, *,
                  skip: NDArray[np.bool_] | None = None) -> tuple[float, int]:
    """The largest bin of a spectrum in ``[f_lo, f_hi]``, its frequency refined by a parabola through the
    log amplitudes of its three bins.

    Args:
        freqs: bin frequencies (evenly spaced).
        amplitude: the spectrum, same shape as ``freqs``.
        f_lo: lower end of the search (Hz).
        f_hi: upper end of the search (Hz).
        skip: bins passed over (``True``), e.g. shaft harmonics.

    Returns:
        ``(frequency_hz, bin index)``.

    Raises:
        ValueError: no bin in the range (that is not skipped).
    """
    sel = (freqs >= f_lo) & (freqs <= f_hi)
    idx = np.flatnonzero(sel if skip is None else sel & ~skip)
    if idx.size == 0:
        raise ValueError(f"no spectrum bins in [{f_lo}, {f_hi}] Hz" + ("" if skip is None else " that are not skipped"))
    i = int(idx[np.argmax(amplitude[idx])])
    if 0 < i < freqs.size - 1:
        y0, y1, y2 = np.log(amplitude[i - 1 : i + 2] + 1e-30)
        denom = y0 - 2 * y1 + y2
        if denom < 0:
            return float(freqs[i] + 0.5 * (y0 - y2) / denom * (freqs[1] - freqs[0])), i
    return float(freqs[i]), i
