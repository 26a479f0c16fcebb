"""A plant's local learner: the RUL transformer trained by Lightning on the plant's own units only.

Each federated round a plant receives the global weights, trains ``local_epochs`` epochs on its own
windows (with FedProx's proximal term ``mu / 2 * ||w - w_global||^2`` when ``proximal_mu > 0``, which
keeps plants with different fault modes from pulling the weights far apart) and returns its weights
and its window count. With ``dp_epsilon > 0`` the local training is unit-level DP-SGD
(:mod:`models.federated.privacy`): each engine's whole run is protected at ``(dp_epsilon, dp_delta)``
over the plant's ``rounds`` planned rounds, and a round past the plan is refused. The optimiser
starts afresh each round (its moments would describe weights the aggregation has replaced).
Evaluation scores the received weights on the plant's own validation cuts.

The same learner trains the two references of the benchmark: a plant alone (local-only) and all
plants' windows pooled in one place (centralized, :func:`pooled_learner`).
"""

# ruff: noqa: N803  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import dataclasses
import math
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pytorch_lightning as pl
import torch
from torch import Tensor

from core.errors import ModelError
from models.data.arrays import ArrayDataModule
from models.federated.plants import DEFAULT_SENSORS, Plant, PlantDataModule
from models.federated.privacy import PrivacyLedger, UnitLevelDP, unit_window_offsets
from models.nets import TransformerRULNet
from models.training import fit_module

__all__ = [
    "FederatedConfig", "NetExchange", "PlantLearner", "ProximalTransformer", "load_net_weights", "local_round", "net_weights",
    "pooled_learner", "predict_windows", "round_seed",
]


@dataclass(frozen=True)
class FederatedConfig:
    """The network, its inputs and the local training every plant of a federation shares.

    Flower's run configuration carries it with dashes for underscores (``local-epochs``); sensors
    as a comma-separated string; ``rounds`` as Flower's own ``num-server-rounds``.

    The ``dp_*`` fields set unit-level DP-SGD (:mod:`models.federated.privacy`): ``dp_epsilon`` is
    the budget of the plant's whole federated training (``rounds`` rounds of ``local_epochs``
    epochs; 0 trains without DP), ``dp_delta`` its delta, ``dp_max_grad_norm`` the per-unit
    clipping norm, ``dp_units_per_batch`` the expected units per step (Poisson sampling) and
    ``dp_windows_per_unit`` the windows each sampled unit's gradient averages.
    """

    window: int = 50
    patch_len: int = 5
    d_model: int = 32
    n_heads: int = 4
    n_layers: int = 2
    n_sensor_layers: int = 1
    d_ff: int = 64
    dropout: float = 0.0
    learning_rate: float = 1e-3
    weight_decay: float = 1e-4
    batch_size: int = 128
    train_stride: int = 2
    age_channel: bool = True
    val_fraction: float = 0.2
    n_val_cuts: int = 5
    rul_cap: int = 125
    local_epochs: int = 1
    sensors: tuple[int, ...] = DEFAULT_SENSORS
    seed: int = 0
    rounds: int = 20
    dp_epsilon: float = 0.0
    dp_delta: float = 1e-5
    dp_max_grad_norm: float = 1.0
    dp_units_per_batch: int = 8
    dp_windows_per_unit: int = 8

    def __post_init__(self) -> None:
        if self.window < 1 or self.local_epochs < 1 or self.batch_size < 1 or self.rounds < 1:
            raise ModelError(f"window, local_epochs, batch_size and rounds must be >= 1: {self}")
        if self.dp_epsilon < 0 or not 0 < self.dp_delta < 1 or self.dp_max_grad_norm <= 0:
            raise ModelError(
                f"dp_epsilon must be >= 0 (0: no DP), dp_delta in (0, 1) and dp_max_grad_norm > 0; got "
                f"{self.dp_epsilon}, {self.dp_delta}, {self.dp_max_grad_norm}"
            )
        if self.dp_units_per_batch < 1 or self.dp_windows_per_unit < 1:
            raise ModelError(
                f"dp_units_per_batch and dp_windows_per_unit must be >= 1, got {self.dp_units_per_batch}, "
                f"{self.dp_windows_per_unit}"
            )

    @property
    def private(self) -> bool:
        """Whether local training is differentially private."""
        return self.dp_epsilon > 0

    @staticmethod
    def _run_config_key(name: str) -> str:
        return _RUN_CONFIG_KEYS.get(name, name.replace("_", "-"))

    @classmethod
    def from_run_config(cls, run_config: Mapping[str, Any]) -> FederatedConfig:
        """The fields present in a Flower run configuration (others keep their defaults; unknown keys are ignored)."""
        kwargs: dict[str, Any] = {}
        for f in dataclasses.fields(cls):
            key = cls._run_config_key(f.name)
            if key not in run_config:
                continue
            value = run_config[key]
            if f.name == "sensors":
                kwargs[f.name] = tuple(int(s) for s in str(value).split(",") if s.strip())
            else:
                kwargs[f.name] = type(getattr(cls(), f.name))(value)
        return cls(**kwargs)

    def to_run_config(self) -> dict[str, str | int | float | bool]:
        """The Flower run configuration of this config (inverse of :meth:`from_run_config`)."""
        out: dict[str, str | int | float | bool] = {}
        for f in dataclasses.fields(self):
            value = getattr(self, f.name)
            out[self._run_config_key(f.name)] = ",".join(str(s) for s in value) if f.name == "sensors" else value
        return out

    def net_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of the network (besides its channel count)."""
        return {
            "window": self.window, "patch_len": self.patch_len, "d_model": self.d_model, "n_heads": self.n_heads,
            "n_layers": self.n_layers, "n_sensor_layers": self.n_sensor_layers, "d_ff": self.d_ff,
            "dropout": self.dropout, "learning_rate": self.learning_rate, "weight_decay": self.weight_decay,
            "rul_cap": float(self.rul_cap),
        }

    def data_kwargs(self) -> dict[str, Any]:
        """Keyword arguments of a plant's data module."""
        return {
            "window": self.window, "rul_cap": self.rul_cap, "val_fraction": self.val_fraction,
            "n_val_cuts": self.n_val_cuts, "batch_size": self.batch_size, "train_stride": self.train_stride,
            "age_channel": self.age_channel, "sensors": self.sensors,
        }


#: run-configuration keys that are not the field's name with dashes
_RUN_CONFIG_KEYS = {"rounds": "num-server-rounds"}


class ProximalTransformer(TransformerRULNet):
    """The RUL transformer with FedProx's proximal term and a constant learning rate.

    Args:
        proximal_mu: weight ``mu`` of ``mu / 2 * ||w - w_anchor||^2`` (0: plain local training).
        **kwargs: :class:`~models.nets.TransformerRULNet`'s arguments.
    """

    def __init__(self, *args: Any, proximal_mu: float = 0.0, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.proximal_mu = float(proximal_mu)
        self._anchor: list[Tensor] = []

    def anchor(self) -> None:
        """Take the current weights as the proximal term's centre (the round's global weights)."""
        self._anchor = [p.detach().clone() for p in self.parameters()]

    def training_step(self, batch: tuple[Tensor, Tensor], batch_idx: int) -> Tensor:
        """The RUL loss plus the proximal term."""
        loss = super().training_step(batch, batch_idx)
        if self.proximal_mu > 0 and self._anchor:
            prox = sum(((p - a) ** 2).sum() for p, a in zip(self.parameters(), self._anchor, strict=True))
            loss = loss + 0.5 * self.proximal_mu * prox
        return loss

    def configure_optimizers(self) -> Any:  # a plain optimiser: no validation loop drives a schedule
        """AdamW at a constant learning rate (a round is one or a few epochs)."""
        return torch.optim.AdamW(self.parameters(), lr=self.learning_rate, weight_decay=self.weight_decay)


class NetExchange:
    """What every plant learner sends and takes: its network's weights, and its training-window count.

    A subclass has ``name`` (the plant's), ``net`` (the network) and ``data`` (with ``X_train``).
    """

    name: str
    net: torch.nn.Module
    data: Any

    @property
    def n_train(self) -> int:
        """Training windows (FedAvg's weight of this plant)."""
        return int(self.data.X_train.shape[0])

    def get_parameters(self) -> list[np.ndarray]:
        """The network's weights as float32 arrays, in the network's parameter order."""
        return net_weights(self.net)

    def set_parameters(self, parameters: Sequence[np.ndarray]) -> None:
        """Load weights given in :meth:`get_parameters`' order (shapes must match)."""
        load_net_weights(self.net, parameters, self.name)


@dataclass
class PlantLearner(NetExchange):
    """One plant's local training and evaluation on its own data.

    Attributes:
        name: the plant's name.
        data: its data module (set up).
        config: the federation's shared configuration.
        net: the network (its weights are whatever was set or trained last).
        privacy: with DP, the plant's privacy ledger (budget, noise, what is spent); ``None`` without.
            A client rebuilt between rounds restores it with :meth:`PrivacyLedger.from_card`.
    """

    name: str
    data: ArrayDataModule | PlantDataModule
    config: FederatedConfig
    net: ProximalTransformer = field(init=False)
    privacy: PrivacyLedger | None = field(init=False, default=None)
    _dp: UnitLevelDP | None = field(init=False, default=None, repr=False)

    def __post_init__(self) -> None:
        self.data.setup("fit")
        # the same seed on every plant: identical initial weights wherever the network is built
        torch.manual_seed(self.config.seed)
        self.net = ProximalTransformer(self.data.n_channels, **self.config.net_kwargs())
        if self.config.private:
            self._setup_privacy()

    def _setup_privacy(self) -> None:
        """Plan the plant's budget over its training units and prepare unit-level DP-SGD."""
        data, cfg = self.data, self.config
        if not isinstance(data, PlantDataModule):
            raise ModelError(f"{self.name}: unit-level DP needs a plant's units (a PlantDataModule), not pooled windows")
        offsets = unit_window_offsets(data.data_dir, data.subset, [int(u) for u in data.train_units],
                                      data.train_stride, int(data.X_train.shape[0]))
        self._dp = UnitLevelDP(self.net, data.X_train, data.y_train, offsets)
        self.privacy = PrivacyLedger.plan(
            n_units=self._dp.n_units, epsilon=cfg.dp_epsilon, delta=cfg.dp_delta, rounds=cfg.rounds,
            local_epochs=cfg.local_epochs, max_grad_norm=cfg.dp_max_grad_norm,
            units_per_batch=cfg.dp_units_per_batch, windows_per_unit=cfg.dp_windows_per_unit,
        )

    @classmethod
    def from_plant(cls, data_dir: str | Path, plant: Plant, config: FederatedConfig) -> PlantLearner:
        """The learner of ``plant``, reading its units from ``data_dir``."""
        data = PlantDataModule(data_dir, plant, seed=config.seed, **config.data_kwargs())
        return cls(plant.name, data, config)

    @classmethod
    def from_node_config(cls, node_config: Mapping[str, Any], config: FederatedConfig) -> PlantLearner:
        """The learner of the plant a Flower node configuration names (``plant``, ``subset``, ``units``, ``data-dir``)."""
        if "data-dir" not in node_config:
            raise ModelError("a plant's node config needs 'data-dir' (where its C-MAPSS files are)")
        return cls.from_plant(node_config["data-dir"], Plant.from_node_config(node_config), config)

    @property
    def n_parameters(self) -> int:
        """Number of trainable weights."""
        return sum(int(p.numel()) for p in self.net.parameters())

    def fit(self, parameters: Sequence[np.ndarray], config: Mapping[str, Any]) -> tuple[list[np.ndarray], int, dict[str, float]]:
        """Train from ``parameters`` on the plant's windows.

        Args:
            parameters: the round's global weights.
            config: ``local_epochs`` (default: the federation's), ``proximal_mu`` (default 0),
                ``server_round`` (seeds the shuffling, so a round is repeatable).

        Returns:
            The trained weights, the plant's training window count and ``{"train_loss": ...}``; with
            DP also ``"epsilon"`` (spent so far, all rounds) and ``"delta"``.

        Raises:
            ModelError: training failed, or (DP) the round would exceed the plant's privacy budget.
        """
        self.set_parameters(parameters)
        epochs = int(config.get("local_epochs", self.config.local_epochs))
        if self._dp is not None:
            return self._fit_private(epochs, config)
        loss = local_round(self.net, self.data, epochs=epochs, proximal_mu=float(config.get("proximal_mu", 0.0)),
                           seed=round_seed(self.config.seed, config), what=f"plant {self.name}")
        return self.get_parameters(), self.n_train, {"train_loss": loss}

    def _fit_private(self, epochs: int, config: Mapping[str, Any]) -> tuple[list[np.ndarray], int, dict[str, float]]:
        """A unit-level DP-SGD round (the weights are set)."""
        assert self._dp is not None and self.privacy is not None
        self.net.train()  # evaluation left it in eval mode
        seed = round_seed(self.config.seed, config)
        pl.seed_everything(seed, workers=False, verbose=False)
        self.privacy, loss = self._dp.fit_round(
            self.privacy, epochs=epochs, seed=seed, learning_rate=self.config.learning_rate,
            weight_decay=self.config.weight_decay, proximal_mu=float(config.get("proximal_mu", 0.0)),
            what=f"plant {self.name} (DP)",
        )
        metrics = {"train_loss": loss, "epsilon": self.privacy.epsilon_spent, "delta": self.privacy.delta}
        return self.get_parameters(), self.n_train, metrics

    def restore_privacy(self, card: Mapping[str, Any]) -> None:
        """Take back the ledger of earlier rounds (a Flower client is rebuilt between rounds; its ledger is not).

        Raises:
            ModelError: the learner trains without DP, or the card is of another plan (noise, units, rounds).
        """
        if self.privacy is None:
            raise ModelError(f"{self.name}: trains without DP; there is no privacy ledger to restore")
        ledger = PrivacyLedger.from_card(card)
        if dataclasses.replace(ledger, steps=0, epsilon_spent=0.0) != self.privacy:
            raise ModelError(f"{self.name}: the stored privacy ledger is of another plan than this run's: {dict(card)}")
        self.privacy = ledger

    def predict(self, X: np.ndarray) -> np.ndarray:
        """RUL (cycles) of windows ``(n, channels, window)`` with the current weights."""
        return predict_windows(self.net, X)

    def evaluate(self, parameters: Sequence[np.ndarray], config: Mapping[str, Any]) -> tuple[float, int, dict[str, float]]:
        """RMSE (cycles) of ``parameters`` on the plant's validation cuts: ``(rmse, n_cuts, {"rmse": rmse})``."""
        self.set_parameters(parameters)
        rmse = self.rmse(self.data.X_val, self.data.y_val)
        return rmse, int(self.data.y_val.shape[0]), {"rmse": rmse}

    def rmse(self, X: np.ndarray, y: np.ndarray) -> float:
        """RMSE (cycles) of the current weights on windows ``X`` with truths ``y``."""
        return float(np.sqrt(np.mean((self.predict(X) - y) ** 2)))


class _TrainOnly(pl.LightningDataModule):
    """A data module's training loader alone (local rounds have no validation loop)."""

    def __init__(self, data: pl.LightningDataModule) -> None:
        super().__init__()
        self.data = data

    def train_dataloader(self) -> Any:  # torch's DataLoader
        return self.data.train_dataloader()


def round_seed(seed: int, config: Mapping[str, Any]) -> int:
    """The seed of a plant's local round: its own seed and the round number (a round is repeatable)."""
    return int(seed) * 100_003 + int(config.get("server_round", 0))


def net_weights(net: torch.nn.Module) -> list[np.ndarray]:
    """A network's weights as float32 arrays, in its parameter order (what a plant sends)."""
    return [p.detach().cpu().numpy().astype(np.float32, copy=True) for p in net.parameters()]


def load_net_weights(net: torch.nn.Module, parameters: Sequence[np.ndarray], who: str) -> None:
    """Load :func:`net_weights`-ordered arrays into ``net``.

    Raises:
        ModelError: the count or a shape differs from the network's (``who`` names the plant).
    """
    params = list(net.parameters())
    if len(parameters) != len(params):
        raise ModelError(f"{who}: got {len(parameters)} weight arrays, the network has {len(params)}")
    with torch.no_grad():
        for p, a in zip(params, parameters, strict=True):
            if tuple(p.shape) != tuple(np.shape(a)):
                raise ModelError(f"{who}: a weight array of shape {np.shape(a)} where {tuple(p.shape)} was expected")
            p.copy_(torch.as_tensor(np.asarray(a, dtype=np.float32)))


def local_round(net: ProximalTransformer, data: pl.LightningDataModule, *, epochs: int, proximal_mu: float,
                seed: int, what: str) -> float:
    """Train ``net`` ``epochs`` epochs on ``data``'s training loader from its current weights (the round's
    global ones, the proximal term's centre); the mean training loss of the last epoch."""
    net.train()  # evaluation left it in eval mode; Lightning keeps a module's mode
    net.proximal_mu = float(proximal_mu)
    net.anchor()
    pl.seed_everything(seed, workers=False, verbose=False)
    with warnings.catch_warnings():
        # the network has a validation step for other trainings; a local round has no validation loop
        warnings.filterwarnings("ignore", ".*no `val_dataloader`.*")
        trainer = fit_module(net, _TrainOnly(data), max_epochs=epochs, what=what)
    loss = trainer.callback_metrics.get("train_loss")
    return float(loss) if loss is not None else math.nan


def predict_windows(net: torch.nn.Module, X: np.ndarray) -> np.ndarray:
    """``net``'s output for windows ``(n, channels, window)``, in batches of 1024, in eval mode."""
    net.eval()
    with torch.no_grad():
        out = [net(torch.from_numpy(np.ascontiguousarray(X[i : i + 1024]))) for i in range(0, X.shape[0], 1024)]
    return torch.cat(out).numpy()


def pooled_learner(learners: Sequence[PlantLearner], name: str = "pooled") -> PlantLearner:
    """One learner over every plant's windows (each normalised by its own plant): the centralized reference.

    It trains without DP (``dp_epsilon`` 0) whatever the plants' config: the pooled windows have no
    plant's units, and the reference is the non-private bound.
    """
    if not learners:
        raise ModelError("nothing to pool")
    config = dataclasses.replace(learners[0].config, dp_epsilon=0.0)
    data = ArrayDataModule(
        np.concatenate([lr.data.X_train for lr in learners]), np.concatenate([lr.data.y_train for lr in learners]),
        np.concatenate([lr.data.X_val for lr in learners]), np.concatenate([lr.data.y_val for lr in learners]),
        batch_size=config.batch_size, seed=config.seed,
    )
    return PlantLearner(name, data, config)
