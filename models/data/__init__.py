"""Lightning data modules for RUL datasets: C-MAPSS, FEMTO bearings and the plant simulator (edge feature windows).

The files themselves are read by :mod:`core.datasets`.
"""

from models.data.arrays import ArrayDataModule
from models.data.cmapss import CMAPSSDataModule, fit_normalizer
from models.data.femto import FEMTODataModule
from models.data.simulator import SimulatorDataModule

__all__ = [
    "ArrayDataModule",
    "CMAPSSDataModule",
    "FEMTODataModule",
    "SimulatorDataModule",
    "fit_normalizer",
]
