"""Lightning data modules for RUL datasets: C-MAPSS, FEMTO bearings and the plant simulator (edge feature windows)."""

from models.data.arrays import ArrayDataModule
from models.data.cmapss import (
    SUBSETS,
    CMAPSSDataModule,
    data_hash,
    fit_normalizer,
    load_cmapss,
    load_rul_truth,
)
from models.data.femto import FEMTODataModule
from models.data.simulator import SimulatorDataModule

__all__ = [
    "SUBSETS",
    "ArrayDataModule",
    "CMAPSSDataModule",
    "FEMTODataModule",
    "SimulatorDataModule",
    "data_hash",
    "fit_normalizer",
    "load_cmapss",
    "load_rul_truth",
]
