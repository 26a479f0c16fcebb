"""CWRU loader protocol, classical augmentation, classifiers, gap filling and the CLI."""

# ruff: noqa: N806

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np
import pytest

from core.errors import ModelError, NotFittedError
from synth import (
    ClassicalAugmenter,
    ConditionalVAE,
    FeatureClassifier,
    MiniRocketClassifier,
    add_white_noise,
    classical_features,
    few_shot,
    fill_gaps,
    load_cwru,
)
from synth.gaps import evaluate_gap_filling, interpolate_gaps


def test_cwru_split_is_disjoint_in_time(cwru_clean) -> None:
    d = cwru_clean
    assert d.X_train.shape[1:] == (1, 1024) and d.X_test.shape[1:] == (1, 1024)
    assert sorted(np.unique(d.y_train)) == list(range(10)) and len(d.class_names) == 10
    # no test window appears in the training windows (second half vs first half of each recording)
    train_rows = {row.tobytes() for row in d.X_train[:, 0, :64]}
    assert not any(row.tobytes() in train_rows for row in d.X_test[:, 0, :64])
    assert np.bincount(d.y_test)[1:].min() >= 50


def test_noise_snr_and_few_shot(cwru_clean) -> None:
    X = cwru_clean.X_train[:50].astype(np.float64)
    noisy = add_white_noise(X, -4.0, np.random.default_rng(0))
    snr = 10 * np.log10(np.mean(X**2) / np.mean((noisy - X) ** 2))
    assert snr == pytest.approx(-4.0, abs=0.3)
    Xk, yk, idx = few_shot(cwru_clean.X_train, cwru_clean.y_train, 2, seed=0)
    assert np.bincount(yk)[1:].tolist() == [2] * 9 and np.sum(yk == 0) == np.sum(cwru_clean.y_train == 0)
    np.testing.assert_array_equal(Xk, cwru_clean.X_train[idx])
    with pytest.raises(ModelError):
        few_shot(cwru_clean.X_train, cwru_clean.y_train, 0)


def test_loader_rejects_bad_channels(cwru_dir: Path) -> None:
    with pytest.raises(ModelError, match="channels"):
        load_cwru(cwru_dir, channels=("BA",))


def test_classical_augmentation(toy_panel: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = toy_panel
    aug = ClassicalAugmenter(n_per_class=7, random_state=1)
    Xa, ya = aug.augment(X, y, classes=[1, 2])
    assert Xa.shape == (14, 2, 128) and ya.tolist() == [1] * 7 + [2] * 7
    np.testing.assert_array_equal(aug.augment(X, y, classes=[1, 2])[0], Xa)
    assert not np.allclose(Xa[0], X[y == 1][0])


def test_features_and_classifiers(toy_panel: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = toy_panel
    F = classical_features(X, 128.0, defects={"a": 9.0}, shaft_hz=4.0)
    assert F.shape[0] == 30 and np.isfinite(F).all()
    for clf in (FeatureClassifier(fs=128.0, kind="logreg"), MiniRocketClassifier(**MiniRocketClassifier.get_test_params()[0])):
        with pytest.raises(NotFittedError):
            clf.predict(X)
        assert (clf.fit(X, y).predict(X) == y).mean() > 0.9


def test_fill_gaps_keeps_observed_samples(toy_panel: tuple[np.ndarray, np.ndarray]) -> None:
    X, y = toy_panel
    vae = ConditionalVAE(n_steps=60, width=4, latent_dim=4, batch_size=16).fit(X, y)
    missing = np.zeros(X.shape, dtype=bool)
    missing[:, 0, 40:60] = True
    filled = fill_gaps(vae, np.where(missing, np.nan, X), missing, y, n_iter=5)
    np.testing.assert_array_equal(filled[~missing], X[~missing])
    assert np.isfinite(filled).all()
    lin = interpolate_gaps(np.where(missing, 0.0, X), missing)
    assert np.isfinite(lin).all()
    with pytest.raises(ModelError, match="mask"):
        fill_gaps(vae, X, missing[:, :1], y)
    scores = evaluate_gap_filling(vae, X, y, gap=16)
    assert scores["zeros"] > 0 and np.isfinite(scores["vae"]) and np.isfinite(scores["linear"])


def test_cli_train_sample_evaluate(cwru_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from genedge.synth_cli import synth_app

    runner = CliRunner()
    model = tmp_path / "vae.pkl"
    res = runner.invoke(
        synth_app,
        [
            "train",
            "--data-dir",
            str(cwru_dir),
            "--out",
            str(model),
            "--model",
            "vae",
            "--steps",
            "5",
            "--k",
            "2",
            "--no-progress",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    assert json.loads(res.output.strip().splitlines()[-1])["windows"] > 18
    out = tmp_path / "w.npy"
    res = runner.invoke(
        synth_app, ["sample", "--model-path", str(model), "--out", str(out), "--n", "300", "--label", "outer_007", "--json"]
    )
    assert res.exit_code == 0, res.output
    assert np.load(out).shape == (300, 1, 1024)
    res = runner.invoke(
        synth_app,
        [
            "evaluate",
            "--model-path",
            str(model),
            "--data-dir",
            str(cwru_dir),
            "--report-dir",
            str(tmp_path / "rep"),
            "--per-class",
            "8",
            "--json",
        ],
    )
    # five training batches make a poor generator: the gate rejects it (exit code 2) but writes the report
    assert res.exit_code in (0, 2), res.output
    assert json.loads((tmp_path / "rep" / "report.json").read_text())["n_synthetic"] == 72
    res = runner.invoke(synth_app, ["sample", "--model-path", str(model), "--out", str(out), "--label", "nope"])
    assert res.exit_code != 0


def test_cli_trains_the_physics_informed_vae(cwru_dir: Path, tmp_path: Path) -> None:
    from typer.testing import CliRunner

    from genedge.synth_cli import synth_app
    from synth import PhysicsVAE

    model = tmp_path / "phys.pkl"
    res = CliRunner().invoke(
        synth_app,
        [
            "train",
            "--data-dir",
            str(cwru_dir),
            "--out",
            str(model),
            "--model",
            "physics",
            "--steps",
            "3",
            "--k",
            "1",
            "--snr",
            "-4",
            "--no-progress",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    import pickle

    gen = pickle.loads(model.read_bytes())["generator"]
    assert isinstance(gen, PhysicsVAE) and gen.measurement_snr_db == -4.0 and gen.n_steps == 3
    assert gen.sample(4, 7, random_state=0).shape == (4, 1, 1024)
    res = CliRunner().invoke(synth_app, ["train", "--data-dir", str(cwru_dir), "--out", str(model), "--model", "nope"])
    assert res.exit_code != 0


def _band_log_power(panel: np.ndarray, n_bands: int) -> np.ndarray:
    P = np.abs(np.fft.rfft(panel - panel.mean(-1, keepdims=True))) ** 2
    edges = np.linspace(1, P.shape[-1], n_bands + 1).round().astype(int)
    return np.stack([np.log(P[..., a:b].mean(-1)) for a, b in itertools.pairwise(edges)], -1).mean(0)


def test_physics_vae_spectral_calibration(toy_panel: tuple[np.ndarray, np.ndarray]) -> None:
    """After (very short) training the equaliser brings each class's band power to that of its real windows."""
    from synth import PhysicsVAE

    X, y = toy_panel
    X = add_white_noise(X, 0.0, np.random.default_rng(0))  # the measurement noise the model is told about
    params = {**PhysicsVAE.get_test_params()[0], "measurement_snr_db": 0.0}
    errors = {}
    for bands in (0, 8):
        gen = PhysicsVAE(**{**params, "calibration_bands": bands}).fit(X, y)
        errors[bands] = np.mean(
            [
                np.abs(_band_log_power(gen.sample(64, c, random_state=3), 8) - _band_log_power(X[y == c], 8)).mean()
                for c in (0, 1, 2)
            ]
        )
    assert errors[8] < 0.5 * errors[0] and errors[8] < 0.5, errors
