"""Magnitude pruning of trained RUL networks (before export), one-shot or with fine-tuning."""

# ruff: noqa: N803  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import copy
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import nn
from torch.nn.utils import prune

from core.errors import ModelError
from models.data.arrays import ArrayDataModule
from models.nets import RULModule
from models.torch_estimator import BestWeights, MeanEnsemble
from models.training import fit_module

__all__ = ["prune_finetune", "prune_magnitude", "sparsity"]


def _weights(net: nn.Module) -> list[tuple[nn.Module, str]]:
    """The prunable weights: every ``Linear``, ``Conv1d`` and ``LSTM`` weight matrix."""
    params: list[tuple[nn.Module, str]] = []
    for module in net.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            params.append((module, "weight"))
        elif isinstance(module, nn.LSTM):
            params.extend((module, name) for name, _ in module.named_parameters() if name.startswith("weight"))
    return params


def _finalise(net: nn.Module, params: list[tuple[nn.Module, str]]) -> None:
    """Make the pruning permanent (no masks left, so the module exports like the original)."""
    for module, name in params:
        prune.remove(module, name)  # type: ignore[no-untyped-call]  # torch leaves it unannotated
    for m in net.modules():
        if isinstance(m, nn.LSTM):
            m.flatten_parameters()


def prune_magnitude(net: nn.Module, amount: float = 0.5) -> nn.Module:
    """Return a copy of ``net`` with the smallest ``amount`` of weights zeroed (global L1).

    Applies to the weights of every ``Linear``, ``Conv1d`` and ``LSTM`` layer; the pruning is
    made permanent (no masks remain), so the copy exports to ONNX like the original. Dense ONNX
    files keep their size; the zeros pay off in compressed transfer size (see
    ``size_gzip_bytes`` in :func:`models.export.compare.compression_report`).

    Args:
        net: trained module (not modified).
        amount: fraction of the selected weights to zero, in ``[0, 1)``.

    Returns:
        The pruned copy in eval mode.
    """
    if not 0.0 <= amount < 1.0:
        raise ValueError(f"amount must be in [0, 1), got {amount}")
    pruned = copy.deepcopy(net).eval()
    params = _weights(pruned)
    if not params or amount == 0.0:
        return pruned
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    _finalise(pruned, params)
    return pruned


def prune_finetune(
    net: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    amount: float = 0.5,
    epochs: int = 5,
    learning_rate: float | None = None,
    batch_size: int = 128,
    seed: int = 0,
    num_threads: int = 1,
) -> nn.Module:
    """Return a copy of ``net`` pruned by magnitude and fine-tuned with the pruned weights held at zero.

    One-shot pruning of half the weights wrecks a small RUL network (the compression table's
    ``pruned50-int8-dynamic``); retraining the rest for a few epochs recovers it. Each member
    of a :class:`~models.torch_estimator.MeanEnsemble` (or the single network) is pruned on its
    own (global L1 over its weights), trained ``epochs`` epochs on ``X``/``y`` with its own loss,
    optimiser and regularisers (the masks stay applied), and the epoch with the lowest RMSE on
    ``X_val``/``y_val`` is kept; then the pruning is made permanent.

    Args:
        net: trained :class:`~models.nets.RULModule` or ``MeanEnsemble`` of them (not modified).
        X, y: training windows ``(n, channels, window)`` and targets.
        X_val, y_val: windows and targets that pick the epoch (and drive the learning-rate
            schedule): not the ones the pruned network is then scored on, or its score is optimistic
            (the export variant uses a tenth of the training windows).
        amount: fraction of each member's weights zeroed, in ``[0, 1)``.
        epochs: fine-tuning epochs per member.
        learning_rate: fine-tuning learning rate (``None``: the member's own; on an FD001
            transformer, 5 epochs at its own 1e-3 recovered more than 10 at 3e-4).
        batch_size: batch size.
        seed: seed of the shuffling (member ``i`` uses ``seed + i``).
        num_threads: torch CPU threads.

    Returns:
        The pruned, fine-tuned copy in eval mode.
    """
    if not 0.0 <= amount < 1.0 or epochs < 1:
        raise ValueError(f"need 0 <= amount < 1 and epochs >= 1, got {amount} and {epochs}")
    tuned = copy.deepcopy(net)
    members: list[Any] = list(tuned.members) if isinstance(tuned, MeanEnsemble) else [tuned]
    if not all(isinstance(m, RULModule) for m in members):
        raise ModelError(f"fine-tuning needs RULModule networks, got {type(net).__name__}")
    torch.set_num_threads(max(1, int(num_threads)))
    done = []
    for i, member in enumerate(members):
        params = _weights(member)
        if not params or amount == 0.0:
            done.append(member.eval())
            continue
        prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
        if learning_rate is not None:
            member.learning_rate = float(learning_rate)
        finetune_member(member, (X, y, X_val, y_val), epochs=epochs, batch_size=batch_size, seed=seed + i,
                        what=f"pruned member {i}")
        _finalise(member, params)
        # a fresh module with the tuned weights: no trainer reference, so it exports and pickles cleanly
        fresh = type(member)(**member.hparams)
        fresh.load_state_dict(member.state_dict())
        done.append(fresh.eval())
    if isinstance(tuned, MeanEnsemble):
        return MeanEnsemble(done).eval()
    return done[0] if done else tuned.eval()


def sparsity(net: nn.Module) -> float:
    """Fraction of exactly-zero weights over all weight matrices."""
    total = zeros = 0
    for name, p in net.named_parameters():
        if "weight" in name and p.dim() > 1:
            total += p.numel()
            zeros += int((p == 0).sum())
    return zeros / max(total, 1)


def finetune_member(member: Any, data: tuple[Any, Any, Any, Any], *, epochs: int, batch_size: int, seed: int,
                    what: str) -> None:
    """Fine-tune one pruned member in place with Lightning, keeping the epoch best on validation.

    Args:
        member: a :class:`~models.nets.RULModule` whose weights were just pruned.
        data: ``(X, y, X_val, y_val)``: training windows and targets, and those that pick the epoch.
        epochs: maximum epochs.
        batch_size: batch size.
        seed: seed of the shuffling.
        what: the member's name in training messages.
    """
    member._ema = member._raw = None  # a fresh average of the pruned weights
    member.train()  # dropout on, as in training (a trained network comes in eval mode)
    pl.seed_everything(seed, workers=True, verbose=False)
    fit_module(member, ArrayDataModule(*data, batch_size=batch_size, seed=seed), max_epochs=epochs,
               callbacks=[BestWeights("val_rmse")], what=what)
