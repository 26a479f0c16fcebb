"""On-edge RUL of vibration assets: the shipped simulator model run by the agent on its own feature frames.

The demo plant's P-101 (outer-race fault, seed 7: onset 85 h, failure at 252.3 h) is simulated
through the real agent (processor, feature pipeline, hooks); its true RUL is known at every frame.
"""

from __future__ import annotations

import math
import subprocess
import sys
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import numpy as np
import pytest
from scipy import stats

from core.errors import ModelError
from core.inference.card import read_card
from core.inference.registry import SHIPPED_DIR, ModelRegistry
from core.settings import EdgeSettings, Settings
from core.sim import default_faults, default_plant
from core.wire import Prediction
from edge_agent.agent import EdgeAgent
from edge_agent.hooks import CmapssRulHook, FeatureRulHook, build_hooks
from edge_agent.processor import WindowResult
from edge_agent.sources.simulator import SimulatorSource
from tests._factories import ListSink

REPO = Path(__file__).resolve().parents[2]
MODEL = "sim-bearing"
SEED = 7  # the demo's simulator seed
EPOCH = datetime(2026, 1, 1, tzinfo=UTC)


def run_plant(
    asset_ids: list[str], hours: np.ndarray, rul_model: Path
) -> tuple[list[tuple[Prediction, float | None]], EdgeAgent]:
    """Feed the simulated assets through the agent at the given simulated hours (timestamps 1:1 with asset time)."""
    assets = [a for a in default_plant() if a.asset_id in asset_ids]
    faults = default_faults(default_plant(), SEED)
    # the demo's snapshot length (sim.vibration_samples): long enough for velocity RMS, which the model reads
    source = SimulatorSource(assets, {a.asset_id: faults[a.asset_id] for a in assets}, seed=SEED, snapshot_samples=6400)
    settings = Settings(edge=EdgeSettings(agent_id="edge-sim-rul", rul_model=rul_model))
    sink = ListSink()
    agent = EdgeAgent(settings, assets, sink, hooks=build_hooks(settings.edge, assets))
    paired: list[tuple[Prediction, float | None]] = []
    seen = 0

    def pair(result: WindowResult) -> None:  # after the hooks: this window's prediction is in the sink
        nonlocal seen
        new, seen = sink.messages[seen:], len(sink.messages)
        rul = result.truth.get("rul_hours")
        paired.extend((m, rul) for m in new if isinstance(m, Prediction))

    agent.on_window = pair
    for t in hours:
        for batch in source.tick(float(t), EPOCH + timedelta(hours=float(t))):
            agent.handle_batch(batch)
    agent.flush()
    return paired, agent


@pytest.fixture(scope="module")
def p101_run() -> tuple[list[tuple[Prediction, float | None]], EdgeAgent]:
    return run_plant(["P-101"], np.arange(0.0, 252.0, 1.0), SHIPPED_DIR / MODEL)


def test_shipped_model_is_a_promoted_feature_model() -> None:
    mv = ModelRegistry(SHIPPED_DIR).promoted(MODEL)
    pre = mv.card.preprocessing
    assert pre.kind == "feature_frames" and pre.rul_unit == "h"
    assert mv.card.variant == "int8-dynamic" and mv.model_path.stat().st_size < 200_000
    assert mv.card.metrics["val_rmse"] < mv.card.metrics["val_rmse_constant"]


def test_p101_rul_in_hours_falls_as_it_degrades(p101_run: tuple[list[tuple[Prediction, float | None]], EdgeAgent]) -> None:
    paired, agent = p101_run
    hook = agent.hooks[0]
    assert isinstance(hook, FeatureRulHook)
    # one frame per step of asset time (frames come every hour here): one prediction per step
    assert len(paired) == math.ceil(252 / hook.step_hours)
    assert agent.stats.predictions_sent == len(paired)
    for p, _ in paired:
        assert p.asset_id == "P-101" and p.rul_unit == "h" and p.coverage == pytest.approx(0.9)
        assert (p.model_name, p.model_version) == (MODEL, ModelRegistry(SHIPPED_DIR).promoted(MODEL).version)
        assert 0.0 <= p.rul_lower <= p.rul_median <= p.rul_upper
        assert p.rul_upper - p.rul_lower > 1.0, "an interval, not a point"
    cap = float(ModelRegistry(SHIPPED_DIR).promoted(MODEL).card.preprocessing.rul_cap)
    assert all(p.rul_cap == cap for p, _ in paired), "each prediction says where the model's cap is"
    assert not paired[-1][0].at_cap
    pred = np.array([p.rul_median for p, _ in paired])
    lo, hi = np.array([p.rul_lower for p, _ in paired]), np.array([p.rul_upper for p, _ in paired])
    true = np.minimum(np.array([t for _, t in paired], dtype=float), cap)
    late = true < cap
    rho = float(stats.spearmanr(pred[late], true[late])[0])
    rmse = float(np.sqrt(np.mean((pred[late] - true[late]) ** 2)))
    const = float(np.sqrt(np.mean((true[late].mean() - true[late]) ** 2)))  # best constant, knowing the truth
    coverage = float(np.mean((lo <= true) & (true <= hi)))
    print(
        f"P-101: Spearman {rho:.3f}, RMSE below the cap {rmse:.1f} h vs best constant {const:.1f} h, "
        f"coverage {coverage:.2f}; medians {np.round(pred[::6]).tolist()}"
    )
    assert rho >= 0.8, f"predicted RUL must fall with the true RUL: {rho}"
    assert rmse < 0.6 * const, f"RMSE {rmse:.1f} h vs constant {const:.1f} h"
    assert coverage >= 0.7, coverage
    assert pred[-1] < 0.5 * pred[0], f"near failure the RUL is well below the healthy start: {pred.tolist()}"


def test_a_healthy_machine_stays_near_the_horizon() -> None:
    paired, _ = run_plant(["M-101"], np.arange(0.0, 120.0, 4.0), SHIPPED_DIR / MODEL)
    cap = float(ModelRegistry(SHIPPED_DIR).promoted(MODEL).card.preprocessing.rul_cap)
    medians = np.array([p.rul_median for p, _ in paired])
    assert len(paired) == 30 and np.median(medians) > 0.6 * cap, medians.tolist()


class _FakePredictor:
    """Sums the frame's rms values as RUL: shows which frames the hook kept."""

    window, step_hours, rul_unit = 3, 4.0, "h"

    def frame_row(self, frame: Any) -> list[float] | None:
        value = frame.get("vib_de", {}).get("rms")
        return None if value is None else [value]

    def predict_unit(self, rows: list[list[float]], coverage: float = 0.9) -> dict[str, float]:
        rul = float(sum(r[0] for r in rows))
        return {"rul": rul, "lower": rul - 1.0, "upper": rul + 1.0, "coverage": coverage}


def test_the_hook_keeps_one_frame_per_step_of_asset_time_in_a_rolling_window() -> None:
    hook = FeatureRulHook(_FakePredictor(), time_scale=3600.0)  # the demo's clock: one asset hour a second
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    kept = [hook.add_frame("A", t0 + timedelta(seconds=0.5 * i), {"vib_de": {"rms": float(i)}}) for i in range(40)]
    # a frame every half hour of asset time, steps of 4 h: frames 0, 8, 16, 24, 32 enter
    assert [i for i, k in enumerate(kept) if k] == [0, 8, 16, 24, 32]
    assert hook.rows("A") == [[16.0], [24.0], [32.0]], "the last `window` kept frames"
    assert hook.predict("A") == (72.0, 71.0, 73.0)
    assert not hook.add_frame("A", t0 + timedelta(seconds=30), {"temp_de": {"mean": 40.0}}), "incomplete frame"
    assert hook.predict("B") is None
    with pytest.raises(ValueError, match="time_scale"):
        FeatureRulHook(_FakePredictor(), time_scale=0.0)


def test_frames_exactly_one_step_apart_all_enter() -> None:
    """A model whose step is the frames' own cadence (FEMTO: a snapshot every 10 s) gets every frame,
    whatever the rounding of the step arithmetic; a frame well inside a step does not enter."""
    predictor = _FakePredictor()
    predictor.step_hours = 10.0 / 3600.0
    hook = FeatureRulHook(predictor)
    t0 = datetime(2026, 1, 1, tzinfo=UTC)
    assert all(hook.add_frame("A", t0 + timedelta(seconds=10.0 * i), {"vib_de": {"rms": 1.0}}) for i in range(500))
    assert hook.add_frame("B", t0, {"vib_de": {"rms": 1.0}})
    assert hook.add_frame("B", t0 + timedelta(seconds=9.5), {"vib_de": {"rms": 1.0}}), "within the jitter allowed"
    assert not hook.add_frame("B", t0 + timedelta(seconds=14.0), {"vib_de": {"rms": 1.0}}), "half a step later"


def test_a_card_unit_the_wire_does_not_carry_is_refused() -> None:
    predictor = _FakePredictor()
    predictor.rul_unit = "% of life"  # never relabelled as hours or cycles
    with pytest.raises(ModelError, match="not one the wire carries"):
        FeatureRulHook(predictor)


def test_build_hooks_picks_the_hook_from_the_card() -> None:
    assets = default_plant()
    feature = build_hooks(EdgeSettings(rul_model=SHIPPED_DIR / MODEL, rul_time_scale=3600.0), assets)
    assert [type(h) for h in feature] == [FeatureRulHook] and feature[0].time_scale == 3600.0  # type: ignore[attr-defined]
    cmapss = build_hooks(EdgeSettings(rul_model=SHIPPED_DIR / "cmapss-FD001"), assets)
    assert [type(h) for h in cmapss] == [CmapssRulHook]


def test_feature_rul_runs_without_training_code() -> None:
    code = (
        "import sys\n"
        "import edge_agent.agent, edge_agent.hooks\n"
        "from core.settings import EdgeSettings\n"
        "from edge_agent.hooks import build_hooks, FeatureRulHook\n"
        "from core.sim import default_plant\n"
        f"[hook] = build_hooks(EdgeSettings(rul_model={str(SHIPPED_DIR / MODEL)!r}), default_plant())\n"
        "assert isinstance(hook, FeatureRulHook)\n"
        "row = [1.0] * len(hook.predictor.features)\n"
        "p = hook.predictor.predict_unit([row] * 3)\n"
        "assert p['lower'] <= p['rul'] <= p['upper'], p\n"
        "roots = {m.split('.')[0] for m in sys.modules}\n"
        "bad = sorted(roots & {'torch', 'lightning', 'pytorch_lightning', 'streamlit', 'dashboard', 'sktime', "
        "'sklearn', 'synth', 'prescribe', 'ingest', 'genedge'})\n"
        "bad += sorted(m for m in sys.modules if m.startswith('models.') and m not in "
        "{'core.inference.runtime', 'core.inference.registry', 'core.inference.calibration', 'core.inference.preprocess'})\n"
        "print(bad); sys.exit(1 if bad else 0)\n"
    )
    out = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120, check=False)
    assert out.returncode == 0, out.stdout + out.stderr


def test_hook_follows_promotions_in_its_registry(tmp_path: Path) -> None:
    """A promotion (or roll back) in the registry reaches a running hook without a restart."""
    import json
    import shutil

    shutil.copytree(SHIPPED_DIR / MODEL, tmp_path / MODEL)
    first = ModelRegistry(SHIPPED_DIR).promoted(MODEL).version
    second = f"v{int(first[1:]) + 1}"
    shutil.copytree(tmp_path / MODEL / first, tmp_path / MODEL / second)
    card = read_card(tmp_path / MODEL / second / "card.json")
    card.version = second
    (tmp_path / MODEL / second / "card.json").write_text(json.dumps(card.to_dict()))
    hook = FeatureRulHook.from_path(tmp_path / MODEL)
    hook.reload_check_s = 0.0
    assert hook.model_version == first
    assert not hook.maybe_reload(), "nothing changed yet"
    hook.add_frame("P-101", EPOCH, {})  # incomplete frames are remembered per model ...

    registry = ModelRegistry(tmp_path)
    registry.promote(MODEL, second)
    assert hook.maybe_reload()
    assert hook.model_version == second and hook.predictor.card.version == second
    assert hook.rows("P-101") == [] and not hook._incomplete  # ... and forgotten with the old model

    registry.rollback(MODEL)
    assert hook.maybe_reload() and hook.model_version == first

    (tmp_path / MODEL / second / "model.onnx").write_bytes(b"not a model")
    registry.promote(MODEL, second)
    assert not hook.maybe_reload(), "a broken version is not loaded"
    assert hook.model_version == first, "the running model is kept"
