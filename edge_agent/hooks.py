"""Per-window hooks of the agent: on-edge RUL inference (ONNX) and the PLC writer."""

from __future__ import annotations

import importlib
import logging
from collections import deque
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import TYPE_CHECKING, Any

from core.assets import AssetConfig
from core.wire import Prediction, utcnow
from edge_agent.config import AgentConfig
from edge_agent.plc import PlcWriter
from edge_agent.processor import WindowResult
from edge_agent.sources.replay import CMAPSS_CHANNELS

if TYPE_CHECKING:
    from edge_agent.agent import EdgeAgent, WindowHook

__all__ = ["CmapssRulHook", "build_hooks", "cmapss_row"]

log = logging.getLogger(__name__)


class CmapssRulHook:
    """RUL of C-MAPSS-layout assets with the promoted ONNX model (numpy + onnxruntime only).

    Each window contributes one row (3 settings + 21 sensors, the channels' ``mean``); every
    ``every`` windows the model predicts the RUL median and interval, published as a
    :class:`~core.wire.Prediction` in cycles.

    Args:
        predictor: an ``OnnxRULPredictor`` (``models.runtime``) or anything with ``predict_unit(rows, coverage)``.
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
        self.predictor = predictor
        self.every = every
        self.coverage = coverage
        self.model_name = model_name
        self.model_version = model_version
        self._rows: dict[str, deque[list[float]]] = {}
        self._count: dict[str, int] = {}
        self.max_rows = max_rows

    @classmethod
    def from_path(cls, path: Path, **kwargs: Any) -> CmapssRulHook:
        """The hook with the model at ``path``.

        Args:
            path: a model's registry directory (its promoted version is loaded), a version
                directory, or an ONNX file with its ``card.json`` beside it.
            **kwargs: passed to the constructor (``every``, ``coverage``, ``max_rows``).
        """
        runtime = importlib.import_module("models.runtime")  # numpy + onnxruntime only, never torch
        path = Path(path)
        if (path / "promoted.json").is_file():
            predictor = runtime.OnnxRULPredictor.from_registry(path.parent, path.name)
        else:
            predictor = runtime.OnnxRULPredictor.from_path(path)
        card = getattr(predictor, "card", {}) or {}
        return cls(predictor, model_name=str(card.get("name", "rul")), model_version=str(card.get("version", "local")), **kwargs)

    def on_window(self, result: WindowResult, agent: EdgeAgent) -> None:
        row = cmapss_row(result.features)
        if row is None:
            return
        aid = result.asset.asset_id
        rows = self._rows.setdefault(aid, deque(maxlen=self.max_rows))
        rows.append(row)
        self._count[aid] = self._count.get(aid, 0) + 1
        if self._count[aid] % self.every:
            return
        try:
            p = self.predictor.predict_unit(list(rows), coverage=self.coverage)
        except Exception as err:  # too few rows for the model's window, bad model ...: skip this one
            log.debug("RUL prediction for %s skipped: %s", aid, err)
            return
        median = float(p["rul"])
        lower, upper = min(float(p["lower"]), median), max(float(p["upper"]), median)
        agent.last_rul_hours[aid] = median
        agent.send_prediction(
            Prediction(
                publisher=agent.agent_id,
                seq=agent.sink.next_seq(),
                asset_id=aid,
                model_name=self.model_name,
                model_version=self.model_version,
                at=utcnow(),
                rul_unit="cycles",
                rul_median=median,
                rul_lower=max(lower, 0.0),
                rul_upper=upper,
                coverage=self.coverage,
                health_index=result.alarm.health if result.alarm is not None else None,
            )
        )


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


def build_hooks(options: AgentConfig, assets: Sequence[AssetConfig]) -> list[WindowHook]:
    """The hooks the options ask for: PLC write-back, RUL inference."""
    hooks: list[Any] = []
    if options.rul_model is not None:
        hooks.append(CmapssRulHook.from_path(options.rul_model, every=options.rul_every, coverage=options.rul_coverage))
    if options.plc.targets:
        hooks.append(PlcWriter(options.plc))
    return hooks
