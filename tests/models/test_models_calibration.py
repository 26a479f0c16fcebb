"""Split-conformal intervals: coverage, ordering, serialisation."""

from __future__ import annotations

import math

import numpy as np
import pytest

from core.errors import ModelError, NotFittedError
from models.calibration import SplitConformal, empirical_coverage
from models.metrics import phm08_score, rmse


@pytest.mark.parametrize("scale", ["none", "prediction"])
def test_split_conformal_covers_exchangeable_data(scale: str) -> None:
    rng = np.random.default_rng(0)
    truth = rng.uniform(0, 125, 4000)
    pred = np.clip(truth + rng.normal(0, 5 + 0.1 * truth), 0, None)
    conf = SplitConformal(scale=scale).fit(truth[:1000], pred[:1000])  # type: ignore[arg-type]
    lo, hi = conf.interval(pred[1000:], 0.9)
    cov = empirical_coverage(truth[1000:], lo, hi)
    assert 0.87 <= cov <= 0.93
    assert (lo <= pred[1000:]).all() and (pred[1000:] <= hi).all() and (lo >= 0).all()


def test_too_few_scores_give_infinite_interval() -> None:
    conf = SplitConformal().fit([1.0, 2.0], [1.5, 2.5])
    assert math.isinf(conf.quantile(0.9))


def test_round_trip_and_errors() -> None:
    conf = SplitConformal(scale="prediction", offset=5.0).fit([10, 20, 30, 40], [12, 18, 33, 41])
    again = SplitConformal.from_dict(conf.to_dict())
    assert again.quantile(0.5) == conf.quantile(0.5)
    with pytest.raises(NotFittedError):
        SplitConformal().quantile(0.9)
    with pytest.raises(ModelError):
        SplitConformal().fit([1.0], [1.0, 2.0])
    with pytest.raises(ModelError):
        SplitConformal(scale="bogus").fit([1.0], [1.0])  # type: ignore[arg-type]


def test_metrics() -> None:
    assert rmse([0, 0], [3, 4]) == pytest.approx(math.sqrt(12.5))
    # late by 10 costs e - 1; early by 13 costs e - 1
    assert phm08_score([0], [10]) == pytest.approx(math.e - 1)
    assert phm08_score([13], [0]) == pytest.approx(math.e - 1)
