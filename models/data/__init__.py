"""Lightning data modules for RUL datasets (C-MAPSS now; FEMTO and the simulator later)."""

from models.data.arrays import ArrayDataModule
from models.data.cmapss import (
    SUBSETS,
    CMAPSSDataModule,
    data_hash,
    fit_normalizer,
    load_cmapss,
    load_rul_truth,
)

__all__ = [
    "SUBSETS",
    "ArrayDataModule",
    "CMAPSSDataModule",
    "data_hash",
    "fit_normalizer",
    "load_cmapss",
    "load_rul_truth",
]
