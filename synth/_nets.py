"""Lightning modules (conditional VAE, conditional WGAN-GP) and the class-balanced window data module.

Both use the same 1-D convolutional trunk: three stride-4 convolutions down (``L -> L/64``) and
nearest-neighbour upsampling plus convolution up (no transposed convolutions: they leave
checkerboard tones in the spectrum, which the spectral check of the quality gate would see).
"""

# ruff: noqa: N803

from __future__ import annotations

import itertools
from typing import Any, cast

import numpy as np
import pytorch_lightning as pl
import torch
from numpy.typing import NDArray
from pytorch_lightning.core.optimizer import LightningOptimizer
from torch import nn
from torch.nn import functional as F  # noqa: N812
from torch.utils.data import DataLoader, Dataset, WeightedRandomSampler

__all__ = ["BalancedWindowDataModule", "CVAEModule", "WGANGPModule", "generate"]

DOWN = 64  # total down-sampling of the trunk


def _down_trunk(c_in: int, width: int) -> nn.Sequential:
    chans = [c_in, width, 2 * width, 4 * width]
    layers: list[nn.Module] = []
    for a, b in itertools.pairwise(chans):
        layers += [nn.Conv1d(a, b, kernel_size=9, stride=4, padding=4), nn.LeakyReLU(0.2)]
    return nn.Sequential(*layers)


class _UpTrunk(nn.Module):
    """``(latent + condition) -> (channels, L)`` by a linear layer and three x4 upsampling blocks.

    With ``noise=True`` every block adds white noise scaled per channel by learned weights after its
    convolution (noise injection, Karras et al., StyleGAN, CVPR 2019): broadband, sample-by-sample
    randomness that a decoder from a small latent vector cannot otherwise produce.
    """

    def __init__(self, d_in: int, c_out: int, width: int, length: int, norm: bool, noise: bool = False) -> None:
        super().__init__()
        self.width = width
        self.l0 = length // DOWN
        self.noise = noise
        self.fc = nn.Linear(d_in, 4 * width * self.l0)
        chans = [4 * width, 2 * width, width, width]
        self.convs = nn.ModuleList(
            nn.Sequential(nn.Upsample(scale_factor=4, mode="nearest"), nn.Conv1d(a, b, kernel_size=9, padding=4))
            for a, b in itertools.pairwise(chans))
        self.norms = nn.ModuleList(nn.BatchNorm1d(b) if norm else nn.Identity() for b in chans[1:])
        self.noise_scale = nn.ParameterList(nn.Parameter(torch.full((b, 1), 0.1)) for b in chans[1:]) if noise else None
        self.out = nn.Conv1d(width, c_out, kernel_size=9, padding=4)

    def forward(self, h: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        x = F.leaky_relu(self.fc(h), 0.2).view(h.shape[0], 4 * self.width, self.l0)
        for i, (conv, norm) in enumerate(zip(self.convs, self.norms, strict=True)):
            x = conv(x)
            if self.noise_scale is not None:
                x = x + self.noise_scale[i] * torch.randn((x.shape[0], 1, x.shape[2]), generator=gen, device=x.device)
            x = F.leaky_relu(norm(x), 0.2)
        out: torch.Tensor = self.out(x)
        return out


class CVAEModule(pl.LightningModule):
    """Conditional VAE with a Gaussian observation model of learned, condition-dependent noise level.

    The decoder gives the mean window; a small head gives a per-channel log standard deviation from
    the condition, so samples are ``mean + sigma * white noise`` (broadband sensor noise is white, and
    a plain MSE decoder would return over-smoothed, too-quiet windows).
    """

    cond: torch.Tensor  # buffer registered in ``__init__`` (declared for the type checker)

    def __init__(self, n_channels: int, length: int, cond: NDArray[np.float32], latent_dim: int = 32, width: int = 16,
                 beta: float = 1.0, learning_rate: float = 2e-3) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["cond"])
        self.register_buffer("cond", torch.as_tensor(np.asarray(cond, dtype=np.float32)))
        d_c = int(self.cond.shape[1])
        self.encoder = _down_trunk(n_channels, width)
        self.enc_fc = nn.Linear(4 * width * (length // DOWN) + d_c, 2 * latent_dim)
        self.decoder = _UpTrunk(latent_dim + d_c, n_channels, width, length, norm=False)
        self.log_sigma = nn.Sequential(nn.Linear(d_c, 16), nn.LeakyReLU(0.2), nn.Linear(16, n_channels))

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        h = self.encoder(x).flatten(1)
        mu, logvar = self.enc_fc(torch.cat([h, c], dim=1)).chunk(2, dim=1)
        return mu, logvar.clamp(-8.0, 8.0)

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        return self.decoder(torch.cat([z, c], dim=1)), self.log_sigma(c).clamp(-6.0, 3.0)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, ci = batch
        c = self.cond[ci]
        mu, logvar = self.encode(x, c)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        mean, log_sigma = self.decode(z, c)
        ls = log_sigma[:, :, None]
        nll = (0.5 * ((x - mean) / torch.exp(ls)) ** 2 + ls).mean()
        kl = -0.5 * torch.mean(torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=1)) / (x.shape[1] * x.shape[2])
        loss: torch.Tensor = nll + self.hparams["beta"] * kl
        self.log_dict({"nll": nll, "kl": kl}, prog_bar=True, on_step=True)
        return loss

    @torch.no_grad()
    def generate(self, ci: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        c = self.cond[ci]
        z = torch.randn(ci.shape[0], self.hparams["latent_dim"], generator=gen)
        mean, log_sigma = self.decode(z, c)
        eps = torch.randn(mean.shape, generator=gen)
        return mean + torch.exp(log_sigma)[:, :, None] * eps

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams["learning_rate"])


class _Critic(nn.Module):
    """Projection critic (Miyato & Koyama 2018): ``f(x) + <embed(c), phi(x)>``."""

    def __init__(self, n_channels: int, length: int, d_c: int, width: int) -> None:
        super().__init__()
        self.body = _down_trunk(n_channels, width)
        d_h = 4 * width * (length // DOWN)
        self.phi = nn.Sequential(nn.Linear(d_h, 128), nn.LeakyReLU(0.2))
        self.out = nn.Linear(128, 1)
        self.embed = nn.Linear(d_c, 128, bias=False)

    def forward(self, x: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        h = self.phi(self.body(x).flatten(1))
        score: torch.Tensor = self.out(h).squeeze(1) + (self.embed(c) * h).sum(dim=1)
        return score


class WGANGPModule(pl.LightningModule):
    """Conditional Wasserstein GAN with gradient penalty (Gulrajani et al. 2017), 1-D convolutions.

    Manual optimisation: every batch updates the critic; every ``n_critic``-th batch also the generator.
    """

    cond: torch.Tensor  # buffer registered in ``__init__`` (declared for the type checker)

    def __init__(self, n_channels: int, length: int, cond: NDArray[np.float32], latent_dim: int = 64, width: int = 16,
                 n_critic: int = 5, gp_weight: float = 10.0, learning_rate: float = 2e-4, noise_injection: bool = True) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["cond"])
        self.automatic_optimization = False
        self.register_buffer("cond", torch.as_tensor(np.asarray(cond, dtype=np.float32)))
        d_c = int(self.cond.shape[1])
        self.generator = _UpTrunk(latent_dim + d_c, n_channels, width, length, norm=True, noise=noise_injection)
        self.critic = _Critic(n_channels, length, d_c, width)

    def _fake(self, c: torch.Tensor) -> torch.Tensor:
        z = torch.randn(c.shape[0], self.hparams["latent_dim"], device=c.device)
        fake: torch.Tensor = self.generator(torch.cat([z, c], dim=1))
        return fake

    def _gradient_penalty(self, real: torch.Tensor, fake: torch.Tensor, c: torch.Tensor) -> torch.Tensor:
        a = torch.rand(real.shape[0], 1, 1, device=real.device)
        mix = (a * real + (1 - a) * fake).requires_grad_(True)
        grad = torch.autograd.grad(self.critic(mix, c).sum(), mix, create_graph=True)[0]
        penalty: torch.Tensor = ((grad.flatten(1).norm(dim=1) - 1.0) ** 2).mean()
        return penalty

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> None:
        opt_g, opt_c = cast(list[LightningOptimizer], self.optimizers())  # configure_optimizers returns two
        x, ci = batch
        c = self.cond[ci]
        fake = self._fake(c).detach()
        gp = self._gradient_penalty(x, fake, c)
        w_dist = self.critic(x, c).mean() - self.critic(fake, c).mean()
        loss_c = -w_dist + self.hparams["gp_weight"] * gp
        opt_c.zero_grad()
        self.manual_backward(loss_c)
        opt_c.step()
        self.log_dict({"w_dist": w_dist, "gp": gp}, prog_bar=True, on_step=True)
        if (batch_idx + 1) % int(self.hparams["n_critic"]) == 0:
            loss_g = -self.critic(self._fake(c), c).mean()
            opt_g.zero_grad()
            self.manual_backward(loss_g)
            opt_g.step()

    @torch.no_grad()
    def generate(self, ci: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        c = self.cond[ci]
        z = torch.randn(ci.shape[0], self.hparams["latent_dim"], generator=gen)
        windows: torch.Tensor = self.generator(torch.cat([z, c], dim=1), gen)
        return windows

    def configure_optimizers(self) -> list[torch.optim.Optimizer]:
        lr = self.hparams["learning_rate"]
        return [torch.optim.Adam(self.generator.parameters(), lr=lr, betas=(0.0, 0.9)),
                torch.optim.Adam(self.critic.parameters(), lr=lr, betas=(0.0, 0.9))]


class _Windows(Dataset[tuple[torch.Tensor, torch.Tensor]]):
    def __init__(self, X: NDArray[np.float32], ci: NDArray[np.int64]) -> None:
        self.X = torch.as_tensor(X)
        self.ci = torch.as_tensor(ci)

    def __len__(self) -> int:
        return int(self.X.shape[0])

    def __getitem__(self, i: int) -> tuple[torch.Tensor, torch.Tensor]:
        return self.X[i], self.ci[i]


class _RandomRoll:
    """Collate with a random circular shift of each window: bearing vibration is (cyclo)stationary,
    so the phase of a window carries no information, and the few fault windows are not memorised
    at one phase."""

    def __init__(self, seed: int, enabled: bool) -> None:
        self.gen = torch.Generator().manual_seed(seed)
        self.enabled = enabled

    def __call__(self, items: list[tuple[torch.Tensor, torch.Tensor]]) -> tuple[torch.Tensor, torch.Tensor]:
        x = torch.stack([a for a, _ in items])
        ci = torch.stack([b for _, b in items])
        if self.enabled:
            shifts = torch.randint(0, x.shape[-1], (x.shape[0],), generator=self.gen)
            idx = (torch.arange(x.shape[-1])[None, :] - shifts[:, None]) % x.shape[-1]
            x = torch.gather(x, 2, idx[:, None, :].expand(-1, x.shape[1], -1))
        return x, ci


class BalancedWindowDataModule(pl.LightningDataModule):
    """Class-balanced batches of (scaled) windows: each class is drawn equally often, so the few
    fault windows are seen as often as the plentiful healthy ones.

    Args:
        X: ``(n, channels, length)`` scaled windows.
        ci: class index (row of the condition matrix) of each window.
        batch_size: windows per batch.
        n_batches: batches in the (single) epoch.
        seed: seed of the sampler and of the random shifts.
        random_roll: circularly shift each window by a random offset.
    """

    def __init__(self, X: NDArray[np.float32], ci: NDArray[np.int64], *, batch_size: int, n_batches: int, seed: int,
                 random_roll: bool = True) -> None:
        super().__init__()
        self.X, self.ci = X, ci
        self.batch_size, self.n_batches, self.seed, self.random_roll = batch_size, n_batches, seed, random_roll

    def train_dataloader(self) -> DataLoader[tuple[torch.Tensor, torch.Tensor]]:
        counts = np.bincount(self.ci)
        weights = torch.as_tensor(1.0 / counts[self.ci], dtype=torch.double)
        sampler = WeightedRandomSampler(weights,  # type: ignore[arg-type]  # stub: Sequence[float]; torch.as_tensor takes a Tensor
                                        num_samples=self.batch_size * self.n_batches, replacement=True,
                                        generator=torch.Generator().manual_seed(self.seed))
        return DataLoader(_Windows(self.X, self.ci), batch_size=self.batch_size, sampler=sampler, drop_last=True,
                          collate_fn=_RandomRoll(self.seed + 1, self.random_roll))


def generate(module: Any, ci: NDArray[np.int64], seed: int, batch: int = 512) -> NDArray[np.float32]:
    """Windows from a trained module's ``generate`` in batches, deterministic given ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    module.eval()
    out = []
    with torch.inference_mode():
        for start in range(0, ci.size, batch):
            out.append(module.generate(torch.as_tensor(ci[start : start + batch]), gen).numpy())
    return np.concatenate(out).astype(np.float32)
