"""Lightning modules for RUL regression on ``(batch, channel, time)`` windows.

The attention is written out with plain ``Linear``/``matmul``/``softmax`` (no fused
``nn.MultiheadAttention`` fast path) so that the ONNX graph is simple and every projection is a
``MatMul`` that onnxruntime can quantise to int8.
"""

from __future__ import annotations

import math
from typing import Any

import pytorch_lightning as pl
import torch
from torch import Tensor, nn

__all__ = ["LSTMRULNet", "RULModule", "TransformerRULNet"]


class RULModule(pl.LightningModule):
    """Shared training logic: MSE on capped RUL scaled to ``[0, 1]``, validation RMSE in cycles.

    Subclasses implement :meth:`encode` returning the regression output in ``[0, 1]``-ish units;
    :meth:`forward` maps it back to cycles.

    Args:
        rul_cap: target scale (the RUL cap); outputs are ``rul_cap * head(x)``.
        learning_rate: AdamW learning rate.
        weight_decay: AdamW weight decay.
        lr_patience: epochs without validation improvement before the LR is halved.
        ema_decay: if > 0, an exponential moving average of the weights (updated every
            training step) is what is validated, kept and exported; it smooths the
            epoch-to-epoch swings that small training sets (80 engines) cause.
        input_noise: standard deviation of Gaussian noise added to the (z-scored) training
            inputs, a regulariser for the sensors' measurement noise.
        lr_schedule: ``"plateau"`` halves the LR after ``lr_patience`` epochs without validation
            improvement; ``"cosine"`` warms it up linearly over the first 5 % of the training
            steps, then lowers it along a cosine to 0 at the last step of ``max_epochs``.
        late_weight: weight of the squared error where the prediction is above the truth (a late
            prediction: the engine fails before the model said it would), relative to 1 for early
            ones. 1 is plain MSE; above 1 leans the fit the way the PHM08 score does, which punishes
            late predictions harder than early ones.
    """

    def __init__(
        self,
        *,
        rul_cap: float = 125.0,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        lr_patience: int = 3,
        ema_decay: float = 0.0,
        input_noise: float = 0.0,
        lr_schedule: str = "plateau",
        late_weight: float = 1.0,
    ) -> None:
        super().__init__()
        if late_weight <= 0:
            raise ValueError(f"late_weight must be positive, got {late_weight!r}")
        self.late_weight = float(late_weight)
        if lr_schedule not in ("plateau", "cosine"):
            raise ValueError(f"lr_schedule must be 'plateau' or 'cosine', got {lr_schedule!r}")
        self.lr_schedule = lr_schedule
        self.rul_cap = float(rul_cap)
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.lr_patience = lr_patience
        self.ema_decay = float(ema_decay)
        self.input_noise = float(input_noise)
        self._ema: dict[str, Tensor] | None = None
        self._raw: dict[str, Tensor] | None = None
        self._val_sq_err = 0.0
        self._val_n = 0

    def encode(self, x: Tensor) -> Tensor:
        """Map ``(batch, channel, time)`` to ``(batch,)`` scaled RUL."""
        raise NotImplementedError

    def forward(self, x: Tensor) -> Tensor:
        """Predict RUL in cycles, shape ``(batch,)``, clipped at 0."""
        return (self.encode(x) * self.rul_cap).clamp(min=0.0)

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """MSE on capped RUL divided by the cap (late errors weighted by ``late_weight``)."""
        x, y = batch
        if self.input_noise > 0:
            x = x + self.input_noise * torch.randn_like(x)
        pred, target = self.encode(x), y / self.rul_cap
        if self.late_weight == 1.0:  # the plain MSE every model before the option was trained with
            loss = nn.functional.mse_loss(pred, target)
        else:
            err = pred - target
            loss = (torch.where(err > 0, self.late_weight, 1.0) * err**2).mean()
        self.log("train_loss", loss, prog_bar=True, on_step=False, on_epoch=True)
        return loss

    def on_train_batch_end(self, outputs: Any, batch: Any, batch_idx: int) -> None:
        """Update the moving average of the weights."""
        if self.ema_decay <= 0:
            return
        with torch.no_grad():
            state = self.state_dict()
            if self._ema is None:
                self._ema = {k: v.detach().clone() for k, v in state.items()}
            else:
                for k, v in state.items():
                    if v.dtype.is_floating_point:
                        self._ema[k].mul_(self.ema_decay).add_(v.detach(), alpha=1.0 - self.ema_decay)
                    else:
                        self._ema[k].copy_(v)

    def on_validation_start(self) -> None:
        """Validate the averaged weights (the training weights are put back next epoch)."""
        if self._ema is not None and self._raw is None:
            self._raw = {k: v.detach().clone() for k, v in self.state_dict().items()}
            self.load_state_dict(self._ema)

    def on_train_epoch_start(self) -> None:
        """Resume training from the raw (not averaged) weights."""
        if self._raw is not None:
            self.load_state_dict(self._raw)
            self._raw = None

    def on_validation_epoch_start(self) -> None:
        """Reset the RMSE accumulators."""
        self._val_sq_err, self._val_n = 0.0, 0

    def validation_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> None:
        """Accumulate squared errors in cycles."""
        x, y = batch
        pred = self(x)
        self._val_sq_err += float(((pred - y) ** 2).sum())
        self._val_n += int(y.numel())

    def on_validation_epoch_end(self) -> None:
        """Log ``val_rmse`` over the whole validation set (not a mean of batch RMSEs)."""
        rmse = math.sqrt(self._val_sq_err / max(self._val_n, 1))
        self.log("val_rmse", rmse, prog_bar=True)

    def configure_optimizers(self) -> Any:  # Lightning's optimizer-and-scheduler dict
        """AdamW with LR halving on validation plateaus, or warm-up then cosine decay (``lr_schedule``)."""
        opt = torch.optim.AdamW(self.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)
        if self.lr_schedule == "cosine":
            total = max(int(self.trainer.estimated_stepping_batches), 1)
            warm = max(total // 20, 1)

            def factor(step: int) -> float:
                if step < warm:
                    return (step + 1) / warm
                return 0.5 * (1.0 + math.cos(math.pi * min(step - warm, total - warm) / max(total - warm, 1)))

            cosine = torch.optim.lr_scheduler.LambdaLR(opt, factor)
            return {"optimizer": opt, "lr_scheduler": {"scheduler": cosine, "interval": "step"}}
        sched = torch.optim.lr_scheduler.ReduceLROnPlateau(opt, mode="min", factor=0.5, patience=self.lr_patience)
        return {"optimizer": opt, "lr_scheduler": {"scheduler": sched, "monitor": "val_rmse"}}


class _SelfAttention(nn.Module):
    def __init__(self, d_model: int, n_heads: int, dropout: float) -> None:
        super().__init__()
        if d_model % n_heads:
            raise ValueError(f"d_model ({d_model}) must be divisible by n_heads ({n_heads})")
        self.n_heads = n_heads
        self.d_head = d_model // n_heads
        self.qkv = nn.Linear(d_model, 3 * d_model)
        self.out = nn.Linear(d_model, d_model)
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor) -> Tensor:
        b, t, d = h.shape
        qkv = self.qkv(h).reshape(b, t, 3, self.n_heads, self.d_head).permute(2, 0, 3, 1, 4)
        q, k, v = qkv[0], qkv[1], qkv[2]
        att = torch.softmax(q @ k.transpose(-1, -2) / math.sqrt(self.d_head), dim=-1)
        y = (self.drop(att) @ v).transpose(1, 2).reshape(b, t, d)
        out: Tensor = self.out(y)
        return out


class _EncoderLayer(nn.Module):
    """Pre-norm transformer encoder layer."""

    def __init__(self, d_model: int, n_heads: int, d_ff: int, dropout: float) -> None:
        super().__init__()
        self.norm1 = nn.LayerNorm(d_model)
        self.attn = _SelfAttention(d_model, n_heads, dropout)
        self.norm2 = nn.LayerNorm(d_model)
        self.ff = nn.Sequential(nn.Linear(d_model, d_ff), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_ff, d_model))
        self.drop = nn.Dropout(dropout)

    def forward(self, h: Tensor) -> Tensor:
        h = h + self.drop(self.attn(self.norm1(h)))
        out: Tensor = h + self.drop(self.ff(self.norm2(h)))
        return out


class TransformerRULNet(RULModule):
    """Dual-aspect transformer: attention over time steps and (optionally) over sensors.

    The time branch embeds each cycle's sensor vector and attends across cycles; the sensor
    branch (as in DAST, Zhang et al. 2022) embeds each sensor's whole trajectory in the window
    and attends across sensors. Pooled features of both are fused by a small MLP head.

    Args:
        n_channels: sensors per cycle.
        window: cycles per window.
        d_model: embedding width.
        n_heads: attention heads.
        n_layers: encoder layers in the time branch.
        n_sensor_layers: encoder layers in the sensor branch (0 disables it).
        d_ff: feed-forward width.
        dropout: dropout rate.
        conv_kernel: width of the 1-D convolution that embeds each cycle together with its
            neighbours (local smoothing of noisy sensors); 0 or 1 embeds each cycle alone.
        patch_len: if > 1, cycles are grouped into non-overlapping patches of this many cycles
            (counted back from the last cycle), each embedded as one token (PatchTST, Nie et al.
            2023): fewer, less noisy tokens; replaces ``conv_kernel``.
        coarse_patch_len: if > ``patch_len``, a second, coarser set of patch tokens (this many
            cycles each, with their own embedding and positions) joins the fine ones in the same
            attention (multi-scale, as STAR, Fan et al. 2024, does hierarchically); its last
            token is pooled too. 0: one scale.
        last_step_skip: if true, the last cycle's raw inputs (its normalised sensors and, in an
            age model, the age channel) join the pooled features the head reads: the latest state
            reaches the regression directly, as an RNN's last step does, not only through attention.
        **kwargs: optimisation options of :class:`RULModule`.
    """

    def __init__(
        self,
        n_channels: int,
        window: int,
        *,
        conv_kernel: int = 0,
        d_model: int = 32,
        n_heads: int = 4,
        n_layers: int = 2,
        n_sensor_layers: int = 1,
        d_ff: int = 64,
        dropout: float = 0.1,
        patch_len: int = 0,
        coarse_patch_len: int = 0,
        last_step_skip: bool = False,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.conv_kernel = conv_kernel
        self.last_step_skip = bool(last_step_skip)
        self.patch_len = patch_len
        if coarse_patch_len and not 1 < patch_len < coarse_patch_len:
            raise ValueError(f"coarse_patch_len ({coarse_patch_len}) needs 1 < patch_len ({patch_len}) < coarse_patch_len")
        self.coarse_patch_len = coarse_patch_len
        n_tokens = window
        if patch_len > 1:
            n_tokens = -(-window // patch_len)
            self.patch_pad = n_tokens * patch_len - window
            self.patch_embed = nn.Linear(n_channels * patch_len, d_model)
        elif conv_kernel > 1:
            self.time_conv = nn.Conv1d(n_channels, d_model, conv_kernel, padding=conv_kernel // 2, padding_mode="replicate")
        else:
            self.time_embed = nn.Linear(n_channels, d_model)
        self.time_pos = nn.Parameter(torch.randn(1, n_tokens, d_model) * 0.02)
        fused = 2 * d_model
        if coarse_patch_len:
            n_coarse = -(-window // coarse_patch_len)
            self.coarse_pad = n_coarse * coarse_patch_len - window
            self.coarse_embed = nn.Linear(n_channels * coarse_patch_len, d_model)
            self.coarse_pos = nn.Parameter(torch.randn(1, n_coarse, d_model) * 0.02)
            fused += d_model
        self.time_layers = nn.ModuleList(_EncoderLayer(d_model, n_heads, d_ff, dropout) for _ in range(n_layers))
        self.time_norm = nn.LayerNorm(d_model)
        self.n_sensor_layers = n_sensor_layers
        if n_sensor_layers > 0:
            self.sensor_embed = nn.Linear(window, d_model)
            self.sensor_pos = nn.Parameter(torch.randn(1, n_channels, d_model) * 0.02)
            self.sensor_layers = nn.ModuleList(_EncoderLayer(d_model, n_heads, d_ff, dropout) for _ in range(n_sensor_layers))
            self.sensor_norm = nn.LayerNorm(d_model)
            fused += d_model
        if self.last_step_skip:
            fused += n_channels
        self.head = nn.Sequential(nn.Linear(fused, d_model), nn.GELU(), nn.Dropout(dropout), nn.Linear(d_model, 1))

    @staticmethod
    def _patches(x: Tensor, patch_len: int, pad: int) -> Tensor:
        """``(b, c, t)`` -> ``(b, n, c * patch_len)``: one token per patch, the last ending at the last cycle."""
        # left-pad with the first cycle so the last patch ends at the last cycle
        x_p = torch.cat([x[:, :, :1].expand(-1, -1, pad), x], dim=-1) if pad else x
        b, c, t = x_p.shape
        return x_p.reshape(b, c, t // patch_len, patch_len).permute(0, 2, 1, 3).reshape(b, t // patch_len, -1)

    def encode(self, x: Tensor) -> Tensor:
        """Fuse time- and sensor-attention features into a scaled RUL."""
        n_coarse = 0
        if self.patch_len > 1:
            h = self.patch_embed(self._patches(x, self.patch_len, self.patch_pad)) + self.time_pos
            if self.coarse_patch_len:
                coarse = self.coarse_embed(self._patches(x, self.coarse_patch_len, self.coarse_pad)) + self.coarse_pos
                n_coarse = coarse.shape[1]
                h = torch.cat([coarse, h], dim=1)
        elif self.conv_kernel > 1:
            h = self.time_conv(x)[:, :, : x.shape[-1]].transpose(1, 2) + self.time_pos
        else:
            h = self.time_embed(x.transpose(1, 2)) + self.time_pos
        for layer in self.time_layers:
            h = layer(h)
        h = self.time_norm(h)
        feats = [h[:, -1], h.mean(dim=1)]
        if n_coarse:
            feats.append(h[:, n_coarse - 1])
        if self.n_sensor_layers > 0:
            s = self.sensor_embed(x) + self.sensor_pos
            for layer in self.sensor_layers:
                s = layer(s)
            feats.append(self.sensor_norm(s).mean(dim=1))
        if self.last_step_skip:
            feats.append(x[:, :, -1])
        rul: Tensor = self.head(torch.cat(feats, dim=-1)).squeeze(-1)
        return rul


class LSTMRULNet(RULModule):
    """Stacked LSTM over time, last hidden state to an MLP head (Zheng et al. 2017).

    Args:
        n_channels: sensors per cycle.
        window: cycles per window (unused by the LSTM; kept for a uniform signature).
        hidden_size: LSTM width.
        num_layers: stacked LSTM layers.
        dropout: dropout between layers and in the head.
        **kwargs: optimisation options of :class:`RULModule`.
    """

    def __init__(
        self,
        n_channels: int,
        window: int,
        *,
        hidden_size: int = 64,
        num_layers: int = 2,
        dropout: float = 0.1,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.save_hyperparameters()
        self.lstm = nn.LSTM(
            n_channels,
            hidden_size,
            num_layers=num_layers,
            batch_first=True,
            dropout=dropout if num_layers > 1 else 0.0,
        )
        self.head = nn.Sequential(
            nn.Linear(hidden_size, hidden_size // 2),
            nn.GELU(),
            nn.Dropout(dropout),
            nn.Linear(hidden_size // 2, 1),
        )

    def encode(self, x: Tensor) -> Tensor:
        """Run the LSTM over the window; regress from the last step."""
        out, _ = self.lstm(x.transpose(1, 2))
        rul: Tensor = self.head(out[:, -1]).squeeze(-1)
        return rul
