"""Plants of a federation: who owns which run-to-failure histories, and each plant's own windows.

A plant is a set of units it owns. The C-MAPSS subsets stand in for plants of different fleets:
FD001 and FD003 run in one operating condition (one and two fault modes), FD002 and FD004 in six.
:func:`cmapss_plants` divides each subset's units unevenly among several plants, as a group of
sites would hold them (one large, some small), and keeps a share of every subset out of all plants
as a common evaluation set: a small plant's own three validation units say too little to compare
methods, while units of the same fleet that no plant trained on do.

Each plant normalises its inputs with its own per-condition statistics (:class:`PlantDataModule`):
sensor offsets differ between sites (calibration, installation), the plant's normaliser removes them,
and no statistic of a plant's sensors leaves it. Only the network's weights are shared.
"""

# ruff: noqa: N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from core.datasets.cmapss import DEFAULT_CONDITIONS, SENSOR_COLUMNS, SETTING_COLUMNS, check_subset, load_cmapss
from core.errors import ModelError
from core.inference.preprocess import ConditionNormalizer
from models.data.cmapss import AGE_SCALE, CMAPSSDataModule, fit_normalizer

__all__ = ["DEFAULT_SENSORS", "Plant", "PlantDataModule", "PlantSplit", "cmapss_plants"]

#: the 14 C-MAPSS sensors that change with degradation (1-based: 2 3 4 7 8 9 11 12 13 14 15 17 20 21);
#: fixed for a federation so that every plant's windows have the same channels
DEFAULT_SENSORS: tuple[int, ...] = (2, 3, 4, 7, 8, 9, 11, 12, 13, 14, 15, 17, 20, 21)
#: plant shares of a subset's units: one large site, two smaller ones
DEFAULT_SHARES: tuple[float, ...] = (0.55, 0.30, 0.15)


@dataclass(frozen=True)
class Plant:
    """A plant (one federated client) and the run-to-failure histories it owns.

    Attributes:
        name: the plant's name (unique in a federation), e.g. ``"FD003-b"``.
        subset: the C-MAPSS subset its units come from.
        units: unit ids of ``subset`` it owns.
    """

    name: str
    subset: str
    units: tuple[int, ...]

    def node_config(self, data_dir: str | Path, seed: int = 0) -> dict[str, str | int]:
        """The Flower node configuration of this plant's client (see :func:`plant_from_node_config`)."""
        return {
            "plant": self.name,
            "subset": self.subset,
            "units": ",".join(str(u) for u in self.units),
            "data-dir": str(data_dir),
            "seed": int(seed),
        }

    @classmethod
    def from_node_config(cls, node_config: Mapping[str, Any]) -> Plant:
        """Read a plant back from its Flower node configuration."""
        try:
            units = tuple(int(u) for u in str(node_config["units"]).split(",") if u.strip())
            plant = cls(name=str(node_config["plant"]), subset=check_subset(str(node_config["subset"])), units=units)
        except KeyError as err:
            raise ModelError(f"a plant's node config needs 'plant', 'subset' and 'units'; {err.args[0]!r} is missing") from err
        except ValueError as err:
            raise ModelError(f"a plant's 'units' must be comma-separated unit ids, got {node_config['units']!r}") from err
        if not plant.units:
            raise ModelError(f"plant {plant.name!r} owns no units")
        return plant


@dataclass(frozen=True)
class PlantSplit:
    """Plants over one or more subsets, and the units of each subset that no plant owns.

    Attributes:
        plants: the plants, in order.
        eval_units: per subset, the units kept out of every plant (the common evaluation set).
    """

    plants: tuple[Plant, ...]
    eval_units: Mapping[str, tuple[int, ...]]


def cmapss_plants(
    data_dir: str | Path,
    subsets: Sequence[str] = ("FD001", "FD003"),
    *,
    shares: Sequence[float] = DEFAULT_SHARES,
    eval_fraction: float = 0.2,
    seed: int = 0,
) -> PlantSplit:
    """Divide each subset's training units unevenly among plants, keeping an evaluation share apart.

    Args:
        data_dir: directory with ``train_FD00X.txt``.
        subsets: subsets to draw plants from; the subsets of one federation must share their
            operating conditions' count (1: FD001/FD003, 6: FD002/FD004), since one network reads them all.
        shares: fraction of a subset's plant units each of its plants owns (normalised to sum to 1).
        eval_fraction: fraction of each subset's units kept out of every plant for evaluation.
        seed: seed of the random division.

    Returns:
        The plants (named ``<subset>-a``, ``-b``, ... largest first) and the evaluation units.
    """
    if not subsets:
        raise ModelError("a federation needs at least one subset")
    conditions = {DEFAULT_CONDITIONS[check_subset(s)] for s in subsets}
    if len(conditions) > 1:
        raise ModelError(
            f"subsets {list(subsets)} run in different numbers of operating conditions: one network cannot read them all"
        )
    w = np.asarray(shares, dtype=np.float64)
    if w.size < 1 or (w <= 0).any():
        raise ModelError(f"shares must be positive, got {list(shares)}")
    if not 0.0 <= eval_fraction < 1.0:
        raise ModelError(f"eval_fraction must be in [0, 1), got {eval_fraction}")
    rng = np.random.default_rng(seed)
    plants: list[Plant] = []
    eval_units: dict[str, tuple[int, ...]] = {}
    for subset in subsets:
        units = rng.permutation(np.unique(load_cmapss(data_dir, subset, "train")["unit"].to_numpy()))
        n_eval = round(units.size * eval_fraction)
        eval_units[subset] = tuple(int(u) for u in np.sort(units[:n_eval]))
        owned = units[n_eval:]
        bounds = np.round(np.cumsum(w / w.sum()) * owned.size).astype(int)
        for i, (lo, hi) in enumerate(zip(np.r_[0, bounds[:-1]], bounds, strict=True)):
            part = np.sort(owned[lo:hi])
            if part.size < 2:
                raise ModelError(f"{subset}'s plant {i} would own {part.size} unit(s): use fewer plants or larger shares")
            plants.append(Plant(name=f"{subset}-{chr(ord('a') + i)}", subset=subset, units=tuple(int(u) for u in part)))
    return PlantSplit(plants=tuple(plants), eval_units=eval_units)


class PlantDataModule(CMAPSSDataModule):
    """One plant's windows: its own units only, split by unit, normalised with its own statistics.

    The sensors are fixed for the federation (:data:`DEFAULT_SENSORS`) so that every plant's windows
    have the same channels; everything else is :class:`~models.data.cmapss.CMAPSSDataModule`'s
    protocol (test-like validation cuts, RUL cap, the engine's age as the last channel).

    Args:
        data_dir: directory with ``train_FD00X.txt``.
        plant: the plant.
        sensors: 1-based sensor numbers every plant reads.
        **kwargs: options of :class:`~models.data.cmapss.CMAPSSDataModule` (window, val_fraction,
            seed, age_channel, train_stride, ...).
    """

    def __init__(self, data_dir: str | Path, plant: Plant, *, sensors: Sequence[int] = DEFAULT_SENSORS, **kwargs: Any) -> None:
        super().__init__(data_dir, plant.subset, **kwargs)
        self.plant = plant
        bad = [s for s in sensors if not 1 <= int(s) <= len(SENSOR_COLUMNS)]
        if bad or not sensors:
            raise ModelError(f"sensors must be 1-based C-MAPSS sensor numbers (1-{len(SENSOR_COLUMNS)}), got {list(sensors)}")
        self.sensor_index = np.asarray(sorted({int(s) - 1 for s in sensors}), dtype=np.int64)

    def setup(self, stage: str | None = None) -> None:
        """Load the plant's units, split them, fit its normaliser and cut its windows (idempotent)."""
        if self.normalizer is not None:
            return
        df = load_cmapss(self.data_dir, self.subset, "train")
        missing = sorted(set(self.plant.units) - set(np.unique(df["unit"].to_numpy()).tolist()))
        if missing:
            raise ModelError(f"plant {self.plant.name!r} owns units that train_{self.subset}.txt does not have: {missing[:5]}")
        df = df[df["unit"].isin(self.plant.units)]
        units = np.asarray(sorted(self.plant.units))
        rng = np.random.default_rng(self.seed)
        perm = rng.permutation(units)
        n_val = min(max(1, round(units.size * self.val_fraction)), units.size - 1)
        self.val_units = np.sort(perm[:n_val])
        self.train_units = np.sort(perm[n_val:])
        train_df = df[df["unit"].isin(self.train_units)]
        self.normalizer = _fixed_sensor_normalizer(train_df, self.n_conditions, self.sensor_index, self.constant_tol, self.seed,
                                                   AGE_SCALE if self.age_channel else None)
        self.X_train, self.y_train = self._train_windows(train_df)
        self.X_val, self.y_val, self.val_cut_units = self._val_cuts(df[df["unit"].isin(self.val_units)], rng)
        self.X_test, self.y_test, self.y_test_uncapped = None, None, None

    def cuts_of(self, subset_units: Sequence[int], *, n_cuts: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
        """Test-like cuts of other units of the plant's subset, normalised as this plant normalises its own.

        Args:
            subset_units: unit ids of the plant's subset (e.g. the federation's evaluation units).
            n_cuts: random truncations per unit.
            seed: seed of the truncations (the same seed gives every plant the same cuts).

        Returns:
            ``(X, y)``: one window at the last cycle of each cut, and its capped RUL.
        """
        self.setup()
        df = load_cmapss(self.data_dir, self.subset, "train")
        df = df[df["unit"].isin(list(subset_units))]
        if df.empty:
            raise ModelError(f"none of the units {list(subset_units)[:5]} is in train_{self.subset}.txt")
        saved = self.n_val_cuts
        self.n_val_cuts = n_cuts
        try:
            X, y, _ = self._val_cuts(df, np.random.default_rng(seed))
        finally:
            self.n_val_cuts = saved
        return X, y


def _fixed_sensor_normalizer(
    df: pd.DataFrame, n_conditions: int, sensor_index: np.ndarray, tol: float, seed: int, age_scale: float | None
) -> ConditionNormalizer:
    """Per-condition z-scores of the federation's sensors (a sensor flat in a condition keeps std ``tol``)."""
    conditions = fit_normalizer(df, n_conditions, constant_tol=0.0, seed=seed).centroids
    n_all = len(SENSOR_COLUMNS)
    assign = ConditionNormalizer(centroids=conditions, sensor_index=np.arange(n_all),
                                 mean=np.zeros((n_conditions, n_all)), std=np.ones((n_conditions, n_all)))
    labels = assign.assign(df[SETTING_COLUMNS].to_numpy(np.float64))
    sensors = df[SENSOR_COLUMNS].to_numpy(np.float64)[:, sensor_index]
    mean = np.stack([sensors[labels == c].mean(axis=0) for c in range(n_conditions)])
    std = np.stack([np.maximum(sensors[labels == c].std(axis=0), tol) for c in range(n_conditions)])
    return ConditionNormalizer(centroids=conditions, sensor_index=sensor_index, mean=mean, std=std, age_scale=age_scale)
