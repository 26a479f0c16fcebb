"""The typed model card: every committed card reads, round-trips unchanged, and bad cards are named errors."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from core.errors import ModelError
from core.inference.card import CARD_SCHEMA_VERSION, ModelCard, read_card

REPO = Path(__file__).resolve().parents[2]
COMMITTED = sorted(
    [*REPO.glob("models/shipped/*/v*/card.json"), *REPO.glob("benchmarks/results/**/card.json")],
)


def _minimal() -> dict[str, Any]:
    return {
        "model": "transformer",
        "dataset": {"name": "cmapss", "subset": "FD001"},
        "preprocessing": {"window": 30, "rul_cap": 125, "normalizer": {"kind": "condition"}},
    }


def test_there_are_committed_cards_to_check() -> None:
    assert len(COMMITTED) >= 5


@pytest.mark.parametrize("path", COMMITTED, ids=lambda p: str(p.relative_to(REPO)))
def test_committed_card_reads_and_round_trips_unchanged(path: Path) -> None:
    raw = json.loads(path.read_text(encoding="utf-8"))
    card = read_card(path)
    assert card.to_dict() == raw
    assert card.name == raw["name"]
    assert card.preprocessing.window == raw["preprocessing"]["window"]


def test_a_card_without_schema_version_reads_as_version_1() -> None:
    card = ModelCard.from_dict(_minimal())
    assert card.schema_version == 1
    assert "schema_version" not in card.to_dict()  # nothing invented on the way back
    assert CARD_SCHEMA_VERSION >= 2


def test_unknown_fields_are_kept_at_every_level() -> None:
    data = _minimal()
    data["future_field"] = {"a": 1}
    data["dataset"]["plant_runs"] = [{"name": "P-101", "censored": False}]
    data["preprocessing"]["padding"] = "left"
    assert ModelCard.from_dict(data).to_dict() == data


def test_kinds_and_units() -> None:
    rows = ModelCard.from_dict(_minimal())
    assert not rows.is_feature_model
    assert rows.rul_unit == "cycles"
    data = _minimal()
    data["preprocessing"].update(kind="feature_frames", step_hours=1.0, rul_unit="%")
    frames = ModelCard.from_dict(data)
    assert frames.is_feature_model
    assert frames.rul_unit == "%"
    del data["preprocessing"]["rul_unit"]
    assert ModelCard.from_dict(data).rul_unit == "h"


def test_metric_is_numeric_or_none() -> None:
    card = ModelCard.from_dict({**_minimal(), "metrics": {"val_rmse": 7.5, "n": 3, "note": "x", "flag": True}})
    assert card.metric("val_rmse") == 7.5
    assert card.metric("n") == 3.0
    assert card.metric("note") is None
    assert card.metric("flag") is None
    assert card.metric("missing") is None


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (lambda d: d.pop("model"), "model"),
        (lambda d: d["preprocessing"].update(window=0), "preprocessing.window"),
        (lambda d: d["preprocessing"].update(kind="images"), "preprocessing.kind"),
        (lambda d: d.update(seed="zero"), "seed"),
        (lambda d: d.pop("dataset"), "dataset"),
    ],
)
def test_an_invalid_card_names_the_field(change: Any, field: str) -> None:
    data = _minimal()
    change(data)
    with pytest.raises(ModelError, match=field.replace(".", r"\.")):
        ModelCard.from_dict(data, source="card.json")


def test_read_card_errors(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="no model card"):
        read_card(tmp_path / "card.json")
    (tmp_path / "card.json").write_text("{not json", encoding="utf-8")
    with pytest.raises(ModelError, match="unreadable"):
        read_card(tmp_path / "card.json")
    (tmp_path / "card.json").write_text("[1, 2]", encoding="utf-8")
    with pytest.raises(ModelError, match="JSON object"):
        read_card(tmp_path / "card.json")
