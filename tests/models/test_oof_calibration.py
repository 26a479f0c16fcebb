"""Intervals calibrated on scaled out-of-fold errors plus the ensemble's validation errors."""

from __future__ import annotations

import json

import numpy as np
import pytest

from core.errors import ModelError
from core.inference.calibration import SplitConformal, empirical_coverage
from models.oof_calibration import ensemble_error_ratio, oof_card_calibration, oof_conformal
from models.pipeline import CMAPSS_INTERVAL_BINS


def _draw(rng: np.random.Generator, n: int, sd: float) -> tuple[np.ndarray, np.ndarray]:
    truth = rng.uniform(0, 125, n)
    return truth, np.clip(truth + rng.normal(0, sd, n), 0, None)


def test_ratio_of_mean_absolute_errors() -> None:
    y = np.array([10.0, 20.0, 30.0, 40.0])
    ensemble = y + np.array([1.0, -1.0, 2.0, -2.0])  # MAE 1.5
    singles = np.stack([y + 3.0, y - 3.0])  # MAE 3
    assert ensemble_error_ratio(y, ensemble, singles) == pytest.approx(0.5)
    with pytest.raises(ModelError, match="single_preds"):
        ensemble_error_ratio(y, ensemble, singles[:, :3])
    with pytest.raises(ModelError, match="no error"):
        ensemble_error_ratio(y, ensemble, np.stack([y, y]))


def test_scaled_oof_scores_cover_the_ensemble_at_nominal() -> None:
    # single networks err twice as much as the ensemble: raw out-of-fold scores over-cover, scaled ones do not
    rng = np.random.default_rng(0)
    oof_y, oof_pred = _draw(rng, 3000, 10.0)
    val_y, val_pred = _draw(rng, 100, 5.0)
    val_singles = np.stack([val_y + rng.normal(0, 10.0, val_y.size) for _ in range(5)])
    test_y, test_pred = _draw(rng, 20000, 5.0)
    conformal, ratio = oof_conformal(oof_y, oof_pred, val_y, val_pred, val_singles, bins=CMAPSS_INTERVAL_BINS)
    assert 0.4 < ratio < 0.6
    assert 0.87 <= empirical_coverage(test_y, *conformal.interval(test_pred, 0.9)) <= 0.93
    raw = SplitConformal(bins=CMAPSS_INTERVAL_BINS).fit(np.r_[oof_y, val_y], np.r_[oof_pred, val_pred])
    assert empirical_coverage(test_y, *raw.interval(test_pred, 0.9)) > 0.98


def test_card_calibration_is_read_back_as_the_runtime_reads_it() -> None:
    rng = np.random.default_rng(1)
    oof_y, oof_pred = _draw(rng, 400, 10.0)
    val_y, val_pred = _draw(rng, 100, 5.0)
    singles = np.stack([val_y + rng.normal(0, 10.0, val_y.size) for _ in range(5)])
    section = oof_card_calibration(
        oof_y, oof_pred, val_y, val_pred, singles, bins=CMAPSS_INTERVAL_BINS, source="test", n_oof_units=80, n_val_units=20
    )
    section = json.loads(json.dumps(section))  # as stored in card.json
    assert section["method"] == "mondrian_split_conformal" and section["n_oof_cuts"] == 400 and section["n_val_cuts"] == 100
    direct, ratio = oof_conformal(oof_y, oof_pred, val_y, val_pred, singles, bins=CMAPSS_INTERVAL_BINS)
    assert section["oof_scale"] == pytest.approx(ratio)
    loaded = SplitConformal.from_dict(section)
    pred = np.linspace(0, 125, 50)
    np.testing.assert_allclose(loaded.interval(pred, 0.9), direct.interval(pred, 0.9), atol=1e-3)  # scores kept to 3 decimals
    assert section["bin_q90"] == pytest.approx(loaded.bin_quantiles(0.9).tolist())
    assert section["bin_q90"] == pytest.approx(direct.bin_quantiles(0.9).tolist(), abs=1e-3)
