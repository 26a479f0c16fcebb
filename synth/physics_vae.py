"""Physics-informed conditional VAE: the decoder sets the parameters of a bearing-fault impulse model."""

# ruff: noqa: N803, N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import Any

import numpy as np
import torch
from numpy.typing import ArrayLike, NDArray

from core.errors import ModelError
from synth._physics import PhysicsVAEModule
from synth._torch_generator import TorchGenerator
from synth.features import envelope_spectra, matched_line_prominence, peak_frequency

__all__ = ["PhysicsVAE"]


class PhysicsVAE(TorchGenerator):
    """Conditional VAE whose decoder drives a differentiable bearing-fault signal model.

    ``p(x | z, c)`` is the signal model of :mod:`synth._physics`: impacts at the class's kinematic
    defect frequency (learned slip, 0-``max_slip``; learned cycle-to-cycle jitter), amplitude
    modulation at the class's modulation frequency (and at ``shaft_hz``), ``n_modes`` learned
    decaying resonances, plus Gaussian background noise with a learned amplitude spectrum; after
    training, a per-class equaliser matches each class's band power to its training windows'. The encoder ``q(z | x, c)`` and
    the reconstruction term work on phase-invariant descriptors (power spectra, envelope spectrum,
    impulsiveness), since impact times are random.

    Args:
        kinematics: label -> ``(defect_hz, modulation_hz)``; labels without an entry (healthy) get no
            impacts. See :func:`synth.cwru_kinematics`.
        fs: sample rate in Hz.
        latent_dim: size of ``z``.
        hidden: width of the encoder / decoder MLPs.
        n_modes: structural resonances per impact (fixed frequency grid; weights and damping learned).
        n_bands: log gains of the background spectrum.
        beta: KL weight after annealing.
        warmup: fraction of training over which the KL weight rises from 0.
        learning_rate: Adam step size.
        env_band: band (Hz) of the envelope descriptors.
        max_slip: bound of the learned relative deviation from the kinematic defect frequency.
        max_jitter: bound of the learned cycle-to-cycle period jitter (relative standard deviation).
            Both bounds are tight on purpose: the measured CWRU defect lines sit within 0.35 % of the
            kinematic frequencies, and with looser bounds (1 %, 3 %) training pushed slip and jitter
            to the bounds, smearing the line (OR007 envelope line at half the real prominence, so the
            quality gate rejected the samples; at 0.5 % / 1 % it passed, k = 1, seed 3).
        measurement_snr_db: SNR (dB) of the white noise the measurement chain adds to every window,
            relative to the window's power, when it is known (the rare-failure experiment adds it at
            a set SNR): the model then learns the clean vibration and adds that noise the same way.
            ``None``: the learned background spectrum has to cover it.
        shaft_hz: shaft frequency (Hz); every fault's impacts then get a learned amplitude modulation
            at it too (run-out, unbalance); ``None``: only the class's modulation frequency.
        calibration_bands: after training, each class's spectrum is equalised to the mean band
            power of its training windows in this many linear bands (see
            :meth:`synth._physics.PhysicsVAEModule.calibrate_spectrum`); 0 switches it off.
        line_calibration: after the equaliser, set each fault class's impact level so that its
            envelope line at the defect frequency is as prominent as in its training windows
            (both read off mean envelope spectra of as many windows, as the quality gate does);
            classes whose training windows show no line keep the trained level.
        n_steps: training batches.
        batch_size: windows per batch (class-balanced).
        random_roll: random circular shifts of training windows.
        condition_features: label -> condition vector; ``None``: one-hot labels.
        random_state: seed of initialisation, batches and the synthesiser's noise during training.
        num_threads: torch CPU threads.
        progress_bar: show Lightning's progress bar.
        accelerator: Lightning accelerator.
    """

    net_: PhysicsVAEModule  # set by fit (the module that _build_net makes)

    def __init__(
        self,
        *,
        kinematics: Mapping[int, Sequence[float]] | None = None,
        fs: float = 12_000.0,
        latent_dim: int = 8,
        hidden: int = 128,
        n_modes: int = 24,
        n_bands: int = 64,
        beta: float = 0.05,
        warmup: float = 0.3,
        learning_rate: float = 3e-3,
        env_band: tuple[float, float] = (2000.0, 5500.0),
        max_slip: float = 0.005,
        max_jitter: float = 0.01,
        measurement_snr_db: float | None = None,
        shaft_hz: float | None = None,
        calibration_bands: int = 32,
        line_calibration: bool = True,
        n_steps: int = 400,
        batch_size: int = 32,
        random_roll: bool = True,
        condition_features: Mapping[int, Sequence[float]] | None = None,
        random_state: int | None = 0,
        num_threads: int = 1,
        progress_bar: bool = False,
        accelerator: str = "cpu",
    ) -> None:
        self.kinematics = kinematics
        self.fs = fs
        self.latent_dim = latent_dim
        self.hidden = hidden
        self.n_modes = n_modes
        self.n_bands = n_bands
        self.beta = beta
        self.warmup = warmup
        self.learning_rate = learning_rate
        self.env_band = env_band
        self.max_slip = max_slip
        self.max_jitter = max_jitter
        self.measurement_snr_db = measurement_snr_db
        self.shaft_hz = shaft_hz
        self.calibration_bands = calibration_bands
        self.line_calibration = line_calibration
        self.n_steps = n_steps
        self.batch_size = batch_size
        self.random_roll = random_roll
        self.condition_features = condition_features
        self.random_state = random_state
        self.num_threads = num_threads
        self.progress_bar = progress_bar
        self.accelerator = accelerator

    def _kinematics_matrix(self) -> NDArray[np.float32]:
        kin = self.kinematics or {}
        return np.asarray([list(kin.get(int(c), (0.0, 0.0))) for c in self._fit_classes], dtype=np.float32)

    def _fit(self, X: NDArray[np.float32], y: NDArray[np.int64], classes: NDArray[np.int64]) -> None:
        self._fit_classes = classes
        super()._fit(X, y, classes)
        del self._fit_classes
        if int(self.calibration_bands) > 0:
            self._equalise(X, np.searchsorted(classes, y).astype(np.int64), int(self.calibration_bands))
        if self.line_calibration and self.kinematics:
            self._calibrate_lines(X, np.searchsorted(classes, y).astype(np.int64))

    #: log impact gains tried by the line calibration (x0.37 .. x7.4)
    _LINE_GAINS = (-1.0, -0.5, 0.0, 0.5, 1.0, 1.5, 2.0)

    def _calibrate_lines(self, X: NDArray[np.float32], ci: NDArray[np.int64], *, search: float = 0.15,
                         tolerance: float = 0.03, min_prominence: float = 2.0, n_synth: int = 64) -> None:
        # search / tolerance / min_prominence: the quality gate's defaults, so a line counts where the gate assesses it
        net = self.net_
        seed = 0 if self.random_state is None else int(self.random_state)
        bands = int(self.calibration_bands)
        fs = float(self.fs)
        for c in np.unique(ci).tolist():  # each fault class with a defect frequency, one at a time
            f0 = float(net.kin[c, 0])
            if f0 <= 0:
                continue
            real = X[ci == c]
            lo, hi = f0 * (1 - search), f0 * (1 + search)
            freqs, amp_r = envelope_spectra(real, fs, nfft=8192)
            f_real, p_real = peak_frequency(freqs, amp_r.mean(axis=(0, 1)), lo, hi)
            if abs(f_real / f0 - 1) > tolerance or p_real < min_prominence:
                continue  # no line in the training windows to match
            n_real = real.shape[0]
            errors, eqs = [], []
            for g in self._LINE_GAINS:
                net.imp_gain[c] = g
                if bands > 0:  # re-equalise: the impacts' level moves the class's band powers
                    net.eq[c] = 0.0
                    net.calibrate_spectrum(torch.as_tensor(real), torch.full((n_real,), c), n_bands=bands, seed=seed)
                eqs.append(net.eq[c].clone())
                w = net.generate(torch.full((n_synth,), c, dtype=torch.long), torch.Generator().manual_seed(seed + 1))
                _, amp_s = envelope_spectra(w.numpy(), fs, nfft=8192)
                errors.append(abs(np.log(matched_line_prominence(freqs, amp_s, n_real, lo, hi) / p_real)))
            best = int(np.argmin(errors))
            net.imp_gain[c] = self._LINE_GAINS[best]
            net.eq[c] = eqs[best]

    def _equalise(self, X: NDArray[np.float32], ci: NDArray[np.int64], n_bands: int) -> None:
        self.net_.eq.zero_()
        seed = 0 if self.random_state is None else int(self.random_state)
        self.net_.calibrate_spectrum(torch.as_tensor(X), torch.as_tensor(ci), n_bands=n_bands, seed=seed)

    def calibrate(self, X: ArrayLike, y: ArrayLike, *, n_bands: int | None = None) -> PhysicsVAE:
        """Equalise each class's spectrum to real windows ``X`` (labels ``y``) without retraining.

        :meth:`fit` does this with its training windows when ``calibration_bands > 0``; call it to
        redo it with other windows (the same machine's, other recordings) or another band count.
        Classes without windows in ``y`` get no correction.

        Args:
            X: ``(n, channels, length)`` windows in the units of the training data.
            y: their labels (each seen in fit).
            n_bands: equaliser bands; default ``calibration_bands`` (32 when that is 0).

        Returns:
            self
        """
        self.check_is_fitted()
        Xa = np.asarray(X, dtype=np.float32)
        Xa = Xa[:, None, :] if Xa.ndim == 2 else Xa
        if Xa.ndim != 3 or Xa.shape[1:] != (self.n_channels_, self.window_):
            raise ModelError(f"X must be (n, {self.n_channels_}, {self.window_}), got shape {Xa.shape}")
        labels = self._labels(Xa.shape[0], np.asarray(y).astype(np.int64))
        bands = int(n_bands if n_bands is not None else (self.calibration_bands or 32))
        self._equalise(Xa / self.scale_[None, :, None], np.searchsorted(self.classes_, labels).astype(np.int64), bands)
        return self

    def _build_net(self, n_channels: int, length: int, cond: NDArray[np.float32]) -> PhysicsVAEModule:
        return PhysicsVAEModule(
            n_channels,
            length,
            cond,
            self._kinematics_matrix(),
            fs=float(self.fs),
            latent_dim=int(self.latent_dim),
            hidden=int(self.hidden),
            n_modes=int(self.n_modes),
            n_bands=int(self.n_bands),
            beta=float(self.beta),
            warmup=float(self.warmup),
            n_steps=int(self.n_steps),
            learning_rate=float(self.learning_rate),
            env_band=(float(self.env_band[0]), float(self.env_band[1])),
            max_slip=float(self.max_slip),
            max_jitter=float(self.max_jitter),
            measurement_snr_db=None if self.measurement_snr_db is None else float(self.measurement_snr_db),
            shaft_hz=None if self.shaft_hz is None else float(self.shaft_hz),
        )

    @classmethod
    def get_test_params(cls) -> list[dict[str, Any]]:
        """Tiny and quick (the toy panel's 128-sample windows at 128 Hz: impacts at 9 Hz for class 1)."""
        return [
            {
                "kinematics": {1: (9.0, 0.0), 2: (17.0, 4.0)},
                "fs": 128.0,
                "env_band": (20.0, 60.0),
                "hidden": 16,
                "latent_dim": 2,
                "n_bands": 8,
                "n_steps": 3,
                "batch_size": 8,
            }
        ]
