"""The per-subset default configurations build valid estimators for every model."""

from __future__ import annotations

import pytest

from core.inference.registry import SHIPPED_DIR
from models.pipeline import MODEL_NAMES, default_config, make_estimator


@pytest.mark.parametrize("subset", ["FD001", "FD002", "FD003", "FD004"])
@pytest.mark.parametrize("model", MODEL_NAMES)
def test_every_default_config_builds_its_estimator(subset: str, model: str) -> None:
    cfg = default_config(subset, model)
    est = make_estimator(model, **cfg["model"])
    params = est.get_params()
    assert {k: params[k] for k in cfg["model"]} == cfg["model"]
    assert cfg["data"]["window"] >= 30


def test_transformer_patches_tile_the_window() -> None:
    """A patch length that does not divide the window would pad the oldest patch: the defaults avoid it."""
    for subset in ("FD001", "FD002", "FD003", "FD004"):
        cfg = default_config(subset, "transformer")
        assert cfg["data"]["window"] % cfg["model"]["patch_len"] == 0, subset


def test_card_config_reads_options_a_card_predates_as_off() -> None:
    """A card from before the age channel reproduces without it, though FD004's default now has it."""
    from benchmarks._archive import card_path
    from core.inference.card import read_card
    from models.pipeline import card_config

    # earlier versions' cards are archived beside the benchmarks (models/shipped holds the promoted one)
    v8 = read_card(card_path(SHIPPED_DIR, "cmapss-FD004", "v8"))
    v9 = read_card(card_path(SHIPPED_DIR, "cmapss-FD004", "v9"))
    assert "age_channel" not in v8.config["data"] and default_config("FD004")["data"]["age_channel"] is True
    assert card_config(v8)["data"]["age_channel"] is False
    assert card_config(v9)["data"]["age_channel"] is True
    assert card_config(v8)["model"] == {"late_weight": 1.0, **v8.config["model"]}
    # nor does a learning option added since: FD004's default late_weight is 1.5 from v10 on
    assert default_config("FD004")["model"]["late_weight"] == 1.5 and "late_weight" not in v9.config["model"]
    assert card_config(v9)["model"]["late_weight"] == 1.0


def test_the_six_condition_transformers_alone_take_every_training_window() -> None:
    """A data default measured for one model only (session 22: the FD002/FD004 transformers) is that model's."""
    for subset in ("FD002", "FD004"):
        assert default_config(subset, "transformer")["data"]["train_stride"] == 1
        assert default_config(subset, "lstm")["data"]["train_stride"] == 2
        assert default_config(subset, "minirocket")["data"]["train_stride"] == 2
    # the rest of the subset's data defaults are the same for every model
    t, lstm = default_config("FD002", "transformer")["data"], default_config("FD002", "lstm")["data"]
    assert {k: v for k, v in t.items() if k != "train_stride"} == {k: v for k, v in lstm.items() if k != "train_stride"}
