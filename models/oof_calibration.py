"""Interval calibration of a split ensemble on out-of-fold errors over its training units.

A shipped C-MAPSS ensemble is calibrated on its validation units only (20 on FD001/FD003, about 50
on FD002/FD004), so a 90 % quantile per bin of the prediction rests on a handful of tail errors. A
nested cross-fit inside the shipped split (one network per fold, the validation units held out of
everything; ``benchmarks/rul_crossfit.py``) gives an out-of-fold error on every *training* unit too,
but of a single network trained on fewer units, whose errors are larger than the ensemble's.

:func:`oof_conformal` puts the two together: the out-of-fold scores are multiplied by the ratio of
the ensemble's to the single networks' mean absolute error, measured on the validation cuts, where
both predict units that neither trained on (a mean is a far steadier estimate than a tail quantile),
and pooled with the ensemble's own validation scores into one Mondrian :class:`SplitConformal`. The
result serialises to the card's ``calibration`` section like any other, so the edge runtime reads it
unchanged. numpy only.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from core.errors import ModelError
from core.inference.calibration import SplitConformal

__all__ = ["ensemble_error_ratio", "oof_card_calibration", "oof_conformal"]


def _vector(name: str, values: Any) -> np.ndarray:
    out = np.asarray(values, dtype=np.float64).reshape(-1)
    if out.size == 0 or not np.isfinite(out).all():
        raise ModelError(f"{name} must be a non-empty array of finite numbers, got {out.size} values")
    return out


def ensemble_error_ratio(y_true: Any, ensemble_pred: Any, single_preds: Any) -> float:
    """Mean absolute error of the ensemble over that of the single networks, on the same cuts.

    Args:
        y_true: truths of cuts that neither the ensemble nor the single networks trained on, ``(n,)``.
        ensemble_pred: the ensemble's predictions of them, ``(n,)``.
        single_preds: each single network's predictions of them, ``(k, n)`` (or ``(n,)`` for one).

    Returns:
        ``mean |y - ensemble| / mean |y - single|`` (the single networks' errors averaged over all ``k``).

    Raises:
        ModelError: on shapes that do not match or single networks without error.
    """
    y = _vector("y_true", y_true)
    ens = _vector("ensemble_pred", ensemble_pred)
    singles = np.atleast_2d(np.asarray(single_preds, dtype=np.float64))
    if ens.shape != y.shape or singles.shape[1:] != y.shape:
        raise ModelError(f"expected ensemble_pred {y.shape} and single_preds (k, {y.size}), got {ens.shape} and {singles.shape}")
    single_mae = float(np.mean(np.abs(singles - y)))
    if single_mae <= 0.0:
        raise ModelError("the single networks' predictions have no error: the ratio is undefined")
    return float(np.mean(np.abs(ens - y))) / single_mae


def oof_conformal(
    oof_y: Any,
    oof_pred: Any,
    val_y: Any,
    val_pred: Any,
    val_single_preds: Any,
    *,
    bins: tuple[float, ...],
    min_bin_size: int = 20,
) -> tuple[SplitConformal, float]:
    """A Mondrian split-conformal calibration on scaled out-of-fold scores plus the validation scores.

    Args:
        oof_y: truths of the out-of-fold cuts of the training units, ``(m,)``.
        oof_pred: each cut's prediction by the single network that did not train on its unit, ``(m,)``.
        val_y: truths of the validation cuts, ``(n,)``.
        val_pred: the ensemble's predictions of the validation cuts, ``(n,)``.
        val_single_preds: the same single networks' predictions of the validation cuts, ``(k, n)``.
        bins: Mondrian bin edges on the prediction (e.g. ``models.pipeline.CMAPSS_INTERVAL_BINS``).
        min_bin_size: fewest scores a bin needs for its own quantile.

    Returns:
        The calibrated :class:`SplitConformal` and the ratio the out-of-fold scores were scaled by
        (:func:`ensemble_error_ratio` on the validation cuts). Each out-of-fold cut is binned by its
        single network's prediction, each validation cut by the ensemble's.

    Raises:
        ModelError: on empty or mismatched inputs.
    """
    oy, op = _vector("oof_y", oof_y), _vector("oof_pred", oof_pred)
    if oy.shape != op.shape:
        raise ModelError(f"oof_y and oof_pred must have equal length, got {oy.size} and {op.size}")
    vy, vp = _vector("val_y", val_y), _vector("val_pred", val_pred)
    ratio = ensemble_error_ratio(vy, vp, val_single_preds)
    # |(p + r (y - p)) - p| = r |y - p|: the scaled score, binned by the single network's prediction
    scaled_y = op + ratio * (oy - op)
    conformal = SplitConformal(bins=bins, min_bin_size=min_bin_size).fit(np.concatenate([scaled_y, vy]), np.concatenate([op, vp]))
    return conformal, ratio


def oof_card_calibration(
    oof_y: Any,
    oof_pred: Any,
    val_y: Any,
    val_pred: Any,
    val_single_preds: Any,
    *,
    bins: tuple[float, ...],
    source: str,
    n_oof_units: int,
    n_val_units: int,
    decimals: int = 3,
) -> dict[str, Any]:
    """The model card's ``calibration`` section for :func:`oof_conformal` (read by the edge runtime as is).

    Args:
        oof_y, oof_pred, val_y, val_pred, val_single_preds, bins: as for :func:`oof_conformal`.
        source: what the scores are, for the card's reader.
        n_oof_units: training units the out-of-fold cuts come from.
        n_val_units: validation units the ensemble's own scores come from.
        decimals: the scores are stored rounded to this many decimals (cycles): a pool of thousands
            of scores stays a small card.

    Returns:
        :meth:`SplitConformal.to_dict` with ``source``, ``oof_scale`` (the ratio) and the cut and unit counts.
    """
    conformal, ratio = oof_conformal(oof_y, oof_pred, val_y, val_pred, val_single_preds, bins=bins)
    section = conformal.to_dict()
    section["scores"] = [round(v, decimals) for v in section["scores"]]
    if "bin_scores" in section:
        section["bin_scores"] = [[round(v, decimals) for v in scores] for scores in section["bin_scores"]]
    rounded = SplitConformal.from_dict(section)  # the summary quantiles of the scores as stored
    section["q90"] = rounded.quantile(0.9)
    if "bin_scores" in section:
        section["bin_q90"] = rounded.bin_quantiles(0.9).tolist()
    return {
        **section,
        "source": source,
        "oof_scale": ratio,
        "n_oof_cuts": int(np.asarray(oof_y).size),
        "n_oof_units": int(n_oof_units),
        "n_val_cuts": int(np.asarray(val_y).size),
        "n_val_units": int(n_val_units),
    }
