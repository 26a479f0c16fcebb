"""The file-system model registry and the torch-free edge runtime imports."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

from core.errors import ModelError
from core.inference.card import CARD_SCHEMA_VERSION, ModelCard, read_card
from core.inference.registry import ModelRegistry, load_promoted
from tests._factories import minimal_card

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def onnx_file(tmp_path: Path) -> Path:
    path = tmp_path / "m.onnx"
    path.write_bytes(b"not really onnx")
    return path


def test_register_list_promote_rollback(tmp_path: Path, onnx_file: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    v1 = reg.register("cmapss-FD001", onnx_file, minimal_card(seed=1, metrics={"val_rmse": 12.0}))
    v2 = reg.register("cmapss-FD001", onnx_file, minimal_card(seed=2), promote=True)
    assert (v1.version, v2.version) == ("v1", "v2")
    assert v1.card.model_sha256 and v1.card.created_at and "git_commit" in v1.card.model_fields_set
    assert [v.version for v in reg.list("cmapss-FD001")] == ["v1", "v2"]
    assert reg.promoted("cmapss-FD001").version == "v2"
    reg.promote("cmapss-FD001", "v1")
    path, card = load_promoted(tmp_path / "reg", "cmapss-FD001")
    assert path == tmp_path / "reg" / "cmapss-FD001" / "v1" / "model.onnx"
    assert card.seed == 1
    assert reg.rollback("cmapss-FD001").version == "v2"
    with pytest.raises(ModelError, match="nothing to roll back"):
        reg.rollback("cmapss-FD001")
    pointer = json.loads((tmp_path / "reg" / "cmapss-FD001" / "promoted.json").read_text())
    assert pointer == {"version": "v2", "history": ["v2"]}
    assert reg.names() == ["cmapss-FD001"]


def test_history_tells_whether_a_rollback_is_possible(tmp_path: Path, onnx_file: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    assert reg.history("m") == [] and not reg.can_rollback("m") and reg.rollback_target("m") is None
    reg.register("m", onnx_file, minimal_card(), promote=True)
    assert reg.history("m") == ["v1"] and not reg.can_rollback("m")
    reg.register("m", onnx_file, minimal_card())
    assert reg.history("m") == ["v1"], "registering without promoting leaves the history alone"
    reg.promote("m", "v2")
    assert reg.history("m") == ["v1", "v2"] and reg.can_rollback("m") and reg.rollback_target("m") == "v1"
    assert reg.rollback("m").version == "v1"
    assert reg.history("m") == ["v1"] and not reg.can_rollback("m")
    # a version deleted by hand is no rollback target
    reg.register("m", onnx_file, minimal_card(), promote=True)
    reg.promote("m", "v2")
    shutil.rmtree(tmp_path / "reg" / "m" / "v3")
    assert reg.history("m") == ["v1", "v2"] and reg.rollback("m").version == "v1"


def test_registry_errors(tmp_path: Path, onnx_file: Path) -> None:
    reg = ModelRegistry(tmp_path)
    with pytest.raises(ModelError, match="no promoted version"):
        reg.promoted("x")
    with pytest.raises(ModelError, match="unknown version"):
        reg.promote("x", "v1")
    with pytest.raises(ModelError, match="model name"):
        reg.register("../evil", onnx_file, minimal_card())
    with pytest.raises(ModelError, match="not found"):
        reg.register("x", tmp_path / "missing.onnx", minimal_card())


def test_register_refuses_an_invalid_card_and_writes_nothing(tmp_path: Path, onnx_file: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    card = minimal_card()
    del card["model"]
    with pytest.raises(ModelError, match="not a valid model card: model:"):
        reg.register("cmapss-FD001", onnx_file, card)
    assert not (tmp_path / "reg" / "cmapss-FD001" / "v1").exists()
    assert not (tmp_path / "reg").exists(), "nothing is written for a refused card"
    assert reg.list("cmapss-FD001") == []
    # the name is checked before the card
    with pytest.raises(ModelError, match="model name"):
        reg.register("../evil", onnx_file, card)


def test_registered_card_has_the_schema_version_and_round_trips(tmp_path: Path, onnx_file: Path) -> None:
    reg = ModelRegistry(tmp_path / "reg")
    mv = reg.register("cmapss-FD001", onnx_file, ModelCard.from_dict(minimal_card(seed=4, metrics={"val_rmse": 11.5})))
    written = json.loads((mv.path / "card.json").read_text(encoding="utf-8"))
    assert written["schema_version"] == CARD_SCHEMA_VERSION
    assert mv.card.schema_version == CARD_SCHEMA_VERSION
    again = read_card(mv.path / "card.json")
    assert again.to_dict() == written == mv.card.to_dict()
    assert ModelCard.from_dict(mv.card.to_dict()) == mv.card
    assert (again.seed, again.metrics, again.name, again.version) == (4, {"val_rmse": 11.5}, "cmapss-FD001", "v1")


def test_edge_runtime_imports_no_torch() -> None:
    code = (
        "import sys; import core.inference.runtime, core.inference.registry, core.inference.calibration, models.evaluation; "
        "bad = [m for m in ('torch', 'pytorch_lightning', 'lightning', 'sktime', 'sklearn') "
        "if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_a_model_file_that_is_not_its_cards_is_refused(tmp_path: Path) -> None:
    """Supply chain: the predictor checks the ONNX file against the sha256 its card was registered with."""
    from core.inference.registry import SHIPPED_DIR
    from core.inference.runtime import OnnxRULPredictor

    shipped = ModelRegistry(SHIPPED_DIR).promoted("cmapss-FD001")
    version_dir = tmp_path / "cmapss-FD001" / shipped.version
    shutil.copytree(shipped.path, version_dir)
    assert OnnxRULPredictor.from_path(version_dir).card.model_sha256 == shipped.card.model_sha256
    onnx_file = version_dir / "model.onnx"
    onnx_file.write_bytes(onnx_file.read_bytes() + b"\0")  # one byte more: not the registered file
    with pytest.raises(ModelError, match="not the one its card names"):
        OnnxRULPredictor.from_path(version_dir)
