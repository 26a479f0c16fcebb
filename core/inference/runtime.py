"""Edge inference of promoted RUL models: numpy + onnxruntime only (no torch, no Lightning).

The model card carries everything needed to turn raw C-MAPSS-layout rows (settings + sensors per
cycle) into model inputs: operating-condition centroids, kept sensors, per-condition mean/std,
window length, and the conformal calibration scores for intervals.
"""

# ruff: noqa: N803, N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import hashlib
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any, Protocol, Self

import numpy as np
import onnxruntime as ort

from core.errors import ModelError
from core.inference.calibration import SplitConformal
from core.inference.card import ModelCard, PreprocessingCard, read_card
from core.inference.preprocess import ConditionNormalizer, FeatureNormalizer, last_window
from core.inference.registry import CARD_FILE, MODEL_FILE, ModelRegistry

__all__ = ["FeatureRULPredictor", "OnnxRULPredictor", "RULPrediction", "card_at"]


class RULPrediction(dict[str, float]):
    """``{"rul": ..., "lower": ..., "upper": ..., "coverage": ...}`` for one asset (cycles)."""


class _Normalizer(Protocol):
    """What the shared code needs of a predictor's normaliser (each subclass has its own kind)."""

    @property
    def n_features(self) -> int: ...


class _OnnxRULBase:
    """What both predictors share: card + ONNX session, loading, batching, intervals, one unit.

    Subclasses read their card's ``preprocessing`` in :meth:`_read_preprocessing` (setting
    ``window``, ``rul_cap`` and ``normalizer``) and say how raw rows become model inputs in
    :meth:`_transform`.
    """

    #: upper clip of point predictions (``None``: only clipped at 0)
    clip_upper: float | None = None
    #: set by :meth:`_read_preprocessing`
    window: int
    rul_cap: float
    normalizer: _Normalizer

    def __init__(self, model_path: str | Path, card: ModelCard, *, threads: int = 1) -> None:
        self.model_path = Path(model_path)
        self.card = card
        _check_sha256(self.model_path, card)
        try:
            self._read_preprocessing(card.preprocessing)
        except (KeyError, TypeError, ValueError) as err:
            raise ModelError(f"model card lacks valid 'preprocessing' data: {err!r}") from err
        self.conformal = SplitConformal.from_dict(card.calibration) if card.calibration else None
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            self.session = ort.InferenceSession(str(self.model_path), opts, providers=["CPUExecutionProvider"])
        except Exception as err:  # onnxruntime raises its own untyped errors
            raise ModelError(f"cannot load ONNX model {self.model_path}: {err}") from err
        self.input_name = self.session.get_inputs()[0].name

    def _read_preprocessing(self, pre: PreprocessingCard) -> None:
        raise NotImplementedError

    def _transform(self, rows: Any) -> np.ndarray:
        raise NotImplementedError

    # -- construction --------------------------------------------------------------------------
    @classmethod
    def from_registry(cls, registry_dir: str | Path, name: str, **kwargs: Any) -> Self:
        """Load the promoted version of ``name``."""
        mv = ModelRegistry(registry_dir).promoted(name)
        return cls(mv.model_path, mv.card, **kwargs)

    @classmethod
    def from_path(cls, path: str | Path, **kwargs: Any) -> Self:
        """Load from a registry model directory (its promoted version), a version directory
        (``model.onnx`` + ``card.json``) or an ONNX file with ``card.json`` beside it."""
        path = Path(path)
        if (path / "promoted.json").is_file():
            return cls.from_registry(path.parent, path.name, **kwargs)
        model = path / MODEL_FILE if path.is_dir() else path
        if not model.is_file():
            raise ModelError(f"expected {model} to exist")
        return cls(model, card_at(path), **kwargs)

    # -- inference -----------------------------------------------------------------------------
    @property
    def n_channels(self) -> int:
        """Channels per window."""
        return int(self.normalizer.n_features)

    def window_from_rows(self, rows: Any) -> np.ndarray:
        """Raw rows of one asset (oldest first) -> one ``(c, w)`` model input."""
        return last_window(self._transform(rows), self.window)

    def predict_windows(self, X: np.ndarray, batch_size: int = 1024) -> np.ndarray:
        """Point RUL for preprocessed windows ``(n, c, w)``, clipped at 0 (and ``clip_upper``)."""
        X = np.ascontiguousarray(X, dtype=np.float32)
        if X.ndim != 3 or X.shape[1:] != (self.n_channels, self.window):
            raise ModelError(f"windows must have shape (n, {self.n_channels}, {self.window}), got {X.shape}")
        outs = [
            self.session.run(None, {self.input_name: X[i : i + batch_size]})[0].reshape(-1)
            for i in range(0, X.shape[0], batch_size)
        ]
        return np.clip(np.concatenate(outs).astype(np.float64), 0.0, self.clip_upper)

    def interval(self, y_pred: Any, coverage: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Conformal ``(lower, upper)`` around predictions."""
        if self.conformal is None:
            raise ModelError("this model card has no 'calibration'; intervals are unavailable")
        return self.conformal.interval(y_pred, coverage)

    def predict_units(self, units: Iterable[Any], coverage: float = 0.9) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Predict ``(rul, lower, upper)`` at the last row of each asset's raw rows."""
        X = np.stack([self.window_from_rows(rows) for rows in units])
        pred = self.predict_windows(X)
        lower, upper = self.interval(pred, coverage)
        return pred, lower, upper

    def predict_unit(self, rows: Sequence[Sequence[float]] | np.ndarray, coverage: float = 0.9) -> RULPrediction:
        """The RUL distribution summary of one asset from its raw rows (oldest first)."""
        pred, lower, upper = self.predict_units([rows], coverage)
        return RULPrediction(rul=float(pred[0]), lower=float(lower[0]), upper=float(upper[0]), coverage=coverage)


def _check_sha256(path: Path, card: ModelCard) -> None:
    """Refuse a model file that is not the one its card was registered with (a registered card has a sha256).

    Raises:
        ModelError: the file is missing, unreadable, or its SHA-256 differs from the card's.
    """
    if card.model_sha256 is None:  # a card built by training, not yet registered
        return
    digest = hashlib.sha256()
    try:
        with path.open("rb") as f:
            for block in iter(lambda: f.read(1 << 20), b""):
                digest.update(block)
    except OSError as err:
        raise ModelError(f"cannot read model file {path}: {err}") from err
    if digest.hexdigest() != card.model_sha256:
        raise ModelError(
            f"model file {path} is not the one its card names: sha256 {digest.hexdigest()[:16]}..., "
            f"card {card.model_sha256[:16]}...; refusing to load it"
        )


class OnnxRULPredictor(_OnnxRULBase):
    """Run a registered ONNX RUL model on raw per-cycle C-MAPSS-layout rows.

    Args:
        model_path: the ONNX file.
        card: its model card (see :func:`models.pipeline.build_card`).
        threads: onnxruntime intra-op threads.
    """

    normalizer: ConditionNormalizer

    def _read_preprocessing(self, pre: PreprocessingCard) -> None:
        self.window = pre.window
        self.rul_cap = pre.rul_cap
        self.normalizer = ConditionNormalizer.from_dict(pre.normalizer)

    def _transform(self, rows: Any) -> np.ndarray:
        """Normalise raw rows (26 or 24 columns) per operating condition."""
        return self.normalizer.transform_raw(rows)


def card_at(path: str | Path) -> ModelCard:
    """The card of the model at ``path``: a registry model directory (its promoted version), a
    version directory, or an ONNX file with ``card.json`` beside it."""
    path = Path(path)
    if (path / "promoted.json").is_file():
        return ModelRegistry(path.parent).promoted(path.name).card
    return read_card((path if path.is_dir() else path.parent) / CARD_FILE)


class FeatureRULPredictor(_OnnxRULBase):
    """Run a registered ONNX RUL model on a sequence of edge feature frames.

    The card's ``preprocessing`` names the features (channel, feature) in model order with their
    transform and z-score, the window (frames), the (asset) hours between frames and the RUL
    unit (``h``, or ``%``: the share of life left); ``calibration`` holds the conformal scores of
    the interval.

    Args:
        model_path: the ONNX file.
        card: its model card (see :func:`models.sim_pipeline.build_sim_card`).
        threads: onnxruntime intra-op threads.
    """

    normalizer: FeatureNormalizer

    def _read_preprocessing(self, pre: PreprocessingCard) -> None:
        if pre.kind != "feature_frames" or pre.step_hours is None:
            raise ValueError(f"a feature model's card needs kind 'feature_frames' and step_hours, got kind {pre.kind!r}")
        self.window = pre.window
        self.step_hours = pre.step_hours
        self.rul_cap = pre.rul_cap
        self.clip_upper = self.rul_cap
        self.rul_unit = pre.rul_unit or "h"
        self.normalizer = FeatureNormalizer.from_dict(pre.normalizer)

    def _transform(self, rows: Any) -> np.ndarray:
        """Transform and z-score raw feature rows (``step_hours`` apart)."""
        return self.normalizer.transform(rows)

    def interval(self, y_pred: Any, coverage: float = 0.9) -> tuple[np.ndarray, np.ndarray]:
        """Conformal ``(lower, upper)``; in ``%`` (share of life left) the upper end stops at 100."""
        lower, upper = super().interval(y_pred, coverage)
        if self.rul_unit == "%":
            upper = np.minimum(upper, 100.0)
        return lower, upper

    @property
    def features(self) -> list[tuple[str, str]]:
        """``(channel, feature)`` pairs the model reads, in order."""
        return list(self.normalizer.features)

    def frame_row(self, frame: Any) -> np.ndarray | None:
        """The model's raw feature values from one frame, ``None`` if one is missing."""
        return self.normalizer.frame_row(frame)
