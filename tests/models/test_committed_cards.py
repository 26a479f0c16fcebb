"""The committed C-MAPSS models score what their cards say, rebuilt from the card alone.

Covers the promoted shipped models (``models/shipped``) and the LSTM ensembles that the transformer
is compared with (``benchmarks/results/rul_baselines``, written by ``benchmarks/rul_ensembles.py``):
the card's data configuration and seed rebuild the same validation units and cuts, and onnxruntime
on the committed ``model.onnx`` gives the card's validation RMSE. The comparison's result file
must agree with the files too.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from core.inference.registry import SHIPPED_DIR, ModelRegistry, ModelVersion
from core.inference.runtime import OnnxRULPredictor
from models.data.cmapss import CMAPSSDataModule
from models.metrics import rmse
from models.pipeline import card_datamodule

REPO = Path(__file__).resolve().parents[2]
REGISTRIES = [SHIPPED_DIR, REPO / "benchmarks" / "results" / "rul_baselines"]
COMPARISON = REPO / "benchmarks" / "results" / "rul_ensembles.json"


def _committed() -> list[ModelVersion]:
    out = []
    for root in REGISTRIES:
        if root.is_dir():
            reg = ModelRegistry(root)
            out += [reg.promoted(n) for n in reg.names() if n.startswith("cmapss-")]
    return out


def _score(mv: ModelVersion, cmapss_dir: Path) -> tuple[float, CMAPSSDataModule]:
    card = mv.card
    dm = card_datamodule(card, cmapss_dir)  # raises unless the card's seed rebuilds its validation units
    return rmse(dm.y_val, OnnxRULPredictor(mv.model_path, card).predict_windows(dm.X_val)), dm


@pytest.mark.parametrize("mv", _committed(), ids=lambda mv: f"{mv.path.parent.parent.name}/{mv.name}/{mv.version}")
def test_committed_model_scores_its_card(mv: ModelVersion, cmapss_dir: Path) -> None:
    got, _ = _score(mv, cmapss_dir)
    assert got == pytest.approx(mv.card.metrics["val_rmse_onnx"], abs=1e-3)


def test_ensemble_comparison_matches_the_committed_models(cmapss_dir: Path) -> None:
    rows = json.loads(COMPARISON.read_text(encoding="utf-8"))["rows"]
    assert rows
    shipped = ModelRegistry(REGISTRIES[0])
    for row in rows:
        tf = shipped.get(f"cmapss-{row['subset']}", row["transformer_version"])
        got, _ = _score(tf, cmapss_dir)
        assert got == pytest.approx(row["transformer_val_rmse"], abs=1e-3)
        preds = row["predictions"]
        y = np.asarray(preds["y"])
        assert rmse(y, np.asarray(preds["lstm"])) == pytest.approx(row["lstm_val_rmse"], abs=1e-2)
        assert rmse(y, np.asarray(preds["transformer"])) == pytest.approx(row["transformer_val_rmse"], abs=1e-2)
        d = row["transformer_minus_lstm"]
        # a rescored row (a newly shipped transformer) takes the stored LSTM predictions, rounded to
        # 4 decimals: its difference moves in the 6th decimal
        assert d["diff"] == pytest.approx(row["transformer_val_rmse"] - row["lstm_val_rmse"], abs=1e-4)
        assert d["ci95_low"] <= d["diff"] <= d["ci95_high"]
        if "lstm_registered" in row:
            base = ModelRegistry(REGISTRIES[1]).promoted(f"cmapss-{row['subset']}-lstm")
            assert base.card.metrics["val_rmse_onnx"] == pytest.approx(row["lstm_registered"]["val_rmse_onnx"])


def test_archived_versions_a_committed_result_nests_in_still_score_their_cards(cmapss_dir: Path) -> None:
    """The cross-fit comparison nests in FD002/FD004 v8, no longer shipped: their ONNX files come out of
    the archive (``benchmarks/_archive.py``) and give the card's and the committed table's RMSE."""
    from benchmarks._archive import registered_version

    rows = json.loads((REPO / "benchmarks" / "results" / "rul_crossfit.json").read_text(encoding="utf-8"))["rows"]
    assert rows
    for row in rows:
        name = f"cmapss-{row['subset']}"
        assert not (SHIPPED_DIR / name / row["shipped_version"]).exists(), "models/shipped holds the promoted version only"
        mv = registered_version(SHIPPED_DIR, name, row["shipped_version"])
        got, _ = _score(mv, cmapss_dir)
        assert got == pytest.approx(mv.card.metrics["val_rmse_onnx"], abs=1e-3)
        assert got == pytest.approx(row["shipped_int8_rmse"], abs=1e-6)


def test_the_committed_registries_hold_their_promoted_version_only() -> None:
    for root in REGISTRIES:
        reg = ModelRegistry(root)
        for name in reg.names():
            promoted = reg.promoted(name).version
            assert [v.version for v in reg.list(name)] == [promoted] and reg.history(name) == [promoted], name
