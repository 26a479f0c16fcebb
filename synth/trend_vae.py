"""Conditional VAE of multi-sensor degradation windows (C-MAPSS): trend-basis decoder + sensor noise."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from synth._torch_generator import TorchGenerator
from synth._trend import TrendVAEModule

__all__ = ["TrendVAE"]


class TrendVAE(TorchGenerator):
    """Conditional VAE for slow multi-sensor trajectories, conditioned on degradation stage.

    The decoder gives each channel a smooth trend (Legendre polynomials up to ``degree`` plus
    exponentials of the given ``rates``, the shape of accelerating wear); samples add white noise
    with a learned, condition-dependent level per channel. See :mod:`synth._trend`.

    Args:
        latent_dim: size of ``z``.
        hidden: width of the MLPs.
        degree: highest Legendre polynomial of the trend basis.
        rates: rates of the exponential basis functions.
        beta: KL weight.
        learning_rate: Adam step size.
        n_steps: training batches.
        batch_size: windows per batch (class-balanced).
        random_roll: random circular shifts (off: trajectories are not stationary).
        condition_features: label -> condition vector; ``None``: one-hot labels.
        random_state: seed.
        num_threads: torch CPU threads.
        progress_bar: show Lightning's progress bar.
        accelerator: Lightning accelerator.
    """

    def __init__(
        self,
        *,
        latent_dim: int = 8,
        hidden: int = 128,
        degree: int = 3,
        rates: tuple[float, ...] = (2.0, 5.0),
        beta: float = 1.0,
        learning_rate: float = 2e-3,
        n_steps: int = 800,
        batch_size: int = 64,
        random_roll: bool = False,
        condition_features: Mapping[int, Sequence[float]] | None = None,
        random_state: int | None = 0,
        num_threads: int = 1,
        progress_bar: bool = False,
        accelerator: str = "cpu",
    ) -> None:
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.degree = degree
        self.rates = rates
        self.beta = beta
        self.learning_rate = learning_rate
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.random_roll = random_roll
        self.condition_features = condition_features
        self.random_state = random_state
        self.num_threads = num_threads
        self.progress_bar = progress_bar
        self.accelerator = accelerator

    def _build_net(self, n_channels: int, length: int, cond: NDArray[np.float32]) -> TrendVAEModule:
        return TrendVAEModule(
            n_channels,
            length,
            cond,
            latent_dim=int(self.latent_dim),
            hidden=int(self.hidden),
            degree=int(self.degree),
            rates=tuple(float(r) for r in self.rates),
            beta=float(self.beta),
            learning_rate=float(self.learning_rate),
        )

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        """Tiny and quick."""
        return [{"latent_dim": 2, "hidden": 8, "n_steps": 3, "batch_size": 8}]
