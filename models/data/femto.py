"""FEMTO/PRONOSTIA bearing run-to-failure recordings as edge feature windows (health / RUL).

Each bearing of the IEEE PHM 2012 learning set is one run to failure (the experiment stops when
the vibration passes 20 g). Every vibration snapshot (0.1 s of both axes at 25.6 kHz, one every
10 s) goes through :class:`core.signal.FeaturePipeline`, exactly as the gateway computes
it from a live bearing, and the selected features become one row; so a model trained here reads
the frames the edge agent publishes (:class:`core.inference.runtime.FeatureRULPredictor`).

Targets (``target``):

* ``"rul"``: remaining useful life in hours to the end of the run, capped at ``rul_cap`` hours;
* ``"life_pct"``: remaining life as a percentage of the bearing's whole run (100 at the start,
  0 at failure), i.e. a linear health index. The three bearings run under three operating
  conditions and last 1.4 to 7.8 h, so hours do not transfer between them; a share of life is
  the usual target on this data set (Nectoux et al. 2012).

Split *by bearing* (leave one bearing out): every window of the training bearings trains;
every window of the held-out bearing is scored (one bearing is one unit, so its whole run is the
validation trajectory, not a few cuts of it). With three bearings this is a small, hard,
cross-condition problem: the numbers in ``benchmarks/results/rul_femto.md`` say how hard.
"""

# ruff: noqa: N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np

from core.datasets.femto import bearing_archive, femto_asset, iter_femto
from core.errors import ModelError
from core.inference.preprocess import FeatureNormalizer, sliding_windows
from core.signal import ChannelWindow, FeaturePipeline
from models.data.arrays import EventRun, WindowDataModule

__all__ = [
    "FEMTO_BEARINGS",
    "FEMTO_FEATURES",
    "FEMTO_TARGETS",
    "FEMTO_UNITS",
    "BearingRun",
    "FEMTODataModule",
    "bearing_run",
]

#: The run-to-failure bearings of the shipped data set (one per operating condition).
FEMTO_BEARINGS: tuple[str, ...] = ("1_1", "2_1", "3_1")
#: What a model can be trained to predict (see the module docstring).
FEMTO_TARGETS = ("rul", "life_pct")
#: The wire unit (:data:`core.wire.RUL_UNITS`) of each target.
FEMTO_UNITS = {"rul": "h", "life_pct": "%"}

_PER_AXIS: tuple[tuple[str, str], ...] = (
    ("rms", "log"),
    ("kurtosis", "log"),
    ("crest", "none"),
    ("band_10_1000", "log"),
    ("band_1000_2000", "log"),
    ("band_2000_5000", "log"),
    ("band_5000_10000", "log"),
    ("band_10000_12800", "log"),
    ("sk_max", "log"),
    ("env_bpfo_snr", "log"),
    ("env_bpfi_snr", "log"),
    ("env_bsf_snr", "log"),
)
#: ``(channel, feature, transform)`` read from each frame: the same twelve features of both axes
#: (``acc_h``, ``acc_v``). Temperature is left out: it is logged once a minute, not with every
#: snapshot, and not for every bearing of the full data set.
FEMTO_FEATURES: tuple[tuple[str, str, str], ...] = tuple(
    (axis, name, transform) for axis in ("acc_h", "acc_v") for name, transform in _PER_AXIS
)

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class BearingRun(EventRun):
    """One bearing's run to failure (``name`` is the bearing): the event is its last snapshot."""

    @property
    def bearing(self) -> str:
        """``"1_1"`` etc."""
        return self.name

    @property
    def life_hours(self) -> float:
        """Hours from the first to the last snapshot (the time of failure)."""
        return self.event_hours

    def target(self, kind: str, rul_cap: float) -> np.ndarray:
        """The target at every snapshot: capped RUL in hours, or remaining life in percent."""
        if kind == "rul":
            return self.rul_hours(rul_cap)
        if kind == "life_pct":
            return 100.0 * (self.life_hours - self.t_hours) / max(self.life_hours, 1e-9)
        raise ModelError(f"target must be one of {FEMTO_TARGETS}, got {kind!r}")


def bearing_run(
    data_dir: str | Path,
    bearing: str,
    features: tuple[tuple[str, str, str], ...] = FEMTO_FEATURES,
    *,
    limit: int | None = None,
) -> BearingRun:
    """Read a bearing's archive and compute the edge features of every vibration snapshot.

    Args:
        data_dir: folder with the archives (or with a ``femto/`` folder holding them).
        bearing: ``"1_1"``, ``"2_1"``, ``"3_1"``.
        features: ``(channel, feature, transform)`` to keep, in model order.
        limit: read only the first snapshots (fast tests).

    Returns:
        The run; snapshots where a feature could not be computed are dropped.
    """
    asset = femto_asset(bearing)
    pipe = FeaturePipeline(asset)
    times: list[float] = []
    rows: list[list[float]] = []
    for snap in iter_femto(bearing_archive(data_dir, bearing), temperature=False, limit=limit):
        start = _EPOCH + timedelta(seconds=snap.t_s)
        frame = pipe.compute({"acc_h": ChannelWindow(start, snap.values[:, 0]), "acc_v": ChannelWindow(start, snap.values[:, 1])})
        times.append(snap.t_s / 3600.0)
        rows.append([frame.get(c, {}).get(n, math.nan) for c, n, _ in features])
    if not rows:
        raise ModelError(f"FEMTO bearing {bearing}: no vibration snapshots in its archive")
    t, raw = np.asarray(times), np.asarray(rows, dtype=np.float64)
    keep = np.isfinite(raw).all(axis=1)
    if keep.sum() < 2:
        raise ModelError(f"FEMTO bearing {bearing}: fewer than two snapshots with every feature")
    t_run = t[keep] - t[keep][0]
    return BearingRun(bearing, t_run, raw[keep], float(t_run[-1]))


class FEMTODataModule(WindowDataModule):
    """Windows of edge feature frames of FEMTO bearings; one bearing held out for validation.

    After :meth:`setup`: ``X_train`` ``(n, n_features, window)`` float32 and ``y_train`` (every
    ``train_stride``-th window of every training bearing), ``X_val`` / ``y_val`` (every window of
    the held-out bearing, in time order) with ``val_t_hours``; ``runs`` holds each bearing's
    :class:`BearingRun`.

    Args:
        data_dir: folder with the ``Learning_set_BearingX_Y.tar.xz`` archives (or a ``femto/``
            folder holding them).
        val_bearing: the held-out bearing; ``None`` holds none out (a model to deploy: ``X_val``
            and ``y_val`` are empty).
        train_bearings: the training bearings (default: every other bearing of
            :data:`FEMTO_BEARINGS`).
        window: frames (snapshots, 10 s apart) per model input; the first frames of a run are
            left-padded with the first one, as on the edge at start-up.
        target: ``"rul"`` (hours, capped) or ``"life_pct"`` (remaining share of the run, %).
        rul_cap: cap of the RUL target in hours (``target="rul"``); the scale of the output.
        train_stride: keep every ``train_stride``-th training window (Bearing1_1 has 2803).
        limit: read only the first snapshots of each archive (fast tests; not a run to failure).
        batch_size: batch size of the loaders.
        seed: seed of the shuffling.
        runs: already computed runs by bearing (reused across folds; computed when missing).
        features: ``(channel, feature, transform)`` the model reads.
    """

    def __init__(
        self,
        data_dir: str | Path,
        val_bearing: str | None = "3_1",
        *,
        train_bearings: tuple[str, ...] | None = None,
        window: int = 30,
        target: str = "life_pct",
        rul_cap: float = 3.0,
        train_stride: int = 1,
        limit: int | None = None,
        batch_size: int = 128,
        seed: int = 0,
        runs: dict[str, BearingRun] | None = None,
        features: tuple[tuple[str, str, str], ...] = FEMTO_FEATURES,
    ) -> None:
        super().__init__()
        if target not in FEMTO_TARGETS:
            raise ModelError(f"target must be one of {FEMTO_TARGETS}, got {target!r}")
        if window < 1 or train_stride < 1:
            raise ModelError(f"window and train_stride must be >= 1, got {window} and {train_stride}")
        if not rul_cap > 0:
            raise ModelError(f"rul_cap must be > 0 hours, got {rul_cap}")
        train = tuple(train_bearings) if train_bearings is not None else tuple(b for b in FEMTO_BEARINGS if b != val_bearing)
        if not train or val_bearing in train:
            raise ModelError(f"need training bearings other than the held-out {val_bearing!r}, got {train}")
        if len(set(train)) != len(train):
            raise ModelError(f"training bearings repeat: {train}")
        self.data_dir = Path(data_dir)
        self.val_bearing = val_bearing
        self.train_bearings = train
        self.window = window
        self.target = target
        self.rul_cap = float(rul_cap)
        self.train_stride = train_stride
        self.limit = limit
        self.batch_size = batch_size
        self.seed = seed
        self.features = tuple(features)
        self.runs: dict[str, BearingRun] = dict(runs or {})
        self.normalizer: FeatureNormalizer | None = None

    @property
    def output_cap(self) -> float:
        """Largest target value: the scale of a model's output (``rul_cap`` of its estimator)."""
        return self.rul_cap if self.target == "rul" else 100.0

    def prepare_data(self) -> None:
        """Check that the archives are there (nothing is downloaded)."""
        for b in self.bearings:
            bearing_archive(self.data_dir, b)

    def setup(self, stage: str | None = None) -> None:
        """Compute the features (unless given), normalise on the training bearings and window (idempotent)."""
        if self.normalizer is not None:
            return
        for b in self.bearings:
            if b not in self.runs:
                self.runs[b] = bearing_run(self.data_dir, b, self.features, limit=self.limit)
        names = [(c, n) for c, n, _ in self.features]
        transforms = [t for _, _, t in self.features]
        train_raw = np.concatenate([self.runs[b].raw for b in self.train_bearings])
        self.normalizer = FeatureNormalizer.fit(names, transforms, train_raw)
        xs, ys = [], []
        for b in self.train_bearings:
            X, y = self.bearing_windows(b)
            # counted back from failure, so the last window of every run is kept
            keep = np.arange(y.size - 1, -1, -self.train_stride)[::-1]
            xs.append(X[keep])
            ys.append(y[keep])
        self.X_train, self.y_train = np.concatenate(xs), np.concatenate(ys)
        if self.val_bearing is None:  # the deployed model: every bearing trains, nothing is held out
            self.X_val = np.zeros((0, *self.X_train.shape[1:]), dtype=np.float32)
            self.y_val, self.val_t_hours = np.zeros(0, dtype=np.float32), np.zeros(0)
        else:
            self.X_val, self.y_val = self.bearing_windows(self.val_bearing)
            self.val_t_hours = self.runs[self.val_bearing].t_hours

    @property
    def bearings(self) -> tuple[str, ...]:
        """The training bearings, then the held-out one (if any)."""
        return (*self.train_bearings, *((self.val_bearing,) if self.val_bearing is not None else ()))

    def bearing_windows(self, bearing: str) -> tuple[np.ndarray, np.ndarray]:
        """Every window of a bearing's run (one ending at each snapshot) and its target."""
        if self.normalizer is None:
            raise ModelError("call setup() before bearing_windows()")
        run = self.runs[bearing]
        feats = self.normalizer.transform(run.raw)
        X = sliding_windows(feats, self.window, np.arange(feats.shape[0]))
        return X, run.target(self.target, self.rul_cap).astype(np.float32)

    def preprocessing_card(self) -> dict[str, Any]:
        """What the edge runtime needs to rebuild the inputs from its own feature frames."""
        if self.normalizer is None:
            raise ModelError("call setup() before preprocessing_card()")
        return {
            "dataset": "femto",
            "kind": "feature_frames",
            "window": self.window,
            "step_hours": 10.0 / 3600.0,
            "rul_cap": self.output_cap,
            "rul_unit": FEMTO_UNITS[self.target],
            "train_bearings": list(self.train_bearings),
            "val_bearing": self.val_bearing,
            "input_layout": "batch, channel, time",
            "padding": "left, repeating the first frame",
            "normalizer": self.normalizer.to_dict(),
        }
