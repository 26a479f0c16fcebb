"""Lightning module of the physics-informed conditional VAE (bearing-fault impulse model + learned noise).

Decoder = a small network that maps ``(z, condition)`` to the parameters of a bearing-fault signal
model (McFadden & Smith, "Model for the vibration produced by a single point defect in a rolling
element bearing", J. Sound Vib. 96 (1984); Randall & Antoni, "Rolling element bearing
diagnostics - a tutorial", MSSP 25 (2011)), followed by a differentiable synthesiser:

* impacts at the kinematic defect frequency of the class (times ``1 + slip``), with a random
  cycle-to-cycle jitter of the period (the rolling elements slip: 1-2 %), a random start phase, and
  a random per-impact amplitude;
* amplitude modulation ``exp(m cos(2 pi f_mod t + phi))`` at the modulation frequency of the class
  (shaft speed for inner-race faults, cage speed for ball faults, none for outer-race faults), and,
  when the shaft speed is given, a second one at the shaft speed for every fault (run-out,
  unbalance, the load zone);
* each impact excites decaying structural resonances ``exp(-d t) sin(2 pi f_r t)`` on a fixed grid of
  ``n_modes`` frequencies, with learned weights and damping;
* plus stationary Gaussian background noise whose amplitude spectrum (``n_bands`` log gains,
  interpolated) is learned: machine vibration, sensor noise, and the added white noise;
* after training, a per-class equaliser (:meth:`PhysicsVAEModule.calibrate_spectrum`) corrects what
  the fixed grid of resonances leaves of the transfer path: it matches each class's band power
  (and level) to that of the class's training windows.

Because impact times are random, a window cannot be reconstructed sample by sample; the
reconstruction term compares phase-invariant descriptors of the input window and of a window
synthesised from its latent code: log power spectra at two resolutions, the envelope spectrum of the
resonance band (where the defect frequency lives), and impulsiveness statistics (log RMS, kurtosis,
a crest measure). The encoder sees the same descriptors. KL annealing: the KL weight rises linearly
from 0 to ``beta`` over the first ``warmup`` fraction of training.
"""

# ruff: noqa: N806

from __future__ import annotations

import itertools
import math
from typing import cast

import numpy as np
import pytorch_lightning as pl
import torch
from numpy.typing import NDArray
from torch import nn
from torch.nn import functional as F  # noqa: N812

__all__ = ["PhysicsVAEModule", "window_descriptors"]


def window_descriptors(
    x: torch.Tensor, fs: float, *, env_band: tuple[float, float], env_max_hz: float = 600.0, n_bands: int = 64
) -> dict[str, torch.Tensor]:
    """Phase-invariant descriptors of windows ``(B, C, L)``; each value is ``(B, C, d)``.

    ``psd``: log power in ``n_bands`` linear bands of the Hann periodogram; ``stft``: log mean power of a
    256-point STFT; ``env``: log envelope spectrum (Hilbert envelope of the ``env_band`` band, relative
    to the mean envelope) up to ``env_max_hz``; ``stats``: log RMS, log kurtosis, log of the 8th-order
    crest ratio ``(E x^8)^(1/8) / RMS``.
    """
    B, C, L = x.shape
    x = x - x.mean(-1, keepdim=True)
    win = torch.hann_window(L, periodic=False, dtype=x.dtype, device=x.device)
    P = torch.fft.rfft(x * win, norm="ortho").abs() ** 2  # (B, C, L//2+1)
    edges = np.linspace(1, P.shape[-1], n_bands + 1).round().astype(int)
    bands = torch.stack([P[..., a:b].mean(-1) for a, b in itertools.pairwise(edges)], dim=-1)
    psd = torch.log(bands + 1e-8)
    n_fft = min(256, L // 2)
    stft = (
        torch.stft(
            x.reshape(B * C, L),
            n_fft=n_fft,
            hop_length=n_fft // 2,
            window=torch.hann_window(n_fft, device=x.device),
            center=False,
            return_complex=True,
        ).abs()
        ** 2
    )
    stft = torch.log(stft.mean(-1) + 1e-8).reshape(B, C, -1)
    # envelope: one-sided spectrum of the band -> analytic signal -> magnitude
    X = torch.fft.fft(x, dim=-1)
    f = torch.fft.fftfreq(L, 1.0 / fs, device=x.device)
    keep = ((f >= env_band[0]) & (f <= env_band[1])).to(x.dtype)
    env = torch.fft.ifft(2.0 * X * keep, dim=-1).abs()
    env_mean = env.mean(-1, keepdim=True) + 1e-6
    e = (env - env_mean) * win
    nfft = 2 * L
    E = torch.fft.rfft(e, n=nfft).abs() * 2.0 / win.sum()
    top = int(env_max_hz * nfft / fs) + 1
    env_spec = torch.log(E[..., 1:top] / env_mean + 1e-3)
    var = x.pow(2).mean(-1) + 1e-8
    kurt = x.pow(4).mean(-1) / var**2
    crest = x.pow(8).mean(-1).pow(1.0 / 8.0) / var.sqrt()
    stats = torch.stack([0.5 * torch.log(var), torch.log(kurt), torch.log(crest)], dim=-1)
    return {"psd": psd, "stft": stft, "env": env_spec, "stats": stats}


def _flat(d: dict[str, torch.Tensor]) -> torch.Tensor:
    return torch.cat([v.flatten(1) for v in d.values()], dim=1)


class PhysicsVAEModule(pl.LightningModule):
    """Conditional VAE whose decoder drives a bearing-fault impulse model plus learned background noise.

    Args:
        n_channels: channels of the windows.
        length: samples per window.
        cond: ``(n_classes, d_c)`` condition matrix.
        kinematics: ``(n_classes, 2)`` defect frequency and modulation frequency (Hz) per class;
            defect frequency 0 means no impacts (healthy).
        fs: sample rate in Hz.
        latent_dim: size of ``z``.
        hidden: width of the encoder and decoder MLPs.
        n_modes: structural resonances excited by each impact (a fixed grid from 300 Hz to 0.95 Nyquist).
        n_bands: log gains of the background amplitude spectrum.
        beta: final KL weight.
        warmup: fraction of training over which the KL weight rises from 0 to ``beta``.
        n_steps: training batches (for the annealing schedule).
        learning_rate: Adam step size.
        env_band: band (Hz) of the envelope descriptors.
        max_slip: largest relative deviation of the mean defect frequency from the kinematic one.
        max_jitter: largest standard deviation of the relative cycle-to-cycle period jitter.
        measurement_snr_db: when set, the synthesiser's output is treated as the clean vibration and
            white noise at this SNR (relative to each window's power) is added, as the measurement
            chain adds it to the real windows; ``None``: the background noise model covers it.
        shaft_hz: shaft frequency (Hz): every fault's impacts get a learned amplitude modulation at
            it as well; ``None``: only the class's own modulation frequency.
    """

    # buffers registered in ``__init__`` (declared for the type checker: ``nn.Module.__getattr__`` is untyped)
    cond: torch.Tensor
    kin: torch.Tensor
    mode_grid: torch.Tensor
    feat_mean: torch.Tensor
    feat_std: torch.Tensor
    feat_seen: torch.Tensor
    eq: torch.Tensor
    imp_gain: torch.Tensor

    def __init__(
        self,
        n_channels: int,
        length: int,
        cond: NDArray[np.float32],
        kinematics: NDArray[np.float32],
        *,
        fs: float,
        latent_dim: int = 8,
        hidden: int = 128,
        n_modes: int = 24,
        n_bands: int = 64,
        beta: float = 0.05,
        warmup: float = 0.3,
        n_steps: int = 500,
        learning_rate: float = 3e-3,
        env_band: tuple[float, float] = (2000.0, 5500.0),
        max_slip: float = 0.005,
        max_jitter: float = 0.01,
        measurement_snr_db: float | None = None,
        shaft_hz: float | None = None,
    ) -> None:
        super().__init__()
        self.save_hyperparameters(ignore=["cond", "kinematics"])
        self.register_buffer("cond", torch.as_tensor(np.asarray(cond, dtype=np.float32)))
        self.register_buffer("kin", torch.as_tensor(np.asarray(kinematics, dtype=np.float32)))
        d_c = int(self.cond.shape[1])
        with torch.no_grad():
            desc = window_descriptors(torch.zeros(1, n_channels, length), fs, env_band=env_band)
        self.group_sizes = [int(v[0].numel()) for v in desc.values()]
        d_feat = sum(self.group_sizes)
        self.encoder = nn.Sequential(
            nn.Linear(d_feat + d_c, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, 2 * latent_dim),
        )
        self.n_out = {
            "amp": n_channels,
            "mode_amp": n_channels * n_modes,
            "mode_d": n_modes,
            "mod": 1,
            "mod_shaft": 1,
            "slip": 1,
            "jitter": 1,
            "amp_spread": 1,
            "noise": n_channels * n_bands,
        }
        self.decoder = nn.Sequential(
            nn.Linear(latent_dim + d_c, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, hidden),
            nn.LeakyReLU(0.2),
            nn.Linear(hidden, sum(self.n_out.values())),
        )
        # the descriptors of real windows are standardised with running statistics of the real data
        self.register_buffer("mode_grid", torch.linspace(300.0, 0.95 * fs / 2, n_modes)[None, :])
        self.register_buffer("feat_mean", torch.zeros(d_feat))
        self.register_buffer("feat_std", torch.ones(d_feat))
        self.register_buffer("feat_seen", torch.zeros(()))
        # per-class log amplitude gain of the vibration spectrum, set after training by
        # :meth:`calibrate_spectrum` (zero: the decoder's spectrum as it is)
        self.register_buffer("eq", torch.zeros(int(self.cond.shape[0]), n_channels, length // 2 + 1))
        # per-class log gain of the impacts relative to the background (0: as trained)
        self.register_buffer("imp_gain", torch.zeros(int(self.cond.shape[0])))

    # ------------------------------------------------------------------ decoder -> signal
    def _params(self, z: torch.Tensor, c: torch.Tensor) -> dict[str, torch.Tensor]:
        raw = self.decoder(torch.cat([z, c], dim=1))
        parts = dict(zip(self.n_out, torch.split(raw, list(self.n_out.values()), dim=1), strict=True))
        hp = self.hparams
        C = hp["n_channels"]
        return {
            "amp": torch.exp((parts["amp"] + 1.5).clamp(-12, 5)),  # (B, C); starts at impacts ~ background level
            "mode_amp": torch.softmax(parts["mode_amp"].view(-1, C, hp["n_modes"]), dim=-1),
            # a fixed grid of resonances (a modal expansion): only their weights and damping are learned,
            # which keeps the spectral fit well posed (gradient descent on oscillator frequencies is not)
            "mode_f": self.mode_grid.expand(z.shape[0], -1),
            "mode_d": torch.exp(math.log(150.0) + (math.log(5000.0) - math.log(150.0)) * torch.sigmoid(parts["mode_d"])),
            "mod": 1.5 * torch.sigmoid(parts["mod"].squeeze(1) - 1.0),
            "mod_shaft": 1.5 * torch.sigmoid(parts["mod_shaft"].squeeze(1) - 2.0),
            "slip": hp["max_slip"] * torch.tanh(parts["slip"].squeeze(1)),
            "jitter": hp["max_jitter"] * torch.sigmoid(parts["jitter"].squeeze(1)),
            "amp_spread": 0.6 * torch.sigmoid(parts["amp_spread"].squeeze(1)),
            "noise": parts["noise"].view(-1, C, hp["n_bands"]).clamp(-12, 6),
        }

    def synthesise(self, p: dict[str, torch.Tensor], ci: torch.Tensor, gen: torch.Generator | None = None) -> torch.Tensor:
        """Windows ``(B, C, L)`` from decoder parameters; all randomness drawn from ``gen``."""
        hp = self.hparams
        B, C, L, fs = ci.shape[0], hp["n_channels"], hp["length"], hp["fs"]
        dev = self.cond.device

        def rand(*shape: int) -> torch.Tensor:
            return torch.rand(*shape, generator=gen, device=dev)

        def randn(*shape: int) -> torch.Tensor:
            return torch.randn(*shape, generator=gen, device=dev)

        f_def = self.kin[ci, 0]
        f_mod = self.kin[ci, 1]
        has = (f_def > 0).float()
        f_eff = torch.where(f_def > 0, f_def, torch.full_like(f_def, 100.0)) * (1 + p["slip"])
        period = 1.0 / f_eff  # (B,)
        dur = L / fs
        n_imp = math.ceil(dur * float(f_eff.max().detach()) * 1.1) + 2
        steps = period[:, None] * (1 + p["jitter"][:, None] * randn(B, n_imp)).clamp(min=0.5)
        t_imp = period[:, None] * rand(B, 1) + torch.cumsum(steps, dim=1) - steps[:, :1]  # (B, N), random phase
        phi = 2 * math.pi * rand(B)
        log_a = p["mod"][:, None] * torch.cos(2 * math.pi * f_mod[:, None] * t_imp + phi[:, None])
        if hp["shaft_hz"]:  # run-out, unbalance and the load zone modulate every fault's impacts at the shaft rate
            phi_s = 2 * math.pi * rand(B)
            log_a = log_a + p["mod_shaft"][:, None] * torch.cos(2 * math.pi * hp["shaft_hz"] * t_imp + phi_s[:, None])
        a_imp = torch.exp(log_a + p["amp_spread"][:, None] * randn(B, n_imp))
        a_imp = a_imp * (t_imp < dur).float()  # impacts past the window's end do not exist
        # synthesis in the frequency domain (circular, like a stationary signal): the impact train's
        # spectrum times the resonances' transfer function w_r / ((d + j w)^2 + w_r^2)
        n_bins = L // 2 + 1
        w = 2 * math.pi * torch.fft.rfftfreq(L, 1.0 / fs).to(dev)  # (F,)
        train = (a_imp[:, :, None] * torch.exp(torch.complex(torch.zeros_like(t_imp), -t_imp)[:, :, None] * w)).sum(1)
        w_r = 2 * math.pi * p["mode_f"]  # (B, K)
        d = p["mode_d"]
        s = torch.complex(d[:, :, None].expand(-1, -1, n_bins), w[None, None, :].expand(B, w_r.shape[1], -1))
        H = w_r[:, :, None] / (s**2 + (w_r**2)[:, :, None]) * fs / math.sqrt(L)  # (B, K, F), "ortho" scaling
        Hc = torch.einsum("bck,bkf->bcf", p["mode_amp"].to(H.dtype), H)  # (B, C, F)
        # imp_gain: the per-class impact level set after training by PhysicsVAE's line calibration
        impacts = Hc * train[:, None, :] * (p["amp"] * (has * torch.exp(self.imp_gain[ci]))[:, None])[:, :, None]
        # background: Gaussian noise shaped by the learned amplitude spectrum
        gains = F.interpolate(p["noise"], size=n_bins, mode="linear", align_corners=True)
        noise = torch.exp(gains) * torch.complex(randn(B, C, n_bins), randn(B, C, n_bins)) / math.sqrt(2.0)
        clean: torch.Tensor = torch.fft.irfft((impacts + noise) * torch.exp(self.eq[ci]), n=L, norm="ortho")
        snr = hp["measurement_snr_db"]
        if snr is None:
            return clean
        # the known measurement chain: white noise at the given SNR relative to each window's power,
        # exactly as the real windows got it (synthetic and real windows are then compared alike)
        power = clean.pow(2).mean(-1, keepdim=True)
        return clean + torch.sqrt(power / 10.0 ** (snr / 10.0)) * randn(B, C, L)

    # ------------------------------------------------------------------ VAE
    @torch.no_grad()
    def _init_background(self, x: torch.Tensor) -> None:
        """Start the background spectrum at half the mean power spectrum of real windows (data-dependent init)."""
        hp = self.hparams
        P = torch.fft.rfft(x - x.mean(-1, keepdim=True), norm="ortho").abs().pow(2).mean(0)  # (C, F)
        edges = np.linspace(0, P.shape[-1], hp["n_bands"] + 1).round().astype(int)
        bands = torch.stack([P[:, a:b].mean(-1) for a, b in itertools.pairwise(edges)], dim=-1)
        names = list(self.n_out)
        start = sum(self.n_out[k] for k in names[: names.index("noise")])
        last = cast(nn.Linear, self.decoder[-1])  # the decoder ends with its output layer
        snr = hp["measurement_snr_db"]
        clean = 1.0 if snr is None else 1.0 / (1.0 + 10.0 ** (-snr / 10.0))  # share of the power before the added noise
        last.bias[start : start + self.n_out["noise"]] = (0.5 * torch.log(0.5 * clean * bands + 1e-8)).flatten()

    def _descriptors(self, x: torch.Tensor) -> torch.Tensor:
        hp = self.hparams
        return _flat(window_descriptors(x, hp["fs"], env_band=tuple(hp["env_band"])))

    def _standardise(self, f: torch.Tensor) -> torch.Tensor:
        return (f - self.feat_mean) / self.feat_std

    def encode(self, x: torch.Tensor, c: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        f = self._standardise(self._descriptors(x))
        mu, logvar = self.encoder(torch.cat([f, c], dim=1)).chunk(2, dim=1)
        return mu, logvar.clamp(-8.0, 8.0)

    def training_step(self, batch: tuple[torch.Tensor, torch.Tensor], batch_idx: int) -> torch.Tensor:
        x, ci = batch
        c = self.cond[ci]
        with torch.no_grad():
            f_real = self._descriptors(x)
            if self.feat_seen < 1:  # standardise descriptors with the statistics of the first real batch
                self.feat_mean.copy_(f_real.mean(0))
                self.feat_std.copy_(f_real.std(0) + 0.1)
                self._init_background(x)
            self.feat_seen += 1
        mu, logvar = self.encoder(torch.cat([self._standardise(f_real), c], dim=1)).chunk(2, dim=1)
        logvar = logvar.clamp(-8.0, 8.0)
        z = mu + torch.randn_like(mu) * torch.exp(0.5 * logvar)
        x_hat = self.synthesise(self._params(z, c), ci)
        err = (self._standardise(self._descriptors(x_hat)) - self._standardise(f_real)) ** 2
        # every descriptor group weighs the same, whatever its size (the envelope line and the
        # impulsiveness statistics would otherwise drown in the spectral bins)
        recon = torch.stack([e.mean() for e in torch.split(err, self.group_sizes, dim=1)]).sum()
        kl = -0.5 * torch.mean(torch.sum(1 + logvar - mu**2 - logvar.exp(), dim=1))
        hp = self.hparams
        anneal = min(1.0, (self.global_step + 1) / max(1.0, hp["warmup"] * hp["n_steps"]))
        loss: torch.Tensor = recon + hp["beta"] * anneal * kl
        self.log_dict({"recon": recon, "kl": kl}, prog_bar=True, on_step=True)
        return loss

    @torch.no_grad()
    def generate(self, ci: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
        c = self.cond[ci]
        z = torch.randn(ci.shape[0], self.hparams["latent_dim"], generator=gen)
        return self.synthesise(self._params(z, c), ci, gen)

    @torch.no_grad()
    def calibrate_spectrum(
        self, x: torch.Tensor, ci: torch.Tensor, *, n_bands: int = 32, n_iter: int = 4, n_synth: int = 64, seed: int = 0
    ) -> None:
        """Match each class's mean log band power to that of its real windows ``x`` (a fixed-point iteration).

        The decoder's modal resonances only approximate the transfer path from the defect to the
        sensor; this equaliser (``n_bands`` linear bands, gains interpolated across bins) corrects
        what is left. It acts on the vibration before the measurement noise, which scales with the
        vibration's power, so a few iterations are needed. Classes without real windows keep gain 0.
        """
        L = self.hparams["length"]
        n_bins = L // 2 + 1
        edges = np.linspace(1, n_bins, n_bands + 1).round().astype(int)
        centres = torch.as_tensor(0.5 * (edges[:-1] + edges[1:] - 1), dtype=torch.float32)
        bins = torch.arange(n_bins, dtype=torch.float32)

        def band_log_power(w: torch.Tensor) -> torch.Tensor:  # (n, C, L) -> (C, n_bands)
            P = torch.fft.rfft(w - w.mean(-1, keepdim=True), norm="ortho").abs().pow(2)
            return torch.stack([torch.log(P[..., a:b].mean(-1) + 1e-12) for a, b in itertools.pairwise(edges)], -1).mean(0)

        def log_power(w: torch.Tensor) -> torch.Tensor:  # (n, C, L) -> (C,)
            return torch.log((w - w.mean(-1, keepdim=True)).pow(2).mean(-1) + 1e-12).mean(0)

        for c in torch.unique(ci).tolist():
            real = x[ci == c]
            target = band_log_power(real)
            for i in range(n_iter + 1):
                w = self.generate(torch.full((n_synth,), c, dtype=torch.long), torch.Generator().manual_seed(seed))
                if i == n_iter:  # last: the level (a band-wise mean of logs is not the log of the total power)
                    self.eq[c] += 0.5 * (log_power(real) - log_power(w))[:, None]
                    break
                delta = target - band_log_power(w)
                # piecewise-linear in frequency between band centres; half: power -> amplitude
                interp = torch.stack([torch.as_tensor(np.interp(bins, centres, d)) for d in delta.numpy()])
                self.eq[c] += 0.5 * interp.to(self.eq.dtype)

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.Adam(self.parameters(), lr=self.hparams["learning_rate"])
