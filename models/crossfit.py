"""Cross-fit ensembles: K networks, each trained with one by-unit fold held out, averaged.

A split ensemble (every member trained on the same 80 % of the units, 20 % held out for early
stopping and calibration) never learns from the held-out fifth. A K-fold *cross-fit* does: network
``k`` trains on every fold but ``k`` and early-stops on fold ``k``, so every unit is trained on by
``K - 1`` networks and held out by one. The shipped model is the mean of the K networks.

Calibration is CV+ style (Barber et al. 2021, "Predictive inference with the jackknife+"): each
validation cut is predicted by the one network that never saw its unit, and the conformal scores
are those out-of-fold residuals. They are the residuals of *single* networks, which are larger
than the averaged model's, so the intervals lean wide (conservative), never narrow.

The out-of-fold RMSE is likewise a single-network figure over every unit; the averaged model has
no held-out units left to score it on.
"""

# ruff: noqa: N803  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from core.errors import ModelError
from models.base import BaseRULEstimator
from models.calibration import SplitConformal, check_coverage

__all__ = ["CrossFitEnsemble"]


@dataclass
class CrossFitEnsemble:
    """The fold estimators of a cross-fit, averaged, with out-of-fold conformal calibration.

    Args:
        estimators: one fitted estimator per fold (fold ``k`` held out of ``estimators[k]``).
        conformal_: calibrated on the out-of-fold residuals (see the module docstring).
    """

    estimators: list[BaseRULEstimator]
    conformal_: SplitConformal

    def __post_init__(self) -> None:
        if len(self.estimators) < 2:
            raise ModelError(f"a cross-fit needs at least 2 fold estimators, got {len(self.estimators)}")

    def predict(self, X: Any) -> np.ndarray:
        """Mean of the fold estimators' RUL predictions, shape ``(n_instances,)``."""
        return np.asarray(np.mean([est.predict(X) for est in self.estimators], axis=0), dtype=np.float64)

    def predict_interval(self, X: Any, coverage: float = 0.9) -> pd.DataFrame:
        """Conformal interval around :meth:`predict` (columns ``lower``, ``upper``)."""
        coverage = check_coverage(coverage)  # before the (costly) prediction
        y_pred = self.predict(X)
        lower, upper = self.conformal_.interval(y_pred, coverage)
        return pd.DataFrame({"lower": lower, "upper": upper})

    @property
    def network(self) -> Any:
        """All fold networks (and their seed members) as one averaged torch module, for export.

        Averaging the members flat weighs every fold equally: each fold holds the same number.
        """
        from models._torch_estimator import MeanEnsemble

        members: list[Any] = []
        for est in self.estimators:
            net = getattr(est, "network", None)
            if net is None:
                raise ModelError(f"{type(est).__name__} has no network to export")
            members.extend(net.members if isinstance(net, MeanEnsemble) else [net])
        return MeanEnsemble(members).eval()

    @property
    def members_loaded_(self) -> list[list[int]]:
        """Per fold: the seeds reused from a checkpoint directory instead of trained."""
        return [list(getattr(est, "members_loaded_", [])) for est in self.estimators]
