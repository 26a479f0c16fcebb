"""Run-to-failure trajectories of the plant simulator as edge feature windows (the demo's assets).

Each *unit* is one simulated machine (an asset type of :func:`core.sim.default_plant` with a
random fault kind, onset, life, growth, ambient and seed, or no fault at all). Every
``step_hours`` of simulated time it is measured the way the gateway measures it: a vibration
snapshot and a temperature reading go through :class:`core.signal.FeaturePipeline`, and
the frame's selected features become one row. A model input is the last ``window`` rows (left-
padded with the first row, as on the edge at start-up); the target is the remaining useful life
in simulated hours, capped at ``rul_cap`` (a machine with no fault is at the cap).

Units are split into training and validation units (never windows of one unit on both sides).
Validation is truncated like live use: each validation unit contributes windows ending at a few
random instants of its trajectory, not its whole trajectory.
"""

# ruff: noqa: N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

import math
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any, cast

import numpy as np

from core.assets import AssetConfig, Quantity
from core.errors import ModelError
from core.inference.preprocess import FeatureNormalizer, sliding_windows
from core.signal import ChannelWindow, FeaturePipeline
from core.sim import AssetSimulator, FaultKind, FaultSpec, default_plant
from models.data.arrays import EventRun, WindowDataModule

__all__ = [
    "DEFAULT_FEATURES",
    "FAULT_KINDS",
    "SimUnit",
    "SimulatorDataModule",
    "check_fault_kinds",
    "draw_units",
    "unit_frames",
]

#: ``(channel, feature, transform)``: what the model reads from each edge feature frame. Only
#: features every asset of the demo plant publishes (``vib_de`` at 25.6 kHz, ``temp_de``).
DEFAULT_FEATURES: tuple[tuple[str, str, str], ...] = (
    ("vib_de", "rms", "log"),
    ("vib_de", "kurtosis", "log"),
    ("vib_de", "crest", "none"),
    ("vib_de", "vel_rms_mm_s", "log"),
    ("vib_de", "band_10_1000", "log"),
    ("vib_de", "band_1000_2000", "log"),
    ("vib_de", "band_2000_5000", "log"),
    ("vib_de", "band_5000_10000", "log"),
    ("vib_de", "sk_max", "log"),
    ("vib_de", "env_bpfo_snr", "log"),
    ("vib_de", "env_bpfi_snr", "log"),
    ("vib_de", "env_bsf_snr", "log"),
    ("vib_de", "env_ftf_snr", "log"),
    ("vib_de", "env_shaft_snr", "log"),
    ("temp_de", "mean", "none"),
)

#: Fault kinds drawn for faulty units.
FAULT_KINDS: tuple[FaultKind, ...] = ("outer_race", "inner_race", "ball", "cage", "imbalance", "misalignment")

_EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


@dataclass(frozen=True)
class SimUnit:
    """One simulated run (to failure, or healthy over a span).

    Attributes:
        unit: unit id.
        asset: the machine (one of the demo plant's asset types).
        fault: injected fault (``kind="none"``: healthy).
        seed: simulator seed.
        ambient_c: ambient temperature.
        start_hours: first measured instant.
        end_hours: last measured instant (the time of event for a faulty unit).
    """

    unit: int
    asset: AssetConfig
    fault: FaultSpec
    seed: int
    ambient_c: float
    start_hours: float
    end_hours: float

    def rul_hours(self, t_hours: np.ndarray, cap: float) -> np.ndarray:
        """True RUL at ``t_hours``, capped (a healthy unit is always at the cap)."""
        if self.fault.kind == "none":
            return np.full(t_hours.shape, cap, dtype=np.float64)
        return np.minimum(np.maximum(self.fault.life_hours - t_hours, 0.0), cap)


def draw_units(
    n_units: int,
    *,
    seed: int = 0,
    healthy_fraction: float = 0.15,
    life_hours: tuple[float, float] = (150.0, 1000.0),
    onset_fraction: tuple[float, float] = (0.25, 0.6),
    span_hours: float = 400.0,
    assets: list[AssetConfig] | None = None,
    fault_kinds: tuple[str, ...] | None = None,
) -> list[SimUnit]:
    """Random units across the asset types and fault kinds.

    Args:
        n_units: how many.
        seed: seed of every draw.
        healthy_fraction: share of units with no fault.
        life_hours: range of the time of event of faulty units.
        onset_fraction: range of the fault onset as a fraction of life.
        span_hours: measured span before failure (faulty units; from 0 if the life is shorter)
            and of healthy units.
        assets: asset types to draw from (default: :func:`core.sim.default_plant`).
        fault_kinds: kinds drawn for faulty units, uniformly (default: all of :data:`FAULT_KINDS`;
            a plant whose machines fail in some ways only). With the default, a seed gives the
            same units as before the option existed.

    Returns:
        The units, ids ``0 .. n_units - 1``.

    Raises:
        ModelError: ``n_units < 1``, or ``fault_kinds`` empty, repeated or not of :data:`FAULT_KINDS`.
    """
    if n_units < 1:
        raise ModelError(f"n_units must be >= 1, got {n_units}")
    kinds = check_fault_kinds(fault_kinds)
    templates = assets or default_plant()
    rng = np.random.default_rng([int(seed), 0x51A])
    units: list[SimUnit] = []
    for i in range(n_units):
        asset = templates[int(rng.integers(len(templates)))]
        unit_seed = int(rng.integers(0, 2**31 - 1))
        ambient = float(rng.uniform(18.0, 32.0))
        if rng.random() < healthy_fraction:
            start = float(rng.uniform(0.0, 1000.0))
            units.append(SimUnit(i, asset, FaultSpec.healthy(), unit_seed, ambient, start, start + span_hours))
            continue
        kind = kinds[int(rng.integers(len(kinds)))]
        life = float(rng.uniform(*life_hours))
        onset = life * float(rng.uniform(*onset_fraction))
        growth = float(rng.uniform(2.5, 3.5))
        fault = FaultSpec(kind=kind, onset_hours=round(onset, 1), life_hours=round(life, 1), severity_growth=growth)
        units.append(SimUnit(i, asset, fault, unit_seed, ambient, max(0.0, fault.life_hours - span_hours), fault.life_hours))
    return units


def check_fault_kinds(fault_kinds: tuple[str, ...] | None) -> tuple[FaultKind, ...]:
    """The fault kinds to draw: ``fault_kinds`` checked, or all of :data:`FAULT_KINDS` for ``None``.

    Raises:
        ModelError: empty, repeated, or a kind the simulator does not inject (``"none"`` included:
            healthy units come from ``healthy_fraction``).
    """
    if fault_kinds is None:
        return FAULT_KINDS
    kinds = tuple(fault_kinds)
    unknown = [k for k in kinds if k not in FAULT_KINDS]
    if unknown:
        raise ModelError(f"unknown fault kind(s) {unknown}: the simulator injects {list(FAULT_KINDS)}")
    if not kinds or len(set(kinds)) != len(kinds):
        raise ModelError(f"fault_kinds must name at least one kind, each once, got {list(kinds)}")
    return cast(tuple[FaultKind, ...], kinds)


def unit_frames(
    unit: SimUnit,
    features: tuple[tuple[str, str, str], ...] = DEFAULT_FEATURES,
    *,
    step_hours: float = 4.0,
    snapshot_samples: int = 6400,
) -> tuple[np.ndarray, np.ndarray]:
    """Measure a unit every ``step_hours`` as the edge agent would.

    Returns:
        ``(t_hours, raw)``: the instants ``(n,)`` and the raw (untransformed) feature rows
        ``(n, n_features)``, in the order of ``features``.
    """
    sim = AssetSimulator(unit.asset, unit.fault, seed=unit.seed, ambient_c=unit.ambient_c)
    pipe = FeaturePipeline(unit.asset)
    channels = sorted({c for c, _, _ in features})
    configs = {c: unit.asset.channel(c) for c in channels}
    times = np.arange(unit.start_hours, unit.end_hours + 1e-9, step_hours)
    rows = np.empty((times.size, len(features)), dtype=np.float64)
    for i, t in enumerate(times):
        start = _EPOCH + timedelta(hours=float(t))
        window = {}
        for name, cfg in configs.items():
            n = snapshot_samples if cfg.quantity in (Quantity.ACCELERATION, Quantity.SOUND_PRESSURE) else 1
            window[name] = ChannelWindow(start, sim.sample(cfg, float(t), n).astype(np.float64))
        frame = pipe.compute(window)
        for j, (channel, name, _) in enumerate(features):
            rows[i, j] = frame.get(channel, {}).get(name, math.nan)
    return times, rows


class SimulatorDataModule(WindowDataModule):
    """Windows of edge feature frames from simulated run-to-failure units, RUL in hours.

    After :meth:`setup`: ``X_train`` ``(n, n_features, window)`` float32 and ``y_train`` (every
    frame of every training unit); ``X_val`` / ``y_val`` with ``val_cut_units`` (windows ending at
    ``n_val_cuts`` random instants of each validation unit); ``unit_times`` / ``unit_raw`` hold
    every unit's measured trajectory (for evaluation along whole runs).

    Args:
        n_units: simulated units (training + validation).
        window: frames per model input.
        step_hours: simulated hours between frames.
        rul_cap: cap of the RUL target, in hours (the horizon the model speaks about).
        val_fraction: share of units held out for validation.
        n_val_cuts: truncations per validation unit.
        healthy_fraction: share of units with no fault.
        life_hours: range of lives of faulty units.
        span_hours: measured span of each unit.
        snapshot_samples: samples per vibration snapshot (the demo's ``sim.vibration_samples``).
        batch_size: batch size of the loaders.
        seed: seed of the units, the split and the truncations.
        extra_runs: measured runs of real machines up to an event (:class:`EventRun`, e.g. from
            the plant's store); they join the training units (the normaliser is fitted on them too),
            never validation, which stays on simulated units so its numbers stay comparable. Windows
            end only where a run's capped RUL is known (:meth:`EventRun.exact`).
        fault_kinds: kinds of the faulty units (default: all of :data:`FAULT_KINDS`), as
            :func:`draw_units` takes them: a plant whose machines fail in some ways only.
    """

    def __init__(
        self,
        n_units: int = 200,
        *,
        window: int = 12,
        step_hours: float = 4.0,
        rul_cap: float = 200.0,
        val_fraction: float = 0.2,
        n_val_cuts: int = 5,
        healthy_fraction: float = 0.15,
        life_hours: tuple[float, float] = (150.0, 1000.0),
        span_hours: float = 400.0,
        snapshot_samples: int = 6400,
        batch_size: int = 256,
        seed: int = 0,
        features: tuple[tuple[str, str, str], ...] = DEFAULT_FEATURES,
        extra_runs: tuple[EventRun, ...] = (),
        fault_kinds: tuple[str, ...] | None = None,
    ) -> None:
        super().__init__()
        if window < 1:
            raise ModelError(f"window must be >= 1, got {window}")
        if not step_hours > 0:
            raise ModelError(f"step_hours must be > 0, got {step_hours}")
        if not 0.0 < val_fraction < 1.0:
            raise ModelError(f"val_fraction must be in (0, 1), got {val_fraction}")
        if n_units < 2:
            raise ModelError(f"n_units must be >= 2 (one training and one validation unit), got {n_units}")
        self.n_units = n_units
        self.window = window
        self.step_hours = float(step_hours)
        self.rul_cap = float(rul_cap)
        self.val_fraction = val_fraction
        self.n_val_cuts = n_val_cuts
        self.healthy_fraction = healthy_fraction
        self.life_hours = life_hours
        self.span_hours = span_hours
        self.snapshot_samples = snapshot_samples
        self.batch_size = batch_size
        self.seed = seed
        self.features = tuple(features)
        for run in extra_runs:
            if run.t_hours.size < 1 or run.raw.shape != (run.t_hours.size, len(self.features)):
                raise ModelError(
                    f"extra run {run.name!r}: need one row of {len(self.features)} features per instant, got {run.raw.shape}"
                )
        self.extra_runs = tuple(extra_runs)
        self.fault_kinds = None if fault_kinds is None else check_fault_kinds(fault_kinds)
        self.normalizer: FeatureNormalizer | None = None

    # -- Lightning hooks ----------------------------------------------------------------------
    def setup(self, stage: str | None = None) -> None:
        """Simulate, measure, split, normalise and window (idempotent)."""
        if self.normalizer is not None:
            return
        self.units = draw_units(
            self.n_units,
            seed=self.seed,
            healthy_fraction=self.healthy_fraction,
            life_hours=self.life_hours,
            span_hours=self.span_hours,
            fault_kinds=self.fault_kinds,
        )
        self.unit_times: dict[int, np.ndarray] = {}
        self.unit_raw: dict[int, np.ndarray] = {}
        for u in self.units:
            t, raw = unit_frames(u, self.features, step_hours=self.step_hours, snapshot_samples=self.snapshot_samples)
            keep = np.isfinite(raw).all(axis=1)
            self.unit_times[u.unit], self.unit_raw[u.unit] = t[keep], raw[keep]
        rng = np.random.default_rng([self.seed, 0x5A1])
        ids = np.array([u.unit for u in self.units])
        n_val = max(1, round(ids.size * self.val_fraction))
        perm = rng.permutation(ids)
        self.val_units, self.train_units = np.sort(perm[:n_val]), np.sort(perm[n_val:])
        names = [(c, n) for c, n, _ in self.features]
        transforms = [t for _, _, t in self.features]
        train_raw = np.concatenate([self.unit_raw[int(u)] for u in self.train_units] + [r.raw for r in self.extra_runs])
        self.normalizer = FeatureNormalizer.fit(names, transforms, train_raw)
        X_sim, y_sim, _ = self._windows(self.train_units, None)
        # windows end only at frames whose capped RUL is known (a censored run's, a cap before its inspection)
        ends = [np.flatnonzero(r.exact(self.rul_cap)) for r in self.extra_runs]
        X_runs = [
            sliding_windows(self.normalizer.transform(r.raw), self.window, e) for r, e in zip(self.extra_runs, ends, strict=True)
        ]
        y_runs = [r.rul_hours(self.rul_cap)[e].astype(np.float32) for r, e in zip(self.extra_runs, ends, strict=True)]
        self.X_train, self.y_train = np.concatenate([X_sim, *X_runs]), np.concatenate([y_sim, *y_runs])
        self.X_val, self.y_val, self.val_cut_units = self._windows(self.val_units, rng)

    def _windows(self, unit_ids: np.ndarray, rng: np.random.Generator | None) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        xs, ys, us = [], [], []
        for uid in unit_ids:
            X, y = self.unit_windows(int(uid))
            if rng is not None:  # truncated like live use: a few random "now"s per unit
                idx = np.sort(rng.choice(y.size, size=min(self.n_val_cuts, y.size), replace=False))
                X, y = X[idx], y[idx]
            xs.append(X)
            ys.append(y)
            us.append(np.full(y.size, uid))
        return np.concatenate(xs), np.concatenate(ys).astype(np.float32), np.concatenate(us)

    def unit_windows(self, unit_id: int) -> tuple[np.ndarray, np.ndarray]:
        """Every window of one unit's run and its capped RUL (hours)."""
        if self.normalizer is None:
            raise ModelError("call setup() before unit_windows()")
        feats = self.normalizer.transform(self.unit_raw[unit_id])
        ends = np.arange(feats.shape[0])
        y = self.units[unit_id].rul_hours(self.unit_times[unit_id], self.rul_cap)
        return sliding_windows(feats, self.window, ends), y.astype(np.float32)

    def preprocessing_card(self) -> dict[str, Any]:
        """What the edge runtime needs to rebuild the inputs from its own feature frames."""
        if self.normalizer is None:
            raise ModelError("call setup() before preprocessing_card()")
        return {
            "dataset": "simulator",
            "kind": "feature_frames",
            "window": self.window,
            "step_hours": self.step_hours,
            "rul_cap": self.rul_cap,
            "rul_unit": "h",
            "snapshot_samples": self.snapshot_samples,
            "input_layout": "batch, channel, time",
            "padding": "left, repeating the first frame",
            "normalizer": self.normalizer.to_dict(),
        }
