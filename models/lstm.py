"""LSTM RUL estimator: the deep baseline, trained and evaluated like the transformer."""

from __future__ import annotations

from typing import Any

from models.nets import LSTMRULNet
from models.torch_estimator import TorchRULEstimator

__all__ = ["LSTMRUL"]


class LSTMRUL(TorchRULEstimator):
    """Stacked-LSTM regressor of remaining useful life (Zheng et al. 2017 style).

    Args:
        hidden_size: LSTM width.
        num_layers: stacked LSTM layers.
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
        accelerator: Lightning accelerator.
        n_members: seed-ensemble size (members averaged; exported as one ONNX graph).
        n_jobs: ensemble members trained at once, each in its own process (``num_threads``
            threads each); the result does not depend on it.
        checkpoint_dir: directory where each trained member is saved and from which a later fit
            with the same data and parameters reloads it (resumable ensemble fits; see
            :class:`~models.torch_estimator.TorchRULEstimator`).
        ema_decay: weight moving-average decay per step (0: off); see :class:`models.nets.RULModule`.
        input_noise: Gaussian noise added to training inputs (z-score units).
        late_weight: weight of late (over-predicted) squared errors in the training loss; 1 is MSE.
    """

    def __init__(
        self,
        *,
        hidden_size: int = 64,
        num_layers: int = 2,
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
        late_weight: float = 1.0,
        n_jobs: int = 1,
        checkpoint_dir: str | None = None,
    ) -> None:
        self.hidden_size = hidden_size
        self.num_layers = num_layers
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
        self.late_weight = late_weight
        self.n_jobs = n_jobs
        self.checkpoint_dir = checkpoint_dir

    def _build_net(self, n_channels: int, window: int) -> LSTMRULNet:
        return LSTMRULNet(
            n_channels,
            window,
            hidden_size=self.hidden_size,
            num_layers=self.num_layers,
            dropout=self.dropout,
            rul_cap=self.rul_cap,
            learning_rate=self.learning_rate,
            weight_decay=self.weight_decay,
            ema_decay=self.ema_decay,
            input_noise=self.input_noise,
            late_weight=self.late_weight,
        )

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        """Tiny LSTMs trained for one or two epochs."""
        return [
            {"hidden_size": 8, "num_layers": 1, "max_epochs": 2, "batch_size": 32, "num_threads": 1, "ema_decay": 0.9},
            {
                "hidden_size": 8,
                "num_layers": 2,
                "max_epochs": 1,
                "batch_size": 64,
                "num_threads": 1,
                "dropout": 0.0,
                "n_members": 2,
            },
        ]
