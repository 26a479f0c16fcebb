"""Edge features: vectorised numpy/scipy, per channel and window.

``ISO_ZONE_LIMITS``, ``ZONES`` and ``iso_zone`` are :mod:`core.iso`'s, re-exported.
"""

from __future__ import annotations

from core.iso import ISO_ZONE_LIMITS, ZONES, iso_zone
from core.signal._envelope import (
    EnvelopeSpectrum,
    defect_amplitudes,
    dominant_peak,
    envelope_spectrum,
    spectral_kurtosis_band,
    spectral_peak,
)
from core.signal._pipeline import ChannelWindow, FeatureConfig, FeaturePipeline
from core.signal._spectral import amplitude_spectrum, band_energies, octave_bands, power_spectrum, velocity_rms_mm_s
from core.signal._stats import time_stats

__all__ = [
    "ISO_ZONE_LIMITS",
    "ZONES",
    "ChannelWindow",
    "EnvelopeSpectrum",
    "FeatureConfig",
    "FeaturePipeline",
    "amplitude_spectrum",
    "band_energies",
    "defect_amplitudes",
    "dominant_peak",
    "envelope_spectrum",
    "iso_zone",
    "octave_bands",
    "power_spectrum",
    "spectral_kurtosis_band",
    "spectral_peak",
    "time_stats",
    "velocity_rms_mm_s",
]
