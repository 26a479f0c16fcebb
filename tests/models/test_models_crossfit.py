"""Cross-fit on every unit (``n_folds``): K networks, each early-stopped on a fold it never trains on.

The shipped model averages the K networks; its calibration and validation figures come from the
out-of-fold predictions, so nothing it reports is scored on units it trained on.
"""

# ruff: noqa: N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from core.datasets.cmapss import load_cmapss
from core.errors import ModelError
from core.inference.registry import ModelRegistry
from genedge.rul_cli import rul_app
from models.crossfit import CrossFitEnsemble
from models.data.cmapss import CMAPSSDataModule, fit_normalizer
from models.metrics import rmse
from models.pipeline import TrainResult, fit_fold, register_result, resolve_config, train_cmapss

SMALL_NET = {"d_model": 16, "d_ff": 32, "n_layers": 1, "n_heads": 2, "n_sensor_layers": 1, "patch_len": 3}
SMALL_DATA = {"max_train_units": 24, "window": 30, "n_val_cuts": 3}


def test_folds_partition_the_units_and_share_one_normaliser(cmapss_dir: Path) -> None:
    kw = {"window": 20, "max_train_units": 31, "n_val_cuts": 2, "seed": 7, "n_folds": 4}
    dms = [CMAPSSDataModule(cmapss_dir, "FD002", fold=k, **kw) for k in range(4)]
    for dm in dms:
        dm.setup()
    held_out = [dm.val_units for dm in dms]
    every = np.sort(np.concatenate(held_out))
    # each unit is held out by exactly one fold; folds differ in size by at most one unit
    assert every.size == 31 and np.unique(every).size == 31
    assert max(h.size for h in held_out) - min(h.size for h in held_out) <= 1
    for dm in dms:
        np.testing.assert_array_equal(np.sort(np.concatenate([dm.train_units, dm.val_units])), every)
        assert np.intersect1d(dm.train_units, dm.val_units).size == 0
        assert set(np.unique(dm.val_cut_units)) == set(dm.val_units)
        # the networks are averaged into one model, so they must read one normalisation
        assert dm.preprocessing_card() == dms[0].preprocessing_card()
    # the same seed gives the same folds
    again = CMAPSSDataModule(cmapss_dir, "FD002", fold=2, **kw)
    again.setup()
    np.testing.assert_array_equal(again.val_units, dms[2].val_units)
    np.testing.assert_array_equal(again.y_val, dms[2].y_val)


def test_holdout_units_are_kept_out_of_everything(cmapss_dir: Path) -> None:
    """A nested evaluation: held-out units are in no fold, no training set and not in the normaliser."""
    kw = {"window": 20, "n_val_cuts": 2, "seed": 1, "n_folds": 3}
    out = list(range(1, 101, 4))  # 25 of FD001's 100 units
    dm = CMAPSSDataModule(cmapss_dir, "FD001", holdout_units=out, **kw)
    dm.setup()
    assert not set(out) & set(np.concatenate([*dm.fold_units, dm.train_units]).tolist())
    assert np.concatenate(dm.fold_units).size == 75
    # the normaliser is the one fitted on the 75 remaining units, not on all 100
    df = load_cmapss(cmapss_dir, "FD001")
    remaining = fit_normalizer(df[~df["unit"].isin(out)], 1, seed=1)
    everything = fit_normalizer(df, 1, seed=1)
    assert dm.normalizer is not None
    assert dm.normalizer.to_dict() == remaining.to_dict() != everything.to_dict()


def test_named_val_units_replicate_the_split_recipe_on_another_group(cmapss_dir: Path) -> None:
    """``val_units`` holds out the named group: the rest trains, and the normaliser sees the rest only."""
    group = [3, 8, 14, 27, 41, 55, 62, 70, 88, 99]
    dm = CMAPSSDataModule(cmapss_dir, "FD001", window=20, n_val_cuts=2, seed=0, val_units=group[::-1])
    dm.setup()
    assert dm.val_units.tolist() == group
    assert dm.train_units.tolist() == [u for u in range(1, 101) if u not in group]
    assert set(np.unique(dm.val_cut_units).tolist()) == set(group)
    df = load_cmapss(cmapss_dir, "FD001")
    assert dm.normalizer is not None
    assert dm.normalizer.to_dict() == fit_normalizer(df[~df["unit"].isin(group)], 1, seed=0).to_dict()


@pytest.mark.parametrize(
    ("kw", "match"),
    [
        ({"val_units": [1, 2], "n_folds": 3}, "cannot be combined with n_folds"),
        ({"val_units": []}, "non-empty validation group"),
    ],
)
def test_bad_named_val_units_are_refused(cmapss_dir: Path, kw: dict[str, Any], match: str) -> None:
    with pytest.raises(ModelError, match=match):
        CMAPSSDataModule(cmapss_dir, "FD001", **kw)


def test_named_val_units_must_be_training_units(cmapss_dir: Path) -> None:
    dm = CMAPSSDataModule(cmapss_dir, "FD001", val_units=[5, 101], holdout_units=[7])
    with pytest.raises(ModelError, match=r"val_units \[101\] are not training units of FD001"):
        dm.setup()
    held = CMAPSSDataModule(cmapss_dir, "FD001", val_units=[5, 7], holdout_units=[7])
    with pytest.raises(ModelError, match=r"val_units \[7\] are not training units"):
        held.setup()


@pytest.mark.parametrize(("n_folds", "fold"), [(1, 0), (3, 3), (3, -1)])
def test_bad_fold_settings_are_refused(cmapss_dir: Path, n_folds: int, fold: int) -> None:
    with pytest.raises(ModelError, match="n_folds must be >= 2 and fold in"):
        CMAPSSDataModule(cmapss_dir, "FD001", n_folds=n_folds, fold=fold)


def test_more_folds_than_units_is_refused(cmapss_dir: Path) -> None:
    dm = CMAPSSDataModule(cmapss_dir, "FD001", n_folds=5, max_train_units=4)
    with pytest.raises(ModelError, match="4 units cannot be split into 5 folds"):
        dm.setup()


@pytest.fixture(scope="module")
def crossfit(cmapss_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> tuple[TrainResult, Path]:
    ck = tmp_path_factory.mktemp("ck")
    result = train_cmapss(
        cmapss_dir,
        "FD001",
        model="transformer",
        seed=3,
        max_epochs=3,
        model_params={**SMALL_NET, "checkpoint_dir": str(ck)},
        data_params={**SMALL_DATA, "n_folds": 3},
    )
    return result, ck


def test_crossfit_scores_every_unit_out_of_fold(crossfit: tuple[TrainResult, Path]) -> None:
    result, _ = crossfit
    est, dm = result.estimator, result.datamodule
    assert isinstance(est, CrossFitEnsemble) and len(result.folds) == 3
    # every unit was trained on by two networks and held out by the third
    assert dm.train_units.size == dm.val_units.size == 24
    assert result.metrics["val_n_units"] == 24 and result.metrics["val_n_cuts"] == 24 * 3
    # val_rmse is the out-of-fold figure: each cut predicted by the network that never saw its unit
    oof = np.concatenate([f.estimator.predict(f.datamodule.X_val) for f in result.folds])
    assert result.metrics["val_rmse"] == pytest.approx(rmse(dm.y_val, oof))
    assert result.metrics["val_fold_rmse"] == pytest.approx(
        [rmse(f.datamodule.y_val, f.estimator.predict(f.datamodule.X_val)) for f in result.folds]
    )
    # the averaged model fits the cuts better than the out-of-fold networks (it trained on them):
    # that is why it is never scored there
    assert rmse(dm.y_val, est.predict(dm.X_val)) < result.metrics["val_rmse"]
    # calibrated on the out-of-fold residuals: the 90 % interval covers at least 90 % of them
    lo, hi = est.conformal_.interval(oof, 0.9)
    assert np.mean((dm.y_val >= lo) & (dm.y_val <= hi)) >= 0.9
    assert est.conformal_.scores_ is not None and est.conformal_.scores_.size == oof.size
    # a constant predictor is far worse, even after three epochs
    assert result.metrics["val_rmse"] < rmse(dm.y_val, np.full_like(dm.y_val, dm.y_val.mean()))


def test_the_exported_network_is_the_mean_of_the_fold_networks(crossfit: tuple[TrainResult, Path]) -> None:
    result, _ = crossfit
    est, X = result.estimator, result.datamodule.X_val[:50]
    net = est.network
    assert len(net.members) == 3
    with torch.inference_mode():
        out = net(torch.from_numpy(X)).numpy()
    np.testing.assert_allclose(out, np.mean([f.estimator.predict(X) for f in result.folds], axis=0), atol=1e-4)
    np.testing.assert_allclose(est.predict(X), out, atol=1e-4)
    interval = est.predict_interval(X, 0.9)
    assert (interval["lower"] <= out + 1e-6).all() and (interval["upper"] >= out - 1e-6).all()


def test_registered_crossfit_card_and_int8_score_out_of_fold(crossfit: tuple[TrainResult, Path], tmp_path: Path) -> None:
    result, _ = crossfit
    mv = register_result(result, tmp_path, variant="int8-compact")
    card = mv.card
    assert card.config["data"]["n_folds"] == 3 and "fold" not in card.config["data"]
    assert card.dataset.fold_units is not None
    assert [sorted(u) for u in card.dataset.fold_units] == [f.datamodule.val_units.tolist() for f in result.folds]
    assert card.dataset.val_units == card.dataset.train_units
    # fp32 ONNX per fold reproduces the torch out-of-fold RMSE; int8 stays close to it
    assert card.metrics["val_rmse_onnx_fp32"] == pytest.approx(result.metrics["val_rmse"], abs=1e-3)
    assert abs(card.metrics["val_rmse_onnx"] - result.metrics["val_rmse"]) < 0.05 * result.metrics["val_rmse"]
    assert len(card.metrics["val_fold_rmse"]) == 3


def test_a_fold_trained_alone_is_reused_by_the_crossfit(cmapss_dir: Path, crossfit: tuple[TrainResult, Path]) -> None:
    """Folds can be trained in parallel processes: ``fit_fold`` with the same checkpoint dir is a cache hit."""
    result, ck = crossfit
    config = resolve_config(
        "FD001",
        "transformer",
        model_params={**SMALL_NET, "max_epochs": 3, "checkpoint_dir": str(ck)},
        data_params={**SMALL_DATA, "n_folds": 3},
    )
    alone = fit_fold(cmapss_dir, "FD001", model="transformer", seed=3, config=config, fold=1)
    assert getattr(alone.estimator, "members_loaded_", None) == [4]  # seed + fold
    X = result.folds[1].datamodule.X_val
    np.testing.assert_allclose(alone.estimator.predict(X), result.folds[1].estimator.predict(X), atol=1e-5)


@pytest.mark.slow
def test_cli_crossfit_and_its_card_reproduce(cmapss_dir: Path, tmp_path: Path) -> None:
    """`genedge rul train --folds K`, then `--from-card` of what it registered: the same out-of-fold RMSE."""
    common = ["--data-dir", str(cmapss_dir), "--registry-dir", str(tmp_path), "--json", "--subset", "FD001"]
    first = CliRunner().invoke(
        rul_app, ["train", *common, "--folds", "2", "--max-epochs", "1", "--seed", "5", "--variant", "int8-compact"]
    )
    assert first.exit_code == 0, first.output
    a = json.loads(first.stdout.strip().splitlines()[-1])
    assert a["val_n_units"] == 100 and len(a["val_fold_rmse"]) == 2
    card_dir = ModelRegistry(tmp_path).get("cmapss-FD001", "v1").model_path.parent
    again = CliRunner().invoke(rul_app, ["train", *common, "--from-card", str(card_dir), "--variant", "int8-compact"])
    assert again.exit_code == 0, again.output
    b = json.loads(again.stdout.strip().splitlines()[-1])
    assert ModelRegistry(tmp_path).get("cmapss-FD001", "v2").card.config["data"]["n_folds"] == 2
    assert abs(b["val_rmse"] - a["val_rmse"]) <= 0.5, (a["val_rmse"], b["val_rmse"])


def test_fit_cross_fits_by_group_and_calibrates_out_of_fold(degradation_panel: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = degradation_panel
    groups = np.repeat(np.arange(12), 8)  # 12 "units" of 8 windows
    est = CrossFitEnsemble(**CrossFitEnsemble.get_test_params()[0]).set_params(n_folds=3)
    fold = est._fold_of(X.shape[0], groups)
    assert all(np.unique(fold[groups == g]).size == 1 for g in range(12)), "a unit's windows stay in one fold"
    assert np.bincount(fold).tolist() == [32, 32, 32]
    assert est.fit(X, y, groups=groups) is est
    assert len(est.estimators_) == 3 and [e.random_state for e in est.estimators_] == [42, 43, 44]
    assert est.conformal_.scores_ is not None and est.conformal_.scores_.size == y.size  # every window out of fold once
    np.testing.assert_allclose(est.predict(X), np.mean([e.predict(X) for e in est.estimators_], axis=0))
    again = CrossFitEnsemble.from_folds(est.estimators_, est.conformal_)
    np.testing.assert_allclose(again.predict_interval(X).to_numpy(), est.predict_interval(X).to_numpy())
    with pytest.raises(ModelError, match="at least 2 fold estimators"):
        CrossFitEnsemble.from_folds(est.estimators_[:1], est.conformal_)
    with pytest.raises(ModelError, match="each fold in turn"):
        est.fit(X, y, X_val=X, y_val=y)
    with pytest.raises(ModelError, match="at least n_folds=3 groups"):
        est.fit(X, y, groups=np.arange(96) % 2)
