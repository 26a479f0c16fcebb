"""What-if twin kernel: futures of a developing fault under each intervention option, their risk and cost.

The twin answers a maintenance planner's choice for one asset: run on as is, derate and repair at
the next planned stop, repair at the next planned stop, or repair now. It works in plant hours
counted from the moment of the decision.

1. **Futures.** Many failure times (and the damage and growth shape of each future) at the
   current operating condition, from a generator:

   * :class:`AnalogLibrary` (learned): run-to-failure cases of the same RUL model, each with
     what the model said (median and interval), the load, the age, and what happened (the true
     remaining life, the damage, the growth shape). The futures of a query are the true lives of
     its nearest analogs, scaled by the ratio of the predictions (an analog ensemble). The spread
     is the spread of outcomes that followed similar evidence, not an assumption.
   * :func:`interval_futures` (no learning): a log-normal through the RUL model's own interval.

2. **Physics of the options.** A derate by share ``s`` slows the fault by
   :func:`core.sim.growth_multiplier` (the load-life law), so each future's failure time becomes
   ``T / m``; a repair renews the asset at its time unless the future has failed before it.

3. **Cost and risk** (:func:`evaluate`): per option, the probability of failing before its
   repair, within 24 h and before the next planned stop; the expected cost (unplanned failure,
   planned repair in or out of a stop, production lost while derated); and the cost per hour of
   the asset's life (renewal-reward: expected cost over age plus expected hours to renewal, so a
   repair that throws away good life costs more per hour). :func:`recommend` takes the cheapest
   option per hour among those within the risk limit.

Pure numpy: the edge, the prescriber, the dashboard and the benchmarks share it.
"""

from __future__ import annotations

import functools
import json
import math
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from statistics import NormalDist
from typing import Any, Literal

import numpy as np
from numpy.typing import ArrayLike, NDArray

from core.errors import ConfigError
from core.sim import growth_multiplier

__all__ = [
    "ANALOGS_FILE",
    "ESCALATE_LOWER_H",
    "OPTION_LABELS",
    "QUANTILES",
    "SPREAD_EDGES",
    "AnalogLibrary",
    "AssetCosts",
    "Futures",
    "Option",
    "OptionName",
    "OptionOutcome",
    "Recommendation",
    "evaluate",
    "find_library",
    "health_fan",
    "interval_futures",
    "make_options",
    "recommend",
]

OptionName = Literal["run_on", "derate", "repair_next_stop", "repair_now"]

#: Plain-words names of the options, in the order they are shown.
OPTION_LABELS: dict[str, str] = {
    "run_on": "Run on as is",
    "derate": "Derate, repair at next stop",
    "repair_next_stop": "Repair at next planned stop",
    "repair_now": "Repair now",
}

#: Quantiles reported for failure times and drawn in the fan chart.
QUANTILES: tuple[float, ...] = (0.05, 0.25, 0.5, 0.75, 0.95)

#: Added to RUL predictions before taking ratios, in hours: keeps the analog scaling stable near failure.
_RATIO_OFFSET_H = 20.0


@dataclass(frozen=True)
class AssetCosts:
    """What a repair and a failure cost for one asset, in the plant's currency and plant hours.

    Attributes:
        downtime_per_h: production lost per hour the asset is stopped outside a planned stop.
        repair_h: hours a planned repair takes.
        parts_cost: parts of one repair.
        labour_per_h: crew cost per repair hour.
        failure_extra_h: further downtime after an unplanned failure (secondary damage, no preparation).
        failure_extra_cost: secondary damage of a failure (shaft, housing, seals, product).
        lead_time_h: hours until the spare part is on site (0: in stock).
        stop_h: length of a planned stop; repair hours beyond it count as downtime.
    """

    downtime_per_h: float
    repair_h: float = 6.0
    parts_cost: float = 800.0
    labour_per_h: float = 90.0
    failure_extra_h: float = 12.0
    failure_extra_cost: float = 4000.0
    lead_time_h: float = 0.0
    stop_h: float = 12.0

    def __post_init__(self) -> None:
        for name in ("downtime_per_h", "repair_h", "parts_cost", "labour_per_h", "failure_extra_h",
                     "failure_extra_cost", "lead_time_h", "stop_h"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")

    @property
    def work_cost(self) -> float:
        """Parts and labour of one repair."""
        return self.parts_cost + self.labour_per_h * self.repair_h

    def planned_cost(self, in_stop: bool) -> float:
        """A planned repair: work, plus downtime unless it fits a planned stop."""
        down = max(self.repair_h - self.stop_h, 0.0) if in_stop else self.repair_h
        return self.work_cost + self.downtime_per_h * down

    def failure_cost(self, part_wait_h: ArrayLike = 0.0) -> Any:
        """An unplanned failure: work, secondary damage and the downtime until running again.

        ``part_wait_h`` (hours waiting for the spare part) may be one number or an array of them;
        the cost has its shape.
        """
        down = np.maximum(part_wait_h, 0.0) + self.repair_h + self.failure_extra_h
        cost = self.work_cost + self.failure_extra_cost + self.downtime_per_h * down
        return float(cost) if np.ndim(cost) == 0 else cost


@dataclass(frozen=True)
class Futures:
    """Sampled futures at the current operating condition.

    Attributes:
        failure_h: hours from now to failure at the current load; ``inf``: no failure in sight.
        damage: damage index now (0 new, 1 failed) per future.
        shape: growth shape ``k`` of the damage law per future.
        kind: fault kind (picks the load-life exponent of a derate).
        source: ``"analogs"`` or ``"interval"``.
        neighbours: analogs the futures were drawn from (0 for the interval generator).
        warn_h: hours from now until the RUL model's lower bound falls to :data:`ESCALATE_LOWER_H`
            (0: there already, ``inf``: not before the failure), when the twin, judging again, would
            repair at once; ``None``: unknown, and the options get no credit for watching.
    """

    failure_h: NDArray[np.float64]
    damage: NDArray[np.float64]
    shape: NDArray[np.float64]
    kind: str = "outer_race"
    source: str = "interval"
    neighbours: int = 0
    warn_h: NDArray[np.float64] | None = None

    @property
    def n(self) -> int:
        """Number of futures."""
        return int(self.failure_h.size)


@dataclass(frozen=True)
class Option:
    """One intervention: repair at ``repair_h`` hours from now (``inf``: none), derated by ``derate_share`` until then."""

    name: OptionName
    repair_h: float
    derate_share: float = 0.0
    in_stop: bool = False

    @property
    def label(self) -> str:
        """Plain-words name."""
        return OPTION_LABELS[self.name]


@dataclass(frozen=True)
class OptionOutcome:
    """Risk and cost of one option over its futures.

    Attributes:
        option: the option.
        p_fail_before_repair: probability of an unplanned failure before the option's repair
            (for run on: within the horizon).
        p_fail_24h: probability of failing within 24 plant hours.
        p_fail_before_stop: probability of failing before the next planned stop.
        expected_cost: mean cost of the option up to the renewal (or the horizon).
        cost_per_h: expected cost per hour of the asset's life (age plus hours to renewal).
        failure_quantiles_h: failure time under the option at :data:`QUANTILES` (``inf``: beyond reach).
        failure_h: every future's failure time under the option.
    """

    option: Option
    p_fail_before_repair: float
    p_fail_24h: float
    p_fail_before_stop: float
    expected_cost: float
    cost_per_h: float
    failure_quantiles_h: tuple[float, ...]
    failure_h: NDArray[np.float64] = field(repr=False)

    def as_dict(self) -> dict[str, Any]:
        """Plain data (``inf`` as ``None``) for JSON and tables."""
        def num(v: float) -> float | None:
            return round(float(v), 4) if math.isfinite(v) else None

        return {
            "option": self.option.name,
            "label": self.option.label,
            "repair_in_h": num(self.option.repair_h),
            "derate_share": self.option.derate_share,
            "repair_in_stop": self.option.in_stop,
            "p_fail_before_repair": num(self.p_fail_before_repair),
            "p_fail_24h": num(self.p_fail_24h),
            "p_fail_before_stop": num(self.p_fail_before_stop),
            "expected_cost": num(self.expected_cost),
            "cost_per_h": num(self.cost_per_h),
            "failure_quantiles_h": {
                f"p{round(q * 100)}": num(v) for q, v in zip(QUANTILES, self.failure_quantiles_h, strict=True)
            },
        }


@dataclass(frozen=True)
class Recommendation:
    """The chosen option and why."""

    choice: OptionOutcome
    reason: str
    within_limit: bool
    risk_limit: float


# ------------------------------------------------------------------------------------ generators
def interval_futures(median_h: float, lower_h: float, upper_h: float, n: int, rng: np.random.Generator, *,
                     coverage: float = 0.9, damage: float = 0.5, shape: float = 3.0, kind: str = "outer_race") -> Futures:
    """Futures from the RUL model's interval alone: a log-normal (in ``RUL + 20 h``) through it.

    The spread is what the interval says, assumed log-normal; nothing is learned from outcomes.
    """
    if not (0 <= lower_h <= median_h <= upper_h) or not math.isfinite(upper_h):
        raise ValueError(f"need 0 <= lower <= median <= upper (finite), got {lower_h}, {median_h}, {upper_h}")
    z = NormalDist().inv_cdf(0.5 + coverage / 2)
    a = _RATIO_OFFSET_H
    sigma = max(math.log((upper_h + a) / (lower_h + a)) / (2 * z), 1e-3)
    t = np.maximum((median_h + a) * np.exp(sigma * rng.standard_normal(n)) - a, 0.0)
    return Futures(t, np.full(n, float(damage)), np.full(n, float(shape)), kind=kind, source="interval")


#: An RUL lower bound at or below this many hours is the decision policy's urgent band (criticality
#: 2 and 3): a future whose model gets there in time is repaired before it fails.
ESCALATE_LOWER_H = 36.0

#: Bins of the predicted median, as shares of the model's cap, each with its own spread factor.
SPREAD_EDGES: tuple[float, ...] = (0.0, 0.25, 0.5, 0.95, math.inf)

#: Conditioning features of an analog case, in order.
ANALOG_FEATURES: tuple[str, ...] = ("median_share", "lower_share", "upper_share", "load_share", "age_kh")


@dataclass
class AnalogLibrary:
    """A learned generator of futures: run-to-failure cases of one RUL model (an analog ensemble).

    Each case is one moment of a measured run: what the model said (median, lower and upper
    bound, as shares of its cap), the operating condition (load as a share of rating), the age
    (thousands of running hours since the part was new), and what followed: the true remaining
    life (``inf`` for a healthy unit), the damage then and the growth shape of the run.

    Attributes:
        model: the RUL model the cases belong to (``name:version``).
        cap_h: the model's RUL cap in hours.
        features: ``(n, 5)`` conditioning features (:data:`ANALOG_FEATURES`).
        true_rul_h: ``(n,)`` true remaining life in hours.
        pred_median_h: ``(n,)`` the model's median in hours.
        damage: ``(n,)`` damage at the case.
        shape: ``(n,)`` growth shape of the run.
        unit: ``(n,)`` run id (cases of one run are not independent).
        kind: ``(n,)`` fault kind of the run.
        k: analogs drawn from per query.
        meta: provenance (how the cases were made).
        spread: per bin of the predicted median (:data:`SPREAD_EDGES`, shares of the cap), the
            factor that widens the futures around their median (in ``log(T + 20 h)``), learned by
            :meth:`calibrate_spread` so that their 90 % interval covers 90 % of held-out runs.
    """

    model: str
    cap_h: float
    features: NDArray[np.float64]
    true_rul_h: NDArray[np.float64]
    pred_median_h: NDArray[np.float64]
    damage: NDArray[np.float64]
    shape: NDArray[np.float64]
    unit: NDArray[np.int64]
    kind: NDArray[np.str_]
    k: int = 40
    meta: dict[str, Any] = field(default_factory=dict)
    spread: tuple[float, ...] = (1.0,) * (len(SPREAD_EDGES) - 1)

    def __post_init__(self) -> None:
        n = self.true_rul_h.size
        if self.features.shape != (n, len(ANALOG_FEATURES)):
            raise ConfigError(f"analog library: features must be ({n}, {len(ANALOG_FEATURES)}), got {self.features.shape}")
        for name in ("pred_median_h", "damage", "shape", "unit", "kind"):
            if getattr(self, name).shape != (n,):
                raise ConfigError(f"analog library: {name} must have {n} entries, got {getattr(self, name).shape}")
        if n < 2 or not self.cap_h > 0:
            raise ConfigError(f"analog library needs >= 2 cases and a cap > 0, got {n} cases, cap {self.cap_h}")
        scale = self.features.std(axis=0)
        self._scale = np.where(scale > 1e-9, scale, 1.0)
        self._warn_lead_h = self._warning_leads()
        self._weight = np.array([2.0, 1.0, 1.0, 1.0, 1.0])  # the median speaks most about the future

    def _warning_leads(self) -> NDArray[np.float64]:
        """Per case, the hours between the run's first flag at or after the case (the model's lower
        bound at or below :data:`ESCALATE_LOWER_H`) and its failure; ``inf`` when the run is healthy
        or is not flagged before it fails (the future then fails without warning)."""
        lead = np.full(self.true_rul_h.size, np.inf)
        age = self.features[:, 4] * 1000.0
        flagged = self.features[:, 1] * self.cap_h <= ESCALATE_LOWER_H
        for u in np.unique(self.unit):
            idx = np.flatnonzero(self.unit == u)
            idx = idx[np.argsort(age[idx], kind="stable")]
            next_flag = np.inf
            for i in idx[::-1]:  # latest first: the first flag at or after each case
                if flagged[i]:
                    next_flag = age[i]
                if np.isfinite(self.true_rul_h[i]) and np.isfinite(next_flag):
                    lead[i] = self.true_rul_h[i] - (next_flag - age[i])  # failure minus flag, in hours
        return lead

    @staticmethod
    def query_features(median_h: float, lower_h: float, upper_h: float, cap_h: float, load_share: float,
                       age_h: float) -> NDArray[np.float64]:
        """The conditioning features of one moment (the same for cases and queries)."""
        return np.array([median_h / cap_h, lower_h / cap_h, upper_h / cap_h, float(np.clip(load_share, 0.0, 1.5)),
                         min(max(age_h, 0.0) / 1000.0, 5.0)])

    def neighbours(
        self, query: NDArray[np.float64], exclude_unit: int | None = None
    ) -> tuple[NDArray[np.int64], NDArray[np.float64]]:
        """The nearest case of each of the ``k`` nearest runs, and their kernel weights.

        One case per run: cases of one run sit close together, and letting one run fill the
        neighbourhood would hide how much runs differ from each other.
        """
        d = np.sqrt((((self.features - query) / self._scale * self._weight) ** 2).sum(axis=1))
        if exclude_unit is not None:
            d = np.where(self.unit == exclude_unit, np.inf, d)
        order = np.argsort(d, kind="stable")
        _, first = np.unique(self.unit[order], return_index=True)
        per_run = order[np.sort(first)]
        per_run = per_run[np.isfinite(d[per_run])]
        idx = per_run[: min(self.k, per_run.size)]
        h = max(float(np.median(d[idx])), 1e-6)
        w = np.exp(-0.5 * (d[idx] / h) ** 2)
        return idx, w / w.sum()

    def _raw(self, median_h: float, lower_h: float, upper_h: float, n: int, rng: np.random.Generator, *,
             load_share: float, age_h: float, exclude_unit: int | None) -> tuple[NDArray[np.float64], NDArray[np.int64], int]:
        q = self.query_features(median_h, lower_h, upper_h, self.cap_h, load_share, age_h)
        idx, w = self.neighbours(q, exclude_unit)
        pick = idx[rng.choice(idx.size, size=n, p=w)]
        a = _RATIO_OFFSET_H
        ratio = (median_h + a) / (self.pred_median_h[pick] + a)
        true = self.true_rul_h[pick]
        failure = np.where(np.isfinite(true), np.maximum((true + a) * ratio - a, 0.0), np.inf)
        return failure, pick, int(idx.size)

    @staticmethod
    def _widen(failure: NDArray[np.float64], factor: float) -> NDArray[np.float64]:
        """Futures spread ``factor`` times wider around their median, in ``log(T + 20 h)``; ``inf`` stays."""
        fin = np.isfinite(failure)
        if factor == 1.0 or fin.sum() < 2:
            return failure
        a = _RATIO_OFFSET_H
        lx = np.log(failure[fin] + a)
        centre = float(np.median(lx))
        out = failure.copy()
        out[fin] = np.maximum(np.exp(centre + factor * (lx - centre)) - a, 0.0)
        return out

    def spread_for(self, median_h: float) -> float:
        """The spread factor of a predicted median's bin."""
        b = int(np.searchsorted(SPREAD_EDGES, median_h / self.cap_h, side="right")) - 1
        return self.spread[min(max(b, 0), len(self.spread) - 1)]

    def sample(self, median_h: float, lower_h: float, upper_h: float, n: int, rng: np.random.Generator, *,
               load_share: float = 0.75, age_h: float = 0.0, exclude_unit: int | None = None) -> Futures:
        """``n`` futures for a prediction ``(median, lower, upper)`` at a load and age.

        The true remaining lives of the nearest analogs, each scaled by
        ``(median + 20 h) / (its median + 20 h)`` and widened by the bin's spread factor, with
        their damage and growth shape.
        """
        failure, pick, neighbours = self._raw(median_h, lower_h, upper_h, n, rng, load_share=load_share, age_h=age_h,
                                              exclude_unit=exclude_unit)
        failure = self._widen(failure, self.spread_for(median_h))
        # the analog's flag came this long before its failure; the future keeps that lead
        if lower_h <= ESCALATE_LOWER_H:  # flagged already: watching has nothing new to tell
            warn = np.zeros_like(failure)
        else:
            with np.errstate(invalid="ignore"):  # inf - inf where the future never fails: masked out
                warn = np.where(np.isfinite(failure), np.maximum(failure - self._warn_lead_h[pick], 0.0), np.inf)
        finite = np.isfinite(self.true_rul_h[pick])
        kinds, counts = np.unique(self.kind[pick][finite], return_counts=True)
        kind = str(kinds[int(np.argmax(counts))]) if kinds.size else "outer_race"
        return Futures(failure, self.damage[pick].astype(np.float64), self.shape[pick].astype(np.float64), kind=kind,
                       source="analogs", neighbours=neighbours, warn_h=warn)

    def calibrate_spread(self, coverage: float = 0.9, *, every: int = 2, n: int = 300, seed: int = 0,
                         grid: Sequence[float] = tuple(np.round(np.arange(1.0, 2.51, 0.05), 2))) -> tuple[float, ...]:
        """Learn :attr:`spread` by leaving one run out: per bin, the smallest factor from ``grid``
        whose central ``coverage`` interval covers at least ``coverage`` of the cases' true lives.

        Every ``every``-th case of a faulty run is scored against futures drawn from the other runs.
        """
        rng = np.random.default_rng([seed, 0x5B2])
        lo_q, hi_q = (1 - coverage) / 2, 1 - (1 - coverage) / 2
        hits: dict[int, list[NDArray[np.bool_]]] = {b: [] for b in range(len(SPREAD_EDGES) - 1)}
        for i in np.flatnonzero(np.isfinite(self.true_rul_h))[::every]:
            f = self.features[i]
            med = float(f[0] * self.cap_h)
            raw, _, _ = self._raw(med, float(f[1] * self.cap_h), float(f[2] * self.cap_h), n, rng,
                                  load_share=float(f[3]), age_h=float(f[4]) * 1000.0, exclude_unit=int(self.unit[i]))
            truth = float(self.true_rul_h[i])
            row = []
            for g in grid:
                x = self._widen(raw, float(g))
                lo, hi = np.quantile(x, [lo_q, hi_q], method="inverted_cdf")
                row.append(lo <= truth <= hi)
            b = int(np.searchsorted(SPREAD_EDGES, med / self.cap_h, side="right")) - 1
            hits[min(max(b, 0), len(SPREAD_EDGES) - 2)].append(np.array(row))
        factors = []
        for b in range(len(SPREAD_EDGES) - 1):
            if not hits[b]:
                factors.append(1.0)
                continue
            cov = np.mean(np.stack(hits[b]), axis=0)
            ok = np.flatnonzero(cov >= coverage)
            factors.append(float(grid[int(ok[0])]) if ok.size else float(grid[-1]))
        self.spread = tuple(factors)
        return self.spread

    # -- persistence ---------------------------------------------------------------------------
    def to_json(self, path: str | Path) -> Path:
        """Write the library (plain JSON, ``inf`` as ``null``)."""
        out = Path(path)
        out.parent.mkdir(parents=True, exist_ok=True)
        data = {
            "format": "genedge-analogs/1", "model": self.model, "cap_h": self.cap_h, "k": self.k, "meta": self.meta,
            "spread": {"edges": [e if math.isfinite(e) else None for e in SPREAD_EDGES], "factors": list(self.spread)},
            "feature_names": list(ANALOG_FEATURES),
            "features": np.round(self.features, 4).tolist(),
            "true_rul_h": [round(float(v), 2) if math.isfinite(v) else None for v in self.true_rul_h],
            "pred_median_h": np.round(self.pred_median_h, 2).tolist(),
            "damage": np.round(self.damage, 4).tolist(),
            "shape": np.round(self.shape, 3).tolist(),
            "unit": self.unit.tolist(),
            "kind": self.kind.tolist(),
        }
        out.write_text(json.dumps(data, separators=(",", ":")))
        return out

    @classmethod
    def from_json(cls, path: str | Path) -> AnalogLibrary:
        """Read a library written by :meth:`to_json`.

        Raises:
            ConfigError: the file is missing, unreadable or not an analog library.
        """
        try:
            data = json.loads(Path(path).read_text())
        except (OSError, ValueError) as err:
            raise ConfigError(f"analog library {path}: cannot read ({err.__class__.__name__}: {err})") from None
        if not isinstance(data, dict) or data.get("format") != "genedge-analogs/1":
            raise ConfigError(f"analog library {path}: not a genedge-analogs/1 file")
        try:
            return cls(
                model=str(data["model"]), cap_h=float(data["cap_h"]), k=int(data["k"]), meta=dict(data.get("meta", {})),
                spread=_spread(data.get("spread")),
                features=np.asarray(data["features"], dtype=np.float64).reshape(-1, len(ANALOG_FEATURES)),
                true_rul_h=np.array([np.inf if v is None else v for v in data["true_rul_h"]], dtype=np.float64),
                pred_median_h=np.asarray(data["pred_median_h"], dtype=np.float64),
                damage=np.asarray(data["damage"], dtype=np.float64),
                shape=np.asarray(data["shape"], dtype=np.float64),
                unit=np.asarray(data["unit"], dtype=np.int64),
                kind=np.asarray(data["kind"], dtype=np.str_),
            )
        except (KeyError, TypeError, ValueError) as err:
            raise ConfigError(f"analog library {path}: malformed ({err.__class__.__name__}: {err})") from None


def _spread(raw: Any) -> tuple[float, ...]:
    """The spread factors of a library file (1 everywhere when it has none, e.g. an older file)."""
    if raw is None:
        return (1.0,) * (len(SPREAD_EDGES) - 1)
    edges = [math.inf if e is None else float(e) for e in raw["edges"]]
    factors = tuple(float(f) for f in raw["factors"])
    if tuple(edges) != SPREAD_EDGES or len(factors) != len(SPREAD_EDGES) - 1 or any(not 0.5 <= f <= 5 for f in factors):
        raise ValueError(f"spread must have the edges {SPREAD_EDGES} and factors in [0.5, 5], got {raw}")
    return factors


#: File name of a model version's analog library, next to its ``model.onnx``.
ANALOGS_FILE = "analogs.json"


def find_library(model: str, registry_dirs: Sequence[str | Path]) -> AnalogLibrary | None:
    """The analog library of ``name:version`` from the first registry directory that has one.

    The library is shared between callers (read once per file version): do not change it.
    ``None`` when no directory holds one (the twin then falls back to the model's interval).

    Raises:
        ConfigError: a library exists but cannot be read.
    """
    name, _, version = model.partition(":")
    if not name or not version or "/" in model or ".." in model:
        return None
    for root in registry_dirs:
        path = Path(root) / name / version / ANALOGS_FILE
        if path.is_file():
            stat = path.stat()
            return _cached_library(str(path.resolve()), stat.st_mtime_ns, stat.st_size)
    return None


@functools.lru_cache(maxsize=8)
def _cached_library(path: str, mtime_ns: int, size: int) -> AnalogLibrary:
    """One read per version of a library file: the watcher and the dashboard ask every few seconds.

    ``mtime_ns`` and ``size`` are the cache key's part that a rebuilt file changes.
    """
    return AnalogLibrary.from_json(path)


# ------------------------------------------------------------------------------------ options
def make_options(next_stops_h: Sequence[float], costs: AssetCosts, *, derate_share: float = 0.3) -> list[Option]:
    """The four options for a calendar of planned stops (hours from now, ascending).

    Repairs wait for the spare part: "at next planned stop" is the first stop after the part
    arrives, "now" is when it arrives. Run on lets that stop pass: the repair moves to the stop
    after it, and the option carries that repair's cost, so that its cost per hour compares
    like with like (the option is re-judged at every new prediction).
    """
    stops = sorted(s for s in next_stops_h if s >= 0)
    lead = costs.lead_time_h
    usable = [s for s in stops if s >= lead]
    stop = usable[0] if usable else math.inf
    horizon = usable[1] if len(usable) > 1 else (2 * stop if math.isfinite(stop) else math.inf)
    return [
        Option("run_on", horizon, in_stop=True),
        Option("derate", stop, derate_share=derate_share, in_stop=True),
        Option("repair_next_stop", stop, in_stop=True),
        Option("repair_now", lead),
    ]


def _watched(t: NDArray[np.float64], warn: NDArray[np.float64], opt: Option, costs: AssetCosts,
             stops_h: Sequence[float], review_h: float) -> tuple[NDArray[np.float64], NDArray[np.float64], NDArray[np.bool_]]:
    """Cost, hours to renewal and unplanned failure of each future under an option, the asset watched.

    A future that reaches the option's repair is repaired then. One that would fail first, but
    whose RUL model flags it in time (the flag still to come, then the next judgement and the
    part's lead time, all before the failure), is repaired before it fails: in a planned stop if
    one falls in between, else outside one. The rest fail.
    """
    repair = opt.repair_h
    act = warn + review_h + costs.lead_time_h
    before = t < repair
    caught = before & (warn > 0) & (act <= t)  # a flag still to come is news; one already raised is priced in
    stops = np.asarray(sorted(stops_h), dtype=np.float64)
    if stops.size:
        first = np.searchsorted(stops, act, side="left")  # the first stop at or after the flag is acted on
        stop_at = stops[np.clip(first, 0, stops.size - 1)]
        in_stop = caught & (first < stops.size) & (stop_at < t)
    else:
        stop_at = np.full(t.shape, np.inf)
        in_stop = np.zeros(t.shape, dtype=bool)
    fail = before & ~caught
    wait = costs.lead_time_h if opt.name == "run_on" else np.maximum(costs.lead_time_h - t, 0.0)  # run on orders nothing
    fail_cost = costs.failure_cost(wait)
    cost = np.where(~before, costs.planned_cost(opt.in_stop),
                    np.where(fail, fail_cost, np.where(in_stop, costs.planned_cost(True), costs.planned_cost(False))))
    hours = np.where(~before, repair, np.where(fail, t, np.where(in_stop, stop_at, act)))
    return cost, hours, fail


def evaluate(futures: Futures, options: Sequence[Option], costs: AssetCosts, *, age_h: float = 0.0,
             next_stop_h: float = math.inf, stops_h: Sequence[float] = (), review_h: float = 4.0) -> list[OptionOutcome]:
    """Risk and cost of each option over the same futures.

    Per future: under a derate the failure time is ``T / m`` (:func:`core.sim.growth_multiplier`);
    a failure before the repair costs :meth:`AssetCosts.failure_cost` (waiting for the part if it
    has not arrived), otherwise the planned repair's cost; a derate adds ``share x downtime_per_h``
    per derated hour. Run on repairs at the stop after next (nothing when no stop is in sight).
    When the futures know when the RUL model would flag them (:attr:`Futures.warn_h`), the asset
    is watched: a failure flagged in time is repaired first (:func:`_watched`), with the planned
    stops ``stops_h`` and a new judgement every ``review_h`` hours.
    """
    out: list[OptionOutcome] = []
    for opt in options:
        m = growth_multiplier(futures.kind, opt.derate_share) if opt.derate_share > 0 else 1.0
        t = futures.failure_h / m
        repair = opt.repair_h
        fails = t < repair
        renewal = np.minimum(t, repair) if math.isfinite(repair) else t
        renewal = np.where(np.isfinite(renewal), renewal, 0.0)
        fail_cost_each = costs.failure_cost(np.maximum(costs.lead_time_h - t, 0.0))
        if opt.name == "run_on" and not math.isfinite(repair):  # no planned stop in sight: no repair to defer to
            cost = np.where(fails, fail_cost_each, 0.0)
            hours = np.where(np.isfinite(t), t, 0.0)
        elif futures.warn_h is not None:
            cost, hours, fails = _watched(t, futures.warn_h / m, opt, costs, stops_h, review_h)
        else:
            cost = np.where(fails, fail_cost_each, costs.planned_cost(opt.in_stop))
            hours = renewal
        if opt.derate_share > 0:
            cost = cost + opt.derate_share * costs.downtime_per_h * hours
        mean_hours = float(np.mean(hours))
        # an order statistic, not an interpolation: futures with no failure in sight are inf
        q = tuple(float(v) for v in np.quantile(t, QUANTILES, method="inverted_cdf"))
        out.append(OptionOutcome(
            option=opt,
            p_fail_before_repair=float(np.mean(fails)),
            p_fail_24h=float(np.mean(t < 24.0)),
            p_fail_before_stop=float(np.mean(t < next_stop_h)),
            expected_cost=float(np.mean(cost)),
            cost_per_h=float(np.mean(cost)) / max(age_h + mean_hours, 1.0),
            failure_quantiles_h=q,
            failure_h=t,
        ))
    return out


def recommend(outcomes: Sequence[OptionOutcome], risk_limit: float = 0.05) -> Recommendation:
    """The option with the lowest cost per hour among those whose failure risk is within the limit.

    When none is within the limit, the option with the lowest risk (ties: the lower expected cost).
    """
    if not outcomes:
        raise ValueError("no options to choose from")
    within = [o for o in outcomes if o.p_fail_before_repair <= risk_limit]
    if within:
        best = min(within, key=lambda o: (o.cost_per_h, o.p_fail_before_repair))
        others = [o for o in outcomes if o is not best]
        cheaper = [o for o in others if o.cost_per_h < best.cost_per_h]
        reason = (f"{best.option.label}: {best.p_fail_before_repair:.0%} risk of failing before "
                  f"{'the repair' if best.option.name != 'run_on' else 'the horizon'} (limit {risk_limit:.0%}), "
                  f"expected cost {best.expected_cost:,.0f}")
        if cheaper:
            c = min(cheaper, key=lambda o: o.cost_per_h)
            reason += f"; {c.option.label.lower()} is cheaper per hour but risks {c.p_fail_before_repair:.0%}"
        return Recommendation(best, reason, True, risk_limit)
    best = min(outcomes, key=lambda o: (round(o.p_fail_before_repair, 3), o.expected_cost))
    reason = (f"{best.option.label}: no option keeps the failure risk within {risk_limit:.0%}; "
              f"this one has the lowest ({best.p_fail_before_repair:.0%})")
    return Recommendation(best, reason, False, risk_limit)


def health_fan(futures: Futures, outcome: OptionOutcome, times_h: NDArray[np.float64]) -> NDArray[np.float64]:
    """Health index (1 - damage) quantiles over ``times_h`` under an option: ``(len(QUANTILES), len(times_h))``.

    Each future's damage follows the growth law from its damage now to 1 at its failure time
    (under the option); after its repair the asset is new (1), after a failure it stays at 0.
    """
    t = np.asarray(times_h, dtype=np.float64)[None, :]
    fail = outcome.failure_h[:, None]
    k = np.maximum(futures.shape, 1e-3)[:, None]
    c = 1.0 / np.expm1(k)
    d0 = np.clip(futures.damage, 0.0, 0.999)[:, None]
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        frac = np.where(np.isfinite(fail) & (fail > 0), t / fail, 0.0)
        d = (d0 + c) * ((1.0 + c) / (d0 + c)) ** np.clip(frac, 0.0, 1.0) - c
    d = np.where(t >= fail, 1.0, np.clip(d, 0.0, 1.0))
    repair = outcome.option.repair_h
    if math.isfinite(repair):
        d = np.where((t >= repair) & (fail > repair), 0.0, d)
    health = 1.0 - d
    return np.quantile(health, QUANTILES, axis=0)
