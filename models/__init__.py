"""RUL and health models: estimators, data modules, calibration, export, registry, runtime.

Public names are imported lazily so that the torch-free parts (:mod:`models.runtime`,
:mod:`models.registry`, :mod:`models.calibration`) stay importable on the edge gateway,
where neither torch nor Lightning is installed.
"""

from __future__ import annotations

import importlib
from typing import Any

__all__ = [
    "LSTMRUL",
    "BaseRULEstimator",
    "MiniRocketRUL",
    "ModelRegistry",
    "OnnxRULPredictor",
    "SplitConformal",
    "TransformerRUL",
    "load_promoted",
]

_LOCATIONS = {
    "BaseRULEstimator": "models.base",
    "LSTMRUL": "models.lstm",
    "MiniRocketRUL": "models.minirocket",
    "ModelRegistry": "models.registry",
    "OnnxRULPredictor": "models.runtime",
    "SplitConformal": "models.calibration",
    "TransformerRUL": "models.transformer",
    "load_promoted": "models.registry",
}


def __getattr__(name: str) -> Any:
    if name in _LOCATIONS:
        return getattr(importlib.import_module(_LOCATIONS[name]), name)
    raise AttributeError(f"module 'models' has no attribute {name!r}")


def __dir__() -> list[str]:
    return sorted(__all__)
