"""Pure readers of the public datasets GenEdge trains on and replays: one per dataset.

Torch-free: the edge agent's replay sources, the training data modules and the generative
models all read files through these modules. Every failure is a :class:`core.errors.DatasetError`.
"""

from __future__ import annotations

from core.datasets import cmapss, cwru, dcase, femto

__all__ = ["cmapss", "cwru", "dcase", "femto"]
