"""Generators by name, configured for CWRU bearing windows (the CLI's and the rare-failure benchmark's)."""

from __future__ import annotations

import numpy as np

from core.errors import ModelError
from synth._data import CWRU_SHAFT_HZ, cwru_condition_features, cwru_kinematics
from synth.base import BaseGenerator
from synth.gan import ConditionalWGAN
from synth.physics_vae import PhysicsVAE
from synth.vae import ConditionalVAE

__all__ = ["GENERATORS", "make_generator"]

#: the names :func:`make_generator` knows
GENERATORS = ("physics_vae", "vae", "gan")


def make_generator(name: str, *, seed: int, snr: float | None, steps: dict[str, int]) -> BaseGenerator:
    """Generator ``name`` (one of :data:`GENERATORS`) configured for CWRU windows, unfitted.

    The physics-informed VAE gets the SKF 6205 kinematics and, when ``snr`` (dB) is set, the known
    measurement noise; ``steps`` maps generator names to training batches.

    Raises:
        ModelError: ``name`` is not one of :data:`GENERATORS`.
    """
    cond = cwru_condition_features()
    if name == "physics_vae":
        # fault type + severity, plus the label itself: severities of one fault type do not order
        # the signals (OR014 is far quieter than OR007 and OR021)
        onehot = {c: (*v, *np.eye(len(cond))[c]) for c, v in cond.items()}
        return PhysicsVAE(
            kinematics=cwru_kinematics(),
            condition_features=onehot,
            n_steps=steps[name],
            measurement_snr_db=snr,
            shaft_hz=CWRU_SHAFT_HZ,
            random_state=seed,
        )
    if name == "vae":
        return ConditionalVAE(condition_features=cond, n_steps=steps[name], random_state=seed)
    if name == "gan":
        return ConditionalWGAN(condition_features=cond, n_steps=steps[name], random_state=seed)
    raise ModelError(f"generator must be one of {GENERATORS}, got {name!r}")
