"""Conditional variational autoencoder for multichannel windows."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
from numpy.typing import NDArray

from synth._nets import CVAEModule
from synth._torch_generator import TorchGenerator

__all__ = ["ConditionalVAE"]


class ConditionalVAE(TorchGenerator):
    """Conditional VAE (Kingma & Welling 2014; Sohn et al. 2015) with 1-D convolutions.

    Encoder ``q(z | x, c)`` and decoder ``p(x | z, c)`` are conditioned on the condition vector of
    the class (fault type, severity...); the decoder's Gaussian has a learned, condition-dependent
    noise level, so samples carry broadband noise like the measurements do.

    Args:
        latent_dim: size of ``z``.
        width: channels of the first convolution (then 2x, 4x).
        beta: weight of the KL term (per sample and time step).
        learning_rate: Adam step size.
        n_steps: training batches.
        batch_size: windows per batch (class-balanced).
        random_roll: random circular shifts of training windows.
        condition_features: label -> condition vector; ``None``: one-hot labels.
        random_state: seed of initialisation and batches.
        num_threads: torch CPU threads.
        progress_bar: show Lightning's progress bar.
        accelerator: Lightning accelerator (``"cpu"``, ``"gpu"``, ``"auto"``).
    """

    net_: CVAEModule  # set by fit (the module that _build_net makes)

    def __init__(
        self,
        *,
        latent_dim: int = 32,
        width: int = 8,
        beta: float = 1.0,
        learning_rate: float = 2e-3,
        n_steps: int = 500,
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

    def _build_net(self, n_channels: int, length: int, cond: NDArray[np.float32]) -> CVAEModule:
        return CVAEModule(n_channels, length, cond, latent_dim=int(self.latent_dim), width=int(self.width),
                          beta=float(self.beta), learning_rate=float(self.learning_rate))

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        """Tiny and quick."""
        return [{"latent_dim": 4, "width": 4, "n_steps": 3, "batch_size": 8}]
