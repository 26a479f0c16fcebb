"""Shared fit/sample machinery of the Lightning-trained generators."""

# ruff: noqa: N803

from __future__ import annotations

from abc import abstractmethod

import numpy as np
import pytorch_lightning as pl
import torch
from numpy.typing import NDArray

from core.errors import ModelError
from models.training import fit_module
from synth._nets import DOWN, BalancedWindowDataModule, generate
from synth.base import BaseGenerator

__all__ = ["TorchGenerator"]


class TorchGenerator(BaseGenerator):
    """A generator whose model is a LightningModule with a ``generate(ci, torch.Generator)`` method.

    Common hyper-parameters (stored by subclasses' ``__init__``): ``n_steps`` (training batches),
    ``batch_size``, ``random_roll`` (random circular shifts of training windows), ``random_state``,
    ``num_threads`` (torch CPU threads), ``progress_bar``, ``accelerator``.

    Attributes:
        net_: the trained module (eval mode, no trainer attached, pickles cleanly).
        cond_: condition matrix, one row per entry of ``classes_``.
    """

    n_steps: int
    batch_size: int
    random_roll: bool
    random_state: int | None
    num_threads: int
    progress_bar: bool
    accelerator: str

    @abstractmethod
    def _build_net(self, n_channels: int, length: int, cond: NDArray[np.float32]) -> pl.LightningModule:
        """A fresh, untrained module."""

    def _fit(self, X: NDArray[np.float32], y: NDArray[np.int64], classes: NDArray[np.int64]) -> None:
        if X.shape[2] % DOWN:
            raise ModelError(f"window length must be a multiple of {DOWN}, got {X.shape[2]}")
        seed = 0 if self.random_state is None else int(self.random_state)
        pl.seed_everything(seed, workers=True, verbose=False)
        cond = self._condition_matrix(classes)
        ci = np.searchsorted(classes, y).astype(np.int64)
        net = self._build_net(X.shape[1], X.shape[2], cond)
        dm = BalancedWindowDataModule(X, ci, batch_size=int(self.batch_size), n_batches=int(self.n_steps), seed=seed,
                                      random_roll=bool(self.random_roll))
        torch.set_num_threads(max(1, int(self.num_threads)))
        # one epoch of n_steps class-balanced batches; deterministic even on a GPU (as the generators always were)
        fit_module(net, dm, max_epochs=1, accelerator=self.accelerator, progress_bar=bool(self.progress_bar),
                   deterministic=True, log_every_n_steps=10, what=type(net).__name__)
        fresh = self._build_net(X.shape[1], X.shape[2], cond)
        fresh.load_state_dict(net.cpu().state_dict())
        self.net_ = fresh.eval()
        self.cond_ = cond

    def _sample(self, labels: NDArray[np.int64], seed: int) -> NDArray[np.float32]:
        torch.set_num_threads(max(1, int(self.num_threads)))
        ci = np.searchsorted(self.classes_, labels).astype(np.int64)
        return generate(self.net_, ci, seed)
