"""Missing-data synthesis: fill gaps in a channel with a trained conditional VAE.

Pseudo-Gibbs imputation (Rezende et al., "Stochastic backpropagation and approximate inference in
deep generative models", ICML 2014, section 5): start with the gap linearly interpolated, then
repeat *encode -> decode -> copy the decoded mean into the gap*, keeping the observed samples.
The decoded mean carries the periodic structure the VAE learned for the condition (fault class),
so a gap is filled with a plausible waveform rather than a straight line.
"""

# ruff: noqa: N803, N806

from __future__ import annotations

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from core.errors import ModelError
from synth.base import Condition
from synth.vae import ConditionalVAE

__all__ = ["evaluate_gap_filling", "fill_gaps", "interpolate_gaps"]


def interpolate_gaps(X: NDArray[np.float64], missing: NDArray[np.bool_]) -> NDArray[np.float64]:
    """Linear interpolation across missing samples, per window and channel (the baseline)."""
    out = X.copy()
    t = np.arange(X.shape[-1])
    for i, c in zip(*np.nonzero(missing.any(axis=-1)), strict=True):
        m = missing[i, c]
        if (~m).sum() == 0:
            out[i, c] = 0.0
        else:
            out[i, c, m] = np.interp(t[m], t[~m], X[i, c, ~m])
    return out


def fill_gaps(
    model: ConditionalVAE, X: ArrayLike, missing: ArrayLike, condition: Condition, *, n_iter: int = 20,
) -> NDArray[np.float32]:
    """Windows ``X`` with the samples flagged in ``missing`` replaced by the VAE's reconstruction.

    Args:
        model: a fitted :class:`~synth.vae.ConditionalVAE`.
        X: ``(n, channels, length)`` windows (values under ``missing`` are ignored; NaN allowed there).
        missing: boolean mask of the same shape, ``True`` where the sample is missing.
        condition: one label for all windows or one per window.
        n_iter: encode/decode rounds.

    Returns:
        ``X`` with the gaps filled; observed samples unchanged.
    """
    model.check_is_fitted()
    Xa = np.asarray(X, dtype=np.float64)
    M = np.asarray(missing, dtype=bool)
    if Xa.ndim != 3 or M.shape != Xa.shape:
        raise ModelError(f"X must be (n, channels, length) with a mask of the same shape, got {Xa.shape} and {M.shape}")
    if Xa.shape[1:] != (model.n_channels_, model.window_):
        raise ModelError(f"windows must be ({model.n_channels_}, {model.window_}), got {Xa.shape[1:]}")
    if not np.isfinite(Xa[~M]).all():
        raise ModelError("observed samples contain NaN or inf")
    labels = model._labels(Xa.shape[0], condition)
    ci = torch.as_tensor(np.searchsorted(model.classes_, labels))
    scale = model.scale_[None, :, None].astype(np.float64)
    cur = interpolate_gaps(np.where(M, 0.0, Xa), M) / scale
    Mt = torch.as_tensor(M)
    net = model.net_.eval()
    with torch.inference_mode():
        c = net.cond[ci]
        x = torch.as_tensor(cur, dtype=torch.float32)
        for _ in range(int(n_iter)):
            mu, _ = net.encode(x, c)
            mean, _ = net.decode(mu, c)
            x = torch.where(Mt, mean, x)
    return np.where(M, x.numpy() * scale, Xa).astype(np.float32)


def evaluate_gap_filling(
    model: ConditionalVAE, X: ArrayLike, y: ArrayLike, *, gap: int = 32, seed: int = 0, n_iter: int = 20,
) -> dict[str, float]:
    """Hide one random gap of ``gap`` samples per window, fill it, and compare with the truth.

    Returns:
        RMSE inside the gaps relative to the windows' RMS, for the VAE (``vae``), linear
        interpolation (``linear``) and zero filling (``zeros``, = 1 when the signal has zero mean).
    """
    Xa = np.asarray(X, dtype=np.float64)
    rng = np.random.default_rng(seed)
    missing = np.zeros(Xa.shape, dtype=bool)
    starts = rng.integers(1, Xa.shape[-1] - gap - 1, Xa.shape[0])
    for i, s in enumerate(starts):
        missing[i, 0, s : s + gap] = True
    rms = np.sqrt(np.mean(Xa[missing] ** 2))
    filled = fill_gaps(model, np.where(missing, np.nan, Xa), missing, np.asarray(y), n_iter=n_iter)
    lin = interpolate_gaps(np.where(missing, 0.0, Xa), missing)

    def err(Z: NDArray[np.floating]) -> float:
        return float(np.sqrt(np.mean((Z[missing] - Xa[missing]) ** 2)) / rms)

    return {"vae": err(filled), "linear": err(lin), "zeros": err(np.zeros_like(Xa)), "gap_samples": float(gap),
            "windows": float(Xa.shape[0])}
