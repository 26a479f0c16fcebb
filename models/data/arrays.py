"""Lightning data modules over in-memory ``numpy3D`` arrays: the estimators' one, and the base of the dataset modules."""

# ruff: noqa: N803  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from core.errors import ModelError

__all__ = ["ArrayDataModule", "WindowDataModule"]


class WindowDataModule(pl.LightningDataModule):
    """What the dataset modules (C-MAPSS, FEMTO, simulator) share: loaders and the channel count.

    A subclass sets ``batch_size``, ``seed`` and ``normalizer`` (``None`` until :meth:`setup`,
    then anything with ``n_features``) and, in :meth:`setup`, ``X_train``/``y_train`` and
    ``X_val``/``y_val`` in ``(n, n_channels, window)`` layout.
    """

    batch_size: int
    seed: int
    normalizer: Any
    X_train: np.ndarray
    y_train: np.ndarray
    X_val: np.ndarray
    y_val: np.ndarray

    @property
    def n_channels(self) -> int:
        """Channels per window; needs :meth:`setup`."""
        if self.normalizer is None:
            raise ModelError("call setup() before reading n_channels")
        return int(self.normalizer.n_features)

    def _loader(self, X: np.ndarray, y: np.ndarray | None, *, shuffle: bool) -> DataLoader[Any]:
        tensors = [torch.from_numpy(X)] if y is None else [torch.from_numpy(X), torch.from_numpy(y)]
        gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(TensorDataset(*tensors), batch_size=self.batch_size, shuffle=shuffle, generator=gen)

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled training windows."""
        return self._loader(self.X_train, self.y_train, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        """Validation windows, in order."""
        return self._loader(self.X_val, self.y_val, shuffle=False)


class ArrayDataModule(pl.LightningDataModule):
    """Serve already-split training and validation windows to a ``pl.Trainer``.

    Args:
        X_train: ``(n, n_channels, n_timepoints)`` float32 windows.
        y_train: ``(n,)`` float32 targets.
        X_val: validation windows.
        y_val: validation targets.
        batch_size: batch size.
        seed: seed of the shuffling generator (runs are reproducible).
    """

    def __init__(
        self,
        X_train: np.ndarray,
        y_train: np.ndarray,
        X_val: np.ndarray,
        y_val: np.ndarray,
        *,
        batch_size: int = 256,
        seed: int = 0,
    ) -> None:
        super().__init__()
        self.X_train, self.y_train = X_train, y_train
        self.X_val, self.y_val = X_val, y_val
        self.batch_size = batch_size
        self.seed = seed

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled training batches."""
        ds = TensorDataset(torch.from_numpy(self.X_train), torch.from_numpy(self.y_train))
        gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(ds, batch_size=self.batch_size, shuffle=True, generator=gen)

    def val_dataloader(self) -> DataLoader[Any]:
        """Validation batches in order."""
        ds = TensorDataset(torch.from_numpy(self.X_val), torch.from_numpy(self.y_val))
        return DataLoader(ds, batch_size=max(self.batch_size, 1024), shuffle=False)
