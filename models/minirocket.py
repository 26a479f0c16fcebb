"""Classical baseline: sktime MiniRocket features + ridge regression."""

# ruff: noqa: N803  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import importlib.util
from typing import Any, ClassVar

import numpy as np

from core.errors import ModelError
from models.base import BaseRULEstimator

__all__ = ["MiniRocketRUL", "numba_available"]


def numba_available() -> bool:
    """Whether numba (needed by sktime's MiniRocket) is importable."""
    return importlib.util.find_spec("numba") is not None


class MiniRocketRUL(BaseRULEstimator):
    """MiniRocket (Dempster et al. 2021) multivariate transform, standardised, then RidgeCV.

    Needs ``numba`` (a soft dependency of sktime); :meth:`fit` raises :class:`ModelError` if it
    is missing.

    Args:
        num_kernels: MiniRocket kernels (rounded by sktime to a multiple of 84).
        max_dilations_per_kernel: sktime MiniRocket option.
        alphas: ridge penalties tried by leave-one-out CV.
        rul_cap: predictions are clipped to ``[0, rul_cap]``.
        random_state: seed of the kernel draws.
        n_jobs: threads of the transform.
    """

    _tags: ClassVar[dict[str, Any]] = {
        "requires_torch": False,
        "python_dependencies": ["sktime", "numba"],
    }

    def __init__(
        self,
        *,
        num_kernels: int = 10_000,
        max_dilations_per_kernel: int = 32,
        alphas: tuple[float, ...] = (0.1, 1.0, 10.0, 100.0, 1000.0, 10000.0),
        rul_cap: float = 125.0,
        random_state: int | None = 42,
        n_jobs: int = 1,
    ) -> None:
        self.num_kernels = num_kernels
        self.max_dilations_per_kernel = max_dilations_per_kernel
        self.alphas = alphas
        self.rul_cap = rul_cap
        self.random_state = random_state
        self.n_jobs = n_jobs

    def _fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray) -> None:
        if not numba_available():
            raise ModelError(
                "MiniRocketRUL needs the 'numba' package (sktime's MiniRocket is numba-compiled); "
                "install it with `pip install numba`"
            )
        # imported here, after the check: sktime's MiniRocket needs numba, an optional dependency
        from sklearn.linear_model import RidgeCV  # noqa: PLC0415
        from sklearn.preprocessing import StandardScaler  # noqa: PLC0415
        from sktime.transformations.panel.rocket import MiniRocketMultivariate  # noqa: PLC0415

        self.transform_ = MiniRocketMultivariate(
            num_kernels=self.num_kernels,
            max_dilations_per_kernel=self.max_dilations_per_kernel,
            random_state=self.random_state,
            n_jobs=self.n_jobs,
        )
        feats = np.asarray(self.transform_.fit_transform(X.astype(np.float64)), dtype=np.float64)
        self.scaler_ = StandardScaler().fit(feats)
        self.ridge_ = RidgeCV(alphas=list(self.alphas)).fit(self.scaler_.transform(feats), y)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        feats = np.asarray(self.transform_.transform(X.astype(np.float64)), dtype=np.float64)
        pred = self.ridge_.predict(self.scaler_.transform(feats))
        return np.asarray(np.clip(pred, 0.0, self.rul_cap), dtype=np.float64)

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        """Few kernels, fast to fit."""
        return [{"num_kernels": 84, "max_dilations_per_kernel": 4}]
