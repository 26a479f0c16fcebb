"""The trajectory VAE on real C-MAPSS windows and the few-unit RUL experiment (reduced but real)."""

# ruff: noqa: N806

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from benchmarks._synth_rul_harness import RUL_CAP, _stage_centres, _windows, rul_features, stage_of
from synth import TrendVAE


@pytest.fixture(scope="module")
def cmapss_dir(datasets: Path) -> Path:
    path = datasets / "cmapss"
    if not (path / "train_FD001.txt").is_file():
        pytest.skip(f"C-MAPSS data not found at {path}; set GENEDGE_TEST_DATA_DIR")
    return path


@pytest.fixture(scope="module")
def fd001_windows(cmapss_dir: Path):
    from core.datasets.cmapss import load_cmapss
    from models.data.cmapss import fit_normalizer

    df = load_cmapss(cmapss_dir, "FD001", "train")
    tr = df[df["unit"].isin([1, 2, 3, 4, 5, 6])]
    X, y = _windows(tr, fit_normalizer(tr, 1), 64)
    return X, y, stage_of(y, 5)


def test_trend_vae_follows_the_degradation_stage(fd001_windows) -> None:
    """Trained briefly, the VAE's end-of-life windows differ from its healthy ones the way the real
    ones do (sensor by sensor), and the per-stage feature means move much closer to the real ones
    than the untrained model's. (Real-vs-synthetic separability needs the benchmark's 1500 batches.)"""
    X, _, stages = fd001_windows
    cond = {s: (c / RUL_CAP, (c / RUL_CAP) ** 2) for s, c in _stage_centres(5).items()}
    late, healthy = 0, int(stages.max())
    errors = {}
    for steps in (1, 300):
        gen = TrendVAE(condition_features=cond, n_steps=steps, random_state=0).fit(X, stages)
        lab = np.r_[np.full(200, late), np.full(200, healthy)]
        Xs = gen.sample(lab.size, lab, random_state=1)
        F_syn = rul_features(Xs)
        errors[steps] = sum(
            float(np.abs(F_syn[lab == s].mean(0) - rul_features(X[stages == s]).mean(0)).mean()) for s in (late, healthy)
        )
        if steps > 1:
            c = X.shape[1]
            real_late, real_healthy = rul_features(X[stages == late]), rul_features(X[stages == healthy])
            real_shift = real_late[:, c : 2 * c].mean(0) - real_healthy[:, c : 2 * c].mean(0)
            syn_shift = F_syn[lab == late, c : 2 * c].mean(0) - F_syn[lab == healthy, c : 2 * c].mean(0)
            assert np.corrcoef(real_shift, syn_shift)[0, 1] > 0.9
            assert np.all(np.sign(real_shift[np.abs(real_shift) > 0.5]) == np.sign(syn_shift[np.abs(real_shift) > 0.5]))
    assert errors[300] < 0.5 * errors[1], errors


@pytest.mark.slow
def test_rul_experiment_keeps_validation_units_apart(cmapss_dir: Path, tmp_path: Path) -> None:
    from benchmarks._synth_rul_harness import run_rul_experiment

    out = tmp_path / "rul.json"
    res = run_rul_experiment(cmapss_dir, seeds=[0], vae_steps=20, out=out, log=lambda _: None)
    run = res["runs"][0]
    assert not set(run["train_units"]) & set(res["meta"]["val_units"])
    assert len(run["train_units"]) == 10 and run["n_synthetic"] > 0
    for name in ("real", "real+vae"):
        assert 0 < run[name]["rmse"] < RUL_CAP
    assert out.is_file() and "rmse_change" in res["summary"]
