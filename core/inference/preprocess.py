"""Preprocessing that runs on the edge (C-MAPSS rows, edge feature frames): numpy only (no torch, sklearn or pandas).

The fitted state (:class:`ConditionNormalizer`) is serialised into the model card, so the edge
runtime applies exactly the normalisation the model was trained with.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np

from core.errors import ModelError

__all__ = [
    "FEATURE_TRANSFORMS",
    "N_RAW_COLUMNS",
    "N_SENSORS",
    "N_SETTINGS",
    "ConditionNormalizer",
    "FeatureNormalizer",
    "last_window",
    "sliding_windows",
]

N_SETTINGS = 3
N_SENSORS = 21
#: unit, cycle, 3 operating settings, 21 sensors
N_RAW_COLUMNS = 2 + N_SETTINGS + N_SENSORS


@dataclass
class ConditionNormalizer:
    """Per-operating-condition z-score normalisation of the informative sensors.

    Attributes:
        centroids: ``(n_conditions, 3)`` operating-setting centroids; a row is assigned to the
            nearest one.
        sensor_index: 0-based indices (into the 21 sensors) of the sensors kept.
        mean: ``(n_conditions, n_kept)`` per-condition sensor means.
        std: ``(n_conditions, n_kept)`` per-condition sensor standard deviations.
        condition_onehot: append one 0/1 channel per operating condition (after the sensors),
            so that a model sees which condition each cycle ran in: per-condition z-scoring
            removes the conditions' offsets from the sensors, and with them that history.
        age_scale: if set, append the asset's age, its cycle number divided by this, as the last
            channel: a window of 80 cycles does not say whether the engine has run 100 cycles or
            400, and the age is known wherever the rows are (the C-MAPSS ``cycle`` column, an
            operating-cycle counter on a plant asset). Such a model needs each row's cycle.
    """

    centroids: np.ndarray
    sensor_index: np.ndarray
    mean: np.ndarray
    std: np.ndarray
    condition_onehot: bool = False
    age_scale: float | None = None

    @property
    def n_conditions(self) -> int:
        """Number of operating conditions."""
        return int(self.centroids.shape[0])

    @property
    def n_features(self) -> int:
        """Number of output channels."""
        onehot = self.n_conditions if self.condition_onehot else 0
        return int(self.sensor_index.size) + onehot + (1 if self.age_scale else 0)

    def assign(self, settings: np.ndarray) -> np.ndarray:
        """Return the operating-condition index of each row of ``settings`` ``(n, 3)``."""
        return self.nearest(settings)[0]

    def nearest(self, settings: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Operating-condition index of each row of ``settings`` ``(n, 3)`` and its distance to that centroid."""
        d = ((settings[:, None, :] - self.centroids[None, :, :]) ** 2).sum(-1)
        idx = np.argmin(d, axis=1)
        return idx, np.sqrt(d[np.arange(d.shape[0]), idx])

    def transform(self, settings: np.ndarray, sensors: np.ndarray, cycles: np.ndarray | None = None) -> np.ndarray:
        """Normalise raw rows.

        Args:
            settings: ``(n, 3)`` operating settings.
            sensors: ``(n, 21)`` raw sensor readings.
            cycles: ``(n,)`` cycle number of each row (the asset's age); needed when
                :attr:`age_scale` is set, ignored otherwise.

        Returns:
            ``(n, n_features)`` float32 normalised informative sensors (then the condition
            one-hot channels, if :attr:`condition_onehot`, then the age, if :attr:`age_scale`).

        Raises:
            ModelError: if the normaliser reads the age and ``cycles`` is missing or not one per row.
        """
        cond = self.assign(np.asarray(settings, dtype=np.float64))
        x = np.asarray(sensors, dtype=np.float64)[:, self.sensor_index]
        parts: list[np.ndarray] = [((x - self.mean[cond]) / self.std[cond]).astype(np.float32)]
        if self.condition_onehot:
            parts.append(np.eye(self.n_conditions, dtype=np.float32)[cond])
        if self.age_scale:
            if cycles is None:
                raise ModelError(
                    "this model reads each row's cycle number (the asset's age): give rows in the "
                    f"{N_RAW_COLUMNS}-column layout (unit, cycle, 3 settings, 21 sensors)"
                )
            age = np.asarray(cycles, dtype=np.float64).reshape(-1)
            if age.size != x.shape[0] or not np.isfinite(age).all():
                raise ModelError(f"need one finite cycle number per row ({x.shape[0]}), got {age.size}")
            parts.append((age / self.age_scale).astype(np.float32)[:, None])
        return parts[0] if len(parts) == 1 else np.concatenate(parts, axis=1)

    def transform_raw(self, rows: Any) -> np.ndarray:
        """Normalise rows of the raw 26-column (or 24-column, no unit/cycle) layout.

        A normaliser with :attr:`age_scale` reads the cycle column, so it needs the 26 columns.
        """
        arr = np.asarray(rows, dtype=np.float64)
        if arr.ndim != 2 or arr.shape[1] not in (N_RAW_COLUMNS, N_RAW_COLUMNS - 2):
            raise ModelError(
                f"rows must have shape (n_cycles, {N_RAW_COLUMNS}) or (n_cycles, {N_RAW_COLUMNS - 2}), got {arr.shape}"
            )
        off = arr.shape[1] - (N_SETTINGS + N_SENSORS)
        cycles = arr[:, 1] if off == 2 else None
        return self.transform(arr[:, off : off + N_SETTINGS], arr[:, off + N_SETTINGS :], cycles)

    def to_dict(self) -> dict[str, Any]:
        """Serialise to JSON-compatible data (``condition_onehot``, ``age_scale`` only when set: older cards read as before)."""
        data: dict[str, Any] = {
            "centroids": self.centroids.tolist(),
            "sensor_index": self.sensor_index.tolist(),
            "mean": self.mean.tolist(),
            "std": self.std.tolist(),
        }
        if self.condition_onehot:
            data["condition_onehot"] = True
        if self.age_scale:
            data["age_scale"] = float(self.age_scale)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> ConditionNormalizer:
        """Rebuild from :meth:`to_dict` output."""
        return cls(
            centroids=np.asarray(data["centroids"], dtype=np.float64),
            sensor_index=np.asarray(data["sensor_index"], dtype=np.int64),
            mean=np.asarray(data["mean"], dtype=np.float64),
            std=np.asarray(data["std"], dtype=np.float64),
            condition_onehot=bool(data.get("condition_onehot", False)),
            age_scale=float(data["age_scale"]) if data.get("age_scale") else None,
        )


def last_window(features: np.ndarray, window: int) -> np.ndarray:
    """Return the last ``window`` cycles as ``(n_channels, window)``, left-padded if short.

    Short histories are padded by repeating their first cycle, as in training.
    """
    n = features.shape[0]
    if n == 0:
        raise ModelError("need at least one cycle to build a window, got 0")
    if n < window:
        pad = np.repeat(features[:1], window - n, axis=0)
        features = np.concatenate([pad, features], axis=0)
    return np.ascontiguousarray(features[-window:].T, dtype=np.float32)


def sliding_windows(features: np.ndarray, window: int, ends: np.ndarray) -> np.ndarray:
    """Windows ending at each (0-based, inclusive) index in ``ends``.

    Args:
        features: ``(n_cycles, n_channels)`` of one unit.
        window: window length.
        ends: indices of the last cycle of each window.

    Returns:
        ``(len(ends), n_channels, window)`` float32, left-padded with the first cycle.
    """
    pad = np.repeat(features[:1], window - 1, axis=0)
    padded = np.concatenate([pad, features], axis=0)
    view = np.lib.stride_tricks.sliding_window_view(padded, window, axis=0)
    # view[i] covers padded[i : i + window] = cycles ending at original index i
    return np.ascontiguousarray(view[np.asarray(ends)], dtype=np.float32)


#: Transforms a feature may get before z-scoring: ``log`` for amplitudes and energies (positive,
#: spanning decades as a fault grows), ``none`` for the rest.
FEATURE_TRANSFORMS = ("none", "log")
_LOG_FLOOR = 1e-9


@dataclass
class FeatureNormalizer:
    """Edge feature frames -> model rows: pick features in order, transform, z-score.

    Attributes:
        features: ``(channel, feature)`` pairs, in model channel order (e.g. ``("vib_de", "rms")``).
        transforms: one of :data:`FEATURE_TRANSFORMS` per feature.
        mean: ``(n_features,)`` means of the transformed features (training units).
        std: ``(n_features,)`` standard deviations of the transformed features.
    """

    features: list[tuple[str, str]]
    transforms: list[str]
    mean: np.ndarray
    std: np.ndarray

    @property
    def n_features(self) -> int:
        """Number of output channels."""
        return len(self.features)

    def frame_row(self, frame: Any) -> np.ndarray | None:
        """Raw values of the features from one frame (``channel -> feature -> value``), ``None`` if any is missing."""
        row = np.empty(len(self.features), dtype=np.float64)
        for i, (channel, name) in enumerate(self.features):
            value = (frame.get(channel) or {}).get(name)
            if value is None or not np.isfinite(value):
                return None
            row[i] = float(value)
        return row

    def apply_transforms(self, raw: Any) -> np.ndarray:
        """Transformed (not yet standardised) features of raw rows ``(n, n_features)``."""
        x = np.array(raw, dtype=np.float64, ndmin=2)
        if x.shape[1] != self.n_features:
            raise ModelError(f"rows must have {self.n_features} features, got shape {x.shape}")
        for i, kind in enumerate(self.transforms):
            if kind == "log":
                x[:, i] = np.log(np.maximum(x[:, i], _LOG_FLOOR))
        return x

    def transform(self, raw: Any) -> np.ndarray:
        """Model rows ``(n, n_features)`` float32 from raw feature rows."""
        rows: np.ndarray = ((self.apply_transforms(raw) - self.mean) / self.std).astype(np.float32)
        return rows

    @classmethod
    def fit(cls, features: list[tuple[str, str]], transforms: list[str], raw: Any) -> FeatureNormalizer:
        """Means and standard deviations of the transformed ``raw`` rows (training data only)."""
        bad = sorted(set(transforms) - set(FEATURE_TRANSFORMS))
        if bad or len(transforms) != len(features):
            raise ModelError(f"need one transform of {FEATURE_TRANSFORMS} per feature, got {transforms}")
        tmp = cls(list(features), list(transforms), np.zeros(len(features)), np.ones(len(features)))
        x = tmp.apply_transforms(raw)
        std = x.std(axis=0)
        return cls(list(features), list(transforms), x.mean(axis=0), np.where(std > 1e-9, std, 1.0))

    def to_dict(self) -> dict[str, Any]:
        """Serialise to JSON-compatible data (stored in the model card)."""
        return {
            "features": [
                {"channel": c, "name": n, "transform": t, "mean": float(m), "std": float(s)}
                for (c, n), t, m, s in zip(self.features, self.transforms, self.mean, self.std, strict=True)
            ]
        }

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> FeatureNormalizer:
        """Rebuild from :meth:`to_dict` output."""
        feats = data["features"]
        return cls(
            features=[(str(f["channel"]), str(f["name"])) for f in feats],
            transforms=[str(f.get("transform", "none")) for f in feats],
            mean=np.asarray([f["mean"] for f in feats], dtype=np.float64),
            std=np.asarray([f["std"] for f in feats], dtype=np.float64),
        )
