"""Fault classifiers of the rare-failure experiment and of the quality gate's predictive score.

* :class:`MiniRocketClassifier`: the product's fault classifier, sktime's MiniRocket transform
  (Dempster et al. 2021) + standardisation + class-balanced ridge classifier.
* :class:`FeatureClassifier`: random forest or logistic regression on :func:`synth.features.classical_features`.
"""

# ruff: noqa: N803, N806

from __future__ import annotations

import importlib.util
from collections.abc import Mapping
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.ensemble import RandomForestClassifier
from sklearn.linear_model import LogisticRegression, RidgeClassifierCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from core.errors import ModelError, NotFittedError
from synth.features import classical_features

__all__ = ["FeatureClassifier", "MiniRocketClassifier"]


def _check_xy(X: ArrayLike, y: ArrayLike) -> tuple[NDArray[np.float64], NDArray[np.int64]]:
    Xa = np.asarray(X, dtype=np.float64)
    ya = np.asarray(y)
    if Xa.ndim != 3 or ya.shape != (Xa.shape[0],):
        raise ModelError(f"X must be (n, channels, length) and y (n,), got {Xa.shape} and {ya.shape}")
    return Xa, ya.astype(np.int64)


class MiniRocketClassifier:
    """MiniRocket features, standardised, then a class-balanced ``RidgeClassifierCV``.

    Needs ``numba`` (sktime's MiniRocket is numba-compiled).

    Args:
        num_kernels: MiniRocket kernels (rounded by sktime to a multiple of 84).
        max_dilations_per_kernel: sktime option.
        alphas: ridge penalties tried by leave-one-out CV.
        random_state: seed of the kernel draws.
        n_jobs: threads of the transform.
    """

    def __init__(self, *, num_kernels: int = 10_000, max_dilations_per_kernel: int = 32,
                 alphas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0), random_state: int | None = 0,
                 n_jobs: int = 1) -> None:
        self.num_kernels = num_kernels
        self.max_dilations_per_kernel = max_dilations_per_kernel
        self.alphas = alphas
        self.random_state = random_state
        self.n_jobs = n_jobs

    def fit(self, X: ArrayLike, y: ArrayLike) -> MiniRocketClassifier:
        """Fit transform, scaler and ridge on ``(X, y)``."""
        if importlib.util.find_spec("numba") is None:
            raise ModelError("MiniRocketClassifier needs the 'numba' package; install it with `pip install numba`")
        # sktime takes seconds to import and needs numba (checked above): loaded only for this classifier
        from sktime.transformations.panel.rocket import MiniRocketMultivariate  # noqa: PLC0415

        Xa, ya = _check_xy(X, y)
        self.transform_ = MiniRocketMultivariate(num_kernels=self.num_kernels,
                                                 max_dilations_per_kernel=self.max_dilations_per_kernel,
                                                 random_state=self.random_state, n_jobs=self.n_jobs)
        feats = np.asarray(self.transform_.fit_transform(Xa), dtype=np.float64)
        self.scaler_ = StandardScaler().fit(feats)
        self.ridge_ = RidgeClassifierCV(alphas=list(self.alphas), class_weight="balanced").fit(self.scaler_.transform(feats), ya)
        return self

    def predict(self, X: ArrayLike) -> NDArray[np.int64]:
        """Class labels of windows ``X``."""
        if not hasattr(self, "ridge_"):
            raise NotFittedError("MiniRocketClassifier is not fitted yet: call fit(X, y) first")
        feats = np.asarray(self.transform_.transform(np.asarray(X, dtype=np.float64)), dtype=np.float64)
        return np.asarray(self.ridge_.predict(self.scaler_.transform(feats)), dtype=np.int64)

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        """Few kernels."""
        return [{"num_kernels": 84, "max_dilations_per_kernel": 4}]


class FeatureClassifier:
    """Random forest (``kind="rf"``) or logistic regression (``kind="logreg"``) on classical features.

    Args:
        fs: sample rate in Hz.
        kind: ``"rf"`` or ``"logreg"``.
        defects: defect frequencies in Hz for the envelope-line features.
        shaft_hz: shaft frequency in Hz.
        n_estimators: trees of the forest.
        random_state: seed.
    """

    def __init__(self, *, fs: float, kind: str = "rf", defects: Mapping[str, float] | None = None,
                 shaft_hz: float | None = None, n_estimators: int = 300, random_state: int | None = 0) -> None:
        self.fs = fs
        self.kind = kind
        self.defects = defects
        self.shaft_hz = shaft_hz
        self.n_estimators = n_estimators
        self.random_state = random_state

    def _features(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        return classical_features(X, self.fs, defects=self.defects, shaft_hz=self.shaft_hz)

    def fit(self, X: ArrayLike, y: ArrayLike) -> FeatureClassifier:
        """Fit on the features of ``X``."""
        Xa, ya = _check_xy(X, y)
        if self.kind == "rf":
            model: Any = RandomForestClassifier(n_estimators=self.n_estimators, class_weight="balanced",
                                                random_state=self.random_state, n_jobs=1)
        elif self.kind == "logreg":
            model = make_pipeline(StandardScaler(), LogisticRegression(C=1.0, max_iter=2000, class_weight="balanced"))
        else:
            raise ModelError(f"kind must be 'rf' or 'logreg', got {self.kind!r}")
        self.model_ = model.fit(self._features(Xa), ya)
        return self

    def predict(self, X: ArrayLike) -> NDArray[np.int64]:
        """Class labels of windows ``X``."""
        if not hasattr(self, "model_"):
            raise NotFittedError("FeatureClassifier is not fitted yet: call fit(X, y) first")
        return np.asarray(self.model_.predict(self._features(np.asarray(X, dtype=np.float64))), dtype=np.int64)
