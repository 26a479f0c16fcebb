"""Lightning data modules for RUL datasets: C-MAPSS, and the plant simulator (edge feature windows)."""

from models.data.arrays import ArrayDataModule
from models.data.cmapss import (
    SUBSETS,
    CMAPSSDataModule,
    data_hash,
    fit_normalizer,
    load_cmapss,
    load_rul_truth,
)
from models.data.simulator import SimulatorDataModule

__all__ = [
    "SUBSETS",
    "ArrayDataModule",
    "CMAPSSDataModule",
    "SimulatorDataModule",
    "data_hash",
    "fit_normalizer",
    "load_cmapss",
    "load_rul_truth",
]
