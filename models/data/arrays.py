"""A Lightning data module over in-memory ``numpy3D`` arrays (used by the estimators)."""

# ruff: noqa: N803  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

__all__ = ["ArrayDataModule"]


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

    def train_dataloader(self) -> DataLoader:
        """Shuffled training batches."""
        ds = TensorDataset(torch.from_numpy(self.X_train), torch.from_numpy(self.y_train))
        gen = torch.Generator().manual_seed(self.seed)
        return DataLoader(ds, batch_size=self.batch_size, shuffle=True, generator=gen)

    def val_dataloader(self) -> DataLoader:
        """Validation batches in order."""
        ds = TensorDataset(torch.from_numpy(self.X_val), torch.from_numpy(self.y_val))
        return DataLoader(ds, batch_size=max(self.batch_size, 1024), shuffle=False)
