"""The ensemble comparison picks the LSTM by validation and bootstraps whole units."""

from __future__ import annotations

import json
import math
from pathlib import Path

import numpy as np
import pytest

from benchmarks.rul_ensembles import bootstrap_diff, lstm_setup, main, markdown, select_lstm, train_members
from core.inference.registry import SHIPPED_DIR
from tests.models._cmapss_layout import write_test_layout

REPO = Path(__file__).resolve().parents[2]


def _row(mean: float, n: int = 5) -> dict[str, float]:
    return {"mean": mean, "n": n}


def test_select_lstm_takes_the_lowest_lstm_mean_with_five_seeds(tmp_path: Path) -> None:
    summary = {
        "FD004": {
            "T_w80": _row(10.0),  # a transformer: never a candidate
            "L_w80": _row(13.7),
            "L_w80_h128": _row(13.4),
            "L_w80_rep": _row(13.0),  # a device-repeat copy: not a configuration of its own
            "L_w50": _row(12.0, n=3),  # too few seeds
        }
    }
    path = tmp_path / "ablation.json"
    path.write_text(json.dumps({"summary": summary}), encoding="utf-8")

    name, data, params, mean = select_lstm("FD004", path)

    assert name == "L_w80_h128"
    # the variant as the ablation ran it: its own units, the frozen base architecture under its overrides
    assert data == {"window": 80, "extra_train_subsets": [], "age_channel": False, "train_stride": 2}
    assert params == {"hidden_size": 128, "num_layers": 2, "dropout": 0.1}
    assert mean == pytest.approx(13.4)

    # a named variant instead (members trained before its ablation rows are complete): no mean yet
    name, data, _, mean = select_lstm("FD004", path, variant="L_w50")
    assert (name, data["window"], math.isnan(mean)) == ("L_w50", 50, True)
    with pytest.raises(ValueError, match="not an LSTM variant"):
        select_lstm("FD004", path, variant="T_w80")


def test_lstm_setup_gives_the_lstm_the_shipped_transformers_units_and_inputs() -> None:
    """Like for like: the LSTM ensemble trains on the units and reads the channels the shipped card does."""
    from core.inference.registry import ModelRegistry

    for subset in ("FD001", "FD004"):
        card = ModelRegistry(SHIPPED_DIR).promoted(f"cmapss-{subset}").card.config["data"]
        _, data, params, _ = lstm_setup(subset, jobs=2)
        assert data["extra_train_subsets"] == card.get("extra_train_subsets", [])
        assert data["age_channel"] is bool(card.get("age_channel", False))
        assert params["n_jobs"] == 2


@pytest.mark.parametrize("members", [[0, 2], [3, 4, 5], [-1, 0], []])
def test_train_members_takes_a_contiguous_range_of_the_ensemble(members: list[int], tmp_path: Path) -> None:
    with pytest.raises(ValueError, match=r"contiguous range within 0\.\.4"):
        train_members(tmp_path, "FD004", members, tmp_path)


def test_members_without_a_checkpoint_dir_is_refused(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit):
        main(["--subset", "FD004", "--members", "0-1"])
    assert "--members needs --checkpoint-dir" in capsys.readouterr().err


def test_members_must_be_a_range(capsys: pytest.CaptureFixture[str], tmp_path: Path) -> None:
    with pytest.raises(SystemExit):
        main(["--subset", "FD004", "--members", "first", "--checkpoint-dir", str(tmp_path)])
    assert "--members takes a range such as 0-1" in capsys.readouterr().err


def test_bootstrap_diff_is_negative_when_a_is_better_on_every_unit() -> None:
    rng = np.random.default_rng(0)
    units = np.repeat(np.arange(10), 5)
    y = rng.uniform(0, 125, units.size)
    a = y + rng.normal(0, 5, y.size)
    b = y + rng.normal(0, 15, y.size)

    d = bootstrap_diff(y, a, b, units, n_boot=300)

    assert d["diff"] < 0 and d["ci95_low"] <= d["diff"] <= d["ci95_high"] < 0
    assert d["p_boot_diff_ge_0"] == 0.0
    assert d["n_units"] == 10 and d["units_a_better"] >= 8


def test_bootstrap_diff_interval_straddles_zero_for_the_same_predictor() -> None:
    rng = np.random.default_rng(1)
    units = np.repeat(np.arange(20), 5)
    y = rng.uniform(0, 125, units.size)
    a = y + rng.normal(0, 10, y.size)
    b = a + rng.normal(0, 0.5, y.size)  # practically the same predictions

    d = bootstrap_diff(y, a, b, units, n_boot=300)

    assert d["ci95_low"] < 0 < d["ci95_high"]
    assert abs(d["diff"]) < 1.0


def test_markdown_row_shows_the_paired_difference_and_interval() -> None:
    row = {
        "subset": "FD001",
        "transformer_val_rmse": 9.11,
        "transformer_version": "v6",
        "lstm_val_rmse": 10.5,
        "lstm_variant": "L_w80",
        "lstm_registered": {"val_rmse_onnx": 10.52},
        "transformer_minus_lstm": {"diff": -1.39, "ci95_low": -2.5, "ci95_high": -0.3, "units_a_better": 14, "n_units": 20},
    }
    assert "| FD001 | 9.11 (v6) | 10.50 (L_w80) | 10.52 | -1.39 [-2.50, -0.30] | 14/20 |" in markdown([row])
    # a model that also trained on another subset's units says so in its cell
    row["transformer_extra_train_subsets"] = ["FD003"]
    assert "| FD001 | 9.11 (v6, + FD003 units) | 10.50 (L_w80) |" in markdown([row])


def test_compare_on_test_scores_both_committed_models_like_rul_evaluate(cmapss_dir: Path, tmp_path: Path) -> None:
    """On a test-layout directory (truncated training units standing in for the kept-back test set),
    the comparison reports each model exactly as ``genedge rul evaluate`` does, and its difference."""
    from benchmarks.rul_ensembles import BASELINES, compare_on_test, markdown_test
    from core.inference.runtime import OnnxRULPredictor
    from models.evaluation import evaluate_predictor

    write_test_layout(cmapss_dir, range(1, 13), tmp_path)

    res = compare_on_test(tmp_path, ["FD001", "FD003"])

    assert res["skipped"] == ["FD003"]
    (row,) = res["rows"]
    assert row["subset"] == "FD001" and row["n_units"] == 12
    for name, root in (("transformer", SHIPPED_DIR / "cmapss-FD001"), ("lstm", BASELINES / "cmapss-FD001-lstm")):
        expected = evaluate_predictor(OnnxRULPredictor.from_path(root), tmp_path, "FD001")
        assert {k: row[name][k] for k in expected} == expected
    d = row["transformer_minus_lstm"]
    assert d["n_units"] == 12
    assert d["diff"] == pytest.approx(row["transformer"]["rmse"] - row["lstm"]["rmse"], abs=1e-3)
    assert d["ci95_low"] <= d["diff"] <= d["ci95_high"]
    assert f"| FD001 | {row['transformer']['rmse']:.2f} / " in markdown_test(res["rows"])


def test_rescore_reproduces_the_committed_comparison_row(cmapss_dir: Path, tmp_path: Path) -> None:
    """Scoring the promoted transformer again against a part's stored LSTM predictions (what a newly
    shipped version goes through) rebuilds the same cuts and gives the committed row back."""
    from benchmarks.rul_ensembles import PARTS, rescore

    (tmp_path / "FD001.json").write_bytes((PARTS / "FD001.json").read_bytes())
    before = json.loads((PARTS / "FD001.json").read_text(encoding="utf-8"))
    after = rescore(cmapss_dir, "FD001", tmp_path)
    assert after["transformer_version"] == before["transformer_version"]
    assert after["transformer_val_rmse"] == pytest.approx(before["transformer_val_rmse"], abs=1e-9)
    assert after["predictions"]["transformer"] == before["predictions"]["transformer"]
    # the stored LSTM predictions are rounded to 4 decimals: the difference moves in the 6th
    assert after["transformer_minus_lstm"]["diff"] == pytest.approx(before["transformer_minus_lstm"]["diff"], abs=1e-4)
    assert json.loads((tmp_path / "FD001.json").read_text(encoding="utf-8"))["rescored"]["git_commit"]


def test_error_profile_finds_a_constant_offset_and_crossfits_it_away() -> None:
    """A model that is the truth plus 3 cycles (and a little noise): mean error 3, and a cross-fitted offset removes it."""
    from benchmarks.rul_ensembles import error_profile

    rng = np.random.default_rng(0)
    units = np.repeat(np.arange(20), 5)
    y = rng.uniform(1, 125, units.size).round()
    noise = rng.normal(0, 4, units.size)
    part = {
        "subset": "FD004",
        "predictions": {
            "y": y.tolist(),
            "unit": units.tolist(),
            "transformer": (y + 3 + rng.normal(0, 0.1, units.size)).tolist(),
            "lstm": (y + noise).tolist(),
        },
    }
    prof = error_profile(part, n_splits=20)
    assert prof["mean_error"]["transformer"] == pytest.approx(3.0, abs=0.05)
    assert prof["rmse"]["transformer"] == pytest.approx(3.0, abs=0.05)
    assert prof["crossfit_offset_rmse"]["transformer"]["mean"] < 0.2
    assert prof["crossfit_offset_rmse"]["lstm"]["mean"] > 3.0
    assert sum(b["n"] for b in prof["by_true_rul"]) == units.size


def test_member_data_fingerprint_tells_the_training_data_apart(cmapss_dir: Path) -> None:
    """What a GPU machine's members are checked against before they load here (same data, same key)."""
    from benchmarks.rul_ensembles import member_data_fingerprint

    a = member_data_fingerprint(cmapss_dir, "FD001", "L_w80_age")
    again = member_data_fingerprint(cmapss_dir, "FD001", "L_w80_age")
    shorter = member_data_fingerprint(cmapss_dir, "FD001", "L_w50_age")
    assert a == again
    assert a["fingerprint"] != shorter["fingerprint"]
    # windows of 80 and 50 cycles; one truth per validation window, 5 validation cuts per unit
    assert a["shapes"][0][2] == 80 and shorter["shapes"][0][2] == 50
    assert a["shapes"][2][0] % 5 == 0 and a["shapes"][2][0] == a["shapes"][3][0]
