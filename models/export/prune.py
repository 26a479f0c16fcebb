"""Magnitude pruning of trained RUL networks (before export)."""

from __future__ import annotations

import copy

from torch import nn
from torch.nn.utils import prune

__all__ = ["prune_magnitude", "sparsity"]


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
    params: list[tuple[nn.Module, str]] = []
    for module in pruned.modules():
        if isinstance(module, (nn.Linear, nn.Conv1d)):
            params.append((module, "weight"))
        elif isinstance(module, nn.LSTM):
            params.extend((module, name) for name, _ in module.named_parameters() if name.startswith("weight"))
    if not params or amount == 0.0:
        return pruned
    prune.global_unstructured(params, pruning_method=prune.L1Unstructured, amount=amount)
    for module, name in params:
        prune.remove(module, name)
    if any(isinstance(m, nn.LSTM) for m in pruned.modules()):
        for m in pruned.modules():
            if isinstance(m, nn.LSTM):
                m.flatten_parameters()
    return pruned


def sparsity(net: nn.Module) -> float:
    """Fraction of exactly-zero weights over all weight matrices."""
    total = zeros = 0
    for name, p in net.named_parameters():
        if "weight" in name and p.dim() > 1:
            total += p.numel()
            zeros += int((p == 0).sum())
    return zeros / max(total, 1)
