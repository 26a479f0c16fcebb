"""Mixed precision by measured sensitivity: the weights that matter most stay 16-bit, the rest 4-bit.

Each weight tensor's sensitivity is measured, not guessed: the RMS change (in cycles) of the
network's predictions on calibration windows when only that tensor is stored in the low
precision (blockwise int4, exactly as :func:`~models.export.compact.export_packed` stores it)
and every other stays fp32 (:func:`weight_sensitivity`).

Those one-at-a-time errors do not add up: quantisation errors of different tensors partly
cancel, and on the FD001 transformer keeping the twelve per cent most sensitive tensors by that
ranking in fp16 moved the predictions further from fp32 than all-int4 did (6.5 against 4.5
cycles at most). So :func:`plan_mixed` chooses by measurement in context: starting from every
tensor in the low precision, it repeatedly raises to fp16 the tensor whose raising brings the
predictions closest to fp32's, measured with all the others as they stand, while the raised
tensors fit in ``keep_share`` of the weights and a raise still helps.

The same tensor of every ensemble member gets the same precision (the members share one graph),
so a tensor is measured with it quantised in all members at once.
"""

# ruff: noqa: N803  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import copy
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from core.errors import ModelError
from models.export._blockwise import PRECISIONS, fake_quantize
from models.export.compact import export_packed

__all__ = ["MixedPlan", "export_mixed", "plan_mixed", "weight_sensitivity"]


def _members(net: nn.Module) -> list[nn.Module]:
    members = getattr(net, "members", None)
    return list(members) if isinstance(members, nn.ModuleList) else [net]


def _predict(net: nn.Module, x: torch.Tensor, batch: int = 512) -> torch.Tensor:
    with torch.inference_mode():
        return torch.cat([net(x[i : i + batch]) for i in range(0, x.shape[0], batch)])


def weight_sensitivity(
    net: nn.Module, X: np.ndarray, *, precision: str = "int4", block_size: int = 32, min_elements: int = 2
) -> dict[str, float]:
    """RMS prediction change (cycles) on ``X`` when only one weight tensor is stored in ``precision``.

    Args:
        net: trained network or ``MeanEnsemble`` (not modified).
        X: calibration windows ``(n, channels, window)``.
        precision: the low precision measured (one of :data:`~models.export._blockwise.PRECISIONS`).
        block_size: quantisation block size.
        min_elements: tensors with fewer elements are not measured (they stay fp32).

    Returns:
        State-dict key of one member -> sensitivity, for every float parameter measured.

    Raises:
        ModelError: on an unknown precision or an empty or misshapen ``X``.
    """
    if precision not in PRECISIONS:
        raise ModelError(f"precision must be one of {PRECISIONS}, got {precision!r}")
    x = torch.as_tensor(np.asarray(X, dtype=np.float32))
    if x.ndim != 3 or x.shape[0] == 0:
        raise ModelError(f"X must be a non-empty (n, channels, window) array, got shape {tuple(x.shape)}")
    probe = copy.deepcopy(net).eval()
    members = _members(probe)
    ref = _predict(probe, x)
    params = [dict(m.named_parameters()) for m in members]
    scores: dict[str, float] = {}
    for key, first in params[0].items():
        if not first.is_floating_point() or first.numel() < min_elements:
            continue
        saved = [p[key].data.clone() for p in params]
        with torch.no_grad():
            for p, value in zip(params, saved, strict=True):
                p[key].copy_(torch.from_numpy(fake_quantize(value.numpy(), precision, block_size)))
        scores[key] = float(torch.sqrt(torch.mean((_predict(probe, x) - ref) ** 2)))
        with torch.no_grad():
            for p, value in zip(params, saved, strict=True):
                p[key].copy_(value)
    return scores


@dataclass
class MixedPlan:
    """Which weights keep the high precision, with the measurements behind the choice.

    Attributes:
        precision: state-dict key -> precision, for every measured weight.
        sensitivity: state-dict key -> measured RMS prediction change (cycles) when only that
            tensor is in the low precision.
        kept_share: share of the measured weights' elements kept in the high precision.
        high: the high precision.
        low: the low precision.
    """

    precision: dict[str, str] = field(default_factory=dict)
    sensitivity: dict[str, float] = field(default_factory=dict)
    kept_share: float = 0.0
    high: str = "fp16"
    low: str = "int4"
    #: the RMS prediction change from fp32 (cycles) on the calibration windows, all-low first
    #: (key ``""``), then after each tensor raised to the high precision
    deviation_steps: list[tuple[str, float]] = field(default_factory=list)

    def kept(self) -> list[str]:
        """The keys kept in the high precision, in the order they were chosen."""
        return [k for k, _ in self.deviation_steps[1:] if self.precision.get(k) == self.high] or sorted(
            (k for k, p in self.precision.items() if p == self.high), key=lambda k: -self.sensitivity[k]
        )

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form."""
        return {
            "high": self.high,
            "low": self.low,
            "kept_share": self.kept_share,
            "kept": self.kept(),
            "deviation_steps": [[k, round(v, 5)] for k, v in self.deviation_steps],
            "sensitivity": {k: round(v, 5) for k, v in sorted(self.sensitivity.items(), key=lambda kv: -kv[1])},
        }


def plan_mixed(
    net: nn.Module,
    X: np.ndarray,
    *,
    keep_share: float = 0.125,
    high: str = "fp16",
    low: str = "int4",
    block_size: int = 32,
    min_elements: int = 2,
) -> MixedPlan:
    """Raise to ``high`` the weights that bring the predictions closest to fp32, within ``keep_share``.

    Greedy and measured (see the module docstring): each step tries every tensor still in
    ``low`` that fits the remaining share and keeps the one whose raise lowers the RMS
    prediction change the most; it stops when none fits or none helps. Each tensor's
    one-at-a-time sensitivity is measured and reported too.

    Args:
        net: trained network or ``MeanEnsemble`` (not modified).
        X: calibration windows (training windows, not the ones the variant is scored on).
        keep_share: largest share of the weights' elements kept in ``high``, in ``[0, 1]``.
        high: precision of the kept weights.
        low: precision of the others.
        block_size: quantisation block size.
        min_elements: tensors with fewer elements stay fp32 and are not counted.

    Returns:
        The plan.

    Raises:
        ModelError: on a share outside ``[0, 1]`` or unknown precisions.
    """
    if not 0.0 <= keep_share <= 1.0:
        raise ModelError(f"keep_share must be in [0, 1], got {keep_share}")
    if high not in PRECISIONS or low not in PRECISIONS:
        raise ModelError(f"high and low must be among {PRECISIONS}, got {high!r} and {low!r}")
    sens = weight_sensitivity(net, X, precision=low, block_size=block_size, min_elements=min_elements)
    sizes = {k: int(p.numel()) for k, p in _members(net)[0].named_parameters() if k in sens}
    total = sum(sizes.values())
    plan = MixedPlan(precision=dict.fromkeys(sens, low), sensitivity=sens, high=high, low=low)
    probe = copy.deepcopy(net).eval()
    x = torch.as_tensor(np.asarray(X, dtype=np.float32))
    ref = _predict(probe, x)
    params = [dict(m.named_parameters()) for m in _members(probe)]
    stored = {
        key: {
            prec: [torch.from_numpy(fake_quantize(p[key].detach().numpy(), prec, block_size)) for p in params]
            for prec in (low, high)
        }
        for key in sens
    }

    def set_precision(key: str, prec: str) -> None:
        with torch.no_grad():
            for p, value in zip(params, stored[key][prec], strict=True):
                p[key].copy_(value)

    def deviation() -> float:
        return float(torch.sqrt(torch.mean((_predict(probe, x) - ref) ** 2)))

    for key in sens:
        set_precision(key, low)
    plan.deviation_steps = [("", deviation())]
    kept = 0
    while True:
        best, best_dev = "", plan.deviation_steps[-1][1]
        for key in sens:
            if plan.precision[key] == high or kept + sizes[key] > keep_share * total:
                continue
            set_precision(key, high)
            dev = deviation()
            set_precision(key, low)
            if dev < best_dev:
                best, best_dev = key, dev
        if not best:
            break
        set_precision(best, high)
        plan.precision[best] = high
        kept += sizes[best]
        plan.deviation_steps.append((best, best_dev))
    plan.kept_share = kept / max(total, 1)
    return plan


def export_mixed(net: nn.Module, n_channels: int, window: int, dst: str | Path, plan: MixedPlan, *, block_size: int = 32) -> Path:
    """Export ``net`` with the precisions of ``plan`` (see :func:`~models.export.compact.export_packed`)."""
    return export_packed(net, n_channels, window, dst, precision=plan.precision, block_size=block_size)
