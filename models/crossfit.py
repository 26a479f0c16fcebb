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

# ruff: noqa: N803, N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

from collections.abc import Sequence
from typing import Any, Self

import numpy as np

from core.errors import ModelError
from core.inference.calibration import SplitConformal
from models.base import BaseRULEstimator, check_X_y
from models.lstm import LSTMRUL
from models.torch_estimator import MeanEnsemble
from models.transformer import TransformerRUL

__all__ = ["CrossFitEnsemble"]


class CrossFitEnsemble(BaseRULEstimator):
    """K clones of an estimator, clone ``k`` trained with fold ``k`` held out, averaged; CV+ calibrated.

    Two ways to a fitted ensemble: :meth:`fit` splits one panel into folds (by ``groups``, e.g. the
    unit of each window, so no unit is in a network's training and validation sets at once), and
    :meth:`from_folds` takes fold estimators already fitted elsewhere (:func:`models.pipeline.fit_fold`
    builds each fold's data module with its own truncated validation cuts).

    Args:
        estimator: the estimator cloned for each fold (``None``: a default
            :class:`~models.transformer.TransformerRUL`); fold ``k`` gets ``random_state + k``.
        n_folds: number of folds (and networks), at least 2.
        random_state: seed of the assignment of groups (or instances) to folds.

    Attributes:
        estimators_: one fitted estimator per fold (fold ``k`` held out of ``estimators_[k]``).
        conformal_: calibrated on the out-of-fold residuals (see the module docstring).
        validation_rmse_: out-of-fold RMSE (single networks, see the module docstring).
    """

    def __init__(
        self,
        estimator: BaseRULEstimator | None = None,
        *,
        n_folds: int = 5,
        random_state: int | None = 0,
    ) -> None:
        self.estimator = estimator
        self.n_folds = n_folds
        self.random_state = random_state

    @classmethod
    def from_folds(cls, estimators: Sequence[BaseRULEstimator], conformal: SplitConformal) -> CrossFitEnsemble:
        """The fitted ensemble of fold estimators fitted elsewhere, calibrated on their out-of-fold residuals.

        Args:
            estimators: one fitted estimator per fold (fold ``k`` held out of ``estimators[k]``),
                all on windows of one shape.
            conformal: calibrated on the out-of-fold residuals.

        Raises:
            ModelError: fewer than 2 estimators, or one is not fitted.
        """
        if len(estimators) < 2:
            raise ModelError(f"a cross-fit needs at least 2 fold estimators, got {len(estimators)}")
        for est in estimators:
            est.check_is_fitted()
        first = estimators[0]
        ensemble = cls(first.clone(), n_folds=len(estimators), random_state=getattr(first, "random_state", None))
        ensemble._set_fitted(list(estimators), conformal)
        ensemble.n_channels_, ensemble.n_timepoints_ = first.n_channels_, first.n_timepoints_
        return ensemble

    def fit(
        self,
        X: Any,
        y: Any,
        *,
        X_val: Any | None = None,
        y_val: Any | None = None,
        validation_fraction: float = 0.2,
        groups: Any | None = None,
    ) -> Self:
        """Fit one clone of ``estimator`` per fold, each early-stopped and scored on the fold it never sees.

        Args:
            X: windows, shape ``(n_instances, n_channels, n_timepoints)``.
            y: remaining useful life at the last cycle of each window, shape ``(n_instances,)``.
            X_val: not used: every fold is held out in turn (must be ``None``).
            y_val: not used (must be ``None``).
            validation_fraction: not used (each fold is ``1 / n_folds`` of the data).
            groups: ``(n_instances,)`` group of each window (its unit); a group's windows stay in
                one fold. ``None``: each window is its own group.

        Returns:
            ``self``.

        Raises:
            ModelError: on invalid inputs, fewer groups than folds, or ``X_val`` given.
        """
        if X_val is not None or y_val is not None:
            raise ModelError("a cross-fit holds out each fold in turn; got X_val/y_val, pass groups instead")
        X_arr, y_arr = check_X_y(X, y)
        fold = self._fold_of(X_arr.shape[0], groups)
        self.reset()
        self.n_channels_ = int(X_arr.shape[1])
        self.n_timepoints_ = int(X_arr.shape[2])
        self._fit_folds(X_arr, y_arr, fold)
        return self

    def _fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray) -> None:
        # the base's hook learns from one validation set; a cross-fit has one per fold (fit overrides the base's)
        raise NotImplementedError("CrossFitEnsemble trains through fit(X, y, groups=...), which calls _fit_folds")

    def _fit_folds(self, X: np.ndarray, y: np.ndarray, fold: np.ndarray) -> None:
        template = self.estimator if self.estimator is not None else TransformerRUL()
        base = getattr(template, "random_state", None)
        estimators, oof = [], np.empty(y.shape[0], dtype=np.float64)
        for k in range(int(self.n_folds)):
            val = fold == k
            est = template.clone()
            if base is not None:
                est.set_params(random_state=int(base) + k)
            est.fit(X[~val], y[~val], X_val=X[val], y_val=y[val])
            oof[val] = est.predict(X[val])
            estimators.append(est)
        self._set_fitted(estimators, SplitConformal().fit(y, oof))
        self.validation_rmse_ = float(np.sqrt(np.mean((oof - y) ** 2)))

    def _fold_of(self, n: int, groups: Any | None) -> np.ndarray:
        """Fold index of each instance: groups dealt to folds in a seeded random order."""
        n_folds = int(self.n_folds)
        if n_folds < 2:
            raise ModelError(f"n_folds must be >= 2, got {self.n_folds!r}")
        keys = np.arange(n) if groups is None else np.asarray(groups).reshape(-1)
        if keys.shape[0] != n:
            raise ModelError(f"groups must have one entry per instance ({n}), got {keys.shape[0]}")
        names, group_of = np.unique(keys, return_inverse=True)
        if names.size < n_folds:
            raise ModelError(f"need at least n_folds={n_folds} groups to cross-fit, got {names.size}")
        order = np.random.default_rng(self.random_state).permutation(names.size)
        fold_of_group = np.empty(names.size, dtype=np.int64)
        fold_of_group[order] = np.arange(names.size) % n_folds
        return fold_of_group[group_of]

    def _set_fitted(self, estimators: list[BaseRULEstimator], conformal: SplitConformal) -> None:
        self.estimators_ = estimators
        self.conformal_ = conformal
        self.is_fitted_ = True

    def _predict(self, X: np.ndarray) -> np.ndarray:
        """Mean of the fold estimators' RUL predictions, shape ``(n_instances,)``."""
        return np.asarray(np.mean([est.predict(X) for est in self.estimators_], axis=0), dtype=np.float64)

    @property
    def network(self) -> Any:
        """All fold networks (and their seed members) as one averaged torch module, for export.

        Averaging the members flat weighs every fold equally: each fold holds the same number.
        """
        self.check_is_fitted()
        members: list[Any] = []
        for est in self.estimators_:
            net = getattr(est, "network", None)
            if net is None:
                raise ModelError(f"{type(est).__name__} has no network to export")
            members.extend(net.members if isinstance(net, MeanEnsemble) else [net])
        return MeanEnsemble(members).eval()

    @property
    def members_loaded_(self) -> list[list[int]]:
        """Per fold: the seeds reused from a checkpoint directory instead of trained."""
        self.check_is_fitted()
        return [list(getattr(est, "members_loaded_", [])) for est in self.estimators_]

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        """Two folds of a tiny LSTM trained for one epoch."""
        tiny = LSTMRUL(hidden_size=8, num_layers=1, max_epochs=1, batch_size=32, num_threads=1)
        return [{"estimator": tiny, "n_folds": 2}]

