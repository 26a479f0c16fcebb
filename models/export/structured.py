"""Structured pruning of the RUL transformer: attention heads and feed-forward channels removed.

Magnitude pruning (:mod:`models.export.prune`) zeroes single weights: the matrices keep their
shape, so the ONNX file and its compute stay the same. Here whole heads and feed-forward
channels go: each encoder layer's ``qkv``, ``out`` and feed-forward ``Linear`` layers are
rebuilt with fewer rows or columns, so the exported graph holds smaller matrices and does less
arithmetic.

Importance is measured, not assumed: a head's or channel's importance is the RMS change (in
cycles) of the network's predictions on calibration windows when only that head or channel is
switched off (its slice of the output projection zeroed). Each layer keeps its most important
``keep_heads`` heads and ``keep_ffn`` channels, and the ``drop_layers`` least important layers
(measured the same way, the layer passing its input through) go whole: at a fleet batch the
LayerNorms, residual adds and activations of the ``d_model``-wide stream take as long as the
matrix products once the heads and channels are cut. :func:`prune_structured_finetune` then
trains the smaller network a few epochs (Lightning) to recover.
"""

# ruff: noqa: N803  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import copy
import math
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, cast

import numpy as np
import torch
from torch import Tensor, nn

from core.errors import ModelError
from models.export.prune import finetune_member
from models.nets import TransformerRULNet
from models.torch_estimator import MeanEnsemble

__all__ = [
    "PrunedSelfAttention",
    "StructuredPlan",
    "parameter_count",
    "plan_structured",
    "prune_structured",
    "prune_structured_finetune",
]


class PrunedSelfAttention(nn.Module):
    """Self-attention with ``n_heads`` heads of ``d_head`` each, ``n_heads * d_head`` below ``d_model``.

    The computation of :class:`models.nets._SelfAttention` with the heads that were kept: the
    input and output stay ``d_model`` wide, the projections in between shrink.
    """

    def __init__(self, d_model: int, n_heads: int, d_head: int, dropout: float) -> None:
        super().__init__()
        if n_heads < 1 or d_head < 1:
            raise ValueError(f"need at least one head of at least one dimension, got {n_heads} x {d_head}")
        self.n_heads = n_heads
        self.d_head = d_head
        self.qkv = nn.Linear(d_model, 3 * n_heads * d_head)
        self.out = nn.Linear(n_heads * d_head, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor) -> Tensor:
        """``(batch, tokens, d_model)`` -> same shape."""
        b, t, _ = h.shape
        qkv = self.qkv(h).reshape(b, t, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.d_head), dim=-1)
        y = (self.drop(att) @ v).transpose(1, 2).reshape(b, t, self.n_heads * self.d_head)
        out: Tensor = self.out(y)
        return out


@dataclass
class StructuredPlan:
    """What one network keeps: per encoder layer (``"time_layers.0"``...) the heads and channels.

    Attributes:
        heads: layer name -> indices of the kept heads (ascending).
        ffn: layer name -> indices of the kept feed-forward channels (ascending).
        head_importance: layer name -> measured importance of every original head.
        ffn_importance: layer name -> measured importance of every original channel.
        dropped: layers removed whole.
        layer_importance: layer name -> measured importance of the whole layer.
    """

    heads: dict[str, list[int]] = field(default_factory=dict)
    ffn: dict[str, list[int]] = field(default_factory=dict)
    head_importance: dict[str, list[float]] = field(default_factory=dict)
    ffn_importance: dict[str, list[float]] = field(default_factory=dict)
    #: layers removed whole (the residual stream passes them unchanged)
    dropped: list[str] = field(default_factory=list)
    layer_importance: dict[str, float] = field(default_factory=dict)

    def to_dict(self) -> dict[str, Any]:
        """JSON-ready form (kept heads, channel counts, dropped layers, measured importances)."""
        return {
            "heads": self.heads,
            "ffn_kept": {k: len(v) for k, v in self.ffn.items()},
            "dropped_layers": self.dropped,
            "head_importance": self.head_importance,
            "layer_importance": self.layer_importance,
        }


def _layers(net: nn.Module) -> dict[str, Any]:
    """The encoder layers of a :class:`~models.nets.TransformerRULNet`, by module name."""
    if not isinstance(net, TransformerRULNet):
        raise ModelError(f"structured pruning takes a TransformerRULNet, got {type(net).__name__}")
    return {name: m for name, m in net.named_modules() if hasattr(m, "attn") and hasattr(m, "ff")}


def _attn_shape(layer: Any) -> tuple[int, int]:
    attn = layer.attn
    return int(attn.n_heads), int(attn.d_head)


def parameter_count(net: nn.Module) -> int:
    """Number of parameters (elements)."""
    return sum(p.numel() for p in net.parameters())


def _predict(net: nn.Module, X: Tensor, batch: int = 512) -> Tensor:
    with torch.inference_mode():
        return torch.cat([net(X[i : i + batch]) for i in range(0, X.shape[0], batch)])


def _rms(a: Tensor, b: Tensor) -> float:
    return float(torch.sqrt(torch.mean((a - b) ** 2)))


def _ablation(net: nn.Module, X: Tensor, ref: Tensor, weight: Tensor, slices: list[slice]) -> list[float]:
    """RMS prediction change when each column slice of ``weight`` is zeroed in turn."""
    scores = []
    for cols in slices:
        saved = weight.data[:, cols].clone()
        weight.data[:, cols] = 0.0
        scores.append(_rms(_predict(net, X), ref))
        weight.data[:, cols] = saved
    return scores


def _layer_ablation(net: nn.Module, X: Tensor, ref: Tensor, names: list[str]) -> dict[str, float]:
    """RMS prediction change when each encoder layer in turn passes its input through unchanged."""
    scores = {}
    for name in names:
        parent, _, index = name.rpartition(".")
        layers = cast(nn.ModuleList, net.get_submodule(parent))
        saved = layers[int(index)]
        layers[int(index)] = nn.Identity()
        scores[name] = round(_rms(_predict(net, X), ref), 6)
        layers[int(index)] = saved
    return scores


def plan_structured(net: nn.Module, X: np.ndarray, *, keep_heads: int, keep_ffn: int, drop_layers: int = 0) -> StructuredPlan:
    """Measure head and channel importance of one network on ``X`` and choose what each layer keeps.

    Args:
        net: a trained :class:`~models.nets.TransformerRULNet` (not modified).
        X: calibration windows ``(n, channels, window)`` (training windows, not the ones the
            pruned network is scored on).
        keep_heads: heads kept per layer (>= 1, at most the layer's heads).
        keep_ffn: feed-forward channels kept per layer (>= 1).
        drop_layers: encoder layers removed whole, the least important first (fewer than the
            network has).

    Returns:
        The plan (kept indices and every measured importance).

    Raises:
        ModelError: if ``net`` is not a transformer or the counts do not fit it.
    """
    layers = _layers(net)
    if not layers:
        raise ModelError("the network has no encoder layers to prune")
    probe = copy.deepcopy(net).eval()
    x = torch.as_tensor(np.asarray(X, dtype=np.float32))
    if x.ndim != 3 or x.shape[0] == 0:
        raise ModelError(f"X must be a non-empty (n, channels, window) array, got shape {tuple(x.shape)}")
    ref = _predict(probe, x)
    if not 0 <= drop_layers < len(layers):
        raise ModelError(f"drop_layers must be in [0, {len(layers) - 1}], got {drop_layers}")
    plan = StructuredPlan()
    plan.layer_importance = _layer_ablation(probe, x, ref, list(layers))
    plan.dropped = sorted(sorted(plan.layer_importance, key=plan.layer_importance.__getitem__)[:drop_layers])
    for name, layer in _layers(probe).items():
        n_heads, d_head = _attn_shape(layer)
        d_ff = layer.ff[0].out_features
        if not 1 <= keep_heads <= n_heads or not 1 <= keep_ffn <= d_ff:
            raise ModelError(
                f"keep_heads must be in [1, {n_heads}] and keep_ffn in [1, {d_ff}] for {name}, got {keep_heads} and {keep_ffn}"
            )
        heads = _ablation(probe, x, ref, layer.attn.out.weight, [slice(h * d_head, (h + 1) * d_head) for h in range(n_heads)])
        chans = _ablation(probe, x, ref, layer.ff[3].weight, [slice(c, c + 1) for c in range(d_ff)])
        plan.head_importance[name] = [round(s, 6) for s in heads]
        plan.ffn_importance[name] = [round(s, 6) for s in chans]
        plan.heads[name] = sorted(np.argsort(heads)[::-1][:keep_heads].tolist())
        plan.ffn[name] = sorted(np.argsort(chans)[::-1][:keep_ffn].tolist())
    return plan


def _shrink(net: nn.Module, plan: StructuredPlan) -> nn.Module:
    """Rebuild the layers of ``net`` in place with only the heads and channels of ``plan``."""
    for name, layer in _layers(net).items():
        n_heads, d_head = _attn_shape(layer)
        d_model = layer.attn.out.out_features
        kept = plan.heads[name]
        rows = [s * n_heads * d_head + h * d_head + j for s in range(3) for h in kept for j in range(d_head)]
        cols = [h * d_head + j for h in kept for j in range(d_head)]
        attn = PrunedSelfAttention(d_model, len(kept), d_head, float(layer.attn.drop.p)).train(layer.training)
        with torch.no_grad():
            attn.qkv.weight.copy_(layer.attn.qkv.weight[rows])
            attn.qkv.bias.copy_(layer.attn.qkv.bias[rows])
            attn.out.weight.copy_(layer.attn.out.weight[:, cols])
            attn.out.bias.copy_(layer.attn.out.bias)
        layer.attn = attn
        up, down = layer.ff[0], layer.ff[3]
        chans = plan.ffn[name]
        new_up, new_down = nn.Linear(up.in_features, len(chans)), nn.Linear(len(chans), down.out_features)
        with torch.no_grad():
            new_up.weight.copy_(up.weight[chans])
            new_up.bias.copy_(up.bias[chans])
            new_down.weight.copy_(down.weight[:, chans])
            new_down.bias.copy_(down.bias)
        layer.ff[0], layer.ff[3] = new_up, new_down
    # whole layers last, highest index first, so the names of the plan still hold while deleting
    for name in sorted(plan.dropped, key=lambda n: (n.rpartition(".")[0], -int(n.rpartition(".")[2]))):
        parent, _, index = name.rpartition(".")
        del cast(nn.ModuleList, net.get_submodule(parent))[int(index)]
    return net


def _members(net: nn.Module) -> list[Any]:
    return list(net.members) if isinstance(net, MeanEnsemble) else [net]


def prune_structured(
    net: nn.Module, X: np.ndarray, *, keep_heads: int, keep_ffn: int, drop_layers: int = 0
) -> tuple[nn.Module, list[StructuredPlan]]:
    """A copy of ``net`` with each layer cut to its ``keep_heads`` heads and ``keep_ffn`` channels.

    Each member of a :class:`~models.torch_estimator.MeanEnsemble` gets its own plan (its own
    importance measurement on ``X``).

    Args:
        net: trained :class:`~models.nets.TransformerRULNet` or ``MeanEnsemble`` of them (not modified).
        X: calibration windows (see :func:`plan_structured`).
        keep_heads: heads kept per layer.
        keep_ffn: feed-forward channels kept per layer.
        drop_layers: encoder layers removed whole per member.

    Returns:
        The pruned copy (eval mode) and each member's plan.
    """
    pruned = copy.deepcopy(net).eval()
    plans = []
    for member in _members(pruned):
        plan = plan_structured(member, X, keep_heads=keep_heads, keep_ffn=keep_ffn, drop_layers=drop_layers)
        _shrink(member, plan)
        plans.append(plan)
    return pruned.eval(), plans


def prune_structured_finetune(
    net: nn.Module,
    X: np.ndarray,
    y: np.ndarray,
    X_val: np.ndarray,
    y_val: np.ndarray,
    *,
    keep_heads: int,
    keep_ffn: int,
    drop_layers: int = 0,
    epochs: int = 5,
    batch_size: int = 128,
    seed: int = 0,
    num_threads: int = 1,
    log: Callable[[str], None] | None = None,
) -> tuple[nn.Module, list[StructuredPlan]]:
    """:func:`prune_structured` (importance measured on ``X_val``), then ``epochs`` epochs of training.

    Each member is trained on ``X``/``y`` with its own loss, optimiser and regularisers, and the
    epoch with the lowest RMSE on ``X_val``/``y_val`` is kept (a share of the training windows:
    never the cuts the pruned network is scored on).

    Args:
        net: trained :class:`~models.nets.TransformerRULNet` or ``MeanEnsemble`` (not modified).
        X, y: training windows ``(n, channels, window)`` and targets.
        X_val, y_val: windows and targets that measure importance and pick the epoch.
        keep_heads: heads kept per layer.
        keep_ffn: feed-forward channels kept per layer.
        drop_layers: encoder layers removed whole per member.
        epochs: fine-tuning epochs per member (>= 1).
        batch_size: batch size.
        seed: seed of the shuffling (member ``i`` uses ``seed + i``).
        num_threads: torch CPU threads.
        log: progress sink.

    Returns:
        The pruned, fine-tuned copy (eval mode) and each member's plan.

    Raises:
        ValueError: if ``epochs`` < 1.
    """
    if epochs < 1:
        raise ValueError(f"epochs must be >= 1, got {epochs}")
    pruned, plans = prune_structured(net, X_val, keep_heads=keep_heads, keep_ffn=keep_ffn, drop_layers=drop_layers)
    torch.set_num_threads(max(1, int(num_threads)))
    done: list[Any] = []
    for i, (member, plan) in enumerate(zip(_members(pruned), plans, strict=True)):
        finetune_member(member, (X, y, X_val, y_val), epochs=epochs, batch_size=batch_size, seed=seed + i,
                        what=f"structurally pruned member {i}")
        # a fresh module of the same shape with the tuned weights: no trainer reference, so it
        # exports and pickles cleanly
        fresh = _shrink(type(member)(**member.hparams), plan)
        fresh.load_state_dict(member.state_dict())
        done.append(fresh.eval())
        if log is not None:
            log(f"structured member {i}: {parameter_count(fresh)} parameters")
    out = MeanEnsemble(done).eval() if isinstance(pruned, MeanEnsemble) else done[0]
    return out, plans
