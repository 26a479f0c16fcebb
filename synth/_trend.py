"""Lightning module of the trajectory VAE: smooth degradation trends plus white sensor noise.

Multi-sensor run-to-failure windows (C-MAPSS) are slow degradation trends under measurement noise
(Saxena et al. 2008 generated them as exponential wear of component health plus noise). The decoder
maps ``(z, condition)`` to the coefficients of a low-order basis over the window (Legendre
polynomials and an exponential ``exp(a (t - 1))`` per channel, the shape of accelerating wear), and
the observation model is Gaussian with a learned per-channel, condition-dependent noise level. The
likelihood is exact (summed over samples and channels), so this is a plain conditional VAE with a
strongly structured decoder.
"""

# ruff: noqa: N806

from __future__ import annotations

import numpy as np
import pytorch_lightning as pl
import torch
from numpy.typing import NDArray
from torch import nn

__all__ = ["TrendVAEModule"]


def _basis(length: int, degree: int, rates: tuple[float, ...]) -> torch.Tensor:
    t = np.linspace(-1.0, 1.0, length)
    polys = [np.polynomial.legendre.Legendre.basis(d)(t) for d in range(degree + 1)]
    exps = [np.exp(r * (t - 1.0)) for r in rates]
    return torch.as_tensor(np.stack(polys + exps), dtype=torch.float32)  # (n_basis, L)


class TrendVAEModule(pl.LightningModule):
    """Conditional VAE with a trend-basis decoder and Gaussian observation noise.

    Args:
        n_channels: sensors.
        length: cycles per window.
        cond: ``(n_classes, d_c)`` condition matrix.
        latent_dim: size of ``z``.
        hidden: width of the MLPs.
        degree: highest Legendre polynomial of the trend basis.
        rates: rates of the exponential basis functions (accelerating wear near the window's end).
        beta: KL weight.
        learning_rate: Adam step size.
    """

    # buffers registered in ``__init__`` (declared for the type checker: ``nn.Module.__getattr__`` is untyped)
    cond: torch.Tensor
    basis: torch.Tensor
    proj: torch.Tensor

    def __init__(
        self,
        n_channels: int,
        length: int,
        cond: NDArray[np.float32],
        *,
        latent_dim: int = 8,
        hidden: int = 128,
        degree: int = 3,
        rates: tuple[float, ...] = (2.0, 5.0),
        beta: float = 1.0,
        learning_rate: float = 2e-3,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["cond"])
        self.register_buffer("cond", torch.as_tensor(np.asarray(cond, dtype=np.float32)))
        self.register_buffer("basis", _basis(length, degree, tuple(rates)))
        d_c = int(self.cond.shape[1])
        n_b = int(self.basis.shape[0])
        self.encoder = nn.Sequential(
            nn.Linear(n_channels * n_b + n_channels + d_c, hidden), nn.LeakyReLU(0.2), nn.Linear(hidden, 2 * latent_dim)
        )
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim + d_c, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, n_channels * n_b),
        )
        self.log_sigma = nn.Sequential(nn.Linear(d_c, 32), nn.LeakyReLU(0.2), nn.Linear(32, n_channels))
        # least-squares projection onto the basis: the encoder sees the trend coefficients and the residual level
        self.register_buffer("proj", torch.linalg.pinv(self.basis.T))  # (n_b, L)

    def _summary(self, x: torch.Tensor) -> torch.Tensor:
        coef = torch.einsum("bcl,kl->bck", x, self.proj)
        resid = x - torch.einsum("bck,kl->bcl", coef, self.basis)
        return torch.cat([coef.flatten(1), torch.log(resid.pow(2).mean(-1) + 1e-6)], dim=1)

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        mu, logvar = self.encoder(torch.cat([self._summary(x), c], dim=1)).chunk(2, dim=1)
        return mu, logvar.clamp(-8.0, 8.0)

    def decode(self, z: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        C = self.hparams["n_channels"]
        coef = self.decoder(torch.cat([z, c], dim=1)).view(z.shape[0], C, -1)
        return torch.einsum("bck,kl->bcl", coef, self.basis), self.log_sigma(c).clamp(-6.0, 3.0)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, ci = batch
        c = self.cond[ci]
        mu, logvar = self.encode(x, c)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        mean, log_sigma = self.decode(z, c)
        ls = log_sigma[:, :, None]
        nll = (0.5 * ((x - mean) / torch.exp(ls)) ** 2 + ls).sum(dim=(1, 2)).mean()
        kl = -0.5 * torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=1).mean()
        loss: torch.Tensor = (nll + self.hparams["beta"] * kl) / (x.shape[1] * x.shape[2])
        self.log_dict({"nll": nll, "kl": kl}, prog_bar=True, on_step=True)
        return loss

    @torch.no_grad()
    def generate(self, ci: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        c = self.cond[ci]
        z = torch.randn(ci.shape[0], self.hparams["latent_dim"], generator=gen)
        mean, log_sigma = self.decode(z, c)
        return mean + torch.exp(log_sigma)[:, :, None] * torch.randn(mean.shape, generator=gen)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams["learning_rate"])
