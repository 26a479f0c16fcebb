"""ONNX export parity and quantised variants for every network, on random weights (fast)."""

from __future__ import annotations

import copy
import itertools
from pathlib import Path

import numpy as np
import onnx
import pytest
import torch

from core.errors import ModelError
from models.export import (
    byte_breakdown,
    compression_report,
    convert_fp16,
    export_int8_compact,
    export_onnx,
    onnx_session,
    prune_magnitude,
    quantize_int4_weight_only,
    quantize_int8_dynamic,
    quantize_int8_static,
    sparsity,
)
from models.export._blockwise import dequantize, fake_quantize, pack_nibbles, quantize_blockwise
from models.export.compact import export_packed
from models.export.mixed import export_mixed, plan_mixed
from models.export.structured import parameter_count, prune_structured, prune_structured_finetune
from models.nets import LSTMRULNet, TransformerRULNet
from models.torch_estimator import MeanEnsemble

C, T = 5, 16

NETS = {
    "transformer": lambda: TransformerRULNet(C, T, d_model=16, n_heads=2, d_ff=32),
    "transformer-conv": lambda: TransformerRULNet(C, T, d_model=16, n_heads=2, d_ff=32, conv_kernel=5),
    "transformer-patch": lambda: TransformerRULNet(C, T, d_model=16, n_heads=2, d_ff=32, patch_len=5),
    # two patch scales (3- and 8-cycle tokens, both left-padded) in one attention
    "transformer-multiscale": lambda: TransformerRULNet(C, T, d_model=16, n_heads=2, d_ff=32, patch_len=3, coarse_patch_len=8),
    "lstm": lambda: LSTMRULNet(C, T, hidden_size=16),
    # a seed ensemble exports as one graph averaging its members
    "ensemble": lambda: MeanEnsemble([TransformerRULNet(C, T, d_model=16, n_heads=2, d_ff=32, conv_kernel=5) for _ in range(3)]),
}


@pytest.fixture(params=sorted(NETS))
def net(request: pytest.FixtureRequest) -> torch.nn.Module:
    torch.manual_seed(0)
    return NETS[request.param]().eval()


def _run(path: Path, x: np.ndarray) -> np.ndarray:
    return onnx_session(path).run(None, {"x": x})[0]


def test_fp32_export_matches_torch_with_dynamic_batch(net: torch.nn.Module, tmp_path: Path) -> None:
    path = export_onnx(net, C, T, tmp_path / "m.onnx")
    model = onnx.load(str(path))
    assert model.opset_import[0].version >= 17
    for batch in (1, 7, 64):
        x = np.random.default_rng(batch).standard_normal((batch, C, T)).astype(np.float32)
        with torch.inference_mode():
            ref = net(torch.from_numpy(x)).numpy()
        got = _run(path, x)
        assert got.shape == (batch,)
        np.testing.assert_allclose(got, ref, atol=1e-3, rtol=1e-4)


def test_quantised_variants_run_and_stay_close(net: torch.nn.Module, tmp_path: Path) -> None:
    fp32 = export_onnx(net, C, T, tmp_path / "fp32.onnx")
    x = np.random.default_rng(0).standard_normal((32, C, T)).astype(np.float32)
    ref = _run(fp32, x)
    variants = {
        "int8-dynamic": quantize_int8_dynamic(fp32, tmp_path / "d.onnx"),
        "int8-static": quantize_int8_static(fp32, tmp_path / "s.onnx", x),
        "fp16": convert_fp16(fp32, tmp_path / "h.onnx"),
        "int4": quantize_int4_weight_only(fp32, tmp_path / "q4.onnx"),
    }
    for name, path in variants.items():
        got = _run(path, x)
        assert got.shape == ref.shape, name
        # outputs are in cycles (0..~125); quantisation noise must stay a few cycles
        assert np.abs(got - ref).mean() < 5.0, name
        assert path.stat().st_size <= fp32.stat().st_size * 1.05, name


def test_export_rejects_old_opset(net: torch.nn.Module, tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="opset"):
        export_onnx(net, C, T, tmp_path / "m.onnx", opset=13)


def test_magnitude_pruning_zeroes_weights_and_still_exports(net: torch.nn.Module, tmp_path: Path) -> None:
    pruned = prune_magnitude(net, 0.5)
    assert sparsity(pruned) == pytest.approx(0.5, abs=0.05)
    assert sparsity(net) < 0.01  # the original is untouched
    path = export_onnx(pruned, C, T, tmp_path / "p.onnx")
    x = np.zeros((2, C, T), dtype=np.float32)
    assert _run(path, x).shape == (2,)


def _perturbed(net: torch.nn.Module) -> torch.nn.Module:
    """Like trained weights: no two LayerNorm scales equal (the exporter merges equal tensors)."""
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.05 * torch.randn_like(p))
    return net


def _fake_quant(net: torch.nn.Module) -> torch.nn.Module:
    """The weights int8-compact stores: symmetric per-tensor int8 of every non-scalar tensor."""
    net = copy.deepcopy(net)
    with torch.no_grad():
        for p in net.parameters():
            if p.numel() >= 2:
                scale = p.abs().max() / 127.0
                p.copy_(torch.round(p / scale).clamp(-127, 127) * scale)
    return net


@pytest.mark.parametrize("name", [n for n in sorted(NETS) if n != "lstm"])
def test_int8_compact_is_the_int8_weight_network_and_smaller(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = _perturbed(NETS[name]()).eval()
    path = export_int8_compact(net, C, T, tmp_path / "c.onnx")
    quantised = _fake_quant(net).eval()
    for batch in (1, 7):
        x = np.random.default_rng(batch).standard_normal((batch, C, T)).astype(np.float32)
        with torch.inference_mode():
            ref = quantised(torch.from_numpy(x)).numpy()
            fp32 = net(torch.from_numpy(x)).numpy()
        got = _run(path, x)
        assert got.shape == (batch,)
        # same int8 weights, fp32 compute: only float rounding apart
        np.testing.assert_allclose(got, ref, atol=1e-3, rtol=1e-4)
        assert np.abs(got - fp32).mean() < 5.0
    model = onnx.load(str(path))
    ops = {n.op_type for f in model.functions for n in f.node}
    assert "Cast" in ops and not ops & {"MatMulInteger", "DynamicQuantizeLinear", "DequantizeLinear"}
    # one int8 blob per member; in fp32 only the per-tensor scales and scalar weights
    n_members = len(getattr(net, "members", [net]))
    sizes = {dtype: 0 for dtype in (onnx.TensorProto.INT8, onnx.TensorProto.FLOAT)}
    for init in model.graph.initializer:
        sizes[init.data_type] += int(np.prod(init.dims))
    assert sum(i.data_type == onnx.TensorProto.INT8 for i in model.graph.initializer) == n_members
    assert sizes[onnx.TensorProto.FLOAT] < 0.01 * sizes[onnx.TensorProto.INT8]
    bytes_ = byte_breakdown(path)
    assert bytes_["functions"]["count"] == 1 and bytes_["nodes"]["count"] == n_members + 2 * (n_members > 1)
    # members share one function: the ensemble's file grows by its weights only
    dynamic = quantize_int8_dynamic(export_onnx(net, C, T, tmp_path / "fp32.onnx"), tmp_path / "d.onnx")
    assert path.stat().st_size < 0.85 * dynamic.stat().st_size


def test_int8_compact_rejects_fused_weights(tmp_path: Path) -> None:
    with pytest.raises(ModelError, match="int8-compact"):
        export_int8_compact(LSTMRULNet(C, T, hidden_size=16).eval(), C, T, tmp_path / "c.onnx")


def test_coarse_patches_need_finer_patches() -> None:
    with pytest.raises(ValueError, match="coarse_patch_len"):
        TransformerRULNet(C, T, patch_len=0, coarse_patch_len=8)
    with pytest.raises(ValueError, match="coarse_patch_len"):
        TransformerRULNet(C, T, patch_len=8, coarse_patch_len=4)


@pytest.mark.filterwarnings("ignore:You are trying to `self.log\\(\\)`")
def test_late_weight_weights_over_predictions_in_the_training_loss() -> None:
    """``late_weight`` multiplies the squared errors of late (too high) predictions only."""
    net = LSTMRULNet(2, 6, hidden_size=4, num_layers=1, rul_cap=100.0, late_weight=3.0)
    scaled = torch.tensor([0.5, 0.2, 0.9])  # what encode() returns: RUL / cap
    net.encode = lambda x: scaled  # type: ignore[method-assign]
    y = torch.tensor([40.0, 20.0, 100.0])  # errors in cap units: +0.1 (late), 0.0, -0.1 (early)
    loss = net.training_step((torch.zeros(3, 2, 6), y), 0)
    assert float(loss) == pytest.approx((3.0 * 0.1**2 + 0.0 + 0.1**2) / 3, rel=1e-5)
    net.late_weight = 1.0
    assert float(net.training_step((torch.zeros(3, 2, 6), y), 0)) == pytest.approx((0.1**2 + 0.1**2) / 3, rel=1e-5)
    with pytest.raises(ValueError, match="late_weight"):
        LSTMRULNet(2, 6, late_weight=0.0)


# --- packed int4, mixed precision and structured pruning ---------------------------------------------

#: the shipped C-MAPSS FD001 network's shape: 15 channels, 80-cycle windows, 8-cycle patches
FD001_SHAPE = {"d_model": 32, "n_layers": 2, "n_sensor_layers": 1, "patch_len": 8}


def _realistic(members: int) -> torch.nn.Module:
    torch.manual_seed(0)
    nets = [_perturbed(TransformerRULNet(15, 80, **FD001_SHAPE)) for _ in range(members)]
    return (nets[0] if members == 1 else MeanEnsemble(nets)).eval()


def _fake_quant_plan(
    net: torch.nn.Module, precision: dict[str, str], default: str = "int4", block_size: int = 32, vectors: str = "int8"
) -> torch.nn.Module:
    """The weights export_packed stores, each tensor in its planned precision."""
    net = copy.deepcopy(net)
    with torch.no_grad():
        for member in getattr(net, "members", [net]):
            for key, p in member.named_parameters():
                if p.numel() >= 2:
                    prec = precision.get(key, vectors if p.dim() == 1 else default)
                    p.copy_(torch.from_numpy(fake_quantize(p.numpy(), prec, block_size)))
    return net


@pytest.mark.parametrize("bits", [4, 8])
@pytest.mark.parametrize("size", [1, 31, 32, 33, 200])
def test_blockwise_codes_beat_the_plain_max_scale(bits: int, size: int) -> None:
    arr = np.random.default_rng(size).standard_normal(size).astype(np.float32) * 3
    codes, scales = quantize_blockwise(arr, bits, 32)
    assert codes.shape == (scales.shape[0], 32)
    assert codes.min() >= -(2 ** (bits - 1)) and codes.max() <= 2 ** (bits - 1) - 1
    back = dequantize(codes, scales, size)
    # the plain scale (largest magnitude onto the lowest code), rounded to fp16 as stored
    padded = np.zeros(scales.shape[0] * 32, dtype=np.float32)
    padded[:size] = arr
    blocks = padded.reshape(-1, 32)
    extreme = np.take_along_axis(blocks, np.abs(blocks).argmax(axis=1)[:, None], axis=1)
    plain = (extreme / -(2 ** (bits - 1))).astype(np.float16).astype(np.float32)
    plain_back = (np.clip(np.rint(blocks / plain), -(2 ** (bits - 1)), 2 ** (bits - 1) - 1) * plain).ravel()[:size]
    assert np.sum((back - arr) ** 2) <= np.sum((plain_back - arr) ** 2) + 1e-6
    assert np.max(np.abs(back - arr)) <= np.max(np.abs(plain_back - arr)) + 0.3 * np.abs(arr).max()
    if bits == 4:  # two codes a byte: the packed file holds half a byte per weight
        packed = pack_nibbles(codes)
        assert packed.nbytes == codes.size // 2
        assert np.array_equal(np.concatenate([packed & 15, packed >> 4], axis=1).astype(np.int16) - 8, codes)


def test_blockwise_rejects_bad_input() -> None:
    with pytest.raises(ModelError, match="bits"):
        quantize_blockwise(np.ones(4), 3, 32)
    with pytest.raises(ModelError, match="block_size"):
        quantize_blockwise(np.ones(4), 4, 7)
    with pytest.raises(ModelError, match="NaN"):
        quantize_blockwise(np.array([1.0, np.nan]), 4, 32)
    with pytest.raises(ModelError, match="precision"):
        fake_quantize(np.ones(4), "int2")


def test_int4_is_85pct_smaller_than_fp32_for_the_shipped_ensemble_shape(tmp_path: Path) -> None:
    net = _realistic(5)
    fp32 = export_onnx(net, 15, 80, tmp_path / "fp32.onnx")
    int4 = export_packed(net, 15, 80, tmp_path / "int4.onnx", block_size=32)
    assert int4.stat().st_size <= 0.15 * fp32.stat().st_size
    # every weight matrix packed, half a byte per weight; biases and LayerNorm vectors a byte each;
    # no float initializer but the fp32 scalars
    model = onnx.load(str(int4))
    by_type: dict[int, int] = {}
    for init in model.graph.initializer:
        by_type[init.data_type] = by_type.get(init.data_type, 0) + int(np.prod(init.dims))
    n_matrix = sum(p.numel() for p in net.parameters() if p.dim() >= 2)
    n_vector = sum(p.numel() for p in net.parameters() if p.dim() == 1 and p.numel() >= 2)
    assert by_type[onnx.TensorProto.UINT8] == pytest.approx(n_matrix / 2, rel=0.01)
    assert by_type[onnx.TensorProto.INT8] == pytest.approx(n_vector, rel=0.05)
    # in fp32: the members' one-element output biases and the member count the mean divides by
    assert by_type.get(onnx.TensorProto.FLOAT, 0) == 5 + 1
    x = np.random.default_rng(1).standard_normal((64, 15, 80)).astype(np.float32)
    got = _run(int4, x)
    with torch.inference_mode():
        ref = _fake_quant_plan(net, {})(torch.from_numpy(x)).numpy()
        full = net(torch.from_numpy(x)).numpy()
    np.testing.assert_allclose(got, ref, atol=1e-3, rtol=1e-4)  # same 4-bit weights, fp32 compute
    assert np.abs(got - full).mean() < 5.0


@pytest.mark.parametrize("name", [n for n in sorted(NETS) if n != "lstm"])
def test_packed_export_matches_the_quantised_network_with_dynamic_batch(name: str, tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = _perturbed(NETS[name]()).eval()
    key = next(k for k, p in getattr(net, "members", [net])[0].named_parameters() if p.dim() == 2)
    plan = {key: "fp16"}
    path = export_packed(net, C, T, tmp_path / "p.onnx", precision=plan, default="int8", block_size=16)
    quantised = _fake_quant_plan(net, {}, "int8", block_size=16)
    with torch.no_grad():
        for member, src in zip(getattr(quantised, "members", [quantised]), getattr(net, "members", [net]), strict=True):
            member.get_parameter(key).copy_(src.get_parameter(key).half().float())
    for batch in (1, 7):
        x = np.random.default_rng(batch).standard_normal((batch, C, T)).astype(np.float32)
        with torch.inference_mode():
            ref = quantised(torch.from_numpy(x)).numpy()
        np.testing.assert_allclose(_run(path, x), ref, atol=1e-3, rtol=1e-4)


def test_packed_export_rejects_unknown_precisions_and_keys(tmp_path: Path) -> None:
    net = _perturbed(NETS["transformer"]()).eval()
    with pytest.raises(ModelError, match="precision"):
        export_packed(net, C, T, tmp_path / "a.onnx", default="int3")
    with pytest.raises(ModelError, match="does not have"):
        export_packed(net, C, T, tmp_path / "b.onnx", precision={"no.such.weight": "fp16"})
    with pytest.raises(ModelError, match="block_size"):
        export_packed(net, C, T, tmp_path / "c.onnx", block_size=5)


def test_mixed_raises_the_weights_that_bring_it_closest_to_fp32(tmp_path: Path) -> None:
    net = _realistic(1)
    x = np.random.default_rng(2).standard_normal((64, 15, 80)).astype(np.float32)
    plan = plan_mixed(net, x, keep_share=0.15)
    sizes = {k: p.numel() for k, p in net.named_parameters() if p.numel() >= 2}
    assert set(plan.sensitivity) == set(sizes) and all(v >= 0 for v in plan.sensitivity.values())
    kept = plan.kept()
    assert kept == [k for k, _ in plan.deviation_steps[1:]] and len(set(kept)) == len(kept)
    assert 0 < plan.kept_share <= 0.15
    assert plan.kept_share == pytest.approx(sum(sizes[k] for k in kept) / sum(sizes.values()))
    # every raise measured lowers the change from fp32, the all-int4 start being the worst
    devs = [d for _, d in plan.deviation_steps]
    assert all(b < a for a, b in itertools.pairwise(devs))
    with torch.inference_mode():
        fp32 = net(torch.from_numpy(x)).numpy()
        mixed_pred = _fake_quant_plan(net, plan.precision)(torch.from_numpy(x)).numpy()
    assert np.sqrt(np.mean((mixed_pred - fp32) ** 2)) == pytest.approx(devs[-1], rel=1e-3)
    path = export_mixed(net, 15, 80, tmp_path / "mixed.onnx", plan)
    model = onnx.load(str(path))
    fp16 = [i for i in model.graph.initializer if i.data_type == onnx.TensorProto.FLOAT16 and len(i.dims) == 1]
    assert sum(int(np.prod(i.dims)) for i in fp16) == sum(sizes[k] for k in kept)
    np.testing.assert_allclose(_run(path, x), mixed_pred, atol=1e-3, rtol=1e-4)
    int4 = export_packed(net, 15, 80, tmp_path / "int4.onnx")
    assert int4.stat().st_size < path.stat().st_size < export_onnx(net, 15, 80, tmp_path / "f.onnx").stat().st_size


def test_mixed_rejects_bad_input() -> None:
    net = _perturbed(NETS["transformer"]()).eval()
    with pytest.raises(ModelError, match="keep_share"):
        plan_mixed(net, np.zeros((2, C, T), dtype=np.float32), keep_share=1.5)
    with pytest.raises(ModelError, match="X must be"):
        plan_mixed(net, np.zeros((0, C, T), dtype=np.float32))


def test_structured_pruning_shrinks_the_graph_and_keeps_the_important_heads(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = _perturbed(TransformerRULNet(C, T, d_model=32, n_heads=4, d_ff=16, n_layers=2, n_sensor_layers=1)).eval()
    with torch.no_grad():  # head 0 of the first time layer switched off: it must be the one removed
        net.time_layers[0].attn.out.weight[:, :8] = 0.0
    x = np.random.default_rng(3).standard_normal((32, C, T)).astype(np.float32)
    pruned, plans = prune_structured(net, x, keep_heads=2, keep_ffn=8, drop_layers=1)
    plan = plans[0]
    assert plan.head_importance["time_layers.0"][0] == pytest.approx(0.0, abs=1e-6)
    assert 0 not in plan.heads["time_layers.0"] and len(plan.heads["time_layers.0"]) == 2
    assert plan.dropped == [min(plan.layer_importance, key=plan.layer_importance.__getitem__)]
    assert parameter_count(pruned) < 0.7 * parameter_count(net)
    assert len(pruned.time_layers) + len(pruned.sensor_layers) == 2
    for layer in [*pruned.time_layers, *pruned.sensor_layers]:
        assert layer.attn.qkv.weight.shape == (3 * 2 * 8, 32) and layer.attn.out.weight.shape == (32, 2 * 8)
        assert layer.ff[0].weight.shape == (8, 32) and layer.ff[3].weight.shape == (32, 8)
    fp32 = export_onnx(net, C, T, tmp_path / "fp32.onnx")
    small = export_onnx(pruned, C, T, tmp_path / "structured.onnx")
    assert small.stat().st_size < 0.7 * fp32.stat().st_size
    for batch in (1, 9):
        with torch.inference_mode():
            ref = pruned(torch.from_numpy(x[:batch])).numpy()
        got = _run(small, x[:batch])
        assert got.shape == (batch,)
        np.testing.assert_allclose(got, ref, atol=1e-3, rtol=1e-4)
    # keeping every head and channel rebuilds the same network
    same, _ = prune_structured(net, x, keep_heads=4, keep_ffn=16)
    with torch.inference_mode():
        np.testing.assert_allclose(same(torch.from_numpy(x)).numpy(), net(torch.from_numpy(x)).numpy(), atol=1e-4)


def test_structured_pruning_rejects_what_it_cannot_prune() -> None:
    x = np.zeros((4, C, T), dtype=np.float32)
    with pytest.raises(ModelError, match="TransformerRULNet"):
        prune_structured(LSTMRULNet(C, T, hidden_size=16), x, keep_heads=1, keep_ffn=1)
    net = NETS["transformer"]().eval()
    with pytest.raises(ModelError, match="keep_heads"):
        prune_structured(net, x, keep_heads=3, keep_ffn=8)
    with pytest.raises(ModelError, match="drop_layers"):
        prune_structured(net, x, keep_heads=1, keep_ffn=8, drop_layers=3)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_structured_finetune_returns_an_exportable_smaller_ensemble(tmp_path: Path) -> None:
    torch.manual_seed(0)
    net = MeanEnsemble([NETS["transformer"]() for _ in range(2)]).eval()
    rng = np.random.default_rng(4)
    x, y = rng.standard_normal((64, C, T)).astype(np.float32), rng.uniform(0, 125, 64).astype(np.float32)
    tuned, plans = prune_structured_finetune(net, x, y, x[:16], y[:16], keep_heads=1, keep_ffn=8, epochs=1)
    assert len(plans) == 2 and parameter_count(tuned) < parameter_count(net)
    path = export_int8_compact(tuned, C, T, tmp_path / "s.onnx")
    assert _run(path, x[:3]).shape == (3,)
    with pytest.raises(ValueError, match="epochs"):
        prune_structured_finetune(net, x, y, x, y, keep_heads=1, keep_ffn=8, epochs=0)


def test_compression_report_times_the_fleet_batch_against_fp32_onnx(tmp_path: Path) -> None:
    net = _perturbed(NETS["transformer"]()).eval()
    x = np.random.default_rng(5).standard_normal((20, C, T)).astype(np.float32)
    y = np.random.default_rng(6).uniform(0, 125, 20)
    paths = {"fp32": export_onnx(net, C, T, tmp_path / "f.onnx"), "int4": export_packed(net, C, T, tmp_path / "q.onnx")}
    rows = compression_report(net, paths, x, y, repeats=3, fleet_batch=50)
    assert [r["variant"] for r in rows] == ["torch-fp32-eager", "fp32", "int4"]
    assert all(r["latency_fleet_ms"] > 0 for r in rows)
    assert rows[1]["speedup_vs_onnx_fp32_b1"] == 1.0 and rows[1]["speedup_vs_onnx_fp32_fleet"] == 1.0
    assert rows[2]["speedup_vs_onnx_fp32_fleet"] > 0
    with pytest.raises(ValueError, match="fleet_batch"):
        compression_report(net, paths, x, y, repeats=1, fleet_batch=0)
