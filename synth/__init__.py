"""Generative models of sensor windows (conditional VAE, conditional WGAN-GP) and the quality gate.

Estimators follow the sktime/scikit-learn conventions (``fit(X, y)``, ``sample(n, condition,
random_state)``); training runs in a ``pl.Trainer``. Synthetic windows join training only when
:class:`~synth.quality.QualityGate` passes them.
"""

from __future__ import annotations

from synth._data import (
    CWRU_CLASSES,
    CWRU_FS,
    CWRU_SHAFT_HZ,
    CWRUData,
    add_white_noise,
    cwru_condition_features,
    cwru_defect_frequencies,
    few_shot,
    load_cwru,
)
from synth.augment import ClassicalAugmenter
from synth.base import BaseGenerator, clone
from synth.classifiers import FeatureClassifier, MiniRocketClassifier
from synth.features import classical_features, envelope_spectra, peak_frequency
from synth.gan import ConditionalWGAN
from synth.gaps import fill_gaps
from synth.quality import QualityGate, QualityReport, mmd_rbf
from synth.vae import ConditionalVAE

__all__ = [
    "CWRU_CLASSES",
    "CWRU_FS",
    "CWRU_SHAFT_HZ",
    "BaseGenerator",
    "CWRUData",
    "ClassicalAugmenter",
    "ConditionalVAE",
    "ConditionalWGAN",
    "FeatureClassifier",
    "MiniRocketClassifier",
    "QualityGate",
    "QualityReport",
    "add_white_noise",
    "classical_features",
    "clone",
    "cwru_condition_features",
    "cwru_defect_frequencies",
    "envelope_spectra",
    "few_shot",
    "fill_gaps",
    "load_cwru",
    "mmd_rbf",
    "peak_frequency",
]
