"""Split-conformal intervals: coverage, ordering, serialisation."""

from __future__ import annotations

import json
import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from core.errors import ModelError, NotFittedError
from core.inference.calibration import SplitConformal, empirical_coverage
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


def _heteroscedastic(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Errors of 2 cycles where the prediction is below 40, 15 above (as C-MAPSS models err)."""
    rng = np.random.default_rng(seed)
    pred = rng.uniform(0, 125, n)
    truth = np.clip(pred + rng.normal(0, np.where(pred < 40, 2.0, 15.0)), 0, None)
    return truth, pred


def test_mondrian_bins_cover_within_each_bin_where_pooled_does_not() -> None:
    truth, pred = _heteroscedastic(6000, 1)
    pooled = SplitConformal().fit(truth[:2000], pred[:2000])
    binned = SplitConformal(bins=(40.0, 90.0)).fit(truth[:2000], pred[:2000])
    t, p = truth[2000:], pred[2000:]
    near, far = p < 40, p >= 40
    for conf, near_lo, near_hi, far_lo, far_hi in ((pooled, 0.99, 1.0, 0.80, 0.87), (binned, 0.87, 0.93, 0.87, 0.93)):
        lo, hi = conf.interval(p, 0.9)
        assert 0.87 <= empirical_coverage(t, lo, hi) <= 0.93  # both cover on average
        # pooled: every near-failure truth inside, too few of the far ones; binned: 90 % of each
        assert near_lo <= empirical_coverage(t[near], lo[near], hi[near]) <= near_hi
        assert far_lo <= empirical_coverage(t[far], lo[far], hi[far]) <= far_hi
    # the binned interval near failure is a fraction of the pooled one, which every prediction shares
    _lo_p, hi_p = pooled.interval(p[near], 0.9)
    _lo_b, hi_b = binned.interval(p[near], 0.9)
    assert np.mean(hi_b - p[near]) < 0.3 * np.mean(hi_p - p[near])
    q = binned.bin_quantiles(0.9)
    assert q.shape == (3,) and q[0] < q[1] and q[0] < q[2]


def test_sparse_bins_take_the_pooled_quantile_and_round_trip() -> None:
    truth, pred = _heteroscedastic(300, 2)
    pred[pred >= 120] = 119.0  # nothing in the last bin
    conf = SplitConformal(bins=(40.0, 120.0), min_bin_size=20).fit(truth, pred)
    assert conf.bin_scores_ is not None and conf.bin_scores_[2].size == 0
    q = conf.bin_quantiles(0.9)
    assert q[2] == conf.quantile(0.9) and q[0] != q[2]
    d = conf.to_dict()
    assert d["method"] == "mondrian_split_conformal" and d["bins"] == [40.0, 120.0] and len(d["bin_scores"]) == 3
    again = SplitConformal.from_dict(json.loads(json.dumps(d)))
    probe = np.array([0.0, 10.0, 39.9, 40.0, 80.0, 119.9, 120.0, 150.0])
    for a, b in zip(again.interval(probe, 0.9), conf.interval(probe, 0.9), strict=True):
        np.testing.assert_array_equal(a, b)
    # an edge belongs to the bin above it
    assert conf.interval(np.array([40.0]), 0.9)[1][0] - 40.0 == pytest.approx(q[1])
    # a card from before bins existed is one pooled bin
    old = {k: v for k, v in d.items() if k not in ("bins", "bin_scores", "min_bin_size", "bin_q90")}
    assert SplitConformal.from_dict(old).bin_quantiles(0.9).tolist() == [conf.quantile(0.9)]
    with pytest.raises(ModelError, match="bin_scores"):
        SplitConformal.from_dict({**d, "bin_scores": d["bin_scores"][:2]})
    with pytest.raises(ModelError, match="increasing"):
        SplitConformal(bins=(90.0, 40.0)).fit(truth, pred)
    # unfitted() keeps the settings, not the scores
    fresh = conf.unfitted()
    assert fresh.bins == conf.bins and fresh.scores_ is None and fresh.bin_scores_ is None


@settings(max_examples=200, deadline=None)
@given(
    quantiles=st.lists(st.floats(0.05, 60.0), min_size=2, max_size=4),
    first_edge=st.floats(5.0, 60.0),
    gaps=st.lists(st.floats(5.0, 60.0), min_size=3, max_size=3),
    scale=st.sampled_from(["none", "prediction"]),
)
def test_bounds_by_bin_are_monotone_in_the_prediction_and_only_ever_wider(
    quantiles: list[float], first_edge: float, gaps: list[float], scale: str
) -> None:
    """A lower prediction never gives a later lower bound, nor a higher one a sooner upper bound,
    whatever each bin's quantile; and the envelope never narrows a bin's own interval."""
    bins = tuple(first_edge + sum(gaps[:i]) for i in range(len(quantiles) - 1))
    if scale == "prediction":
        quantiles = [q / 20.0 for q in quantiles]  # normalised scores: half-width q * (prediction + offset)
    conf = SplitConformal(scale=scale, bins=bins, min_bin_size=1)  # type: ignore[arg-type]
    # one score per bin, each the quantile that bin is to use (rank ceil(2 * 0.5) = 1 of 1)
    conf.scores_ = np.sort(np.array(quantiles))
    conf.bin_scores_ = [np.array([q]) for q in quantiles]
    assert conf.bin_quantiles(0.5).tolist() == pytest.approx(quantiles)
    grid = np.linspace(0.0, bins[-1] * 2 + 50.0, 4001)
    lo, hi = conf.interval(grid, 0.5)
    assert np.all(np.diff(lo) >= -1e-9) and np.all(np.diff(hi) >= -1e-9)
    own_lo, own_hi = conf._bounds(grid, np.array(quantiles)[conf._bin_of(grid)])
    assert np.all(lo <= own_lo + 1e-9) and np.all(hi >= own_hi - 1e-9)
    assert np.all(lo >= 0.0) and np.all(lo <= grid) and np.all(hi >= grid)


def test_the_near_failure_bin_edge_no_longer_moves_the_lower_bound_later() -> None:
    # FD001's shipped quantiles: 4.8 below 40, 14.3 at 40-90: per bin, 39 -> 34.2 but 41 -> 26.7
    conf = SplitConformal(bins=(40.0, 90.0), min_bin_size=1)
    conf.scores_ = np.array([4.8, 14.3, 15.2])
    conf.bin_scores_ = [np.array([4.8]), np.array([14.3]), np.array([15.2])]
    lo, hi = conf.interval(np.array([20.0, 39.0, 41.0, 60.0]), 0.5)
    assert lo.tolist() == pytest.approx([15.2, 25.7, 26.7, 45.7])  # 39 takes the 40-90 bin's least bound, 25.7
    assert hi.tolist() == pytest.approx([24.8, 43.8, 55.3, 74.3])  # upper bounds already rise at the edge
