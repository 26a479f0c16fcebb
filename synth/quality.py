"""Quality gate for synthetic windows: only data that passes joins training.

Four checks, each comparing synthetic windows with real windows of the same classes:

* **discriminative score** (Yoon et al., TimeGAN, NeurIPS 2019): a post-hoc random forest on
  classical features tries to tell real from synthetic (stratified cross-validation, classes
  balanced); score ``|accuracy - 0.5|``, 0 is indistinguishable, 0.5 trivially separable.
* **predictive score** (train on synthetic, test on real): a random forest trained on the
  synthetic windows classifies the real ones; macro-F1.
* **spectral fidelity**: for each fault class with a defect frequency, the peak of the mean
  envelope spectrum near that frequency, synthetic vs real; assessed where the real spectrum shows
  the line (real peak within ``spectral_tolerance`` of the bearing-geometry frequency and at least
  ``min_prominence`` x the spectral median); passes when the synthetic peak is within
  ``spectral_tolerance`` of the real one and at least half as prominent, the synthetic prominence
  measured like the real one (median over groups of as many synthetic windows as there are real
  ones: a line read off one or two windows rides on their noise).
* **MMD** (Gretton et al. 2012): unbiased squared maximum mean discrepancy of standardised
  classical features, Gaussian kernel with the median-distance bandwidth.
"""

# ruff: noqa: N803, N806

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
from numpy.typing import ArrayLike, NDArray
from sklearn.ensemble import RandomForestClassifier
from sklearn.metrics import f1_score
from sklearn.model_selection import StratifiedKFold, cross_val_predict

from core.errors import ModelError
from synth.base import BaseGenerator
from synth.features import classical_features, envelope_spectra, matched_line_prominence, peak_frequency

__all__ = ["QualityGate", "QualityReport", "mmd_rbf"]


@dataclass
class QualityReport:
    """Outcome of :meth:`QualityGate.evaluate`.

    Attributes:
        passed: whether the synthetic data may join training.
        discriminative_score: ``|acc - 0.5|`` of the real-vs-synthetic classifier.
        predictive_score: macro-F1 on real windows of a classifier trained on synthetic ones.
        mmd: squared MMD of standardised features.
        spectral: per class: expected, real and synthetic peak (Hz), relative error, assessed, passed.
        spectral_passed: all assessed classes passed (``True`` when none could be assessed).
        failures: the checks that failed, with the values.
        thresholds: the gate's thresholds.
        n_real: real windows compared.
        n_synthetic: synthetic windows compared.
    """

    passed: bool
    discriminative_score: float
    predictive_score: float
    mmd: float
    spectral: dict[str, dict[str, Any]]
    spectral_passed: bool
    failures: list[str]
    thresholds: dict[str, float]
    n_real: int
    n_synthetic: int
    plots: list[str] = field(default_factory=list)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready dict."""
        return asdict(self)

    def save(self, path: Path | str) -> Path:
        """Write the report as JSON."""
        p = Path(path)
        p.parent.mkdir(parents=True, exist_ok=True)
        p.write_text(json.dumps(self.to_dict(), indent=2, default=float))
        return p


def mmd_rbf(A: NDArray[np.float64], B: NDArray[np.float64], bandwidth: float | None = None) -> float:
    """Unbiased squared MMD between row sets ``A`` and ``B`` with a Gaussian kernel.

    ``bandwidth`` defaults to the median pairwise distance of the pooled rows.
    """
    Z = np.concatenate([A, B])
    d2 = np.maximum(np.sum(Z**2, 1)[:, None] + np.sum(Z**2, 1)[None, :] - 2 * Z @ Z.T, 0.0)
    if bandwidth is None:
        off = d2[np.triu_indices_from(d2, k=1)]
        bandwidth = float(np.sqrt(np.median(off))) if off.size else 1.0
    K = np.exp(-d2 / (2 * max(bandwidth, 1e-12) ** 2))
    n, m = A.shape[0], B.shape[0]
    if n < 2 or m < 2:
        raise ModelError(f"MMD needs at least 2 windows per set, got {n} real and {m} synthetic")
    kaa = (K[:n, :n].sum() - np.trace(K[:n, :n])) / (n * (n - 1))
    kbb = (K[n:, n:].sum() - np.trace(K[n:, n:])) / (m * (m - 1))
    kab = K[:n, n:].mean()
    return float(kaa + kbb - 2 * kab)


class QualityGate:
    """Decide whether synthetic windows are realistic enough to train on.

    Args:
        fs: sample rate in Hz.
        defect_frequencies: label -> envelope line (Hz) expected for that fault class.
        shaft_hz: shaft frequency (Hz) for the envelope-line features.
        max_discriminative: highest discriminative score that passes.
        min_predictive: lowest predictive (train-synthetic-test-real) macro-F1 that passes.
        max_mmd: highest squared MMD that passes.
        spectral_tolerance: relative tolerance on the defect-frequency peak (and for "line visible").
        min_prominence: real peak / spectral median needed to assess a class.
        spectral_search: the peak is searched within ``f0 * (1 +- spectral_search)``.
        cv_folds: folds of the discriminative classifier (fewer when a class is small).
        random_state: seed of the classifiers.
    """

    def __init__(self, *, fs: float, defect_frequencies: Mapping[int, float] | None = None, shaft_hz: float | None = None,
                 max_discriminative: float = 0.2, min_predictive: float = 0.5, max_mmd: float = 0.1,
                 spectral_tolerance: float = 0.03, min_prominence: float = 2.0, spectral_search: float = 0.15,
                 cv_folds: int = 5, random_state: int = 0) -> None:
        self.fs = fs
        self.defect_frequencies = defect_frequencies
        self.shaft_hz = shaft_hz
        self.max_discriminative = max_discriminative
        self.min_predictive = min_predictive
        self.max_mmd = max_mmd
        self.spectral_tolerance = spectral_tolerance
        self.min_prominence = min_prominence
        self.spectral_search = spectral_search
        self.cv_folds = cv_folds
        self.random_state = random_state

    # ------------------------------------------------------------------ public
    def evaluate_generator(self, generator: BaseGenerator, X_real: ArrayLike, y_real: ArrayLike, *,
                           n_per_class: int | None = None, random_state: int = 0,
                           plot_dir: Path | str | None = None) -> QualityReport:
        """Sample as many windows per class as there are real ones (or ``n_per_class``) and :meth:`evaluate`."""
        ya = np.asarray(y_real)
        labels = np.unique(ya)
        counts = {int(c): int(np.sum(ya == c)) if n_per_class is None else int(n_per_class) for c in labels}
        cond = np.concatenate([np.full(counts[int(c)], int(c)) for c in labels])
        X_syn = generator.sample(cond.size, cond, random_state=random_state)
        return self.evaluate(X_real, ya, X_syn, cond, plot_dir=plot_dir)

    def evaluate(self, X_real: ArrayLike, y_real: ArrayLike, X_syn: ArrayLike, y_syn: ArrayLike, *,
                 plot_dir: Path | str | None = None) -> QualityReport:
        """Compare synthetic windows ``(X_syn, y_syn)`` with real ``(X_real, y_real)``.

        Args:
            X_real: ``(n, channels, length)`` real windows.
            y_real: their labels.
            X_syn: synthetic windows of the same shape per window.
            y_syn: their labels (each must occur in ``y_real``).
            plot_dir: write ``windows.png`` and ``envelope_spectra.png`` there (needs matplotlib).
        """
        Xr, yr = np.asarray(X_real, dtype=np.float64), np.asarray(y_real).astype(np.int64)
        Xs, ys = np.asarray(X_syn, dtype=np.float64), np.asarray(y_syn).astype(np.int64)
        if Xr.ndim != 3 or Xs.ndim != 3 or Xr.shape[1:] != Xs.shape[1:]:
            raise ModelError(f"real and synthetic windows must be (n, channels, length) alike, got {Xr.shape} and {Xs.shape}")
        if yr.shape != (Xr.shape[0],) or ys.shape != (Xs.shape[0],):
            raise ModelError("y_real and y_syn must have one label per window")
        unknown = sorted(set(ys.tolist()) - set(yr.tolist()))
        if unknown:
            raise ModelError(f"synthetic labels {unknown} have no real windows to compare with")
        if not np.isfinite(Xs).all():
            return self._reject_nonfinite(Xr, Xs)
        Fr, Fs = self._features(Xr), self._features(Xs)
        mu, sd = Fr.mean(0), Fr.std(0) + 1e-8
        Fr, Fs = (Fr - mu) / sd, (Fs - mu) / sd
        disc = self._discriminative(Fr, yr, Fs, ys)
        pred = self._predictive(Fr, yr, Fs, ys)
        mmd = mmd_rbf(Fr, Fs)
        spectral = self._spectral(Xr, yr, Xs, ys)
        spectral_ok = all(v["passed"] for v in spectral.values() if v["assessed"])
        failures = []
        if disc > self.max_discriminative:
            failures.append(f"discriminative score {disc:.3f} > {self.max_discriminative}")
        if pred < self.min_predictive:
            failures.append(f"predictive score {pred:.3f} < {self.min_predictive}")
        if mmd > self.max_mmd:
            failures.append(f"MMD {mmd:.3f} > {self.max_mmd}")
        if not spectral_ok:
            bad = [k for k, v in spectral.items() if v["assessed"] and not v["passed"]]
            failures.append(f"defect-frequency peaks off by > {self.spectral_tolerance:.0%} or too weak for {bad}")
        report = QualityReport(passed=not failures, discriminative_score=disc, predictive_score=pred, mmd=mmd,
                               spectral=spectral, spectral_passed=spectral_ok, failures=failures,
                               thresholds=self._thresholds(), n_real=int(Xr.shape[0]), n_synthetic=int(Xs.shape[0]))
        if plot_dir is not None:
            report.plots = plot_comparison(Xr, yr, Xs, ys, self.fs, Path(plot_dir), self.defect_frequencies)
        return report

    # ------------------------------------------------------------------ checks
    def _thresholds(self) -> dict[str, float]:
        return {"max_discriminative": self.max_discriminative, "min_predictive": self.min_predictive,
                "max_mmd": self.max_mmd, "spectral_tolerance": self.spectral_tolerance}

    def _reject_nonfinite(self, Xr: NDArray[np.float64], Xs: NDArray[np.float64]) -> QualityReport:
        return QualityReport(passed=False, discriminative_score=0.5, predictive_score=0.0, mmd=float("inf"), spectral={},
                             spectral_passed=False, failures=["synthetic windows contain NaN or inf"],
                             thresholds=self._thresholds(), n_real=int(Xr.shape[0]), n_synthetic=int(Xs.shape[0]))

    def _features(self, X: NDArray[np.float64]) -> NDArray[np.float64]:
        defects = None if not self.defect_frequencies else {str(k): v for k, v in self.defect_frequencies.items()}
        return classical_features(X, self.fs, defects=defects, shaft_hz=self.shaft_hz)

    def _discriminative(self, Fr: NDArray[np.float64], yr: NDArray[np.int64], Fs: NDArray[np.float64],
                        ys: NDArray[np.int64]) -> float:

        # balance real and synthetic within each class, so the classifier cannot win on class mix
        rng = np.random.default_rng(self.random_state)
        rows_r, rows_s = [], []
        for c in np.unique(ys):
            ir, is_ = np.flatnonzero(yr == c), np.flatnonzero(ys == c)
            m = min(ir.size, is_.size)
            rows_r.append(rng.choice(ir, m, replace=False))
            rows_s.append(rng.choice(is_, m, replace=False))
        ir, is_ = np.concatenate(rows_r), np.concatenate(rows_s)
        F = np.concatenate([Fr[ir], Fs[is_]])
        target = np.r_[np.zeros(ir.size), np.ones(is_.size)]
        folds = int(min(self.cv_folds, ir.size))
        if folds < 2:
            raise ModelError("discriminative score needs at least 2 real windows matched by synthetic ones")
        clf = RandomForestClassifier(n_estimators=100, random_state=self.random_state, n_jobs=1)
        cv = StratifiedKFold(folds, shuffle=True, random_state=self.random_state)
        pred = cross_val_predict(clf, F, target, cv=cv)
        return float(abs(np.mean(pred == target) - 0.5))

    def _predictive(self, Fr: NDArray[np.float64], yr: NDArray[np.int64], Fs: NDArray[np.float64],
                    ys: NDArray[np.int64]) -> float:

        if np.unique(ys).size < 2:
            return float("nan")
        clf = RandomForestClassifier(n_estimators=100, class_weight="balanced", random_state=self.random_state, n_jobs=1)
        clf.fit(Fs, ys)
        keep = np.isin(yr, ys)
        return float(f1_score(yr[keep], clf.predict(Fr[keep]), average="macro"))

    def _spectral(self, Xr: NDArray[np.float64], yr: NDArray[np.int64], Xs: NDArray[np.float64],
                  ys: NDArray[np.int64]) -> dict[str, dict[str, Any]]:
        out: dict[str, dict[str, Any]] = {}
        if not self.defect_frequencies:
            return out
        tol = self.spectral_tolerance
        for label, f0 in self.defect_frequencies.items():
            if not (np.any(yr == label) and np.any(ys == label)):
                continue
            lo, hi = f0 * (1 - self.spectral_search), f0 * (1 + self.spectral_search)
            fr, ar = envelope_spectra(Xr[yr == label], self.fs, nfft=8192)
            _, as_ = envelope_spectra(Xs[ys == label], self.fs, nfft=8192)
            f_real, p_real = peak_frequency(fr, ar.mean(axis=(0, 1)), lo, hi)
            f_syn, p_syn_pooled = peak_frequency(fr, as_.mean(axis=(0, 1)), lo, hi)
            # measured like the real one: a line read off one or two windows rides on their noise
            p_syn = matched_line_prominence(fr, as_, int(ar.shape[0]), lo, hi)
            assessed = abs(f_real / f0 - 1) <= tol and p_real >= self.min_prominence
            err = abs(f_syn / f_real - 1)
            out[str(label)] = {"expected_hz": round(f0, 2), "real_hz": round(f_real, 2), "synthetic_hz": round(f_syn, 2),
                               "real_prominence": round(p_real, 2), "synthetic_prominence": round(p_syn, 2),
                               "synthetic_prominence_pooled": round(p_syn_pooled, 2),
                               "relative_error": round(err, 4), "assessed": bool(assessed),
                               "passed": bool(err <= tol and p_syn >= 0.5 * p_real)}
        return out


def plot_comparison(Xr: NDArray[np.floating], yr: NDArray[np.int64], Xs: NDArray[np.floating], ys: NDArray[np.int64],
                    fs: float, out_dir: Path, defect_frequencies: Mapping[int, float] | None = None,
                    class_names: Mapping[int, str] | None = None) -> list[str]:
    """Small PNGs: the start of one real and one synthetic window per class, and mean envelope spectra per class.

    Returns the written paths (empty when matplotlib is not installed).
    """
    try:  # matplotlib is optional, and its backend must be chosen before pyplot is imported
        import matplotlib  # noqa: PLC0415

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt  # noqa: PLC0415
    except ImportError:
        return []
    out_dir.mkdir(parents=True, exist_ok=True)
    labels = [int(c) for c in np.unique(ys)]
    n = len(labels)
    span = min(Xr.shape[-1], 256)  # the first 256 samples: impulses stay visible, files stay small
    t = np.arange(span) / fs * 1000
    fig, axes = plt.subplots(n, 1, figsize=(5, 0.8 * n + 0.5), sharex=True, squeeze=False)
    for ax, c in zip(axes[:, 0], labels, strict=True):
        ax.plot(t, Xr[yr == c][0, 0, :span], lw=0.5, label="real")
        ax.plot(t, Xs[ys == c][0, 0, :span], lw=0.5, alpha=0.8, label="synthetic")
        ax.set_ylabel((class_names or {}).get(c, str(c)), fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=6, loc="upper right")
    axes[-1, 0].set_xlabel("ms", fontsize=7)
    fig.tight_layout()
    p1 = out_dir / "windows.png"
    fig.savefig(p1, dpi=50)
    plt.close(fig)
    fig, axes = plt.subplots(n, 1, figsize=(5, 0.8 * n + 0.5), sharex=True, squeeze=False)
    for ax, c in zip(axes[:, 0], labels, strict=True):
        f, ar = envelope_spectra(Xr[yr == c], fs, nfft=4096)
        _, as_ = envelope_spectra(Xs[ys == c], fs, nfft=4096)
        sel = f <= 500
        ax.plot(f[sel], ar.mean(axis=(0, 1))[sel], lw=0.7, label="real")
        ax.plot(f[sel], as_.mean(axis=(0, 1))[sel], lw=0.7, alpha=0.8, label="synthetic")
        if defect_frequencies and c in defect_frequencies:
            ax.axvline(defect_frequencies[c], color="k", ls=":", lw=0.7)
        ax.set_ylabel((class_names or {}).get(c, str(c)), fontsize=7)
        ax.tick_params(labelsize=6)
    axes[0, 0].legend(fontsize=6, loc="upper right")
    axes[-1, 0].set_xlabel("envelope frequency (Hz)", fontsize=7)
    fig.tight_layout()
    p2 = out_dir / "envelope_spectra.png"
    fig.savefig(p2, dpi=50)
    plt.close(fig)
    return [str(p1), str(p2)]
