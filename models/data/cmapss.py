"""NASA C-MAPSS turbofan data: loaders and the Lightning data module.

Standard protocol (Saxena et al. 2008; Heimes 2008; Zheng et al. 2017):

* target: remaining useful life capped at ``rul_cap`` (125 cycles, piece-wise linear);
* constant sensors dropped, per-operating-condition z-score normalisation (conditions found
  by KMeans on the three operating settings: 6 for FD002/FD004, 1 for FD001/FD003);
* sliding windows over each unit, short histories left-padded with their first cycle;
* validation split *by unit*; each validation trajectory is truncated at random points so
  validation looks like the test set (one prediction at the last cycle of the cut);
* test: the last window of each unit of ``test_FD00X.txt``; truth, where present, from
  ``RUL_FD00X.txt`` (one line per unit, not capped).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from sklearn.cluster import KMeans
from torch.utils.data import DataLoader

from core.datasets.cmapss import (
    DEFAULT_CONDITIONS,
    SENSOR_COLUMNS,
    SETTING_COLUMNS,
    check_subset,
    load_cmapss,
    load_rul_truth,
)
from core.errors import ModelError
from core.inference.preprocess import (
    ConditionNormalizer,
    last_window,
    sliding_windows,
)
from models.data.arrays import WindowDataModule

__all__ = ["CMAPSSDataModule", "fit_normalizer"]


def fit_normalizer(
    df: pd.DataFrame,
    n_conditions: int,
    *,
    constant_tol: float = 0.01,
    seed: int = 0,
    condition_onehot: bool = False,
    age_scale: float | None = None,
) -> ConditionNormalizer:
    """Fit per-condition normalisation on training rows.

    Args:
        df: training rows (columns :data:`COLUMNS`).
        n_conditions: operating conditions to find with KMeans on the settings.
        constant_tol: sensors whose within-condition standard deviation stays below this in
            every condition carry no information and are dropped.
        seed: KMeans seed.
        condition_onehot: append one-hot operating-condition channels (see
            :class:`~core.inference.preprocess.ConditionNormalizer`).
        age_scale: append the age channel, cycle / ``age_scale`` (same place).

    Returns:
        The fitted :class:`~core.inference.preprocess.ConditionNormalizer`.
    """
    settings = df[SETTING_COLUMNS].to_numpy(np.float64)
    sensors = df[SENSOR_COLUMNS].to_numpy(np.float64)
    if n_conditions == 1:
        centroids = settings.mean(axis=0, keepdims=True)
        labels = np.zeros(len(df), dtype=np.int64)
    else:
        km = KMeans(n_clusters=n_conditions, n_init=10, random_state=seed).fit(settings)
        # order conditions deterministically so cards do not depend on KMeans' label order
        order = np.lexsort(km.cluster_centers_.T[::-1])
        centroids = km.cluster_centers_[order]
        labels = np.argsort(order)[km.labels_]
    std = np.stack([sensors[labels == c].std(axis=0) for c in range(n_conditions)])
    keep = np.flatnonzero((std >= constant_tol).any(axis=0))
    if keep.size == 0:
        raise ModelError("all sensors are constant within conditions; nothing to learn from")
    mean = np.stack([sensors[labels == c][:, keep].mean(axis=0) for c in range(n_conditions)])
    std_keep = np.maximum(std[:, keep], 1e-6)
    return ConditionNormalizer(
        centroids=centroids,
        sensor_index=keep,
        mean=mean,
        std=std_keep,
        condition_onehot=condition_onehot,
        age_scale=age_scale,
    )


#: cycles per unit of the age channel (C-MAPSS engines run 128-543 cycles, so the age stays near 0-3)
AGE_SCALE = 200.0
#: unit id offset of the i-th extra training subset (C-MAPSS units are numbered below 1000)
_EXTRA_UNIT_OFFSET = 1000
#: largest distance (settings units: altitude in kft, Mach, TRA) from a pooled row to its condition
_CONDITION_TOL = 1.0


class CMAPSSDataModule(WindowDataModule):
    """C-MAPSS subset as sliding windows, with a by-unit, test-like validation split.

    After :meth:`setup`, the arrays are available in sktime ``numpy3D`` layout
    ``(n_instances, n_channels, window)``: ``X_train``/``y_train`` (every window of every
    training unit), ``X_val``/``y_val`` (``n_val_cuts`` random truncations of each validation
    unit, one window at the last cycle of each cut; used for early stopping and conformal
    calibration), and, when ``test_{subset}.txt`` exists, ``X_test`` (last window of each test
    unit) with ``y_test`` (capped truth) if ``RUL_{subset}.txt`` is present too.

    Args:
        data_dir: directory with ``train_FD00X.txt`` (and optionally test / RUL files).
        subset: ``"FD001"`` .. ``"FD004"``.
        window: window length in cycles.
        rul_cap: cap of the piece-wise linear RUL target.
        val_fraction: fraction of training units held out for validation.
        n_val_cuts: random truncations per validation unit.
        val_max_rul: largest RUL at which a validation trajectory is cut (the test set's
            truths go up to ~145 for FD001/FD003 and ~195 for FD002/FD004).
        min_cut_length: shortest truncated validation history, in cycles.
        n_conditions: operating conditions; ``None`` for the subset's default (1 or 6).
        constant_tol: see :func:`fit_normalizer`.
        batch_size: batch size of the data loaders.
        seed: seed of the unit split, the truncations and KMeans.
        max_train_units: keep only this many training units (fast tests); ``None`` keeps all.
        train_stride: keep every ``train_stride``-th training window (counted back from each
            unit's failure); 2 halves epoch time on the large FD002/FD004 at little cost since
            neighbouring windows overlap almost entirely.
        condition_onehot: add one 0/1 channel per operating condition after the sensors (see
            :class:`~core.inference.preprocess.ConditionNormalizer`); it only says something where
            there is more than one condition (FD002/FD004).
        extra_train_subsets: other subsets whose units (all of them) are added to the training
            set: FD002 and FD004 run in the same six operating conditions, FD001 and FD003 in
            the same one, which is also one of the six (sea level), so FD001/FD003 units can
            join FD002/FD004 (not the other way). Validation cuts come from ``subset`` only,
            so they stay comparable.
        n_folds: cross-fitting: split the units into this many by-unit folds (``val_fraction`` is
            then unused) and hold out fold ``fold`` as the validation set; the K networks of one
            cross-fit (see :func:`models.pipeline.train_cmapss`) are averaged into one model, so the
            normaliser is fitted on every unit (settings and sensors only, never the RUL), the same
            for all K folds.
        fold: which of the ``n_folds`` folds is held out (``0 .. n_folds - 1``).
        val_units: name the validation units instead of drawing them (``val_fraction`` is then
            unused; not with ``n_folds``): the split recipe replicated with another group held
            out, e.g. to give every training unit an error from a model that never trained on it.
        holdout_units: units of ``subset`` kept out of everything (training, validation, the
            normaliser) before the split, for a nested evaluation: score the trained model on them
            afterwards (e.g. a cross-fit against a split ensemble on the same untouched units).
        age_channel: add the engine's age (its cycle number / :data:`AGE_SCALE`) as the last
            channel. A window shows the last ``window`` cycles only; how long the engine has run
            is a strong prior on how long it has left (lives run 128-543 cycles), and it is known
            wherever the rows are: the test files' ``cycle`` column counts from each engine's
            start, as the training files' do.
    """

    def __init__(
        self,
        data_dir: str | Path,
        subset: str = "FD001",
        *,
        window: int = 30,
        rul_cap: int = 125,
        val_fraction: float = 0.2,
        n_val_cuts: int = 5,
        val_max_rul: int = 150,
        min_cut_length: int = 20,
        n_conditions: int | None = None,
        constant_tol: float = 0.01,
        batch_size: int = 256,
        seed: int = 42,
        max_train_units: int | None = None,
        train_stride: int = 1,
        condition_onehot: bool = False,
        extra_train_subsets: tuple[str, ...] | list[str] = (),
        n_folds: int | None = None,
        fold: int = 0,
        holdout_units: tuple[int, ...] | list[int] = (),
        age_channel: bool = False,
        val_units: tuple[int, ...] | list[int] | None = None,
    ) -> None:
        super().__init__()
        self.data_dir = Path(data_dir)
        self.subset = check_subset(subset)
        if window < 1:
            raise ModelError(f"window must be >= 1, got {window}")
        if not 0.0 < val_fraction < 1.0:
            raise ModelError(f"val_fraction must be in (0, 1), got {val_fraction}")
        self.window = window
        self.rul_cap = rul_cap
        self.val_fraction = val_fraction
        self.n_val_cuts = n_val_cuts
        self.val_max_rul = val_max_rul
        self.min_cut_length = min_cut_length
        self.n_conditions = n_conditions or DEFAULT_CONDITIONS[subset]
        self.constant_tol = constant_tol
        self.batch_size = batch_size
        self.seed = seed
        self.max_train_units = max_train_units
        if train_stride < 1:
            raise ModelError(f"train_stride must be >= 1, got {train_stride}")
        self.train_stride = train_stride
        self.condition_onehot = condition_onehot
        self.extra_train_subsets = tuple(check_subset(x) for x in extra_train_subsets)
        for extra in self.extra_train_subsets:
            if extra == self.subset:
                raise ModelError(f"extra_train_subsets must not name the subset itself ({extra})")
            # a one-condition subset (FD001/FD003: sea level) is one of the six conditions of
            # FD002/FD004, so its units can join them; six-condition units cannot join a
            # one-condition subset (its normaliser knows one condition)
            if DEFAULT_CONDITIONS[extra] > self.n_conditions:
                raise ModelError(
                    f"{extra} runs in {DEFAULT_CONDITIONS[extra]} operating condition(s), {self.subset} in "
                    f"{self.n_conditions}: they cannot share one normaliser"
                )
        if n_folds is not None and not (n_folds >= 2 and 0 <= fold < n_folds):
            raise ModelError(f"n_folds must be >= 2 and fold in 0 .. n_folds - 1, got n_folds={n_folds}, fold={fold}")
        self.n_folds = n_folds
        self.fold = fold
        self.holdout_units = tuple(int(u) for u in holdout_units)
        if val_units is not None and (n_folds is not None or not val_units):
            raise ModelError("val_units names a non-empty validation group and cannot be combined with n_folds")
        self.requested_val_units = None if val_units is None else tuple(sorted(int(u) for u in val_units))
        self.age_channel = bool(age_channel)
        self.normalizer: ConditionNormalizer | None = None

    # -- Lightning hooks ----------------------------------------------------------------------
    def prepare_data(self) -> None:
        """Check that the training files are there (nothing is downloaded)."""
        path = self.data_dir / f"train_{self.subset}.txt"
        if not path.is_file():
            raise ModelError(f"C-MAPSS file not found: expected {path}")
        for extra in self.extra_train_subsets:
            self._check_extra_file(extra)

    def setup(self, stage: str | None = None) -> None:
        """Load, split, normalise and window the data (idempotent)."""
        if self.normalizer is not None:
            return
        df = load_cmapss(self.data_dir, self.subset, "train")
        units = np.unique(df["unit"].to_numpy())
        if self.holdout_units:
            units = np.setdiff1d(units, self.holdout_units)
        rng = np.random.default_rng(self.seed)
        if self.max_train_units is not None:
            units = np.sort(rng.choice(units, size=min(self.max_train_units, units.size), replace=False))
        perm = rng.permutation(units)
        if self.n_folds is not None:
            if units.size < self.n_folds:
                raise ModelError(f"{units.size} units cannot be split into {self.n_folds} folds")
            self.fold_units = [np.sort(f) for f in np.array_split(perm, self.n_folds)]
            self.val_units = self.fold_units[self.fold]
            self.train_units = np.setdiff1d(units, self.val_units)
        elif self.requested_val_units is not None:
            unknown = sorted(set(self.requested_val_units) - set(units.tolist()))
            if unknown:
                raise ModelError(f"val_units {unknown} are not training units of {self.subset} (or are held out)")
            self.val_units = np.asarray(self.requested_val_units)
            self.train_units = np.setdiff1d(units, self.val_units)
        else:
            n_val = max(1, round(units.size * self.val_fraction))
            self.val_units = np.sort(perm[:n_val])
            self.train_units = np.sort(perm[n_val:])

        extras = []
        for i, extra in enumerate(self.extra_train_subsets, start=1):
            self._check_extra_file(extra)
            other = load_cmapss(self.data_dir, extra, "train")
            # unit ids must stay distinct: windows are cut per unit
            extras.append(other.assign(unit=other["unit"] + _EXTRA_UNIT_OFFSET * i))
        train_df = pd.concat([df[df["unit"].isin(self.train_units)], *extras], ignore_index=True)
        # a cross-fit's K networks share one normaliser: fitted on every unit of every fold
        norm_df = train_df if self.n_folds is None else pd.concat([df[df["unit"].isin(units)], *extras], ignore_index=True)
        self.normalizer = fit_normalizer(
            norm_df,
            self.n_conditions,
            constant_tol=self.constant_tol,
            seed=self.seed,
            condition_onehot=self.condition_onehot,
            age_scale=AGE_SCALE if self.age_channel else None,
        )
        if self.extra_train_subsets:
            self._check_extra_conditions(train_df)
        self.X_train, self.y_train = self._train_windows(train_df)
        self.X_val, self.y_val, self.val_cut_units = self._val_cuts(df[df["unit"].isin(self.val_units)], rng)
        self._setup_test()

    def _check_extra_file(self, extra: str) -> None:
        if not (self.data_dir / f"train_{extra}.txt").is_file():
            raise ModelError(
                f"{self.subset} trains on {extra}'s units too (extra_train_subsets), but "
                f"{self.data_dir / f'train_{extra}.txt'} is missing: put it beside train_{self.subset}.txt, or "
                f"train on {self.subset}'s own units only (extra_train_subsets=[]; genedge rul train --own-units-only)"
            )

    def _check_extra_conditions(self, train_df: pd.DataFrame) -> None:
        """Every pooled row must sit at one of the conditions found (C-MAPSS settings are discrete)."""
        assert self.normalizer is not None
        _, dist = self.normalizer.nearest(train_df[SETTING_COLUMNS].to_numpy(np.float64))
        if dist.max() > _CONDITION_TOL:
            raise ModelError(
                f"pooled training rows of {self.subset} + {', '.join(self.extra_train_subsets)} do not all sit at one of "
                f"{self.n_conditions} operating conditions (a row is {dist.max():.2f} from the nearest): "
                "they cannot share one normaliser"
            )

    def _features(self, df: pd.DataFrame) -> np.ndarray:
        assert self.normalizer is not None
        return self.normalizer.transform(
            df[SETTING_COLUMNS].to_numpy(np.float64), df[SENSOR_COLUMNS].to_numpy(np.float64), df["cycle"].to_numpy(np.float64)
        )

    def _train_windows(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        xs, ys = [], []
        for _, g in df.groupby("unit", sort=True):
            feats = self._features(g)
            n = feats.shape[0]
            ends = np.arange(n - 1, -1, -self.train_stride)[::-1]
            xs.append(sliding_windows(feats, self.window, ends))
            ys.append(np.minimum(n - 1 - ends, self.rul_cap))
        return np.concatenate(xs), np.concatenate(ys).astype(np.float32)

    def _val_cuts(self, df: pd.DataFrame, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xs, ys, us = [], [], []
        for unit, g in df.groupby("unit", sort=True):
            feats = self._features(g)
            n = feats.shape[0]
            hi = min(self.val_max_rul, n - self.min_cut_length)
            ruls = rng.integers(1, max(hi, 1) + 1, size=self.n_val_cuts)
            ends = n - 1 - ruls
            xs.append(sliding_windows(feats, self.window, ends))
            ys.append(np.minimum(ruls, self.rul_cap))
            us.append(np.full(self.n_val_cuts, unit))
        return (
            np.concatenate(xs),
            np.concatenate(ys).astype(np.float32),
            np.concatenate(us),
        )

    def _setup_test(self) -> None:
        self.X_test: np.ndarray | None = None
        self.y_test: np.ndarray | None = None
        self.y_test_uncapped: np.ndarray | None = None
        if not (self.data_dir / f"test_{self.subset}.txt").is_file():
            return
        test_df = load_cmapss(self.data_dir, self.subset, "test")
        self.X_test, self.test_units = self.last_windows(test_df)
        if (self.data_dir / f"RUL_{self.subset}.txt").is_file():
            truth = load_rul_truth(self.data_dir, self.subset)
            if truth.size != self.X_test.shape[0]:
                raise ModelError(
                    f"RUL_{self.subset}.txt has {truth.size} lines, expected one per test unit ({self.X_test.shape[0]})"
                )
            self.y_test_uncapped = truth.astype(np.float32)
            self.y_test = np.minimum(truth, self.rul_cap).astype(np.float32)

    def last_windows(self, df: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        """Return the last window of each unit in ``df`` and the unit ids (sorted)."""
        xs, units = [], []
        for unit, g in df.sort_values(["unit", "cycle"]).groupby("unit", sort=True):
            xs.append(last_window(self._features(g), self.window))
            units.append(unit)
        return np.stack(xs), np.asarray(units)

    def preprocessing_card(self) -> dict[str, Any]:
        """What the edge runtime needs to reproduce the inputs (stored in the model card)."""
        if self.normalizer is None:
            raise ModelError("call setup() before preprocessing_card()")
        return {
            "dataset": "cmapss",
            "subset": self.subset,
            "window": self.window,
            "rul_cap": self.rul_cap,
            "input_layout": "batch, channel, time",
            "normalizer": self.normalizer.to_dict(),
        }

    # -- loaders ------------------------------------------------------------------------------
    def test_dataloader(self) -> DataLoader[Any]:
        """Last window of each test unit, with capped truth when ``RUL_*.txt`` is present."""
        if self.X_test is None:
            raise ModelError(f"test_{self.subset}.txt not found in {self.data_dir}")
        return self._loader(self.X_test, self.y_test, shuffle=False)

    def predict_dataloader(self) -> DataLoader[Any]:
        """Last window of each test unit, no targets."""
        if self.X_test is None:
            raise ModelError(f"test_{self.subset}.txt not found in {self.data_dir}")
        return self._loader(self.X_test, None, shuffle=False)
