"""Every recorded ablation run is what its variant would run again today.

The shipped defaults (:func:`models.pipeline.default_config`) move when a model ships; the
ablation's variants sit on a frozen base (:data:`benchmarks.rul_ablation.BASE_PARAMS`) so that a
variant run again, e.g. to add seeds, pairs with its recorded seeds instead of silently training
another network. Reads the committed part files (their archive, see :mod:`benchmarks._archive`);
trains nothing.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from benchmarks._archive import read_parts
from benchmarks.rul_ablation import BASE_DATA, BASE_PARAMS, VARIANTS, resolve_variant
from models.pipeline import _SUBSET_DATA_OVERRIDES, _SUBSET_MODEL_OVERRIDES, make_estimator, resolve_config
from models.torch_estimator import RUNTIME_PARAMS

PARTS = Path(__file__).resolve().parents[2] / "benchmarks" / "results" / "rul_ablation_parts"
#: what a run's seed or machine sets, not what it learns
_NOT_COMPARED = {*RUNTIME_PARAMS, "random_state", "n_members"}


def _as_run_now(subset: str, name: str) -> tuple[dict[str, Any], dict[str, Any]]:
    """The (data, model) configuration that running ``name`` on ``subset`` today would train."""
    model, data, params = resolve_variant(name, subset)
    cfg = resolve_config(subset, model, model_params=params, data_params=data)
    return cfg["data"], {**make_estimator(model).get_params(), **cfg["model"]}


def _learned(params: dict[str, Any]) -> dict[str, Any]:
    return {k: v for k, v in params.items() if k not in _NOT_COMPARED}


def _diff(then: dict[str, Any], now: dict[str, Any]) -> dict[str, tuple[Any, Any]]:
    """Every key whose value differs (or that one side lacks): ``(recorded, now)``."""
    return {k: (then.get(k), now.get(k)) for k in then.keys() | now.keys() if then.get(k) != now.get(k)}


def _parts() -> list[tuple[str, str]]:
    return read_parts(PARTS)


def test_there_are_recorded_runs_to_check() -> None:
    assert len(_parts()) > 100


def test_every_recorded_run_matches_its_variant_today() -> None:
    drifted = []
    for name, text in _parts():
        row = json.loads(text)
        data_now, model_now = _as_run_now(row["subset"], row["variant"])
        model = VARIANTS[row["variant"]][0]
        # the recorded config holds the defaults of its day plus the overrides; the estimator's own
        # defaults fill what it left unsaid (they have not changed)
        model_then = _learned({**make_estimator(model).get_params(), **row["config"]["model"]})
        # runs recorded before the age channel existed were made without it
        data_then = {"extra_train_subsets": [], "age_channel": False, **row["config"]["data"]}
        diff = _diff(model_then, _learned(model_now)) | _diff(data_then, data_now)
        if diff:
            drifted.append(f"{Path(name).stem}: (recorded, now) {diff}")
    assert not drifted, "\n".join(drifted)


def test_base_pins_every_parameter_a_subset_overrides() -> None:
    # a key some subset's defaults override (e.g. FD004's depth) would drift again if the base left it unsaid
    for overrides in _SUBSET_MODEL_OVERRIDES.values():
        for model, params in overrides.items():
            assert set(params) <= set(BASE_PARAMS[model]), (model, sorted(set(params) - set(BASE_PARAMS[model])))


def test_base_pins_every_data_setting_a_subset_overrides_per_model() -> None:
    # e.g. the FD002 transformer's train_stride 1 (v11): the recorded FD002 runs took every second window
    for subset, overrides in _SUBSET_DATA_OVERRIDES.items():
        for model, data in overrides.items():
            assert set(data) <= set(BASE_DATA.get(subset, {})), (subset, model, sorted(data))
