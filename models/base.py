"""The estimator interface every RUL model implements.

Estimators follow sktime / scikit-learn conventions:

* ``__init__`` only stores hyper-parameters, unchanged, under the same names.
* Public :meth:`BaseRULEstimator.fit`, :meth:`~BaseRULEstimator.predict` and
  :meth:`~BaseRULEstimator.predict_interval` validate their inputs and call the private
  ``_fit`` / ``_predict`` that subclasses implement.
* Learned state ends in ``_``; using an estimator before ``fit`` raises
  :class:`core.errors.NotFittedError`.
* ``get_params`` / ``set_params`` / ``clone`` / ``is_fitted`` / ``get_test_params`` come from
  :class:`core.estimator.BaseEstimator`, shared with the generators of :mod:`synth`.

Panel data uses sktime's ``numpy3D`` layout: ``X`` has shape
``(n_instances, n_channels, n_timepoints)`` (one instance = one window of sensor readings ending at
the cycle whose remaining useful life is predicted) and ``y`` has shape ``(n_instances,)``.

Predictions are distributions, not bare floats: :meth:`~BaseRULEstimator.predict_interval` gives a
split-conformal interval calibrated on held-out instances (see :mod:`core.inference.calibration`).
"""

# ruff: noqa: N802, N803, N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

from abc import ABC, abstractmethod
from typing import Any, ClassVar, Self

import numpy as np
import pandas as pd

from core.errors import ModelError
from core.estimator import BaseEstimator
from core.inference.calibration import SplitConformal, check_coverage

__all__ = ["NEUTRAL_PARAMS", "BaseRULEstimator", "check_X", "check_X_y"]

#: the deep estimators' learning parameters added after members had been checkpointed and cards written,
#: with the value that trains exactly as before they existed: left out of member checkpoint keys at that
#: value (so older checkpoints keep their keys) and read as that value from a card that predates them
#: (``models.pipeline.card_config``)
NEUTRAL_PARAMS: dict[str, Any] = {"late_weight": 1.0}


def check_X(X: Any, *, name: str = "X") -> np.ndarray:
    """Validate a panel and return it as a float32 ``numpy3D`` array.

    Args:
        X: array-like of shape ``(n_instances, n_channels, n_timepoints)``.
        name: parameter name used in error messages.

    Returns:
        The panel as a C-contiguous ``float32`` array.

    Raises:
        ModelError: if ``X`` is not 3-D, is empty or holds non-finite values.
    """
    try:
        arr = np.asarray(X, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise ModelError(f"{name} must be a numeric array-like, got {type(X).__name__}") from err
    if arr.ndim != 3:
        raise ModelError(
            f"{name} must have shape (n_instances, n_channels, n_timepoints), got {arr.ndim}-D array of shape {arr.shape}"
        )
    if 0 in arr.shape:
        raise ModelError(f"{name} must not be empty, got shape {arr.shape}")
    if not np.isfinite(arr).all():
        raise ModelError(f"{name} must hold only finite values, got NaN or inf")
    return np.ascontiguousarray(arr)


def check_X_y(X: Any, y: Any) -> tuple[np.ndarray, np.ndarray]:
    """Validate a panel and its RUL targets.

    Args:
        X: array-like of shape ``(n_instances, n_channels, n_timepoints)``.
        y: array-like of shape ``(n_instances,)``, remaining useful life in cycles.

    Returns:
        ``(X, y)`` as ``float32`` arrays.

    Raises:
        ModelError: if shapes disagree, ``y`` is not 1-D, or values are not finite.
    """
    X_arr = check_X(X)
    try:
        y_arr = np.asarray(y, dtype=np.float32)
    except (TypeError, ValueError) as err:
        raise ModelError(f"y must be a numeric array-like, got {type(y).__name__}") from err
    if y_arr.ndim != 1:
        raise ModelError(f"y must be 1-D of shape (n_instances,), got shape {y_arr.shape}")
    if y_arr.shape[0] != X_arr.shape[0]:
        raise ModelError(f"X and y must have the same number of instances, got {X_arr.shape[0]} and {y_arr.shape[0]}")
    if not np.isfinite(y_arr).all():
        raise ModelError("y must hold only finite values, got NaN or inf")
    return X_arr, y_arr


class BaseRULEstimator(BaseEstimator, ABC):
    """Base class of remaining-useful-life regressors on sensor windows.

    Subclasses implement :meth:`_fit` and :meth:`_predict`; they may override
    :meth:`get_test_params`. The public methods take care of validation, of the held-out
    calibration split and of the conformal interval.

    Attributes:
        n_channels_: number of channels seen in ``fit``.
        n_timepoints_: window length seen in ``fit``.
        conformal_: the calibrated :class:`~core.inference.calibration.SplitConformal`.
        validation_rmse_: RMSE on the held-out (validation) instances.
    """

    _tags: ClassVar[dict[str, Any]] = {"requires_torch": False, "python_dependencies": []}

    # -- public API -------------------------------------------------------------------------
    def fit(
        self,
        X: Any,
        y: Any,
        *,
        X_val: Any | None = None,
        y_val: Any | None = None,
        validation_fraction: float = 0.2,
    ) -> Self:
        """Fit the estimator and calibrate its prediction intervals.

        Args:
            X: training windows, shape ``(n_instances, n_channels, n_timepoints)``.
            y: remaining useful life at the last cycle of each window, shape ``(n_instances,)``.
            X_val: held-out windows used for early stopping / model selection and for conformal
                calibration. For C-MAPSS these come from validation *units* truncated like the
                test set (see :class:`models.data.CMAPSSDataModule`).
            y_val: targets of ``X_val``.
            validation_fraction: when ``X_val`` is not given, this fraction of the instances
                (seeded random draw) is held out instead.

        Returns:
            ``self``.

        Raises:
            ModelError: on invalid inputs or if training fails.
        """
        X_arr, y_arr = check_X_y(X, y)
        if (X_val is None) != (y_val is None):
            raise ModelError("X_val and y_val must be given together, got only one of them")
        if X_val is None:
            X_arr, y_arr, X_val_arr, y_val_arr = self._holdout(X_arr, y_arr, validation_fraction)
        else:
            X_val_arr, y_val_arr = check_X_y(X_val, y_val)
            if X_val_arr.shape[1:] != X_arr.shape[1:]:
                raise ModelError(f"X_val must have windows of shape {X_arr.shape[1:]} like X, got {X_val_arr.shape[1:]}")
        self.reset()
        self.n_channels_ = int(X_arr.shape[1])
        self.n_timepoints_ = int(X_arr.shape[2])
        self._fit(X_arr, y_arr, X_val_arr, y_val_arr)
        self.is_fitted_ = True
        y_val_pred = self._predict(X_val_arr)
        self.validation_rmse_ = float(np.sqrt(np.mean((y_val_pred - y_val_arr) ** 2)))
        self.conformal_ = SplitConformal().fit(y_val_arr, y_val_pred)
        return self

    def predict(self, X: Any) -> np.ndarray:
        """Predict the remaining useful life at the last cycle of each window.

        Args:
            X: windows, shape ``(n_instances, n_channels, n_timepoints)``.

        Returns:
            Point predictions (cycles), shape ``(n_instances,)``, ``float64``.

        Raises:
            NotFittedError: before :meth:`fit`.
            ModelError: if ``X`` does not match the shape seen in ``fit``.
        """
        self.check_is_fitted()
        X_arr = self._check_predict_X(X)
        return np.asarray(self._predict(X_arr), dtype=np.float64).reshape(-1)

    def predict_interval(self, X: Any, coverage: float = 0.9) -> pd.DataFrame:
        """Predict a split-conformal interval around the RUL point prediction.

        Args:
            X: windows, shape ``(n_instances, n_channels, n_timepoints)``.
            coverage: nominal coverage in ``(0, 1)``.

        Returns:
            DataFrame with columns ``lower``, ``upper`` (cycles, ``lower`` clipped at 0), one row
            per instance.

        Raises:
            NotFittedError: before :meth:`fit`.
            ModelError: if ``coverage`` is not in ``(0, 1)``.
        """
        coverage = check_coverage(coverage)  # before the (costly) prediction
        y_pred = self.predict(X)  # raises NotFittedError before fit
        lower, upper = self.conformal_.interval(y_pred, coverage)
        return pd.DataFrame({"lower": lower, "upper": upper})

    # -- hooks ------------------------------------------------------------------------------
    @abstractmethod
    def _fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray) -> None:
        """Learn from validated ``float32`` arrays; set fitted attributes ending in ``_``."""

    @abstractmethod
    def _predict(self, X: np.ndarray) -> np.ndarray:
        """Return point predictions of shape ``(n_instances,)`` for a validated panel."""

    # -- helpers ----------------------------------------------------------------------------
    def _check_predict_X(self, X: Any) -> np.ndarray:
        X_arr = check_X(X)
        if X_arr.shape[1:] != (self.n_channels_, self.n_timepoints_):
            raise ModelError(
                f"X must have windows of shape (n_channels, n_timepoints) = "
                f"({self.n_channels_}, {self.n_timepoints_}) as in fit, got {X_arr.shape[1:]}"
            )
        return X_arr

    def _holdout(self, X: np.ndarray, y: np.ndarray, fraction: float) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        if not 0.0 < fraction < 1.0:
            raise ModelError(f"validation_fraction must be in (0, 1), got {fraction!r}")
        n = X.shape[0]
        n_val = max(1, round(n * fraction))
        if n - n_val < 1:
            raise ModelError(f"need at least 2 instances to hold out a validation set, got {n}")
        seed = getattr(self, "random_state", None)
        order = np.random.default_rng(seed if seed is not None else 0).permutation(n)
        val, train = order[:n_val], order[n_val:]
        return X[train], y[train], X[val], y[val]
