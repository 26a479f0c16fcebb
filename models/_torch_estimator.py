"""Shared machinery of the deep estimators: a ``pl.Trainer`` fit wrapped as ``_fit``."""

# ruff: noqa: N803  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import copy
import logging
import warnings
from abc import abstractmethod
from typing import Any, ClassVar

import numpy as np
import pytorch_lightning as pl
import torch
from pytorch_lightning.callbacks import Callback, EarlyStopping

from core.errors import ModelError
from models.base import BaseRULEstimator
from models.data.arrays import ArrayDataModule
from models.nets import RULModule

__all__ = ["BestWeights", "TorchRULEstimator"]

_LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning.fabric")


class BestWeights(Callback):
    """Keep the weights of the best validation epoch in memory and restore them at the end.

    ``EarlyStopping`` stops training but leaves the last weights; this restores the best
    without writing checkpoints to disk.
    """

    def __init__(self, monitor: str = "val_rmse") -> None:
        self.monitor = monitor
        self.best_score = float("inf")
        self.best_epoch = -1
        self._state: dict[str, torch.Tensor] | None = None
        self.history: list[float] = []

    def on_validation_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Snapshot the weights when the monitored metric improves."""
        if trainer.sanity_checking:
            return
        score = trainer.callback_metrics.get(self.monitor)
        if score is not None:
            self.history.append(round(float(score), 4))
        if score is not None and float(score) < self.best_score:
            self.best_score = float(score)
            self.best_epoch = trainer.current_epoch
            self._state = copy.deepcopy(pl_module.state_dict())

    def on_fit_end(self, trainer: pl.Trainer, pl_module: pl.LightningModule) -> None:
        """Restore the best snapshot."""
        if self._state is not None:
            pl_module.load_state_dict(self._state)


class TorchRULEstimator(BaseRULEstimator):
    """Base of estimators whose model is a :class:`~models.nets.RULModule`.

    Subclasses define ``__init__`` (storing the parameters below plus their architecture's) and
    :meth:`_build_net`.

    Common parameters (in subclasses' ``__init__``):
        max_epochs, batch_size, learning_rate, patience (early stopping on ``val_rmse``),
        rul_cap, random_state, num_threads (torch CPU threads during fit/predict),
        progress_bar (show Lightning's progress bar), accelerator.

    Attributes:
        net_: the trained module in eval mode.
        best_epoch_: epoch with the lowest validation RMSE.
        n_epochs_: epochs run before early stopping.
        val_history_: validation RMSE after each epoch.
    """

    _tags: ClassVar[dict[str, Any]] = {"requires_torch": True, "python_dependencies": ["torch"]}

    max_epochs: int
    batch_size: int
    learning_rate: float
    patience: int
    rul_cap: float
    random_state: int | None
    num_threads: int
    progress_bar: bool
    accelerator: str

    @abstractmethod
    def _build_net(self, n_channels: int, window: int) -> RULModule:
        """Return a fresh, untrained module for windows of this shape."""

    def _fit(self, X: np.ndarray, y: np.ndarray, X_val: np.ndarray, y_val: np.ndarray) -> None:
        seed = 0 if self.random_state is None else int(self.random_state)
        torch.set_num_threads(max(1, int(self.num_threads)))
        for name in _LIGHTNING_LOGGERS:
            logging.getLogger(name).setLevel(logging.WARNING)
        pl.seed_everything(seed, workers=True, verbose=False)
        net = self._build_net(X.shape[1], X.shape[2])
        best = BestWeights("val_rmse")
        trainer = pl.Trainer(
            max_epochs=int(self.max_epochs),
            accelerator=self.accelerator,
            devices=1,
            logger=False,
            enable_checkpointing=False,
            enable_model_summary=False,
            enable_progress_bar=bool(self.progress_bar),
            num_sanity_val_steps=0,
            deterministic=True,
            callbacks=[EarlyStopping("val_rmse", patience=int(self.patience), mode="min"), best],
        )
        dm = ArrayDataModule(X, y, X_val, y_val, batch_size=int(self.batch_size), seed=seed)
        with warnings.catch_warnings():
            # "does not have many workers": in-memory tensors need none
            warnings.filterwarnings("ignore", message=".*does not have many workers.*")
            warnings.filterwarnings("ignore", message=".*smaller than the logging interval.*")
            warnings.filterwarnings("ignore", message=".*LeafSpec.*")
            try:
                trainer.fit(net, datamodule=dm)
            except (RuntimeError, ValueError) as err:
                raise ModelError(f"training {type(self).__name__} failed: {err}") from err
        # a fresh module holding the best weights: no trainer reference, so it pickles cleanly
        fresh = self._build_net(X.shape[1], X.shape[2])
        fresh.load_state_dict(net.state_dict())
        self.net_ = fresh.eval()
        self.best_epoch_ = int(best.best_epoch)
        self.n_epochs_ = int(trainer.current_epoch)
        self.val_history_ = list(best.history)

    def _predict(self, X: np.ndarray) -> np.ndarray:
        torch.set_num_threads(max(1, int(self.num_threads)))
        out = []
        with torch.inference_mode():
            for start in range(0, X.shape[0], 4096):
                batch = torch.from_numpy(X[start : start + 4096])
                out.append(self.net_(batch).numpy())
        return np.concatenate(out).astype(np.float64)

    @property
    def network(self) -> RULModule:
        """The trained module (for ONNX export)."""
        self.check_is_fitted()
        return self.net_
