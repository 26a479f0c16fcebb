"""Member checkpoints (``checkpoint_dir``): an ensemble fit split over runs, or interrupted, resumes.

A maintenance engineer's long retraining on a gateway, or a benchmark ensemble that takes longer
than one sitting, must not lose the networks already trained.
"""

# ruff: noqa: N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from typer.testing import CliRunner

from core.errors import ModelError
from core.inference.registry import ModelRegistry
from genedge.rul_cli import rul_app
from models.lstm import LSTMRUL
from models.transformer import TransformerRUL

PARAMS = {"hidden_size": 8, "num_layers": 1, "max_epochs": 2, "batch_size": 32, "num_threads": 1}


def _data(n: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    rng = np.random.default_rng(seed)
    X = rng.normal(size=(n, 3, 12)).astype(np.float32)
    y = np.clip(60 + 30 * X[:, 0, -4:].mean(axis=1) + rng.normal(scale=2, size=n), 0, 125).astype(np.float32)
    return X, y


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    return (*_data(256, 0), *_data(64, 1))


@pytest.fixture(scope="module")
def reference(data: tuple[np.ndarray, ...]) -> LSTMRUL:
    """Seeds 5, 6, 7 trained in one fit, no checkpoints."""
    X, y, X_val, y_val = data
    return LSTMRUL(**PARAMS, random_state=5, n_members=3).fit(X, y, X_val=X_val, y_val=y_val)


def test_members_trained_in_separate_runs_make_the_same_ensemble(
    data: tuple[np.ndarray, ...], reference: LSTMRUL, tmp_path: Path
) -> None:
    X, y, X_val, y_val = data
    first = LSTMRUL(**PARAMS, random_state=5, n_members=1, checkpoint_dir=str(tmp_path)).fit(X, y, X_val=X_val, y_val=y_val)
    assert first.members_loaded_ == []
    # members 6 and 7 in two worker processes, which save their own checkpoints
    rest = LSTMRUL(**PARAMS, random_state=6, n_members=2, n_jobs=2, checkpoint_dir=str(tmp_path))
    rest.fit(X, y, X_val=X_val, y_val=y_val)
    assert rest.members_loaded_ == [] and len(list(tmp_path.glob("LSTMRUL-*.pt"))) == 3
    assert not list(tmp_path.glob(".*tmp")), "no half-written files left"

    whole = LSTMRUL(**PARAMS, random_state=5, n_members=3, checkpoint_dir=str(tmp_path)).fit(X, y, X_val=X_val, y_val=y_val)
    assert whole.members_loaded_ == [5, 6, 7]
    assert whole.member_val_rmse_ == reference.member_val_rmse_ and whole.n_epochs_ == reference.n_epochs_
    assert whole.best_epoch_ == reference.best_epoch_
    np.testing.assert_array_equal(whole.predict(X_val), reference.predict(X_val))
    np.testing.assert_array_equal(whole.predict_interval(X_val, coverage=0.9), reference.predict_interval(X_val, coverage=0.9))


def test_an_interrupted_fit_trains_only_the_missing_members(
    data: tuple[np.ndarray, ...], reference: LSTMRUL, tmp_path: Path
) -> None:
    X, y, X_val, y_val = data
    LSTMRUL(**PARAMS, random_state=5, n_members=3, checkpoint_dir=str(tmp_path)).fit(X, y, X_val=X_val, y_val=y_val)
    files = sorted(tmp_path.glob("LSTMRUL-*.pt"))
    assert len(files) == 3
    # as if the run died while training the last two members: only the first one's file is left
    seed_of = {int(torch.load(f, weights_only=True)["seed"]): f for f in files}
    seed_of[6].unlink()
    seed_of[7].unlink()
    resumed = LSTMRUL(**PARAMS, random_state=5, n_members=3, checkpoint_dir=str(tmp_path))
    resumed.fit(X, y, X_val=X_val, y_val=y_val)
    assert resumed.members_loaded_ == [5]
    np.testing.assert_array_equal(resumed.predict(X_val), reference.predict(X_val))


def test_other_data_or_learning_parameters_do_not_reuse_members(data: tuple[np.ndarray, ...], tmp_path: Path) -> None:
    X, y, X_val, y_val = data
    ck = {"checkpoint_dir": str(tmp_path), "random_state": 5}
    LSTMRUL(**PARAMS, **ck).fit(X, y, X_val=X_val, y_val=y_val)
    other_params = LSTMRUL(**{**PARAMS, "max_epochs": 1}, **ck).fit(X, y, X_val=X_val, y_val=y_val)
    assert other_params.members_loaded_ == []
    other_data = LSTMRUL(**PARAMS, **ck).fit(X[:-1], y[:-1], X_val=X_val, y_val=y_val)
    assert other_data.members_loaded_ == []
    # runtime settings are not part of the key: another thread count reuses the member
    same = LSTMRUL(**{**PARAMS, "num_threads": 2}, **ck).fit(X, y, X_val=X_val, y_val=y_val)
    assert same.members_loaded_ == [5]
    assert len(list(tmp_path.glob("LSTMRUL-*.pt"))) == 3


def test_an_unreadable_checkpoint_says_which_file_and_what_to_do(data: tuple[np.ndarray, ...], tmp_path: Path) -> None:
    X, y, X_val, y_val = data
    LSTMRUL(**PARAMS, random_state=5, checkpoint_dir=str(tmp_path)).fit(X, y, X_val=X_val, y_val=y_val)
    (path,) = tmp_path.glob("LSTMRUL-*.pt")
    path.write_bytes(b"not a checkpoint")
    with pytest.raises(ModelError, match=rf"{path.name}.*delete it to train that member again"):
        LSTMRUL(**PARAMS, random_state=5, checkpoint_dir=str(tmp_path)).fit(X, y, X_val=X_val, y_val=y_val)


def test_cli_train_resumes_from_the_checkpoint_dir_and_keeps_it_out_of_the_card(cmapss_dir: Path, tmp_path: Path) -> None:
    """`genedge rul train --checkpoint-dir` on real FD001: the second run reuses both networks."""
    ck = tmp_path / "ck"
    args = [
        "train",
        "--data-dir",
        str(cmapss_dir),
        "--subset",
        "FD001",
        "--model",
        "lstm",
        "--members",
        "2",
        "--max-epochs",
        "1",
        "--seed",
        "3",
        "--registry-dir",
        str(tmp_path / "reg"),
        "--checkpoint-dir",
        str(ck),
        "--json",
    ]
    first = CliRunner().invoke(rul_app, args)
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(rul_app, args)
    assert again.exit_code == 0, again.output
    a = json.loads(first.stdout.strip().splitlines()[-1])
    b = json.loads(again.stdout.strip().splitlines()[-1])
    assert a["members_loaded"] == [] and b["members_loaded"] == [3, 4]
    assert b["val_rmse"] == a["val_rmse"]
    card = ModelRegistry(tmp_path / "reg").get("cmapss-FD001", "v2").card
    assert "checkpoint_dir" not in card.config["model"] and card.config["model"]["n_members"] == 2


def test_cli_train_refuses_a_checkpoint_dir_for_minirocket(cmapss_dir: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        rul_app,
        ["train", "--data-dir", str(cmapss_dir), "--model", "minirocket", "--checkpoint-dir", str(tmp_path)],
    )
    assert res.exit_code == 1
    assert "deep models" in res.output


def test_a_new_option_at_its_neutral_value_keeps_older_members_keys(data: tuple[np.ndarray, ...], tmp_path: Path) -> None:
    """``late_weight`` came after members had been checkpointed: at 1 (plain MSE) it must not orphan them.

    The keys below were computed by the code before the option existed (commit 0e5372d).
    """
    assert LSTMRUL(**PARAMS, random_state=5)._checkpoint_key("data", 5) == "289071aa33550d5f041a29525fb64931"
    tiny = {"d_model": 8, "n_heads": 2, "n_layers": 1, "d_ff": 16, "max_epochs": 2}
    assert TransformerRUL(**tiny)._checkpoint_key("data", 5) == "62586b50e86bd49959da5c0b3a1e708a"
    # any other value is another training problem: a fresh member, not the saved one
    X, y, X_val, y_val = data
    ck = {"checkpoint_dir": str(tmp_path), "random_state": 5}
    LSTMRUL(**PARAMS, **ck).fit(X, y, X_val=X_val, y_val=y_val)
    late = LSTMRUL(**{**PARAMS, "late_weight": 2.0}, **ck).fit(X, y, X_val=X_val, y_val=y_val)
    assert late.members_loaded_ == []
    assert len(list(tmp_path.glob("LSTMRUL-*.pt"))) == 2
