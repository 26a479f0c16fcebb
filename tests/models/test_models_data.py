"""C-MAPSS loading, normalisation, windowing and the by-unit validation split."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.datasets.cmapss import load_cmapss, load_rul_truth
from core.errors import ModelError
from core.inference.preprocess import ConditionNormalizer, last_window, sliding_windows
from models.data import CMAPSSDataModule


def test_sliding_windows_pad_with_first_cycle() -> None:
    feats = np.arange(10, dtype=np.float32).reshape(5, 2)  # 5 cycles, 2 channels
    win = sliding_windows(feats, 3, np.arange(5))
    assert win.shape == (5, 2, 3)
    np.testing.assert_array_equal(win[0, 0], [0, 0, 0])  # padded with cycle 0
    np.testing.assert_array_equal(win[4, 1], [5, 7, 9])  # last three cycles of channel 1
    np.testing.assert_array_equal(last_window(feats, 3), win[4])
    np.testing.assert_array_equal(last_window(feats[:1], 3), win[0])


def test_last_window_of_nothing_is_an_error() -> None:
    with pytest.raises(ModelError, match="at least one cycle"):
        last_window(np.zeros((0, 2), dtype=np.float32), 3)


def test_missing_files_give_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match=r"train_FD001\.txt"):
        load_cmapss(tmp_path, "FD001")
    with pytest.raises(ModelError, match=r"RUL_FD001\.txt"):
        load_rul_truth(tmp_path, "FD001")
    with pytest.raises(ModelError, match="subset"):
        load_cmapss(tmp_path, "FD009")


def test_fd001_datamodule(cmapss_dir: Path) -> None:
    dm = CMAPSSDataModule(cmapss_dir, "FD001", window=30, seed=3, n_val_cuts=4)
    dm.setup()
    assert set(dm.train_units).isdisjoint(dm.val_units)
    assert dm.val_units.size == 20 and dm.train_units.size == 80
    # the standard 14 informative sensors of FD001
    assert dm.normalizer is not None
    assert (dm.normalizer.sensor_index + 1).tolist() == [2, 3, 4, 7, 8, 9, 11, 12, 13, 14, 15, 17, 20, 21]
    assert dm.X_train.shape[1:] == (14, 30) and dm.X_train.dtype == np.float32
    assert dm.y_train.max() == 125 and dm.y_train.min() == 0
    assert dm.X_val.shape == (80, 14, 30) and dm.y_val.shape == (80,)
    assert (dm.y_val >= 1).all() and (dm.y_val <= 125).all()
    assert abs(float(dm.X_train.mean())) < 0.3
    assert dm.X_test is not None and dm.X_test.shape == (100, 14, 30)
    batch = next(iter(dm.train_dataloader()))
    assert batch[0].shape == (256, 14, 30)


def test_fd002_has_six_conditions_and_card_round_trips(cmapss_dir: Path) -> None:
    dm = CMAPSSDataModule(cmapss_dir, "FD002", window=20, max_train_units=30, n_val_cuts=2)
    dm.setup()
    norm = dm.normalizer
    assert norm is not None and norm.n_conditions == 6
    card = dm.preprocessing_card()
    again = ConditionNormalizer.from_dict(card["normalizer"])
    raw = load_cmapss(cmapss_dir, "FD002", "test").to_numpy()[:50]
    np.testing.assert_allclose(again.transform_raw(raw), norm.transform_raw(raw), atol=1e-6)
    # per-condition normalisation removes the operating-condition offsets
    feats = norm.transform_raw(load_cmapss(cmapss_dir, "FD002").to_numpy()[:5000])
    assert np.abs(feats.mean(axis=0)).max() < 0.5


def test_condition_onehot_channels_follow_the_sensors_and_round_trip(cmapss_dir: Path) -> None:
    plain = CMAPSSDataModule(cmapss_dir, "FD002", window=20, max_train_units=30, n_val_cuts=2)
    dm = CMAPSSDataModule(cmapss_dir, "FD002", window=20, max_train_units=30, n_val_cuts=2, condition_onehot=True)
    plain.setup()
    dm.setup()
    assert dm.normalizer is not None and plain.normalizer is not None
    n_sensors = plain.n_channels
    assert dm.n_channels == n_sensors + 6
    # the sensor channels are unchanged; each cycle is in exactly one condition
    np.testing.assert_array_equal(dm.X_val[:, :n_sensors], plain.X_val)
    onehot = dm.X_train[:, n_sensors:]
    assert set(np.unique(onehot)) == {0.0, 1.0}
    np.testing.assert_array_equal(onehot.sum(axis=1), 1.0)
    raw = load_cmapss(cmapss_dir, "FD002", "test").to_numpy()[:50]
    cond = dm.normalizer.assign(raw[:, 2:5])
    feats = dm.normalizer.transform_raw(raw)
    np.testing.assert_array_equal(feats[:, n_sensors:].argmax(axis=1), cond)
    # the card carries the option, so the edge runtime builds the same channels
    again = ConditionNormalizer.from_dict(dm.preprocessing_card()["normalizer"])
    assert again.condition_onehot and again.n_features == dm.n_channels
    np.testing.assert_allclose(again.transform_raw(raw), feats, atol=1e-6)
    # cards without the key (every model shipped before it) read as before
    assert "condition_onehot" not in plain.preprocessing_card()["normalizer"]
    assert not ConditionNormalizer.from_dict(plain.preprocessing_card()["normalizer"]).condition_onehot


def test_age_channel_is_the_cycle_number_and_needs_the_cycle_column(cmapss_dir: Path) -> None:
    kw = {"window": 20, "max_train_units": 30, "n_val_cuts": 2, "seed": 5}
    plain = CMAPSSDataModule(cmapss_dir, "FD002", **kw)
    dm = CMAPSSDataModule(cmapss_dir, "FD002", age_channel=True, **kw)
    plain.setup()
    dm.setup()
    assert dm.normalizer is not None and dm.n_channels == plain.n_channels + 1
    # the sensor channels are unchanged; the last one is the cycle / 200 of each row
    np.testing.assert_array_equal(dm.X_val[:, :-1], plain.X_val)
    raw = load_cmapss(cmapss_dir, "FD002", "test").to_numpy()[:300]
    feats = dm.normalizer.transform_raw(raw)
    np.testing.assert_allclose(feats[:, -1], raw[:, 1] / 200.0, rtol=1e-6)
    # a window ends at the cut: its age is the history's length, and it only grows along a window
    ages = dm.X_val[:, -1, :]
    assert (np.diff(ages, axis=1) >= 0).all() and (ages[:, -1] * 200.0 >= dm.min_cut_length).all()
    # the card carries it, so the edge runtime builds the same channel
    again = ConditionNormalizer.from_dict(dm.preprocessing_card()["normalizer"])
    assert again.age_scale == 200.0 and again.n_features == dm.n_channels
    np.testing.assert_allclose(again.transform_raw(raw), feats, atol=1e-6)
    assert "age_scale" not in plain.preprocessing_card()["normalizer"]
    # rows without the cycle column cannot say the age: a clear error, not a silent zero
    with pytest.raises(ModelError, match="cycle number"):
        again.transform_raw(raw[:, 2:])
    with pytest.raises(ModelError, match="one finite cycle number per row"):
        again.transform(raw[:, 2:5], raw[:, 5:], raw[:-1, 1])
    # a plain normaliser takes both layouts, as before
    np.testing.assert_array_equal(plain.normalizer.transform_raw(raw[:, 2:]), plain.normalizer.transform_raw(raw))  # type: ignore[union-attr]


def test_extra_train_subsets_add_training_units_only(cmapss_dir: Path) -> None:
    kw = {"window": 20, "max_train_units": 30, "n_val_cuts": 2, "seed": 4}
    own = CMAPSSDataModule(cmapss_dir, "FD004", **kw)
    pooled = CMAPSSDataModule(cmapss_dir, "FD004", extra_train_subsets=["FD002"], **kw)
    own.setup()
    pooled.setup()
    # the split and the validation cuts are FD004's own, the same with or without the extra units
    np.testing.assert_array_equal(pooled.val_units, own.val_units)
    np.testing.assert_array_equal(pooled.y_val, own.y_val)
    # every FD002 unit (260 run-to-failure trajectories, one window per cycle) joins the training set
    n_fd002 = len(load_cmapss(cmapss_dir, "FD002"))
    assert pooled.X_train.shape[0] == own.X_train.shape[0] + n_fd002
    assert pooled.n_channels == own.n_channels
    # sea-level units (FD003) join FD004 in its sea-level condition; the six conditions stay six
    with_fd003 = CMAPSSDataModule(cmapss_dir, "FD004", extra_train_subsets=["FD002", "FD003"], **kw)
    with_fd003.setup()
    np.testing.assert_array_equal(with_fd003.y_val, own.y_val)
    assert with_fd003.X_train.shape[0] == pooled.X_train.shape[0] + len(load_cmapss(cmapss_dir, "FD003"))
    assert with_fd003.normalizer is not None and with_fd003.normalizer.n_conditions == 6
    # six-condition units cannot join a one-condition subset
    with pytest.raises(ModelError, match="cannot share one normaliser"):
        CMAPSSDataModule(cmapss_dir, "FD001", extra_train_subsets=["FD004"])
    with pytest.raises(ModelError, match="must not name the subset itself"):
        CMAPSSDataModule(cmapss_dir, "FD004", extra_train_subsets=["FD004"])


def test_split_is_seeded(cmapss_dir: Path) -> None:
    a = CMAPSSDataModule(cmapss_dir, "FD001", seed=1, max_train_units=30)
    b = CMAPSSDataModule(cmapss_dir, "FD001", seed=1, max_train_units=30)
    a.setup()
    b.setup()
    np.testing.assert_array_equal(a.val_units, b.val_units)
    np.testing.assert_array_equal(a.y_val, b.y_val)


def test_datamodule_drives_a_lightning_trainer(cmapss_dir: Path) -> None:
    import pytorch_lightning as pl

    from models.nets import TransformerRULNet

    dm = CMAPSSDataModule(cmapss_dir, "FD003", window=20, max_train_units=10, batch_size=32)
    dm.setup()
    net = TransformerRULNet(dm.n_channels, dm.window, d_model=8, n_heads=2, d_ff=8, n_layers=1)
    trainer = pl.Trainer(
        fast_dev_run=True, accelerator="cpu", logger=False, enable_progress_bar=False, enable_model_summary=False
    )
    trainer.fit(net, datamodule=dm)
    assert dm.X_test is not None and dm.X_test.shape == (100, dm.n_channels, 20)
    has_truth = (cmapss_dir / "RUL_FD003.txt").is_file()
    assert (dm.y_test is not None) == has_truth
    assert len(dm.val_dataloader()) >= 1


def test_train_without_the_other_subsets_file_says_how_to_go_on(cmapss_dir: Path, tmp_path: Path) -> None:
    """FD002 trains on FD004's units too by default; with only train_FD002.txt at hand the CLI says
    which file is missing and how to train on FD002's own units, and ``--own-units-only`` does."""
    import json

    from typer.testing import CliRunner

    from genedge.rul_cli import rul_app

    lines = (cmapss_dir / "train_FD002.txt").read_text(encoding="utf-8").splitlines()
    (tmp_path / "train_FD002.txt").write_text(
        "\n".join(ln for ln in lines if int(ln.split()[0]) <= 12) + "\n", encoding="utf-8"
    )  # 12 units: a quick run
    args = ["train", "--data-dir", str(tmp_path), "--subset", "FD002", "--max-epochs", "1", "--no-register", "--json"]
    runner = CliRunner()
    res = runner.invoke(rul_app, args)
    assert res.exit_code != 0
    assert "train_FD004.txt is missing" in res.output and "--own-units-only" in res.output
    # Lightning's prepare_data hook says the same
    with pytest.raises(ModelError, match=r"train_FD004\.txt is missing: put it beside train_FD002\.txt"):
        CMAPSSDataModule(tmp_path, "FD002", extra_train_subsets=["FD004"]).prepare_data()
    res = runner.invoke(rul_app, [*args, "--own-units-only"])
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["subset"] == "FD002" and np.isfinite(out["val_rmse"])
