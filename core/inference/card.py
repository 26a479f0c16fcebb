"""The model card: what a registered model is, how to feed it, how far to trust it, how to rebuild it.

A card travels as ``card.json`` beside each ONNX file in the registry. :class:`ModelCard` is its
typed form: every reader (edge agent, dashboard, prescriber, training) goes through it instead of
string keys. Sections keep the fields this version does not name (``extra="allow"``), so a card
written by an older or newer GenEdge reads, and writes back, without losing anything.

Schema versions:

* 1 - cards without ``schema_version`` (everything registered before the field existed);
* 2 - the same fields, ``schema_version`` written by the registry.

Both read the same way; :data:`CARD_SCHEMA_VERSION` is what the registry writes now.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field, ValidationError

from core.errors import ModelError

__all__ = [
    "CARD_SCHEMA_VERSION",
    "DatasetCard",
    "ModelCard",
    "OnnxCard",
    "PreprocessingCard",
    "read_card",
]

#: the schema version the registry writes
CARD_SCHEMA_VERSION = 2


class _Section(BaseModel):
    # Unknown fields are kept, so a card round-trips through any version of this class.
    model_config = ConfigDict(extra="allow", validate_assignment=True)


class DatasetCard(_Section):
    """Where the training data came from, and how it was split."""

    name: str = Field(description="cmapss, femto, simulator, ...")
    subset: str | None = Field(default=None, description="C-MAPSS subset (FD001..FD004)")
    train_file_sha256: str | None = Field(default=None, description="SHA-256 of the training file")
    extra_train_files_sha256: dict[str, str] = Field(
        default_factory=dict, description="other subsets whose units all joined the training set, by subset"
    )
    train_units: list[Any] = Field(default_factory=list)
    val_units: list[Any] = Field(default_factory=list)
    fold_units: list[list[Any]] | None = Field(default=None, description="a cross-fit: each fold's held-out units")


class PreprocessingCard(_Section):
    """How raw inputs become the model's input windows."""

    kind: Literal["cmapss_rows", "feature_frames"] = Field(
        default="cmapss_rows", description="raw per-cycle C-MAPSS rows, or the edge agent's feature frames"
    )
    dataset: str | None = None
    window: int = Field(gt=0, description="time steps per input window")
    rul_cap: float = Field(gt=0, description="targets were capped here (cycles, hours or %)")
    rul_unit: str | None = Field(default=None, description="h or % for feature models; C-MAPSS models are in cycles")
    step_hours: float | None = Field(default=None, gt=0, description="asset hours between feature frames")
    input_layout: str = "batch, channel, time"
    normalizer: dict[str, Any] = Field(description="the fitted normaliser, as its to_dict() wrote it")


class OnnxCard(_Section):
    """The ONNX graph's interface."""

    input: str = "x"
    output: str = "rul"
    layout: str = "batch, channel, time"


class ModelCard(_Section):
    """One model's card.

    ``name``, ``version``, ``model_file``, ``model_sha256`` and ``model_size_bytes`` are set by
    :meth:`core.inference.registry.ModelRegistry.register`; a card built by training and not
    yet registered has them unset.
    """

    schema_version: int = Field(default=1, ge=1, description="1 for cards written before the field existed")
    task: Literal["rul"] = "rul"
    model: str = Field(description="transformer, lstm, minirocket, ...")
    variant: str = Field(default="fp32", description="fp32, int8-dynamic, int8-compact, ...")
    name: str | None = None
    version: str | None = None
    created_at: str | None = None
    git_commit: str | None = None
    seed: int | None = None
    model_file: str | None = None
    model_sha256: str | None = None
    model_size_bytes: int | None = None
    dataset: DatasetCard
    config: dict[str, Any] = Field(default_factory=dict, description="the recipe: data and model hyper-parameters")
    preprocessing: PreprocessingCard
    calibration: dict[str, Any] | None = Field(default=None, description="conformal interval (SplitConformal.to_dict())")
    metrics: dict[str, Any] = Field(default_factory=dict)
    onnx: OnnxCard = Field(default_factory=OnnxCard)
    recalibrated_from: str | None = Field(default=None, description="the version whose ONNX file this one reuses")

    @classmethod
    def from_dict(cls, data: Any, *, source: str = "model card") -> ModelCard:
        """Validate a card's JSON object.

        Raises:
            ModelError: the card misses a required field or has one of the wrong type; the message
                names the field and what was expected.
        """
        if not isinstance(data, dict):
            raise ModelError(f"{source} must be a JSON object, got {type(data).__name__}")
        try:
            return cls.model_validate(data)
        except ValidationError as err:
            problems = "; ".join(f"{'.'.join(str(p) for p in e['loc'])}: {e['msg']}" for e in err.errors())
            raise ModelError(f"{source} is not a valid model card: {problems}") from None

    def to_dict(self) -> dict[str, Any]:
        """The JSON object written to ``card.json``: the fields that were given, nothing invented."""
        return self.model_dump(mode="json", exclude_unset=True)

    def metric(self, key: str) -> float | None:
        """A numeric metric, ``None`` if the card has none of that name."""
        value = self.metrics.get(key)
        return float(value) if isinstance(value, int | float) and not isinstance(value, bool) else None

    @property
    def is_feature_model(self) -> bool:
        """Whether the model reads edge feature frames (not C-MAPSS rows)."""
        return self.preprocessing.kind == "feature_frames"

    @property
    def rul_unit(self) -> str:
        """The unit of the model's RUL: ``cycles`` for C-MAPSS rows, else the card's (``h`` by default)."""
        if not self.is_feature_model:
            return "cycles"
        return self.preprocessing.rul_unit or "h"


def read_card(path: str | Path) -> ModelCard:
    """Read and validate one ``card.json``.

    Raises:
        ModelError: the file is missing, not JSON, or not a valid card.
    """
    p = Path(path)
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except FileNotFoundError:
        raise ModelError(f"no model card: expected {p}") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as err:
        raise ModelError(f"unreadable model card {p}: {err}") from err
    return ModelCard.from_dict(data, source=str(p))
