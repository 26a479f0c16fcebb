"""The simulator data module (edge feature windows of simulated run-to-failure units) and a real training run."""

# ruff: noqa: N806  (X is the panel, as in scikit-learn and sktime)

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from core.errors import ModelError
from models.data.simulator import DEFAULT_FEATURES, SimulatorDataModule, draw_units, unit_frames

SMALL = {"n_units": 10, "window": 6, "step_hours": 10.0, "span_hours": 150.0, "life_hours": (120.0, 400.0), "seed": 3}


@pytest.fixture(scope="module")
def small_dm() -> SimulatorDataModule:
    dm = SimulatorDataModule(**SMALL)  # type: ignore[arg-type]
    dm.setup()
    return dm


def test_windows_have_the_feature_layout_and_capped_rul_targets(small_dm: SimulatorDataModule) -> None:
    dm = small_dm
    c = len(DEFAULT_FEATURES)
    assert dm.n_channels == c
    assert dm.X_train.shape[1:] == (c, 6) and dm.X_train.dtype == np.float32
    assert dm.X_val.shape[1:] == (c, 6) and dm.y_train.shape == (dm.X_train.shape[0],)
    assert np.isfinite(dm.X_train).all() and np.isfinite(dm.X_val).all()
    assert dm.X_train.shape[0] == sum(dm.unit_raw[int(u)].shape[0] for u in dm.train_units), "one window per frame"
    for u in dm.units:
        t = dm.unit_times[u.unit]
        _, y = dm.unit_windows(u.unit)
        assert np.all((y >= 0) & (y <= dm.rul_cap))
        if u.fault.kind == "none":
            assert np.all(y == dm.rul_cap), "a healthy machine is at the horizon"
        else:
            np.testing.assert_allclose(y, np.minimum(u.fault.life_hours - t, dm.rul_cap), atol=1e-3)
            assert np.all(np.diff(y) <= 0), "RUL never grows along a run"
            assert t[-1] == pytest.approx(u.fault.life_hours, abs=dm.step_hours)
    # the normaliser comes from training units: z-scored training frames are centred
    train_rows = np.concatenate([dm.normalizer.transform(dm.unit_raw[int(u)]) for u in dm.train_units])  # type: ignore[union-attr]
    np.testing.assert_allclose(train_rows.mean(axis=0), 0.0, atol=1e-3)


def test_split_is_by_unit_and_validation_is_truncated(small_dm: SimulatorDataModule) -> None:
    dm = small_dm
    assert not set(dm.train_units) & set(dm.val_units)
    assert set(dm.train_units) | set(dm.val_units) == {u.unit for u in dm.units}
    assert set(np.unique(dm.val_cut_units)) == set(dm.val_units)
    for uid in dm.val_units:
        mask = dm.val_cut_units == uid
        X_u, y_u = dm.unit_windows(int(uid))
        assert mask.sum() == min(dm.n_val_cuts, y_u.size), "a few random instants per unit, not the whole run"
        # every validation window is one of its own unit's windows (no frames from another unit)
        for x, y in zip(dm.X_val[mask], dm.y_val[mask], strict=True):
            match = np.flatnonzero(np.all(np.isclose(X_u, x[None]), axis=(1, 2)))
            assert match.size >= 1 and y_u[match[0]] == pytest.approx(y)


def test_units_are_seeded_and_varied() -> None:
    a, b = draw_units(40, seed=5), draw_units(40, seed=5)
    assert a == b
    assert draw_units(40, seed=6) != a
    kinds = {u.fault.kind for u in a}
    assert "none" in kinds and len(kinds) >= 5
    assert len({u.asset.asset_id for u in a}) >= 5, "across the plant's asset types"
    with pytest.raises(ModelError, match="n_units"):
        draw_units(0)


def test_frames_track_the_growing_fault() -> None:
    unit = next(u for u in draw_units(40, seed=5) if u.fault.kind == "outer_race")
    t, raw = unit_frames(unit, step_hours=20.0)
    rms = raw[:, [n for _, n, _ in DEFAULT_FEATURES].index("rms")]
    assert np.isfinite(raw).all() and t.size == raw.shape[0]
    assert rms[-1] > 3 * rms[0], f"vibration RMS must rise towards failure: {rms}"


@pytest.mark.slow
def test_short_training_beats_a_constant_and_registers_an_edge_model(tmp_path: Path) -> None:
    from core.inference.runtime import FeatureRULPredictor
    from models.sim_pipeline import register_sim, train_simulator

    data = {"n_units": 48, "window": 8, "step_hours": 8.0, "span_hours": 320.0, "n_val_cuts": 8}
    model = {"d_model": 16, "d_ff": 32, "n_layers": 1, "max_epochs": 12, "patience": 4}
    result = train_simulator(seed=1, data_params=data, model_params=model)
    m = result.metrics
    print({k: round(v, 3) if isinstance(v, float) else v for k, v in m.items()})
    assert m["val_rmse"] < 0.8 * m["val_rmse_constant"], m
    assert m["traj_rmse_below_cap"] < 0.9 * m["traj_rmse_below_cap_constant"], m
    assert m["val_coverage_cross"] >= 0.7, m
    mv = register_sim(result, tmp_path / "reg")
    assert mv.promoted and mv.card.preprocessing.kind == "feature_frames"
    assert mv.card.preprocessing.rul_unit == "h"
    assert [f["name"] for f in mv.card.preprocessing.normalizer["features"]] == [n for _, n, _ in DEFAULT_FEATURES]
    assert mv.card.metrics["val_rmse_onnx"] < 1.1 * m["val_rmse"] + 2.0, "int8 stays close to the trained model"
    # the edge runtime rebuilds the inputs from raw frames exactly as the data module did
    dm = result.datamodule
    p = FeatureRULPredictor.from_path(tmp_path / "reg" / "sim-bearing")
    uid = int(dm.val_units[0])
    X_u, _ = dm.unit_windows(uid)
    np.testing.assert_allclose(p.window_from_rows(dm.unit_raw[uid]), X_u[-1], rtol=1e-5, atol=1e-5)
    out = p.predict_unit(dm.unit_raw[uid])
    assert 0.0 <= out["lower"] <= out["rul"] <= out["upper"]
