"""A short real training run on FD001, then export, quantisation, registry, runtime and CLI."""

from __future__ import annotations

import json
import time
from pathlib import Path

import numpy as np
import pytest
from typer.testing import CliRunner

from core.datasets.cmapss import load_cmapss
from core.inference.card import ModelCard
from core.inference.registry import ModelRegistry
from core.inference.runtime import OnnxRULPredictor
from genedge.rul_cli import models_app, rul_app
from models.export.compare import compression_report
from models.metrics import rmse
from models.pipeline import TrainResult, default_config, export_variants, register_result, train_cmapss
from tests._factories import minimal_card
from tests.models._cmapss_layout import write_test_layout

pytestmark = pytest.mark.slow


@pytest.fixture(scope="module")
def trained(cmapss_dir: Path) -> TrainResult:
    t0 = time.perf_counter()
    result = train_cmapss(
        cmapss_dir,
        "FD001",
        model="transformer",
        seed=0,
        max_epochs=5,
        model_params={"d_model": 16, "d_ff": 32, "n_layers": 1, "n_heads": 2, "learning_rate": 3e-3},
        data_params={"max_train_units": 50, "n_val_cuts": 6},
    )
    result.metrics["fit_seconds"] = time.perf_counter() - t0
    return result


@pytest.fixture(scope="module")
def variants(trained: TrainResult, tmp_path_factory: pytest.TempPathFactory) -> dict[str, Path]:
    out = tmp_path_factory.mktemp("onnx")
    return export_variants(trained, out, ("fp32", "int8-dynamic", "int8-static", "fp16"))


def test_short_training_beats_constant_predictor(trained: TrainResult) -> None:
    dm = trained.datamodule
    constant = rmse(dm.y_val, np.full_like(dm.y_val, dm.y_train.mean()))
    val = trained.metrics["val_rmse"]
    assert val < 0.6 * constant, f"val RMSE {val:.2f} vs constant predictor {constant:.2f}"
    assert 0.0 < trained.metrics["val_coverage_cross"] <= 1.0


def test_onnx_fp32_matches_torch(trained: TrainResult, variants: dict[str, Path]) -> None:
    dm = trained.datamodule
    torch_pred = trained.estimator.predict(dm.X_val)
    card = ModelCard.from_dict(minimal_card(preprocessing=dm.preprocessing_card()))
    onnx_pred = OnnxRULPredictor(variants["fp32"], card).predict_windows(dm.X_val)
    np.testing.assert_allclose(onnx_pred, torch_pred, atol=1e-2, rtol=1e-4)
    fp16 = OnnxRULPredictor(variants["fp16"], card).predict_windows(dm.X_val)
    np.testing.assert_allclose(fp16, torch_pred, atol=1.0)


def test_int8_is_smaller_with_small_quality_change(trained: TrainResult, variants: dict[str, Path]) -> None:
    dm = trained.datamodule
    rows = {r["variant"]: r for r in compression_report(trained.estimator.network, variants, dm.X_val, dm.y_val, repeats=3)}
    assert rows["fp32"]["rmse_change_pct"] == pytest.approx(0.0, abs=0.01)
    # a 16-wide test network is mostly graph structure; shipped 32-wide ones shrink more
    for name, max_ratio in (("int8-dynamic", 0.7), ("int8-static", 0.8)):
        assert rows[name]["size_bytes"] < max_ratio * rows["fp32"]["size_bytes"], rows[name]
        assert abs(rows[name]["rmse_change_pct"]) < 5.0, rows[name]


def test_pruning_with_fine_tuning_recovers_what_one_shot_pruning_loses(trained: TrainResult, tmp_path: Path) -> None:
    """Half the weights zeroed: one-shot the RMSE jumps; a short fine-tune with the zeros held brings it back,
    and the zeros survive into the ONNX file (what gzip then saves in transfer)."""
    import onnx
    import torch
    from onnx import numpy_helper

    from models.export.onnx import export_onnx
    from models.export.prune import prune_finetune, prune_magnitude, sparsity

    dm, net = trained.datamodule, trained.estimator.network
    before = {k: v.clone() for k, v in net.state_dict().items()}

    def val_rmse(n: torch.nn.Module) -> float:
        with torch.inference_mode():
            return rmse(dm.y_val, n(torch.from_numpy(dm.X_val)).numpy())

    base, one_shot = val_rmse(net), val_rmse(prune_magnitude(net, 0.5))
    tuned = prune_finetune(net, dm.X_train, dm.y_train, dm.X_train[::10], dm.y_train[::10], amount=0.5, epochs=2)
    after = val_rmse(tuned)
    print(f"val RMSE {base:.2f}; pruned 50 % one-shot {one_shot:.2f}, fine-tuned {after:.2f}")
    assert sparsity(tuned) == pytest.approx(0.5, abs=0.01)
    assert after < one_shot and after < 1.15 * base + 1.0, (base, one_shot, after)
    assert all(torch.equal(before[k], v) for k, v in net.state_dict().items()), "the trained network is untouched"
    path = export_onnx(tuned, dm.n_channels, dm.window, tmp_path / "pruned.onnx")
    weights = [numpy_helper.to_array(t) for t in onnx.load(path).graph.initializer if len(t.dims) == 2]
    zeros = sum(int((w == 0).sum()) for w in weights) / sum(w.size for w in weights)
    assert zeros > 0.4, zeros


def test_register_runtime_and_cli(trained: TrainResult, cmapss_dir: Path, tmp_path: Path) -> None:
    reg_dir = tmp_path / "registry"
    mv = register_result(trained, reg_dir, variant="int8-dynamic", promote=True)
    assert mv.card.preprocessing.window == default_config("FD001")["data"]["window"]
    assert mv.card.dataset.train_file_sha256
    assert mv.card.metrics["val_rmse_onnx"] < 1.1 * trained.metrics["val_rmse"] + 1.0

    data = tmp_path / "acceptance"
    data.mkdir()
    truth = write_test_layout(cmapss_dir, trained.datamodule.val_units, data)

    runner = CliRunner()
    res = runner.invoke(rul_app, ["evaluate", "--data-dir", str(data), "--subset", "FD001", "--json", "--model", str(mv.path)])
    assert res.exit_code == 0, res.output
    lines = [ln for ln in res.stdout.splitlines() if ln.strip()]
    assert len(lines) == 1
    out = json.loads(lines[0])
    assert list(out) == ["subset", "rmse", "score", "rmse_uncapped", "coverage", "n_units"]
    assert out["n_units"] == truth.size
    assert out["rmse"] < 40.0

    predictor = OnnxRULPredictor.from_registry(reg_dir, "cmapss-FD001")
    rows = load_cmapss(data, "FD001", "test")
    one = rows[rows["unit"] == rows["unit"].iloc[0]].to_numpy()
    pred = predictor.predict_unit(one)
    assert pred["lower"] <= pred["rul"] <= pred["upper"]

    # registry commands
    register_result(trained, reg_dir, variant="fp32", promote=False)
    res = runner.invoke(models_app, ["promote", "cmapss-FD001", "v2", "--registry-dir", str(reg_dir)])
    assert res.exit_code == 0, res.output
    res = runner.invoke(models_app, ["list", "--registry-dir", str(reg_dir), "--json"])
    listed = json.loads(res.stdout)
    assert [(r["version"], r["promoted"]) for r in listed] == [("v1", False), ("v2", True)]
    res = runner.invoke(models_app, ["rollback", "cmapss-FD001", "--registry-dir", str(reg_dir)])
    assert res.exit_code == 0 and ModelRegistry(reg_dir).promoted("cmapss-FD001").version == "v1"


def test_evaluate_reports_missing_truth_clearly(tmp_path: Path) -> None:
    res = CliRunner().invoke(
        rul_app, ["evaluate", "--data-dir", str(tmp_path), "--subset", "FD001", "--json", "--model", str(tmp_path)]
    )
    assert res.exit_code == 1
    assert "expected" in res.output


def test_cli_train_registers_a_model(cmapss_dir: Path, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        rul_app,
        [
            "train",
            "--data-dir",
            str(cmapss_dir),
            "--subset",
            "FD001",
            "--model",
            "lstm",
            "--max-epochs",
            "1",
            "--seed",
            "3",
            "--param",
            "hidden_size=16",
            "--param",
            "dropout=0.0",
            "--train-stride",
            "3",
            "--registry-dir",
            str(tmp_path),
            "--promote",
            "--json",
        ],
    )
    assert res.exit_code == 0, res.output
    out = json.loads(res.stdout.strip().splitlines()[-1])
    assert out["version"] == "v1" and out["val_rmse"] > 0
    card = ModelRegistry(tmp_path).promoted("cmapss-FD001").card
    assert card.seed == 3 and card.model == "lstm"
    assert card.config["model"]["max_epochs"] == 1
    assert (card.config["model"]["hidden_size"], card.config["model"]["dropout"]) == (16, 0.0)
    assert card.config["data"]["train_stride"] == 3


@pytest.mark.parametrize(
    ("item", "says"), [("d_model=64", "lstm has no hyperparameter 'd_model'"), ("hidden_size", "KEY=VALUE")]
)
def test_cli_train_refuses_a_bad_param_before_training(item: str, says: str, tmp_path: Path) -> None:
    res = CliRunner().invoke(
        rul_app, ["train", "--data-dir", str(tmp_path), "--model", "lstm", "--param", item, "--registry-dir", str(tmp_path)]
    )
    assert res.exit_code != 0 and says in res.output, res.output
    assert not (tmp_path / "cmapss-FD001").exists()


def test_cli_train_from_card_reproduces_its_rmse(cmapss_dir: Path, tmp_path: Path) -> None:
    """`genedge rul train --from-card` repeats a registered run (seed, config, ensemble) within 0.5 RMSE."""
    common = ["--data-dir", str(cmapss_dir), "--registry-dir", str(tmp_path), "--json"]
    first = CliRunner().invoke(
        rul_app,
        ["train", *common, "--subset", "FD001", "--model", "transformer", "--members", "2", "--max-epochs", "1", "--seed", "5"],
    )
    assert first.exit_code == 0, first.output
    card_dir = ModelRegistry(tmp_path).get("cmapss-FD001", "v1").model_path.parent
    again = CliRunner().invoke(rul_app, ["train", *common, "--from-card", str(card_dir)])
    assert again.exit_code == 0, again.output
    a = json.loads(first.stdout.strip().splitlines()[-1])
    b = json.loads(again.stdout.strip().splitlines()[-1])
    assert (b["subset"], b["model"], b["seed"], b["version"]) == ("FD001", "transformer", 5, "v2")
    card = ModelRegistry(tmp_path).get("cmapss-FD001", "v2").card
    assert card.config["model"]["n_members"] == 2 and card.config["model"]["max_epochs"] == 1
    assert abs(b["val_rmse"] - a["val_rmse"]) <= 0.5, (a["val_rmse"], b["val_rmse"])
