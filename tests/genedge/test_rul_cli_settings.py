"""``genedge rul``/``genedge models`` take their registry and training defaults from the settings.

The ``models`` section (``--config`` TOML file, ``GENEDGE_MODELS__*`` environment) sets the registry of
every command; ``--registry-dir`` and the other explicit options win over it.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path
from types import SimpleNamespace
from typing import Any

import pytest
from typer.testing import CliRunner

from core.inference.card import ModelCard
from core.inference.registry import SHIPPED_DIR, ModelRegistry
from genedge.cli import app
from tests._factories import minimal_card

MODEL = "sim-bearing"


@pytest.fixture
def registry(tmp_path: Path) -> Path:
    """A scratch registry with two versions of the shipped simulator model, v2 promoted."""
    root = tmp_path / "settings-registry"
    shutil.copytree(SHIPPED_DIR / MODEL, root / MODEL)
    reg = ModelRegistry(root)
    v1 = reg.get(MODEL, "v1")
    reg.register(MODEL, v1.model_path, v1.card, promote=True)
    return root


def _listed(result: Any) -> list[tuple[str, bool]]:
    assert result.exit_code == 0, result.output
    return [(row["version"], row["promoted"]) for row in json.loads(result.stdout)]


def test_models_commands_use_the_registry_of_the_environment(registry: Path) -> None:
    runner = CliRunner(env={"GENEDGE_MODELS__REGISTRY_DIR": str(registry)})
    assert _listed(runner.invoke(app, ["models", "list", "--json"])) == [("v1", False), ("v2", True)]
    res = runner.invoke(app, ["models", "rollback", MODEL])
    assert res.exit_code == 0, res.output
    assert ModelRegistry(registry).promoted(MODEL).version == "v1"
    res = runner.invoke(app, ["models", "promote", MODEL, "v2"])
    assert res.exit_code == 0, res.output
    assert ModelRegistry(registry).promoted(MODEL).version == "v2"


def test_registry_dir_option_wins_over_the_settings(registry: Path, tmp_path: Path) -> None:
    runner = CliRunner(env={"GENEDGE_MODELS__REGISTRY_DIR": str(tmp_path / "elsewhere")})
    assert _listed(runner.invoke(app, ["models", "list", "--json", "--registry-dir", str(registry)])) == [
        ("v1", False),
        ("v2", True),
    ]
    assert _listed(runner.invoke(app, ["models", "list", "--json"])) == []


def test_registry_comes_from_the_config_file(registry: Path, tmp_path: Path) -> None:
    config = tmp_path / "genedge.toml"
    config.write_text(f'[models]\nregistry_dir = "{registry}"\n', encoding="utf-8")
    assert _listed(CliRunner().invoke(app, ["models", "list", "--json", "--config", str(config)])) == [
        ("v1", False),
        ("v2", True),
    ]


def test_a_bad_config_file_is_a_clear_error(tmp_path: Path) -> None:
    res = CliRunner().invoke(app, ["models", "list", "--config", str(tmp_path / "missing.toml")])
    assert res.exit_code == 1
    assert "missing.toml" in res.output and "does not exist" in res.output


@pytest.fixture
def captured(monkeypatch: pytest.MonkeyPatch) -> dict[str, Any]:
    """``rul train-sim`` with training and registration replaced by recorders (no torch run)."""
    import models.sim_pipeline as sim

    calls: dict[str, Any] = {}

    def train_simulator(**kwargs: Any) -> str:
        calls["train"] = kwargs
        return "result"

    def register_sim(result: str, root: Path, **kwargs: Any) -> Any:
        calls["registry"] = Path(root)
        card = ModelCard.from_dict(minimal_card(metrics={}, dataset={"name": "simulator", "plant_runs": []}))
        return SimpleNamespace(name=MODEL, version="v1", model_path=Path(root) / MODEL / "v1" / "model.onnx", card=card)

    monkeypatch.setattr(sim, "train_simulator", train_simulator)
    monkeypatch.setattr(sim, "register_sim", register_sim)
    return calls


def test_training_defaults_come_from_the_settings_and_options_win(captured: dict[str, Any], tmp_path: Path) -> None:
    env = {
        "GENEDGE_MODELS__REGISTRY_DIR": str(tmp_path / "reg"),
        "GENEDGE_MODELS__SEED": "5",
        "GENEDGE_MODELS__MAX_EPOCHS": "2",
        "GENEDGE_MODELS__ACCELERATOR": "cpu",
    }
    res = CliRunner(env=env).invoke(app, ["rul", "train-sim", "--json"])
    assert res.exit_code == 0, res.output
    assert captured["train"]["seed"] == 5
    assert captured["train"]["model_params"] == {"max_epochs": 2, "accelerator": "cpu"}
    assert captured["registry"] == tmp_path / "reg"

    res = CliRunner(env=env).invoke(
        app, ["rul", "train-sim", "--json", "--seed", "9", "--max-epochs", "1", "--registry-dir", str(tmp_path / "cli")]
    )
    assert res.exit_code == 0, res.output
    assert (captured["train"]["seed"], captured["train"]["model_params"]["max_epochs"]) == (9, 1)
    assert captured["registry"] == tmp_path / "cli"


def test_unset_settings_leave_the_recipe_its_own_defaults(captured: dict[str, Any], monkeypatch: pytest.MonkeyPatch) -> None:
    """The settings' defaults (seed 42, 40 epochs) are no operator's choice: the shipped recipe keeps seed 0, its epochs."""
    for field in ("SEED", "MAX_EPOCHS", "ACCELERATOR", "REGISTRY_DIR"):
        monkeypatch.delenv(f"GENEDGE_MODELS__{field}", raising=False)
    res = CliRunner().invoke(app, ["rul", "train-sim", "--json"])
    assert res.exit_code == 0, res.output
    assert (captured["train"]["seed"], captured["train"]["model_params"]) == (0, {})
    assert captured["registry"] == Path("var/registry")
