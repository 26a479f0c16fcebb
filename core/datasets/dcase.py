"""DCASE 2020 task 2 machine sounds: the one reader of its 16 kHz PCM WAV clips."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from numpy.typing import NDArray
from scipy.io import wavfile

from core.assets import AssetConfig, AssetKind, ChannelConfig, Quantity
from core.errors import DatasetError

__all__ = ["dcase_asset", "read_wav"]


def read_wav(path: str | Path, full_scale_pa: float = 1.0) -> tuple[float, NDArray[np.float64]]:
    """``(sample_rate, samples)`` of a PCM WAV file, scaled so that digital full scale is ``full_scale_pa``.

    Raises:
        DatasetError: the file is missing or not a readable WAV file.
    """
    try:
        fs, data = wavfile.read(str(path))
    except Exception as err:  # scipy's WAV reader raises struct, value and OS errors on a bad file; wrapped once here
        raise DatasetError(f"cannot read WAV file {str(path)!r}: {err}") from err
    x = np.asarray(data, dtype=np.float64)
    if x.ndim > 1:
        x = x[:, 0]
    if np.issubdtype(data.dtype, np.integer):
        x /= float(np.iinfo(data.dtype).max)
    return float(fs), x * full_scale_pa


def dcase_asset(site: str = "plant1", sample_rate_hz: float = 16000.0) -> AssetConfig:
    """A machine with one microphone channel ``mic`` (Pa)."""
    return AssetConfig(
        asset_id="dcase-machine",
        name="DCASE 2020 task 2 machine (id_00)",
        kind=AssetKind.PUMP,
        site=site,
        channels=(
            ChannelConfig(
                name="mic",
                quantity=Quantity.SOUND_PRESSURE,
                unit="Pa",
                sample_rate_hz=sample_rate_hz,
                min_value=-200.0,
                max_value=200.0,
            ),
        ),
    )
