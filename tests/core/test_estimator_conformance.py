"""One conformance suite for the base behaviour of every estimator, RUL regressor and generator alike.

Like sktime's ``TestAllEstimators``: parameters, cloning, pickling, repr and the error before fit come
from :class:`core.estimator.BaseEstimator` and must hold for every estimator of :mod:`models` and
:mod:`synth`. What each kind promises beyond that (output shapes, intervals, seeds, bad inputs) is
tested by its package's own suite (``tests/models/test_models_conformance.py``,
``tests/synth/test_synth_conformance.py``).
"""

# ruff: noqa: N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import inspect
import pickle
from collections.abc import Callable, Iterator
from typing import Any

import numpy as np
import pytest

import models
import synth
from core.errors import ModelError, NotFittedError
from core.estimator import BaseEstimator, clone
from models.base import BaseRULEstimator
from models.crossfit import CrossFitEnsemble
from models.lstm import LSTMRUL
from models.minirocket import MiniRocketRUL, numba_available
from models.transformer import TransformerRUL
from synth import BaseGenerator, ConditionalVAE, ConditionalWGAN, PhysicsVAE, TrendVAE
from tests import _panels

#: every estimator of the project; a new one is added here (test_every_estimator_is_registered checks)
ESTIMATORS: list[type[BaseEstimator]] = [
    TransformerRUL,
    LSTMRUL,
    MiniRocketRUL,
    CrossFitEnsemble,
    ConditionalVAE,
    ConditionalWGAN,
    PhysicsVAE,
    TrendVAE,
]


def _cases() -> list[Any]:
    cases = []
    for cls in ESTIMATORS:
        marks = []
        if cls is MiniRocketRUL and not numba_available():
            marks.append(pytest.mark.skip(reason="MiniRocketRUL needs numba, not installed"))
        cases += [pytest.param(cls, p, id=f"{cls.__name__}-{i}", marks=marks) for i, p in enumerate(cls.get_test_params())]
    return cases


CASES = _cases()
#: the same cases, each as one (class, parameters) value, for the fixture of fitted estimators
FITTED_CASES = [pytest.param(case.values, id=case.id, marks=case.marks) for case in CASES]


def _data(est: BaseEstimator) -> tuple[np.ndarray, np.ndarray]:
    if isinstance(est, BaseGenerator):
        return _panels.toy_panel()
    return _panels.degradation_panel()


def _uses(est: BaseEstimator) -> list[Callable[[], np.ndarray]]:
    """Each way of using a fitted estimator, as a call that returns an array."""
    X, _ = _data(est)
    if isinstance(est, BaseRULEstimator):
        return [lambda: est.predict(X), lambda: est.predict_interval(X).to_numpy()]
    if isinstance(est, BaseGenerator):
        return [lambda: est.sample(3, 2, random_state=1)]
    raise AssertionError(f"no use defined for {type(est).__name__}")


def _own_params(est: BaseEstimator) -> dict[str, Any]:
    """Parameters comparable with ``==``: a nested estimator as its class and its own parameters."""
    return {k: (type(v), _own_params(v)) if isinstance(v, BaseEstimator) else v for k, v in est.get_params(deep=False).items()}


def _fitted_state(est: BaseEstimator) -> list[str]:
    return [k for k in vars(est) if k.endswith("_") and not k.startswith("__")]


@pytest.fixture(scope="module", params=FITTED_CASES)
def fitted(request: pytest.FixtureRequest) -> BaseEstimator:
    cls, params = request.param
    est = cls(**params)
    return est.fit(*_data(est))


@pytest.fixture
def fresh(fitted: BaseEstimator) -> BaseEstimator:
    """A fitted estimator this test may change."""
    copy: BaseEstimator = pickle.loads(pickle.dumps(fitted))
    return copy


def _concrete_subclasses(cls: type) -> Iterator[type]:
    for sub in cls.__subclasses__():
        if not inspect.isabstract(sub) and sub.__module__.split(".")[0] in {"models", "synth"}:
            yield sub
        yield from _concrete_subclasses(sub)


def test_every_estimator_is_registered() -> None:
    assert models.__name__ and synth.__name__  # both packages imported: every estimator class is defined
    assert set(_concrete_subclasses(BaseEstimator)) <= set(ESTIMATORS)


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_init_stores_params_only(cls: type[BaseEstimator], params: dict[str, Any]) -> None:
    est = cls(**params)
    assert est.get_params(deep=False) == {**cls().get_params(deep=False), **params}
    assert not _fitted_state(est), "no fitted state before fit"
    assert not est.is_fitted


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_get_set_params_round_trip(cls: type[BaseEstimator], params: dict[str, Any]) -> None:
    est = cls(**params)
    before = _own_params(est)
    assert est.set_params(**est.get_params(deep=False)) is est
    assert _own_params(est) == before
    assert est.set_params(**est.get_params(deep=True)) is est  # nested estimators' parameters by <name>__<param>
    assert _own_params(est) == before
    name = sorted(params)[0] if params else est._get_param_names()[0]
    value = est.get_params(deep=False)[name]
    est.set_params(**{name: value})
    assert est.get_params(deep=False)[name] is value


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_unknown_parameter_is_named(cls: type[BaseEstimator], params: dict[str, Any]) -> None:
    est = cls(**params)
    before = _own_params(est)
    valid = est._get_param_names()
    with pytest.raises(ModelError, match="invalid parameter 'not_a_parameter'") as err:
        est.set_params(not_a_parameter=1)
    assert all(name in str(err.value) for name in valid), "the message lists the valid parameters"
    with pytest.raises(ModelError, match="invalid parameter"):
        est.set_params(**{valid[0]: est.get_params()[valid[0]], "not_a_parameter": 1})
    assert _own_params(est) == before, "nothing is set when a name is invalid"


@pytest.mark.parametrize(("cls", "params"), CASES)
def test_error_before_fit(cls: type[BaseEstimator], params: dict[str, Any]) -> None:
    est = cls(**params)
    with pytest.raises(NotFittedError, match=cls.__name__):
        est.check_is_fitted()
    for use in _uses(est):
        with pytest.raises(NotFittedError):
            use()
    # NotFittedError is also a ValueError and an AttributeError, as in scikit-learn
    with pytest.raises(ValueError):
        est.check_is_fitted()
    assert not hasattr(est, "is_fitted_")


def test_fit_marks_fitted(fitted: BaseEstimator) -> None:
    assert fitted.is_fitted and fitted.is_fitted_ is True
    fitted.check_is_fitted()
    assert _fitted_state(fitted)


def test_clone_is_unfitted_with_equal_params(fitted: BaseEstimator) -> None:
    for twin in (fitted.clone(), clone(fitted)):
        assert type(twin) is type(fitted) and twin is not fitted
        assert _own_params(twin) == _own_params(fitted)
        assert not twin.is_fitted and not _fitted_state(twin)
        for name, value in twin.get_params(deep=False).items():
            if isinstance(value, BaseEstimator):
                assert value is not fitted.get_params(deep=False)[name], "a nested estimator is cloned, not shared"
                assert not value.is_fitted
    assert fitted.is_fitted, "cloning leaves the original fitted"


def test_set_params_forgets_fitted_state(fresh: BaseEstimator) -> None:
    name = fresh._get_param_names()[0]
    fresh.set_params(**{name: fresh.get_params(deep=False)[name]})
    assert not fresh.is_fitted and not _fitted_state(fresh)
    with pytest.raises(NotFittedError):
        _uses(fresh)[0]()


def test_pickle_round_trip_unfitted(fitted: BaseEstimator) -> None:
    est = fitted.clone()
    twin = pickle.loads(pickle.dumps(est))
    assert _own_params(twin) == _own_params(est) and not twin.is_fitted


def test_pickle_round_trip_fitted(fitted: BaseEstimator) -> None:
    twin = pickle.loads(pickle.dumps(fitted))
    assert twin.is_fitted and _own_params(twin) == _own_params(fitted)
    for use, twin_use in zip(_uses(fitted), _uses(twin), strict=True):
        np.testing.assert_allclose(twin_use(), use(), rtol=0, atol=1e-6)


def test_repr_names_the_class_and_every_parameter(fitted: BaseEstimator) -> None:
    text = repr(fitted)
    assert text.startswith(f"{type(fitted).__name__}(") and text.endswith(")")
    assert all(f"{name}=" in text for name in fitted._get_param_names())
    assert repr(fitted.clone()) == text, "repr shows parameters, not fitted state"
