"""Conditional Wasserstein GAN with gradient penalty for multichannel windows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from synth._nets import WGANGPModule
from synth._torch_generator import TorchGenerator

__all__ = ["ConditionalWGAN"]


class ConditionalWGAN(TorchGenerator):
    """Conditional WGAN-GP (Gulrajani et al. 2017) with 1-D convolutions and a projection critic.

    Args:
        latent_dim: size of the noise vector.
        width: channels of the first critic convolution / last generator block (then 2x, 4x).
        n_critic: critic updates per generator update.
        gp_weight: weight of the gradient penalty.
        learning_rate: Adam step size (betas 0, 0.9).
        noise_injection: add learned-scale white noise in every generator block (StyleGAN-style).
        n_steps: training batches (critic updates).
        batch_size: windows per batch (class-balanced).
        random_roll: random circular shifts of training windows.
        condition_features: label -> condition vector; ``None``: one-hot labels.
        random_state: seed of initialisation and batches.
        num_threads: torch CPU threads.
        progress_bar: show Lightning's progress bar.
        accelerator: Lightning accelerator.
    """

    def __init__(
        self,
        *,
        latent_dim: int = 64,
        width: int = 8,
        n_critic: int = 3,
        gp_weight: float = 10.0,
        learning_rate: float = 2e-4,
        noise_injection: bool = True,
        n_steps: int = 800,
        batch_size: int = 32,
        random_roll: bool = True,
        condition_features: Mapping[int, Sequence[float]] | None = None,
        random_state: int | None = 0,
        num_threads: int = 1,
        progress_bar: bool = False,
        accelerator: str = "cpu",
    ) -> None:
        self.latent_dim = latent_dim
        self.width = width
        self.n_critic = n_critic
        self.gp_weight = gp_weight
        self.learning_rate = learning_rate
        self.noise_injection = noise_injection
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.random_roll = random_roll
        self.condition_features = condition_features
        self.random_state = random_state
        self.num_threads = num_threads
        self.progress_bar = progress_bar
        self.accelerator = accelerator

    def _build_net(self, n_channels: int, length: int, cond: NDArray[np.float32]) -> WGANGPModule:
        return WGANGPModule(n_channels, length, cond, latent_dim=int(self.latent_dim), width=int(self.width),
                            n_critic=int(self.n_critic), gp_weight=float(self.gp_weight),
                            learning_rate=float(self.learning_rate), noise_injection=bool(self.noise_injection))

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        """Tiny and quick."""
        return [{"latent_dim": 4, "width": 4, "n_steps": 4, "n_critic": 2, "batch_size": 8}]
