"""Generative models of sensor windows and the quality gate.

Generators: a physics-informed conditional VAE of bearing vibration (:class:`PhysicsVAE`), a
conditional VAE of multi-sensor degradation trajectories (:class:`TrendVAE`), and generic
convolutional ones (:class:`ConditionalVAE`, :class:`ConditionalWGAN`).

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
    cwru_kinematics,
    few_shot,
    load_cwru,
)
from synth.augment import ClassicalAugmenter
from synth.base import BaseGenerator
from synth.classifiers import FeatureClassifier, MiniRocketClassifier
from synth.factory import GENERATORS, make_generator
from synth.features import classical_features, envelope_spectra, peak_frequency
from synth.gan import ConditionalWGAN
from synth.gaps import fill_gaps
from synth.physics_vae import PhysicsVAE
from synth.quality import QualityGate, QualityReport, mmd_rbf
from synth.trend_vae import TrendVAE
from synth.vae import ConditionalVAE

__all__ = [
    "CWRU_CLASSES",
    "CWRU_FS",
    "CWRU_SHAFT_HZ",
    "GENERATORS",
    "BaseGenerator",
    "CWRUData",
    "ClassicalAugmenter",
    "ConditionalVAE",
    "ConditionalWGAN",
    "FeatureClassifier",
    "MiniRocketClassifier",
    "PhysicsVAE",
    "QualityGate",
    "QualityReport",
    "TrendVAE",
    "add_white_noise",
    "classical_features",
    "cwru_condition_features",
    "cwru_defect_frequencies",
    "cwru_kinematics",
    "envelope_spectra",
    "few_shot",
    "fill_gaps",
    "load_cwru",
    "make_generator",
    "mmd_rbf",
    "peak_frequency",
]
