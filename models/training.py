"""The one way GenEdge trains a network: a quiet, deterministic ``pl.Trainer`` (RUL estimators and generators)."""

from __future__ import annotations

import logging
import warnings
from collections.abc import Sequence
from typing import Literal

import pytorch_lightning as pl
from pytorch_lightning.callbacks import Callback

from core.errors import ModelError

__all__ = ["fit_module", "make_trainer"]

_LIGHTNING_LOGGERS = ("pytorch_lightning", "lightning.pytorch", "lightning.fabric")

#: Lightning warnings that say nothing about in-memory training on small batches
_QUIET_WARNINGS = (
    ".*does not have many workers.*",  # in-memory tensors need no loader workers
    ".*smaller than the logging interval.*",
    ".*LeafSpec.*",
)


def make_trainer(
    *,
    max_epochs: int,
    accelerator: str = "cpu",
    callbacks: Sequence[Callback] = (),
    progress_bar: bool = False,
    deterministic: bool | Literal["warn"] | None = None,
    log_every_n_steps: int = 50,
) -> pl.Trainer:
    """A ``pl.Trainer`` on one device with no logger, checkpoints, model summary or sanity check.

    Args:
        max_epochs: most training epochs.
        accelerator: Lightning accelerator (``"cpu"``, ``"gpu"``, ``"auto"``).
        callbacks: Lightning callbacks (early stopping, best weights...).
        progress_bar: show Lightning's progress bar.
        deterministic: Lightning's ``deterministic``; ``None``: bit for bit on a CPU, only a warning
            elsewhere (some GPU kernels, e.g. the cuDNN LSTM backward, have no deterministic version).
        log_every_n_steps: how often the steps' metrics are logged (to the progress bar).

    Returns:
        The trainer; Lightning's own log messages are lowered to warnings.
    """
    for name in _LIGHTNING_LOGGERS:
        logging.getLogger(name).setLevel(logging.WARNING)
    if deterministic is None:
        deterministic = True if accelerator == "cpu" else "warn"
    return pl.Trainer(
        max_epochs=int(max_epochs),
        accelerator=accelerator,
        devices=1,
        logger=False,
        enable_checkpointing=False,
        enable_model_summary=False,
        enable_progress_bar=progress_bar,
        num_sanity_val_steps=0,
        deterministic=deterministic,
        callbacks=list(callbacks),
        log_every_n_steps=int(log_every_n_steps),
    )


def fit_module(
    net: pl.LightningModule,
    datamodule: pl.LightningDataModule,
    *,
    max_epochs: int,
    callbacks: Sequence[Callback] = (),
    accelerator: str = "cpu",
    progress_bar: bool = False,
    deterministic: bool | Literal["warn"] | None = None,
    log_every_n_steps: int = 50,
    what: str = "the network",
) -> pl.Trainer:
    """Fit ``net`` on ``datamodule`` with :func:`make_trainer` (same options); returns the trainer.

    Seed before building ``net`` (``pl.seed_everything``): with the default ``deterministic`` a fit
    on a CPU is then repeatable bit for bit.

    Raises:
        ModelError: training failed (``what`` names the model in the message).
    """
    trainer = make_trainer(
        max_epochs=max_epochs,
        accelerator=accelerator,
        callbacks=callbacks,
        progress_bar=progress_bar,
        deterministic=deterministic,
        log_every_n_steps=log_every_n_steps,
    )
    with warnings.catch_warnings():
        for message in _QUIET_WARNINGS:
            warnings.filterwarnings("ignore", message=message)
        try:
            trainer.fit(net, datamodule=datamodule)
        except (RuntimeError, ValueError) as err:
            raise ModelError(f"training {what} failed: {err}") from err
    return trainer
