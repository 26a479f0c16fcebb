"""Scoring an ONNX RUL model on C-MAPSS test files: numpy + onnxruntime only (no torch)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np

from core.errors import ModelError
from core.inference.calibration import empirical_coverage
from core.inference.preprocess import N_RAW_COLUMNS
from models.metrics import phm08_score, rmse

__all__ = ["evaluate_predictor", "load_test_units", "load_truth", "score_test"]


def _load(path: Path) -> np.ndarray:
    if not path.is_file():
        raise ModelError(f"file not found: expected {path}")
    try:
        return np.loadtxt(path, dtype=np.float64, ndmin=2)
    except ValueError as err:
        raise ModelError(f"{path} is not a whitespace-separated numeric table: {err}") from err


def load_test_units(data_dir: str | Path, subset: str) -> list[np.ndarray]:
    """Raw rows of each unit of ``test_{subset}.txt``, sorted by unit then cycle."""
    arr = _load(Path(data_dir) / f"test_{subset}.txt")
    if arr.shape[1] != N_RAW_COLUMNS:
        raise ModelError(f"test_{subset}.txt must have {N_RAW_COLUMNS} columns, got {arr.shape[1]}")
    arr = arr[np.lexsort((arr[:, 1], arr[:, 0]))]
    units, starts = np.unique(arr[:, 0], return_index=True)
    return np.split(arr, starts[1:]) if units.size else []


def load_truth(data_dir: str | Path, subset: str) -> np.ndarray:
    """``RUL_{subset}.txt``: true RUL at the last test cycle of each unit (uncapped)."""
    return _load(Path(data_dir) / f"RUL_{subset}.txt").reshape(-1)


def evaluate_predictor(predictor: Any, data_dir: str | Path, subset: str, *, coverage: float = 0.9) -> dict[str, Any]:
    """Score an :class:`~core.inference.runtime.OnnxRULPredictor` on ``test_`` + ``RUL_`` files.

    Args:
        predictor: object with ``rul_cap`` and ``predict_units(rows, coverage)``.
        data_dir: directory with ``test_{subset}.txt`` and ``RUL_{subset}.txt`` side by side.
        subset: ``"FD001"`` .. ``"FD004"``.
        coverage: nominal coverage of the conformal interval.

    Returns:
        ``subset``, ``rmse`` and ``score`` (PHM08; truth capped at the card's RUL cap),
        ``rmse_uncapped``, ``coverage`` (empirical, of the interval against the capped truth)
        and ``n_units``.
    """
    rows = load_test_units(data_dir, subset)
    truth = load_truth(data_dir, subset)
    if len(rows) != truth.size:
        raise ModelError(f"RUL_{subset}.txt has {truth.size} lines, expected one per test unit ({len(rows)})")
    pred, lower, upper = predictor.predict_units(rows, coverage)
    return score_test(subset, truth, predictor.rul_cap, pred, lower, upper)


def score_test(
    subset: str, truth: np.ndarray, rul_cap: float, pred: np.ndarray, lower: np.ndarray, upper: np.ndarray
) -> dict[str, Any]:
    """The metrics of :func:`evaluate_predictor` from predictions already made (one per test unit)."""
    capped = np.minimum(truth, rul_cap)
    return {
        "subset": subset,
        "rmse": round(rmse(capped, pred), 4),
        "score": round(phm08_score(capped, pred), 4),
        "rmse_uncapped": round(rmse(truth, pred), 4),
        "coverage": round(empirical_coverage(capped, lower, upper), 4),
        "n_units": int(truth.size),
    }
