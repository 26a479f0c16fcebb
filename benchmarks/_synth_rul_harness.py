"""C-MAPSS FD001 with few run-to-failure units: do synthetic late-life windows help a RUL regressor?

For each seed:

1. a fixed 20 % of the FD001 training units is held out for validation (split seed 0, the same for
   every seed); from the remaining units, 10 % of all training units (10 units) are drawn at random;
2. the per-condition normaliser is fitted on those 10 units only; windows of ``window`` cycles end
   at every cycle, target = RUL capped at 125;
3. a conditional VAE learns the windows of those 10 units, conditioned on the degradation stage
   (RUL bin of the last cycle, condition vector = bin centre / 125 and its square):
   :class:`~synth.trend_vae.TrendVAE` (trend-basis decoder, the default) or the convolutional
   :class:`~synth.vae.ConditionalVAE`; a discriminative score (random forest, real vs synthetic
   late-life windows of the training units, on the regressor's features) is reported per seed;
4. the regressor (random forest on per-sensor window statistics: mean, last-5 mean, slope, std) is
   trained on the real windows alone, and on the real windows plus synthetic late-life windows
   (stages with RUL < ``late_rul``, labelled with the bin centre);
5. RMSE (and the PHM08 score) on the validation units, cut at random points like the test set
   (5 cuts per unit, RUL at the cut <= 150, one prediction at the last cycle of each cut).

Nothing from the validation units reaches the generator, the normaliser or the regressor.
"""

# ruff: noqa: N803, N806

from __future__ import annotations

import json
import time
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from numpy.typing import NDArray

from core.datasets.cmapss import SENSOR_COLUMNS, SETTING_COLUMNS, load_cmapss
from core.errors import ModelError
from synth.trend_vae import TrendVAE
from synth.vae import ConditionalVAE

__all__ = ["rul_features", "run_rul_experiment", "stage_of"]

RUL_CAP = 125


def stage_of(rul: NDArray[np.floating], width: int) -> NDArray[np.int64]:
    """Degradation stage (RUL bin index) of capped RUL values; the cap itself is the last stage."""
    stage: NDArray[np.int64] = np.minimum(np.asarray(rul) // width, RUL_CAP // width).astype(np.int64)
    return stage


def _stage_centres(width: int) -> dict[int, float]:
    n = RUL_CAP // width + 1
    return {s: float(min(s * width + (width - 1) / 2.0, RUL_CAP)) for s in range(n)}


def rul_features(X: NDArray[np.floating], recent: int = 30) -> NDArray[np.float64]:
    """Per-sensor statistics of the last ``recent`` cycles: mean, mean of the last 5, least-squares slope, std."""
    W = np.asarray(X, dtype=np.float64)[..., -recent:]
    t = np.arange(W.shape[-1], dtype=np.float64)
    t -= t.mean()
    slope = (W * t).sum(-1) / (t**2).sum()
    feats = [W.mean(-1), W[..., -5:].mean(-1), slope * W.shape[-1], W.std(-1)]
    return np.concatenate(feats, axis=1)


def _windows(df: pd.DataFrame, normalizer: Any, window: int) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    from core.inference.preprocess import sliding_windows

    xs, ys = [], []
    for _, g in df.sort_values(["unit", "cycle"]).groupby("unit", sort=True):
        feats = normalizer.transform(g[SETTING_COLUMNS].to_numpy(np.float64), g[SENSOR_COLUMNS].to_numpy(np.float64))
        n = feats.shape[0]
        ends = np.arange(n)
        xs.append(sliding_windows(feats, window, ends))
        ys.append(np.minimum(n - 1 - ends, RUL_CAP))
    return np.concatenate(xs), np.concatenate(ys).astype(np.float32)


def _val_cuts(
    df: pd.DataFrame,
    normalizer: Any,
    window: int,
    rng: np.random.Generator,
    n_cuts: int = 5,
    max_rul: int = 150,
    min_len: int = 20,
) -> tuple[NDArray[np.float32], NDArray[np.float32]]:
    from core.inference.preprocess import sliding_windows

    xs, ys = [], []
    for _, g in df.sort_values(["unit", "cycle"]).groupby("unit", sort=True):
        feats = normalizer.transform(g[SETTING_COLUMNS].to_numpy(np.float64), g[SENSOR_COLUMNS].to_numpy(np.float64))
        n = feats.shape[0]
        ruls = rng.integers(1, max(min(max_rul, n - min_len), 1) + 1, size=n_cuts)
        xs.append(sliding_windows(feats, window, n - 1 - ruls))
        ys.append(np.minimum(ruls, RUL_CAP))
    return np.concatenate(xs), np.concatenate(ys).astype(np.float32)


def _phm08(y: NDArray[np.floating], p: NDArray[np.floating]) -> float:
    d = np.asarray(p, dtype=np.float64) - np.asarray(y, dtype=np.float64)
    return float(np.sum(np.where(d < 0, np.exp(-d / 13.0) - 1, np.exp(d / 10.0) - 1)))


def _regressor(seed: int) -> Any:
    from sklearn.ensemble import RandomForestRegressor

    return RandomForestRegressor(n_estimators=200, min_samples_leaf=3, max_features=0.5, random_state=seed, n_jobs=1)


def run_rul_experiment(
    data_dir: Path | str,
    *,
    seeds: Sequence[int] = (0, 1, 2, 3, 4),
    train_fraction: float = 0.1,
    window: int = 64,
    stage_width: int = 5,
    late_rul: int = 60,
    synth_factor: float = 1.0,
    vae_steps: int = 1500,
    generator: str = "trend_vae",
    out: Path | str | None = None,
    log: Callable[[str], None] = lambda m: print(m, flush=True),
) -> dict[str, Any]:
    """Run the few-unit RUL experiment on FD001; write JSON to ``out`` after every seed.

    Args:
        data_dir: folder with ``train_FD001.txt`` (``cmapss/`` or a folder containing it).
        seeds: seeds of the unit draw, the generator and the regressor.
        train_fraction: fraction of all FD001 training units used for training.
        window: cycles per window (a multiple of 64, the generator's down-sampling).
        stage_width: RUL cycles per degradation stage (the generator's condition).
        late_rul: synthetic windows are drawn for stages with RUL below this.
        synth_factor: synthetic windows per real window of the same late stage.
        vae_steps: training batches of the generator.
        generator: ``"trend_vae"`` (:class:`~synth.trend_vae.TrendVAE`) or ``"conv_vae"``
            (:class:`~synth.vae.ConditionalVAE`).
    """
    from models.data.cmapss import fit_normalizer

    root = Path(data_dir)
    if (root / "cmapss").is_dir():
        root = root / "cmapss"
    df = load_cmapss(root, "FD001", "train")
    units = np.unique(df["unit"].to_numpy())
    split = np.random.default_rng(0).permutation(units)
    n_val = round(0.2 * units.size)
    val_units, pool = np.sort(split[:n_val]), np.sort(split[n_val:])
    n_train = max(2, round(train_fraction * units.size))
    if n_train > pool.size:
        raise ModelError(f"train_fraction {train_fraction} asks for {n_train} units, only {pool.size} available")
    centres = _stage_centres(stage_width)
    cond = {s: (c / RUL_CAP, (c / RUL_CAP) ** 2) for s, c in centres.items()}
    meta = {
        "subset": "FD001",
        "n_units": int(units.size),
        "val_units": val_units.tolist(),
        "train_units_per_seed": n_train,
        "window": window,
        "stage_width": stage_width,
        "late_rul": late_rul,
        "synth_factor": synth_factor,
        "vae_steps": vae_steps,
        "regressor": "random forest (200 trees) on per-sensor statistics of the last 30 cycles",
        "generator": f"{generator}, condition = stage centre / 125 and its square",
        "rul_cap": RUL_CAP,
        "val_protocol": "5 random cuts per validation unit, RUL at cut in [1, 150], capped at 125",
    }
    runs: list[dict[str, Any]] = []
    t0 = time.time()
    for seed in seeds:
        rng = np.random.default_rng(seed)
        train_units = np.sort(rng.choice(pool, size=n_train, replace=False))
        tr = df[df["unit"].isin(train_units)]
        norm = fit_normalizer(tr, 1, seed=seed)
        X, y = _windows(tr, norm, window)
        X_val, y_val = _val_cuts(df[df["unit"].isin(val_units)], norm, window, np.random.default_rng(1000 + seed))
        stages = stage_of(y, stage_width)
        t = time.time()
        if generator == "trend_vae":
            vae: Any = TrendVAE(condition_features=cond, n_steps=vae_steps, random_state=seed)
        elif generator == "conv_vae":
            vae = ConditionalVAE(
                condition_features=cond, n_steps=vae_steps, random_roll=False, latent_dim=16, width=16, random_state=seed
            )
        else:
            raise ModelError(f"generator must be 'trend_vae' or 'conv_vae', got {generator!r}")
        vae.fit(X, stages)
        fit_s = time.time() - t
        late = [s for s in np.unique(stages) if centres[int(s)] < late_rul]
        counts = {int(s): round(synth_factor * float(np.sum(stages == s))) for s in late}
        y_stage = np.concatenate([np.full(counts[s], s) for s in counts])
        X_syn = vae.sample(y_stage.size, y_stage, random_state=seed + 17)
        y_syn = np.asarray([centres[int(s)] for s in y_stage], dtype=np.float32)
        F, F_val, F_syn = rul_features(X), rul_features(X_val), rul_features(X_syn)
        real_late = np.isin(stages, late)
        res: dict[str, Any] = {
            "seed": seed,
            "train_units": train_units.tolist(),
            "n_real": int(X.shape[0]),
            "n_synthetic": int(X_syn.shape[0]),
            "fit_s": round(fit_s, 1),
            "discriminative": round(discriminative_score(F[real_late], F_syn, seed=seed), 4),
        }
        for name, (Ft, yt) in {"real": (F, y), "real+vae": (np.concatenate([F, F_syn]), np.concatenate([y, y_syn]))}.items():
            pred = np.clip(_regressor(seed).fit(Ft, yt).predict(F_val), 0, RUL_CAP)
            res[name] = {"rmse": round(float(np.sqrt(np.mean((pred - y_val) ** 2))), 3), "phm08": round(_phm08(y_val, pred), 1)}
        runs.append(res)
        log(
            f"[{time.time() - t0:6.0f}s] rul seed={seed} real={res['real']} real+vae={res['real+vae']} "
            f"(vae fit {fit_s:.0f}s, {res['n_synthetic']} synthetic)"
        )
        result = {
            "meta": {**meta, "seeds": list(seeds), "elapsed_s": round(time.time() - t0)},
            "summary": summarise_rul(runs),
            "runs": runs,
        }
        if out is not None:
            Path(out).parent.mkdir(parents=True, exist_ok=True)
            Path(out).write_text(json.dumps(result, indent=1))
    return {
        "meta": {**meta, "seeds": list(seeds), "elapsed_s": round(time.time() - t0)},
        "summary": summarise_rul(runs),
        "runs": runs,
    }


def discriminative_score(F_real: NDArray[np.floating], F_syn: NDArray[np.floating], *, seed: int = 0) -> float:
    """``|accuracy - 0.5|`` of a random forest telling real from synthetic feature rows (5-fold CV, balanced)."""
    from sklearn.ensemble import RandomForestClassifier
    from sklearn.model_selection import StratifiedKFold, cross_val_predict

    rng = np.random.default_rng(seed)
    m = min(len(F_real), len(F_syn))
    F = np.concatenate([F_real[rng.choice(len(F_real), m, replace=False)], F_syn[rng.choice(len(F_syn), m, replace=False)]])
    target = np.r_[np.zeros(m), np.ones(m)]
    clf = RandomForestClassifier(n_estimators=100, random_state=seed, n_jobs=1)
    pred = cross_val_predict(clf, F, target, cv=StratifiedKFold(5, shuffle=True, random_state=seed))
    return float(abs(np.mean(pred == target) - 0.5))


def summarise_rul(runs: list[dict[str, Any]]) -> dict[str, Any]:
    """RMSE / PHM08 mean and std per training set, and the paired RMSE change from adding synthetic windows."""
    out: dict[str, Any] = {}
    for name in ("real", "real+vae"):
        for metric in ("rmse", "phm08"):
            v = np.array([r[name][metric] for r in runs], dtype=np.float64)
            out.setdefault(name, {})[metric] = {
                "mean": round(float(v.mean()), 3),
                "std": round(float(v.std(ddof=1)) if v.size > 1 else 0.0, 3),
            }
    disc = np.array([r["discriminative"] for r in runs])
    out["discriminative"] = {"mean": round(float(disc.mean()), 4), "max": round(float(disc.max()), 4)}
    d = np.array([r["real+vae"]["rmse"] - r["real"]["rmse"] for r in runs])
    out["rmse_change"] = {
        "mean": round(float(d.mean()), 3),
        "std": round(float(d.std(ddof=1)) if d.size > 1 else 0.0, 3),
        "n": int(d.size),
    }
    return out
