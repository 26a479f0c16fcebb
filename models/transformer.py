"""Transformer RUL estimator (attention over time and over sensors)."""

from __future__ import annotations

from typing import Any

from models.nets import TransformerRULNet
from models.torch_estimator import TorchRULEstimator

__all__ = ["TransformerRUL"]


class TransformerRUL(TorchRULEstimator):
    """Dual-aspect transformer regressor of remaining useful life.

    Trained by a ``pl.Trainer`` with early stopping on validation RMSE; see
    :class:`models.nets.TransformerRULNet` for the architecture.

    Args:
        conv_kernel: 1-D convolution width of the time embedding (0: per-cycle linear).
        d_model: embedding width.
        n_heads: attention heads.
        n_layers: encoder layers over time.
        n_sensor_layers: encoder layers over sensors (0: time attention only).
        d_ff: feed-forward width.
        dropout: dropout rate.
        max_epochs: most training epochs.
        batch_size: training batch size.
        learning_rate: AdamW learning rate.
        weight_decay: AdamW weight decay.
        patience: epochs without validation improvement before stopping.
        rul_cap: RUL cap used to scale the target.
        random_state: seed of initialisation and shuffling.
        num_threads: torch CPU threads.
        progress_bar: show the training progress bar.
        accelerator: Lightning accelerator (``"cpu"``, ``"gpu"``, ``"auto"``).
        n_members: seed-ensemble size (members averaged; exported as one ONNX graph).
        n_jobs: ensemble members trained at once, each in its own process (``num_threads``
            threads each); the result does not depend on it.
        checkpoint_dir: directory where each trained member is saved and from which a later fit
            with the same data and parameters reloads it (resumable ensemble fits; see
            :class:`~models.torch_estimator.TorchRULEstimator`).
        ema_decay: weight moving-average decay per step (0: off); see :class:`models.nets.RULModule`.
        input_noise: Gaussian noise added to training inputs (z-score units).
        patch_len: cycles per token (PatchTST-style patches; 0: one token per cycle).
        coarse_patch_len: cycles per token of a second, coarser patch scale (0: one scale).
        last_step_skip: feed the last cycle's inputs to the head besides the pooled attention features.
        lr_schedule: ``"plateau"`` (halve on validation plateaus) or ``"cosine"`` (warm-up, cosine decay).
        late_weight: weight of late (over-predicted) squared errors in the training loss; 1 is MSE.
    """

    def __init__(
        self,
        *,
        conv_kernel: int = 0,
        d_model: int = 32,
        n_heads: int = 4,
        n_layers: int = 2,
        n_sensor_layers: int = 1,
        d_ff: int = 64,
        dropout: float = 0.1,
        max_epochs: int = 40,
        batch_size: int = 256,
        learning_rate: float = 1e-3,
        weight_decay: float = 1e-4,
        patience: int = 8,
        rul_cap: float = 125.0,
        random_state: int | None = 42,
        num_threads: int = 2,
        progress_bar: bool = False,
        accelerator: str = "cpu",
        n_members: int = 1,
        ema_decay: float = 0.0,
        input_noise: float = 0.0,
        patch_len: int = 0,
        coarse_patch_len: int = 0,
        last_step_skip: bool = False,
        lr_schedule: str = "plateau",
        late_weight: float = 1.0,
        n_jobs: int = 1,
        checkpoint_dir: str | None = None,
    ) -> None:
        self.conv_kernel = conv_kernel
        self.d_model = d_model
        self.n_heads = n_heads
        self.n_layers = n_layers
        self.n_sensor_layers = n_sensor_layers
        self.d_ff = d_ff
        self.dropout = dropout
        self.max_epochs = max_epochs
        self.batch_size = batch_size
        self.learning_rate = learning_rate
        self.weight_decay = weight_decay
        self.patience = patience
        self.rul_cap = rul_cap
        self.random_state = random_state
        self.num_threads = num_threads
        self.progress_bar = progress_bar
        self.accelerator = accelerator
        self.n_members = n_members
        self.ema_decay = ema_decay
        self.input_noise = input_noise
        self.patch_len = patch_len
        self.coarse_patch_len = coarse_patch_len
        self.last_step_skip = last_step_skip
        self.lr_schedule = lr_schedule
        self.late_weight = late_weight
        self.n_jobs = n_jobs
        self.checkpoint_dir = checkpoint_dir

    def _build_net(self, n_channels: int, window: int) -> TransformerRULNet:
        return TransformerRULNet(
            n_channels,
            window,
            conv_kernel=self.conv_kernel,
            patch_len=self.patch_len,
            coarse_patch_len=self.coarse_patch_len,
            last_step_skip=self.last_step_skip,
            d_model=self.d_model,
            n_heads=self.n_heads,
            n_layers=self.n_layers,
            n_sensor_layers=self.n_sensor_layers,
            d_ff=self.d_ff,
            dropout=self.dropout,
            rul_cap=self.rul_cap,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            ema_decay=self.ema_decay,
            input_noise=self.input_noise,
            lr_schedule=self.lr_schedule,
            late_weight=self.late_weight,
        )

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        """Tiny networks trained for two epochs."""
        return [
            {
                "d_model": 8,
                "n_heads": 2,
                "n_layers": 1,
                "d_ff": 16,
                "max_epochs": 2,
                "batch_size": 32,
                "num_threads": 1,
                "ema_decay": 0.9,
                "input_noise": 0.05,
            },
            {
                "d_model": 8,
                "n_heads": 2,
                "n_layers": 1,
                "n_sensor_layers": 0,
                "d_ff": 8,
                "max_epochs": 1,
                "batch_size": 64,
                "num_threads": 1,
                "dropout": 0.0,
                "n_members": 2,
                "last_step_skip": True,
                "lr_schedule": "cosine",
                "late_weight": 2.0,
            },
        ]
