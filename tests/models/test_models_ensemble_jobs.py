"""Ensemble members trained in worker processes (``n_jobs``) are the members trained one by one."""

# ruff: noqa: N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import numpy as np
import pytest

from core.errors import ModelError
from models.lstm import LSTMRUL


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3, 12)).astype(np.float32)
    y = np.clip(60 + 30 * X[:, 0, -4:].mean(axis=1) + rng.normal(scale=2, size=n), 0, 125).astype(np.float32)
    return X, y


def test_members_in_processes_equal_members_in_turn() -> None:
    X, y = _data(256, 0)
    X_val, y_val = _data(64, 1)
    params = {"hidden_size": 8, "num_layers": 1, "max_epochs": 2, "batch_size": 32, "num_threads": 1, "n_members": 3}
    one = LSTMRUL(**params, random_state=5).fit(X, y, X_val=X_val, y_val=y_val)
    two = LSTMRUL(**params, random_state=5, n_jobs=2).fit(X, y, X_val=X_val, y_val=y_val)
    # seeds 5, 6, 7 in order, whichever process trained them: bit for bit on a CPU
    assert two.member_val_rmse_ == one.member_val_rmse_ and two.n_epochs_ == one.n_epochs_
    np.testing.assert_array_equal(two.predict(X_val), one.predict(X_val))
    np.testing.assert_array_equal(two.predict_interval(X_val, coverage=0.9), one.predict_interval(X_val, coverage=0.9))


def test_a_failing_member_says_so() -> None:
    X, y = _data(64, 0)
    bad = LSTMRUL(hidden_size=8, num_layers=1, max_epochs=1, num_threads=1, n_members=2, n_jobs=2, batch_size=0)
    with pytest.raises(ModelError, match="batch_size should be a positive integer"):
        bad.fit(X, y)
