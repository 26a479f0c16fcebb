"""Per-window hooks of the agent: on-edge RUL inference (ONNX) and the PLC writer.

Two RUL hooks, picked by the model card: :class:`CmapssRulHook` for C-MAPSS-layout assets
(rows of settings and sensors per cycle) and :class:`FeatureRulHook` for vibration assets (a
rolling window of the agent's own feature frames, RUL in the card's unit: hours, or the share of
life left).
"""

from __future__ import annotations

import logging
import math
import time
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Self

from core.assets import AssetConfig
from core.datasets.cmapss import CMAPSS_CHANNELS
from core.errors import ModelError
from core.inference.card import ModelCard
from core.inference.runtime import FeatureRULPredictor, OnnxRULPredictor, card_at
from core.settings import EdgeSettings
from core.wire import RUL_UNITS, Prediction, utcnow
from edge_agent.plc import PlcWriter
from edge_agent.processor import WindowResult

if TYPE_CHECKING:
    from edge_agent.agent import EdgeAgent, WindowHook

__all__ = ["CmapssRulHook", "FeatureRulHook", "StepSampler", "UnloadedRulHook", "build_hooks", "cmapss_row", "load_rul_hook"]

log = logging.getLogger(__name__)


class _RulHook:
    """What both RUL hooks share: the predictor, the reported model identity, publishing, and
    following promotions.

    A hook made by :meth:`from_path` on a registry model directory watches its ``promoted.json``
    (at most every ``reload_check_s`` seconds) and swaps in the newly promoted version, so a
    promotion or roll back on the dashboard reaches the running agent without a restart. A
    version that fails to load is logged and the current one kept.
    """

    predictor_class: ClassVar[type[OnnxRULPredictor] | type[FeatureRULPredictor]] = OnnxRULPredictor
    reload_check_s = 5.0

    def __init__(self, predictor: Any, *, coverage: float, model_name: str, model_version: str) -> None:
        self.predictor = predictor
        self.coverage = coverage
        self.model_name = model_name
        self.model_version = model_version
        self._pointer: Path | None = None
        self._pointer_stamp: tuple[int, int] | None = None
        self._next_check = 0.0

    def follow(self, model_dir: Path) -> None:
        """Watch the registry model directory ``model_dir`` for promotions."""
        self._pointer = Path(model_dir) / "promoted.json"
        self._pointer_stamp = self._stamp()

    def _stamp(self) -> tuple[int, int] | None:
        try:
            st = self._pointer.stat() if self._pointer is not None else None
        except OSError:
            return None
        return (st.st_mtime_ns, st.st_size) if st is not None else None

    def _use(self, predictor: Any) -> None:
        """Switch to ``predictor`` (subclasses reset what depends on the model)."""
        card: ModelCard | None = getattr(predictor, "card", None)
        self.predictor = predictor
        self.model_name = (card.name if card else None) or self.model_name
        self.model_version = (card.version if card else None) or self.model_version

    def maybe_reload(self) -> bool:
        """Load the promoted version if the registry pointer changed; returns whether it switched."""
        if self._pointer is None or time.monotonic() < self._next_check:
            return False
        self._next_check = time.monotonic() + self.reload_check_s
        stamp = self._stamp()
        if stamp is None or stamp == self._pointer_stamp:
            return False
        self._pointer_stamp = stamp
        try:
            predictor = self.predictor_class.from_path(self._pointer.parent)
            self.unit_of(predictor)
        except Exception as err:  # a half-written or broken version must not stop the agent
            log.warning(
                "RUL model %s: newly promoted version not loaded, keeping %s: %s", self._pointer.parent, self.model_version, err
            )
            return False
        old = self.model_version
        self._use(predictor)
        log.warning("RUL model %s: now running promoted %s (was %s)", self.model_name, self.model_version, old)
        return True

    @classmethod
    def from_path(cls, path: Path, **kwargs: Any) -> Self:
        """The hook with the model at ``path``.

        Args:
            path: a model's registry directory (its promoted version is loaded), a version
                directory, or an ONNX file with its ``card.json`` beside it.
            **kwargs: passed to the constructor.
        """
        predictor = cls.predictor_class.from_path(Path(path))
        card = predictor.card
        hook = cls(predictor, model_name=card.name or "rul", model_version=card.version or "local", **kwargs)
        if (Path(path) / "promoted.json").is_file():
            hook.follow(Path(path))
        return hook

    @staticmethod
    def unit_of(predictor: Any) -> str:
        """The wire unit (:data:`core.wire.RUL_UNITS`) of a feature model's RUL, from its card.

        Raises:
            ModelError: the card names a unit the wire does not carry (never relabelled silently).
        """
        unit = str(getattr(predictor, "rul_unit", "h"))
        if unit not in RUL_UNITS:
            raise ModelError(f"the model's RUL unit {unit!r} is not one the wire carries: {', '.join(RUL_UNITS)}")
        return unit

    def _publish(self, agent: EdgeAgent, result: WindowResult, rul: tuple[float, float, float], unit: str) -> None:
        """Send one prediction ``(median, lower, upper)`` in ``unit`` for the window's asset."""
        median, lower, upper = rul
        aid = result.asset.asset_id
        agent.last_rul[aid] = (median, unit)  # what the PLC write-back writes, once, with its age
        agent.rul_at[aid] = time.monotonic()
        agent.rul_faults.pop(aid, None)
        agent.send_prediction(
            Prediction(
                publisher=agent.agent_id,
                seq=agent.sink.next_seq(),
                asset_id=result.asset.asset_id,
                model_name=self.model_name,
                model_version=self.model_version,
                at=utcnow(),
                rul_unit=unit,
                rul_median=median,
                rul_lower=max(lower, 0.0),
                rul_upper=upper,
                coverage=self.coverage,
                health_index=result.alarm.health if result.alarm is not None else None,
                rul_cap=_positive(getattr(self.predictor, "rul_cap", None)),
            )
        )


class CmapssRulHook(_RulHook):
    """RUL of C-MAPSS-layout assets with the promoted ONNX model (numpy + onnxruntime only).

    Each window contributes one row (3 settings + 21 sensors, the channels' ``mean``); every
    ``every`` windows the model predicts the RUL median and interval, published as a
    :class:`~core.wire.Prediction` in cycles. Each row carries the engine's cycle number too
    (models with an age channel read it): the asset's ``cycle`` channel where it has one (an
    operating-cycle counter tag), else the asset's ``cycles_at_start`` (its age when monitoring
    began, from its configuration) plus the rows counted since this hook first saw it.

    Args:
        predictor: an ``OnnxRULPredictor`` (``core.inference.runtime``) or anything with ``predict_unit(rows, coverage)``.
        every: windows between predictions.
        coverage: interval coverage.
        model_name, model_version: reported with each prediction.
    """

    def __init__(
        self,
        predictor: Any,
        *,
        every: int = 10,
        coverage: float = 0.9,
        model_name: str = "rul",
        model_version: str = "local",
        max_rows: int = 1000,
    ) -> None:
        super().__init__(predictor, coverage=coverage, model_name=model_name, model_version=model_version)
        self.every = every
        self._rows: dict[str, deque[list[float]]] = {}
        self._count: dict[str, int] = {}
        self.max_rows = max_rows

    def on_window(self, result: WindowResult, agent: EdgeAgent) -> None:
        self.maybe_reload()
        row = cmapss_row(result.features)
        if row is None:
            return
        aid = result.asset.asset_id
        rows = self._rows.setdefault(aid, deque(maxlen=self.max_rows))
        self._count[aid] = self._count.get(aid, 0) + 1
        counter = result.features.get("cycle", {})
        cycle = _positive(counter.get("mean", counter.get("value")))  # None when absent or not a count
        # the raw 26-column layout: unit (unused), cycle, settings, sensors
        if cycle is None:
            cycle = float(result.asset.cycles_at_start + self._count[aid])
        rows.append([0.0, cycle, *row])
        if self._count[aid] % self.every:
            return
        try:
            p = self.predictor.predict_unit(list(rows), coverage=self.coverage)
        except Exception as err:  # too few rows for the model's window, bad model ...: skip this one
            log.debug("RUL prediction for %s skipped: %s", aid, err)
            _record_fault(agent, aid, f"prediction failed: {err}")
            return
        median = float(p["rul"])
        self._publish(agent, result, (median, min(float(p["lower"]), median), max(float(p["upper"]), median)), "cycles")


class StepSampler:
    """One frame per ``step_hours`` of asset time, per key (asset): the spacing a feature model was trained on.

    A frame is taken once ``1 - tolerance`` of a step has passed since the last one taken, so a
    frame due exactly one step later is never lost to clock jitter or rounding (FEMTO's snapshots
    come every 10 s and its model's step is 10 s).

    Args:
        step_hours: asset hours between taken frames.
        time_scale: asset seconds per second of the timestamps (a simulator on an accelerated clock).
        tolerance: share of a step that may be missing between two taken frames.
    """

    def __init__(self, step_hours: float, time_scale: float = 1.0, tolerance: float = 0.1) -> None:
        if not (step_hours > 0 and time_scale > 0 and 0 <= tolerance < 1):
            raise ValueError(
                f"need step_hours > 0, time_scale > 0 and 0 <= tolerance < 1, got {step_hours}, {time_scale}, {tolerance}"
            )
        self.step_hours, self.time_scale, self.tolerance = float(step_hours), float(time_scale), float(tolerance)
        self._last: dict[str, datetime] = {}

    def take(self, key: str, at: datetime) -> bool:
        """Whether the frame at ``at`` is taken (and, if so, the new reference of ``key``)."""
        last = self._last.get(key)
        if last is not None and (at - last).total_seconds() * self.time_scale / 3600.0 < (1.0 - self.tolerance) * self.step_hours:
            return False
        self._last[key] = at
        return True


class FeatureRulHook(_RulHook):
    """RUL of vibration assets from the agent's own feature frames (numpy + onnxruntime only).

    The model's card names the features it reads (channel, feature, in order), the frames per
    input and the asset-time spacing of frames (``step_hours``). The hook keeps, per asset, a
    rolling window of one frame per ``step_hours`` of asset time (see :class:`StepSampler`),
    and predicts the RUL median and interval, in the card's unit (``h`` or ``%``, the share of
    life left), each time a frame enters the window. Assets whose frames lack a feature the
    model reads are skipped.

    Args:
        predictor: a ``FeatureRULPredictor`` (``core.inference.runtime``) or anything with ``window``,
            ``step_hours``, ``frame_row(features)`` and ``predict_unit(rows, coverage)``.
        coverage: interval coverage.
        time_scale: asset seconds per second of the windows' timestamps (a simulator on an
            accelerated clock, e.g. 3600; 1 on real machines).
        model_name, model_version: reported with each prediction.
    """

    predictor_class: ClassVar[type[OnnxRULPredictor] | type[FeatureRULPredictor]] = FeatureRULPredictor

    def __init__(
        self,
        predictor: Any,
        *,
        coverage: float = 0.9,
        time_scale: float = 1.0,
        model_name: str = "rul",
        model_version: str = "local",
    ) -> None:
        if not (math.isfinite(time_scale) and time_scale > 0):
            raise ValueError(f"time_scale must be > 0 asset seconds per second; got {time_scale!r}")
        super().__init__(predictor, coverage=coverage, model_name=model_name, model_version=model_version)
        self.time_scale = float(time_scale)
        self.window = int(predictor.window)
        self.step_hours = float(predictor.step_hours)
        self.unit = self.unit_of(predictor)
        self._rows: dict[str, deque[list[float]]] = {}
        self._sampler = StepSampler(self.step_hours, self.time_scale)
        self._incomplete: set[str] = set()

    def rows(self, asset_id: str) -> list[list[float]]:
        """The frames (model feature values) currently in the asset's window, oldest first."""
        return list(self._rows.get(asset_id, ()))

    def add_frame(self, asset_id: str, at: datetime, features: Mapping[str, Mapping[str, float]]) -> bool:
        """Offer one frame; returns whether it entered the window (the first of a new step)."""
        row = self.predictor.frame_row(features)
        if row is None:
            if asset_id not in self._incomplete:
                self._incomplete.add(asset_id)
                log.info("no RUL for %s yet: its frames lack features %s reads", asset_id, self.model_name)
            return False
        if not self._sampler.take(asset_id, at):
            return False
        self._rows.setdefault(asset_id, deque(maxlen=self.window)).append([float(v) for v in row])
        return True

    def predict(self, asset_id: str) -> tuple[float, float, float] | None:
        """``(median, lower, upper)`` from the asset's window, ``None`` if it cannot be predicted."""
        rows = self._rows.get(asset_id)
        if not rows:
            return None
        try:
            p = self.predictor.predict_unit(list(rows), coverage=self.coverage)
        except Exception as err:  # bad model, non-finite input ...: skip this one
            log.debug("RUL prediction for %s skipped: %s", asset_id, err)
            return None
        median = max(float(p["rul"]), 0.0)
        lower, upper = min(float(p["lower"]), median), max(float(p["upper"]), median)
        if not all(math.isfinite(v) for v in (median, lower, upper)):
            return None
        return median, max(lower, 0.0), upper

    def _use(self, predictor: Any) -> None:
        super()._use(predictor)
        self.window = int(predictor.window)
        self.step_hours = float(predictor.step_hours)
        self.unit = self.unit_of(predictor)
        # a new model may read other features or another window: start its windows afresh
        self._rows, self._incomplete = {}, set()
        self._sampler = StepSampler(self.step_hours, self.time_scale)

    def on_window(self, result: WindowResult, agent: EdgeAgent) -> None:
        self.maybe_reload()
        aid = result.asset.asset_id
        if not self.add_frame(aid, result.window_start, result.features):
            return
        out = self.predict(aid)
        if out is None:
            _record_fault(agent, aid, "prediction failed")
            return
        self._publish(agent, result, out, self.unit)

    def prediction_interval_s(self) -> float:
        """Wall seconds between two predictions of an asset that delivers frames steadily."""
        return self.step_hours * 3600.0 / self.time_scale


class UnloadedRulHook:
    """Stands in for a RUL hook whose model failed to load, so the agent goes on monitoring health.

    Every asset's RUL is marked faulty (the PLC write-back shows it invalid); loading is retried
    at most every ``retry_s`` seconds and, once it succeeds, the loaded hook takes over.

    Args:
        load: builds the real hook (raises while the model cannot be loaded).
        reason: why the first load failed.
        retry_s: seconds between two load attempts.
    """

    def __init__(self, load: Callable[[], CmapssRulHook | FeatureRulHook], reason: str, retry_s: float = 30.0) -> None:
        self.load = load
        self.reason = reason
        self.retry_s = retry_s
        self.hook: CmapssRulHook | FeatureRulHook | None = None
        self._next_try = time.monotonic() + retry_s

    def on_window(self, result: WindowResult, agent: EdgeAgent) -> None:
        if self.hook is None and time.monotonic() >= self._next_try:
            self._next_try = time.monotonic() + self.retry_s
            try:
                self.hook = self.load()
            except Exception as err:  # still broken: keep monitoring health without RUL
                self.reason = f"model not loaded: {err}"
            else:
                log.warning("RUL model %s loaded; predictions start", self.hook.model_name)
                agent.rul_faults.clear()
        if self.hook is not None:
            self.hook.on_window(result, agent)
            return
        for aid in agent.assets:
            agent.rul_faults[aid] = self.reason


def _record_fault(agent: EdgeAgent | None, asset_id: str, reason: str) -> None:
    # a hook driven without an agent (a model scored on its own) has nowhere to record the fault
    if agent is not None:
        agent.rul_faults[asset_id] = reason


def _positive(value: Any) -> float | None:
    try:
        v = float(value)
    except (TypeError, ValueError):
        return None
    return v if math.isfinite(v) and v > 0 else None


def cmapss_row(features: Mapping[str, Mapping[str, float]]) -> list[float] | None:
    """One model input row (3 settings + 21 sensors) from a window's features, ``None`` if incomplete.

    A channel the quality monitor calls flat-lined still counts, with the value it keeps
    reporting: in single-condition subsets (FD001, FD003) the operating settings and several
    sensors are constant by design, and the model was trained on those very values (its card's
    normaliser drops the constant sensors). Dropping the window would stop predictions for good.
    """
    row: list[float] = []
    for name in CMAPSS_CHANNELS:
        ch = features.get(name, {})
        value = ch.get("mean", ch.get("value"))
        if value is None:
            return None
        row.append(float(value))
    return row


def load_rul_hook(edge: EdgeSettings) -> CmapssRulHook | FeatureRulHook:
    """The RUL hook of ``edge.rul_model``, picked by its card (raises when the model cannot be loaded)."""
    assert edge.rul_model is not None
    if card_at(edge.rul_model).is_feature_model:
        return FeatureRulHook.from_path(edge.rul_model, coverage=edge.rul_coverage, time_scale=edge.rul_time_scale)
    return CmapssRulHook.from_path(edge.rul_model, every=edge.rul_every, coverage=edge.rul_coverage)


def build_hooks(edge: EdgeSettings, assets: Sequence[AssetConfig]) -> list[WindowHook]:
    """The hooks ``edge`` (``settings.edge``) asks for: RUL inference, then PLC write-back (it writes
    the RUL of the same window).

    A RUL model that fails to load does not stop the agent when a PLC is written: health monitoring
    goes on, the PLC shows the RUL invalid, and loading is retried (:class:`UnloadedRulHook`).
    Without PLC targets the error is raised, as before, to the one starting the agent.
    """
    hooks: list[Any] = []
    max_age: float | None = None
    if edge.rul_model is not None:
        try:
            rul = load_rul_hook(edge)
        except Exception as err:
            if not edge.plc.targets:
                raise
            log.error("RUL model %s not loaded; health monitoring goes on, the PLC shows RUL invalid: %s",
                      edge.rul_model, err)
            hooks.append(UnloadedRulHook(lambda: load_rul_hook(edge), f"model not loaded: {err}"))
        else:
            hooks.append(rul)
            if isinstance(rul, FeatureRulHook):  # three prediction intervals, at least a minute
                max_age = max(3 * rul.prediction_interval_s(), 60.0)
    if edge.plc.targets:
        hooks.append(PlcWriter(edge.plc, rul_max_age_s=max_age))
    return hooks
