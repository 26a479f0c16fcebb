"""Base class of the conditional window generators (sktime/scikit-learn estimator conventions).

``__init__`` stores hyper-parameters only; :meth:`BaseGenerator.fit` validates ``(X, y)`` and calls
``_fit``; :meth:`BaseGenerator.sample` validates the condition and calls ``_sample``. Learned state
ends in ``_``; sampling before ``fit`` raises :class:`~core.errors.NotFittedError`. Parameters, cloning
and fitted state come from :class:`core.estimator.BaseEstimator`, shared with the RUL estimators.
"""

# ruff: noqa: N803, N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping, Sequence
from typing import Any, ClassVar, Self

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.errors import ModelError
from core.estimator import BaseEstimator

__all__ = ["BaseGenerator", "Condition"]

#: a class label, or one label per sample
Condition = int | Sequence[int] | NDArray[np.integer]


class BaseGenerator(BaseEstimator, ABC):
    """Conditional generator of multichannel windows ``(n, channels, length)``.

    Subclasses implement ``_fit(X, y)`` and ``_sample(labels, seed)``; labels are class indices the
    generator saw in ``fit``. ``condition_features`` (a hyper-parameter of every subclass) maps each
    label to a vector of condition features (fault type, severity, operating condition...); without
    it each label is its own one-hot condition.

    Attributes:
        classes_: labels seen in ``fit``, sorted.
        n_channels_: channels of the windows.
        window_: samples per window.
        scale_: per-channel scale the windows were divided by during training.
    """

    _tags: ClassVar[dict[str, Any]] = {"requires_torch": True, "python_dependencies": ["torch", "pytorch_lightning"]}

    condition_features: Mapping[int, Sequence[float]] | None

    # ------------------------------------------------------------------ public API
    def fit(self, X: ArrayLike, y: ArrayLike) -> Self:
        """Learn the distribution of windows ``X`` given labels ``y``.

        Args:
            X: ``(n, channels, length)`` windows (a 2-D ``(n, length)`` array is one channel).
            y: ``(n,)`` integer class labels.

        Returns:
            self
        """
        Xa = np.asarray(X, dtype=np.float32)
        if Xa.ndim == 2:
            Xa = Xa[:, None, :]
        if Xa.ndim != 3 or Xa.shape[0] == 0:
            raise ModelError(f"X must be (n, channels, length) with n > 0, got shape {Xa.shape}")
        if not np.isfinite(Xa).all():
            raise ModelError("X contains NaN or inf")
        ya = np.asarray(y)
        if ya.shape != (Xa.shape[0],) or not np.issubdtype(ya.dtype, np.integer):
            raise ModelError(f"y must be ({Xa.shape[0]},) integer labels, got shape {ya.shape} dtype {ya.dtype}")
        classes = np.unique(ya)
        if self.condition_features is not None:
            missing = [int(c) for c in classes if int(c) not in self.condition_features]
            if missing:
                raise ModelError(f"condition_features has no entry for labels {missing}")
        self.reset()
        self.n_channels_ = int(Xa.shape[1])
        self.window_ = int(Xa.shape[2])
        self.scale_: NDArray[np.float32] = (Xa.std(axis=(0, 2)) + 1e-8).astype(np.float32)
        self._fit(Xa / self.scale_[None, :, None], ya.astype(np.int64), classes.astype(np.int64))
        self.classes_ = classes.astype(np.int64)
        self.is_fitted_ = True
        return self

    def sample(self, n: int, condition: Condition, random_state: int | None = None) -> NDArray[np.float32]:
        """Draw ``n`` windows.

        Args:
            n: number of windows.
            condition: one class label for all windows, or ``n`` labels.
            random_state: seed; the same seed gives the same windows.

        Returns:
            ``(n, channels, length)`` float32 windows in the units of the training data.
        """
        self.check_is_fitted()
        if int(n) < 0:
            raise ModelError(f"n must be >= 0, got {n}")
        labels = self._labels(int(n), condition)
        if labels.size == 0:
            return np.empty((0, self.n_channels_, self.window_), dtype=np.float32)
        seed = int(np.random.SeedSequence(random_state).generate_state(1)[0]) if random_state is None else int(random_state)
        out = self._sample(labels, seed)
        return (out * self.scale_[None, :, None]).astype(np.float32)

    def _labels(self, n: int, condition: Condition) -> NDArray[np.int64]:
        lab = np.asarray(condition)
        if lab.ndim == 0:
            lab = np.full(n, int(lab), dtype=np.int64)
        if lab.shape != (n,) or (lab.size and not np.issubdtype(lab.dtype, np.integer)):
            raise ModelError(f"condition must be one integer label or {n} labels, got shape {lab.shape}")
        unknown = sorted(set(np.unique(lab).tolist()) - set(self.classes_.tolist()))
        if unknown:
            raise ModelError(f"condition labels {unknown} were not seen in fit; known labels {self.classes_.tolist()}")
        return lab.astype(np.int64)

    def _condition_matrix(self, classes: NDArray[np.int64]) -> NDArray[np.float32]:
        """Condition vector of each class (rows follow ``classes``)."""
        if self.condition_features is None:
            return np.eye(classes.size, dtype=np.float32)
        return np.asarray([list(self.condition_features[int(c)]) for c in classes], dtype=np.float32)

    # ------------------------------------------------------------------ subclass hooks
    @abstractmethod
    def _fit(self, X: NDArray[np.float32], y: NDArray[np.int64], classes: NDArray[np.int64]) -> None:
        """Fit on scaled windows; ``classes`` are the sorted labels."""

    @abstractmethod
    def _sample(self, labels: NDArray[np.int64], seed: int) -> NDArray[np.float32]:
        """Scaled windows for ``labels`` (known labels), deterministic given ``seed``."""

