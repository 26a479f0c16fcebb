"""On-edge inference, torch-free: model registry, conformal intervals, input normalisers, ONNX predictors.

The edge agent, the dashboard, the prescriber and training all load models through here;
only numpy, onnxruntime and the standard library are imported.
"""

from __future__ import annotations

from core.inference.calibration import SplitConformal
from core.inference.registry import ModelRegistry, load_promoted
from core.inference.runtime import FeatureRULPredictor, OnnxRULPredictor

__all__ = ["FeatureRULPredictor", "ModelRegistry", "OnnxRULPredictor", "SplitConformal", "load_promoted"]
