"""The conformance suite of the generators (like sktime's TestAllForecasters): shapes, labels, seeds, inputs.

What every estimator shares (parameters, clone, pickle, repr, the error before fit) is tested once for
all, in ``tests/core/test_estimator_conformance.py``.
"""

# ruff: noqa: N806

from __future__ import annotations

from typing import Any

import numpy as np
import pytest

from core.errors import ModelError
from synth import BaseGenerator, ConditionalVAE, ConditionalWGAN, PhysicsVAE, TrendVAE

GENERATORS: list[type[BaseGenerator]] = [ConditionalVAE, ConditionalWGAN, PhysicsVAE, TrendVAE]
CASES = [(cls, p) for cls in GENERATORS for p in cls.get_test_params()]
IDS = [f"{cls.__name__}-{i}" for i, (cls, _) in enumerate(CASES)]


@pytest.fixture(scope="module", params=CASES, ids=IDS)
def fitted(request: pytest.FixtureRequest, toy_panel: tuple[np.ndarray, np.ndarray]) -> tuple[BaseGenerator, dict[str, Any]]:
    cls, params = request.param
    X, y = toy_panel
    return cls(**params).fit(X, y), params


def test_shapes_and_labels(fitted: tuple[BaseGenerator, dict[str, Any]]) -> None:
    gen, _ = fitted
    assert gen.sample(5, 1, random_state=0).shape == (5, 2, 128)
    assert gen.sample(3, np.array([0, 2, 1]), random_state=0).dtype == np.float32
    assert gen.sample(0, 1).shape == (0, 2, 128)
    assert list(gen.classes_) == [0, 1, 2] and gen.n_channels_ == 2 and gen.window_ == 128
    with pytest.raises(ModelError, match="not seen in fit"):
        gen.sample(2, 7)
    with pytest.raises(ModelError, match="labels"):
        gen.sample(3, [0, 1])


def test_seed_determinism(fitted: tuple[BaseGenerator, dict[str, Any]], toy_panel: tuple[np.ndarray, np.ndarray]) -> None:
    gen, params = fitted
    a, b = gen.sample(4, 0, random_state=3), gen.sample(4, 0, random_state=3)
    np.testing.assert_array_equal(a, b)
    assert not np.array_equal(a, gen.sample(4, 0, random_state=4))
    refit = type(gen)(**params).fit(*toy_panel)  # the same seed trains the same model
    np.testing.assert_allclose(refit.sample(4, 0, random_state=3), a, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("cls", GENERATORS)
def test_bad_input(cls: type[BaseGenerator], toy_panel: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = toy_panel
    gen = cls(**cls.get_test_params()[0])
    with pytest.raises(ModelError, match="integer labels"):
        gen.fit(X, y[:-1])
    with pytest.raises(ModelError, match="NaN"):
        gen.fit(np.full_like(X, np.nan), y)
    with pytest.raises(ModelError, match="multiple of"):
        gen.fit(X[:, :, :100], y)
    with pytest.raises(ModelError, match="condition_features"):
        cls(**cls.get_test_params()[0], condition_features={0: (1.0,)}).fit(X, y)
