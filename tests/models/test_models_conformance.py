"""The conformance suite of the RUL estimators (like sktime's TestAllForecasters): shapes, intervals, seeds, inputs.

What every estimator shares (parameters, clone, pickle, repr, the error before fit) is tested once for
all, in ``tests/core/test_estimator_conformance.py``.
"""

# ruff: noqa: N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from core.errors import ModelError
from models.base import BaseRULEstimator
from models.lstm import LSTMRUL
from models.minirocket import MiniRocketRUL, numba_available
from models.transformer import TransformerRUL

ESTIMATORS: list[type[BaseRULEstimator]] = [TransformerRUL, LSTMRUL, MiniRocketRUL]


def _instances() -> list[object]:
    params = []
    for cls in ESTIMATORS:
        marks = []
        if cls is MiniRocketRUL and not numba_available():
            marks.append(pytest.mark.skip(reason="MiniRocketRUL needs numba, not installed"))
        for i, p in enumerate(cls.get_test_params()):
            params.append(pytest.param((cls, p), id=f"{cls.__name__}-{i}", marks=marks))
    return params


@pytest.fixture(params=_instances())
def estimator(request: pytest.FixtureRequest) -> BaseRULEstimator:
    cls, params = request.param
    return cls(**params)


@pytest.fixture
def fitted(estimator: BaseRULEstimator, degradation_panel: tuple[np.ndarray, np.ndarray]) -> BaseRULEstimator:
    X, y = degradation_panel
    return estimator.fit(X, y)


def test_fit_returns_self_and_output_shapes(
    estimator: BaseRULEstimator, degradation_panel: tuple[np.ndarray, np.ndarray]
) -> None:
    X, y = degradation_panel
    assert estimator.fit(X, y) is estimator
    pred = estimator.predict(X[:7])
    assert pred.shape == (7,)
    assert np.isfinite(pred).all()
    assert (pred >= 0).all()
    interval = estimator.predict_interval(X[:7], coverage=0.8)
    assert isinstance(interval, pd.DataFrame)
    assert list(interval.columns) == ["lower", "upper"]
    assert interval.shape == (7, 2)


def test_interval_brackets_point_prediction(fitted: BaseRULEstimator, degradation_panel: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = degradation_panel
    pred = fitted.predict(X)
    narrow = fitted.predict_interval(X, coverage=0.5)
    wide = fitted.predict_interval(X, coverage=0.9)
    assert (wide["lower"] <= pred + 1e-9).all() and (pred <= wide["upper"] + 1e-9).all()
    assert (wide["lower"] <= wide["upper"]).all()
    assert (wide["upper"] - wide["lower"] >= narrow["upper"] - narrow["lower"] - 1e-9).all()


@pytest.mark.parametrize("coverage", [0.0, 1.0, 1.5, "0.9"])
def test_invalid_coverage_is_rejected(
    fitted: BaseRULEstimator, coverage: object, degradation_panel: tuple[np.ndarray, np.ndarray]
) -> None:
    X, _ = degradation_panel
    with pytest.raises(ModelError, match="coverage"):
        fitted.predict_interval(X, coverage=coverage)  # type: ignore[arg-type]


def test_fixed_seed_is_deterministic(fitted: BaseRULEstimator, degradation_panel: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = degradation_panel
    again = fitted.clone().fit(X, y)
    np.testing.assert_allclose(again.predict(X), fitted.predict(X), rtol=0, atol=1e-5)


def test_bad_inputs_are_rejected(estimator: BaseRULEstimator, degradation_panel: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = degradation_panel
    with pytest.raises(ModelError, match="n_instances, n_channels, n_timepoints"):
        estimator.fit(X[:, 0], y)
    with pytest.raises(ModelError, match="same number of instances"):
        estimator.fit(X, y[:-1])
    bad = X.copy()
    bad[0, 0, 0] = np.nan
    with pytest.raises(ModelError, match="finite"):
        estimator.fit(bad, y)
    with pytest.raises(ModelError, match="X_val and y_val"):
        estimator.fit(X, y, X_val=X)


def test_predict_checks_window_shape(fitted: BaseRULEstimator, degradation_panel: tuple[np.ndarray, np.ndarray]) -> None:
    X, _ = degradation_panel
    with pytest.raises(ModelError, match="as in fit"):
        fitted.predict(X[:, :2])


def test_explicit_validation_set_is_used(estimator: BaseRULEstimator, degradation_panel: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = degradation_panel
    estimator.fit(X[:70], y[:70], X_val=X[70:], y_val=y[70:])
    assert estimator.conformal_.scores_ is not None
    assert estimator.conformal_.scores_.size == 26
    assert np.isfinite(estimator.validation_rmse_)
