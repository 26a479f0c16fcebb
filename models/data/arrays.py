"""In-memory runs and ``numpy3D`` windows: measured runs to an event, the estimators' data module, and the
base of the dataset modules."""

# ruff: noqa: N803  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch.utils.data import DataLoader, TensorDataset

from core.errors import ModelError

__all__ = ["ArrayDataModule", "EventRun", "WindowDataModule"]


@dataclass(frozen=True)
class EventRun:
    """A measured run of a machine up to an event: a failure (a FEMTO bearing) or a repair that confirmed
    the predicted fault (the plant's store).

    Attributes:
        name: where it comes from (e.g. ``"P-101 WO-000017"``, ``"1_1"``), recorded in model cards.
        t_hours: ``(n,)`` instants of the frames, hours from the first one, increasing.
        raw: ``(n, n_features)`` raw feature rows, in the data module's feature order.
        event_hours: time of the event on the same clock; the RUL at ``t`` is ``event_hours - t``
            (a lower bound when the fault was found before it failed the machine).
        censored: the event is an inspection that found the machine healthy: the RUL at ``t`` is
            only known to exceed ``event_hours - t``. Its capped RUL is exact (the cap) only at
            frames at least a cap before the inspection (:meth:`exact`).
    """

    name: str
    t_hours: np.ndarray
    raw: np.ndarray
    event_hours: float
    censored: bool = False

    def rul_hours(self, cap: float) -> np.ndarray:
        """RUL at each frame, capped (for a censored run, a lower bound wherever :meth:`exact` is false)."""
        return np.minimum(np.maximum(self.event_hours - self.t_hours, 0.0), cap)

    def exact(self, cap: float) -> np.ndarray:
        """Which frames' capped RUL is known: all of a run to a fault; for a censored run, those at
        least ``cap`` hours before the inspection (the RUL there is at least the cap, so capped it is the cap)."""
        if not self.censored:
            return np.ones(self.t_hours.size, dtype=bool)
        return self.event_hours - self.t_hours >= cap


class WindowDataModule(pl.LightningDataModule):
    """What the dataset modules (C-MAPSS, FEMTO, simulator) and :class:`ArrayDataModule` share: loaders, channel count.

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

    def _loader(self, X: np.ndarray, y: np.ndarray | None, *, shuffle: bool, batch_size: int | None = None) -> DataLoader[Any]:
        tensors = [torch.from_numpy(X)] if y is None else [torch.from_numpy(X), torch.from_numpy(y)]
        gen = torch.Generator().manual_seed(self.seed)
        size = self.batch_size if batch_size is None else batch_size
        return DataLoader(TensorDataset(*tensors), batch_size=size, shuffle=shuffle, generator=gen)

    def train_dataloader(self) -> DataLoader[Any]:
        """Shuffled training windows."""
        return self._loader(self.X_train, self.y_train, shuffle=True)

    def val_dataloader(self) -> DataLoader[Any]:
        """Validation windows, in order."""
        return self._loader(self.X_val, self.y_val, shuffle=False)


class ArrayDataModule(WindowDataModule):
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
        self.normalizer = None  # the windows come normalised

    @property
    def n_channels(self) -> int:
        """Channels per window."""
        return int(self.X_train.shape[1])

    def val_dataloader(self) -> DataLoader[Any]:
        """Validation batches in order (at least 1024 windows a batch: no gradients to hold)."""
        return self._loader(self.X_val, self.y_val, shuffle=False, batch_size=max(self.batch_size, 1024))
